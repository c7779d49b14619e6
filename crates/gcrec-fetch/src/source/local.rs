//! A local directory laid out like the bucket: `{root}/{key}` for every object.
//!
//! Symbolic links are neither listed nor followed, file names that are not UTF-8 are not
//! listed, and keys are validated before they become paths, so nothing outside the root
//! is ever read. Listing walks the tree lazily in key order; with the `/` delimiter, whole
//! subdirectories collapse into common prefixes without being walked.

use std::fs;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::BytesMut;
use chrono::{DateTime, Utc};

use super::paging::{Resume, WalkItem, page_from_walk};
use super::{
    GetRequest, ListPage, ListRequest, ObjectBody, ObjectInfo, ObjectSource, ObjectSummary,
    SourceError,
};
use crate::layout::is_safe_key;

/// Bytes per chunk when streaming a local file.
const CHUNK: usize = 1 << 20;
/// Chunks read ahead of the consumer, per body.
const READ_AHEAD: usize = 4;

/// Reads `len` bytes from `start` in chunks into `tx`, until done, an error, or the
/// receiver goes away. A file that ends early is reported as truncated.
fn read_chunks(
    mut file: fs::File,
    key: &str,
    start: u64,
    len: u64,
    tx: &tokio::sync::mpsc::Sender<Result<bytes::Bytes, SourceError>>,
) {
    use std::io::{Read, Seek};
    if let Err(e) = file.seek(SeekFrom::Start(start)) {
        let _ = tx.blocking_send(Err(io_error(key)(e)));
        return;
    }
    let mut remaining = len;
    while remaining > 0 {
        let want = remaining.min(CHUNK as u64) as usize;
        let mut buf = BytesMut::zeroed(want);
        let mut filled = 0;
        while filled < want {
            match file.read(&mut buf[filled..]) {
                Ok(0) => {
                    let _ = tx.blocking_send(Err(SourceError::Truncated {
                        key: key.to_owned(),
                        expected: len,
                        received: len - remaining + filled as u64,
                    }));
                    return;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(io_error(key)(e)));
                    return;
                }
            }
        }
        if tx.blocking_send(Ok(buf.freeze())).is_err() {
            return; // the consumer stopped reading
        }
        remaining -= want as u64;
    }
}

/// Suffix of the file that holds an object's S3 metadata in a local copy
/// (`{key}.gcrec-object.json`, written when encrypted copies are kept). Such files are
/// not listed as objects: they are the object's metadata, as in S3.
pub const OBJECT_METADATA_SUFFIX: &str = ".gcrec-object.json";

/// Saved object metadata larger than this is ignored (S3 allows 2 KB of user metadata).
const MAX_OBJECT_METADATA: u64 = 64 * 1024;

/// The saved S3 metadata of an object in a local copy.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedObjectMetadata {
    /// User metadata (`x-amz-meta-*` without the prefix).
    #[serde(default)]
    pub user_metadata: std::collections::BTreeMap<String, String>,
    /// Server-side encryption at rest when it was downloaded.
    #[serde(default)]
    pub sse: super::ServerSideEncryption,
    /// The version ID it was downloaded at.
    #[serde(default)]
    pub version_id: Option<String>,
    /// Its ETag in the bucket.
    #[serde(default)]
    pub etag: Option<String>,
}

/// Reads `{path}.gcrec-object.json` if it exists.
fn saved_metadata(key: &str, path: &Path) -> Result<Option<SavedObjectMetadata>, SourceError> {
    let mut companion = path.as_os_str().to_owned();
    companion.push(OBJECT_METADATA_SUFFIX);
    let companion = PathBuf::from(companion);
    match fs::symlink_metadata(&companion) {
        Ok(m) if m.is_file() && m.len() <= MAX_OBJECT_METADATA => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(key)(e)),
    }
    let body = fs::read(&companion).map_err(io_error(key))?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| SourceError::Io {
            key: key.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", companion.display()),
            ),
        })
}

/// Objects read from a directory tree.
#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
}

fn io_error(key: &str) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        key: key.to_owned(),
        source,
    }
}

/// A quoted tag from size and modification time: changes whenever the file is rewritten.
/// Contains a `-`, so nothing mistakes it for an MD5.
fn etag_of(meta: &fs::Metadata) -> String {
    let nanos = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{:x}\"", meta.len(), nanos)
}

fn modified(meta: &fs::Metadata) -> Option<DateTime<Utc>> {
    meta.modified().ok().map(DateTime::<Utc>::from)
}

impl LocalSource {
    /// Opens a directory as a source.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SourceError> {
        let path = path.as_ref();
        let open_error = |reason: String| SourceError::Open {
            location: path.display().to_string(),
            reason,
        };
        let root = path
            .canonicalize()
            .map_err(|e| open_error(format!("{e} (is the path right?)")))?;
        if !root.is_dir() {
            return Err(open_error("not a directory".into()));
        }
        Ok(Self { root })
    }

    /// The directory, canonicalized.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `key`, after checking it is safe and stays under the root.
    fn path_for(&self, key: &str) -> Result<PathBuf, SourceError> {
        if !is_safe_key(key) || key.ends_with('/') {
            return Err(SourceError::UnsafeKey {
                key: key.to_owned(),
            });
        }
        let path = key.split('/').fold(self.root.clone(), |p, s| p.join(s));
        // Refuse symlinks anywhere on the way: the parent must resolve inside the root and
        // the file itself must not be a link.
        let not_found = || SourceError::NotFound {
            key: key.to_owned(),
        };
        let parent = path.parent().ok_or_else(not_found)?;
        match parent.canonicalize() {
            Ok(p) if p.starts_with(&self.root) => {}
            Ok(_) => return Err(not_found()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
            Err(e) => return Err(io_error(key)(e)),
        }
        Ok(path)
    }

    /// The file's metadata, if it is a regular file (not a link, not a directory).
    fn file_meta(key: &str, path: &Path) -> Result<fs::Metadata, SourceError> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_file() => Ok(m),
            Ok(_) => Err(SourceError::NotFound {
                key: key.to_owned(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SourceError::NotFound {
                key: key.to_owned(),
            }),
            Err(e) => Err(io_error(key)(e)),
        }
    }

    fn info(
        key: &str,
        path: &Path,
        meta: &fs::Metadata,
        request: &GetRequest,
    ) -> Result<ObjectInfo, SourceError> {
        if request.version_id.is_some() {
            return Err(SourceError::Unsupported {
                what: "reading a version ID",
                source_kind: "local directory",
            });
        }
        let etag = etag_of(meta);
        if let Some(expected) = &request.if_match
            && *expected != etag
        {
            return Err(SourceError::Changed {
                key: key.to_owned(),
                expected: expected.clone(),
            });
        }
        let saved = saved_metadata(key, path)?.unwrap_or_default();
        Ok(ObjectInfo {
            key: key.to_owned(),
            size: meta.len(),
            etag: Some(etag),
            last_modified: modified(meta),
            user_metadata: saved.user_metadata,
            sse: saved.sse,
            ..ObjectInfo::default()
        })
    }
}

#[async_trait]
impl ObjectSource for LocalSource {
    fn uri(&self, key: &str) -> String {
        format!("file://{}/{key}", self.root.display())
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage, SourceError> {
        let resume = Resume::decode(request.continuation.as_deref())?;
        let root = self.root.clone();
        let request = request.clone();
        tokio::task::spawn_blocking(move || {
            let walk = Walk::new(root, &request, resume);
            page_from_walk(&request, walk)
        })
        .await
        .map_err(|e| SourceError::Io {
            key: String::new(),
            source: std::io::Error::other(e),
        })?
    }

    async fn head(&self, key: &str, request: &GetRequest) -> Result<ObjectInfo, SourceError> {
        let path = self.path_for(key)?;
        let meta = Self::file_meta(key, &path)?;
        Self::info(key, &path, &meta, request)
    }

    async fn get(&self, key: &str, request: &GetRequest) -> Result<ObjectBody, SourceError> {
        let path = self.path_for(key)?;
        Self::file_meta(key, &path)?;
        let file = fs::File::open(&path).map_err(io_error(key))?;
        // Describe the file we actually opened, not the path.
        let meta = file.metadata().map_err(io_error(key))?;
        let info = Self::info(key, &path, &meta, request)?;
        let range = match request.range {
            Some(r) => r.resolve(key, info.size)?,
            None => 0..info.size,
        };
        // One blocking reader per body, a few chunks ahead of the consumer: large reads
        // straight into the chunks handed out, no intermediate buffer.
        let (tx, rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let owned_key = key.to_owned();
        let (start, expected) = (range.start, range.end - range.start);
        tokio::task::spawn_blocking(move || read_chunks(file, &owned_key, start, expected, &tx));
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        Ok(ObjectBody {
            info,
            range,
            stream: Box::pin(stream),
        })
    }
}

/// One directory entry, with its key (directories end in `/`).
struct Entry {
    key: String,
    path: PathBuf,
    meta: fs::Metadata,
}

/// A lazy depth-first walk in ascending key order, pruned by prefix and resume point.
struct Walk {
    prefix: String,
    resume: Resume,
    /// Collapse subdirectories under the prefix into common prefixes (delimiter `/`).
    collapse: bool,
    stack: Vec<std::vec::IntoIter<Entry>>,
    pending_error: Option<SourceError>,
}

impl Walk {
    fn new(root: PathBuf, request: &ListRequest, resume: Resume) -> Self {
        let mut walk = Walk {
            prefix: request.prefix.clone(),
            resume,
            collapse: request.delimiter() == Some("/"),
            stack: Vec::new(),
            pending_error: None,
        };
        walk.push_dir(&root, "");
        walk
    }

    fn wanted_dir(&self, key: &str) -> bool {
        (key.starts_with(&self.prefix) || self.prefix.starts_with(key))
            && self.resume.admits_subtree(key)
    }

    fn push_dir(&mut self, path: &Path, key: &str) {
        match read_sorted(path, key) {
            Ok(entries) => {
                let entries: Vec<Entry> = entries
                    .into_iter()
                    .filter(|e| {
                        if e.meta.is_dir() {
                            self.wanted_dir(&e.key)
                        } else {
                            e.key.starts_with(&self.prefix) && self.resume.admits_key(&e.key)
                        }
                    })
                    .collect();
                self.stack.push(entries.into_iter());
            }
            // A directory vanishing mid-walk is not an error (S3 has no directories).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => self.pending_error = Some(io_error(key)(e)),
        }
    }
}

impl Iterator for Walk {
    type Item = Result<WalkItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.pending_error.take() {
                self.stack.clear();
                return Some(Err(e));
            }
            let top = self.stack.last_mut()?;
            let Some(entry) = top.next() else {
                self.stack.pop();
                continue;
            };
            if !entry.meta.is_dir() {
                return Some(Ok(WalkItem::Object(ObjectSummary {
                    etag: Some(etag_of(&entry.meta)),
                    last_modified: modified(&entry.meta),
                    size: entry.meta.len(),
                    key: entry.key,
                })));
            }
            if self.collapse
                && entry.key.len() > self.prefix.len()
                && entry.key.starts_with(&self.prefix)
            {
                match has_file(&entry.path) {
                    Ok(true) => return Some(Ok(WalkItem::Prefix(entry.key))),
                    Ok(false) => continue,
                    Err(e) => return Some(Err(io_error(&entry.key)(e))),
                }
            }
            self.push_dir(&entry.path, &entry.key);
        }
    }
}

/// The directory's regular files and subdirectories (no symlinks, UTF-8 names only),
/// sorted by key. Directory keys end in `/`, which is what makes this order the same as
/// the byte order of the full keys.
fn read_sorted(dir: &Path, dir_key: &str) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for item in fs::read_dir(dir)? {
        let item = item?;
        let Ok(name) = item.file_name().into_string() else {
            tracing::warn!(dir = %dir.display(), "skipping a file name that is not UTF-8");
            continue;
        };
        let meta = match item.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let key = if meta.is_dir() {
            format!("{dir_key}{name}/")
        } else if meta.is_file() && name.ends_with(OBJECT_METADATA_SUFFIX) {
            continue; // an object's saved metadata, not an object
        } else if meta.is_file() {
            format!("{dir_key}{name}")
        } else {
            continue; // symlinks, sockets, devices
        };
        entries.push(Entry {
            key,
            path: item.path(),
            meta,
        });
    }
    entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok(entries)
}

/// Whether a directory holds at least one listable file, at any depth.
fn has_file(dir: &Path) -> std::io::Result<bool> {
    for item in fs::read_dir(dir)? {
        let item = item?;
        if item.file_name().to_str().is_none() {
            continue;
        }
        let kind = item.file_type()?;
        let metadata_only = item
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(OBJECT_METADATA_SUFFIX));
        if (kind.is_file() && !metadata_only) || (kind.is_dir() && has_file(&item.path())?) {
            return Ok(true);
        }
    }
    Ok(false)
}
