//! The peer stores (feature `peers`), driven through their own store
//! traits, built as their READMEs show. One function per family makes them.

mod actix;
mod tower;

use std::sync::Arc;

use session_core::SessionStore;

use crate::Backend;
use crate::contenders::{Made, made};
use crate::namespace::Namespace;

pub use actix::ActixRedis;
pub use tower::{Preload, TowerPeer};

/// tower-sessions-memory-store and tower-sessions-moka-store.
pub fn memory() -> Vec<Made> {
    vec![made(Ok(tower::memory_store())), made(Ok(tower::moka_store()))]
}

/// tower-sessions-sled-store.
pub fn sled() -> Vec<Made> {
    vec![made(tower::sled_store())]
}

/// actix-session's RedisSessionStore and tower-sessions-redis-store.
pub async fn redis(url: &str) -> Vec<Made> {
    vec![
        made(ActixRedis::connect(url).await),
        made(tower::redis_store(url).await),
    ]
}

/// tower-sessions-sqlx-store (PostgreSQL).
pub async fn postgres(url: &str) -> Vec<Made> {
    vec![made(tower::sqlx_store(url).await)]
}

/// Our store of `backend` through compat-tower-sessions' `TowerStore`
/// (tower-sessions 0.14, as the peers), in its own namespace: what a
/// tower-sessions application gets when it swaps its store for ours. Its
/// preload creates (`save` writes only sessions that exist) with the
/// family's concurrency.
pub fn compat(
    backend: Backend,
    store: Arc<dyn SessionStore>,
    namespace: Option<Namespace>,
    preload_concurrency: usize,
) -> Made {
    made(Ok(tower::compat_store(backend, store, namespace, preload_concurrency)))
}
