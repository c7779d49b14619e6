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

mod budget;
mod sse;
mod verify;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

pub use budget::ByteBudget;
use budget::UNIT;
pub use sse::ExpectSse;
use verify::verify;
pub use verify::{HOLD_UNDECIDED, Verified, VerifiedHandle};

use crate::source::{ByteRange, GetRequest, ObjectInfo, ObjectSource, SourceError};

/// Objects at least this large are fetched as ranged parts.
pub const DEFAULT_PART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// The smallest scaled part. 16 MiB rather than aws-cli's 8: with four parts of an object
/// in flight the part size does not limit throughput, and every GET has a fixed cost —
/// a first-byte round trip on S3, a request to sign and parse here, a whole-object read
/// on some stores (s3s-fs and moto: 9 reads of a 64 MiB object in 8 MiB parts, 5 in
/// 16 MiB ones, docs/BENCHMARKS.md). s5cmd uses 50 MB, rclone 64 MiB.
pub const DEFAULT_PART_SIZE: u64 = 16 * 1024 * 1024;
/// The smallest part a small budget shrinks scaled parts to, so that
/// `parts_per_object` of them still fit.
pub const MIN_SCALED_PART_SIZE: u64 = 8 * 1024 * 1024;
/// The largest part the scaled size grows to.
pub const MAX_SCALED_PART_SIZE: u64 = 64 * 1024 * 1024;
/// A large object is fetched in at most about this many scaled parts.
pub const SCALED_PARTS: u64 = 16;
/// Parts of one object in flight at once.
pub const DEFAULT_PARTS_PER_OBJECT: usize = 4;
/// Part bytes buffered across all downloads.
pub const DEFAULT_BUDGET: u64 = 64 * 1024 * 1024;

/// How objects are fetched.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    /// Objects at least this large are fetched as ranged parts.
    pub part_threshold: u64,
    /// The size of one part: the smallest, when `scale_parts` is on.
    pub part_size: u64,
    /// Grow parts with the object — `size / 16`, between `part_size` and
    /// [`MAX_SCALED_PART_SIZE`], and small enough that `parts_per_object` parts fit in
    /// the budget (down to [`MIN_SCALED_PART_SIZE`]) — so a 512 MiB object takes 16
    /// requests with a 1 GiB budget (32 with the default one), not 64. Off when the part
    /// size is pinned.
    pub scale_parts: bool,
    /// Parts of one object in flight at once.
    pub parts_per_object: usize,
    /// Fail objects not encrypted at rest like this.
    pub expect_sse: Option<ExpectSse>,
}

impl TransferOptions {
    /// The part size for an object of `size` bytes, downloaded within a budget of
    /// `budget` bytes. A scaled part is never so large that fewer than
    /// `parts_per_object` parts fit in the budget together: parts take their budget
    /// before they are requested, so 32 MiB parts in a 64 MiB budget would leave two
    /// requests in flight where four were asked for.
    pub fn part_size_for(&self, size: u64, budget: u64) -> u64 {
        let least = self.part_size.max(UNIT);
        if self.scale_parts {
            let fits = budget / self.parts_per_object.max(1) as u64;
            let floor = least.min(MIN_SCALED_PART_SIZE);
            size.div_ceil(SCALED_PARTS)
                .clamp(least, MAX_SCALED_PART_SIZE.max(least))
                .min(fits.max(floor))
        } else {
            least
        }
    }
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self {
            part_threshold: DEFAULT_PART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            scale_parts: true,
            parts_per_object: DEFAULT_PARTS_PER_OBJECT,
            expect_sse: None,
        }
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
/// a HEAD to plan ranged parts; `pin` may name a version (`version_id`) and the ETag the
/// object must still have (`if_match`: otherwise [`SourceError::Changed`], and no byte is
/// handed on). Its range is ignored.
pub async fn download(
    source: Arc<dyn ObjectSource>,
    key: &str,
    listed_size: Option<u64>,
    pin: GetRequest,
    options: &TransferOptions,
    budget: &ByteBudget,
) -> Result<Download, SourceError> {
    let request = GetRequest { range: None, ..pin };
    // A store that ignores If-Match must still not hand on another object.
    let still_pinned = |info: &ObjectInfo| match (&request.if_match, &info.etag) {
        (Some(want), Some(got)) if want != got => Err(SourceError::Changed {
            key: key.to_owned(),
            expected: want.clone(),
        }),
        _ => Ok(()),
    };
    if listed_size.is_some_and(|s| s >= options.part_threshold) {
        let info = source.head(key, &request).await?;
        still_pinned(&info)?;
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
            let part_size = options.part_size_for(info.size, budget.bytes());
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
    // A body may wait in memory for a decryptor: what it can hold counts against the
    // budget's share for bodies fetched ahead, so requests in flight (hundreds under
    // adaptive concurrency) cannot hold more than that between them.
    let ahead = Arc::new(
        budget
            .acquire_ahead(
                listed_size
                    .map_or(AHEAD_PER_BODY, |s| s.saturating_mul(BUFFER_OVERHEAD))
                    .min(AHEAD_PER_BODY),
            )
            .await,
    );
    let body = source.get(key, &request).await?;
    still_pinned(&body.info)?;
    if let Some(expect) = &options.expect_sse {
        expect.check(&body.info)?;
    }
    let stream = body
        .stream
        .map_ok(move |chunk| {
            Bytes::from_owner(Counted {
                chunk,
                _share: ahead.clone(),
            })
        })
        .boxed();
    Ok(verify(body.info, stream, 1))
}

/// A chunk of a body fetched ahead, holding the body's share of the budget. The share
/// comes back once the stream and every chunk it handed out are gone: a small body is
/// often received whole, its stream ended, long before a decryptor reads it, and
/// giving the share back at the stream's end let hundreds of such bodies wait in memory
/// at once (270 MB at 256 requests in flight for 256 KiB recordings).
struct Counted {
    chunk: Bytes,
    _share: Arc<OwnedSemaphorePermit>,
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.chunk
    }
}

/// The most a body fetched with one GET counts against the budget for bodies fetched
/// ahead: what it can hold while it waits — the few chunks its consumer's bounded channel
/// takes and the connection's read buffer; the rest waits in the socket (TCP's own
/// back-pressure). Charging a large object its whole size would let one 64 MiB object
/// shut every small one out (measured: 2.5 s instead of 1.7 s for 340 recordings).
const AHEAD_PER_BODY: u64 = 1024 * 1024;

/// What a small body costs in memory per byte while it waits: its chunks are slices of
/// the connection's read buffers, which grow ahead of what they end up holding and stay
/// allocated while any slice of them lives. Measured with heaptrack, 2,190 OpenPGP
/// recordings of 256 KiB at 256 requests in flight: 74 MB of read buffers at the peak
/// for 32 MiB of bodies counted at their size.
const BUFFER_OVERHEAD: u64 = 2;

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

/// One part on its way: its chunks in order, as they arrive (the first part is read while
/// it downloads, not after). Its budget goes back, and its download stops, when it is
/// dropped — after its last chunk has been handed on, or when the object is given up.
struct Part {
    chunks: mpsc::UnboundedReceiver<Result<Bytes, SourceError>>,
    _task: AbortOnDrop<()>,
    _permit: OwnedSemaphorePermit,
}

impl Stream for Part {
    type Item = Result<Bytes, SourceError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.poll_recv(cx)
    }
}

/// Downloads one part into `tx`: its chunks, then an error if it was not all there. The
/// channel holds at most the part's bytes, which the budget has already counted.
async fn fetch_part(
    source: Arc<dyn ObjectSource>,
    key: String,
    request: GetRequest,
    tx: mpsc::UnboundedSender<Result<Bytes, SourceError>>,
) {
    let fetch = async {
        let body = source.get(&key, &request).await?;
        // A store that ignored If-Match must still not splice two versions.
        if let (Some(want), Some(got)) = (&request.if_match, &body.info.etag)
            && want != got
        {
            return Err(SourceError::Changed {
                key: key.clone(),
                expected: want.clone(),
            });
        }
        let expected = body.range.end - body.range.start;
        let mut received = 0u64;
        let mut stream = body.stream;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            received += chunk.len() as u64;
            if tx.send(Ok(chunk)).is_err() {
                return Ok(());
            }
        }
        if received != expected {
            return Err(SourceError::Truncated {
                key: key.clone(),
                expected,
                received,
            });
        }
        Ok(())
    };
    if let Err(e) = fetch.await {
        let _ = tx.send(Err(e));
    }
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
            let (tx, chunks) = mpsc::unbounded_channel();
            let task = AbortOnDrop(tokio::spawn(fetch_part(
                source.clone(),
                key.clone(),
                request,
                tx,
            )));
            // Ready at once: `buffered` keeps `in_flight` parts downloading ahead of the
            // one being read.
            futures::future::ready(Ok::<_, SourceError>(Part {
                chunks,
                _task: task,
                _permit: permit,
            }))
        })
        .buffered(in_flight)
        .try_flatten()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Checksum, ChecksumAlgorithm, MemorySource, ServerSideEncryption, SseMode};
    use base64::Engine;
    use sha2::{Digest, Sha256};

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
            scale_parts: false,
            parts_per_object: 3,
            expect_sse: None,
        }
    }

    #[test]
    fn parts_grow_with_the_object_unless_pinned() {
        let mib = 1024 * 1024;
        let scaled = TransferOptions::default();
        let large_budget = 1024 * mib;
        assert_eq!(scaled.part_size_for(16 * mib, large_budget), 16 * mib);
        assert_eq!(scaled.part_size_for(64 * mib, large_budget), 16 * mib);
        assert_eq!(scaled.part_size_for(512 * mib, large_budget), 32 * mib);
        assert_eq!(scaled.part_size_for(4096 * mib, large_budget), 64 * mib);
        // The default budget (64 MiB) holds four parts of 16 MiB at once, not fewer.
        assert_eq!(scaled.part_size_for(64 * mib, DEFAULT_BUDGET), 16 * mib);
        assert_eq!(scaled.part_size_for(512 * mib, DEFAULT_BUDGET), 16 * mib);
        assert_eq!(scaled.part_size_for(4096 * mib, DEFAULT_BUDGET), 16 * mib);
        // A smaller budget shrinks parts so that four fit, down to 8 MiB.
        assert_eq!(scaled.part_size_for(512 * mib, 32 * mib), 8 * mib);
        assert_eq!(scaled.part_size_for(512 * mib, 8 * mib), 8 * mib);
        // A smallest part pinned below the floor is kept.
        let small = TransferOptions {
            part_size: mib,
            ..TransferOptions::default()
        };
        assert_eq!(small.part_size_for(8 * mib, 2 * mib), mib);
        let pinned = TransferOptions {
            part_size: 32 * mib,
            scale_parts: false,
            ..TransferOptions::default()
        };
        assert_eq!(pinned.part_size_for(4096 * mib, DEFAULT_BUDGET), 32 * mib);
    }

    /// A store whose every ranged body sends its first 100 bytes, then nothing more.
    #[derive(Debug)]
    struct Stalling;

    #[async_trait::async_trait]
    impl ObjectSource for Stalling {
        fn uri(&self, key: &str) -> String {
            key.to_owned()
        }
        async fn list(
            &self,
            _: &crate::source::ListRequest,
        ) -> Result<crate::source::ListPage, SourceError> {
            Ok(crate::source::ListPage::default())
        }
        async fn head(&self, key: &str, _: &GetRequest) -> Result<ObjectInfo, SourceError> {
            Ok(ObjectInfo {
                key: key.to_owned(),
                size: 100_000,
                ..ObjectInfo::default()
            })
        }
        async fn get(
            &self,
            key: &str,
            request: &GetRequest,
        ) -> Result<crate::source::ObjectBody, SourceError> {
            let range = request.range.unwrap_or(ByteRange::new(0, 100_000));
            let start = range.start;
            let end = range.end.unwrap_or(100_000);
            let stream = futures::stream::once(async { Ok(Bytes::from(vec![7u8; 100])) })
                .chain(futures::stream::pending())
                .boxed();
            Ok(crate::source::ObjectBody {
                info: self.head(key, request).await?,
                range: start..end,
                stream,
            })
        }
    }

    #[tokio::test]
    async fn a_part_is_handed_on_as_it_arrives_not_once_whole() {
        let d = download(
            Arc::new(Stalling),
            "big",
            Some(100_000),
            GetRequest::default(),
            &small_parts(),
            &ByteBudget::new(1 << 20),
        )
        .await
        .unwrap();
        assert!(d.parts > 1);
        let mut stream = d.stream;
        let first = tokio::time::timeout(std::time::Duration::from_secs(5), stream.next())
            .await
            .expect("the first bytes of the first part, while it is still downloading");
        assert_eq!(first.unwrap().unwrap().len(), 100);
    }

    #[tokio::test]
    async fn ranged_parts_reassemble_in_order_within_the_budget() {
        let data = pattern(100_000);
        let source = MemorySource::new();
        source.put_bytes("big", data.clone());
        let source: Arc<dyn ObjectSource> = Arc::new(source);
        let budget = ByteBudget::new(3 * 4096);
        let d = download(
            source,
            "big",
            Some(100_000),
            GetRequest::default(),
            &small_parts(),
            &budget,
        )
        .await
        .unwrap();
        assert_eq!(d.parts, 25);
        let verified = d.verified.clone();
        assert_eq!(collect(d).await.unwrap(), data);
        let v = verified.get().unwrap();
        assert_eq!(v.size, 100_000);
        assert_eq!(v.sha256, Some(hex::encode(Sha256::digest(&data))));
        assert_eq!(budget.available(), budget.bytes(), "all budget returned");
    }

    /// `n` objects of 3,000 bytes, `s0`, `s1`, …, and a budget of 8 KiB: 4 KiB for bodies
    /// fetched ahead, which one of them takes whole.
    fn small_objects(n: usize) -> (Arc<dyn ObjectSource>, ByteBudget) {
        let source = MemorySource::new();
        for i in 0..n {
            source.put_bytes(format!("s{i}"), pattern(3000));
        }
        let budget = ByteBudget::new(8192);
        assert_eq!(budget.ahead_bytes(), 4096);
        (Arc::new(source), budget)
    }

    async fn fetch_small(
        source: &Arc<dyn ObjectSource>,
        key: &str,
        budget: &ByteBudget,
    ) -> Result<Download, SourceError> {
        download(
            source.clone(),
            key,
            Some(3000),
            GetRequest::default(),
            &small_parts(),
            budget,
        )
        .await
    }

    const WAIT: std::time::Duration = std::time::Duration::from_millis(200);

    /// Whether fetching `key` has to wait for the budget.
    async fn has_to_wait(source: &Arc<dyn ObjectSource>, key: &str, budget: &ByteBudget) -> bool {
        tokio::time::timeout(WAIT, fetch_small(source, key, budget))
            .await
            .is_err()
    }

    /// `key`'s bytes, fetched without waiting for the budget.
    async fn fetched_at_once(
        source: &Arc<dyn ObjectSource>,
        key: &str,
        budget: &ByteBudget,
    ) -> Vec<u8> {
        let d = tokio::time::timeout(WAIT, fetch_small(source, key, budget))
            .await
            .expect("read bodies give their share back")
            .unwrap();
        collect(d).await.unwrap()
    }

    #[tokio::test]
    async fn small_objects_fetched_ahead_hold_at_most_half_the_budget() {
        let (source, budget) = small_objects(3);
        let first = fetch_small(&source, "s0", &budget).await.unwrap();
        assert!(
            has_to_wait(&source, "s1", &budget).await,
            "a second body must wait while the first is unread"
        );
        assert_eq!(
            budget.available(),
            budget.bytes(),
            "parts' budget untouched"
        );
        assert_eq!(collect(first).await.unwrap(), pattern(3000));
        assert_eq!(fetched_at_once(&source, "s2", &budget).await, pattern(3000));
    }

    #[tokio::test]
    async fn a_body_received_but_not_yet_read_keeps_its_share() {
        let (source, budget) = small_objects(2);
        // The first body arrives whole and its stream ends, but its chunks wait (as they
        // do in a decryptor's queue): the second body may not be fetched yet.
        let first = fetch_small(&source, "s0", &budget).await.unwrap();
        let waiting: Vec<Bytes> = first.stream.try_collect().await.unwrap();
        assert_eq!(waiting.concat(), pattern(3000));
        assert!(
            has_to_wait(&source, "s1", &budget).await,
            "a body waiting to be read still counts"
        );
        drop(waiting);
        assert_eq!(fetched_at_once(&source, "s1", &budget).await, pattern(3000));
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
                    GetRequest::default(),
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
    async fn the_downloaded_bytes_are_hashed_only_for_a_consumer_or_a_stored_sha256() {
        use base64::Engine;
        let data = b"helloworld";
        let chunks = || {
            futures::stream::iter(vec![
                Ok(Bytes::from_static(b"hello")),
                Ok(Bytes::from_static(b"world")),
            ])
            .boxed()
        };
        let plain = ObjectInfo {
            key: "k".into(),
            size: 10,
            ..ObjectInfo::default()
        };
        let d = verify(plain.clone(), chunks(), 1);
        let handle = d.verified.clone();
        handle.skip_sha256();
        collect(d).await.unwrap();
        assert_eq!(handle.get().unwrap().sha256, None, "nobody needs it");
        // A stored SHA-256 is still compared (and a wrong one still fails).
        let stored = |value: String| ObjectInfo {
            checksum: Some(crate::source::Checksum {
                algorithm: crate::source::ChecksumAlgorithm::Sha256,
                value,
            }),
            ..plain.clone()
        };
        let good = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data));
        let d = verify(stored(good), chunks(), 1);
        let handle = d.verified.clone();
        handle.skip_sha256();
        collect(d).await.unwrap();
        let v = handle.get().unwrap();
        assert_eq!(v.checked, vec!["checksum-sha256".to_owned()]);
        assert_eq!(v.sha256, Some(hex::encode(Sha256::digest(data))));
        let bad = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        let d = verify(stored(bad), chunks(), 1);
        d.verified.skip_sha256();
        assert!(collect(d).await.is_err());
    }

    /// Three 100 KiB chunks, each different: more than a download holds back.
    fn three_chunks() -> (Vec<u8>, BoxStream<'static, Result<Bytes, SourceError>>) {
        let chunks: Vec<Bytes> = (0..3u8)
            .map(|i| Bytes::from(vec![b'a' + i; 100 * 1024]))
            .collect();
        assert!(chunks.iter().map(Bytes::len).sum::<usize>() > HOLD_UNDECIDED);
        let data = chunks.concat();
        (
            data,
            futures::stream::iter(chunks.into_iter().map(Ok)).boxed(),
        )
    }

    #[tokio::test]
    async fn bytes_held_back_for_an_undecided_consumer_are_hashed_in_order() {
        use md5::Digest as _;
        let (data, chunks) = three_chunks();
        let info = |etag: String| ObjectInfo {
            key: "k".into(),
            size: data.len() as u64,
            etag: Some(etag),
            ..ObjectInfo::default()
        };
        let good = format!("\"{}\"", hex::encode(md5::Md5::digest(&data)));
        // A consumer that never says it decided: past the hold, everything is hashed.
        let d = verify(info(good.clone()), chunks, 1);
        let handle = d.verified.clone();
        assert_eq!(collect(d).await.unwrap(), data);
        let v = handle.get().unwrap();
        assert_eq!(v.checked, vec!["md5-etag".to_owned()]);
        assert_eq!(v.sha256, Some(hex::encode(Sha256::digest(&data))));
        // The same chunks in another order are refused: the held ones were not hashed
        // out of turn.
        let (_, chunks) = three_chunks();
        let mut reordered: Vec<Result<Bytes, SourceError>> = chunks.collect::<Vec<_>>().await;
        reordered.swap(0, 1);
        let d = verify(
            info(good.clone()),
            futures::stream::iter(reordered).boxed(),
            1,
        );
        assert!(matches!(
            collect(d).await.unwrap_err(),
            SourceError::Integrity { .. }
        ));
        // A consumer that decides after the first chunk and skips nothing still gets
        // every byte checked and hashed, the held chunk first.
        let (_, chunks) = three_chunks();
        let mut d = verify(info(good), chunks, 1);
        let handle = d.verified.clone();
        d.stream.next().await.unwrap().unwrap();
        handle.decided();
        while let Some(chunk) = d.stream.next().await {
            chunk.unwrap();
        }
        let v = handle.get().unwrap();
        assert_eq!(v.checked, vec!["md5-etag".to_owned()]);
        assert_eq!(v.sha256, Some(hex::encode(Sha256::digest(&data))));
    }

    #[tokio::test]
    async fn a_consumer_that_decides_after_the_first_chunk_can_still_skip_both() {
        let (data, chunks) = three_chunks();
        // A wrong ETag: only a skip that covers the held first chunk as well lets it by.
        let info = ObjectInfo {
            key: "k".into(),
            size: data.len() as u64,
            etag: Some("\"00000000000000000000000000000000\"".into()),
            ..ObjectInfo::default()
        };
        let mut d = verify(info, chunks, 1);
        let handle = d.verified.clone();
        d.stream.next().await.unwrap().unwrap();
        handle.skip_etag_md5();
        handle.skip_sha256();
        handle.decided();
        while let Some(chunk) = d.stream.next().await {
            chunk.unwrap();
        }
        let v = handle.get().unwrap();
        assert_eq!(v.checked, Vec::<String>::new());
        assert_eq!(v.sha256, None);
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
            GetRequest::default(),
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
