//! A read-only pass over a stream (a hash, a media check) moved to a thread of its own
//! once the stream proves long, so it runs beside the decryption instead of after it.
//!
//! Small objects — most recordings — are absorbed inline and never pay for a thread.
//! Past a threshold the absorber moves to a scoped thread and is fed copies of the data
//! in batches through a bounded channel: a copy costs a few per cent of a SHA-256, and
//! the memory is bounded by [`IN_FLIGHT`] batches of [`BATCH`] bytes. Written here (not
//! taken from a crate) because it is a few dozen lines over `std::thread::scope` and
//! `std::sync::mpsc`, and both SEIPDv1's MDC and the pull's plaintext digest use it.

use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

/// Bytes handed to the thread at a time.
pub const BATCH: usize = 256 * 1024;
/// Batches that exist per stream (being filled, queued or being absorbed).
pub const IN_FLIGHT: usize = 4;
/// A stream's first bytes absorbed inline before the absorber moves to its own thread:
/// below this, a thread costs more than it saves (most recordings stay below it).
pub const INLINE_BYTES: u64 = 4 << 20;

/// Something that reads a stream's bytes in order (a hash, a format check).
pub trait Absorb: Send {
    /// Takes the next bytes.
    fn absorb(&mut self, data: &[u8]);
}

impl Absorb for sha1::Sha1 {
    fn absorb(&mut self, data: &[u8]) {
        sha1::Digest::update(self, data);
    }
}

impl Absorb for sha2::Sha256 {
    fn absorb(&mut self, data: &[u8]) {
        sha2::Digest::update(self, data);
    }
}

/// The absorbing thread stopped (it panicked); what it computed is lost.
#[derive(Debug, thiserror::Error)]
#[error("the thread checking the plaintext stopped unexpectedly")]
pub struct Stopped;

enum State<'scope, A> {
    Inline(A),
    Thread {
        batches: SyncSender<Vec<u8>>,
        back: Receiver<Vec<u8>>,
        absorber: ScopedJoinHandle<'scope, A>,
    },
    /// Only while moving to the thread, or after it stopped.
    Gone,
}

/// Feeds an [`Absorb`] inline, then (past `inline_bytes`) on a thread of `scope`.
pub struct OffThread<'scope, 'env, A: Absorb + 'scope> {
    scope: &'scope Scope<'scope, 'env>,
    state: State<'scope, A>,
    inline_bytes: u64,
    seen: u64,
    batch: Vec<u8>,
    spare: Vec<Vec<u8>>,
    buffers: usize,
}

impl<'scope, 'env, A: Absorb + 'scope> OffThread<'scope, 'env, A> {
    /// Absorbs the first `inline_bytes` on the caller's thread, the rest on one of
    /// `scope`'s.
    pub fn new(scope: &'scope Scope<'scope, 'env>, absorber: A, inline_bytes: u64) -> Self {
        Self {
            scope,
            state: State::Inline(absorber),
            inline_bytes,
            seen: 0,
            batch: Vec::new(),
            spare: Vec::new(),
            buffers: 0,
        }
    }

    /// Takes the next bytes of the stream.
    pub fn absorb(&mut self, mut data: &[u8]) -> Result<(), Stopped> {
        self.seen += data.len() as u64;
        if let State::Inline(absorber) = &mut self.state {
            if self.seen <= self.inline_bytes {
                absorber.absorb(data);
                return Ok(());
            }
            self.move_to_thread()?;
        }
        while !data.is_empty() {
            let room = BATCH - self.batch.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.batch.extend_from_slice(now);
            data = rest;
            if self.batch.len() == BATCH {
                self.send()?;
            }
        }
        Ok(())
    }

    fn move_to_thread(&mut self) -> Result<(), Stopped> {
        let State::Inline(mut absorber) = std::mem::replace(&mut self.state, State::Gone) else {
            return Err(Stopped);
        };
        let (batches, todo) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (done, back) = std::sync::mpsc::channel();
        let handle = self.scope.spawn(move || {
            for batch in todo {
                absorber.absorb(&batch);
                // The feeding side may have stopped waiting for buffers; nothing to do then.
                let _ = done.send(batch);
            }
            absorber
        });
        self.state = State::Thread {
            batches,
            back,
            absorber: handle,
        };
        self.batch = self.buffer()?;
        Ok(())
    }

    /// An empty buffer: a spare one, a new one while fewer than [`IN_FLIGHT`] exist,
    /// else the next one the thread is done with.
    fn buffer(&mut self) -> Result<Vec<u8>, Stopped> {
        let mut b = match self.spare.pop() {
            Some(b) => b,
            None if self.buffers < IN_FLIGHT => {
                self.buffers += 1;
                Vec::with_capacity(BATCH)
            }
            None => match &self.state {
                State::Thread { back, .. } => back.recv().map_err(|_| Stopped)?,
                _ => return Err(Stopped),
            },
        };
        b.clear();
        Ok(b)
    }

    fn send(&mut self) -> Result<(), Stopped> {
        let next = self.buffer()?;
        let full = std::mem::replace(&mut self.batch, next);
        match &self.state {
            State::Thread { batches, .. } => batches.send(full).map_err(|_| Stopped),
            _ => Err(Stopped),
        }
    }

    /// Everything absorbed: the absorber back, wherever it ran.
    pub fn finish(mut self) -> Result<A, Stopped> {
        if matches!(self.state, State::Thread { .. }) && !self.batch.is_empty() {
            let last = std::mem::take(&mut self.batch);
            if let State::Thread { batches, .. } = &self.state {
                batches.send(last).map_err(|_| Stopped)?;
            }
        }
        match std::mem::replace(&mut self.state, State::Gone) {
            State::Inline(absorber) => Ok(absorber),
            State::Thread {
                batches,
                back,
                absorber,
            } => {
                drop(batches);
                drop(back);
                absorber.join().map_err(|_| Stopped)
            }
            State::Gone => Err(Stopped),
        }
    }
}

/// A stream given up on (an error elsewhere) still ends its thread, so a panic in it
/// does not resurface when the scope ends.
impl<'scope, 'env, A: Absorb + 'scope> Drop for OffThread<'scope, 'env, A> {
    fn drop(&mut self) {
        if let State::Thread {
            batches,
            back,
            absorber,
        } = std::mem::replace(&mut self.state, State::Gone)
        {
            drop(batches);
            drop(back);
            let _ = absorber.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn inline_or_on_a_thread_the_digest_is_the_same() {
        let data: Vec<u8> = (0..3 * BATCH as u32 + 999)
            .map(|i| (i % 251) as u8)
            .collect();
        let want = Sha256::digest(&data);
        for inline in [0, 1, 1000, BATCH as u64, u64::MAX] {
            for step in [1usize, 7, 4096, BATCH + 3, data.len()] {
                if step == 1 && inline != 1000 {
                    continue;
                }
                let got = std::thread::scope(|scope| {
                    let mut off = OffThread::new(scope, Sha256::new(), inline);
                    for piece in data.chunks(step) {
                        off.absorb(piece).unwrap();
                    }
                    off.finish().unwrap().finalize()
                });
                assert_eq!(got, want, "inline {inline}, step {step}");
            }
        }
    }

    #[test]
    fn a_panicking_absorber_is_reported_not_propagated() {
        struct Fails;
        impl Absorb for Fails {
            fn absorb(&mut self, data: &[u8]) {
                assert!(data.len() < 10, "refuses long input");
            }
        }
        std::thread::scope(|scope| {
            let mut off = OffThread::new(scope, Fails, 0);
            let fed = (0..2 * IN_FLIGHT).try_for_each(|_| off.absorb(&[0u8; BATCH]));
            let finished = off.finish();
            assert!(fed.is_err() || finished.is_err());
        });
    }
}
