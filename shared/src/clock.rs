//! Time and ids, behind traits so that tests can fix them.

use std::sync::Mutex;

use chrono::{TimeDelta, Utc};
use rand::{Rng, RngCore};
use ulid::Ulid;

use crate::domain::Timestamp;

/// The source of the current time.
pub trait Clock: Send + Sync {
    /// Returns the current time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::new(Utc::now())
    }
}

/// A clock that does not move until a test advances it.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// Creates a clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock forward by `delta`.
    pub fn advance(&self, delta: TimeDelta) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now = now.plus(delta);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Creates a new ULID for time `at`, which sorts by creation time to the millisecond.
pub fn new_ulid(at: Timestamp) -> String {
    let millis = u64::try_from(at.epoch_millis()).unwrap_or(0);
    // `from_parts` keeps the low 80 bits of the random part.
    Ulid::from_parts(millis, rand::rng().random::<u128>()).to_string()
}

/// 32 random bytes as lowercase hex, for connect tickets.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
