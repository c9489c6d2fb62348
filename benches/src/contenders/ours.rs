//! Our backends, through `Arc<dyn SessionStore>`: what an application calls.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use session_core::{Error, SessionStore, StoreKey, Update};

use crate::clock::BenchClock;
use crate::fan_out::fan_out;
use crate::keys::record;
use crate::namespace::Namespace;
use crate::{Backend, BenchError, Contender, ContenderId, Role};

/// Any [`SessionStore`] as a contender.
pub struct Ours {
    id: ContenderId,
    store: Arc<dyn SessionStore>,
    clock: BenchClock,
    /// How many creates the preload keeps in flight (the family's choice).
    preload_concurrency: usize,
    /// What to remove afterwards (a Redis prefix, a PostgreSQL table).
    namespace: Option<Namespace>,
}

impl Ours {
    /// Wraps `store` as the "ours" contender of `backend`; its preload keeps
    /// `preload_concurrency` creates in flight, and its cleanup removes
    /// `namespace`.
    pub fn new(
        backend: Backend,
        store: Arc<dyn SessionStore>,
        preload_concurrency: usize,
        namespace: Option<Namespace>,
    ) -> Self {
        Ours {
            id: ContenderId {
                backend,
                role: Role::Ours,
            },
            store,
            clock: BenchClock::new(),
            preload_concurrency,
            namespace,
        }
    }
}

fn failed(op: &str, e: Error) -> BenchError {
    BenchError::new(op, e)
}

#[async_trait]
impl Contender for Ours {
    fn id(&self) -> &ContenderId {
        &self.id
    }

    fn shard_of_key(&self, key: &StoreKey) -> Option<u32> {
        self.store.shard_of_key(key)
    }

    async fn preload(&self, keys: &[StoreKey], payload: &Bytes) -> Result<(), BenchError> {
        let (store, payload) = (Arc::clone(&self.store), payload.clone());
        let (now, expires_at) = (self.clock.now(), self.clock.expiry());
        fan_out(self.preload_concurrency, keys.into(), move |key| {
            let (store, record) = (Arc::clone(&store), record(key, payload.clone(), now, expires_at));
            async move { store.create(record, now).await.map_err(|e| failed("preload create", e)) }
        })
        .await
    }

    async fn create(&self, key: &StoreKey, payload: &Bytes) -> Result<(), BenchError> {
        self.store
            .create(
                record(*key, payload.clone(), self.clock.now(), self.clock.expiry()),
                self.clock.now(),
            )
            .await
            .map_err(|e| failed("create", e))
    }

    async fn load(&self, key: &StoreKey) -> Result<bool, BenchError> {
        let found = self
            .store
            .load(key, self.clock.now())
            .await
            .map_err(|e| failed("load", e))?;
        Ok(found.is_some())
    }

    async fn update(&self, key: &StoreKey, expected_version: u64, payload: &Bytes) -> Result<u64, BenchError> {
        let update = Update {
            expected_version,
            data: payload.clone(),
            expires_at: self.clock.expiry(),
            owner: None,
        };
        match self.store.update(key, update, self.clock.now()).await {
            Ok(version) => Ok(version),
            // Another task of the workload won the race: a real outcome of a
            // compare-and-swap, and a full round trip.
            Err(Error::Conflict { current }) => Ok(current),
            Err(e) => Err(failed("update", e)),
        }
    }

    async fn touch(&self, key: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        match self.store.touch(key, self.clock.renewal(), self.clock.now()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(BenchError("touch: the session was not found".into())),
            Err(e) => Err(failed("touch", e)),
        }
    }

    async fn rotate(&self, old: &StoreKey, new: &StoreKey, _payload: &Bytes) -> Result<(), BenchError> {
        self.store
            .rotate(old, new, None, self.clock.now())
            .await
            .map(drop)
            .map_err(|e| failed("rotate", e))
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BenchError> {
        self.store
            .delete(key, self.clock.now())
            .await
            .map_err(|e| failed("delete", e))?;
        Ok(())
    }

    async fn cleanup(&self) -> Result<(), BenchError> {
        match &self.namespace {
            Some(namespace) => namespace.remove().await,
            None => Ok(()),
        }
    }
}
