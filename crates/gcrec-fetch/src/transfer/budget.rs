//! The byte budget shared by every download: part bytes buffered at once, never more;
//! and, beside it, half as much again for whole small objects fetched ahead of their
//! decryption.
//!
//! The two are separate pools so that no download waits on the other kind: an object
//! being decrypted may wait for its next part's budget, never for the small objects'
//! (whose holders only wait for a decryptor), so neither can starve the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::DEFAULT_BUDGET;

/// Budget units are KiB, so a budget may exceed what one semaphore acquisition counts.
pub(super) const UNIT: u64 = 1024;

/// Bytes of downloaded parts buffered at once, across every download sharing it, and
/// bytes of small objects fetched ahead (see [`ByteBudget::acquire_ahead`]).
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    units: u32,
    /// The most units ever taken at once.
    high_water: Arc<AtomicU64>,
    ahead: Arc<Semaphore>,
    ahead_units: u32,
}

impl ByteBudget {
    /// A budget of `bytes` (at least one part's worth is always granted, see
    /// [`ByteBudget::acquire`]).
    pub fn new(bytes: u64) -> Self {
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .max(1);
        let ahead_units = (units / 2).max(1);
        Self {
            semaphore: Arc::new(Semaphore::new(units as usize)),
            units,
            high_water: Arc::default(),
            ahead: Arc::new(Semaphore::new(ahead_units as usize)),
            ahead_units,
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
        let permit = self
            .semaphore
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("the budget's semaphore is never closed");
        let in_use = u64::from(self.units) - self.semaphore.available_permits() as u64;
        self.high_water.fetch_max(in_use, Ordering::Relaxed);
        permit
    }

    /// Waits until a body that may buffer `bytes` (fetched with one GET) may be
    /// requested: the bodies fetched ahead of their decryption hold at most half the
    /// budget's bytes between them, whatever the number of requests in flight. The
    /// permit goes with the body and is given back when it has been read or dropped.
    pub async fn acquire_ahead(&self, bytes: u64) -> OwnedSemaphorePermit {
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.ahead_units);
        self.ahead
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("the budget's semaphore is never closed")
    }

    /// Bytes of small objects that may be fetched ahead at once.
    pub fn ahead_bytes(&self) -> u64 {
        u64::from(self.ahead_units) * UNIT
    }

    /// The most bytes ever taken at once: never more than [`ByteBudget::bytes`].
    pub fn high_water(&self) -> u64 {
        self.high_water.load(Ordering::Relaxed) * UNIT
    }
}

impl Default for ByteBudget {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET)
    }
}
