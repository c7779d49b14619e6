//! Downloads: one streaming GET for small objects, concurrent ranged parts for large ones,
//! a global budget of bytes in flight, and integrity checks before the last byte is
//! handed over.
//!
//! [`download`] returns one ordered stream of an object's bytes whatever the route. The
//! stream ends with an error rather than a clean end when the bytes are not the object's
//! (length, stored checksum, MD5 ETag) or when its server-side encryption is not what
//! [`TransferOptions::expect_sse`] requires, so a consumer that releases output only on
//! a clean end never releases bad bytes.
//!
//! Large objects are read as parts pinned to the ETag and version the HEAD saw, so an
//! object replaced mid-download fails with [`SourceError::Changed`] instead of being
//! spliced. Each part takes its length from a [`ByteBudget`] shared by every download
//! before it is requested and gives it back once its bytes have been handed on: however
//! many objects and whatever their sizes, buffered part bytes never exceed the budget.
//! Parts of one object take budget in order, so the part a consumer waits for always
//! holds its share and downloads cannot deadlock each other.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use base64::Engine;
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use md5::Md5;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::source::{
    ByteRange, ChecksumAlgorithm, GetRequest, ObjectInfo, ObjectSource, SourceError, SseMode,
};

/// Objects at least this large are fetched as ranged parts.
pub const DEFAULT_PART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// The size of one ranged part.
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// Parts of one object in flight at once.
pub const DEFAULT_PARTS_PER_OBJECT: usize = 4;
/// Part bytes buffered across all downloads.
pub const DEFAULT_BUDGET: u64 = 64 * 1024 * 1024;

/// The server-side encryption an object must have (`--expect-sse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectSse {
    /// SSE-S3 (`AES256`).
    Aes256,
    /// SSE-KMS, with this key when one is given (an ARN, a key ID or an alias ARN).
    Kms(Option<String>),
}

impl std::str::FromStr for ExpectSse {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "AES256" | "aes256" | "sse-s3" => Ok(Self::Aes256),
            "aws:kms" | "sse-kms" => Ok(Self::Kms(None)),
            _ => match s.strip_prefix("aws:kms:") {
                Some(key) if !key.is_empty() => Ok(Self::Kms(Some(key.to_owned()))),
                _ => Err(format!(
                    "{s:?}: expected AES256, aws:kms or aws:kms:KEY-ARN"
                )),
            },
        }
    }
}

impl std::fmt::Display for ExpectSse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Aes256 => f.write_str("AES256"),
            Self::Kms(None) => f.write_str("aws:kms"),
            Self::Kms(Some(key)) => write!(f, "aws:kms with key {key}"),
        }
    }
}

/// The last segment of a key ARN or the ID itself: `arn:aws:kms:r:a:key/ID` → `ID`.
fn key_id(arn_or_id: &str) -> &str {
    arn_or_id.rsplit('/').next().unwrap_or(arn_or_id)
}

impl ExpectSse {
    /// Checks an object's encryption, naming what was found when it does not match.
    pub fn check(&self, info: &ObjectInfo) -> Result<(), SourceError> {
        let sse = &info.sse;
        let ok = match (self, &sse.mode) {
            (Self::Aes256, SseMode::Aes256) => true,
            (Self::Kms(None), SseMode::AwsKms | SseMode::AwsKmsDsse) => true,
            (Self::Kms(Some(want)), SseMode::AwsKms | SseMode::AwsKmsDsse) => sse
                .kms_key_id
                .as_deref()
                .is_some_and(|got| got == want || key_id(got) == key_id(want)),
            _ => false,
        };
        if ok {
            return Ok(());
        }
        let found = match (&sse.mode, &sse.kms_key_id) {
            (SseMode::None, _) => "none".to_owned(),
            (SseMode::Aes256, _) => "AES256".to_owned(),
            (SseMode::AwsKms, Some(k)) => format!("aws:kms with key {k}"),
            (SseMode::AwsKms, None) => "aws:kms (no key ID reported)".to_owned(),
            (SseMode::AwsKmsDsse, k) => format!(
                "aws:kms:dsse{}",
                k.as_ref()
                    .map(|k| format!(" with key {k}"))
                    .unwrap_or_default()
            ),
            (SseMode::CustomerKey, _) => "SSE-C".to_owned(),
            (SseMode::Other(o), _) => o.clone(),
        };
        Err(SourceError::UnexpectedSse {
            key: info.key.clone(),
            expected: self.to_string(),
            found,
        })
    }
}

/// How objects are fetched.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    /// Objects at least this large are fetched as ranged parts.
    pub part_threshold: u64,
    /// The size of one part.
    pub part_size: u64,
    /// Parts of one object in flight at once.
    pub parts_per_object: usize,
    /// Fail objects not encrypted at rest like this.
    pub expect_sse: Option<ExpectSse>,
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self {
            part_threshold: DEFAULT_PART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            parts_per_object: DEFAULT_PARTS_PER_OBJECT,
            expect_sse: None,
        }
    }
}

/// Budget units are KiB, so a budget may exceed what one semaphore acquisition counts.
const UNIT: u64 = 1024;

/// Bytes of downloaded parts buffered at once, across every download sharing it.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    units: u32,
}

impl ByteBudget {
    /// A budget of `bytes` (at least one part's worth is always granted, see
    /// [`ByteBudget::acquire`]).
    pub fn new(bytes: u64) -> Self {
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .max(1);
        Self {
            semaphore: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// The budget in bytes.
    pub fn bytes(&self) -> u64 {
        u64::from(self.units) * UNIT
    }

    /// Bytes not taken right now.
    pub fn available(&self) -> u64 {
        self.semaphore.available_permits() as u64 * UNIT
    }

    /// Waits until `bytes` can be taken; a request larger than the whole budget takes
    /// the whole budget (it would otherwise wait forever).
    pub async fn acquire(&self, bytes: u64) -> OwnedSemaphorePermit {
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.units);
        self.semaphore
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("the budget's semaphore is never closed")
    }
}

impl Default for ByteBudget {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET)
    }
}

/// What was checked about a finished download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Bytes received (always equal to the object's size).
    pub size: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// What the bytes were checked against besides their length: `checksum-sha256`,
    /// `checksum-crc64nvme`, …, `md5-etag`; empty when the store kept nothing usable
    /// or the consumer took the MD5 check over ([`VerifiedHandle::skip_etag_md5`]).
    pub checked: Vec<String>,
}

/// Where the result of a download's checks appears once its stream has ended cleanly.
#[derive(Debug, Clone, Default)]
pub struct VerifiedHandle(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    result: OnceLock<Verified>,
    skip_etag_md5: AtomicBool,
}

impl VerifiedHandle {
    /// The checks, once the stream has ended cleanly; `None` before or after a failure.
    pub fn get(&self) -> Option<&Verified> {
        self.0.result.get()
    }

    /// Stops comparing the bytes with an MD5 ETag from here on, for a consumer that
    /// authenticates every byte itself (an AES-GCM tag, an OpenPGP MDC) and records
    /// that check instead. MD5 was the largest single CPU cost of pulling small
    /// encrypted objects, and adds nothing to a cryptographic tag over the same bytes.
    /// A stored checksum (SHA-256, CRC, …) is still compared: S3 keeps it for the
    /// object, and it is cheap. The length is always checked.
    pub fn skip_etag_md5(&self) {
        self.0.skip_etag_md5.store(true, Ordering::Relaxed);
    }
}

/// An object on its way: its info and one ordered, verified stream of its bytes.
pub struct Download {
    /// The object as the first response described it.
    pub info: ObjectInfo,
    /// The bytes, in order. Ends with an error instead of cleanly when a check fails.
    pub stream: BoxStream<'static, Result<Bytes, SourceError>>,
    /// Filled in when the stream ends cleanly.
    pub verified: VerifiedHandle,
    /// How many GETs the body takes (1, or the number of ranged parts).
    pub parts: usize,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("info", &self.info)
            .field("parts", &self.parts)
            .finish_non_exhaustive()
    }
}

/// Starts downloading `key`. `listed_size` (from the listing) decides whether it is worth
/// a HEAD to plan ranged parts; `version_id` pins a version.
pub async fn download(
    source: Arc<dyn ObjectSource>,
    key: &str,
    listed_size: Option<u64>,
    version_id: Option<String>,
    options: &TransferOptions,
    budget: &ByteBudget,
) -> Result<Download, SourceError> {
    let request = GetRequest {
        version_id,
        ..GetRequest::default()
    };
    let part_size = options.part_size.max(UNIT);
    if listed_size.is_some_and(|s| s >= options.part_threshold) {
        let info = source.head(key, &request).await?;
        if info.size >= options.part_threshold {
            if let Some(expect) = &options.expect_sse {
                expect.check(&info)?;
            }
            let pinned = GetRequest {
                range: None,
                version_id: request
                    .version_id
                    .clone()
                    .or_else(|| info.version_id.clone()),
                if_match: info.etag.clone(),
            };
            let ranges: Vec<ByteRange> = (0..info.size)
                .step_by(usize::try_from(part_size).unwrap_or(usize::MAX))
                .map(|start| ByteRange::new(start, (start + part_size).min(info.size)))
                .collect();
            let parts = ranges.len();
            let stream = ranged(
                source,
                key.to_owned(),
                pinned,
                ranges,
                options.parts_per_object.max(1),
                budget.clone(),
            );
            return Ok(verify(info, stream, parts));
        }
    }
    let body = source.get(key, &request).await?;
    if let Some(expect) = &options.expect_sse {
        expect.check(&body.info)?;
    }
    Ok(verify(body.info, body.stream, 1))
}

/// A spawned task that is aborted when its handle is dropped (a download given up on
/// stops fetching its parts).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// One downloaded part's chunks; its budget goes back when the last chunk has been
/// handed on (the iterator is dropped).
struct Part {
    chunks: VecDeque<Bytes>,
    _permit: OwnedSemaphorePermit,
}

impl Iterator for Part {
    type Item = Result<Bytes, SourceError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.chunks.pop_front().map(Ok)
    }
}

async fn fetch_part(
    source: Arc<dyn ObjectSource>,
    key: String,
    request: GetRequest,
) -> Result<VecDeque<Bytes>, SourceError> {
    let body = source.get(&key, &request).await?;
    // A store that ignored If-Match must still not splice two versions.
    if let (Some(want), Some(got)) = (&request.if_match, &body.info.etag)
        && want != got
    {
        return Err(SourceError::Changed {
            key,
            expected: want.clone(),
        });
    }
    let expected = body.range.end - body.range.start;
    let chunks: VecDeque<Bytes> = body.stream.try_collect().await?;
    let received: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    if received != expected {
        return Err(SourceError::Truncated {
            key,
            expected,
            received,
        });
    }
    Ok(chunks)
}

fn ranged(
    source: Arc<dyn ObjectSource>,
    key: String,
    pinned: GetRequest,
    ranges: Vec<ByteRange>,
    in_flight: usize,
    budget: ByteBudget,
) -> BoxStream<'static, Result<Bytes, SourceError>> {
    futures::stream::iter(ranges)
        // Budget is taken in part order, before the part is requested.
        .then(move |range| {
            let budget = budget.clone();
            async move {
                let len = range.end.unwrap_or(range.start) - range.start;
                (range, budget.acquire(len).await)
            }
        })
        .map(move |(range, permit)| {
            let request = GetRequest {
                range: Some(range),
                ..pinned.clone()
            };
            let task = AbortOnDrop(tokio::spawn(fetch_part(
                source.clone(),
                key.clone(),
                request,
            )));
            let key = key.clone();
            async move {
                match task.await {
                    Ok(Ok(chunks)) => Ok(futures::stream::iter(Part {
                        chunks,
                        _permit: permit,
                    })),
                    Ok(Err(e)) => Err(e),
                    Err(join) => Err(SourceError::Remote {
                        key,
                        message: format!("a part download stopped: {join}"),
                        retryable: false,
                    }),
                }
            }
        })
        .buffered(in_flight)
        .try_flatten()
        .boxed()
}

/// A whole-object check, run over every byte.
enum Check {
    Crc(crc_fast::Digest, usize, String),
    Sha1(sha1::Sha1, String),
    /// Compared with the SHA-256 computed anyway.
    Sha256(String),
    Md5Etag(Md5, String),
}

impl Check {
    /// The checks an object's info allows: its stored full-object checksum; otherwise
    /// its ETag, when that is an MD5 of the content (single-part upload, not SSE-KMS or
    /// SSE-C, which make the ETag something else).
    fn for_object(info: &ObjectInfo) -> Option<Check> {
        if let Some(c) = info.checksum.as_ref().filter(|c| c.is_full_object()) {
            use crc_fast::CrcAlgorithm as Crc;
            let value = c.value.clone();
            return Some(match c.algorithm {
                ChecksumAlgorithm::Crc32 => {
                    Check::Crc(crc_fast::Digest::new(Crc::Crc32IsoHdlc), 4, value)
                }
                ChecksumAlgorithm::Crc32c => {
                    Check::Crc(crc_fast::Digest::new(Crc::Crc32Iscsi), 4, value)
                }
                ChecksumAlgorithm::Crc64nvme => {
                    Check::Crc(crc_fast::Digest::new(Crc::Crc64Nvme), 8, value)
                }
                ChecksumAlgorithm::Sha1 => Check::Sha1(sha1::Sha1::new(), value),
                ChecksumAlgorithm::Sha256 => Check::Sha256(value),
            });
        }
        let etag = info.etag.as_deref()?.trim_matches('"');
        let is_md5 = etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit());
        let sse_keeps_md5 = matches!(info.sse.mode, SseMode::None | SseMode::Aes256);
        (is_md5 && sse_keeps_md5).then(|| Check::Md5Etag(Md5::new(), etag.to_ascii_lowercase()))
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Check::Crc(d, ..) => d.update(data),
            Check::Sha1(d, _) => d.update(data),
            Check::Sha256(_) => {}
            Check::Md5Etag(d, _) => d.update(data),
        }
    }

    /// `Ok(name)` when the bytes match, else what did not.
    fn finish(self, sha256: &[u8]) -> Result<String, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let (name, expected, got) = match self {
            Check::Crc(d, width, want) => {
                let crc = d.finalize().to_be_bytes();
                let name = match width {
                    4 => "crc32",
                    _ => "crc64",
                };
                (
                    format!("checksum-{name}"),
                    want,
                    b64.encode(&crc[8 - width..]),
                )
            }
            Check::Sha1(d, want) => ("checksum-sha1".into(), want, b64.encode(d.finalize())),
            Check::Sha256(want) => ("checksum-sha256".into(), want, b64.encode(sha256)),
            Check::Md5Etag(d, want) => ("md5-etag".into(), want, hex::encode(d.finalize())),
        };
        if expected == got {
            Ok(name)
        } else {
            Err(format!(
                "{name}: the store has {expected}, the bytes received give {got}"
            ))
        }
    }
}

/// Wraps a body so that it ends in an error instead of cleanly unless every byte checks.
fn verify(
    info: ObjectInfo,
    inner: BoxStream<'static, Result<Bytes, SourceError>>,
    parts: usize,
) -> Download {
    let verified = VerifiedHandle::default();
    let stream = Verifying {
        inner,
        key: info.key.clone(),
        size: info.size,
        received: 0,
        sha256: Sha256::new(),
        check: Check::for_object(&info),
        handle: verified.clone(),
        done: false,
    };
    Download {
        info,
        stream: stream.boxed(),
        verified,
        parts,
    }
}

struct Verifying {
    inner: BoxStream<'static, Result<Bytes, SourceError>>,
    key: String,
    size: u64,
    received: u64,
    sha256: Sha256,
    check: Option<Check>,
    handle: VerifiedHandle,
    done: bool,
}

impl Verifying {
    /// Drops the ETag MD5 check once the consumer has taken it over, wherever the stream
    /// is (a body that fits in the consumer's first read ends after it asked).
    fn drop_skipped_md5(&mut self) {
        if matches!(self.check, Some(Check::Md5Etag(..)))
            && self.handle.0.skip_etag_md5.load(Ordering::Relaxed)
        {
            self.check = None;
        }
    }

    fn finish(&mut self) -> Result<(), SourceError> {
        self.drop_skipped_md5();
        if self.received != self.size {
            return Err(SourceError::Truncated {
                key: self.key.clone(),
                expected: self.size,
                received: self.received,
            });
        }
        let sha256 = std::mem::take(&mut self.sha256).finalize();
        let mut checked = Vec::new();
        if let Some(check) = self.check.take() {
            match check.finish(&sha256) {
                Ok(name) => checked.push(name),
                Err(message) => {
                    return Err(SourceError::Integrity {
                        key: self.key.clone(),
                        message,
                    });
                }
            }
        }
        let _ = self.handle.0.result.set(Verified {
            size: self.received,
            sha256: hex::encode(sha256),
            checked,
        });
        Ok(())
    }
}

impl Stream for Verifying {
    type Item = Result<Bytes, SourceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                if self.received > self.size {
                    self.done = true;
                    return Poll::Ready(Some(Err(SourceError::Integrity {
                        key: self.key.clone(),
                        message: format!("more than the {} bytes announced", self.size),
                    })));
                }
                self.sha256.update(&chunk);
                self.drop_skipped_md5();
                if let Some(check) = self.check.as_mut() {
                    check.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.done = true;
                match self.finish() {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Checksum, MemorySource, ServerSideEncryption};

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    async fn collect(d: Download) -> Result<Vec<u8>, SourceError> {
        let chunks: Vec<Bytes> = d.stream.try_collect().await?;
        Ok(chunks.concat())
    }

    fn small_parts() -> TransferOptions {
        TransferOptions {
            part_threshold: 10_000,
            part_size: 4096,
            parts_per_object: 3,
            expect_sse: None,
        }
    }

    #[tokio::test]
    async fn ranged_parts_reassemble_in_order_within_the_budget() {
        let data = pattern(100_000);
        let source = MemorySource::new();
        source.put_bytes("big", data.clone());
        let source: Arc<dyn ObjectSource> = Arc::new(source);
        let budget = ByteBudget::new(3 * 4096);
        let d = download(source, "big", Some(100_000), None, &small_parts(), &budget)
            .await
            .unwrap();
        assert_eq!(d.parts, 25);
        let verified = d.verified.clone();
        assert_eq!(collect(d).await.unwrap(), data);
        let v = verified.get().unwrap();
        assert_eq!(v.size, 100_000);
        assert_eq!(v.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(budget.available(), budget.bytes(), "all budget returned");
    }

    #[tokio::test]
    async fn many_downloads_share_a_small_budget_without_deadlock() {
        let source = MemorySource::new();
        for i in 0..6 {
            source.put_bytes(format!("o{i}"), pattern(50_000 + i));
        }
        let source: Arc<dyn ObjectSource> = Arc::new(source);
        let budget = ByteBudget::new(8192);
        let mut downloads = Vec::new();
        for i in 0..6 {
            downloads.push(
                download(
                    source.clone(),
                    &format!("o{i}"),
                    Some(50_000),
                    None,
                    &small_parts(),
                    &budget,
                )
                .await
                .unwrap(),
            );
        }
        // Consumed in reverse order of creation: early downloads' parts hold budget.
        for (i, d) in downloads.into_iter().enumerate().rev() {
            let bytes = tokio::time::timeout(std::time::Duration::from_secs(10), collect(d))
                .await
                .expect("no deadlock")
                .unwrap();
            assert_eq!(bytes, pattern(50_000 + i));
        }
    }

    #[tokio::test]
    async fn a_wrong_stored_checksum_fails_the_stream() {
        let data = pattern(20_000);
        let source = MemorySource::new();
        source.put_bytes("x", data.clone());
        let source = Arc::new(source);
        let mut info = source.head("x", &GetRequest::default()).await.unwrap();
        info.checksum = Some(Checksum {
            algorithm: ChecksumAlgorithm::Sha256,
            value: base64::engine::general_purpose::STANDARD.encode([0u8; 32]),
        });
        let body = source.get("x", &GetRequest::default()).await.unwrap();
        let d = verify(info, body.stream, 1);
        let err = collect(d).await.unwrap_err();
        assert!(matches!(err, SourceError::Integrity { .. }), "{err}");
    }

    #[tokio::test]
    async fn stored_checksums_of_each_algorithm_verify() {
        let data = pattern(5000);
        let b64 = base64::engine::general_purpose::STANDARD;
        use crc_fast::CrcAlgorithm as Crc;
        let cases = [
            (
                ChecksumAlgorithm::Crc32,
                b64.encode((crc_fast::checksum(Crc::Crc32IsoHdlc, &data) as u32).to_be_bytes()),
            ),
            (
                ChecksumAlgorithm::Crc32c,
                b64.encode((crc_fast::checksum(Crc::Crc32Iscsi, &data) as u32).to_be_bytes()),
            ),
            (
                ChecksumAlgorithm::Crc64nvme,
                b64.encode(crc_fast::checksum(Crc::Crc64Nvme, &data).to_be_bytes()),
            ),
            (
                ChecksumAlgorithm::Sha1,
                b64.encode(sha1::Sha1::digest(&data)),
            ),
            (ChecksumAlgorithm::Sha256, b64.encode(Sha256::digest(&data))),
        ];
        // CRC-32 of "123456789" is the textbook CBF43926.
        assert_eq!(
            crc_fast::checksum(Crc::Crc32IsoHdlc, b"123456789"),
            0xCBF4_3926
        );
        for (algorithm, value) in cases {
            let info = ObjectInfo {
                key: "k".into(),
                size: data.len() as u64,
                checksum: Some(Checksum { algorithm, value }),
                ..ObjectInfo::default()
            };
            let stream = futures::stream::iter(vec![Ok(Bytes::from(data.clone()))]).boxed();
            let d = verify(info, stream, 1);
            let verified = d.verified.clone();
            collect(d).await.unwrap();
            assert_eq!(verified.get().unwrap().checked.len(), 1, "{algorithm:?}");
        }
    }

    #[tokio::test]
    async fn md5_etags_are_checked_only_where_they_are_md5s() {
        let data = b"hello".to_vec();
        let md5 = "\"5d41402abc4b2a76b9719d911017c592\"".to_owned();
        let info = |etag: &str, mode: SseMode| ObjectInfo {
            key: "k".into(),
            size: 5,
            etag: Some(etag.to_owned()),
            sse: ServerSideEncryption {
                mode,
                kms_key_id: None,
            },
            ..ObjectInfo::default()
        };
        let run = |info: ObjectInfo| {
            let stream = futures::stream::iter(vec![Ok(Bytes::from(data.clone()))]).boxed();
            verify(info, stream, 1)
        };
        let d = run(info(&md5, SseMode::Aes256));
        let v = d.verified.clone();
        collect(d).await.unwrap();
        assert_eq!(v.get().unwrap().checked, vec!["md5-etag".to_owned()]);
        let wrong = "\"00000000000000000000000000000000\"";
        assert!(collect(run(info(wrong, SseMode::None))).await.is_err());
        // SSE-KMS ETags and multipart ETags are not MD5s of the content.
        collect(run(info(wrong, SseMode::AwsKms))).await.unwrap();
        collect(run(info(
            "\"0123456789abcdef0123456789abcdef-3\"",
            SseMode::None,
        )))
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_consumer_that_authenticates_the_bytes_can_skip_the_md5() {
        let info = |etag: &str| ObjectInfo {
            key: "k".into(),
            size: 10,
            etag: Some(etag.to_owned()),
            ..ObjectInfo::default()
        };
        let chunks = || {
            futures::stream::iter(vec![
                Ok(Bytes::from_static(b"hello")),
                Ok(Bytes::from_static(b"world")),
            ])
            .boxed()
        };
        // An ETag that is not the content's MD5 fails the download ...
        let wrong = "\"00000000000000000000000000000000\"";
        assert!(collect(verify(info(wrong), chunks(), 1)).await.is_err());
        // ... unless the consumer said, after the first chunk, that it checks the bytes
        // itself; then no MD5 is claimed, and the length is still checked.
        let mut d = verify(info(wrong), chunks(), 1);
        let handle = d.verified.clone();
        assert_eq!(d.stream.next().await.unwrap().unwrap(), "hello");
        handle.skip_etag_md5();
        collect(d).await.unwrap();
        assert_eq!(handle.get().unwrap().checked, Vec::<String>::new());
        // Also when it says so after the last chunk, before the end.
        let mut d = verify(info(wrong), chunks(), 1);
        let handle = d.verified.clone();
        assert_eq!(d.stream.next().await.unwrap().unwrap(), "hello");
        assert_eq!(d.stream.next().await.unwrap().unwrap(), "world");
        handle.skip_etag_md5();
        assert!(d.stream.next().await.is_none());
        assert_eq!(handle.get().unwrap().checked, Vec::<String>::new());
        let short = ObjectInfo {
            size: 11,
            ..info(wrong)
        };
        let d = verify(short, chunks(), 1);
        d.verified.skip_etag_md5();
        assert!(matches!(
            collect(d).await.unwrap_err(),
            SourceError::Truncated { .. }
        ));
    }

    #[tokio::test]
    async fn short_bodies_fail() {
        let info = ObjectInfo {
            key: "k".into(),
            size: 10,
            ..ObjectInfo::default()
        };
        let stream = futures::stream::iter(vec![Ok(Bytes::from_static(b"12345"))]).boxed();
        let err = collect(verify(info, stream, 1)).await.unwrap_err();
        assert!(matches!(err, SourceError::Truncated { .. }));
    }

    #[test]
    fn expect_sse_parses_and_checks() {
        let kms_info = |key: &str| ObjectInfo {
            key: "k".into(),
            sse: ServerSideEncryption {
                mode: SseMode::AwsKms,
                kms_key_id: Some(key.to_owned()),
            },
            ..ObjectInfo::default()
        };
        let arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab";
        let want: ExpectSse = format!("aws:kms:{arn}").parse().unwrap();
        assert!(want.check(&kms_info(arn)).is_ok());
        assert!(want.check(&kms_info("1234abcd-12ab")).is_ok());
        let err = want.check(&kms_info("other")).unwrap_err().to_string();
        assert!(err.contains("aws:kms with key other"), "{err}");
        assert!(
            "aws:kms"
                .parse::<ExpectSse>()
                .unwrap()
                .check(&kms_info("x"))
                .is_ok()
        );
        let plain = ObjectInfo {
            key: "k".into(),
            ..ObjectInfo::default()
        };
        let err = ExpectSse::Aes256.check(&plain).unwrap_err().to_string();
        assert!(err.contains("is none, expected AES256"), "{err}");
        assert!("aws:kms:".parse::<ExpectSse>().is_err());
        assert!("rot13".parse::<ExpectSse>().is_err());
    }

    #[tokio::test]
    async fn a_replaced_object_is_never_spliced() {
        let source = MemorySource::new();
        source.put_bytes("big", pattern(40_000));
        let source = Arc::new(source);
        let dyn_source: Arc<dyn ObjectSource> = source.clone();
        let d = download(
            dyn_source,
            "big",
            Some(40_000),
            None,
            &small_parts(),
            &ByteBudget::new(4096),
        )
        .await
        .unwrap();
        let mut stream = d.stream;
        let mut received = stream.next().await.unwrap().unwrap().to_vec();
        source.put_bytes("big", vec![7u8; 40_000]);
        let mut failed = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => received.extend_from_slice(&chunk),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        // Whatever arrived is the old object's; then the change is reported.
        assert_eq!(&received[..], &pattern(40_000)[..received.len()]);
        assert!(received.len() < 40_000);
        assert!(
            matches!(failed, Some(SourceError::Changed { .. })),
            "{failed:?}"
        );
    }
}
