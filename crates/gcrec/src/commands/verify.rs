//! `gcrec verify DIR`: re-hash a pull output against its manifest and report missing,
//! extra and altered files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use futures::StreamExt;
use serde_json::json;

use crate::cli::{GlobalArgs, VerifyArgs};
use crate::exit::{Outcome, UsageError};
use crate::manifest::{self, MANIFEST_NAME, Status};
use crate::output::Out;

/// What one file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum FileStatus {
    Ok,
    Missing,
    Altered,
    Extra,
}

/// Files gcrec writes for its own bookkeeping, never listed as outputs.
fn bookkeeping(rel: &str) -> bool {
    rel == MANIFEST_NAME
        || rel == ".gcrec.lock"
        || (rel.starts_with(&format!("{}/", crate::outpath::KEPT_DIR))
            && rel.ends_with(gcrec_fetch::source::OBJECT_METADATA_SUFFIX))
}

pub async fn run(global: &GlobalArgs, args: VerifyArgs) -> Result<Outcome> {
    let dir = args.dir.clone();
    if dir.join("bagit.txt").is_file() {
        // A bag: its payload against manifest-sha256.txt.
        let bag = dir.clone();
        let checked = tokio::task::spawn_blocking(move || crate::bag::check(&bag)).await??;
        let results = checked
            .into_iter()
            .map(|(path, status)| {
                let status = match status {
                    "ok" => FileStatus::Ok,
                    "missing" => FileStatus::Missing,
                    "altered" => FileStatus::Altered,
                    _ => FileStatus::Extra,
                };
                (path, status)
            })
            .collect();
        return report(
            global,
            &args,
            &dir.join("manifest-sha256.txt"),
            results,
            None,
        );
    }
    if !dir.join(MANIFEST_NAME).is_file() {
        return Err(UsageError(format!(
            "{}: no {MANIFEST_NAME} here; give a directory `gcrec pull --out` wrote",
            dir.display()
        ))
        .into());
    }
    let entries = manifest::load(&dir)?;
    // Every file the manifest vouches for, with its size and SHA-256.
    let mut expected: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for e in entries.values() {
        if matches!(e.status, Some(Status::Ok | Status::NoMedia)) {
            for o in &e.outputs {
                expected.insert(o.path.clone(), (o.size, o.sha256.clone()));
            }
        }
    }
    let present = manifest::files_under(&dir, &dir)?;
    let checks = futures::stream::iter(expected.clone())
        .map(|(rel, (size, sha256))| {
            let path: PathBuf = dir.join(&rel);
            tokio::task::spawn_blocking(move || {
                let status = match std::fs::symlink_metadata(&path) {
                    Err(_) => FileStatus::Missing,
                    Ok(m) if !m.is_file() => FileStatus::Missing,
                    Ok(m) if m.len() != size => FileStatus::Altered,
                    Ok(_) => match manifest::sha256_file(&path) {
                        Ok(h) if h == sha256 => FileStatus::Ok,
                        _ => FileStatus::Altered,
                    },
                };
                (rel, status)
            })
        })
        .buffer_unordered(usize::from(args.jobs));
    let mut results: BTreeMap<String, FileStatus> =
        checks.filter_map(|r| async move { r.ok() }).collect().await;
    for rel in &present {
        if !expected.contains_key(rel) && !bookkeeping(rel) {
            results.insert(rel.clone(), FileStatus::Extra);
        }
    }
    report(
        global,
        &args,
        &dir.join(MANIFEST_NAME),
        results,
        Some(entries.len()),
    )
}

/// Prints the results and picks the outcome.
fn report(
    global: &GlobalArgs,
    args: &VerifyArgs,
    against: &Path,
    results: BTreeMap<String, FileStatus>,
    recordings: Option<usize>,
) -> Result<Outcome> {
    let mut out = Out::stdout();
    let mut counts: BTreeMap<FileStatus, u64> = BTreeMap::new();
    for (rel, status) in &results {
        *counts.entry(*status).or_default() += 1;
        if args.json {
            out.line(&json!({"type": "file", "path": rel, "status": status}).to_string())?;
        } else if *status != FileStatus::Ok {
            out.line(&format!(
                "{:<8} {rel}",
                format!("{status:?}").to_lowercase()
            ))?;
        }
    }
    let count = |s| counts.get(&s).copied().unwrap_or_default();
    let bad = count(FileStatus::Missing) + count(FileStatus::Altered) + count(FileStatus::Extra);
    if args.json {
        out.line(
            &json!({
                "type": "summary",
                "ok": count(FileStatus::Ok),
                "missing": count(FileStatus::Missing),
                "altered": count(FileStatus::Altered),
                "extra": count(FileStatus::Extra),
                "recordings": recordings,
            })
            .to_string(),
        )?;
    }
    out.flush()?;
    if !global.quiet {
        eprintln!(
            "{} files verified against {}: {} ok, {} missing, {} altered, {} extra",
            results.len(),
            against.display(),
            count(FileStatus::Ok),
            count(FileStatus::Missing),
            count(FileStatus::Altered),
            count(FileStatus::Extra),
        );
    }
    Ok(if bad == 0 {
        Outcome::Success
    } else {
        Outcome::SomeFailed
    })
}
