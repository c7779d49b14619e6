//! Integrity checks over a download's bytes: length, the store's checksum or an MD5
//! ETag, run as the bytes stream by; the stream ends in an error unless they pass.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use base64::Engine;
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use md5::Md5;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Download;
use crate::source::{ChecksumAlgorithm, ObjectInfo, SourceError, SseMode};

/// What was checked about a finished download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Bytes received (always equal to the object's size).
    pub size: u64,
    /// SHA-256 of the bytes, hex; `None` when the consumer said it needs none
    /// ([`VerifiedHandle::skip_sha256`]) and no stored SHA-256 checksum needed it.
    pub sha256: Option<String>,
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
    skip_sha256: AtomicBool,
    decided: AtomicBool,
}

/// Bytes a download holds back unhashed while its consumer has not yet said which
/// checks it takes over ([`VerifiedHandle::decided`]). Consumers read the first bytes to
/// tell what an object is and only then know; hashing those bytes first cost a wasted
/// SHA-256 (and, for encrypted objects, MD5) of a whole small object. Only references
/// to chunks the consumer was handed anyway are held.
pub const HOLD_UNDECIDED: usize = 256 * 1024;

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

impl VerifiedHandle {
    /// Stops hashing the bytes with SHA-256 from here on, for a consumer that records no
    /// hash of them (a decryptor that hashes its plaintext instead): a pass over every
    /// byte saved. A stored SHA-256 checksum is still compared, so it is still computed.
    pub fn skip_sha256(&self) {
        self.0.skip_sha256.store(true, Ordering::Relaxed);
    }

    /// Says the consumer has made its `skip_*` choices (possibly none). The bytes held
    /// back until now ([`HOLD_UNDECIDED`]) are hashed, or not, as those choices say, and
    /// the rest as they arrive. A consumer that never calls this loses nothing: past
    /// [`HOLD_UNDECIDED`] bytes, or at the end, everything held is hashed.
    pub fn decided(&self) {
        self.0.decided.store(true, Ordering::Release);
    }
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
pub(super) fn verify(
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
        sha256: Some(Sha256::new()),
        check: Check::for_object(&info),
        handle: verified.clone(),
        held: Some(Vec::new()),
        held_bytes: 0,
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
    sha256: Option<Sha256>,
    check: Option<Check>,
    handle: VerifiedHandle,
    /// Chunks not hashed yet, in order, while the consumer is undecided; `None` once
    /// hashing has caught up (it never holds back again).
    held: Option<Vec<Bytes>>,
    held_bytes: usize,
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
        if self.sha256.is_some()
            && !matches!(self.check, Some(Check::Sha256(_)))
            && self.handle.0.skip_sha256.load(Ordering::Relaxed)
        {
            self.sha256 = None;
        }
    }

    /// Hashes `chunk` with whatever checks are still on.
    fn absorb(&mut self, chunk: &[u8]) {
        if let Some(h) = self.sha256.as_mut() {
            h.update(chunk);
        }
        if let Some(check) = self.check.as_mut() {
            check.update(chunk);
        }
    }

    /// Holds `chunk` back while the consumer is undecided and little is held; otherwise
    /// hashes what was held, then `chunk` (dropping the checks the consumer took over).
    fn receive(&mut self, chunk: &Bytes) {
        let undecided = !self.handle.0.decided.load(Ordering::Acquire);
        if let Some(held) = self.held.as_mut()
            && undecided
            && self.held_bytes + chunk.len() <= HOLD_UNDECIDED
        {
            self.held_bytes += chunk.len();
            held.push(chunk.clone());
            return;
        }
        self.catch_up();
        self.absorb(chunk);
    }

    /// Hashes the chunks held back, with the checks the consumer left on.
    fn catch_up(&mut self) {
        self.drop_skipped_md5();
        for chunk in self.held.take().unwrap_or_default() {
            self.absorb(&chunk);
        }
    }

    fn finish(&mut self) -> Result<(), SourceError> {
        self.catch_up();
        if self.received != self.size {
            return Err(SourceError::Truncated {
                key: self.key.clone(),
                expected: self.size,
                received: self.received,
            });
        }
        let sha256 = self.sha256.take().map(|h| h.finalize());
        let mut checked = Vec::new();
        if let Some(check) = self.check.take() {
            match check.finish(sha256.as_deref().unwrap_or_default()) {
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
            sha256: sha256.map(hex::encode),
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
                self.receive(&chunk);
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
