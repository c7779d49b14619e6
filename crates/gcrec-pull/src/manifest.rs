//! The pull manifest: `DIR/gcrec-manifest.jsonl`, one JSON line per recording as it
//! completes, and one `run` line per run. Documented in docs/manifest.md.
//!
//! Lines are appended whole with a single write and flushed, so a run killed at any
//! moment leaves at most one torn last line; readers skip lines that do not parse, and a
//! writer that finds no newline at the end starts on a fresh line. Later lines for a key
//! supersede earlier ones.
//!
//! Readers never hold the manifest in memory: [`Index`] keeps 20 bytes per recording (a
//! hash of the key and where its last line is) and reads a line back when asked, so a
//! resume of millions of recordings stays small.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use gcrec_fetch::source::ServerSideEncryption;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Hint;
use crate::outpath::OutputLayout;

/// The manifest's file name in the output directory.
pub const MANIFEST_NAME: &str = "gcrec-manifest.jsonl";

/// Lines longer than this are not manifest lines (a recording's line is a few KB).
const MAX_LINE: usize = 1 << 20;

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
    /// `ok`, `failed` or `no_media`.
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
    /// Whether the container authenticated every byte of the plaintext: `false` for
    /// AES-CBC containers (S3EC V1, CMS EnvelopedData), released only when explicitly
    /// allowed; `None` for plain media.
    #[serde(default)]
    pub authenticated: Option<bool>,
    /// Whether the plaintext's length equals the sidecar's `fileSize` (`None` without a
    /// valid sidecar). A match is the only length check an unauthenticated container has.
    #[serde(default)]
    pub sidecar_file_size_matches: Option<bool>,
    /// What the media check found (Ogg pages, ZIP entries, the playable duration against
    /// the sidecar's); `None` for other media or with checks off.
    #[serde(default)]
    pub media: Option<crate::media::MediaReport>,
    /// SHA-256 of the downloaded bytes, hex.
    pub sha256_downloaded: Option<String>,
    /// SHA-256 of the plaintext, hex.
    pub sha256_plaintext: Option<String>,
    /// Plaintext size.
    pub plaintext_size: Option<u64>,
    /// The sidecar's key.
    pub sidecar_key: Option<String>,
    /// The sidecar's ETag, as listed.
    #[serde(default)]
    pub sidecar_etag: Option<String>,
    /// SHA-256 of the sidecar, hex.
    pub sidecar_sha256: Option<String>,
    /// How the outputs are named.
    #[serde(default)]
    pub layout: Option<OutputLayout>,
    /// Every file the run wrote for this recording (plaintext, sidecar, kept encrypted
    /// copy) — also when the recording failed: its sidecar may have been written.
    #[serde(default)]
    pub outputs: Vec<OutputFile>,
    /// Why it failed.
    pub error: Option<String>,
    /// What the user can give to get past the failure.
    #[serde(default)]
    pub hint: Option<Hint>,
    /// When it completed (UTC).
    pub completed_at: Option<DateTime<Utc>>,
    /// Whether the failure was about access (not written: it decides the exit code).
    #[serde(skip)]
    pub permission: bool,
    /// Whether it stopped only because the run was cancelled (not written: the next run
    /// picks it up, it is not a failure of the recording).
    #[serde(skip)]
    pub cancelled: bool,
}

impl Entry {
    /// The sidecar this entry wrote, when it has one (its second output: the plaintext
    /// comes first).
    pub fn sidecar_output(&self) -> Option<&OutputFile> {
        self.sidecar_sha256
            .as_ref()
            .and_then(|_| self.outputs.get(1))
    }
}

/// Sidecars larger than this are not read back (load files, media checks).
pub const MAX_SIDECAR_READ: u64 = 1024 * 1024;

/// The JSON object in a sidecar a run wrote, read back without following a link and
/// at most [`MAX_SIDECAR_READ`] bytes; empty when it is missing, larger, or not an
/// object. Outputs can be altered after a run: they are outside input too.
pub fn read_sidecar(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    (|| {
        let file = open_no_follow(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > MAX_SIDECAR_READ {
            return None;
        }
        let reader = BufReader::new(file.take(MAX_SIDECAR_READ));
        match serde_json::from_reader(reader).ok()? {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        }
    })()
    .unwrap_or_default()
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

/// Opens a file for reading without following a symbolic link at its last component.
pub(crate) fn open_no_follow(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    options.open(path)
}

/// A 64-bit hash of a key or a path, for the index and for the sets of paths a run
/// remembers (8 bytes each). SHA-256 based: an export cannot craft two names that
/// collide, as it could against a hasher with fixed keys.
pub(crate) fn key_hash(key: &str) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// A recording line as an [`Entry`]. (Parsed in two steps: serde's tagged enums and
/// arbitrary-precision numbers do not mix.)
fn parse_entry(line: &[u8]) -> Option<Entry> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    serde_json::from_value(value).ok()
}

/// The head of a manifest line: enough to index it.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    key: String,
}

/// Where the effective (last) line of each recording is in a manifest.
#[derive(Debug)]
pub struct Index {
    file: Option<File>,
    /// `(hash of key, offset, length)`, sorted by hash, one per key.
    lines: Vec<(u64, u64, u32)>,
}

impl Index {
    /// Indexes the manifest in `dir` (an empty index when there is none).
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join(MANIFEST_NAME);
        let file = match open_no_follow(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Self {
                    file: None,
                    lines: Vec::new(),
                });
            }
            Err(e) => return Err(e),
        };
        let mut reader = BufReader::with_capacity(1 << 16, file.try_clone()?);
        let mut last: HashMap<u64, (u64, u32)> = HashMap::new();
        let mut offset = 0u64;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            if n > MAX_LINE {
                // Not a manifest line: skip to the next newline.
                let mut rest = Vec::new();
                let skipped = reader.read_until(b'\n', &mut rest)?;
                offset += (n + skipped) as u64;
                continue;
            }
            // A torn last line (a run killed mid-write), or one that is not a whole
            // entry, does not parse: skip it (an earlier whole line for its key stands).
            if let Ok(head) = serde_json::from_slice::<Head>(&line)
                && head.kind == "recording"
                && parse_entry(&line).is_some()
            {
                last.insert(key_hash(&head.key), (offset, n as u32));
            }
            offset += n as u64;
        }
        let mut lines: Vec<(u64, u64, u32)> =
            last.into_iter().map(|(h, (o, l))| (h, o, l)).collect();
        lines.sort_unstable();
        Ok(Self {
            file: Some(file),
            lines,
        })
    }

    /// An index of nothing.
    pub fn empty() -> Self {
        Self {
            file: None,
            lines: Vec::new(),
        }
    }

    /// How many recordings the manifest holds.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn read(&self, offset: u64, len: u32) -> Option<Entry> {
        let file = self.file.as_ref()?;
        let mut buf = vec![0u8; len as usize];
        #[cfg(unix)]
        std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset).ok()?;
        #[cfg(not(unix))]
        {
            let mut f = file;
            f.seek(SeekFrom::Start(offset)).ok()?;
            f.read_exact(&mut buf).ok()?;
        }
        parse_entry(&buf)
    }

    /// The effective entry for `key`, if the manifest has one.
    pub fn get(&self, key: &str) -> Option<Entry> {
        let hash = key_hash(key);
        let at = self.lines.partition_point(|(h, ..)| *h < hash);
        let &(h, offset, len) = self.lines.get(at)?;
        (h == hash)
            .then(|| self.read(offset, len))
            .flatten()
            .filter(|e| e.key == key)
    }

    /// Every effective entry, in the order their lines were written.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let mut by_offset: Vec<(u64, u32)> = self.lines.iter().map(|&(_, o, l)| (o, l)).collect();
        by_offset.sort_unstable();
        by_offset
            .into_iter()
            .filter_map(|(offset, len)| self.read(offset, len))
    }
}

/// Appends lines to a manifest.
#[derive(Debug)]
pub struct Writer {
    file: File,
    path: PathBuf,
}

impl Writer {
    /// Opens (or creates, 0600) the manifest in `dir` for appending. A symbolic link in
    /// its place is refused, never followed.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join(MANIFEST_NAME);
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        }
        let mut file = options.open(&path)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
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

    /// Where the manifest is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line with a single write.
    pub fn append(&mut self, line: &Line) -> io::Result<()> {
        let mut text = serde_json::to_vec(line)?;
        text.push(b'\n');
        self.file.write_all(&text)?;
        self.file.flush()
    }

    /// Makes everything appended durable.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
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

/// `dir` joined with a manifest's relative path, or `None` when the path could name
/// anything outside `dir` (`..`, absolute, empty segments) or passes through a symbolic
/// link. Manifests come from outside too.
pub fn inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let mut path = dir.to_path_buf();
    let segments: Vec<&str> = rel.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        if !gcrec_fetch::layout::is_safe_segment(segment) {
            return None;
        }
        path.push(segment);
        // Every directory on the way must be a real directory, not a link.
        if i + 1 < segments.len()
            && !std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_dir())
        {
            return None;
        }
    }
    Some(path)
}

/// [`inside`] for a file about to be written: its directories are created first (`0700`,
/// never through a link), then the path is checked as [`inside`] checks it.
pub fn inside_creating(dir: &Path, rel: &str) -> io::Result<PathBuf> {
    let unsafe_path = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{rel}: not a plain relative path"),
        )
    };
    if !rel.split('/').all(gcrec_fetch::layout::is_safe_segment) {
        return Err(unsafe_path());
    }
    if let Some((parent, _)) = rel.rsplit_once('/') {
        crate::release::create_dirs_inside(dir, &dir.join(parent))?;
    }
    inside(dir, rel).ok_or_else(unsafe_path)
}

/// Every file under `dir`, as paths relative to `root` (`/`-separated), sorted. Symbolic
/// links are listed (as the names they are), never followed.
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

/// SHA-256 of a regular file, hex; a link is an error, never followed.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = open_no_follow(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
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
            let Some(path) = inside(dir, &o.path) else {
                return false;
            };
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
        w.append(&Line::Run(Box::new(serde_json::json!({"counts": {}}))))
            .unwrap();
        let index = Index::open(dir.path()).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(index.get("a").unwrap().status, Some(Status::Ok));
        assert!(index.get("b").is_none());
        assert!(
            index.get("c").is_some(),
            "the line after the torn one is intact"
        );
        let keys: Vec<String> = index.entries().map(|e| e.key).collect();
        assert_eq!(keys, ["a", "c"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn manifest_paths_never_leave_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        assert!(inside(dir.path(), "a/b.opus").is_some());
        for rel in [
            "../x",
            "a/../../x",
            "/etc/hostname",
            "a//b",
            "",
            "data/../../etc",
        ] {
            assert!(inside(dir.path(), rel).is_none(), "{rel}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", dir.path().join("l")).unwrap();
            assert!(inside(dir.path(), "l/hostname").is_none());
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_place_of_the_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, b"").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(MANIFEST_NAME)).unwrap();
        assert!(Writer::open(dir.path()).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"");
    }
}
