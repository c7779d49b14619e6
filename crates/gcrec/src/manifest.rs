//! The pull manifest: `DIR/gcrec-manifest.jsonl`, one JSON line per recording as it
//! completes, and one `run` line per run. Documented in docs/manifest.md.
//!
//! Lines are appended whole with a single write and flushed, so a run killed at any
//! moment leaves at most one torn last line; readers skip lines that do not parse, and a
//! writer that finds no newline at the end starts on a fresh line. Later lines for a key
//! supersede earlier ones.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use gcrec_fetch::source::ServerSideEncryption;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's file name in the output directory.
pub const MANIFEST_NAME: &str = "gcrec-manifest.jsonl";

/// How a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Written and verified.
    Ok,
    /// Not written; `error` says why.
    Failed,
    /// A sidecar whose media object is not in the export: the sidecar was copied, the
    /// orphan is reported (as `ls` reports it), not a failure.
    NoMedia,
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Path relative to the output directory, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// One recording (one media object and its sidecar).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// `ok` or `failed`.
    pub status: Option<Status>,
    /// The media object's URI (`s3://bucket/key`, `file:///dir/key`).
    pub source: String,
    /// The media object's key (the sidecar's when the recording has no media).
    pub key: String,
    /// Organization ID (from the key).
    pub organization_id: String,
    /// Conversation ID (from the key).
    pub conversation_id: String,
    /// Recording ID (from the key).
    pub recording_id: String,
    /// Version ID, on versioned buckets.
    pub version_id: Option<String>,
    /// ETag, with its quotes.
    pub etag: Option<String>,
    /// Size of the downloaded object.
    pub size: Option<u64>,
    /// When the object was last written.
    pub last_modified: Option<DateTime<Utc>>,
    /// Server-side encryption at rest.
    pub sse: Option<ServerSideEncryption>,
    /// What the bytes were checked against besides their length (`checksum-crc64`,
    /// `md5-etag`, `openpgp-integrity`, `s3ec-gcm-tag`, …).
    #[serde(default)]
    pub checked: Vec<String>,
    /// The export-encryption container (`openpgp`, `s3ec v2 (…)`, `plain ogg`, …).
    pub encryption: Option<String>,
    /// The key that opened it.
    pub opened_with: Option<String>,
    /// SHA-256 of the downloaded bytes, hex.
    pub sha256_downloaded: Option<String>,
    /// SHA-256 of the plaintext, hex.
    pub sha256_plaintext: Option<String>,
    /// Plaintext size.
    pub plaintext_size: Option<u64>,
    /// The sidecar's key.
    pub sidecar_key: Option<String>,
    /// SHA-256 of the sidecar, hex.
    pub sidecar_sha256: Option<String>,
    /// Files written (plaintext, sidecar, kept encrypted copy).
    #[serde(default)]
    pub outputs: Vec<OutputFile>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it completed (UTC).
    pub completed_at: Option<DateTime<Utc>>,
    /// Whether the failure was about access (not written: it decides the exit code).
    #[serde(skip)]
    pub permission: bool,
}

/// A line of the manifest.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// A recording.
    Recording(Box<Entry>),
    /// A run's summary.
    Run(Box<serde_json::Value>),
}

/// The recordings a manifest holds, by key (in key order): the last line for each key.
pub fn load(dir: &Path) -> Result<BTreeMap<String, Entry>> {
    let path = dir.join(MANIFEST_NAME);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut entries = BTreeMap::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        // A torn last line (a run killed mid-write) does not parse: skip it.
        // (Parsed in two steps: serde's tagged enums and arbitrary-precision numbers do
        // not mix.)
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&line) else {
            continue;
        };
        if value.get("type").and_then(|t| t.as_str()) == Some("recording")
            && let Ok(e) = serde_json::from_value::<Entry>(value)
        {
            entries.insert(e.key.clone(), e);
        }
    }
    Ok(entries)
}

/// Appends lines to a manifest.
#[derive(Debug)]
pub struct Writer {
    file: File,
    path: PathBuf,
}

impl Writer {
    /// Opens (or creates, 0600) the manifest in `dir` for appending.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST_NAME);
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // After a torn write, start on a fresh line.
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(Self { file, path })
    }

    /// Appends one line with a single write.
    pub fn append(&mut self, line: &Line) -> Result<()> {
        let mut text = serde_json::to_vec(line)?;
        text.push(b'\n');
        self.file
            .write_all(&text)
            .and_then(|()| self.file.flush())
            .with_context(|| format!("appending to {}", self.path.display()))
    }

    /// Makes everything appended durable.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_data()
            .with_context(|| format!("syncing {}", self.path.display()))
    }
}

/// A path under `dir`, as the manifest writes it.
pub fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every file under `dir`, as paths relative to `root` (`/`-separated), sorted.
pub fn files_under(root: &Path, dir: &Path) -> io::Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else {
                out.push(relative(root, &path));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Whether a completed entry's outputs are all on disk as recorded: same size, and
/// with `rehash` the same SHA-256.
pub fn outputs_intact(dir: &Path, entry: &Entry, rehash: bool) -> bool {
    matches!(entry.status, Some(Status::Ok | Status::NoMedia))
        && !entry.outputs.is_empty()
        && entry.outputs.iter().all(|o| {
            let path = dir.join(&o.path);
            std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == o.size)
                && (!rehash || sha256_file(&path).is_ok_and(|h| h == o.sha256))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_lines_are_skipped_and_later_lines_win() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::open(dir.path()).unwrap();
        let entry = |key: &str, status| Entry {
            key: key.into(),
            status: Some(status),
            ..Entry::default()
        };
        w.append(&Line::Recording(Box::new(entry("a", Status::Failed))))
            .unwrap();
        w.append(&Line::Recording(Box::new(entry("a", Status::Ok))))
            .unwrap();
        drop(w);
        // A run killed mid-line.
        let path = dir.path().join(MANIFEST_NAME);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"type":"recording","key":"b","sta"#)
            .unwrap();
        drop(f);
        let mut w = Writer::open(dir.path()).unwrap();
        w.append(&Line::Recording(Box::new(entry("c", Status::Ok))))
            .unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded["a"].status, Some(Status::Ok));
        assert!(
            loaded.contains_key("c"),
            "the line after the torn one is intact"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
