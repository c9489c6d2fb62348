//! Building blocks for a backend's own tests beside the suite: records and
//! updates in one line, the suite's unit of time, and the one way to skip a
//! test whose server is missing.
//!
//! ```
//! use conformance::fixtures::{self, HOUR};
//! use session_core::{Record, Timestamp};
//!
//! let now = Timestamp::now();
//! let key = conformance::fresh_key();
//! let anonymous = fixtures::record(key, now, HOUR);
//! let owned = Record { owner: Some("ada".into()), ..fixtures::record(key, now, 2 * HOUR) };
//! assert_eq!(anonymous.expires_at, now + HOUR);
//! assert_eq!(owned.owner.as_deref(), Some("ada"));
//! ```

use std::fmt::Display;
use std::time::Duration;

use session_core::{Bytes, Record, StoreKey, Timestamp, Update};

pub use crate::harness::HOUR;
use crate::harness::{REQUIRE_SERVICES_ENV, announce_skip, services_required};

/// The data of [`record`]: an empty session map in the current format, so
/// the manager can decode it too.
pub const EMPTY_DATA: &[u8] = b"\x01\x00";

/// A version-1 record under `key`, created at `now`, expiring `ttl` later,
/// without an owner, holding [`EMPTY_DATA`].
pub fn record(key: StoreKey, now: Timestamp, ttl: Duration) -> Record {
    Record {
        key,
        version: 1,
        data: Bytes::from_static(EMPTY_DATA),
        created_at: now,
        expires_at: now + ttl,
        owner: None,
    }
}

/// An update expecting `expected_version`.
pub fn update(expected_version: u64, data: &'static [u8], expires_at: Timestamp, owner: Option<&str>) -> Update {
    Update {
        expected_version,
        data: Bytes::from_static(data),
        expires_at,
        owner: owner.map(str::to_owned),
    }
}

/// What a test does when the server it needs cannot be reached: under
/// `SESSIONS_REQUIRE_SERVICES=1` (CI) it fails; otherwise it prints a skip
/// line that the test harness does not capture, and the caller returns.
///
/// ```
/// fn connect() -> Result<(), String> { Err("connection refused".into()) }
///
/// # if conformance::services_required() { return; }
/// if let Err(e) = connect() {
///     conformance::fixtures::skip_or_fail("redis", &e);
///     return;
/// }
/// ```
pub fn skip_or_fail(backend: &str, why: &dyn Display) {
    if services_required() {
        panic!("{backend}: server unavailable and {REQUIRE_SERVICES_ENV}=1: {why}");
    }
    announce_skip(backend, why);
}
