//! Object sources: where export objects are listed and read from.
//!
//! [`ObjectSource`] is shaped after the S3 API the export lives in (ListObjectsV2 pages
//! with prefix/delimiter/continuation, HEAD, ranged GET with version and ETag pinning,
//! user metadata, server-side encryption info), so the S3 client, a local directory laid
//! out like the bucket ([`LocalSource`]) and the in-memory test double
//! ([`MemorySource`]) all behave the same. Every implementation runs the conformance
//! suite in `gcrec-testkit`.

mod counting;
mod local;
mod memory;
mod open;
mod paging;
mod retry;
pub(crate) mod s3;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use thiserror::Error;

pub use counting::{CallCounts, CountingSource};
pub use local::{LocalSource, OBJECT_METADATA_SUFFIX, SavedObjectMetadata};
pub use memory::{MemoryObject, MemorySource};
pub use open::{OpenedSource, open_source};
pub use retry::{DEFAULT_REQUEST_TIMEOUT, RetryPolicy, RetryingSource};
pub use s3::{S3Options, S3Source, SseCustomerKey, parse_s3_url};

/// The largest page a [`ListRequest`] may ask for (the S3 limit).
pub const MAX_LIST_KEYS: usize = 1000;

/// One ListObjectsV2-style request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListRequest {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys sharing `prefix` + anything up to this delimiter into common prefixes.
    pub delimiter: Option<String>,
    /// The token from the previous page's [`ListPage::next`].
    pub continuation: Option<String>,
    /// Page size; `0` means [`MAX_LIST_KEYS`]. Larger values are clamped to it.
    pub max_keys: usize,
}

impl ListRequest {
    /// All keys under `prefix`, recursively.
    pub fn recursive(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }

    /// One level under `prefix`, grouped by `/`.
    pub fn children(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            delimiter: Some("/".into()),
            ..Self::default()
        }
    }

    /// The delimiter in force (an empty one means none, as in S3).
    pub(crate) fn delimiter(&self) -> Option<&str> {
        self.delimiter.as_deref().filter(|d| !d.is_empty())
    }

    pub(crate) fn page_size(&self) -> usize {
        match self.max_keys {
            0 => MAX_LIST_KEYS,
            n => n.min(MAX_LIST_KEYS),
        }
    }
}

/// An object as a listing describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectSummary {
    /// The object key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The entity tag, with its quotes, when the source has one.
    pub etag: Option<String>,
    /// When the object was last written.
    pub last_modified: Option<DateTime<Utc>>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    /// Objects, in ascending key order.
    pub objects: Vec<ObjectSummary>,
    /// Common prefixes (when a delimiter was given), in ascending order, each ending with
    /// the delimiter.
    pub common_prefixes: Vec<String>,
    /// Pass as [`ListRequest::continuation`] to get the next page; `None` on the last page.
    pub next: Option<String>,
}

/// Server-side encryption at rest, as the source reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SseMode {
    /// No server-side encryption reported (local sources, unencrypted buckets).
    #[default]
    None,
    /// SSE-S3 (`AES256`).
    Aes256,
    /// SSE-KMS (`aws:kms`).
    AwsKms,
    /// Dual-layer SSE-KMS (`aws:kms:dsse`).
    AwsKmsDsse,
    /// SSE-C: a customer-provided key sent with each request.
    CustomerKey,
    /// A value this version of gcrec does not know, kept as reported.
    Other(String),
}

impl SseMode {
    /// Parses the `x-amz-server-side-encryption` header value.
    pub fn from_header(value: &str) -> Self {
        match value {
            "" => Self::None,
            "AES256" => Self::Aes256,
            "aws:kms" => Self::AwsKms,
            "aws:kms:dsse" => Self::AwsKmsDsse,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// How an object is encrypted at rest.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct ServerSideEncryption {
    /// The mode.
    pub mode: SseMode,
    /// The KMS key ID or ARN, for SSE-KMS.
    pub kms_key_id: Option<String>,
}

/// Full information on one object (HEAD, or the head of a GET).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ObjectInfo {
    /// The object key.
    pub key: String,
    /// Size of the whole object in bytes.
    pub size: u64,
    /// The entity tag, with its quotes.
    pub etag: Option<String>,
    /// When the object was last written.
    pub last_modified: Option<DateTime<Utc>>,
    /// The version ID, on versioned buckets.
    pub version_id: Option<String>,
    /// User metadata (`x-amz-meta-*`), keys lower-cased and without the prefix.
    pub user_metadata: BTreeMap<String, String>,
    /// Server-side encryption at rest.
    pub sse: ServerSideEncryption,
    /// `Content-Type`, when the source has one.
    pub content_type: Option<String>,
    /// The whole-object checksum the store keeps, when it returned one.
    pub checksum: Option<Checksum>,
}

/// A checksum algorithm S3 can store with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumAlgorithm {
    /// CRC-32 (ISO-HDLC), big-endian.
    Crc32,
    /// CRC-32C (Castagnoli), big-endian.
    Crc32c,
    /// CRC-64/NVME, big-endian: the default for new uploads since 2025.
    Crc64nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

/// A checksum as S3 reports it (`x-amz-checksum-*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Checksum {
    /// The algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// The value, base64, as S3 gave it. A composite (multipart) checksum ends in `-N`.
    pub value: String,
}

impl Checksum {
    /// Whether this checksum covers the whole object's bytes (not a checksum of part
    /// checksums), so that hashing the object can verify it.
    pub fn is_full_object(&self) -> bool {
        !self.value.contains('-')
    }
}

/// A byte range of an object: `start..end`, `end` exclusive, or to the end of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte; `None` for "to the end".
    pub end: Option<u64>,
}

impl ByteRange {
    /// `start..end`.
    pub fn new(start: u64, end: u64) -> Self {
        Self {
            start,
            end: Some(end),
        }
    }

    /// From `start` to the end of the object.
    pub fn from(start: u64) -> Self {
        Self { start, end: None }
    }

    /// Resolves the range against an object of `size` bytes, as S3 does: the end is
    /// clamped to the size; a start at or past the end of a non-empty object is an error.
    pub fn resolve(&self, key: &str, size: u64) -> Result<std::ops::Range<u64>, SourceError> {
        let end = self.end.unwrap_or(size).min(size);
        let empty_ok = size == 0 && self.start == 0;
        if (self.start >= size && !empty_ok) || self.end.is_some_and(|e| e <= self.start) {
            return Err(SourceError::InvalidRange {
                key: key.to_owned(),
                range: *self,
                size,
            });
        }
        Ok(self.start..end)
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end {
            Some(end) => write!(f, "bytes {}..{}", self.start, end),
            None => write!(f, "bytes {}..", self.start),
        }
    }
}

/// What to read in a GET or HEAD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetRequest {
    /// Only these bytes; `None` for the whole object.
    pub range: Option<ByteRange>,
    /// This version rather than the current one.
    pub version_id: Option<String>,
    /// Fail with [`SourceError::Changed`] unless the object still has this ETag.
    pub if_match: Option<String>,
}

/// The body of a GET: the object's info and a stream of its bytes.
pub struct ObjectBody {
    /// The object as it was when the GET started.
    pub info: ObjectInfo,
    /// The bytes this body carries (`start..end` of the object).
    pub range: std::ops::Range<u64>,
    /// The bytes, in order, in chunks of the source's choosing.
    pub stream: BoxStream<'static, Result<Bytes, SourceError>>,
}

impl fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBody")
            .field("info", &self.info)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl ObjectBody {
    /// Reads the whole body into memory, failing once it passes `limit` bytes. Meant for
    /// small objects (sidecars, instruction files); stream anything else.
    pub async fn collect(mut self, limit: u64) -> Result<Bytes, SourceError> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = self.stream.try_next().await? {
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(SourceError::TooLarge {
                    key: self.info.key,
                    limit,
                });
            }
            buf.extend_from_slice(&chunk);
        }
        let expected = self.range.end - self.range.start;
        if buf.len() as u64 != expected {
            return Err(SourceError::Truncated {
                key: self.info.key,
                expected,
                received: buf.len() as u64,
            });
        }
        Ok(buf.freeze())
    }
}

/// A failure of an object source. Each variant names the key (or prefix) and says what
/// the user can do next.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The object does not exist (or that version does not).
    #[error("{key}: no such object")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// The caller may not read it.
    #[error("{key}: access denied: {message}")]
    AccessDenied {
        /// The key asked for.
        key: String,
        /// What the source said, including which permission is missing when known.
        message: String,
        /// What the user can give to get past it, when gcrec can tell.
        hint: Option<crate::Hint>,
    },
    /// The object changed since it was listed (ETag no longer matches).
    #[error(
        "{key}: the object changed while being read (expected ETag {expected}); re-run to fetch the new version"
    )]
    Changed {
        /// The key.
        key: String,
        /// The ETag that was pinned.
        expected: String,
    },
    /// The range does not fit the object.
    #[error("{key}: {range} is outside the object ({size} bytes)")]
    InvalidRange {
        /// The key.
        key: String,
        /// The range asked for.
        range: ByteRange,
        /// The object's size.
        size: u64,
    },
    /// The key cannot be read safely (traversal, absolute path, control characters).
    #[error(
        "{key:?}: refusing an unsafe key (empty, `.`/`..` or absolute segments, backslashes or control characters)"
    )]
    UnsafeKey {
        /// The key.
        key: String,
    },
    /// The body ended before its announced length.
    #[error("{key}: body ended after {received} of {expected} bytes")]
    Truncated {
        /// The key.
        key: String,
        /// Bytes announced.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// A body read with [`ObjectBody::collect`] passed its limit.
    #[error("{key}: larger than {limit} bytes")]
    TooLarge {
        /// The key.
        key: String,
        /// The limit.
        limit: u64,
    },
    /// The source cannot do what was asked (e.g. versions on a local directory).
    #[error("{what} is not supported by {source_kind} sources")]
    Unsupported {
        /// What was asked.
        what: &'static str,
        /// The kind of source.
        source_kind: &'static str,
    },
    /// The source could not be opened.
    #[error("cannot open {location}: {reason}")]
    Open {
        /// Where.
        location: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The remote store failed in a way not covered above (network, throttling, 5xx).
    #[error("{key}: {message}")]
    Remote {
        /// The key (or bucket) being read.
        key: String,
        /// What the store said.
        message: String,
        /// Whether trying again may succeed (5xx, throttling, timeouts, broken bodies).
        retryable: bool,
    },
    /// The bytes received are not the object's: a checksum, MD5 ETag or length did not
    /// match. Nothing read this way is ever released.
    #[error(
        "{key}: integrity check failed: {message}; nothing was written — re-run to fetch it again"
    )]
    Integrity {
        /// The key.
        key: String,
        /// What did not match.
        message: String,
    },
    /// The object is not encrypted at rest as the run requires
    /// ([`crate::transfer::TransferOptions::expect_sse`]).
    #[error("{key}: server-side encryption is {found}, expected {expected}")]
    UnexpectedSse {
        /// The key.
        key: String,
        /// What was required.
        expected: String,
        /// What the object has.
        found: String,
    },
    /// A listing the store answered cannot be trusted: cut short, or repeating itself.
    /// Nothing after the last good page is used.
    #[error("listing {prefix}: {reason}; the store is misbehaving")]
    BadListing {
        /// The prefix being listed.
        prefix: String,
        /// What is wrong.
        reason: String,
        /// Whether asking again may get a whole answer.
        retryable: bool,
    },
    /// A local I/O error.
    #[error("{key}: {source}")]
    Io {
        /// The key (or prefix) being read.
        key: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    /// The key this error is about, if it is about one object.
    pub fn key(&self) -> Option<&str> {
        match self {
            SourceError::NotFound { key }
            | SourceError::AccessDenied { key, .. }
            | SourceError::Changed { key, .. }
            | SourceError::InvalidRange { key, .. }
            | SourceError::UnsafeKey { key }
            | SourceError::Truncated { key, .. }
            | SourceError::TooLarge { key, .. }
            | SourceError::Remote { key, .. }
            | SourceError::Integrity { key, .. }
            | SourceError::UnexpectedSse { key, .. }
            | SourceError::Io { key, .. } => Some(key),
            SourceError::BadListing { prefix, .. } => Some(prefix),
            SourceError::Unsupported { .. } | SourceError::Open { .. } => None,
        }
    }

    /// Whether trying again may succeed: transient store failures, and bodies that ended
    /// early (which resume from the last byte received).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SourceError::Remote {
                retryable: true,
                ..
            } | SourceError::BadListing {
                retryable: true,
                ..
            } | SourceError::Truncated { .. }
        )
    }

    /// Whether this is an authentication or permission failure (exit code 3).
    pub fn is_permission(&self) -> bool {
        matches!(self, SourceError::AccessDenied { .. })
    }

    /// What the user can give to get past this error, when gcrec can tell.
    pub fn hint(&self) -> Option<crate::Hint> {
        match self {
            SourceError::AccessDenied { hint, .. } => *hint,
            SourceError::UnexpectedSse { .. } => Some(crate::Hint::ExpectedSse),
            _ => None,
        }
    }
}

/// Somewhere export objects can be listed and read: an S3 bucket, a local directory laid
/// out like one, or an in-memory map in tests.
///
/// Implementations must list keys in ascending byte order, page like ListObjectsV2
/// (common prefixes count towards the page size) and stream GET bodies without buffering
/// whole objects.
#[async_trait]
pub trait ObjectSource: Send + Sync + fmt::Debug {
    /// A URI for an object, for messages and manifests (`s3://bucket/key`,
    /// `file:///dir/key`). With an empty key, the source itself.
    fn uri(&self, key: &str) -> String;

    /// One page of a listing.
    async fn list(&self, request: &ListRequest) -> Result<ListPage, SourceError>;

    /// An object's info without its body.
    async fn head(&self, key: &str, request: &GetRequest) -> Result<ObjectInfo, SourceError>;

    /// An object's body, streamed.
    async fn get(&self, key: &str, request: &GetRequest) -> Result<ObjectBody, SourceError>;

    /// Whether the store can put objects under legal hold (S3 Object Lock enabled on the
    /// bucket). Stores without legal holds answer [`SourceError::Unsupported`].
    async fn object_lock_enabled(&self) -> Result<bool, SourceError> {
        Err(no_legal_holds())
    }

    /// The region the store answered from last (an S3 bucket followed to its own region
    /// after a redirect); `None` where regions do not apply.
    fn region(&self) -> Option<String> {
        None
    }

    /// Requests retried so far (throttling, 5xx, timeouts, broken bodies): the signal an
    /// adaptive caller backs off on. `0` for a source that never retries.
    fn retries(&self) -> u64 {
        0
    }

    /// The legal hold on one version of an object (`false` when none was ever set).
    async fn legal_hold(&self, key: &str, version_id: Option<&str>) -> Result<bool, SourceError> {
        let _ = (key, version_id);
        Err(no_legal_holds())
    }

    /// Sets (`on`) or releases the legal hold on one version of an object.
    async fn set_legal_hold(
        &self,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Result<(), SourceError> {
        let _ = (key, version_id, on);
        Err(no_legal_holds())
    }
}

fn no_legal_holds() -> SourceError {
    SourceError::Unsupported {
        what: "legal holds (S3 Object Lock)",
        source_kind: "non-S3",
    }
}

#[async_trait]
impl<S: ObjectSource + ?Sized> ObjectSource for Arc<S> {
    fn uri(&self, key: &str) -> String {
        (**self).uri(key)
    }
    async fn list(&self, request: &ListRequest) -> Result<ListPage, SourceError> {
        (**self).list(request).await
    }
    async fn head(&self, key: &str, request: &GetRequest) -> Result<ObjectInfo, SourceError> {
        (**self).head(key, request).await
    }
    async fn get(&self, key: &str, request: &GetRequest) -> Result<ObjectBody, SourceError> {
        (**self).get(key, request).await
    }
    async fn object_lock_enabled(&self) -> Result<bool, SourceError> {
        (**self).object_lock_enabled().await
    }
    fn region(&self) -> Option<String> {
        (**self).region()
    }
    fn retries(&self) -> u64 {
        (**self).retries()
    }
    async fn legal_hold(&self, key: &str, version_id: Option<&str>) -> Result<bool, SourceError> {
        (**self).legal_hold(key, version_id).await
    }
    async fn set_legal_hold(
        &self,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Result<(), SourceError> {
        (**self).set_legal_hold(key, version_id, on).await
    }
}

/// What a listing has seen so far, to tell a store that repeats itself: continuation
/// tokens already used (hashed: 8 bytes a page), and the last key.
#[derive(Debug, Default)]
pub(crate) struct ListingGuard {
    tokens: std::collections::HashSet<u64>,
    last: Option<String>,
}

impl ListingGuard {
    pub(crate) fn check(&mut self, prefix: &str, page: &ListPage) -> Result<(), SourceError> {
        let bad = |reason: String| SourceError::BadListing {
            prefix: prefix.to_owned(),
            reason,
            retryable: false,
        };
        if let Some(token) = &page.next {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            token.hash(&mut h);
            if !self.tokens.insert(h.finish()) {
                return Err(bad("a continuation token came back a second time".into()));
            }
        }
        // Keys and common prefixes come in one ascending order, page after page.
        let mut names: Vec<&str> = page
            .objects
            .iter()
            .map(|o| o.key.as_str())
            .chain(page.common_prefixes.iter().map(String::as_str))
            .collect();
        names.sort_unstable();
        if let (Some(last), Some(first)) = (&self.last, names.first())
            && *first <= last.as_str()
        {
            return Err(bad(format!(
                "a page starts at {first:?}, not after the previous page's last key {last:?}"
            )));
        }
        if let Some(last) = names.last() {
            self.last = Some((*last).to_owned());
        }
        Ok(())
    }
}

/// Every page of a listing, fetched one after another as the stream is polled. A store
/// that repeats a continuation token or goes back in key order ends the listing with
/// [`SourceError::BadListing`] instead of looping forever.
pub fn list_pages<'a, S: ObjectSource + ?Sized>(
    source: &'a S,
    request: ListRequest,
) -> impl Stream<Item = Result<ListPage, SourceError>> + Send + 'a {
    futures::stream::try_unfold(
        Some((request, ListingGuard::default())),
        move |state| async move {
            let Some((request, mut guard)) = state else {
                return Ok(None);
            };
            let page = source.list(&request).await?;
            guard.check(&request.prefix, &page)?;
            let next = page.next.clone().map(|token| {
                (
                    ListRequest {
                        continuation: Some(token),
                        ..request
                    },
                    guard,
                )
            });
            Ok(Some((page, next)))
        },
    )
}

/// The whole listing (all pages) collected: objects and common prefixes.
pub async fn list_all<S: ObjectSource + ?Sized>(
    source: &S,
    request: ListRequest,
) -> Result<ListPage, SourceError> {
    let mut all = ListPage::default();
    let mut pages = std::pin::pin!(list_pages(source, request));
    while let Some(page) = pages.next().await {
        let page = page?;
        all.objects.extend(page.objects);
        all.common_prefixes.extend(page.common_prefixes);
    }
    Ok(all)
}

/// Reads a small object (a sidecar, an instruction file) whole, without reading more
/// than `cap` bytes of it: a bigger one fails with [`SourceError::TooLarge`].
pub async fn read_small<S: ObjectSource + ?Sized>(
    source: &S,
    key: &str,
    cap: u64,
) -> Result<Bytes, SourceError> {
    // Ask for one byte more than the cap: getting it proves the object is too large,
    // without the body ever being read further.
    let request = GetRequest {
        range: Some(ByteRange::new(0, cap + 1)),
        ..GetRequest::default()
    };
    let body = match source.get(key, &request).await {
        // An empty object has no byte 0 for a range to start at.
        Err(SourceError::InvalidRange { size: 0, .. }) => return Ok(Bytes::new()),
        other => other?,
    };
    if body.info.size > cap {
        return Err(SourceError::TooLarge {
            key: key.to_owned(),
            limit: cap,
        });
    }
    body.collect(cap).await
}
