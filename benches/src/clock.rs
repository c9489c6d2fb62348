//! The one clock all contenders of a run share.

use std::sync::atomic::{AtomicI64, Ordering};

use session_core::Timestamp;

use crate::keys::expiry;

/// "Now" fixed at the start of the run (so no operation reads the system
/// clock that another would not) and a renewal expiry that moves forward by
/// a millisecond per call, so every `touch` really extends a session
/// instead of hitting a store's "nothing to do" shortcut.
#[derive(Debug)]
pub struct BenchClock {
    now: Timestamp,
    renewals: AtomicI64,
}

impl BenchClock {
    /// A clock whose "now" is the current time.
    pub fn new() -> Self {
        BenchClock {
            now: Timestamp::now(),
            renewals: AtomicI64::new(1),
        }
    }

    /// The fixed "now".
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The expiry of a new or rewritten session.
    pub fn expiry(&self) -> Timestamp {
        expiry(self.now)
    }

    /// A later expiry than any before it, for `touch`.
    pub fn renewal(&self) -> Timestamp {
        let extra = self.renewals.fetch_add(1, Ordering::Relaxed);
        Timestamp::from_millis(self.expiry().as_millis() + extra)
    }
}

impl Default for BenchClock {
    fn default() -> Self {
        Self::new()
    }
}
