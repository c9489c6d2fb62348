//! The HTTP kit against `MemoryStore`.

use conformance::{StoreFactory, Unavailable};
use session_core::async_trait;
use store_memory::MemoryStore;

struct Memory;

#[async_trait]
impl StoreFactory for Memory {
    type Store = MemoryStore;

    fn name(&self) -> &'static str {
        "memory"
    }

    async fn make(&self) -> Result<MemoryStore, Unavailable> {
        Ok(MemoryStore::builder().max_sessions(100_000).build())
    }
}

session_tower::http_suite!(Memory);
