//! The shared contract suite against `SledStore`, each test in its own
//! temporary directory.

use conformance::{StoreFactory, Unavailable};
use session_core::{StoreKey, async_trait};
use store_sled::{FlushPolicy, SledStore};

/// Fresh stores in temporary directories. The state-machine test makes a
/// few hundred of them per run, so each is small: a 1 MiB cache and a
/// directory that sled deletes when the store is dropped.
struct Sled;

#[async_trait]
impl StoreFactory for Sled {
    type Store = SledStore;

    fn name(&self) -> &'static str {
        "sled"
    }

    async fn make(&self) -> Result<SledStore, Unavailable> {
        let dir = tempfile::Builder::new()
            .prefix("store-sled-conformance-")
            .tempdir()
            .map_err(|e| Unavailable(format!("no temporary directory: {e}")))?;
        // The store owns the directory from here on: `temporary` makes sled
        // delete it on drop, so the TempDir guard must not delete it first.
        let path = dir.keep();
        let store = SledStore::builder(&path)
            .cache_capacity(1024 * 1024)
            // The policy with the most to check: every write waits for its flush.
            .flush_policy(FlushPolicy::EveryWrite)
            .temporary(true)
            .open();
        // An embedded database has no server to be unavailable: failing to
        // open one is a failure, not a skip.
        Ok(store.unwrap_or_else(|e| panic!("could not open a sled store in {}: {e}", path.display())))
    }

    async fn corrupt(&self, store: &SledStore, key: &StoreKey) {
        // What damaged storage looks like to this backend: undecodable bytes
        // under the record's key.
        store
            .overwrite_record_bytes_for_tests(key, &[0xde, 0xad, 0xbe, 0xef, 0x00])
            .expect("a raw write into the records tree");
    }

    async fn dispose(&self, store: SledStore) {
        // Dropping the last handle closes the database and, as it was opened
        // `temporary`, deletes its directory.
        drop(store);
    }
}

conformance::suite!(Sled);
