//! The peer stores (feature `peers`), driven through their own store
//! traits, built as their READMEs show. One function per family adds them
//! to the lineup.

mod actix;
mod tower;

use std::sync::Arc;

use crate::lineup::Lineup;
use crate::{BenchError, Contender};

pub use actix::ActixRedis;
pub use tower::{Preload, TowerPeer};

fn boxed<C: Contender>(c: Result<C, BenchError>) -> Result<Arc<dyn Contender>, BenchError> {
    c.map(|c| Arc::new(c) as Arc<dyn Contender>)
}

/// tower-sessions-memory-store and tower-sessions-moka-store.
pub fn memory(lineup: &mut Lineup) {
    lineup.add(boxed(Ok(tower::memory_store())));
    lineup.add(boxed(Ok(tower::moka_store())));
}

/// tower-sessions-sled-store.
pub fn sled(lineup: &mut Lineup) {
    lineup.add(boxed(tower::sled_store()));
}

/// actix-session's RedisSessionStore and tower-sessions-redis-store.
pub async fn redis(lineup: &mut Lineup, url: &str) {
    lineup.add(boxed(ActixRedis::connect(url).await));
    lineup.add(boxed(tower::redis_store(url).await));
}

/// tower-sessions-sqlx-store (PostgreSQL).
pub async fn postgres(lineup: &mut Lineup, url: &str) {
    lineup.add(boxed(tower::sqlx_store(url).await));
}
