//! How many recordings a pull works on at once: a fixed number, or a limit that adapts.
//!
//! Small objects are latency-bound: at 80 ms a request, 32 in flight is 400 requests a
//! second whatever the bandwidth. The adaptive limit ([`Jobs::Auto`]) starts at
//! [`AUTO_START`] and measures each round (as many completions as the limit): while a
//! round completes recordings at least 10 % faster than the best so far it doubles (slow
//! start); when doubling stops paying it settles on the limit before, then grows by one a
//! round while that still pays. Whenever the store has made requests be retried since the
//! last look (503 SlowDown, 5xx, timeouts, broken bodies) it halves — at most once per
//! [`BACKOFF_COOLDOWN`], never below [`AUTO_MIN`] — and grows again as rounds pay. Memory stays bounded by the byte budget whatever the
//! limit, so the ceiling only bounds open connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The adaptive limit's first value.
pub const AUTO_START: usize = 64;
/// The adaptive limit's floor.
pub const AUTO_MIN: usize = 4;
/// The adaptive limit's default ceiling.
pub const AUTO_MAX: usize = 256;
/// The shortest time between two back-offs (one burst of retries halves once).
pub const BACKOFF_COOLDOWN: Duration = Duration::from_millis(500);
/// A round must complete this much faster than the best so far for the limit to grow.
const GAIN: f64 = 1.10;

/// Recordings worked on at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jobs {
    /// Exactly this many.
    Fixed(usize),
    /// Adapting to the store, up to this many.
    Auto {
        /// The ceiling.
        max: usize,
    },
}

impl Jobs {
    /// The most recordings ever in flight.
    pub fn ceiling(&self) -> usize {
        match self {
            Jobs::Fixed(n) => (*n).max(1),
            Jobs::Auto { max } => (*max).max(AUTO_MIN),
        }
    }
}

/// What the adaptive limit did, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobsReport {
    /// Whether the limit adapted.
    pub auto: bool,
    /// The limit at the end.
    pub last: usize,
    /// The highest it reached.
    pub highest: usize,
    /// How many times it backed off.
    pub backoffs: u64,
}

/// The limit: permits of a semaphore, adjusted as recordings finish.
#[derive(Debug)]
pub struct Limiter {
    permits: Arc<Semaphore>,
    state: std::sync::Mutex<State>,
    retries: AtomicU64,
}

#[derive(Debug)]
struct State {
    auto: bool,
    limit: usize,
    max: usize,
    /// Completions since the limit last changed.
    round: usize,
    /// No back-off yet: grow by doubling.
    slow_start: bool,
    /// Permits a back-off still has to take back (they were in use).
    debt: usize,
    /// When the current round began.
    round_started: Instant,
    /// The best completion rate of a round so far.
    best_rate: f64,
    /// The limit before the last growth.
    previous: usize,
    last_backoff: Option<Instant>,
    report: JobsReport,
}

impl Limiter {
    /// A limiter for `jobs`.
    pub fn new(jobs: Jobs) -> Self {
        Self::starting_at(jobs, AUTO_START)
    }

    /// A limiter for `jobs` whose adaptive limit starts at `start`.
    fn starting_at(jobs: Jobs, start: usize) -> Self {
        let (auto, limit, max) = match jobs {
            Jobs::Fixed(n) => (false, n.max(1), n.max(1)),
            Jobs::Auto { max } => {
                let max = max.max(AUTO_MIN);
                (true, start.clamp(AUTO_MIN, max), max)
            }
        };
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            state: std::sync::Mutex::new(State {
                auto,
                limit,
                max,
                round: 0,
                slow_start: true,
                debt: 0,
                round_started: Instant::now(),
                best_rate: 0.0,
                previous: limit,
                last_backoff: None,
                report: JobsReport {
                    auto,
                    last: limit,
                    highest: limit,
                    backoffs: 0,
                },
            }),
            retries: AtomicU64::new(0),
        }
    }

    /// Waits for room for one more recording.
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// One recording finished (its permit already returned); `retries` is the source's
    /// retry count now.
    pub fn finished(&self, retries: u64) {
        self.finished_at(retries, Instant::now());
    }

    /// [`Limiter::finished`] at a given instant (tests pass their own clock).
    fn finished_at(&self, retries: u64, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !s.auto {
            return;
        }
        // Permits owed from a back-off are taken as they come back.
        if s.debt > 0 {
            s.debt -= self.permits.forget_permits(s.debt);
        }
        let before = self.retries.swap(retries, Ordering::Relaxed);
        if retries > before {
            let cooled = s
                .last_backoff
                .is_none_or(|t| now.saturating_duration_since(t) >= BACKOFF_COOLDOWN);
            if cooled && s.limit > AUTO_MIN {
                let lower = (s.limit / 2).max(AUTO_MIN);
                self.set(&mut s, lower);
                s.slow_start = false;
                s.last_backoff = Some(now);
                s.round = 0;
                s.round_started = now;
                // The rate measured before the push-back is not one to beat.
                s.best_rate = 0.0;
                s.report.backoffs += 1;
            }
            return;
        }
        s.round += 1;
        if s.round < s.limit {
            return;
        }
        // A round: as many completions as the limit. Grow only while that raises the
        // rate of completions (a local disk or a near store gains nothing from more).
        let elapsed = now
            .saturating_duration_since(s.round_started)
            .as_secs_f64()
            .max(1e-6);
        let rate = s.round as f64 / elapsed;
        s.round = 0;
        s.round_started = now;
        let rising = rate > s.best_rate * GAIN;
        s.best_rate = s.best_rate.max(rate);
        if rising && s.limit < s.max {
            let grown = if s.slow_start {
                (s.limit * 2).min(s.max)
            } else {
                s.limit + 1
            };
            s.previous = s.limit;
            self.set(&mut s, grown);
        } else if s.slow_start {
            // Doubling stopped paying: settle on the limit before the last doubling,
            // and creep from there.
            s.slow_start = false;
            if !rising && s.previous < s.limit {
                let previous = s.previous;
                self.set(&mut s, previous);
            }
        }
    }

    /// Moves the limit to `to`, adding permits now or owing them back.
    fn set(&self, s: &mut State, to: usize) {
        if to > s.limit {
            let add = to - s.limit;
            let cancelled = add.min(s.debt);
            s.debt -= cancelled;
            self.permits.add_permits(add - cancelled);
        } else {
            s.debt += s.limit - to;
            s.debt -= self.permits.forget_permits(s.debt);
        }
        s.limit = to;
        s.report.last = to;
        s.report.highest = s.report.highest.max(to);
    }

    /// What the limit did.
    pub fn report(&self) -> JobsReport {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limit_doubles_until_the_store_pushes_back_then_halves_and_creeps_up() {
        let l = Limiter::starting_at(Jobs::Auto { max: 100 }, 16);
        assert_eq!(l.report().last, 16);
        for _ in 0..16 {
            l.finished(0);
        }
        assert_eq!(l.report().last, 32, "slow start doubles");
        // Retries: halve once, not again within the cool-down.
        l.finished(3);
        l.finished(9);
        let r = l.report();
        assert_eq!((r.last, r.backoffs, r.highest), (16, 1, 32));
        // All permits come back to exactly the new limit.
        assert_eq!(l.permits.available_permits(), 16);
        // Then one more per round.
        for _ in 0..16 {
            l.finished(9);
        }
        assert_eq!(l.report().last, 17);
        assert_eq!(l.permits.available_permits(), 17);
    }

    #[tokio::test]
    async fn growth_stops_where_more_in_flight_no_longer_finishes_faster() {
        let l = Limiter::starting_at(Jobs::Auto { max: 256 }, 16);
        let mut now = l.state.lock().unwrap().round_started;
        // Each round takes as long per recording as the last: twice the recordings in
        // flight, twice the time — nothing gained.
        let mut round = |n: usize, ms: u64| {
            now += Duration::from_millis(ms);
            for _ in 0..n {
                l.finished_at(0, now);
            }
        };
        round(16, 30);
        assert_eq!(l.report().last, 32, "the first round always grows");
        round(32, 60);
        let r = l.report();
        assert_eq!((r.last, r.highest), (16, 32), "settled back: {r:?}");
        // A round that is clearly faster grows it again, by one.
        round(16, 5);
        assert_eq!(l.report().last, 17);
    }

    #[tokio::test]
    async fn a_back_off_takes_back_permits_in_use_as_they_return() {
        let l = Limiter::starting_at(Jobs::Auto { max: 64 }, 16);
        let held: Vec<_> = futures::future::join_all((0..16).map(|_| l.acquire())).await;
        assert_eq!(l.permits.available_permits(), 0);
        l.finished(1);
        assert_eq!(l.report().last, 8);
        drop(held);
        l.finished(1);
        assert_eq!(l.permits.available_permits(), 8, "the limit, no more");
    }

    #[tokio::test]
    async fn a_fixed_limit_never_moves_and_never_drops_below_the_floor() {
        let l = Limiter::new(Jobs::Fixed(7));
        for i in 0..100 {
            l.finished(i);
        }
        assert_eq!(
            l.report(),
            JobsReport {
                auto: false,
                last: 7,
                highest: 7,
                backoffs: 0
            }
        );
        let l = Limiter::new(Jobs::Auto { max: 8 });
        let mut now = Instant::now();
        for i in 0..10u64 {
            now += BACKOFF_COOLDOWN / 4;
            l.finished_at(i + 1, now);
        }
        let r = l.report();
        assert_eq!(
            (r.last, r.backoffs),
            (AUTO_MIN, 1),
            "once to the floor, never below"
        );
    }
}
