//! Verifying an output: re-hash a pull output against its manifest, or a bag against its
//! payload manifest, and report missing, altered and extra files.
//!
//! Every file a run writes is listed in the manifest entry of its recording — also the
//! sidecar of a recording whose media failed — so a fresh output always verifies. Paths
//! come from a manifest, which is outside input too: one that would leave the directory
//! or pass through a link is reported missing and never read.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use crate::bag;
use crate::manifest::{self, Index, MANIFEST_NAME};
use crate::outpath::{KEPT_DIR, LOCK_NAME};
use crate::production;

/// What one file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// As recorded.
    Ok,
    /// Recorded, not there (or not a regular file, or not reachable inside the directory).
    Missing,
    /// There, with other bytes.
    Altered,
    /// There, not recorded.
    Extra,
}

impl FileStatus {
    /// A short, stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Ok => "ok",
            FileStatus::Missing => "missing",
            FileStatus::Altered => "altered",
            FileStatus::Extra => "extra",
        }
    }
}

/// What was verified.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The manifest the files were checked against.
    pub against: PathBuf,
    /// Every file checked or found, by path relative to the directory.
    pub files: BTreeMap<String, FileStatus>,
    /// Recordings in a pull manifest (`None` for a bag).
    pub recordings: Option<usize>,
}

impl VerifyReport {
    /// How many files have `status`.
    pub fn count(&self, status: FileStatus) -> u64 {
        self.files.values().filter(|s| **s == status).count() as u64
    }

    /// Whether everything is as recorded.
    pub fn is_clean(&self) -> bool {
        self.files.values().all(|s| *s == FileStatus::Ok)
    }
}

/// Why a directory could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Neither a pull output nor a bag.
    #[error("{}: no {MANIFEST_NAME} here; give a directory a pull wrote", .0.display())]
    NotAnOutput(PathBuf),
    /// Reading failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A bag could not be read.
    #[error(transparent)]
    Bag(#[from] bag::BagError),
    /// A production could not be read.
    #[error(transparent)]
    Production(#[from] production::ProductionError),
}

/// Files gcrec writes for its own bookkeeping, never listed as outputs.
fn bookkeeping(rel: &str) -> bool {
    rel == MANIFEST_NAME
        || rel == LOCK_NAME
        || (rel.starts_with(&format!("{KEPT_DIR}/"))
            && rel.ends_with(gcrec_fetch::source::OBJECT_METADATA_SUFFIX))
}

/// Runs a blocking check of `dir` on the blocking pool.
async fn blocking<T, E>(dir: &Path, check: fn(&Path) -> Result<T, E>) -> Result<T, VerifyError>
where
    T: Send + 'static,
    E: Into<VerifyError> + Send + 'static,
{
    let owned = dir.to_owned();
    tokio::task::spawn_blocking(move || check(&owned))
        .await
        .map_err(|e| VerifyError::Io {
            path: dir.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(Into::into)
}

/// Verifies `dir`: a production or one of its volumes (checked against the load
/// files: size, MD5 and SHA-256 of every file a row names), a bag (it holds
/// `bagit.txt`) or a pull output (it holds the manifest), hashing `jobs` files at once.
pub async fn verify_dir(dir: &Path, jobs: usize) -> Result<VerifyReport, VerifyError> {
    if production::is_production(dir) {
        let checked = blocking(dir, production::check).await?;
        return Ok(VerifyReport {
            against: checked
                .load_files
                .first()
                .cloned()
                .unwrap_or_else(|| dir.to_owned()),
            files: checked.files,
            recordings: Some(checked.documents as usize),
        });
    }
    if dir.join("bagit.txt").is_file() {
        let files = blocking(dir, bag::check).await?;
        return Ok(VerifyReport {
            against: dir.join(bag::PAYLOAD_MANIFEST),
            files,
            recordings: None,
        });
    }
    if !dir.join(MANIFEST_NAME).is_file() {
        return Err(VerifyError::NotAnOutput(dir.to_owned()));
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| VerifyError::Io { path, source }
    };
    let index = Arc::new(Index::open(dir).map_err(io(dir))?);
    // Every file an entry vouches for, with its size and SHA-256.
    let expected = index
        .entries()
        .flat_map(|e| e.outputs)
        .map(|o| (o.path, o.size, o.sha256));
    let mut known = HashSet::new();
    let checks = futures::stream::iter(expected)
        .filter(|(rel, ..)| futures::future::ready(known.insert(manifest::key_hash(rel))))
        .map(|(rel, size, sha256)| {
            let dir = dir.to_owned();
            tokio::task::spawn_blocking(move || {
                let status = match manifest::inside(&dir, &rel) {
                    None => FileStatus::Missing,
                    Some(path) => match std::fs::symlink_metadata(&path) {
                        Err(_) => FileStatus::Missing,
                        Ok(m) if !m.is_file() => FileStatus::Missing,
                        Ok(m) if m.len() != size => FileStatus::Altered,
                        Ok(_) => match manifest::sha256_file(&path) {
                            Ok(h) if h == sha256 => FileStatus::Ok,
                            _ => FileStatus::Altered,
                        },
                    },
                };
                (rel, status)
            })
        })
        .buffer_unordered(jobs.max(1));
    let mut files: BTreeMap<String, FileStatus> =
        checks.filter_map(|r| async move { r.ok() }).collect().await;
    for rel in manifest::files_under(dir, dir).map_err(io(dir))? {
        if !files.contains_key(&rel) && !bookkeeping(&rel) {
            files.insert(rel, FileStatus::Extra);
        }
    }
    Ok(VerifyReport {
        against: dir.join(MANIFEST_NAME),
        files,
        recordings: Some(index.len()),
    })
}

/// What `verify --media` found for one output.
#[derive(Debug, Clone)]
pub struct MediaFinding {
    /// The output, relative to the directory.
    pub path: String,
    /// The check (`None` when the file is missing or not Ogg or ZIP).
    pub report: Option<crate::media::MediaReport>,
}

/// Re-checks the media of every recording a pull output holds (its plaintext, the first
/// output of each `ok` entry): Ogg pages, ZIP entries, and an Opus duration against the
/// sidecar copied beside it.
pub async fn verify_media(dir: &Path, jobs: usize) -> Result<Vec<MediaFinding>, VerifyError> {
    // (media path, sidecar path) relative to `root`.
    let (root, work): (PathBuf, Vec<(String, Option<String>)>) = if production::is_production(dir) {
        blocking(dir, production::documents).await?
    } else {
        if !dir.join(MANIFEST_NAME).is_file() {
            return Err(VerifyError::NotAnOutput(dir.to_owned()));
        }
        let index = Index::open(dir).map_err(|source| VerifyError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let work = index
            .entries()
            .filter(|e| e.status == Some(manifest::Status::Ok))
            .filter_map(|e| {
                let media = e.outputs.first()?.path.clone();
                let sidecar = e.sidecar_output().map(|o| o.path.clone());
                Some((media, sidecar))
            })
            .collect();
        (dir.to_owned(), work)
    };
    let found = futures::stream::iter(work)
        .map(|(rel, sidecar)| {
            let dir = root.clone();
            tokio::task::spawn_blocking(move || {
                let report = manifest::inside(&dir, &rel).and_then(|path| {
                    let mut report = crate::media::check_file(&path).ok().flatten()?;
                    let duration = sidecar
                        .and_then(|s| manifest::inside(&dir, &s))
                        .and_then(|p| manifest::read_sidecar(&p).get("durationMs")?.as_u64());
                    if let Some(ms) = duration {
                        report.compare_duration(ms);
                    }
                    Some(report)
                });
                MediaFinding { path: rel, report }
            })
        })
        .buffer_unordered(jobs.max(1))
        .filter_map(|r| async move { r.ok() })
        .collect::<Vec<_>>()
        .await;
    let mut found = found;
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}
