//! The HTTP kit against `SledStore`, each test in its own temporary
//! directory.

use conformance::{StoreFactory, Unavailable};
use session_core::async_trait;
use store_sled::{FlushPolicy, SledStore};

struct Sled;

#[async_trait]
impl StoreFactory for Sled {
    type Store = SledStore;

    fn name(&self) -> &'static str {
        "sled"
    }

    async fn make(&self) -> Result<SledStore, Unavailable> {
        let dir = tempfile::Builder::new()
            .prefix("session-tower-sled-")
            .tempdir()
            .map_err(|e| Unavailable(format!("no temporary directory: {e}")))?;
        // sled deletes a `temporary` store's directory when it is dropped.
        let path = dir.keep();
        let store = SledStore::builder(&path)
            .cache_capacity(1024 * 1024)
            .flush_policy(FlushPolicy::EveryWrite)
            .temporary(true)
            .open();
        // An embedded database has no server to be unavailable.
        Ok(store.unwrap_or_else(|e| panic!("could not open a sled store in {}: {e}", path.display())))
    }
}

session_tower::http_suite!(Sled);
