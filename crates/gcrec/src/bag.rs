//! Evidence packages: a BagIt 1.0 bag (RFC 8493) around a pull's output.
//!
//! `gcrec pull … --bag DIR --matter ID` pulls into `DIR/data/` and keeps the manifest at
//! `DIR/gcrec-manifest.jsonl`; once the run has finished this module writes the bag's
//! declaration, payload manifest, bag-info and tag files (a CSV load file, an exceptions
//! report, a chain-of-custody record) and the tag manifest. Documented in
//! docs/legal-hold.md.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::manifest::{self, Entry, Status};

/// The payload directory of a bag.
pub const DATA: &str = "data";
/// The CSV load file (one row per recording, every sidecar field).
pub const LOAD_FILE: &str = "load-file.csv";
/// Failed recordings and orphans (a sidecar without media, media without a sidecar).
pub const EXCEPTIONS: &str = "exceptions.csv";
/// Who extracted what, from where, when.
pub const CUSTODY: &str = "chain-of-custody.json";

/// What the run knows that the bag records.
pub struct BagRun<'a> {
    /// The matter (External-Identifier).
    pub matter: &'a str,
    /// Source-Organization.
    pub organization: &'a str,
    /// The source URI.
    pub source: &'a str,
    /// The command line, without secrets.
    pub command: &'a [String],
    /// UTC start and end.
    pub started: DateTime<Utc>,
    /// UTC end.
    pub finished: DateTime<Utc>,
    /// The AWS caller identity, when the source is S3.
    pub caller: Option<Value>,
    /// Legal-hold status per key at extraction (`ON`/`OFF`), when the source is S3 with
    /// Object Lock; `None` otherwise.
    pub holds: Option<BTreeMap<String, String>>,
    /// The run's counts.
    pub counts: Value,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = gcrec_decrypt::release::PendingFile::create(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.release()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A path as a BagIt manifest line writes it (RFC 8493 §2.1.3: `%`, CR and LF encoded).
fn bagit_path(rel: &str) -> String {
    rel.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// One CSV cell for a sidecar value: strings as they are, anything else as JSON.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Writes the bag's files around `bag/data`. `entries` are the manifest's effective
/// entries.
pub fn finish(bag: &Path, entries: &BTreeMap<String, Entry>, run: &BagRun<'_>) -> Result<()> {
    let data = bag.join(DATA);
    // Payload manifest: every file under data/, hashed (the manifest's hashes are used
    // when the file is the size it records; anything else is hashed now).
    let known: BTreeMap<&str, (u64, &str)> = entries
        .values()
        .flat_map(|e| e.outputs.iter())
        .map(|o| (o.path.as_str(), (o.size, o.sha256.as_str())))
        .collect();
    let payload = manifest::files_under(&data, &data)?;
    let mut manifest_text = String::new();
    let (mut octets, mut streams) = (0u64, 0u64);
    for rel in &payload {
        let path = data.join(rel);
        let size = std::fs::metadata(&path)?.len();
        let sha = match known.get(rel.as_str()) {
            Some((s, h)) if *s == size => (*h).to_owned(),
            _ => manifest::sha256_file(&path)?,
        };
        octets += size;
        streams += 1;
        manifest_text.push_str(&format!("{sha}  {}/{}\n", DATA, bagit_path(rel)));
    }

    // The load file: fixed columns, then every sidecar field seen, in first-seen order.
    let mut rows: Vec<(&Entry, serde_json::Map<String, Value>)> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    for e in entries.values().filter(|e| e.status == Some(Status::Ok)) {
        // Outputs are the plaintext, then the sidecar (when there is one).
        let sidecar = e
            .sidecar_sha256
            .as_ref()
            .and_then(|_| e.outputs.get(1))
            .and_then(|o| std::fs::read(data.join(&o.path)).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        for k in sidecar.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
        rows.push((e, sidecar));
    }
    let mut csv = csv::Writer::from_writer(Vec::new());
    let fixed = [
        "conversation_id",
        "recording_id",
        "file",
        "sha256",
        "source",
        "version_id",
        "sidecar",
    ];
    csv.write_record(
        fixed
            .iter()
            .copied()
            .chain(columns.iter().map(String::as_str)),
    )?;
    for (e, sidecar) in &rows {
        let file = e
            .outputs
            .first()
            .map(|o| format!("{DATA}/{}", o.path))
            .unwrap_or_default();
        let sidecar_file = e
            .sidecar_key
            .as_ref()
            .map(|k| format!("{DATA}/{k}"))
            .unwrap_or_default();
        let mut record = vec![
            e.conversation_id.clone(),
            e.recording_id.clone(),
            file,
            e.sha256_plaintext.clone().unwrap_or_default(),
            e.source.clone(),
            e.version_id.clone().unwrap_or_default(),
            sidecar_file,
        ];
        record.extend(columns.iter().map(|c| cell(sidecar.get(c))));
        csv.write_record(&record)?;
    }
    let load_file = csv.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;

    // Exceptions: failed recordings and orphans.
    let mut exceptions = csv::Writer::from_writer(Vec::new());
    exceptions.write_record(["kind", "key", "conversation_id", "recording_id", "detail"])?;
    for e in entries.values() {
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
        exceptions.write_record([kind, &e.key, &e.conversation_id, &e.recording_id, &detail])?;
    }
    let exceptions = exceptions
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let custody = json!({
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
        "objects": entries.values().map(|e| json!({
            "key": e.key,
            "status": e.status,
            "version_id": e.version_id,
            "etag": e.etag,
            "size": e.size,
            "sha256_downloaded": e.sha256_downloaded,
            "sha256_plaintext": e.sha256_plaintext,
            "legal_hold_at_extraction": run.holds.as_ref().map(|h| h.get(&e.key).cloned().unwrap_or_else(|| "unknown".into())),
        })).collect::<Vec<_>>(),
    });

    write_file(&bag.join(LOAD_FILE), &load_file)?;
    write_file(&bag.join(EXCEPTIONS), &exceptions)?;
    write_file(
        &bag.join(CUSTODY),
        serde_json::to_string_pretty(&custody)?.as_bytes(),
    )?;
    write_file(
        &bag.join("bagit.txt"),
        b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
    )?;
    write_file(&bag.join("manifest-sha256.txt"), manifest_text.as_bytes())?;
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
    write_file(&bag.join("bag-info.txt"), info.as_bytes())?;
    let mut tags = String::new();
    for name in [
        "bagit.txt",
        "bag-info.txt",
        "manifest-sha256.txt",
        manifest::MANIFEST_NAME,
        LOAD_FILE,
        EXCEPTIONS,
        CUSTODY,
    ] {
        let sha = manifest::sha256_file(&bag.join(name))?;
        tags.push_str(&format!("{sha}  {name}\n"));
    }
    write_file(&bag.join("tagmanifest-sha256.txt"), tags.as_bytes())?;
    Ok(())
}

/// bag-info values are one line each.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// A bag's payload, checked against `manifest-sha256.txt`: (path, status) for every
/// file listed or present, status `ok`, `missing`, `altered` or `extra`.
pub fn check(bag: &Path) -> Result<Vec<(String, &'static str)>> {
    let text = std::fs::read_to_string(bag.join("manifest-sha256.txt"))
        .with_context(|| format!("{}: no manifest-sha256.txt", bag.display()))?;
    let mut listed = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (sha, path) = line
            .split_once(char::is_whitespace)
            .with_context(|| format!("manifest-sha256.txt: bad line {line:?}"))?;
        let path = path
            .trim_start()
            .replace("%0A", "\n")
            .replace("%0D", "\r")
            .replace("%25", "%");
        listed.insert(path, sha.to_ascii_lowercase());
    }
    let present = manifest::files_under(bag, &bag.join(DATA))?;
    let mut out = Vec::new();
    for (path, sha) in &listed {
        let full = bag.join(path);
        let status = if !full.is_file() {
            "missing"
        } else if manifest::sha256_file(&full)? != *sha {
            "altered"
        } else {
            "ok"
        };
        out.push((path.clone(), status));
    }
    for path in present {
        if !listed.contains_key(&path) {
            out.push((path, "extra"));
        }
    }
    Ok(out)
}
