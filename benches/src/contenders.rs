//! The contenders: our stores through `SessionStore`, the raw clients, and
//! (feature `peers`) the peer stores. One file per kind of client.

mod clock;
pub mod ours;
pub mod raw_map;
pub mod raw_postgres;
pub mod raw_redis;
pub mod raw_sled;
pub mod server;

#[cfg(feature = "peers")]
pub mod peers;

pub use clock::BenchClock;

/// 64 lowercase hex digits of a key, for clients whose keys are strings.
pub fn keys_hex(key: &session_core::StoreKey) -> String {
    key.to_hex()
}
