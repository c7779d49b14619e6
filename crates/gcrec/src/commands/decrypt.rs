//! `gcrec decrypt`: decrypt files or a local export directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use gcrec_decrypt::object::DecryptOptions;
use gcrec_fetch::catalog::{CatalogEvent, ScanOptions, scan};
use gcrec_fetch::layout::INSTRUCTION_SUFFIX;
use gcrec_fetch::source::{LocalSource, ObjectSource, open_source};
use serde_json::json;

use crate::aws::LazyKms;
use crate::cli::{DecryptArgs, GlobalArgs};
use crate::exit::{Outcome, UsageError};
use crate::keyring::load_keyring;
use crate::outpath::{mirror, plaintext_name};
use crate::output::Out;
use crate::pipeline::{DecryptContext, ObjectJob, copy_object, decrypt_object};

/// One unit of work.
enum Work {
    Decrypt(Arc<dyn ObjectSource>, ObjectJob),
    Copy(Arc<dyn ObjectSource>, String, u64, PathBuf),
}

impl Work {
    fn key(&self) -> &str {
        match self {
            Work::Decrypt(_, job) => &job.key,
            Work::Copy(_, key, ..) => key,
        }
    }
    fn destination(&self) -> &Path {
        match self {
            Work::Decrypt(_, job) => &job.destination,
            Work::Copy(.., dest) => dest,
        }
    }
}

async fn plan_directory(
    path: &Path,
    out: &Path,
    work: &mut Vec<Work>,
    skipped: &mut Vec<String>,
) -> Result<()> {
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
            CatalogEvent::Recording(r) | CatalogEvent::Unchecked(r) => {
                for media in &r.media {
                    work.push(Work::Decrypt(
                        source.clone(),
                        ObjectJob {
                            key: media.object.key.clone(),
                            listed_size: Some(media.object.size),
                            instruction: media.instruction.as_ref().map(|i| i.key.clone()),
                            destination: mirror(out, &media.object.key)?,
                            keep_encrypted: None,
                        },
                    ));
                }
                for sidecar in r.sidecar.iter().chain(&r.extra_sidecars) {
                    work.push(Work::Copy(
                        source.clone(),
                        sidecar.key.clone(),
                        sidecar.size,
                        mirror(out, &sidecar.key)?,
                    ));
                }
            }
            CatalogEvent::Skipped(s) => skipped.push(format!(
                "{} ({})",
                s.key,
                s.reason.as_str().replace('_', " ")
            )),
        }
    }
    Ok(())
}

fn plan_file(path: &Path, out: &Path, work: &mut Vec<Work>) -> Result<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| UsageError(format!("{}: not a file name gcrec can use", path.display())))?
        .to_owned();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let source: Arc<dyn ObjectSource> = Arc::new(LocalSource::open(dir)?);
    let instruction = format!("{name}{INSTRUCTION_SUFFIX}");
    let instruction = dir.join(&instruction).is_file().then_some(instruction);
    work.push(Work::Decrypt(
        source,
        ObjectJob {
            key: name.clone(),
            listed_size: None,
            instruction,
            destination: out.join(plaintext_name(&name)),
            keep_encrypted: None,
        },
    ));
    Ok(())
}

pub async fn run(global: &GlobalArgs, args: DecryptArgs) -> Result<Outcome> {
    let keys = load_keyring(&args.keys)?;
    let mut work = Vec::new();
    let mut skipped = Vec::new();
    for path in &args.paths {
        let meta =
            std::fs::metadata(path).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            plan_directory(path, &args.out, &mut work, &mut skipped).await?;
        } else {
            plan_file(path, &args.out, &mut work)?;
        }
    }
    // Two inputs must never race for one output (`x.opus` and `x.opus.pgp`).
    let mut seen = BTreeSet::new();
    for w in &work {
        if !seen.insert(w.destination().to_path_buf()) {
            return Err(UsageError(format!(
                "two inputs would both be written to {}; decrypt them into different --out directories",
                w.destination().display()
            ))
            .into());
        }
    }
    let ctx = Arc::new(DecryptContext::new(
        keys,
        Some(Arc::new(LazyKms::new(args.aws.clone()))),
        DecryptOptions {
            allow_legacy_cbc: args.keys.allow_legacy_cbc,
        },
    ));
    let results = futures::stream::iter(work)
        .map(|w| {
            let ctx = ctx.clone();
            async move {
                let key = w.key().to_owned();
                let dest = w.destination().to_path_buf();
                let result = match w {
                    Work::Decrypt(source, job) => {
                        let uri = source.uri(&job.key);
                        decrypt_object(source, job, ctx)
                            .await
                            .map(|d| {
                                (
                                    d.outcome.format,
                                    d.outcome.opened_with,
                                    d.outcome.plaintext_bytes,
                                    d.plaintext_sha256,
                                )
                            })
                            .with_context(|| uri)
                    }
                    Work::Copy(source, key, size, dest) => {
                        let uri = source.uri(&key);
                        copy_object(source, key, Some(size), dest, ctx)
                            .await
                            .map(|c| {
                                (
                                    "sidecar (copied verbatim)".to_owned(),
                                    None,
                                    c.downloaded.size,
                                    c.downloaded.sha256,
                                )
                            })
                            .with_context(|| uri)
                    }
                };
                (key, dest, result)
            }
        })
        .buffered(usize::from(args.jobs));
    let mut results = std::pin::pin!(results);
    let mut out = Out::stdout();
    let (mut ok, mut failed, mut permission) = (0u64, 0u64, false);
    while let Some((key, dest, result)) = results.next().await {
        match result {
            Ok((format, opened_with, bytes, sha256)) => {
                ok += 1;
                if args.json {
                    out.line(&json!({"type": "file", "key": key, "status": "ok", "output": dest, "format": format, "opened_with": opened_with, "bytes": bytes, "sha256": sha256}).to_string())?;
                } else if !global.quiet {
                    let with = opened_with
                        .map(|k| format!(", key {k}"))
                        .unwrap_or_default();
                    out.line(&format!("{} ({format}{with})", dest.display()))?;
                }
            }
            Err(e) => {
                failed += 1;
                permission |= crate::exit::is_permission(&e);
                let reason = format!("{e:#}");
                if args.json {
                    out.line(
                        &json!({"type": "file", "key": key, "status": "failed", "error": reason})
                            .to_string(),
                    )?;
                }
                eprintln!("gcrec: failed: {reason}");
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
                eprintln!("skipped {s}");
            }
        }
        eprintln!(
            "{ok} written to {}, {failed} failed{}",
            args.out.display(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(", {} keys skipped (-v lists them)", skipped.len())
            }
        );
    }
    Ok(match (failed, permission) {
        (0, _) => Outcome::Success,
        (_, true) => Outcome::PermissionFailed,
        _ => Outcome::SomeFailed,
    })
}
