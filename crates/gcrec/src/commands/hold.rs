//! `gcrec hold`: set, release or report the S3 Object Lock legal hold on every matching
//! recording (media, S3EC instruction file, sidecars), version by version.

use std::sync::Arc;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use gcrec_fetch::catalog::{CatalogEvent, ScanOptions, scan};
use gcrec_fetch::source::{GetRequest, ObjectSource, RetryPolicy, RetryingSource, S3Source};
use serde_json::json;

use crate::cli::{GlobalArgs, HoldArgs};
use crate::exit::{Outcome, UsageError};
use crate::filters;
use crate::output::Out;

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    /// `--status`: reported only.
    Status,
    /// The hold was changed.
    Changed,
    /// The hold already was as asked.
    Already,
    /// `--dry-run`: would be changed.
    WouldChange,
    /// Could not be read or changed.
    Failed,
}

struct Report {
    key: String,
    version_id: Option<String>,
    before: Option<bool>,
    after: Option<bool>,
    action: Action,
    error: Option<String>,
    permission: bool,
}

async fn one(s3: Arc<S3Source>, key: String, want: Option<bool>, dry_run: bool) -> Report {
    let mut report = Report {
        key: key.clone(),
        version_id: None,
        before: None,
        after: None,
        action: Action::Failed,
        error: None,
        permission: false,
    };
    let result: Result<(), gcrec_fetch::source::SourceError> = async {
        // Holds apply to versions: pin the one the listing saw.
        let info = s3.head(&key, &GetRequest::default()).await?;
        report.version_id = info.version_id.clone();
        let version = info.version_id.as_deref();
        let before = s3.legal_hold(&key, version).await?;
        report.before = Some(before);
        report.action = match want {
            None => Action::Status,
            Some(w) if w == before => Action::Already,
            Some(_) if dry_run => Action::WouldChange,
            Some(w) => {
                s3.set_legal_hold(&key, version, w).await?;
                report.after = Some(s3.legal_hold(&key, version).await?);
                Action::Changed
            }
        };
        if report.after.is_none() {
            report.after = Some(before);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        report.action = Action::Failed;
        report.permission = e.is_permission();
        report.error = Some(e.to_string());
    }
    report
}

fn on_off(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "ON",
        Some(false) => "OFF",
        None => "-",
    }
}

pub async fn run(global: &GlobalArgs, args: HoldArgs) -> Result<Outcome> {
    let want = match (args.on, args.off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let filter = filters::build(&args.filter)?;
    let (s3, base_prefix) = crate::aws::open_s3(&args.source, &args.aws).await?;
    if !s3.object_lock_enabled().await.with_context(|| {
        format!(
            "reading the Object Lock configuration of s3://{}",
            s3.bucket()
        )
    })? {
        return Err(UsageError(format!(
            "s3://{} does not have S3 Object Lock enabled, so it cannot hold objects. Object \
             Lock needs versioning; enable it with `aws s3api put-object-lock-configuration \
             --bucket {} --object-lock-configuration ObjectLockEnabled=Enabled` (irreversible) \
             — see docs/legal-hold.md",
            s3.bucket(),
            s3.bucket()
        ))
        .into());
    }
    let listing: Arc<dyn ObjectSource> =
        Arc::new(RetryingSource::new(s3.clone(), RetryPolicy::default()));
    let options = ScanOptions {
        base_prefix,
        filter,
        read_all_metadata: false,
        ..ScanOptions::default()
    };
    let keys = scan(listing, options)
        .try_filter_map(|event| async move {
            Ok(match event {
                CatalogEvent::Recording(r) => {
                    let mut keys = Vec::new();
                    for m in &r.media {
                        keys.push(m.object.key.clone());
                        keys.extend(m.instruction.as_ref().map(|i| i.key.clone()));
                    }
                    keys.extend(
                        r.sidecar
                            .iter()
                            .chain(&r.extra_sidecars)
                            .map(|s| s.key.clone()),
                    );
                    Some(futures::stream::iter(
                        keys.into_iter()
                            .map(Ok::<String, gcrec_fetch::source::SourceError>),
                    ))
                }
                _ => None,
            })
        })
        .try_flatten();
    let reports = keys
        .map_ok(|key| {
            let s3 = s3.clone();
            async move { Ok(one(s3, key, want, args.dry_run).await) }
        })
        .try_buffered(usize::from(args.jobs));
    let mut reports = std::pin::pin!(reports);
    let mut out = Out::stdout();
    let (mut changed, mut already, mut would, mut failed, mut on, mut total) = (0, 0, 0, 0, 0, 0);
    let mut permission = false;
    while let Some(r) = reports
        .try_next()
        .await
        .with_context(|| format!("listing {}", args.source))?
    {
        total += 1;
        match r.action {
            Action::Changed => changed += 1,
            Action::Already => already += 1,
            Action::WouldChange => would += 1,
            Action::Failed => failed += 1,
            Action::Status => {}
        }
        on += u64::from(r.after == Some(true));
        permission |= r.permission;
        if args.json {
            out.line(
                &json!({
                    "type": "object",
                    "key": r.key,
                    "version_id": r.version_id,
                    "hold_before": r.before.map(|b| on_off(Some(b))),
                    "hold_after": r.after.map(|b| on_off(Some(b))),
                    "action": r.action,
                    "error": r.error,
                })
                .to_string(),
            )?;
        } else {
            match &r.error {
                Some(e) => eprintln!("gcrec: failed: {e}"),
                None => out.line(&format!(
                    "{:<4} {:<13} {}{}",
                    on_off(r.after),
                    format!("{:?}", r.action).to_lowercase(),
                    r.key,
                    r.version_id
                        .as_deref()
                        .map(|v| format!(" (version {v})"))
                        .unwrap_or_default()
                ))?,
            }
        }
    }
    if args.json {
        out.line(
            &json!({
                "type": "summary",
                "objects": total,
                "held": on,
                "changed": changed,
                "already": already,
                "would_change": would,
                "failed": failed,
                "dry_run": args.dry_run,
            })
            .to_string(),
        )?;
    }
    out.flush()?;
    if !global.quiet {
        eprintln!(
            "{total} objects: {on} under legal hold; {changed} changed, {already} already so, {} failed{}",
            failed,
            if args.dry_run {
                format!(" ({would} would change: dry run, nothing changed)")
            } else {
                String::new()
            }
        );
    }
    Ok(match (failed, permission) {
        (0, _) => Outcome::Success,
        (_, true) => Outcome::PermissionFailed,
        _ => Outcome::SomeFailed,
    })
}
