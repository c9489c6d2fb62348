//! The sessions a workload works on: deterministic keys, their versions,
//! payloads of the three sizes, and new records made of them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use session_core::{Record, StoreKey, Timestamp};

/// How long every benchmark session lives: far longer than any run, so no
/// server TTL fires while measuring.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// The expiry every write sets: "now" of the run plus [`SESSION_LIFETIME`].
pub fn expiry(now: Timestamp) -> Timestamp {
    now + SESSION_LIFETIME
}

/// splitmix64: a fast, well-mixed function of a counter, so keys look like
/// the SHA-256 outputs real stores receive (uniform bytes) without hashing.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `index`-th key of the stream `stream`: distinct streams never share a
/// key, so fresh keys for creates never hit the preloaded ones.
pub fn key(stream: u64, index: u64) -> StoreKey {
    let mut bytes = [0u8; 32];
    let seed = mix(stream ^ mix(index));
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(seed.wrapping_add(i as u64)).to_le_bytes());
    }
    StoreKey::from_bytes(bytes)
}

/// A payload of `len` bytes (printable, so peers that store strings take it
/// as it is).
pub fn payload(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| b'a' + (i % 26) as u8).collect::<Vec<u8>>())
}

/// A new session's record as the contract wants it for `create`: version
/// 1, no owner.
pub fn record(key: StoreKey, data: Bytes, created_at: Timestamp, expires_at: Timestamp) -> Record {
    Record {
        key,
        version: 1,
        data,
        created_at,
        expires_at,
        owner: None,
    }
}

/// A small, fast random number generator, one per task (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Rng(mix(seed) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// The preloaded sessions of one contender: their keys and the version each
/// is at, so compare-and-swap updates expect the right one.
#[derive(Debug)]
pub struct KeyPool {
    keys: Vec<StoreKey>,
    versions: Vec<AtomicU64>,
}

/// The key stream of preloaded sessions; fresh keys use other streams.
pub const PRELOAD_STREAM: u64 = 1;

impl KeyPool {
    /// The pool of `size` preloaded sessions (all at version 1).
    pub fn new(size: usize) -> Self {
        KeyPool {
            keys: (0..size as u64).map(|i| key(PRELOAD_STREAM, i)).collect(),
            versions: (0..size).map(|_| AtomicU64::new(1)).collect(),
        }
    }

    /// All keys.
    pub fn keys(&self) -> &[StoreKey] {
        &self.keys
    }

    /// How many sessions.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Key number `i`.
    pub fn key(&self, i: usize) -> &StoreKey {
        &self.keys[i]
    }

    /// The version key `i` is believed to be at.
    pub fn version(&self, i: usize) -> u64 {
        self.versions[i].load(Ordering::Relaxed)
    }

    /// Records the version the store reported for key `i`.
    pub fn set_version(&self, i: usize, version: u64) {
        self.versions[i].store(version, Ordering::Relaxed);
    }
}
