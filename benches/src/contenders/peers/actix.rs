//! actix-session 0.11's `RedisSessionStore` (redis-rs 0.32,
//! `ConnectionManager`), driven through its `SessionStore` trait.
//!
//! Its keys are random strings it makes itself on `save`; here they are the
//! hex of our store keys, written by the preload as actix would write them
//! (JSON of the state map, `EX` ttl), under a prefix of our own through its
//! `cache_keygen` hook. `touch` is its `update_ttl`; `rotate` is what its
//! middleware does on renewal: `delete` then `save`.

use std::collections::HashMap;

use actix_session::storage::{RedisSessionStore, SessionKey, SessionStore};
use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use session_core::StoreKey;

use crate::keys::SESSION_LIFETIME;
use crate::namespace::{Namespace, unique_name};
use crate::servers::redis_connection;
use crate::{Backend, BenchError, Contender, ContenderId, Role};

/// actix-session's Redis store.
pub struct ActixRedis {
    id: ContenderId,
    store: RedisSessionStore,
    /// A redis-rs 1.x connection for the preload pipeline and the cleanup.
    conn: MultiplexedConnection,
    prefix: String,
    ttl: time::Duration,
}

fn state(payload: &Bytes) -> HashMap<String, String> {
    HashMap::from([("payload".to_owned(), String::from_utf8_lossy(payload).into_owned())])
}

fn session_key(key: &StoreKey) -> Result<SessionKey, BenchError> {
    SessionKey::try_from(key.to_hex()).map_err(|e| BenchError::new("session key", e))
}

impl ActixRedis {
    /// Connects, with a fresh key prefix.
    pub async fn connect(url: &str) -> Result<Self, BenchError> {
        let prefix = format!("{}:", unique_name("peer_actix"));
        let keygen_prefix = prefix.clone();
        let store = RedisSessionStore::builder(url)
            .cache_keygen(move |key| format!("{keygen_prefix}{key}"))
            .build()
            .await
            .map_err(|e| BenchError::new("actix RedisSessionStore", e))?;
        Ok(ActixRedis {
            id: ContenderId {
                backend: Backend::Redis,
                role: Role::Peer("actix-session".to_owned()),
            },
            store,
            conn: redis_connection(url).await?,
            prefix,
            ttl: time::Duration::seconds(SESSION_LIFETIME.as_secs() as i64),
        })
    }
}

#[async_trait]
impl Contender for ActixRedis {
    fn id(&self) -> &ContenderId {
        &self.id
    }

    async fn preload(&self, keys: &[StoreKey], payload: &Bytes) -> Result<(), BenchError> {
        let body = serde_json::to_string(&state(payload)).map_err(|e| BenchError::new("json", e))?;
        let mut conn = self.conn.clone();
        for chunk in keys.chunks(1_000) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("SET")
                    .arg(format!("{}{}", self.prefix, key.to_hex()))
                    .arg(&body)
                    .arg("EX")
                    .arg(self.ttl.whole_seconds())
                    .ignore();
            }
            let _: () = pipe
                .query_async(&mut conn)
                .await
                .map_err(|e| BenchError::new("preload", e))?;
        }
        Ok(())
    }

    async fn create(&self, _key: &StoreKey, payload: &Bytes) -> Result<(), BenchError> {
        self.store
            .save(state(payload), &self.ttl)
            .await
            .map_err(|e| BenchError::new("create (save)", e))?;
        Ok(())
    }

    async fn load(&self, key: &StoreKey) -> Result<bool, BenchError> {
        let found = self
            .store
            .load(&session_key(key)?)
            .await
            .map_err(|e| BenchError::new("load", e))?;
        Ok(found.is_some())
    }

    async fn update(&self, key: &StoreKey, expected_version: u64, payload: &Bytes) -> Result<u64, BenchError> {
        self.store
            .update(session_key(key)?, state(payload), &self.ttl)
            .await
            .map_err(|e| BenchError::new("update", e))?;
        Ok(expected_version + 1)
    }

    async fn touch(&self, key: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        self.store
            .update_ttl(&session_key(key)?, &self.ttl)
            .await
            .map_err(|e| BenchError::new("touch (update_ttl)", e))
    }

    async fn rotate(&self, old: &StoreKey, _new: &StoreKey, payload: &Bytes) -> Result<(), BenchError> {
        self.store
            .delete(&session_key(old)?)
            .await
            .map_err(|e| BenchError::new("rotate (delete)", e))?;
        self.store
            .save(state(payload), &self.ttl)
            .await
            .map_err(|e| BenchError::new("rotate (save)", e))?;
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BenchError> {
        self.store
            .delete(&session_key(key)?)
            .await
            .map_err(|e| BenchError::new("delete", e))
    }

    async fn cleanup(&self) -> Result<(), BenchError> {
        Namespace::RedisPrefix {
            conn: self.conn.clone(),
            prefix: self.prefix.clone(),
        }
        .remove()
        .await
    }
}
