//! What this crate's tests share besides `conformance::fixtures` (records,
//! updates, `HOUR`): a small store in a fresh directory, a session created
//! in it in one call, and an owner's listing as sorted keys.

use std::path::Path;
use std::time::Duration;

use session_core::{Bytes, Record, SessionStore, StoreKey, Timestamp};
use store_sled::{FlushPolicy, SledStore, SledStoreBuilder};
use tempfile::TempDir;

/// A small store at `path` that flushes in the background, for tests that
/// do not kill the process: a clean drop (or `flush`) writes everything.
pub fn builder(path: &Path) -> SledStoreBuilder {
    SledStore::builder(path)
        .cache_capacity(4 * 1024 * 1024)
        .flush_policy(FlushPolicy::Periodic(Duration::from_millis(100)))
}

/// A store opened with [`builder`] in a fresh temporary directory, which is
/// removed when the returned guard is dropped (keep it until the store is).
pub fn temporary_store() -> (TempDir, SledStore) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = builder(&dir.path().join("db")).open().expect("open a store");
    (dir, store)
}

/// Creates a session in `store` and returns it: a
/// `conformance::fixtures::record` of `owner`, created at `at`, lasting
/// `ttl`, whose data is its key's prefix, so that a value recovered under
/// another key, or mixed from two, cannot pass for it.
pub async fn stored(store: &SledStore, owner: Option<&str>, at: Timestamp, ttl: Duration) -> Record {
    let key = conformance::fresh_key();
    let record = Record {
        data: Bytes::from(key.short()),
        owner: owner.map(str::to_owned),
        ..conformance::fixtures::record(key, at, ttl)
    };
    store.create(record.clone(), at).await.expect("create");
    record
}

/// The keys of `owner`'s live sessions at `now`, sorted.
pub async fn listed(store: &SledStore, owner: &str, now: Timestamp) -> Vec<StoreKey> {
    let mut keys: Vec<StoreKey> = store
        .list_by_owner(owner, now)
        .await
        .expect("list_by_owner")
        .into_iter()
        .map(|s| s.key)
        .collect();
    keys.sort();
    keys
}
