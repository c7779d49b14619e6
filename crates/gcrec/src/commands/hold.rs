//! `gcrec hold`: render `gcrec_pull::hold` (set, release or report the S3 Object Lock
//! legal hold on every object of each matching recording, version by version).

use std::sync::Arc;

use anyhow::Result;
use gcrec_fetch::scan::{ScanOptions, scan_recordings};
use gcrec_fetch::source::{CountingSource, ObjectSource};
use gcrec_pull::hold::{HoldError, HoldMode, HoldOutcome, run_holds};
use serde_json::json;

use crate::cli::{GlobalArgs, HoldArgs};
use crate::exit::{Outcome, UsageError};
use crate::filters;
use crate::output::Out;

/// A new file, `0600` (outputs are private), replacing an earlier one but never a link.
fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// The files `--batch-manifest DIR` writes: the CSV manifest, streamed, and the job.
struct BatchManifest {
    dir: std::path::PathBuf,
    bucket: String,
    rows: std::io::BufWriter<std::fs::File>,
    objects: u64,
}

impl BatchManifest {
    fn create(dir: &std::path::Path, source: &str) -> Result<Self> {
        let (bucket, _) = gcrec_fetch::source::parse_s3_url(source)?;
        gcrec_pull::release::create_private_dir_all(dir)
            .map_err(|e| UsageError(format!("--batch-manifest {}: {e}", dir.display())))?;
        let file = private_file(&dir.join("manifest.csv"))?;
        Ok(Self {
            dir: dir.to_owned(),
            bucket,
            rows: std::io::BufWriter::new(file),
            objects: 0,
        })
    }

    fn add(&mut self, key: &str, version: Option<&str>) -> std::io::Result<()> {
        use std::io::Write;
        self.objects += 1;
        self.rows
            .write_all(gcrec_pull::hold::batch_manifest_row(&self.bucket, key, version).as_bytes())
    }

    fn finish(self, on: bool, account: Option<&str>, role: Option<&str>) -> Result<()> {
        use std::io::Write;
        let mut rows = self.rows;
        rows.flush()?;
        let job = gcrec_pull::hold::create_job_request(
            account.unwrap_or("REPLACE-WITH-ACCOUNT-ID"),
            &self.bucket,
            "gcrec-batch/manifest.csv",
            on,
            role.unwrap_or("arn:aws:iam::REPLACE-WITH-ACCOUNT-ID:role/REPLACE-WITH-BATCH-ROLE"),
            &format!(
                "gcrec legal hold {} on {} objects",
                if on { "ON" } else { "OFF" },
                self.objects
            ),
        );
        private_file(&self.dir.join("create-job.json"))?
            .write_all(serde_json::to_string_pretty(&job)?.as_bytes())?;
        eprintln!(
            "wrote {} ({} objects) and {}: upload the manifest to s3://{}/gcrec-batch/manifest.csv, put its ETag into the job, then `aws s3control create-job --cli-input-json file://{}` (docs/legal-hold.md)",
            self.dir.join("manifest.csv").display(),
            self.objects,
            self.dir.join("create-job.json").display(),
            self.bucket,
            self.dir.join("create-job.json").display(),
        );
        Ok(())
    }
}

fn on_off(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "ON",
        Some(false) => "OFF",
        None => "-",
    }
}

pub async fn run(global: &GlobalArgs, args: HoldArgs) -> Result<Outcome> {
    let mode = match (args.on, args.off, &args.batch_manifest) {
        (_, _, Some(_)) => HoldMode::Versions,
        (true, ..) => HoldMode::On,
        (_, true, _) => HoldMode::Off,
        _ => HoldMode::Status,
    };
    let resolved = crate::catalog::resolve(args.source.as_deref(), args.catalog.as_deref(), true)?;
    let source_name = resolved.source()?.to_owned();
    let mut batch = match &args.batch_manifest {
        Some(dir) => Some(BatchManifest::create(dir, &source_name)?),
        None => None,
    };
    let filter = filters::build(&args.filter)?;
    let asked = filter.clone();
    let mut tracker = filter.wanted.as_ref().map(|w| w.tracker());
    if !source_name.starts_with("s3://") {
        return Err(UsageError(format!(
            "{source_name}: this command works on S3 buckets only (s3://BUCKET[/PREFIX])"
        ))
        .into());
    }
    let inventory =
        crate::inventory::open(&args.inventory, &args.aws, &source_name, global.quiet).await?;
    let opened = crate::aws::open_source(&source_name, &args.aws).await?;
    let counting = Arc::new(CountingSource::new(opened.source));
    let source: Arc<dyn ObjectSource> = counting.clone();
    let options = ScanOptions {
        base_prefix: opened.base_prefix,
        filter,
        read_all_metadata: false,
        inventory,
        ..ScanOptions::default()
    };
    let mut out = Out::stdout();
    let mut write_error = None;
    let progress = global.progress("objects");
    let follower = progress.follow(std::sync::Arc::default());
    let mut on_object = |o: &HoldOutcome| {
        if let (Some(b), None) = (batch.as_mut(), &o.error)
            && let Err(e) = b.add(&o.key, o.version_id.as_deref())
        {
            write_error.get_or_insert(e);
        }
        if let (Some(t), gcrec_fetch::layout::ParsedKey::Export(k)) =
            (tracker.as_mut(), gcrec_fetch::layout::parse_key(&o.key))
        {
            t.found([
                k.recording_id.as_str(),
                k.conversation_id.as_str(),
                o.key.as_str(),
            ]);
        }
        progress.add_total(1, 0);
        progress.finished(o.error.is_some());
        let line = if args.json {
            Some(
                json!({
                    "type": "object",
                    "key": o.key,
                    "version_id": o.version_id,
                    "hold_before": o.before.map(|b| on_off(Some(b))),
                    "hold_after": o.after.map(|b| on_off(Some(b))),
                    "action": o.action,
                    "error": o.error.as_ref().map(ToString::to_string),
                })
                .to_string(),
            )
        } else {
            match &o.error {
                Some(e) => {
                    progress.note("failed", &format!("gcrec: failed: {e}"));
                    None
                }
                None => Some(format!(
                    "{:<4} {:<13} {}{}",
                    on_off(o.after),
                    o.action.as_str(),
                    o.key,
                    o.version_id
                        .as_deref()
                        .map(|v| format!(" (version {v})"))
                        .unwrap_or_default()
                )),
            }
        };
        if let Some(line) = line
            && let Err(e) = out.line(&line)
        {
            write_error.get_or_insert(e);
        }
    };
    let answer = resolved.recordings(&options.filter, gcrec_catalog::query::Sort::Time)?;
    let listed = source.clone();
    let recordings = move || answer.unwrap_or_else(|| scan_recordings(listed, options));
    let totals = match run_holds(
        source,
        recordings,
        mode,
        args.dry_run,
        usize::from(args.jobs),
        &mut on_object,
    )
    .await
    {
        Ok(t) => t,
        Err(HoldError::NoObjectLock(uri)) => {
            return Err(UsageError(format!(
                "{uri} does not have S3 Object Lock enabled, so it cannot hold objects. Object \
                 Lock needs versioning; enable it with `aws s3api put-object-lock-configuration \
                 --bucket BUCKET --object-lock-configuration ObjectLockEnabled=Enabled` \
                 (irreversible) — see docs/legal-hold.md"
            ))
            .into());
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("listing {source_name}"))),
    };
    if let Some(f) = follower {
        f.abort();
    }
    progress.finish();
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let requests = counting.counts();
    if let Some(b) = batch.take() {
        let account = crate::aws::caller_identity(&args.aws)
            .await
            .and_then(|who| who["account"].as_str().map(str::to_owned));
        b.finish(args.on, account.as_deref(), args.batch_role_arn.as_deref())?;
    }
    let missing = filters::report_missing(&asked, tracker.as_ref(), global.quiet);
    if args.json {
        out.line(
            &json!({
                "type": "summary",
                "objects": totals.objects,
                "held": totals.held,
                "changed": totals.changed,
                "already": totals.already,
                "would_change": totals.would_change,
                "failed": totals.failed,
                "dry_run": args.dry_run,
                "requests": requests,
            })
            .to_string(),
        )?;
    }
    out.flush()?;
    if !global.quiet {
        crate::output::diagnostic(
            "summary",
            &format!(
                "{} objects: {} under legal hold; {} changed, {} already so, {} failed{}",
                totals.objects,
                totals.held,
                totals.changed,
                totals.already,
                totals.failed,
                if args.dry_run {
                    format!(
                        " ({} would change: dry run, nothing changed)",
                        totals.would_change
                    )
                } else {
                    String::new()
                }
            ),
        );
    }
    // Entries of a recordings file that matched nothing: not everything asked was held.
    Ok(Outcome::of_failures(
        totals.failed + missing.len() as u64,
        totals.permission_failed,
    ))
}
