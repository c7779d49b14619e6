//! `gcrec decrypt`: decrypt files or a local export directory.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use gcrec_decrypt::keys::{KeyError, Keyring, Passphrases, inspect};
use gcrec_decrypt::object::DecryptOptions;
use gcrec_fetch::catalog::{CatalogEvent, ScanOptions, scan};
use gcrec_fetch::layout::INSTRUCTION_SUFFIX;
use gcrec_fetch::source::{LocalSource, ObjectSource, open_source};
use serde_json::json;

use crate::aws::LazyKms;
use crate::cli::{DecryptArgs, GlobalArgs, KeyArgs};
use crate::exit::{Outcome, UsageError};
use crate::output::Out;
use crate::passphrase;
use crate::pipeline::{DecryptContext, ObjectJob, copy_object, decrypt_object};

/// Suffixes of encrypted copies, dropped from output names.
const ENCRYPTED_SUFFIXES: [&str; 3] = [".pgp", ".gpg", ".asc"];

/// `rec.opus.pgp` → `rec.opus`.
pub fn plaintext_name(name: &str) -> &str {
    ENCRYPTED_SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s).filter(|rest| !rest.is_empty()))
        .unwrap_or(name)
}

/// File extensions `--key DIR` looks at.
const KEY_EXTENSIONS: [&str; 6] = ["asc", "gpg", "pgp", "pem", "key", "der"];

/// The key files a `--key` names: the file itself, or the key files in a directory
/// (public keys among them are passed over).
fn key_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| UsageError(format!("--key {}: {e}", path.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| KEY_EXTENSIONS.contains(&e))
        })
        .filter(|p| {
            // Public keys sit beside secret ones; they cannot decrypt anything.
            !matches!(inspect(p), Err(KeyError::Unrecognized { ref reason, .. }) if reason.contains("public key"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(UsageError(format!(
            "--key {}: the directory holds no key files",
            path.display()
        ))
        .into());
    }
    Ok(files)
}

/// Loads every `--key`, unlocking protected keys up front.
pub fn load_keyring(args: &KeyArgs) -> Result<Keyring> {
    let mut passphrases = Passphrases {
        given: passphrase::given(
            args.passphrase_env.as_deref(),
            args.passphrase_file.as_deref(),
        )?,
        prompt: Some(&passphrase::prompt),
    };
    let mut keys = Keyring::new();
    for path in &args.keys {
        for file in key_files(path)? {
            keys.load(&file, &mut passphrases)
                .map_err(|e| UsageError(e.to_string()))?;
        }
    }
    Ok(keys)
}

/// One unit of work.
enum Work {
    Decrypt(Arc<dyn ObjectSource>, ObjectJob),
    Copy(Arc<dyn ObjectSource>, String, PathBuf),
}

impl Work {
    fn key(&self) -> &str {
        match self {
            Work::Decrypt(_, job) => &job.key,
            Work::Copy(_, key, _) => key,
        }
    }
    fn destination(&self) -> &Path {
        match self {
            Work::Decrypt(_, job) => &job.destination,
            Work::Copy(_, _, dest) => dest,
        }
    }
}

/// The output path of a key under `out`: the key's segments (already checked safe by
/// the layout parser), with an encrypted suffix dropped from the file name.
fn destination(out: &Path, key: &str) -> PathBuf {
    let mut path = out.to_path_buf();
    let mut segments = key.split('/').peekable();
    while let Some(segment) = segments.next() {
        path.push(if segments.peek().is_none() {
            plaintext_name(segment)
        } else {
            segment
        });
    }
    path
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
                            instruction: media.instruction.as_ref().map(|i| i.key.clone()),
                            destination: destination(out, &media.object.key),
                        },
                    ));
                }
                for sidecar in r.sidecar.iter().chain(&r.extra_sidecars) {
                    work.push(Work::Copy(
                        source.clone(),
                        sidecar.key.clone(),
                        destination(out, &sidecar.key),
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
            instruction,
            destination: out.join(plaintext_name(&name)),
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
    let ctx = Arc::new(DecryptContext {
        keys,
        kms: Some(Arc::new(LazyKms::new(args.aws.clone()))),
        options: DecryptOptions {
            allow_legacy_cbc: args.keys.allow_legacy_cbc,
        },
    });
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
                            .map(|o| (o.format, o.opened_with, o.plaintext_bytes))
                            .with_context(|| uri)
                    }
                    Work::Copy(source, key, dest) => {
                        let uri = source.uri(&key);
                        copy_object(source, key, dest)
                            .await
                            .map(|n| ("sidecar (copied verbatim)".to_owned(), None, n))
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
            Ok((format, opened_with, bytes)) => {
                ok += 1;
                if args.json {
                    out.line(&json!({"type": "file", "key": key, "status": "ok", "output": dest, "format": format, "opened_with": opened_with, "bytes": bytes}).to_string())?;
                } else if !global.quiet {
                    let with = opened_with
                        .map(|k| format!(", key {k}"))
                        .unwrap_or_default();
                    out.line(&format!("{} ({format}{with})", dest.display()))?;
                }
            }
            Err(e) => {
                failed += 1;
                permission |= e.chain().any(|c| {
                    c.downcast_ref::<gcrec_decrypt::object::DecryptError>()
                        .is_some_and(|d| d.is_permission())
                });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_suffixes_are_dropped() {
        assert_eq!(plaintext_name("r.opus.pgp"), "r.opus");
        assert_eq!(plaintext_name("r.zip.asc"), "r.zip");
        assert_eq!(plaintext_name("r.opus"), "r.opus");
        assert_eq!(plaintext_name(".pgp"), ".pgp");
        assert_eq!(
            destination(Path::new("/o"), "a/b/r.opus.gpg"),
            PathBuf::from("/o/a/b/r.opus")
        );
    }
}
