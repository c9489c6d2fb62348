//! The test factory of this backend (feature `test-hooks`): what the
//! conformance suite, the HTTP kit and any other suite over
//! [`conformance::StoreFactory`] run against. Not for applications.

use conformance::{StoreFactory, Unavailable};
use session_core::{StoreKey, async_trait};

use crate::{FlushPolicy, SledStore};

/// Fresh [`SledStore`]s, each in a temporary directory of its own that sled
/// deletes when the store is dropped. The state-machine rule makes a few
/// hundred per run, so each is small (a 1 MiB cache), and each acknowledges
/// only flushed writes ([`FlushPolicy::EveryWrite`], the policy with the
/// most to check).
///
/// ```
/// use conformance::StoreFactory;
/// use store_sled::testing::SledFactory;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = SledFactory.make().await.expect("a temporary directory");
/// assert!(store.is_empty());
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SledFactory;

#[async_trait]
impl StoreFactory for SledFactory {
    type Store = SledStore;

    fn name(&self) -> &'static str {
        "sled"
    }

    async fn make(&self) -> Result<SledStore, Unavailable> {
        let dir = tempfile::Builder::new()
            .prefix("store-sled-test-")
            .tempdir()
            .map_err(|e| Unavailable(format!("no temporary directory: {e}")))?;
        // The store owns the directory from here on: `temporary` makes sled
        // delete it on drop, so the TempDir guard must not delete it first.
        let path = dir.keep();
        let store = SledStore::builder(&path)
            .cache_capacity(1024 * 1024)
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
