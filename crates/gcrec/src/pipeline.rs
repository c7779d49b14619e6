//! Moving an object from a source through decryption to its verified destination.
//!
//! Downloads are async; decryption is CPU-bound and synchronous, so it runs on the
//! blocking pool and reads the body through [`BodyReader`], a bounded channel that gives
//! back-pressure to the download. Output goes through a [`PendingFile`]: nothing reaches
//! the destination until the decryptor has verified it.

use std::io::{self, BufRead, Read};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use gcrec_decrypt::detect::{SNIFF_LEN, detect};
use gcrec_decrypt::keys::Keyring;
use gcrec_decrypt::object::{DecryptOptions, Outcome, prepare, run};
use gcrec_decrypt::release::PendingFile;
use gcrec_decrypt::s3ec::Kms;
use gcrec_fetch::source::{GetRequest, ObjectSource, SourceError, read_small};
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
}

impl BodyReader {
    /// Starts pumping `first` and then `rest` into a reader.
    pub fn spawn(
        first: Bytes,
        mut rest: futures::stream::BoxStream<'static, Result<Bytes, SourceError>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        tokio::spawn(async move {
            while let Some(chunk) = rest.next().await {
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
        }
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
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
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

/// What every object's decryption shares.
pub struct DecryptContext {
    /// The keys given.
    pub keys: Keyring,
    /// KMS, for KMS-wrapped S3EC data keys.
    pub kms: Option<Arc<dyn Kms>>,
    /// Options.
    pub options: DecryptOptions,
}

/// One object to decrypt.
#[derive(Debug, Clone)]
pub struct ObjectJob {
    /// The object's key.
    pub key: String,
    /// Its S3EC instruction file, if it has one.
    pub instruction: Option<String>,
    /// Where the plaintext goes.
    pub destination: PathBuf,
}

/// Decrypts one object to its destination, releasing it only once verified.
pub async fn decrypt_object(
    source: Arc<dyn ObjectSource>,
    job: ObjectJob,
    ctx: Arc<DecryptContext>,
) -> Result<Outcome> {
    let instruction = match &job.instruction {
        Some(k) => Some(
            read_small(&*source, k, MAX_INSTRUCTION)
                .await
                .with_context(|| format!("reading {k}"))?,
        ),
        None => None,
    };
    let body = source.get(&job.key, &GetRequest::default()).await?;
    let size = body.info.size;
    let mut stream = body.stream;
    let mut head = BytesMut::new();
    while head.len() < SNIFF_LEN {
        match stream.next().await {
            Some(chunk) => head.extend_from_slice(&chunk?),
            None => break,
        }
    }
    let format = detect(&head, &body.info.user_metadata, instruction.as_deref())?;
    let prepared = prepare(format, &ctx.keys, ctx.kms.as_deref(), ctx.options).await?;
    let reader = BodyReader::spawn(head.freeze(), stream);
    let destination = job.destination.clone();
    tokio::task::spawn_blocking(move || -> Result<Outcome> {
        let mut pending = PendingFile::create(&destination)
            .with_context(|| format!("creating a temporary file for {}", destination.display()))?;
        let outcome = run(
            &prepared,
            reader,
            size,
            &ctx.keys,
            ctx.options,
            &mut pending,
        )?;
        pending.release().with_context(|| {
            format!("moving the verified plaintext to {}", destination.display())
        })?;
        Ok(outcome)
    })
    .await?
}

/// Copies an object byte for byte (sidecars), released only once its length checks.
pub async fn copy_object(
    source: Arc<dyn ObjectSource>,
    key: String,
    destination: PathBuf,
) -> Result<u64> {
    let body = source.get(&key, &GetRequest::default()).await?;
    let size = body.info.size;
    let reader = BodyReader::spawn(Bytes::new(), body.stream);
    tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut pending = PendingFile::create(&destination)?;
        let mut reader = reader;
        let copied = io::copy(&mut reader, &mut pending)?;
        anyhow::ensure!(
            copied == size,
            "read {copied} bytes of a {size}-byte object"
        );
        pending.release()?;
        Ok(copied)
    })
    .await?
}
