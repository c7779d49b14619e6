//! An object body that arrives asynchronously, read by a blocking decryptor.
//!
//! Decryption is CPU-bound and synchronous, so it runs on the blocking pool and reads
//! the body through [`BodyReader`], fed by a bounded channel that gives back-pressure to
//! the download. The decryptors speak `std::io`, so a failure of the download or a
//! cancellation reaches them as an `io::Error` — but the reader keeps the typed cause
//! ([`BodyReader::take_failure`]), and the engine reports that, never a downcast.

use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use gcrec_fetch::source::SourceError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::PullError;
use crate::release::PendingFile;

/// Body chunks in flight between the download and the decryptor, per object.
const CHANNEL_CHUNKS: usize = 4;

/// Why a body stopped before its end.
#[derive(Debug)]
enum Stop {
    Source(SourceError),
    Cancelled,
}

/// A blocking reader over an object body that arrives asynchronously.
pub struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, Stop>>,
    current: Bytes,
    done: bool,
    cancel: CancellationToken,
    failure: Option<Stop>,
    /// A copy of every byte read, for kept encrypted copies.
    tee: Option<PendingFile>,
}

impl BodyReader {
    /// Starts pumping `first` and then `rest` into a reader; `received` counts the bytes
    /// as they arrive (for progress). Cancelling `cancel` stops the pump at once, even
    /// while it waits on a silent connection.
    pub fn spawn(
        first: Bytes,
        mut rest: BoxStream<'static, Result<Bytes, SourceError>>,
        received: Arc<AtomicU64>,
        cancel: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        received.fetch_add(first.len() as u64, Ordering::Relaxed);
        let pump_cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                let chunk = tokio::select! {
                    chunk = rest.next() => chunk,
                    () = pump_cancel.cancelled() => {
                        let _ = tx.send(Err(Stop::Cancelled)).await;
                        break;
                    }
                };
                let Some(chunk) = chunk else { break };
                if let Ok(c) = &chunk {
                    received.fetch_add(c.len() as u64, Ordering::Relaxed);
                }
                let failed = chunk.is_err();
                if tx.send(chunk.map_err(Stop::Source)).await.is_err() || failed {
                    break;
                }
            }
        });
        Self {
            rx,
            current: first,
            done: false,
            cancel,
            failure: None,
            tee: None,
        }
    }

    /// Also copies every byte read into `tee`, starting with those already buffered.
    pub fn tee_into(&mut self, mut tee: PendingFile) -> io::Result<()> {
        tee.write_all(&self.current)?;
        self.tee = Some(tee);
        Ok(())
    }

    /// The kept copy, once reading is over.
    pub fn take_tee(&mut self) -> Option<PendingFile> {
        self.tee.take()
    }

    /// Reads (and discards) whatever the decryptor left unread, so the download's own
    /// checks run to the end. Returns how many bytes that was.
    pub fn drain(&mut self) -> io::Result<u64> {
        io::copy(self, &mut io::sink())
    }

    /// Why the body stopped early, if it did: the download's own error, or
    /// [`PullError::Cancelled`].
    pub fn take_failure(&mut self) -> Option<PullError> {
        self.failure.take().map(|stop| match stop {
            Stop::Source(e) => PullError::Source(e),
            Stop::Cancelled => PullError::Cancelled,
        })
    }

    fn stop(&mut self, stop: Stop) -> io::Error {
        let text = match &stop {
            Stop::Source(e) => e.to_string(),
            Stop::Cancelled => "interrupted".to_owned(),
        };
        self.failure = Some(stop);
        self.done = true;
        io::Error::other(text)
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
        if self.failure.is_some() {
            return Err(io::Error::other("the body already failed"));
        }
        while self.current.is_empty() && !self.done {
            if self.cancel.is_cancelled() {
                // Not `ErrorKind::Interrupted`: readers retry that one, forever.
                return Err(self.stop(Stop::Cancelled));
            }
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    if let Some(tee) = self.tee.as_mut() {
                        tee.write_all(&chunk)?;
                    }
                    self.current = chunk;
                }
                Some(Err(stop)) => return Err(self.stop(stop)),
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
