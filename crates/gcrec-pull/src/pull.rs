//! The pull engine: list → pair → filter → download → decrypt → hash → release →
//! manifest, as plan → execute → report.
//!
//! [`PullPlan::new`] checks what can be checked before any request (the output and the
//! source do not overlap, the directory can be locked and written, the manifest can be
//! read) and takes the lock. [`PullPlan::execute`] runs: the listing runs ahead in its
//! own task (a bounded channel), `jobs` recordings are processed at once, each streaming
//! its bytes through the pipeline ([`crate::object`]), and each finished recording is
//! appended to the manifest and handed to the caller as a [`PullEvent`]. Cancelling the
//! run's token stops taking recordings and winds down those in progress (their
//! temporary files are removed); it is reported as [`PullReport::interrupted`], never
//! as failures. The caller renders events; nothing here prints.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;
use futures::StreamExt;
use gcrec_fetch::recording::{MediaFile, Recording, Recordings, ScanEvent};
use gcrec_fetch::scan::{ScanOptions, scan_recordings};
use gcrec_fetch::source::{CallCounts, CountingSource, ObjectSource, ObjectSummary, SourceError};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::bag::{self, BagRun};
use crate::concurrency::{Jobs, JobsReport, Limiter};
use crate::error::{PullError, WorkList};
use crate::lock::{DirLock, LockError};
use crate::manifest::{self, Entry, Index, Line, OutputFile, Status};
use crate::object::{DecryptContext, ObjectJob, copy_object, decrypt_object, write_body};
use crate::outpath::{self, OutputLayout};
use crate::production::{self, ProductionOptions, ProductionReport, ProductionRun};
use crate::release::create_private_dir_all;
use crate::sweep::Sweeper;

/// Recordings the listing may run ahead of the downloads.
const LISTING_AHEAD: usize = 1000;
/// Failures kept for the end-of-run list (the manifest has them all).
const FAILURES_KEPT: usize = 50;

/// An evidence bag instead of a plain output directory.
#[derive(Debug, Clone)]
pub struct BagOptions {
    /// The bag's directory: payload under `data/`, the manifest and tag files beside it.
    pub dir: PathBuf,
    /// The legal matter (bag-info External-Identifier).
    pub matter: String,
    /// Source-Organization.
    pub organization: String,
    /// Who ran the extraction (e.g. the AWS caller identity), for the custody record.
    pub caller: Option<Value>,
}

/// Where a pull writes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A directory (the manifest inside it).
    Dir(PathBuf),
    /// A BagIt bag.
    Bag(BagOptions),
    /// A production volume for review platforms (see [`crate::production`]).
    Production(ProductionOptions),
}

/// What to pull and how. Typed: no front end's words in it.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Where the output goes.
    pub target: Target,
    /// How output files are named (a bag keeps the mirror layout).
    pub layout: OutputLayout,
    /// Also keep the downloaded bytes under `encrypted/`.
    pub keep_encrypted: bool,
    /// Re-hash existing outputs before skipping them.
    pub verify_existing: bool,
    /// List what would be pulled; write nothing.
    pub dry_run: bool,
    /// Also pull recordings the field filters could not be checked on.
    pub include_unchecked: bool,
    /// Recordings processed at once: a fixed number, or adapting to the store.
    pub jobs: Jobs,
    /// What to list and which recordings to keep.
    pub scan: ScanOptions,
    /// The local directory the source reads, when it is one: the output may not overlap
    /// it.
    pub source_dir: Option<PathBuf>,
    /// The command line, for the manifest's run line (see [`redact_command_line`]).
    pub command_line: Vec<String>,
}

/// Why a pull could not start. Nothing was done.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The output directory and the source directory overlap.
    #[error(
        "the output {} and the source {} overlap; write the output outside the export (and the export outside the output)",
        out.display(), source_dir.display()
    )]
    Overlap {
        /// The output.
        out: PathBuf,
        /// The source.
        source_dir: PathBuf,
    },
    /// A bag or a production keeps the mirror layout (a production names its documents
    /// by control number in its volumes).
    #[error("an evidence bag or a production keeps the mirror layout")]
    BagLayout,
    /// The production's names or settings cannot be used.
    #[error(transparent)]
    Production(#[from] production::ProductionError),
    /// The output directory cannot be created or written.
    #[error("{}: {source}", path.display())]
    OutputDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// A path made absolute and resolved as far as it exists (the rest appended), so two
/// paths can be compared for overlap before either is created.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// Whether two directories overlap: one is the other or lies inside it.
pub fn overlap(a: &Path, b: &Path) -> bool {
    let (a, b) = (resolved(a), resolved(b));
    a.starts_with(&b) || b.starts_with(&a)
}

/// The command line for a manifest, with credentials and query strings in URLs blanked
/// (`https://user:pw@host/?token=…` → `https://***@host/?***`). Secrets never come in on
/// the command line (passphrases and SSE-C keys are read from files, the environment or
/// the terminal); this keeps what a URL may carry out of the record too.
pub fn redact_command_line(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|arg| {
            let Some(at) = arg.find("://") else {
                return arg;
            };
            let (head, rest) = arg.split_at(at + 3);
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((_, host)) => format!("***@{host}"),
                None => authority.to_owned(),
            };
            let path = match path.split_once('?') {
                Some((p, _)) => format!("{p}?***"),
                None => path.to_owned(),
            };
            format!("{head}{authority}{path}")
        })
        .collect()
}

/// What a recording's manifest line came to in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingOutcome {
    /// Pulled now (status `ok` or `no_media`).
    Pulled,
    /// Already complete in the output directory.
    Already,
    /// A dry run: it would be pulled.
    WouldPull,
    /// It failed; the entry says why.
    Failed,
}

/// What the engine tells its caller as it goes.
#[derive(Debug)]
pub enum PullEvent<'a> {
    /// The listing found more work.
    Found {
        /// Recordings (media objects) found.
        recordings: u64,
        /// Their bytes.
        bytes: u64,
    },
    /// A recording (one media object, or an orphan sidecar) is done.
    Recording {
        /// Its manifest entry.
        entry: &'a Entry,
        /// What that came to.
        outcome: RecordingOutcome,
    },
}

/// Counts for the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Pulled now.
    pub pulled: u64,
    /// Already present.
    pub already: u64,
    /// Sidecars whose media is not in the export (copied, reported).
    pub sidecars_without_media: u64,
    /// Would be pulled (dry run).
    pub would_pull: u64,
    /// Failed.
    pub failed: u64,
    /// Recordings the field filters could not be checked on, not pulled.
    pub unchecked_not_pulled: u64,
    /// Keys that are not part of any recording.
    pub skipped_keys: u64,
    /// Bytes downloaded.
    pub bytes_downloaded: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Recordings pulled whose media check found problems (truncated or damaged media,
    /// a duration far from the sidecar's): released, and reported.
    pub media_problems: u64,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The counts.
    pub totals: Totals,
    /// The listing failed part-way (the recordings listed before were processed).
    pub listing_error: Option<String>,
    /// The run was cancelled.
    pub interrupted: bool,
    /// Some failure was about access (exit code 3).
    pub permission_failed: bool,
    /// The first failures, as `key: reason`.
    pub failures: Vec<String>,
    /// The first media problems, as `key: problem; problem`.
    pub media_problems: Vec<String>,
    /// The run's summary, as the manifest's `run` line records it.
    pub summary: Value,
    /// The manifest, unless a dry run.
    pub manifest: Option<PathBuf>,
    /// The bag written, if one was.
    pub bag: Option<PathBuf>,
    /// The production volumes written, if any were.
    pub production: Option<ProductionReport>,
    /// The requests made to the source.
    pub requests: CallCounts,
    /// What the concurrency limit did.
    pub jobs: JobsReport,
}

/// Two objects of one run must never share a destination. In the mirror layout distinct
/// keys give distinct paths except within one recording (`r.opus` and `r.opus.pgp`),
/// which is checked per recording; the other layouts also keep a set of path hashes for
/// the whole run (8 bytes a file).
#[derive(Debug)]
struct Claims {
    global: Option<Mutex<HashSet<u64>>>,
}

impl Claims {
    fn new(layout: OutputLayout) -> Self {
        Self {
            global: (layout != OutputLayout::Mirror).then(Mutex::default),
        }
    }

    fn claim(&self, local: &mut HashSet<PathBuf>, path: &Path) -> Result<(), PullError> {
        let collision = || PullError::Collision(path.to_owned());
        if !local.insert(path.to_path_buf()) {
            return Err(collision());
        }
        if let Some(global) = &self.global {
            let hash = manifest::key_hash(&path.to_string_lossy());
            let mut set = global.lock().unwrap_or_else(|e| e.into_inner());
            if !set.insert(hash) {
                return Err(collision());
            }
        }
        Ok(())
    }
}

/// Shared by every recording of the run.
struct Run {
    source: Arc<dyn ObjectSource>,
    out: PathBuf,
    layout: OutputLayout,
    keep_encrypted: bool,
    verify_existing: bool,
    dry_run: bool,
    previous: Index,
    ctx: Arc<DecryptContext>,
    sweeper: Sweeper,
    claims: Claims,
    /// Objects must still have the ETags the work list gives (a catalog's).
    pinned: bool,
}

/// What a recording turned into.
struct Done {
    entries: Vec<Entry>,
    outcome: RecordingOutcome,
}

fn failed(e: &mut Entry, err: &PullError, context: Option<&str>) {
    let message = match context {
        Some(c) => format!("{c}: {err}"),
        None => err.to_string(),
    };
    e.error = Some(match e.error.take() {
        Some(first) => format!("{first}; {message}"),
        None => message,
    });
    e.permission |= err.is_permission();
    e.cancelled |= matches!(err, PullError::Cancelled);
    if e.hint.is_none() {
        e.hint = err.hint();
    }
}

impl Run {
    fn entry(&self, r: &Recording, key: &str) -> Entry {
        Entry {
            source: self.source.uri(key),
            key: key.to_owned(),
            organization_id: r.organization_id.clone(),
            conversation_id: r.conversation_id.clone(),
            recording_id: r.recording_id.clone(),
            sidecar_key: r.sidecar.as_ref().map(|s| s.key.clone()),
            sidecar_etag: r.sidecar.as_ref().and_then(|s| s.etag.clone()),
            layout: Some(self.layout),
            ..Entry::default()
        }
    }

    fn output(&self, path: &Path, size: u64, sha256: String) -> OutputFile {
        OutputFile {
            path: manifest::relative(&self.out, path),
            size,
            sha256,
        }
    }

    /// Whether an earlier entry answers this run's request for `object`: the same
    /// source, the same object (ETag), the same sidecar, the same layout, the kept copy
    /// when one is asked for — and its files still on disk.
    fn answers(&self, e: &Entry, object: &ObjectSummary, r: &Recording) -> bool {
        let same_object =
            e.status == Some(Status::NoMedia) || object.etag.is_none() || e.etag == object.etag;
        let sidecar_etag = r.sidecar.as_ref().and_then(|s| s.etag.clone());
        let kept = || {
            e.status == Some(Status::NoMedia)
                || e.outputs
                    .iter()
                    .any(|o| o.path.starts_with(&format!("{}/", outpath::KEPT_DIR)))
        };
        e.source == self.source.uri(&e.key)
            && same_object
            && e.sidecar_etag == sidecar_etag
            && e.layout == Some(self.layout)
            && (!self.keep_encrypted || kept())
    }

    /// Pulls one recording: its sidecar byte for byte, each media object decrypted.
    async fn recording(self: Arc<Self>, r: Recording) -> Done {
        let objects: Vec<&ObjectSummary> = if r.media.is_empty() {
            r.sidecar.iter().collect()
        } else {
            r.media.iter().map(|m| &m.object).collect()
        };
        // Already complete from an earlier run, for the same request?
        let previous: Vec<Entry> = objects
            .iter()
            .filter_map(|o| self.previous.get(&o.key).filter(|e| self.answers(e, o, &r)))
            .collect();
        if previous.len() == objects.len() && !previous.is_empty() {
            let me = self.clone();
            let check = previous.clone();
            let intact = tokio::task::spawn_blocking(move || {
                check
                    .iter()
                    .all(|e| manifest::outputs_intact(&me.out, e, me.verify_existing))
            })
            .await
            .unwrap_or(false);
            if intact {
                return Done {
                    entries: previous,
                    outcome: RecordingOutcome::Already,
                };
            }
        }
        if self.dry_run {
            return Done {
                entries: objects.iter().map(|o| self.entry(&r, &o.key)).collect(),
                outcome: RecordingOutcome::WouldPull,
            };
        }
        let mut claimed = HashSet::new();
        // Destinations are claimed first; then the sidecar and the media download at
        // once (two round trips to a far store cost one).
        let sidecar_dest = r
            .sidecar
            .as_ref()
            .map(|s| self.sidecar_destination(&r, s, &mut claimed));
        let media_dests: Vec<_> = r
            .media
            .iter()
            .map(|m| self.media_destinations(&r, m, &mut claimed))
            .collect();
        let sidecar_work = async {
            match (&r.sidecar, sidecar_dest) {
                (Some(s), Some(Ok(dest))) => Some(self.sidecar(&r, s, dest).await),
                (_, Some(Err(e))) => Some(Err(e)),
                _ => None,
            }
        };
        let media_work = futures::future::join_all(r.media.iter().zip(media_dests).map(
            |(media, dests)| async {
                let mut e = self.entry(&r, &media.object.key);
                let result = match dests {
                    Ok((dest, keep)) => self.media(media, dest, keep, &mut e).await,
                    Err(err) => Err(err),
                };
                (e, result)
            },
        ));
        let (sidecar, media_done) = futures::join!(sidecar_work, media_work);
        let mut entries = Vec::new();
        let mut stale = false;
        if r.media.is_empty() {
            let mut e = self.entry(&r, objects.first().map_or("", |o| o.key.as_str()));
            match &sidecar {
                Some(Ok(out)) => {
                    e.status = Some(Status::NoMedia);
                    e.sidecar_sha256 = Some(out.sha256.clone());
                    e.outputs.push(out.clone());
                }
                Some(Err(err)) => failed(&mut e, err, Some("sidecar")),
                None => {}
            }
            entries.push(finish(e));
        }
        let facts = self.sidecar_facts(&r, &sidecar);
        for (mut e, result) in media_done {
            if result.is_ok() {
                e.sidecar_file_size_matches = facts
                    .map(|(size, _)| size)
                    .zip(e.plaintext_size)
                    .map(|(want, got)| want == got);
                if let (Some(media), Some((_, want))) = (&mut e.media, facts) {
                    media.compare_duration(want);
                }
            }
            match &sidecar {
                Some(Ok(out)) => {
                    e.sidecar_sha256 = Some(out.sha256.clone());
                    // After the media output, before a kept encrypted copy.
                    let at = usize::from(result.is_ok()).min(e.outputs.len());
                    e.outputs.insert(at, out.clone());
                }
                Some(Err(err)) => failed(&mut e, err, Some("sidecar")),
                None => {}
            }
            if let Err(err) = result {
                stale |= matches!(err, PullError::Stale { .. });
                failed(&mut e, &err, None);
            }
            entries.push(finish(e));
        }
        if stale {
            // Nothing of a recording the catalog no longer describes stays written.
            for e in &mut entries {
                for out in e.outputs.drain(..) {
                    let _ = std::fs::remove_file(self.out.join(&out.path));
                }
            }
        }
        let outcome = if entries.iter().any(|e| e.status == Some(Status::Failed)) {
            RecordingOutcome::Failed
        } else {
            RecordingOutcome::Pulled
        };
        Done { entries, outcome }
    }

    /// The sidecar's `fileSize` and `durationMs`: from the metadata read while listing
    /// (or from the catalog), else from the sidecar just copied.
    fn sidecar_facts(
        &self,
        r: &Recording,
        copied: &Option<Result<OutputFile, PullError>>,
    ) -> Option<(u64, u64)> {
        if let Some(m) = r.valid_metadata() {
            return Some((m.file_size, m.duration_ms));
        }
        let (Some(s), Some(Ok(out))) = (&r.sidecar, copied) else {
            return None;
        };
        let mut body = Vec::new();
        let file = std::fs::File::open(self.out.join(&out.path)).ok()?;
        std::io::Read::read_to_end(&mut std::io::Read::take(file, out.size), &mut body).ok()?;
        gcrec_fetch::scan::parse_sidecar(r, &s.key, &body)
            .ok()
            .map(|m| (m.file_size, m.duration_ms))
    }

    /// Where a sidecar goes, claimed for this run.
    fn sidecar_destination(
        &self,
        r: &Recording,
        s: &ObjectSummary,
        claimed: &mut HashSet<PathBuf>,
    ) -> Result<PathBuf, PullError> {
        let dest = outpath::destination(
            self.layout,
            &self.out,
            &r.conversation_id,
            &s.key,
            false,
            self.keep_encrypted,
        )?;
        self.claims.claim(claimed, &dest)?;
        self.sweeper.sweep(&dest);
        Ok(dest)
    }

    /// Writes a sidecar byte for byte (from the bytes the work list carried, or fetched).
    async fn sidecar(
        &self,
        r: &Recording,
        s: &ObjectSummary,
        dest: PathBuf,
    ) -> Result<OutputFile, PullError> {
        if let Some(body) = &r.sidecar_body {
            let (size, sha256) = write_body(&self.out, &dest, &s.key, s.size, body.clone()).await?;
            return Ok(self.output(&dest, size, sha256));
        }
        let copied = copy_object(
            self.source.clone(),
            s.key.clone(),
            Some(s.size),
            &self.out,
            dest.clone(),
            self.ctx.clone(),
        )
        .await?;
        Ok(self.output(&dest, copied.size, copied.sha256))
    }

    /// Where a media object goes (and its kept encrypted copy), claimed for this run.
    fn media_destinations(
        &self,
        r: &Recording,
        media: &MediaFile,
        claimed: &mut HashSet<PathBuf>,
    ) -> Result<(PathBuf, Option<PathBuf>), PullError> {
        let key = &media.object.key;
        let dest = outpath::destination(
            self.layout,
            &self.out,
            &r.conversation_id,
            key,
            true,
            self.keep_encrypted,
        )?;
        self.claims.claim(claimed, &dest)?;
        self.sweeper.sweep(&dest);
        let keep = if self.keep_encrypted {
            let path = outpath::kept(&self.out, key)?;
            self.claims.claim(claimed, &path)?;
            self.sweeper.sweep(&path);
            Some(path)
        } else {
            None
        };
        Ok((dest, keep))
    }

    /// Downloads, decrypts and releases one media object, filling its entry.
    async fn media(
        &self,
        media: &MediaFile,
        dest: PathBuf,
        keep: Option<PathBuf>,
        e: &mut Entry,
    ) -> Result<(), PullError> {
        let key = &media.object.key;
        let job = ObjectJob {
            key: key.clone(),
            listed_size: Some(media.object.size),
            instruction: media.instruction.as_ref().map(|i| i.key.clone()),
            expect_etag: self.pinned.then(|| media.object.etag.clone()).flatten(),
            root: self.out.clone(),
            destination: dest.clone(),
            keep_encrypted: keep.clone(),
        };
        let d = decrypt_object(self.source.clone(), job, self.ctx.clone())
            .await
            .map_err(|e| match e {
                PullError::Source(SourceError::Changed { key, .. }) if self.pinned => {
                    PullError::Stale { key }
                }
                e => e,
            })?;
        e.version_id = d.info.version_id.clone();
        e.etag = d.info.etag.clone();
        e.size = Some(d.info.size);
        e.last_modified = d.info.last_modified;
        e.sse = Some(d.info.sse.clone());
        e.checked = d.downloaded.checked.clone();
        e.encryption = Some(d.outcome.format.clone());
        e.opened_with = d.outcome.opened_with.clone();
        e.sha256_downloaded = d.downloaded.sha256.clone();
        e.sha256_plaintext = Some(d.plaintext_sha256.clone());
        e.plaintext_size = Some(d.outcome.plaintext_bytes);
        e.authenticated = d.outcome.authenticated();
        e.media = d.media.clone();
        e.outputs.insert(
            0,
            self.output(&dest, d.outcome.plaintext_bytes, d.plaintext_sha256),
        );
        if let Some(path) = keep {
            // Hashed: a kept copy turns the download's hash on.
            let sha256 = d
                .downloaded
                .sha256
                .ok_or_else(|| PullError::Unverified(key.clone()))?;
            e.outputs
                .push(self.output(&path, d.downloaded.size, sha256));
        }
        Ok(())
    }
}

fn finish(mut e: Entry) -> Entry {
    e.status = Some(match (e.error.is_some(), e.status) {
        (true, _) => Status::Failed,
        (false, Some(status)) => status,
        (false, None) => Status::Ok,
    });
    e.completed_at = Some(Utc::now());
    e
}

/// A pull, checked and locked, ready to run.
pub struct PullPlan {
    source: Arc<CountingSource<Arc<dyn ObjectSource>>>,
    ctx: Arc<DecryptContext>,
    options: PullOptions,
    out: PathBuf,
    manifest_dir: PathBuf,
    previous: Index,
    writer: Option<manifest::Writer>,
    given: Option<(Recordings, WorkList)>,
    _locks: Vec<DirLock>,
}

impl std::fmt::Debug for PullPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullPlan")
            .field("out", &self.out)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PullPlan {
    /// Checks the options, creates and locks the output directory (unless a dry run) and
    /// indexes the manifest an earlier run left.
    pub fn new(
        source: Arc<dyn ObjectSource>,
        ctx: DecryptContext,
        options: PullOptions,
    ) -> Result<Self, PlanError> {
        let (out, manifest_dir) = match &options.target {
            Target::Dir(dir) => (dir.clone(), dir.clone()),
            Target::Bag(bag) => {
                if options.layout != OutputLayout::Mirror {
                    return Err(PlanError::BagLayout);
                }
                (bag.dir.join(bag::DATA), bag.dir.clone())
            }
            Target::Production(p) => {
                if options.layout != OutputLayout::Mirror {
                    return Err(PlanError::BagLayout);
                }
                production::preflight(p)?;
                (p.dir.join(production::PULLED), p.dir.clone())
            }
        };
        if let Some(source_dir) = &options.source_dir
            && overlap(&manifest_dir, source_dir)
        {
            return Err(PlanError::Overlap {
                out: manifest_dir,
                source_dir: source_dir.clone(),
            });
        }
        let output_dir = |path: &Path| {
            let path = path.to_owned();
            move |source| PlanError::OutputDir { path, source }
        };
        let mut locks = Vec::new();
        let mut writer = None;
        // The output directory, resolved: links above it are the user's own choice; below
        // it, none is ever followed.
        let (out, manifest_dir) = if options.dry_run {
            (out, manifest_dir)
        } else {
            create_private_dir_all(&out).map_err(output_dir(&out))?;
            let out = out.canonicalize().map_err(output_dir(&out))?;
            let manifest_dir = manifest_dir
                .canonicalize()
                .map_err(output_dir(&manifest_dir))?;
            locks.push(DirLock::acquire(&manifest_dir)?);
            if out != manifest_dir {
                // A bag's payload directory (a production's pulled files) is locked too:
                // no plain run may write into it.
                locks.push(DirLock::acquire(&out)?);
            }
            writer =
                Some(manifest::Writer::open(&manifest_dir).map_err(output_dir(&manifest_dir))?);
            (out, manifest_dir)
        };
        let previous = Index::open(&manifest_dir).map_err(output_dir(&manifest_dir))?;
        let mut ctx = ctx;
        // The encrypted bytes' hash is recorded only where something keeps it: a bag's
        // custody record, a kept encrypted copy.
        ctx.hash_downloaded = matches!(options.target, Target::Bag(_)) || options.keep_encrypted;
        Ok(Self {
            source: Arc::new(CountingSource::new(source)),
            ctx: Arc::new(ctx),
            options,
            out,
            manifest_dir,
            previous,
            writer,
            given: None,
            _locks: locks,
        })
    }

    /// Pulls these recordings instead of listing the source (the options' scan is then
    /// only reported): a catalog's answer. Each object must still have the ETag the work
    /// list gives, or its recording fails as stale and nothing is written for it; a
    /// sidecar whose bytes came with the recording is written from them, not fetched.
    pub fn with_recordings(mut self, recordings: Recordings, origin: WorkList) -> Self {
        self.given = Some((recordings, origin));
        self
    }

    /// Bytes received so far, for progress.
    pub fn received(&self) -> Arc<AtomicU64> {
        self.ctx.received.clone()
    }

    /// Where the recordings go.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Runs the pull, handing each event to `on_event` as it happens. Cancel the token
    /// of the context given to [`PullPlan::new`] to stop.
    pub async fn execute(
        mut self,
        on_event: &mut (dyn FnMut(PullEvent<'_>) + Send),
    ) -> Result<PullReport, PullError> {
        let started = Utc::now();
        let clock = Instant::now();
        let cancel = self.ctx.cancel.clone();
        let source: Arc<dyn ObjectSource> = self.source.clone();
        let options = self.options.clone();

        // The listing runs ahead of the downloads.
        let (tx, rx) = mpsc::channel::<Result<Box<Recording>, String>>(LISTING_AHEAD);
        let (found_tx, mut found_rx) = mpsc::unbounded_channel::<(u64, u64)>();
        let include_unchecked = options.include_unchecked;
        let (given, pinned) = match self.given.take() {
            Some((recordings, WorkList::Catalog)) => (Some(recordings), true),
            None => (None, false),
        };
        let listing = {
            let source = source.clone();
            let scan_options = options.scan.clone();
            tokio::spawn(async move {
                let (mut skipped, mut unchecked) = (0u64, 0u64);
                let mut events = given.unwrap_or_else(|| scan_recordings(source, scan_options));
                while let Some(event) = events.next().await {
                    let r = match event {
                        Ok(ScanEvent::Recording(r)) => r,
                        Ok(ScanEvent::Unchecked(r)) if include_unchecked => r,
                        Ok(ScanEvent::Unchecked(_)) => {
                            unchecked += 1;
                            continue;
                        }
                        Ok(ScanEvent::Skipped(_)) => {
                            skipped += 1;
                            continue;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string())).await;
                            break;
                        }
                    };
                    let bytes = r.media_size() + r.sidecar.as_ref().map_or(0, |s| s.size);
                    let _ = found_tx.send((r.media.len().max(1) as u64, bytes));
                    if tx.send(Ok(r)).await.is_err() {
                        break;
                    }
                }
                (skipped, unchecked)
            })
        };

        let run = Arc::new(Run {
            source: source.clone(),
            out: self.out.clone(),
            layout: options.layout,
            keep_encrypted: options.keep_encrypted,
            verify_existing: options.verify_existing,
            dry_run: options.dry_run,
            previous: std::mem::replace(&mut self.previous, Index::empty()),
            ctx: self.ctx.clone(),
            sweeper: Sweeper::default(),
            claims: Claims::new(options.layout),
            pinned,
        });
        let listing_failure: Mutex<Option<String>> = Mutex::default();
        let limiter = Arc::new(Limiter::new(options.jobs));
        let work = ReceiverStream::new(rx)
            .take_until(cancel.clone().cancelled_owned())
            .filter_map(|item| {
                let item = match item {
                    Ok(r) => Some(*r),
                    Err(e) => {
                        *listing_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                        None
                    }
                };
                async move { item }
            })
            .map(|r| {
                let (run, limiter) = (run.clone(), limiter.clone());
                async move {
                    let _permit = limiter.acquire().await;
                    run.recording(r).await
                }
            })
            .buffer_unordered(options.jobs.ceiling());
        let mut work = std::pin::pin!(work);

        let mut totals = Totals::default();
        let mut failures = Vec::new();
        let mut media_problems = Vec::new();
        let mut permission_failed = false;
        loop {
            let done = tokio::select! {
                biased;
                Some((recordings, bytes)) = found_rx.recv() => {
                    on_event(PullEvent::Found { recordings, bytes });
                    continue;
                }
                done = work.next() => done,
            };
            let Some(Done { entries, outcome }) = done else {
                break;
            };
            limiter.finished(source.retries());
            for e in entries {
                let failed = e.status == Some(Status::Failed);
                if failed && e.cancelled {
                    // Not a failure of the recording: the next run picks it up.
                    continue;
                }
                let outcome = if failed {
                    RecordingOutcome::Failed
                } else {
                    outcome
                };
                match outcome {
                    RecordingOutcome::Failed => {
                        totals.failed += 1;
                        permission_failed |= e.permission;
                        if failures.len() < FAILURES_KEPT {
                            failures.push(format!(
                                "{}: {}",
                                e.key,
                                e.error.as_deref().unwrap_or_default()
                            ));
                        }
                    }
                    RecordingOutcome::Pulled if e.status == Some(Status::NoMedia) => {
                        totals.sidecars_without_media += 1;
                    }
                    RecordingOutcome::Pulled => {
                        totals.pulled += 1;
                        if let Some(m) = e.media.as_ref().filter(|m| m.has_problems()) {
                            totals.media_problems += 1;
                            if media_problems.len() < FAILURES_KEPT {
                                media_problems.push(format!(
                                    "{}: {}",
                                    e.key,
                                    m.problems.join("; ")
                                ));
                            }
                        }
                        totals.bytes_downloaded += e.size.unwrap_or_default();
                        totals.bytes_written += e.outputs.iter().map(|o| o.size).sum::<u64>();
                    }
                    RecordingOutcome::Already if e.status == Some(Status::Ok) => {
                        totals.already += 1;
                    }
                    RecordingOutcome::Already => {}
                    RecordingOutcome::WouldPull => totals.would_pull += 1,
                }
                if matches!(outcome, RecordingOutcome::Pulled | RecordingOutcome::Failed)
                    && let Some(w) = self.writer.as_mut()
                {
                    let path = w.path().to_owned();
                    w.append(&Line::Recording(Box::new(e.clone())))
                        .map_err(PullError::output("appending to", &path))?;
                }
                on_event(PullEvent::Recording { entry: &e, outcome });
            }
        }
        let listing_error = listing_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let interrupted = cancel.is_cancelled();
        let (skipped, unchecked) = if interrupted {
            listing.abort();
            (0, 0)
        } else {
            listing.await.unwrap_or((0, 0))
        };
        while let Ok((recordings, bytes)) = found_rx.try_recv() {
            on_event(PullEvent::Found { recordings, bytes });
        }
        totals.skipped_keys = skipped;
        totals.unchecked_not_pulled = unchecked;
        let finished = Utc::now();
        let requests = self.source.counts();
        let summary = json!({
            "tool": format!("gcrec {}", env!("CARGO_PKG_VERSION")),
            "command": options.command_line,
            "source": source.uri(""),
            "out": self.out,
            "started_at": started,
            "finished_at": finished,
            "duration_seconds": clock.elapsed().as_secs_f64(),
            "interrupted": interrupted,
            "listing_error": listing_error,
            "dry_run": options.dry_run,
            "shard": options.scan.filter.shard.map(|s| format!("{}/{}", s.index, s.count)),
            "counts": totals,
            "requests": {"list": requests.list, "head": requests.head, "get": requests.get},
            "jobs": limiter.report(),
            "peak_rss_bytes": peak_rss(),
        });
        let manifest_path = self.writer.as_ref().map(|w| w.path().to_owned());
        if let Some(w) = self.writer.as_mut() {
            let path = w.path().to_owned();
            w.append(&Line::Run(Box::new(summary.clone())))
                .and_then(|()| w.sync())
                .map_err(PullError::output("appending to", &path))?;
        }
        // A bag or a production is written from the manifest once the run has finished,
        // with each object's legal hold at extraction.
        let (mut bag_written, mut production_written) = (None, None);
        let evidence = !matches!(options.target, Target::Dir(_));
        if evidence && !options.dry_run && !interrupted {
            let index = Index::open(&self.manifest_dir)
                .map_err(PullError::output("reading", &self.manifest_dir))?;
            let holds = legal_holds(&*source, &index).await;
            match &options.target {
                Target::Bag(bag) => {
                    bag::finish(
                        &self.manifest_dir,
                        &index,
                        &BagRun {
                            matter: &bag.matter,
                            organization: &bag.organization,
                            source: &source.uri(""),
                            command: &options.command_line,
                            started,
                            finished,
                            caller: bag.caller.clone(),
                            holds,
                            counts: summary["counts"].clone(),
                        },
                    )
                    .map_err(|e| match e {
                        bag::BagError::Io { path, source } => PullError::Output {
                            what: "writing the bag",
                            path,
                            source,
                        },
                    })?;
                    bag_written = Some(self.manifest_dir.clone());
                }
                Target::Production(p) => {
                    let p = p.clone();
                    let written = tokio::task::spawn_blocking(move || {
                        production::finish(&p, &index, &ProductionRun { holds })
                    })
                    .await
                    .map_err(|e| PullError::Task(format!("the production: {e}")))??;
                    production_written = Some(written);
                }
                Target::Dir(_) => {}
            }
        }
        Ok(PullReport {
            totals,
            listing_error,
            interrupted,
            permission_failed,
            failures,
            media_problems,
            summary,
            manifest: manifest_path,
            bag: bag_written,
            production: production_written,
            requests: self.source.counts(),
            jobs: limiter.report(),
        })
    }
}

/// The legal hold of every pulled object's version, when the store has Object Lock
/// (`None` when it has not, or cannot say).
async fn legal_holds(
    source: &dyn ObjectSource,
    index: &Index,
) -> Option<std::collections::BTreeMap<String, String>> {
    if !source.object_lock_enabled().await.unwrap_or(false) {
        return None;
    }
    let mut holds = std::collections::BTreeMap::new();
    for e in index.entries() {
        let status = match source.legal_hold(&e.key, e.version_id.as_deref()).await {
            Ok(true) => "ON".to_owned(),
            Ok(false) => "OFF".to_owned(),
            Err(err) => format!("unknown: {err}"),
        };
        holds.insert(e.key.clone(), status);
    }
    Some(holds)
}

/// The process's peak resident set (Linux `VmHWM`), for the run summary.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_and_queries() {
        let args = redact_command_line([
            "gcrec".to_owned(),
            "--endpoint-url".to_owned(),
            "https://user:pw@minio.example/?token=abc".to_owned(),
            "--endpoint-url=http://h:9000/p?X-Amz-Signature=s".to_owned(),
            "s3://bucket/prefix".to_owned(),
        ]);
        assert_eq!(args[2], "https://***@minio.example/?***");
        assert_eq!(args[3], "--endpoint-url=http://h:9000/p?***");
        assert_eq!(args[4], "s3://bucket/prefix");
        assert!(!args.concat().contains("abc") && !args.concat().contains("pw"));
    }

    #[test]
    fn overlapping_directories_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("export");
        std::fs::create_dir(&src).unwrap();
        assert!(overlap(&src, &src));
        assert!(overlap(&src.join("out/deeper"), &src));
        assert!(overlap(&src, &src.join("..").join("export")));
        assert!(overlap(dir.path(), &src));
        assert!(!overlap(&dir.path().join("out"), &src));
        assert!(!overlap(&dir.path().join("export-out"), &src));
    }
}
