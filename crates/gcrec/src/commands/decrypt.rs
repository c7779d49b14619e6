//! `gcrec decrypt`: render `gcrec_pull::files` (decrypt files or a local export
//! directory, layout kept, sidecars copied verbatim).

use std::sync::Arc;

use anyhow::Result;
use futures::StreamExt;
use gcrec_pull::files;
use gcrec_pull::object::DecryptContext;
use serde_json::json;

use crate::aws::LazyKms;
use crate::cli::{DecryptArgs, GlobalArgs};
use crate::exit::{Outcome, with_hint};
use crate::keyring::load_keyring;
use crate::output::Out;

pub async fn run(global: &GlobalArgs, args: DecryptArgs) -> Result<Outcome> {
    let loaded = load_keyring(&args.keys)?;
    let lax = loaded.readable_by_others.clone();
    let keys = loaded.keyring;
    let plan = files::plan(&args.paths, &args.out).await?;
    let mut ctx = DecryptContext::new(
        keys,
        Some(Arc::new(LazyKms::new(args.aws.clone()))),
        args.keys.decrypt_options(),
    );
    args.content.apply(&mut ctx);
    gcrec_pull::release::create_private_dir_all(&args.out)
        .map_err(|e| crate::exit::UsageError(format!("{}: {e}", args.out.display())))?;
    let skipped = plan.skipped;
    let mut results = std::pin::pin!(files::run(plan.jobs, Arc::new(ctx), usize::from(args.jobs)));
    let mut out = Out::stdout();
    let (mut ok, mut failed, mut permission) = (0u64, 0u64, false);
    while let Some(o) = results.next().await {
        match o.result {
            Ok(done) => {
                ok += 1;
                if args.json {
                    out.line(&json!({"type": "file", "key": o.key, "status": "ok", "output": o.destination, "format": done.format, "opened_with": done.opened_with, "authenticated": done.authenticated, "media": done.media, "bytes": done.bytes, "sha256": done.sha256}).to_string())?;
                } else if !global.quiet {
                    let with = done
                        .opened_with
                        .map(|k| format!(", key {k}"))
                        .unwrap_or_default();
                    let mut warning = if done.authenticated == Some(false) {
                        "; unauthenticated: nothing proves it was not altered".to_owned()
                    } else {
                        String::new()
                    };
                    if let Some(m) = done.media.as_ref().filter(|m| m.has_problems()) {
                        warning.push_str(&format!("; media problems: {}", m.problems.join("; ")));
                    }
                    out.line(&format!(
                        "{} ({}{with}{warning})",
                        o.destination.display(),
                        done.format
                    ))?;
                }
            }
            Err(e) => {
                failed += 1;
                permission |= e.is_permission();
                let reason = format!("{}: {}", o.uri, with_hint(&e.to_string(), e.hint()));
                if args.json {
                    out.line(
                        &json!({"type": "file", "key": o.key, "status": "failed", "error": reason})
                            .to_string(),
                    )?;
                }
                crate::output::diagnostic("failed", &format!("gcrec: failed: {reason}"));
            }
        }
    }
    if args.json {
        out.line(
            &json!({"type": "summary", "ok": ok, "failed": failed, "skipped": skipped.len()})
                .to_string(),
        )?;
    }
    out.flush()?;
    if !global.quiet {
        if global.verbose > 0 {
            for s in &skipped {
                eprintln!(
                    "skipped {} ({})",
                    s.key,
                    s.reason.as_str().replace('_', " ")
                );
            }
        }
        crate::output::diagnostic(
            "summary",
            &format!(
                "{ok} written to {}, {failed} failed{}",
                args.out.display(),
                if skipped.is_empty() {
                    String::new()
                } else {
                    format!(", {} keys skipped (-v lists them)", skipped.len())
                }
            ),
        );
    }
    crate::keyring::warn_readable_by_others(&lax, global.quiet);
    Ok(Outcome::of_failures(failed, permission))
}
