//! Moving one object from a source through decryption to its verified destination.
//!
//! Downloads are async ([`gcrec_fetch::transfer`]: ranged parts for large objects, a
//! shared byte budget, integrity checks); decryption runs on the blocking pool and reads
//! the body through a [`BodyReader`]. Output goes through a [`PendingFile`]: nothing
//! reaches the destination until the decryptor has verified it and the download has
//! passed its own checks (length, stored checksum or MD5 ETag).

use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use gcrec_decrypt::detect::{Format, SNIFF_LEN, detect};
use gcrec_decrypt::keys::Keyring;
use gcrec_decrypt::object::{DecryptOptions, Outcome, prepare, run};
use gcrec_decrypt::offthread::{Absorb, INLINE_BYTES, OffThread};
use gcrec_decrypt::s3ec::Kms;
use gcrec_fetch::source::{
    GetRequest, OBJECT_METADATA_SUFFIX, ObjectInfo, ObjectSource, SavedObjectMetadata, SourceError,
    read_small,
};
use gcrec_fetch::transfer::{ByteBudget, Download, TransferOptions, Verified, download};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::body::BodyReader;
use crate::error::{EXPANSION, FREE_SPACE, PullError};
use crate::outpath::plaintext_name;
use crate::release::{PendingFile, create_dirs_inside, free_space};

/// Instruction files larger than this are not envelopes.
const MAX_INSTRUCTION: u64 = 64 * 1024;
/// Free space left alone when limiting an output to the space available.
const FREE_SPACE_RESERVE: u64 = 16 * 1024 * 1024;
/// However small the ciphertext, the expansion limit allows at least this much.
const EXPANSION_FLOOR: u64 = 1024 * 1024;

/// The default expansion limit: plaintext at most this many times the ciphertext (plus
/// [`EXPANSION_FLOOR`]). Recordings are compressed media (Opus, ZIP) that do not shrink
/// under OpenPGP compression; a decompression bomb grows by thousands.
pub const DEFAULT_MAX_EXPANSION: u64 = 64;

/// What every object's download and decryption shares.
pub struct DecryptContext {
    /// The keys given.
    pub keys: Keyring,
    /// KMS, for KMS-wrapped S3EC data keys.
    pub kms: Option<Arc<dyn Kms>>,
    /// Options.
    pub options: DecryptOptions,
    /// How objects are fetched.
    pub transfer: TransferOptions,
    /// Part bytes in flight, across every download.
    pub budget: ByteBudget,
    /// Bytes received so far (progress).
    pub received: Arc<AtomicU64>,
    /// Cancelled on Ctrl-C: work in progress stops and its temporary files are removed.
    pub cancel: CancellationToken,
    /// Plaintext may be at most this many times the downloaded size (plus a floor).
    pub max_expansion: u64,
    /// Refuse plain (unencrypted) media.
    pub require_encryption: bool,
    /// Hash the downloaded (encrypted) bytes too, for a record that keeps them (a bag's
    /// custody record, a kept encrypted copy). Off, only the plaintext is hashed — unless
    /// the store keeps a SHA-256 checksum to compare.
    pub hash_downloaded: bool,
    /// Decryptions running at once, whatever the number of requests in flight: a
    /// decryptor's buffers are the largest per-object memory, and more decryptors than
    /// cores only wait for them. Requests beyond it keep their connection, paused.
    pub decrypt_slots: Arc<tokio::sync::Semaphore>,
    /// Check released media (Ogg pages, ZIP entries) and report what is wrong with it.
    pub check_media: bool,
}

/// Decryptions at once by default: twice the cores, at least 4.
pub fn default_decrypt_slots() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |n| n.get() * 2)
        .max(4)
}

impl DecryptContext {
    /// A context with default transfer settings.
    pub fn new(keys: Keyring, kms: Option<Arc<dyn Kms>>, options: DecryptOptions) -> Self {
        Self {
            keys,
            kms,
            options,
            transfer: TransferOptions::default(),
            budget: ByteBudget::default(),
            received: Arc::default(),
            cancel: CancellationToken::new(),
            max_expansion: DEFAULT_MAX_EXPANSION,
            require_encryption: false,
            hash_downloaded: true,
            decrypt_slots: Arc::new(tokio::sync::Semaphore::new(default_decrypt_slots())),
            check_media: true,
        }
    }
}

/// One object to decrypt.
#[derive(Debug, Clone)]
pub struct ObjectJob {
    /// The object's key.
    pub key: String,
    /// Its size as listed, when known (decides ranged parts).
    pub listed_size: Option<u64>,
    /// Its S3EC instruction file, if it has one.
    pub instruction: Option<String>,
    /// The ETag the object must still have (a catalog's): otherwise it fails with
    /// [`gcrec_fetch::source::SourceError::Changed`] and nothing is written.
    pub expect_etag: Option<String>,
    /// The directory every output stays under (created directories are checked below it).
    pub root: PathBuf,
    /// Where the plaintext goes.
    pub destination: PathBuf,
    /// Where to keep the downloaded bytes too, with the object's metadata beside them.
    pub keep_encrypted: Option<PathBuf>,
}

/// What happened to one decrypted object.
#[derive(Debug, Clone)]
pub struct Decrypted {
    /// The object as downloaded.
    pub info: ObjectInfo,
    /// What the download checks found.
    pub downloaded: Verified,
    /// The decryption.
    pub outcome: Outcome,
    /// SHA-256 of the plaintext, hex.
    pub plaintext_sha256: String,
    /// What the media check found (Ogg or ZIP plaintext, when checks are on).
    pub media: Option<crate::media::MediaReport>,
}

/// Runs `fut` unless the run is cancelled first.
pub(crate) async fn cancellable<T, E: Into<PullError>>(
    cancel: &CancellationToken,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, PullError> {
    match cancel.run_until_cancelled(fut).await {
        Some(result) => result.map_err(Into::into),
        None => Err(PullError::Cancelled),
    }
}

/// A writer that hashes what passes through it and notices when its file refused a
/// write for being too large. The digest runs on a thread of its own once the plaintext
/// passes [`INLINE_BYTES`].
struct Hashing<'a, 'scope, 'env> {
    inner: &'a mut PendingFile,
    digest: OffThread<'scope, 'env, PlainDigest>,
    too_large: bool,
}

/// What every plaintext byte passes through: its SHA-256 (the manifest's) and the media
/// check.
struct PlainDigest {
    sha256: Sha256,
    /// The media check, once the first bytes said what the plaintext is.
    media: MediaSniff,
}

impl Absorb for PlainDigest {
    fn absorb(&mut self, data: &[u8]) {
        self.sha256.update(data);
        self.media.feed(data);
    }
}

/// Which check the plaintext gets, told from its first bytes.
enum MediaSniff {
    /// Not decided yet (fewer than four bytes seen); `false` when checks are off.
    Undecided(bool, Vec<u8>),
    /// Ogg, checked as it streams.
    Ogg(Box<crate::media::OggCheck>),
    /// ZIP, checked once released; the block CRCs spare reading stored entries again.
    Zip(Box<crate::media::BlockCrcs>),
    /// Anything else.
    None,
}

impl MediaSniff {
    fn feed(&mut self, data: &[u8]) {
        match self {
            MediaSniff::Undecided(false, _) | MediaSniff::None => {}
            MediaSniff::Ogg(check) => check.feed(data),
            MediaSniff::Zip(crcs) => crcs.feed(data),
            MediaSniff::Undecided(true, head) => {
                // Decided on the first four bytes; only those are kept across writes (the
                // first write is usually a decryptor's whole batch, not worth a copy).
                if head.len() + data.len() < 4 {
                    head.extend_from_slice(data);
                    return;
                }
                let earlier = std::mem::take(head);
                let mut magic = earlier.clone();
                magic.extend_from_slice(&data[..4 - earlier.len()]);
                *self = match magic.as_slice() {
                    b"OggS" => {
                        let mut check = Box::new(crate::media::OggCheck::new());
                        check.feed(&earlier);
                        check.feed(data);
                        MediaSniff::Ogg(check)
                    }
                    b"PK\x03\x04" | b"PK\x05\x06" => {
                        let mut crcs = Box::new(crate::media::BlockCrcs::new());
                        crcs.feed(&earlier);
                        crcs.feed(data);
                        MediaSniff::Zip(crcs)
                    }
                    _ => MediaSniff::None,
                };
            }
        }
    }
}

impl Write for Hashing<'_, '_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf).inspect_err(|e| {
            self.too_large |= e.kind() == io::ErrorKind::FileTooLarge;
        })?;
        self.digest.absorb(&buf[..n]).map_err(io::Error::other)?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The most plaintext an object of `size` bytes may become, and which limit that is.
fn plaintext_limit(ctx: &DecryptContext, size: u64, dir: &Path) -> (u64, &'static str) {
    let expansion = size
        .saturating_mul(ctx.max_expansion)
        .saturating_add(EXPANSION_FLOOR);
    match free_space(dir).map(|f| f.saturating_sub(FREE_SPACE_RESERVE)) {
        Some(free) if free < expansion => (free, FREE_SPACE),
        _ => (expansion, EXPANSION),
    }
}

/// Why an object must not be plain, when it must not: a name or envelope that says it
/// is encrypted.
fn claims_encryption(key: &str, instruction: bool, info: &ObjectInfo) -> Option<&'static str> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if plaintext_name(name) != name {
        Some("its name says it is encrypted")
    } else if instruction {
        Some("it has an S3 Encryption Client instruction file")
    } else if info
        .user_metadata
        .keys()
        .any(|k| ["x-amz-key", "x-amz-key-v2", "x-amz-3"].contains(&k.as_str()))
    {
        Some("its metadata holds an S3 Encryption Client envelope")
    } else {
        None
    }
}

/// An object downloading, its format told and its key unwrapped: ready to be read by a
/// decryptor.
struct Opened {
    info: ObjectInfo,
    handle: gcrec_fetch::transfer::VerifiedHandle,
    prepared: gcrec_decrypt::object::Prepared,
    reader: BodyReader,
    /// The decryptor taken before the first byte, for a download in ranged parts.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Waits for one of the decryptors ([`DecryptContext::decrypt_slots`]).
async fn decrypt_slot(
    ctx: &DecryptContext,
    key: &str,
) -> Result<tokio::sync::OwnedSemaphorePermit, PullError> {
    cancellable(&ctx.cancel, async {
        ctx.decrypt_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PullError::Task(key.to_owned()))
    })
    .await
}

/// Starts the download of `key`, tells its container and unwraps its data key.
async fn open_object(
    source: Arc<dyn ObjectSource>,
    key: &str,
    listed_size: Option<u64>,
    instruction_key: Option<&str>,
    expect_etag: Option<String>,
    ctx: &DecryptContext,
) -> Result<Opened, PullError> {
    let cancel = &ctx.cancel;
    let instruction = match instruction_key {
        Some(k) => Some(cancellable(cancel, read_small(&*source, k, MAX_INSTRUCTION)).await?),
        None => None,
    };
    let Download {
        info,
        mut stream,
        verified: handle,
        parts,
    } = cancellable(
        cancel,
        download(
            source.clone(),
            key,
            listed_size,
            GetRequest {
                if_match: expect_etag,
                ..GetRequest::default()
            },
            &ctx.transfer,
            &ctx.budget,
        ),
    )
    .await?;
    // Ranged parts take their budget as soon as the stream is read. An object that held
    // part budget while it waited for a decryptor could starve the decrypting objects of
    // their next parts — each of them waiting on budget the waiting ones hold — so a
    // ranged download takes its decryptor before its first byte.
    let slot = if parts > 1 {
        Some(decrypt_slot(ctx, key).await?)
    } else {
        None
    };
    let mut head = BytesMut::new();
    // An AWS Encryption SDK header (its data keys, its context) is read whole before
    // the format is told: the data key is unwrapped — KMS asked — before the body.
    while head.len() < SNIFF_LEN || gcrec_decrypt::detect::wants_more(&head) {
        match cancellable(cancel, async { Ok::<_, PullError>(stream.next().await) }).await? {
            Some(chunk) => head.extend_from_slice(&chunk?),
            None => break,
        }
    }
    let format = detect(&head, &info.user_metadata, instruction.as_deref())
        .map_err(|e| PullError::Decrypt(e.into()))?;
    if let Format::Plain(kind) = &format {
        if let Some(why) = claims_encryption(key, instruction.is_some(), &info) {
            return Err(PullError::PlainWhereEncrypted {
                key: key.to_owned(),
                why,
                kind: kind.as_str(),
            });
        }
        if ctx.require_encryption {
            return Err(PullError::EncryptionRequired {
                key: key.to_owned(),
                kind: kind.as_str(),
            });
        }
    }
    // Known from the envelope or the first bytes: the content's own check will vouch
    // for every byte, so the ETag's MD5 need not be computed.
    if format.authenticated_by().is_some() {
        handle.skip_etag_md5();
    }
    if !ctx.hash_downloaded {
        handle.skip_sha256();
    }
    // The first bytes, read above to tell the format, were held back unhashed until now.
    handle.decided();
    let prepared = cancellable(
        cancel,
        prepare(format, &ctx.keys, ctx.kms.as_deref(), &ctx.options),
    )
    .await?;
    let reader = BodyReader::spawn(
        head.freeze(),
        stream,
        ctx.received.clone(),
        ctx.cancel.clone(),
    );
    Ok(Opened {
        info,
        handle,
        prepared,
        reader,
        slot,
    })
}

/// Decrypts one object all the way, into nothing: proves that the keys given open it and
/// that it authenticates, without a byte of plaintext reaching the disk (`gcrec doctor`).
pub async fn probe_object(
    source: Arc<dyn ObjectSource>,
    key: &str,
    listed_size: Option<u64>,
    instruction: Option<&str>,
    ctx: Arc<DecryptContext>,
) -> Result<(ObjectInfo, Outcome), PullError> {
    let Opened {
        info,
        prepared,
        mut reader,
        slot,
        ..
    } = open_object(source, key, listed_size, instruction, None, &ctx).await?;
    let size = info.size;
    let owned_key = key.to_owned();
    let outcome = tokio::task::spawn_blocking(move || {
        // A ranged download keeps its decryptor until it has been read.
        let _slot = slot;
        run(
            &prepared,
            &mut reader,
            size,
            &ctx.keys,
            &ctx.options,
            &mut std::io::sink(),
        )
        .map_err(|e| reader.take_failure().unwrap_or(PullError::Decrypt(e)))
    })
    .await
    .map_err(|_| PullError::Task(owned_key))??;
    Ok((info, outcome))
}

/// Decrypts one object to its destination, releasing it only once verified.
pub async fn decrypt_object(
    source: Arc<dyn ObjectSource>,
    job: ObjectJob,
    ctx: Arc<DecryptContext>,
) -> Result<Decrypted, PullError> {
    let Opened {
        info,
        handle,
        prepared,
        mut reader,
        slot,
    } = open_object(
        source,
        &job.key,
        job.listed_size,
        job.instruction.as_deref(),
        job.expect_etag.clone(),
        &ctx,
    )
    .await?;
    let dir = job.destination.parent().unwrap_or(&job.root).to_owned();
    create_dirs_inside(&job.root, &dir).map_err(PullError::output("creating", &dir))?;
    if let Some(path) = &job.keep_encrypted {
        let kept_dir = path.parent().unwrap_or(&job.root);
        create_dirs_inside(&job.root, kept_dir).map_err(PullError::output("creating", kept_dir))?;
        let tee = PendingFile::create(path).map_err(PullError::output("keeping", path))?;
        reader
            .tee_into(tee)
            .map_err(PullError::output("keeping", path))?;
    }
    let (limit, why) = plaintext_limit(&ctx, info.size, &dir);
    let key = job.key.clone();
    let size = info.size;
    let destination = job.destination.clone();
    let worker = ctx.clone();
    let slot = match slot {
        Some(taken) => taken,
        None => decrypt_slot(&ctx, &job.key).await?,
    };
    let blocking = tokio::task::spawn_blocking(move || {
        let slot = slot;
        let ctx = worker;
        let mut pending = PendingFile::create(&destination)
            .map_err(PullError::output(
                "creating a temporary file for",
                &destination,
            ))?
            .limit(limit);
        let (result, too_large, digest) = std::thread::scope(|scope| {
            let plain = PlainDigest {
                sha256: Sha256::new(),
                media: MediaSniff::Undecided(ctx.check_media, Vec::new()),
            };
            let mut hashing = Hashing {
                inner: &mut pending,
                digest: OffThread::new(scope, plain, INLINE_BYTES),
                too_large: false,
            };
            let result = run(
                &prepared,
                &mut reader,
                size,
                &ctx.keys,
                &ctx.options,
                &mut hashing,
            );
            (result, hashing.too_large, hashing.digest.finish())
        });
        let (outcome, PlainDigest { sha256, media }) = match (result, digest) {
            (Ok(outcome), Ok(digest)) => (outcome, digest),
            (Ok(_), Err(stopped)) => {
                return Err(
                    PullError::output("checking the plaintext of", &destination)(io::Error::other(
                        stopped,
                    )),
                );
            }
            // The download's own failure (or a cancellation) comes first: the decryptor
            // only saw its shadow.
            (Err(e), _) => {
                return Err(match reader.take_failure() {
                    Some(failure) => failure,
                    None if too_large => PullError::TooLarge { key, limit, why },
                    None => PullError::Decrypt(e),
                });
            }
        };
        let trailing = reader.drain().map_err(|e| {
            reader
                .take_failure()
                .unwrap_or_else(|| PullError::output("reading", &destination)(e))
        })?;
        if trailing > 0 {
            return Err(PullError::TrailingBytes { key, trailing });
        }
        let mut downloaded = handle
            .get()
            .cloned()
            .ok_or_else(|| PullError::Unverified(key.clone()))?;
        // `run` returned Ok: the content's own tag or MDC checked every byte (when
        // the container has one; the outcome says).
        downloaded
            .checked
            .extend(outcome.authenticated_by.map(str::to_owned));
        // The decrypting is done: the next object may start while this one waits for
        // its fsyncs (disk time, not CPU).
        drop(slot);
        pending.release().map_err(PullError::output(
            "moving the verified plaintext to",
            &destination,
        ))?;
        let media = match media {
            MediaSniff::Ogg(check) => Some(check.finish()),
            MediaSniff::Zip(crcs) => Some(crate::media::check_zip_streamed(&destination, &crcs)),
            _ => None,
        };
        Ok((
            outcome,
            hex::encode(sha256.finalize()),
            downloaded,
            reader.take_tee(),
            media,
        ))
    });
    let (outcome, plaintext_sha256, downloaded, tee, media) = blocking
        .await
        .map_err(|_| PullError::Task(job.key.clone()))??;
    if let (Some(tee), Some(path)) = (tee, &job.keep_encrypted) {
        if tee.written() != info.size {
            return Err(PullError::KeptShort {
                key: job.key.clone(),
                kept: tee.written(),
                size: info.size,
            });
        }
        tee.release()
            .map_err(PullError::output("keeping the downloaded bytes at", path))?;
        save_object_metadata(path, &info)?;
    }
    Ok(Decrypted {
        info,
        downloaded,
        outcome,
        plaintext_sha256,
        media,
    })
}

/// Writes the object's S3 metadata beside a kept copy, where a local source finds it.
fn save_object_metadata(path: &Path, info: &ObjectInfo) -> Result<(), PullError> {
    let saved = SavedObjectMetadata {
        user_metadata: info.user_metadata.clone(),
        sse: info.sse.clone(),
        version_id: info.version_id.clone(),
        etag: info.etag.clone(),
    };
    let mut companion = path.as_os_str().to_owned();
    companion.push(OBJECT_METADATA_SUFFIX);
    let companion = PathBuf::from(companion);
    let write = || -> io::Result<()> {
        let mut file = PendingFile::create(&companion)?;
        serde_json::to_writer_pretty(&mut file, &saved)?;
        file.release()?;
        Ok(())
    };
    write().map_err(PullError::output("writing", &companion))
}

/// Writes bytes that came with the work list (a catalog's copy of a sidecar) to
/// `destination`, through a temporary file, once their length is the object's listed
/// size. Returns the size and SHA-256 (hex) written.
pub async fn write_body(
    root: &Path,
    destination: &Path,
    key: &str,
    listed_size: u64,
    body: Bytes,
) -> Result<(u64, String), PullError> {
    if body.len() as u64 != listed_size {
        return Err(PullError::Source(SourceError::Truncated {
            key: key.to_owned(),
            received: body.len() as u64,
            expected: listed_size,
        }));
    }
    let dir = destination.parent().unwrap_or(root).to_owned();
    create_dirs_inside(root, &dir).map_err(PullError::output("creating", &dir))?;
    let destination = destination.to_owned();
    let owned_key = key.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut pending = PendingFile::create(&destination).map_err(PullError::output(
            "creating a temporary file for",
            &destination,
        ))?;
        pending
            .write_all(&body)
            .map_err(PullError::output("writing", &destination))?;
        pending.release().map_err(PullError::output(
            "moving the verified copy to",
            &destination,
        ))?;
        Ok((body.len() as u64, hex::encode(Sha256::digest(&body))))
    })
    .await
    .map_err(|_| PullError::Task(owned_key))?
}

/// An object copied byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Bytes written.
    pub size: u64,
    /// Their SHA-256, hex.
    pub sha256: String,
}

/// Copies an object byte for byte (sidecars), released only once its download checks.
pub async fn copy_object(
    source: Arc<dyn ObjectSource>,
    key: String,
    listed_size: Option<u64>,
    root: &Path,
    destination: PathBuf,
    ctx: Arc<DecryptContext>,
) -> Result<Copied, PullError> {
    let d = cancellable(
        &ctx.cancel,
        download(
            source,
            &key,
            listed_size,
            GetRequest::default(),
            &ctx.transfer,
            &ctx.budget,
        ),
    )
    .await?;
    let handle = d.verified;
    let mut reader = BodyReader::spawn(
        Bytes::new(),
        d.stream,
        ctx.received.clone(),
        ctx.cancel.clone(),
    );
    let dir = destination.parent().unwrap_or(root).to_owned();
    create_dirs_inside(root, &dir).map_err(PullError::output("creating", &dir))?;
    let owned_key = key.clone();
    let blocking = tokio::task::spawn_blocking(move || {
        let mut pending = PendingFile::create(&destination).map_err(PullError::output(
            "creating a temporary file for",
            &destination,
        ))?;
        if let Err(e) = io::copy(&mut reader, &mut pending) {
            return Err(reader
                .take_failure()
                .unwrap_or_else(|| PullError::output("writing", &destination)(e)));
        }
        let copied = handle
            .get()
            .and_then(|v| {
                Some(Copied {
                    size: v.size,
                    sha256: v.sha256.clone()?,
                })
            })
            .ok_or_else(|| PullError::Unverified(key.clone()))?;
        pending.release().map_err(PullError::output(
            "moving the verified copy to",
            &destination,
        ))?;
        Ok(copied)
    });
    blocking.await.map_err(|_| PullError::Task(owned_key))?
}

#[cfg(test)]
mod tests {
    use super::MediaSniff;

    fn sniff(pieces: &[&[u8]]) -> MediaSniff {
        let mut s = MediaSniff::Undecided(true, Vec::new());
        for p in pieces {
            s.feed(p);
        }
        s
    }

    #[test]
    fn the_media_check_is_chosen_from_the_first_four_bytes_however_they_arrive() {
        let ogg = gcrec_testkit::media::ogg_opus(&mut gcrec_testkit::rng::Rng::new(5), 20_000);
        for split in [&[1usize, 1, 1][..], &[3], &[2, 2], &[4], &[10]] {
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            for &n in split {
                pieces.push(&ogg[at..at + n]);
                at += n;
            }
            pieces.push(&ogg[at..]);
            let MediaSniff::Ogg(check) = sniff(&pieces) else {
                panic!("not told Ogg for {split:?}");
            };
            // Every byte reached the check, in order: the stream checks clean.
            let report = check.finish();
            assert_eq!(report.problems, Vec::<String>::new(), "{split:?}");
            assert!(report.duration_ms.is_some());
        }
        let MediaSniff::Zip(crcs) = sniff(&[b"PK\x03", b"\x04rest"]) else {
            panic!("a ZIP's first bytes split across writes")
        };
        assert_eq!(crcs.len(), 8, "every byte is fed to the block CRCs");
        assert!(matches!(sniff(&[b"PK\x05\x06"]), MediaSniff::Zip(_)));
        assert!(matches!(sniff(&[b"RIFF....WAVE"]), MediaSniff::None));
        assert!(matches!(
            sniff(&[b"Og", b"g"]),
            MediaSniff::Undecided(true, ref head) if head == b"Ogg"
        ));
        let off = {
            let mut s = MediaSniff::Undecided(false, Vec::new());
            s.feed(&ogg);
            s
        };
        assert!(matches!(off, MediaSniff::Undecided(false, ref head) if head.is_empty()));
    }
}
