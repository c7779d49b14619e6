//! The byte budget shared by every download: part bytes buffered at once, never more.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::DEFAULT_BUDGET;

/// Budget units are KiB, so a budget may exceed what one semaphore acquisition counts.
pub(super) const UNIT: u64 = 1024;

/// Bytes of downloaded parts buffered at once, across every download sharing it.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    units: u32,
    /// The most units ever taken at once.
    high_water: Arc<AtomicU64>,
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
            high_water: Arc::default(),
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
