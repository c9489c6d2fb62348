//! One test per rule of the store contract (the documentation of
//! [`SessionStore`]), named after the rule, one file per part of the
//! contract; the manager's rules, the model-based test, the concurrent test
//! and the races beside them. Each test is listed in `suite!` (in the crate
//! root). Each takes a [`Ctx`](crate::Ctx) with a fresh store and a manual clock
//! anchored at the real current time; durations are an hour or more so that
//! no server-side TTL fires during a run.

use session_core::{Record, SessionStore, StoreKey, Timestamp};

pub(crate) async fn must_load<S: SessionStore + ?Sized>(store: &S, key: &StoreKey, now: Timestamp) -> Record {
    match store.load(key, now).await {
        Ok(Some(r)) => r,
        other => panic!("expected a live record, got {other:?}"),
    }
}

pub(crate) async fn must_create<S: SessionStore + ?Sized>(store: &S, record: &Record, now: Timestamp) {
    if let Err(e) = store.create(record.clone(), now).await {
        panic!("create of a fresh key failed: {e}");
    }
}

pub(crate) async fn owned<S: SessionStore + ?Sized>(store: &S, owner: &str, now: Timestamp) -> Vec<StoreKey> {
    let mut keys: Vec<StoreKey> = match store.list_by_owner(owner, now).await {
        Ok(list) => list.into_iter().map(|s| s.key).collect(),
        Err(e) => panic!("list_by_owner failed: {e}"),
    };
    keys.sort();
    keys
}

pub(crate) fn sorted(mut keys: Vec<StoreKey>) -> Vec<StoreKey> {
    keys.sort();
    keys
}

pub mod concurrent;
pub mod liveness;
pub mod manager;
pub mod owners;
pub mod payloads;
pub mod races;
pub mod records;
pub mod rotation;
pub mod state_machine;
pub mod sweep;
