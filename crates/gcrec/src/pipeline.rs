//! Moving an object from a source through decryption to its verified destination.
//!
//! Downloads are async ([`gcrec_fetch::transfer`]: ranged parts for large objects, a
//! shared byte budget, integrity checks); decryption is CPU-bound and synchronous, so it
//! runs on the blocking pool and reads the body through [`BodyReader`], a bounded channel
//! that gives back-pressure to the download. Output goes through a [`PendingFile`]:
//! nothing reaches the destination until the decryptor has verified it and the download
//! has passed its own checks (length, stored checksum or MD5 ETag).

use std::io::{self, BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use gcrec_decrypt::detect::{SNIFF_LEN, detect};
use gcrec_decrypt::keys::Keyring;
use gcrec_decrypt::object::{DecryptOptions, Outcome, prepare, run};
use gcrec_decrypt::release::PendingFile;
use gcrec_decrypt::s3ec::Kms;
use gcrec_fetch::source::{ObjectInfo, ObjectSource, SavedObjectMetadata, SourceError, read_small};
use gcrec_fetch::transfer::{ByteBudget, Download, TransferOptions, Verified, download};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// Body chunks in flight between the download and the decryptor, per object.
const CHANNEL_CHUNKS: usize = 4;
/// Instruction files larger than this are not envelopes.
const MAX_INSTRUCTION: u64 = 64 * 1024;

/// A blocking reader over an object body that arrives asynchronously.
pub struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, SourceError>>,
    current: Bytes,
    done: bool,
    cancel: Arc<AtomicBool>,
    /// A copy of every byte read, for `--keep-encrypted`.
    tee: Option<PendingFile>,
}

impl BodyReader {
    /// Starts pumping `first` and then `rest` into a reader; `received` counts the bytes
    /// as they arrive (for progress).
    pub fn spawn(
        first: Bytes,
        mut rest: futures::stream::BoxStream<'static, Result<Bytes, SourceError>>,
        received: Arc<AtomicU64>,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        received.fetch_add(first.len() as u64, Ordering::Relaxed);
        tokio::spawn(async move {
            while let Some(chunk) = rest.next().await {
                if let Ok(c) = &chunk {
                    received.fetch_add(c.len() as u64, Ordering::Relaxed);
                }
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        Self {
            rx,
            current: first,
            done: false,
            cancel,
            tee: None,
        }
    }

    /// Also copies every byte read into `tee` (`--keep-encrypted`), starting with those
    /// already buffered.
    fn tee_into(&mut self, mut tee: PendingFile) -> io::Result<()> {
        tee.write_all(&self.current)?;
        self.tee = Some(tee);
        Ok(())
    }

    /// Reads (and discards) whatever the decryptor left unread, so the download's own
    /// checks run to the end. Returns how many bytes that was.
    fn drain(&mut self) -> io::Result<u64> {
        io::copy(self, &mut io::sink())
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for BodyReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.current.is_empty() && !self.done {
            if self.cancel.load(Ordering::Relaxed) {
                // Not `ErrorKind::Interrupted`: readers retry that one, forever.
                return Err(io::Error::other("interrupted (Ctrl-C)"));
            }
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    if let Some(tee) = self.tee.as_mut() {
                        tee.write_all(&chunk)?;
                    }
                    self.current = chunk;
                }
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => self.done = true,
            }
        }
        Ok(&self.current)
    }

    fn consume(&mut self, amt: usize) {
        let _ = self.current.split_to(amt.min(self.current.len()));
    }
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyReader")
    }
}

/// A writer that hashes what passes through it.
struct Hashing<'a, W: Write> {
    inner: &'a mut W,
    sha256: Sha256,
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha256.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

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
    /// Set on Ctrl-C: work in progress stops and its temporary files are removed.
    pub cancel: Arc<AtomicBool>,
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
            cancel: Arc::default(),
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
    /// Where the plaintext goes.
    pub destination: PathBuf,
    /// Where to keep the downloaded bytes too (`--keep-encrypted`), with the object's
    /// metadata beside them.
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
}

/// What happened to one copied object (a sidecar).
#[derive(Debug, Clone)]
pub struct Copied {
    /// What the download checks found (its SHA-256 is the file's).
    pub downloaded: Verified,
}

/// A decryption that failed because the download did: the download's error, as the
/// source reported it (it names the object and what to do), rather than an I/O error
/// wrapping it.
fn download_failure(e: gcrec_decrypt::object::DecryptError) -> anyhow::Error {
    use gcrec_decrypt::object::DecryptError;
    match e {
        DecryptError::Io(io) if io.get_ref().is_some_and(|i| i.is::<SourceError>()) => {
            match io.into_inner().map(|i| i.downcast::<SourceError>()) {
                Some(Ok(source)) => anyhow::Error::new(*source),
                Some(Err(other)) => anyhow::anyhow!("{other}"),
                None => anyhow::anyhow!("I/O error"),
            }
        }
        other => other.into(),
    }
}

/// The download's own verdict, once its stream has been read to the end.
fn verified(d: &gcrec_fetch::transfer::VerifiedHandle, key: &str) -> Result<Verified> {
    d.get()
        .cloned()
        .with_context(|| format!("{key}: the download ended without being verified"))
}

/// Decrypts one object to its destination, releasing it only once verified.
pub async fn decrypt_object(
    source: Arc<dyn ObjectSource>,
    job: ObjectJob,
    ctx: Arc<DecryptContext>,
) -> Result<Decrypted> {
    let instruction = match &job.instruction {
        Some(k) => Some(
            read_small(&*source, k, MAX_INSTRUCTION)
                .await
                .with_context(|| format!("reading {k}"))?,
        ),
        None => None,
    };
    let Download {
        info,
        mut stream,
        verified: handle,
        ..
    } = download(
        source.clone(),
        &job.key,
        job.listed_size,
        None,
        &ctx.transfer,
        &ctx.budget,
    )
    .await?;
    let mut head = BytesMut::new();
    while head.len() < SNIFF_LEN {
        match stream.next().await {
            Some(chunk) => head.extend_from_slice(&chunk?),
            None => break,
        }
    }
    let format = detect(&head, &info.user_metadata, instruction.as_deref())?;
    let authenticated_by = format.authenticated_by();
    if authenticated_by.is_some() {
        handle.skip_etag_md5();
    }
    let prepared = prepare(format, &ctx.keys, ctx.kms.as_deref(), ctx.options).await?;
    let mut reader = BodyReader::spawn(
        head.freeze(),
        stream,
        ctx.received.clone(),
        ctx.cancel.clone(),
    );
    if let Some(path) = &job.keep_encrypted {
        reader.tee_into(PendingFile::create(path)?)?;
    }
    let keep_path = job.keep_encrypted.clone();
    let destination = job.destination.clone();
    let key = job.key.clone();
    let size = info.size;
    let (outcome, plaintext_sha256, downloaded, tee) =
        tokio::task::spawn_blocking(move || -> Result<_> {
            let mut pending = PendingFile::create(&destination).with_context(|| {
                format!("creating a temporary file for {}", destination.display())
            })?;
            let mut hashing = Hashing {
                inner: &mut pending,
                sha256: Sha256::new(),
            };
            let outcome = run(
                &prepared,
                &mut reader,
                size,
                &ctx.keys,
                ctx.options,
                &mut hashing,
            )
            .map_err(download_failure)?;
            let plaintext_sha256 = hex::encode(hashing.sha256.finalize());
            let trailing = reader.drain()?;
            if trailing > 0 {
                bail!("{key}: {trailing} bytes follow the encrypted message");
            }
            let mut downloaded = verified(&handle, &key)?;
            // `run` returned Ok: the content's own tag or MDC checked every byte.
            downloaded
                .checked
                .extend(authenticated_by.map(str::to_owned));
            pending.release().with_context(|| {
                format!("moving the verified plaintext to {}", destination.display())
            })?;
            Ok((outcome, plaintext_sha256, downloaded, reader.tee.take()))
        })
        .await??;
    if let (Some(tee), Some(path)) = (tee, keep_path) {
        anyhow::ensure!(
            tee.written() == info.size,
            "{}: kept {} of {} downloaded bytes",
            job.key,
            tee.written(),
            info.size
        );
        tee.release()
            .with_context(|| format!("keeping the downloaded bytes at {}", path.display()))?;
        save_object_metadata(&path, &info)?;
    }
    Ok(Decrypted {
        info,
        downloaded,
        outcome,
        plaintext_sha256,
    })
}

/// Writes the object's S3 metadata beside a kept copy, where a local source finds it.
fn save_object_metadata(path: &std::path::Path, info: &ObjectInfo) -> Result<()> {
    let saved = SavedObjectMetadata {
        user_metadata: info.user_metadata.clone(),
        sse: info.sse.clone(),
        version_id: info.version_id.clone(),
        etag: info.etag.clone(),
    };
    let mut companion = path.as_os_str().to_owned();
    companion.push(gcrec_fetch::source::OBJECT_METADATA_SUFFIX);
    let mut file = PendingFile::create(std::path::Path::new(&companion))?;
    serde_json::to_writer_pretty(&mut file, &saved)?;
    file.release()?;
    Ok(())
}

/// Copies an object byte for byte (sidecars), released only once its download checks.
pub async fn copy_object(
    source: Arc<dyn ObjectSource>,
    key: String,
    listed_size: Option<u64>,
    destination: PathBuf,
    ctx: Arc<DecryptContext>,
) -> Result<Copied> {
    let d = download(source, &key, listed_size, None, &ctx.transfer, &ctx.budget).await?;
    let handle = d.verified;
    let mut reader = BodyReader::spawn(
        Bytes::new(),
        d.stream,
        ctx.received.clone(),
        ctx.cancel.clone(),
    );
    let downloaded = tokio::task::spawn_blocking(move || -> Result<Verified> {
        let mut pending = PendingFile::create(&destination)?;
        io::copy(&mut reader, &mut pending)
            .map_err(|e| download_failure(gcrec_decrypt::object::DecryptError::Io(e)))?;
        let downloaded = verified(&handle, &key)?;
        pending.release()?;
        Ok(downloaded)
    })
    .await??;
    Ok(Copied { downloaded })
}
