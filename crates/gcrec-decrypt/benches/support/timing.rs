//! Shared by the benches that time a whole operation per round (`rsa`, `s2k`).

use std::time::Instant;

/// Milliseconds per call of `f` over `rounds` calls, after one warm-up call.
pub fn ms_per_round(rounds: u32, f: &dyn Fn()) -> f64 {
    f();
    let started = Instant::now();
    for _ in 0..rounds {
        f();
    }
    started.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds)
}
