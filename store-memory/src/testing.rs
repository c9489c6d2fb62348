//! The test factory of this backend (feature `test-hooks`): what the
//! conformance suite, the HTTP kit and any other suite over
//! [`conformance::StoreFactory`] run against. Not for applications.

use conformance::{StoreFactory, Unavailable};
use session_core::async_trait;

use crate::MemoryStore;

/// Fresh [`MemoryStore`]s, bounded far above what any rule creates, so no
/// rule sees an eviction it did not ask for.
///
/// ```
/// use conformance::StoreFactory;
/// use store_memory::testing::MemoryFactory;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = MemoryFactory.make().await.expect("a memory store is always available");
/// assert!(store.is_empty());
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryFactory;

#[async_trait]
impl StoreFactory for MemoryFactory {
    type Store = MemoryStore;

    fn name(&self) -> &'static str {
        "memory"
    }

    async fn make(&self) -> Result<MemoryStore, Unavailable> {
        Ok(MemoryStore::builder().max_sessions(100_000).build())
    }
}
