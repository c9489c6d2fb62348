//! A tower-sessions id as the store sees it: only its hash.

use session_core::StoreKey;
use sha2::{Digest as _, Sha256};

/// The key a tower session is kept under: SHA-256 of the id's 16 bytes
/// (`i128::to_le_bytes`, the bytes of the id's cookie text). A dump of the
/// store therefore holds no usable cookie, and a lookup is not a timing
/// oracle for one, exactly as for session-core's own ids.
///
/// ```
/// use compat_tower_sessions::store_key_of;
///
/// let key = store_key_of(42);
/// assert_eq!(key, store_key_of(42));
/// assert_ne!(key, store_key_of(43));
/// ```
pub fn store_key_of(id: i128) -> StoreKey {
    StoreKey::from_bytes(Sha256::digest(id.to_le_bytes()).into())
}
