//! `gcrec hold`: render `gcrec_pull::hold` (set, release or report the S3 Object Lock
//! legal hold on every object of each matching recording, version by version).

use std::sync::Arc;

use anyhow::Result;
use gcrec_fetch::scan::ScanOptions;
use gcrec_fetch::source::{CountingSource, ObjectSource};
use gcrec_pull::hold::{HoldError, HoldMode, HoldOutcome, run_holds};
use serde_json::json;

use crate::cli::{GlobalArgs, HoldArgs};
use crate::exit::{Outcome, UsageError};
use crate::filters;
use crate::output::Out;

fn on_off(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "ON",
        Some(false) => "OFF",
        None => "-",
    }
}

pub async fn run(global: &GlobalArgs, args: HoldArgs) -> Result<Outcome> {
    let mode = match (args.on, args.off) {
        (true, _) => HoldMode::On,
        (_, true) => HoldMode::Off,
        _ => HoldMode::Status,
    };
    let filter = filters::build(&args.filter)?;
    let asked = filter.clone();
    let mut tracker = filter.wanted.as_ref().map(|w| w.tracker());
    if !args.source.starts_with("s3://") {
        return Err(UsageError(format!(
            "{}: this command works on S3 buckets only (s3://BUCKET[/PREFIX])",
            args.source
        ))
        .into());
    }
    let opened = crate::aws::open_source(&args.source, &args.aws).await?;
    let counting = Arc::new(CountingSource::new(opened.source));
    let source: Arc<dyn ObjectSource> = counting.clone();
    let options = ScanOptions {
        base_prefix: opened.base_prefix,
        filter,
        read_all_metadata: false,
        ..ScanOptions::default()
    };
    let mut out = Out::stdout();
    let mut write_error = None;
    let progress = global.progress("objects");
    let follower = progress.follow(std::sync::Arc::default());
    let mut on_object = |o: &HoldOutcome| {
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
                    serde_json::to_value(o.action)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                        .replace('_', ""),
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
    let totals = match run_holds(
        source,
        options,
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
        Err(e) => return Err(anyhow::Error::new(e).context(format!("listing {}", args.source))),
    };
    if let Some(f) = follower {
        f.abort();
    }
    progress.finish();
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let requests = counting.counts();
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
