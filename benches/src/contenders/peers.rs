//! The peer stores (feature `peers`), driven through their own store
//! traits, built as their READMEs show. One function per family makes them.

mod actix;
mod tower;

use crate::contenders::{Made, made};

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
