//! Evidence packages: a BagIt 1.0 bag (RFC 8493) around a pull's output.
//!
//! A bag pull writes into `DIR/data/` and keeps the manifest at `DIR/gcrec-manifest.jsonl`;
//! once the run has finished [`finish`] writes the bag's declaration, payload manifest,
//! bag-info and tag files (a CSV load file, an exceptions report, a chain-of-custody
//! record) and the tag manifest; [`check`] verifies a bag's payload. Documented in
//! docs/legal-hold.md.
//!
//! Everything streams from the manifest's index, one recording at a time: memory does
//! not grow with the number of recordings.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::manifest::{self, Entry, Index, Status};
use crate::release::PendingFile;
use crate::verify::FileStatus;

/// The payload directory of a bag.
pub const DATA: &str = "data";
/// The CSV load file (one row per recording, every sidecar field).
pub const LOAD_FILE: &str = "load-file.csv";
/// Failed recordings and orphans (a sidecar without media, media without a sidecar).
pub const EXCEPTIONS: &str = "exceptions.csv";
/// Who extracted what, from where, when.
pub const CUSTODY: &str = "chain-of-custody.json";
/// The payload manifest.
pub const PAYLOAD_MANIFEST: &str = "manifest-sha256.txt";
/// Sidecar fields beyond this many distinct names share one `other_fields` column (a
/// hostile sidecar with thousands of fields must not widen every row).
const MAX_FIELD_COLUMNS: usize = 128;

/// What the run knows that the bag records.
#[derive(Debug)]
pub struct BagRun<'a> {
    /// The matter (External-Identifier).
    pub matter: &'a str,
    /// Source-Organization.
    pub organization: &'a str,
    /// The source URI.
    pub source: &'a str,
    /// The command line, without secrets.
    pub command: &'a [String],
    /// UTC start.
    pub started: DateTime<Utc>,
    /// UTC end.
    pub finished: DateTime<Utc>,
    /// Who ran it (e.g. the AWS caller identity), when known.
    pub caller: Option<Value>,
    /// Legal-hold status per key at extraction (`ON`/`OFF`), when the source has Object
    /// Lock; `None` otherwise.
    pub holds: Option<BTreeMap<String, String>>,
    /// The run's counts.
    pub counts: Value,
}

/// A bag could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    /// A file could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> BagError + '_ {
    move |source| BagError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a tag file through a temporary file, with `fill` producing its content.
fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), BagError> {
    let write = || -> io::Result<()> {
        let mut file = PendingFile::create(path)?;
        fill(&mut file)?;
        file.release()?;
        Ok(())
    };
    write().map_err(io_at(path))
}

/// A path as a BagIt manifest line writes it (RFC 8493 §2.1.3: `%`, CR and LF encoded).
fn bagit_path(rel: &str) -> String {
    rel.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A CSV cell that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or CR
/// first) gets a leading `'`, as OWASP recommends; the exact value stays in the sidecar
/// and the gcrec manifest.
pub fn csv_safe(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// One CSV cell for a sidecar value: strings as they are, anything else as JSON.
fn cell(v: Option<&Value>) -> String {
    csv_safe(match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    })
}

/// The sidecar fields of a pulled recording, read back from the payload (outputs are
/// the plaintext, then the sidecar when there is one).
fn sidecar_fields(data: &Path, e: &Entry) -> serde_json::Map<String, Value> {
    e.sidecar_output()
        .and_then(|o| manifest::inside(data, &o.path))
        .map(|p| manifest::read_sidecar(&p))
        .unwrap_or_default()
}

/// Writes the bag's files around `bag/data` from the manifest's effective entries.
pub fn finish(bag: &Path, index: &Index, run: &BagRun<'_>) -> Result<(), BagError> {
    let data = bag.join(DATA);
    // Payload manifest: every output the manifest vouches for (hashed again only when
    // its size changed), then anything else under data/, hashed now.
    let manifest_path = bag.join(PAYLOAD_MANIFEST);
    let (mut octets, mut streams) = (0u64, 0u64);
    write_file(&manifest_path, |out| {
        let mut known = HashSet::new();
        for e in index.entries() {
            for o in &e.outputs {
                let Some(path) = manifest::inside(&data, &o.path) else {
                    continue;
                };
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if !meta.is_file() || !known.insert(manifest::key_hash(&o.path)) {
                    continue;
                }
                let sha = if meta.len() == o.size {
                    o.sha256.clone()
                } else {
                    manifest::sha256_file(&path)?
                };
                octets += meta.len();
                streams += 1;
                writeln!(out, "{sha}  {DATA}/{}", bagit_path(&o.path))?;
            }
        }
        for rel in manifest::files_under(&data, &data)? {
            if known.contains(&manifest::key_hash(&rel)) {
                continue;
            }
            let path = data.join(&rel);
            octets += std::fs::symlink_metadata(&path)?.len();
            streams += 1;
            writeln!(
                out,
                "{}  {DATA}/{}",
                manifest::sha256_file(&path)?,
                bagit_path(&rel)
            )?;
        }
        Ok(())
    })?;

    // The load file: fixed columns, then the sidecar fields seen (first-seen order), a
    // first pass collecting the names, a second writing the rows.
    let pulled = || index.entries().filter(|e| e.status == Some(Status::Ok));
    let mut columns: Vec<String> = Vec::new();
    let mut overflow = false;
    for e in pulled() {
        for k in sidecar_fields(&data, &e).keys() {
            if !columns.contains(k) {
                if columns.len() < MAX_FIELD_COLUMNS {
                    columns.push(k.clone());
                } else {
                    overflow = true;
                }
            }
        }
    }
    const FIXED: [&str; 7] = [
        "conversation_id",
        "recording_id",
        "file",
        "sha256",
        "source",
        "version_id",
        "sidecar",
    ];
    write_file(&bag.join(LOAD_FILE), |out| {
        let mut csv = csv::Writer::from_writer(out);
        let mut header: Vec<&str> = FIXED.to_vec();
        header.extend(columns.iter().map(String::as_str));
        if overflow {
            header.push("other_fields");
        }
        csv.write_record(&header)?;
        for e in pulled() {
            let mut sidecar = sidecar_fields(&data, &e);
            let mut record = vec![
                csv_safe(e.conversation_id.clone()),
                csv_safe(e.recording_id.clone()),
                csv_safe(
                    e.outputs
                        .first()
                        .map(|o| format!("{DATA}/{}", o.path))
                        .unwrap_or_default(),
                ),
                e.sha256_plaintext.clone().unwrap_or_default(),
                csv_safe(e.source.clone()),
                csv_safe(e.version_id.clone().unwrap_or_default()),
                csv_safe(
                    e.sidecar_sha256
                        .as_ref()
                        .and_then(|_| e.outputs.get(1))
                        .map(|o| format!("{DATA}/{}", o.path))
                        .unwrap_or_default(),
                ),
            ];
            record.extend(columns.iter().map(|c| cell(sidecar.remove(c).as_ref())));
            if overflow {
                record.push(if sidecar.is_empty() {
                    String::new()
                } else {
                    csv_safe(Value::Object(sidecar).to_string())
                });
            }
            csv.write_record(&record)?;
        }
        csv.flush()
    })?;

    // Exceptions: failed recordings, orphans, media problems.
    write_file(&bag.join(EXCEPTIONS), |out| {
        let mut csv = csv::Writer::from_writer(out);
        csv.write_record(["kind", "key", "conversation_id", "recording_id", "detail"])?;
        for e in index.entries() {
            if let Some(m) = e.media.as_ref().filter(|m| m.has_problems()) {
                csv.write_record([
                    "media_problem".to_owned(),
                    csv_safe(e.key.clone()),
                    csv_safe(e.conversation_id.clone()),
                    csv_safe(e.recording_id.clone()),
                    csv_safe(m.problems.join("; ")),
                ])?;
            }
            let (kind, detail) = match e.status {
                Some(Status::Failed) => ("failed", e.error.clone().unwrap_or_default()),
                Some(Status::NoMedia) => (
                    "sidecar_without_media",
                    "the export holds this sidecar but not its media".to_owned(),
                ),
                Some(Status::Ok) if e.sidecar_key.is_none() => (
                    "media_without_sidecar",
                    "pulled, but the export holds no metadata sidecar for it".to_owned(),
                ),
                _ => continue,
            };
            csv.write_record([
                kind.to_owned(),
                csv_safe(e.key.clone()),
                csv_safe(e.conversation_id.clone()),
                csv_safe(e.recording_id.clone()),
                csv_safe(detail),
            ])?;
        }
        csv.flush()
    })?;

    // Chain of custody: the run, then one object per recording, streamed.
    write_file(&bag.join(CUSTODY), |out| {
        let head = json!({
            "matter": run.matter,
            "tool": format!("gcrec {}", env!("CARGO_PKG_VERSION")),
            "who": {
                "aws_caller_identity": run.caller,
                "local_user": std::env::var("USER").ok(),
                "host": std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()),
            },
            "command": run.command,
            "started_at": run.started,
            "finished_at": run.finished,
            "source": run.source,
            "counts": run.counts,
        });
        let head = serde_json::to_string_pretty(&head)?;
        // `{ …fields… ,\n  "objects": [ … ]\n}`
        let body = head.trim_end().trim_end_matches('}').trim_end();
        write!(out, "{body},\n  \"objects\": [")?;
        for (i, e) in index.entries().enumerate() {
            let object = json!({
                "key": e.key,
                "status": e.status,
                "version_id": e.version_id,
                "etag": e.etag,
                "size": e.size,
                "sha256_downloaded": e.sha256_downloaded,
                "sha256_plaintext": e.sha256_plaintext,
                "legal_hold_at_extraction": run.holds.as_ref().map(|h| h.get(&e.key).cloned().unwrap_or_else(|| "unknown".into())),
            });
            write!(out, "{}\n    {object}", if i == 0 { "" } else { "," })?;
        }
        writeln!(out, "\n  ]\n}}")
    })?;

    write_file(&bag.join("bagit.txt"), |out| {
        out.write_all(b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    })?;
    let query = run
        .command
        .iter()
        .skip(1)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let info = format!(
        "Source-Organization: {}\nBagging-Date: {}\nPayload-Oxum: {octets}.{streams}\n\
         External-Identifier: {}\nExternal-Description: gcrec {}\nBag-Software-Agent: gcrec {} \
         (https://example.invalid/gcrec)\nBag-Count: 1 of 1\n",
        one_line(run.organization),
        run.finished.format("%Y-%m-%d"),
        one_line(run.matter),
        one_line(&query),
        env!("CARGO_PKG_VERSION"),
    );
    write_file(&bag.join("bag-info.txt"), |out| {
        out.write_all(info.as_bytes())
    })?;
    let mut tags = String::new();
    for name in [
        "bagit.txt",
        "bag-info.txt",
        PAYLOAD_MANIFEST,
        manifest::MANIFEST_NAME,
        LOAD_FILE,
        EXCEPTIONS,
        CUSTODY,
    ] {
        let path = bag.join(name);
        let sha = manifest::sha256_file(&path).map_err(io_at(&path))?;
        tags.push_str(&format!("{sha}  {name}\n"));
    }
    write_file(&bag.join("tagmanifest-sha256.txt"), |out| {
        out.write_all(tags.as_bytes())
    })
}

/// bag-info values are one line each.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// A bag's payload, checked against `manifest-sha256.txt`: the status of every file
/// listed or present. A listed path that could leave the bag (`data/../../etc/hostname`)
/// or pass through a link is reported missing, never read.
pub fn check(bag: &Path) -> Result<BTreeMap<String, FileStatus>, BagError> {
    let manifest_path = bag.join(PAYLOAD_MANIFEST);
    let file = manifest::open_no_follow(&manifest_path).map_err(io_at(&manifest_path))?;
    let mut out = BTreeMap::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(io_at(&manifest_path))?;
        if line.trim().is_empty() {
            continue;
        }
        let Some((sha, path)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let rel = path
            .trim_start()
            .replace("%0A", "\n")
            .replace("%0D", "\r")
            .replace("%25", "%");
        let status = match manifest::inside(bag, &rel).filter(|_| rel.starts_with("data/")) {
            None => FileStatus::Missing,
            Some(full) => match manifest::sha256_file(&full) {
                Err(_) => FileStatus::Missing,
                Ok(h) if h.eq_ignore_ascii_case(sha) => FileStatus::Ok,
                Ok(_) => FileStatus::Altered,
            },
        };
        out.insert(rel, status);
    }
    let data = bag.join(DATA);
    for rel in manifest::files_under(bag, &data).map_err(io_at(&data))? {
        out.entry(rel).or_insert(FileStatus::Extra);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreadsheet_formulas_are_defused() {
        for bad in ["=1+1", "+13175550100", "-2", "@SUM(A1)", "\tx"] {
            assert!(csv_safe(bad.into()).starts_with('\''), "{bad}");
        }
        assert_eq!(csv_safe("tel:+1".into()), "tel:+1");
    }

    #[test]
    fn a_bag_manifest_cannot_point_outside_the_bag() {
        let dir = tempfile::tempdir().unwrap();
        let bag = dir.path().join("bag");
        std::fs::create_dir_all(bag.join("data")).unwrap();
        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        let sha = manifest::sha256_file(&dir.path().join("secret")).unwrap();
        std::fs::write(
            bag.join(PAYLOAD_MANIFEST),
            format!("{sha}  data/../../secret\n{sha}  ../secret\n"),
        )
        .unwrap();
        let checked = check(&bag).unwrap();
        assert!(
            checked.values().all(|s| *s == FileStatus::Missing),
            "{checked:?}"
        );
    }
}
