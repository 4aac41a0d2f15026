//! The one place the OS clock and OS randomness enter the program (`clippy.toml` bans them
//! everywhere else). Everything else takes a [`Clock`] or a seed, so the engine and simnet
//! can run on virtual time and seeded randomness.
#![allow(clippy::disallowed_methods)]

use std::time::{SystemTime, UNIX_EPOCH};

use vm_receipts::Timestamp;

/// A source of the current time, to the second.
pub trait Clock {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        // Saturates at year 9999 rather than failing: a clock that far off is caught by the
        // drift checks of the peers that read our timestamps.
        Timestamp::EPOCH.plus_seconds(secs)
    }
}

/// The operating system's wall clock in milliseconds since the Unix epoch (the witness
/// core's time: its resends and deadlines are finer than a second).
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// 32 bytes from the OS random number generator, for new secret keys and nonces.
pub fn os_random_32() -> Result<[u8; 32], getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// Elapsed wall time, for what a report shows (a simulation's run time): never an input to
/// a decision, which is what keeps simulations deterministic.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    /// Seconds since the start.
    pub fn elapsed_secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}
