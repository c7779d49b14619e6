//! `gcrec pull`: list → pair → filter → download → decrypt → hash → release → manifest.
//!
//! The listing runs ahead in its own task (feeding a bounded channel and the progress
//! totals); `--jobs` recordings are processed at once, each streaming its bytes through
//! the pipeline (bounded channels, crypto on the blocking pool, part bytes within the
//! shared budget). Results are written to the manifest as they complete. Ctrl-C stops
//! taking new recordings, cancels those in progress (their temporary files are
//! removed) and says how to resume.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::Utc;
use futures::StreamExt;
use gcrec_decrypt::keys::Keyring;
use gcrec_decrypt::object::DecryptOptions;
use gcrec_decrypt::release::{TEMP_MARKER, create_private_dir_all};
use gcrec_fetch::catalog::{CatalogEvent, Recording, ScanOptions, scan};
use gcrec_fetch::filter::Shard;
use gcrec_fetch::source::{CountingSource, ObjectSource};
use gcrec_fetch::transfer::{ByteBudget, TransferOptions};
use serde_json::json;
use tokio::sync::mpsc;

use crate::aws::LazyKms;
use crate::cli::{GlobalArgs, PullArgs};
use crate::exit::{Outcome, UsageError};
use crate::filters;
use crate::keyring::load_keyring;
use crate::manifest::{self, Entry, Line, OutputFile, Status};
use crate::outpath;
use crate::output::{Out, human_bytes};
use crate::pipeline::{DecryptContext, ObjectJob, copy_object, decrypt_object};
use crate::progress::Progress;

/// Recordings the listing may run ahead of the downloads.
const LISTING_AHEAD: usize = 10_000;
/// The lock file that keeps two runs out of one output directory.
const LOCK_NAME: &str = ".gcrec.lock";

/// The shard from `--shard`, or from the environment of an indexed batch job.
fn shard(args: &PullArgs) -> Result<Option<Shard>> {
    if let Some(s) = args.shard {
        return Ok(Some(s));
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let parse = |name: &str, v: String| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| UsageError(format!("{name}={v:?} is not a number")))
    };
    if let Some(index) = env("JOB_COMPLETION_INDEX") {
        let index = parse("JOB_COMPLETION_INDEX", index)?;
        let count = args.shard_count.ok_or_else(|| {
            UsageError(
                "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job): give the number of \
                 workers with --shard-count (or GCREC_SHARD_COUNT), or --shard I/N"
                    .into(),
            )
        })?;
        return Ok(Some(Shard::new(index, count).map_err(UsageError)?));
    }
    if let (Some(index), Some(size)) = (
        env("AWS_BATCH_JOB_ARRAY_INDEX"),
        env("AWS_BATCH_JOB_ARRAY_SIZE"),
    ) {
        let index = parse("AWS_BATCH_JOB_ARRAY_INDEX", index)?;
        let size = parse("AWS_BATCH_JOB_ARRAY_SIZE", size)?;
        return Ok(Some(Shard::new(index, size).map_err(UsageError)?));
    }
    if args.shard_count.is_some() {
        return Err(UsageError(
            "--shard-count needs JOB_COMPLETION_INDEX (or use --shard I/N)".into(),
        )
        .into());
    }
    Ok(None)
}

/// The command line for the manifest, with any credentials in URLs blanked. (Secrets
/// never come in on the command line: passphrases and SSE-C keys are read from files,
/// the environment or the terminal.)
fn command_line() -> Vec<String> {
    std::env::args()
        .map(|a| match a.split_once("://") {
            Some((scheme, rest)) if rest.split('/').next().is_some_and(|h| h.contains('@')) => {
                let after = rest.split_once('@').map_or("", |(_, r)| r);
                format!("{scheme}://***@{after}")
            }
            _ => a,
        })
        .collect()
}

/// Holds the output directory for this run.
struct DirLock {
    _file: File,
}

impl DirLock {
    fn acquire(out: &Path) -> Result<Self> {
        let path = out.join(LOCK_NAME);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(UsageError(format!(
                "another gcrec run is writing to {}; wait for it to finish",
                out.display()
            ))
            .into()),
            Err(TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }
}

/// Removes temporary files an interrupted run left, once per directory this run writes
/// to (safe: the directory lock keeps other runs out).
#[derive(Default)]
struct Sweeper {
    swept: Mutex<HashSet<PathBuf>>,
}

impl Sweeper {
    fn sweep(&self, file: &Path) {
        let Some(dir) = file.parent() else { return };
        {
            let Ok(mut swept) = self.swept.lock() else {
                return;
            };
            if !swept.insert(dir.to_path_buf()) {
                return;
            }
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().contains(TEMP_MARKER)
                && entry.file_type().is_ok_and(|t| t.is_file())
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// What a recording turned into.
enum Done {
    /// Pulled now (or failed): lines for the manifest.
    Pulled(Vec<Entry>),
    /// Already complete in the output directory.
    Already(Vec<Entry>),
    /// `--dry-run`: would be pulled.
    WouldPull(Vec<Entry>),
}

/// Shared by every recording of the run.
struct Run {
    source: Arc<dyn ObjectSource>,
    out: PathBuf,
    layout: crate::cli::OutputLayout,
    keep_encrypted: bool,
    verify_existing: bool,
    dry_run: bool,
    previous: BTreeMap<String, Entry>,
    ctx: Arc<DecryptContext>,
    sweeper: Sweeper,
    /// Destinations taken in this run: two keys must never share one.
    taken: Mutex<HashSet<PathBuf>>,
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
            ..Entry::default()
        }
    }

    fn claim(&self, path: &Path) -> Result<()> {
        let mut taken = self
            .taken
            .lock()
            .map_err(|_| anyhow::anyhow!("internal: destination set poisoned"))?;
        anyhow::ensure!(
            taken.insert(path.to_path_buf()),
            "another object of this run is also written to {}; pull with --layout mirror",
            path.display()
        );
        Ok(())
    }

    fn output(&self, path: &Path, size: u64, sha256: String) -> OutputFile {
        OutputFile {
            path: manifest::relative(&self.out, path),
            size,
            sha256,
        }
    }

    /// Pulls one recording: its sidecar(s) byte for byte, each media object decrypted.
    async fn recording(self: Arc<Self>, r: Recording) -> Done {
        // Already complete from an earlier run?
        let keys: Vec<&str> = if r.media.is_empty() {
            r.sidecar.iter().map(|s| s.key.as_str()).collect()
        } else {
            r.media.iter().map(|m| m.object.key.as_str()).collect()
        };
        let previous: Vec<Entry> = keys
            .iter()
            .filter_map(|k| self.previous.get(*k).cloned())
            .collect();
        if previous.len() == keys.len() && !previous.is_empty() {
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
                return Done::Already(previous);
            }
        }
        if self.dry_run {
            return Done::WouldPull(keys.iter().map(|k| self.entry(&r, k)).collect());
        }
        let sidecar = match &r.sidecar {
            Some(s) => Some(self.sidecar(&r, s).await),
            None => None,
        };
        if r.media.is_empty() {
            let mut e = self.entry(&r, keys.first().copied().unwrap_or_default());
            match sidecar {
                Some(Ok(out)) => {
                    e.status = Some(Status::NoMedia);
                    e.sidecar_sha256 = Some(out.sha256.clone());
                    e.outputs.push(out);
                }
                Some(Err((err, permission))) => {
                    e.error = Some(format!("sidecar: {err}"));
                    e.permission = permission;
                }
                None => {}
            }
            return Done::Pulled(vec![finish(e)]);
        }
        let mut entries = Vec::new();
        for media in &r.media {
            let mut e = self.entry(&r, &media.object.key);
            match &sidecar {
                Some(Ok(out)) => {
                    e.sidecar_sha256 = Some(out.sha256.clone());
                    e.outputs.push(out.clone());
                }
                Some(Err((err, permission))) => {
                    e.error = Some(format!("sidecar: {err}"));
                    e.permission = *permission;
                }
                None => {}
            }
            if let Err(err) = self.media(&r, media, &mut e).await {
                e.permission = crate::exit::is_permission(&err);
                e.error = Some(match e.error.take() {
                    Some(first) => format!("{first}; {err:#}"),
                    None => format!("{err:#}"),
                });
            }
            entries.push(finish(e));
        }
        Done::Pulled(entries)
    }

    async fn sidecar(
        &self,
        r: &Recording,
        s: &gcrec_fetch::source::ObjectSummary,
    ) -> Result<OutputFile, (String, bool)> {
        let go = async {
            let dest =
                outpath::destination(self.layout, &self.out, &r.conversation_id, &s.key, false)?;
            self.claim(&dest)?;
            self.sweeper.sweep(&dest);
            let copied = copy_object(
                self.source.clone(),
                s.key.clone(),
                Some(s.size),
                dest.clone(),
                self.ctx.clone(),
            )
            .await?;
            Ok::<_, anyhow::Error>(self.output(
                &dest,
                copied.downloaded.size,
                copied.downloaded.sha256,
            ))
        };
        go.await
            .map_err(|e: anyhow::Error| (format!("{e:#}"), crate::exit::is_permission(&e)))
    }

    async fn media(
        &self,
        r: &Recording,
        media: &gcrec_fetch::catalog::MediaFile,
        e: &mut Entry,
    ) -> Result<()> {
        let key = &media.object.key;
        let dest = outpath::destination(self.layout, &self.out, &r.conversation_id, key, true)?;
        self.claim(&dest)?;
        self.sweeper.sweep(&dest);
        let keep = if self.keep_encrypted {
            let path = outpath::kept(&self.out, key)?;
            self.sweeper.sweep(&path);
            Some(path)
        } else {
            None
        };
        let job = ObjectJob {
            key: key.clone(),
            listed_size: Some(media.object.size),
            instruction: media.instruction.as_ref().map(|i| i.key.clone()),
            destination: dest.clone(),
            keep_encrypted: keep.clone(),
        };
        let d = decrypt_object(self.source.clone(), job, self.ctx.clone()).await?;
        e.version_id = d.info.version_id.clone();
        e.etag = d.info.etag.clone();
        e.size = Some(d.info.size);
        e.last_modified = d.info.last_modified;
        e.sse = Some(d.info.sse.clone());
        e.checked = d.downloaded.checked.clone();
        e.encryption = Some(d.outcome.format.clone());
        e.opened_with = d.outcome.opened_with.clone();
        e.sha256_downloaded = Some(d.downloaded.sha256.clone());
        e.sha256_plaintext = Some(d.plaintext_sha256.clone());
        e.plaintext_size = Some(d.outcome.plaintext_bytes);
        e.outputs.insert(
            0,
            self.output(&dest, d.outcome.plaintext_bytes, d.plaintext_sha256),
        );
        if let Some(path) = keep {
            e.outputs
                .push(self.output(&path, d.downloaded.size, d.downloaded.sha256));
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

/// Counts for the summary.
#[derive(Debug, Default, serde::Serialize)]
struct Totals {
    pulled: u64,
    already: u64,
    /// Sidecars whose media is not in the export (copied, reported).
    sidecars_without_media: u64,
    would_pull: u64,
    failed: u64,
    unchecked_not_pulled: u64,
    skipped_keys: u64,
    bytes_downloaded: u64,
    bytes_written: u64,
}

pub async fn run(global: &GlobalArgs, args: PullArgs) -> Result<Outcome> {
    let started = Utc::now();
    let clock = Instant::now();
    // Ctrl-C from the start: before any work, it simply ends the run.
    let cancel: Arc<AtomicBool> = Arc::default();
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let (cancel, interrupted) = (cancel.clone(), interrupted.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::SeqCst);
                cancel.store(true, Ordering::SeqCst);
                eprintln!("\ngcrec: interrupted: finishing up (Ctrl-C again to stop at once)");
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(i32::from(crate::exit::INTERRUPTED));
                }
            }
        });
    }
    let mut filter = filters::build(&args.filter)?;
    let shard = shard(&args)?;
    filter.shard = shard;
    // A bag pulls into DIR/data and keeps its manifest beside the payload, as a tag file.
    let (out_dir, manifest_dir) = match (&args.bag, &args.out) {
        (Some(bag), _) => (bag.join(crate::bag::DATA), bag.clone()),
        (None, Some(out)) => (out.clone(), out.clone()),
        (None, None) => return Err(UsageError("give --out DIR or --bag DIR".into()).into()),
    };
    if args.bag.is_some() && args.layout != crate::cli::OutputLayout::Mirror {
        return Err(UsageError("--bag keeps the mirror layout; drop --layout".into()).into());
    }
    let keys = if args.dry_run {
        Keyring::new()
    } else {
        load_keyring(&args.keys)?
    };
    let opened = crate::aws::open_source(&args.source, &args.aws).await?;
    // An evidence bag records each object's legal hold and the caller's identity.
    let s3_for_custody = match (&args.bag, args.source.starts_with("s3://")) {
        (Some(_), true) => Some(crate::aws::open_s3(&args.source, &args.aws).await?.0),
        _ => None,
    };
    let counting = Arc::new(CountingSource::new(opened.source));
    let source: Arc<dyn ObjectSource> = counting.clone();
    let _lock = if args.dry_run {
        None
    } else {
        create_private_dir_all(&out_dir)
            .map_err(|e| UsageError(format!("{}: {e}", out_dir.display())))?;
        Some(DirLock::acquire(&manifest_dir)?)
    };
    let previous = manifest::load(&manifest_dir)?;
    let mut writer = if args.dry_run {
        None
    } else {
        Some(manifest::Writer::open(&manifest_dir)?)
    };
    let mut ctx = DecryptContext::new(
        keys,
        Some(Arc::new(LazyKms::new(args.aws.clone()))),
        DecryptOptions {
            allow_legacy_cbc: args.keys.allow_legacy_cbc,
        },
    );
    ctx.transfer = TransferOptions {
        part_threshold: args.transfer.part_threshold,
        part_size: args.transfer.part_size,
        parts_per_object: usize::from(args.transfer.parts_per_object),
        expect_sse: args.expect_sse.clone(),
    };
    ctx.budget = ByteBudget::new(args.transfer.max_buffer);
    ctx.cancel = cancel.clone();
    let ctx = Arc::new(ctx);
    let progress = Progress::new(global.quiet);
    let follower = progress.follow(ctx.received.clone());

    // The listing runs ahead of the downloads.
    let (tx, rx) = mpsc::channel::<Result<Recording, String>>(LISTING_AHEAD);
    let scan_options = ScanOptions {
        base_prefix: opened.base_prefix,
        filter,
        read_all_metadata: false,
        sidecar_cap: args.max_sidecar_bytes,
        concurrency: 32,
    };
    let include_unchecked = args.include_unchecked;
    let listing = {
        let source = source.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut skipped = 0u64;
            let mut unchecked = 0u64;
            let mut events = std::pin::pin!(scan(source, scan_options));
            while let Some(event) = events.next().await {
                let r = match event {
                    Ok(CatalogEvent::Recording(r)) => r,
                    Ok(CatalogEvent::Unchecked(r)) if include_unchecked => r,
                    Ok(CatalogEvent::Unchecked(_)) => {
                        unchecked += 1;
                        continue;
                    }
                    Ok(CatalogEvent::Skipped(_)) => {
                        skipped += 1;
                        continue;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("{e:#}"))).await;
                        break;
                    }
                };
                let bytes: u64 = r.media.iter().map(|m| m.object.size).sum::<u64>()
                    + r.sidecar.as_ref().map_or(0, |s| s.size);
                progress.add_total(r.media.len().max(1) as u64, bytes);
                if tx.send(Ok(*r)).await.is_err() {
                    break;
                }
            }
            (skipped, unchecked)
        })
    };

    let run = Arc::new(Run {
        source: source.clone(),
        out: out_dir.clone(),
        layout: args.layout,
        keep_encrypted: args.keep_encrypted,
        verify_existing: args.verify_existing,
        dry_run: args.dry_run,
        previous,
        ctx: ctx.clone(),
        sweeper: Sweeper::default(),
        taken: Mutex::default(),
    });
    let listing_failure: Mutex<Option<String>> = Mutex::default();
    let work = tokio_stream_from(rx)
        .take_while(|_| {
            let go = !cancel.load(Ordering::SeqCst);
            async move { go }
        })
        .filter_map(|item| {
            let item = match item {
                Ok(r) => Some(r),
                Err(e) => {
                    if let Ok(mut slot) = listing_failure.lock() {
                        *slot = Some(e);
                    }
                    None
                }
            };
            async move { item }
        })
        .map(|r| run.clone().recording(r))
        .buffer_unordered(usize::from(args.jobs));
    let mut work = std::pin::pin!(work);

    let mut out = Out::stdout();
    let mut totals = Totals::default();
    let mut failures: Vec<String> = Vec::new();
    let mut permission = false;
    while let Some(done) = work.next().await {
        let (status, entries) = match done {
            Done::Pulled(e) => ("pulled", e),
            Done::Already(e) => ("already", e),
            Done::WouldPull(e) => ("would_pull", e),
        };
        for e in entries {
            let interrupted_here = interrupted.load(Ordering::SeqCst)
                && e.error
                    .as_deref()
                    .is_some_and(|m| m.contains("interrupted"));
            if interrupted_here {
                // Not a failure of the recording: the next run picks it up.
                continue;
            }
            let failed = e.status == Some(Status::Failed);
            if e.status == Some(Status::NoMedia) {
                totals.sidecars_without_media += 1;
                if global.verbose > 0 {
                    progress.println(&format!(
                        "note: {}: a sidecar without its media (copied; reported in the manifest)",
                        e.key
                    ));
                }
            }
            match (status, failed) {
                (_, true) => {
                    totals.failed += 1;
                    let reason = e.error.clone().unwrap_or_default();
                    permission |= e.permission;
                    progress.println(&format!("gcrec: failed: {}: {reason}", e.source));
                    failures.push(format!("{}: {reason}", e.key));
                }
                ("pulled", false) if e.status == Some(Status::Ok) => {
                    totals.pulled += 1;
                    totals.bytes_downloaded += e.size.unwrap_or_default();
                    totals.bytes_written += e.outputs.iter().map(|o| o.size).sum::<u64>();
                    if global.verbose > 0 && !args.json {
                        progress.println(&format!(
                            "{} ({}{})",
                            e.outputs.first().map_or("", |o| o.path.as_str()),
                            e.encryption.as_deref().unwrap_or_default(),
                            e.opened_with
                                .as_deref()
                                .map(|k| format!(", key {k}"))
                                .unwrap_or_default()
                        ));
                    }
                }
                ("already", false) if e.status == Some(Status::Ok) => totals.already += 1,
                ("pulled" | "already", false) => {}
                _ => {
                    totals.would_pull += 1;
                    if !args.json {
                        out.line(&e.key)?;
                    }
                }
            }
            if status == "pulled"
                && let Some(w) = writer.as_mut()
            {
                w.append(&Line::Recording(Box::new(e.clone())))?;
            }
            if args.json {
                let mut value = serde_json::to_value(&e)?;
                if let Some(map) = value.as_object_mut() {
                    map.insert("type".into(), json!("recording"));
                    map.insert(
                        "outcome".into(),
                        json!(if failed { "failed" } else { status }),
                    );
                }
                out.line(&value.to_string())?;
            }
            progress.finished(totals.failed);
        }
    }
    let listing_error = listing_failure.lock().ok().and_then(|mut e| e.take());
    let was_interrupted = interrupted.load(Ordering::SeqCst);
    let (skipped, unchecked) = if was_interrupted {
        listing.abort();
        (0, 0)
    } else {
        listing.await.unwrap_or((0, 0))
    };
    totals.skipped_keys = skipped;
    totals.unchecked_not_pulled = unchecked;
    if let Some(f) = follower {
        f.abort();
    }
    progress.finish();
    let finished = Utc::now();
    let requests = counting.counts();
    let summary = json!({
        "tool": format!("gcrec {}", env!("CARGO_PKG_VERSION")),
        "command": command_line(),
        "source": source.uri(""),
        "out": out_dir,
        "started_at": started,
        "finished_at": finished,
        "duration_seconds": clock.elapsed().as_secs_f64(),
        "interrupted": was_interrupted,
        "listing_error": listing_error,
        "dry_run": args.dry_run,
        "shard": shard.map(|s| format!("{}/{}", s.index, s.count)),
        "counts": totals,
        "requests": {"list": requests.list, "head": requests.head, "get": requests.get},
        "peak_rss_bytes": peak_rss(),
    });
    if let Some(w) = writer.as_mut() {
        w.append(&Line::Run(Box::new(summary.clone())))?;
        w.sync()?;
    }
    if let (Some(bag), false, false) = (&args.bag, args.dry_run, was_interrupted) {
        let entries = manifest::load(&manifest_dir)?;
        let caller = match &s3_for_custody {
            Some(_) => crate::aws::caller_identity(&args.aws).await,
            None => None,
        };
        let holds = match &s3_for_custody {
            Some(s3) => legal_holds(s3, &entries).await,
            None => None,
        };
        let command = command_line();
        crate::bag::finish(
            bag,
            &entries,
            &crate::bag::BagRun {
                matter: args.matter.as_deref().unwrap_or_default(),
                organization: &args.organization,
                source: &source.uri(""),
                command: &command,
                started,
                finished,
                caller,
                holds,
                counts: summary["counts"].clone(),
            },
        )
        .with_context(|| format!("writing the bag in {}", bag.display()))?;
        if !global.quiet {
            eprintln!(
                "bag written: {} (matter {})",
                bag.display(),
                args.matter.as_deref().unwrap_or_default()
            );
        }
    }
    if args.json {
        let mut s = summary.clone();
        if let Some(map) = s.as_object_mut() {
            map.insert("type".into(), json!("summary"));
        }
        out.line(&s.to_string())?;
    }
    out.flush()?;
    if !global.quiet {
        if let Some(e) = &listing_error {
            eprintln!("gcrec: the listing failed part-way: {e}");
        }
        if !failures.is_empty() {
            eprintln!("failed recordings:");
            for f in failures.iter().take(50) {
                eprintln!("  {f}");
            }
            if failures.len() > 50 {
                eprintln!("  … and {} more (see the manifest)", failures.len() - 50);
            }
        }
        let verb = if args.dry_run { "would pull" } else { "pulled" };
        let n = if args.dry_run {
            totals.would_pull
        } else {
            totals.pulled
        };
        eprintln!(
            "{n} {verb}, {} already present, {} failed{}{}{} — {} downloaded in {:.1}s{}",
            totals.already,
            totals.failed,
            match totals.sidecars_without_media {
                0 => String::new(),
                n => format!(", {n} sidecar(s) without media"),
            },
            if unchecked > 0 {
                format!(", {unchecked} unchecked not pulled (--include-unchecked)")
            } else {
                String::new()
            },
            if skipped > 0 {
                format!(", {skipped} keys skipped")
            } else {
                String::new()
            },
            human_bytes(totals.bytes_downloaded),
            clock.elapsed().as_secs_f64(),
            if args.dry_run {
                String::new()
            } else {
                format!(
                    "; manifest {}",
                    manifest_dir.join(manifest::MANIFEST_NAME).display()
                )
            },
        );
        if was_interrupted {
            eprintln!("interrupted: re-run the same command to resume");
        }
    }
    Ok(if was_interrupted {
        Outcome::Interrupted
    } else if totals.failed == 0 && listing_error.is_none() {
        Outcome::Success
    } else if permission {
        Outcome::PermissionFailed
    } else {
        Outcome::SomeFailed
    })
}

/// The legal hold of every pulled object's version, when the bucket has Object Lock.
async fn legal_holds(
    s3: &gcrec_fetch::source::S3Source,
    entries: &BTreeMap<String, Entry>,
) -> Option<BTreeMap<String, String>> {
    if !s3.object_lock_enabled().await.unwrap_or(false) {
        return None;
    }
    let mut holds = BTreeMap::new();
    for e in entries.values() {
        let status = match s3.legal_hold(&e.key, e.version_id.as_deref()).await {
            Ok(true) => "ON".to_owned(),
            Ok(false) => "OFF".to_owned(),
            Err(err) => format!("unknown: {err}"),
        };
        holds.insert(e.key.clone(), status);
    }
    Some(holds)
}

/// The process's peak resident set (Linux `VmHWM`), for the run summary.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A stream over a channel's receiver.
fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
