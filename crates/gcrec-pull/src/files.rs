//! Decrypting local files, or a whole local export directory (layout kept, sidecars
//! copied verbatim, encrypted suffixes dropped): what `gcrec decrypt` runs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{Stream, StreamExt, TryStreamExt};
use gcrec_fetch::layout::INSTRUCTION_SUFFIX;
use gcrec_fetch::recording::{ScanEvent, SkippedKey};
use gcrec_fetch::scan::{ScanOptions, scan};
use gcrec_fetch::source::{LocalSource, ObjectSource, SourceError, open_source};

use crate::error::PullError;
use crate::object::{DecryptContext, ObjectJob, copy_object, decrypt_object};
use crate::outpath::{OutPathError, mirror, plaintext_name};
use crate::pull::overlap;

/// One unit of work.
#[derive(Debug)]
pub enum FileJob {
    /// Decrypt an object.
    Decrypt(Arc<dyn ObjectSource>, ObjectJob),
    /// Copy a sidecar byte for byte: source, key, size, output root, destination.
    Copy(Arc<dyn ObjectSource>, String, u64, PathBuf, PathBuf),
}

impl FileJob {
    /// The object's key.
    pub fn key(&self) -> &str {
        match self {
            FileJob::Decrypt(_, job) => &job.key,
            FileJob::Copy(_, key, ..) => key,
        }
    }

    /// Where it goes.
    pub fn destination(&self) -> &Path {
        match self {
            FileJob::Decrypt(_, job) => &job.destination,
            FileJob::Copy(.., dest) => dest,
        }
    }
}

/// What to do, and the keys passed over.
#[derive(Debug, Default)]
pub struct FilePlan {
    /// The work.
    pub jobs: Vec<FileJob>,
    /// Keys of export directories that are not part of any recording.
    pub skipped: Vec<SkippedKey>,
}

/// Why the files cannot be decrypted at all.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A path cannot be read.
    #[error("{}: {source}", path.display())]
    Input {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a file name gcrec can use.
    #[error("{}: not a file name gcrec can use", .0.display())]
    BadName(PathBuf),
    /// An input and the output directory overlap.
    #[error(
        "the output {} and the input {} overlap; decrypt into a directory outside the input",
        out.display(), input.display()
    )]
    Overlap {
        /// The output.
        out: PathBuf,
        /// The input.
        input: PathBuf,
    },
    /// Two inputs would be written to one file.
    #[error(
        "two inputs would both be written to {}; decrypt them into different output directories",
        .0.display()
    )]
    Collision(PathBuf),
    /// Listing an export directory failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Listing an export directory failed.
    #[error(transparent)]
    Listing(#[from] gcrec_fetch::recording::ListingError),
    /// A key cannot be an output name.
    #[error(transparent)]
    OutPath(#[from] OutPathError),
}

async fn plan_directory(path: &Path, out: &Path, plan: &mut FilePlan) -> Result<(), FilesError> {
    let opened = open_source(&path.display().to_string())?;
    let source = opened.source.clone();
    let options = ScanOptions {
        base_prefix: opened.base_prefix,
        read_all_metadata: false,
        ..ScanOptions::default()
    };
    let mut events = std::pin::pin!(scan(source.clone(), options));
    while let Some(event) = events.try_next().await? {
        match event {
            ScanEvent::Recording(r) | ScanEvent::Unchecked(r) => {
                for media in &r.media {
                    plan.jobs.push(FileJob::Decrypt(
                        source.clone(),
                        ObjectJob {
                            key: media.object.key.clone(),
                            listed_size: Some(media.object.size),
                            instruction: media.instruction.as_ref().map(|i| i.key.clone()),
                            expect_etag: None,
                            root: out.to_owned(),
                            destination: mirror(out, &media.object.key, false)?,
                            keep_encrypted: None,
                        },
                    ));
                }
                for sidecar in r.sidecar.iter().chain(&r.extra_sidecars) {
                    plan.jobs.push(FileJob::Copy(
                        source.clone(),
                        sidecar.key.clone(),
                        sidecar.size,
                        out.to_owned(),
                        mirror(out, &sidecar.key, false)?,
                    ));
                }
            }
            ScanEvent::Skipped(s) => plan.skipped.push(s),
        }
    }
    Ok(())
}

fn plan_file(path: &Path, out: &Path, plan: &mut FilePlan) -> Result<(), FilesError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| FilesError::BadName(path.to_owned()))?
        .to_owned();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let source: Arc<dyn ObjectSource> = Arc::new(LocalSource::open(dir)?);
    let instruction = format!("{name}{INSTRUCTION_SUFFIX}");
    let instruction = dir.join(&instruction).is_file().then_some(instruction);
    plan.jobs.push(FileJob::Decrypt(
        source,
        ObjectJob {
            key: name.clone(),
            listed_size: None,
            instruction,
            expect_etag: None,
            root: out.to_owned(),
            destination: crate::outpath::join_inside(out, [plaintext_name(&name)], false)?,
            keep_encrypted: None,
        },
    ));
    Ok(())
}

/// Plans the decryption of `paths` (files or export directories) into `out`.
pub async fn plan(paths: &[PathBuf], out: &Path) -> Result<FilePlan, FilesError> {
    let mut plan = FilePlan::default();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| FilesError::Input {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            if overlap(out, path) {
                return Err(FilesError::Overlap {
                    out: out.to_owned(),
                    input: path.clone(),
                });
            }
            plan_directory(path, out, &mut plan).await?;
        } else {
            plan_file(path, out, &mut plan)?;
        }
    }
    // Two inputs must never race for one output (`x.opus` and `x.opus.pgp`), and no
    // output may replace an input.
    let mut seen = BTreeSet::new();
    for job in &plan.jobs {
        let dest = job.destination();
        if !seen.insert(dest.to_path_buf()) {
            return Err(FilesError::Collision(dest.to_owned()));
        }
        if paths.iter().any(|p| p.is_file() && overlap(p, dest)) {
            return Err(FilesError::Overlap {
                out: out.to_owned(),
                input: dest.to_owned(),
            });
        }
    }
    Ok(plan)
}

/// What one file came to.
#[derive(Debug)]
pub struct FileOutcome {
    /// The object's key.
    pub key: String,
    /// The object's URI (`file:///…`), for messages.
    pub uri: String,
    /// Where it went.
    pub destination: PathBuf,
    /// The container, the key that opened it, plaintext bytes and SHA-256 — or why not.
    pub result: Result<FileDone, PullError>,
}

/// A file written.
#[derive(Debug)]
pub struct FileDone {
    /// The container (`sidecar (copied verbatim)` for sidecars).
    pub format: String,
    /// The key that opened it.
    pub opened_with: Option<String>,
    /// Whether the container authenticated every byte (`None` for plain media and
    /// copies).
    pub authenticated: Option<bool>,
    /// What the media check found (Ogg or ZIP plaintext).
    pub media: Option<crate::media::MediaReport>,
    /// Bytes written.
    pub bytes: u64,
    /// Their SHA-256, hex.
    pub sha256: String,
}

/// Runs a plan, `jobs` files at once, in plan order.
pub fn run(
    plan: Vec<FileJob>,
    ctx: Arc<DecryptContext>,
    jobs: usize,
) -> impl Stream<Item = FileOutcome> {
    futures::stream::iter(plan)
        .map(move |job| {
            let ctx = ctx.clone();
            async move {
                let key = job.key().to_owned();
                let destination = job.destination().to_path_buf();
                let uri = match &job {
                    FileJob::Decrypt(source, _) | FileJob::Copy(source, ..) => source.uri(&key),
                };
                let result = match job {
                    FileJob::Decrypt(source, job) => {
                        decrypt_object(source, job, ctx).await.map(|d| FileDone {
                            authenticated: d.outcome.authenticated(),
                            media: d.media,
                            format: d.outcome.format,
                            opened_with: d.outcome.opened_with,
                            bytes: d.outcome.plaintext_bytes,
                            sha256: d.plaintext_sha256,
                        })
                    }
                    FileJob::Copy(source, key, size, root, dest) => {
                        copy_object(source, key, Some(size), &root, dest, ctx)
                            .await
                            .map(|v| FileDone {
                                format: "sidecar (copied verbatim)".to_owned(),
                                opened_with: None,
                                authenticated: None,
                                media: None,
                                bytes: v.size,
                                sha256: v.sha256,
                            })
                    }
                };
                FileOutcome {
                    key,
                    uri,
                    destination,
                    result,
                }
            }
        })
        .buffered(jobs.max(1))
}
