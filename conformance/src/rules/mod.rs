//! One test per rule of the store contract (the documentation of
//! [`SessionStore`]), named after the rule, one file per part of the
//! contract; the manager's rules, the model-based test, the concurrent test
//! and the races beside them. Each test is listed in `suite!` (in the crate
//! root). Each takes a [`Ctx`](crate::Ctx) with a fresh store and a manual clock
//! anchored at the real current time; durations are an hour or more so that
//! no server-side TTL fires during a run.

use std::fmt::Debug;

use session_core::{Error, Record, SessionStore, StoreKey, Timestamp};

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

/// Asserts that `result`, of a write that would have put the record under
/// `key` in the hands of `owner`, is the refusal of a store that keeps
/// `owner`'s sessions in another shard than `key`: `WrongShard` naming both
/// shards, the record still `before` and `owner` listing nothing.
pub(crate) async fn assert_wrong_shard<S: SessionStore + ?Sized, T: Debug>(
    store: &S,
    key: &StoreKey,
    owner: &str,
    result: Result<T, Error>,
    before: Option<&Record>,
    now: Timestamp,
) {
    let owner_shard = store.shard_of_owner(owner);
    assert!(
        owner_shard.is_some() && owner_shard != store.shard_of_key(key),
        "the suite asks for a refusal only where the owner's shard is not the key's"
    );
    match result {
        Err(Error::WrongShard {
            key_shard,
            owner_shard: refused_for,
        }) => assert_eq!(
            (Some(key_shard), Some(refused_for)),
            (store.shard_of_key(key), owner_shard),
            "WrongShard names other shards than shard_of_key and shard_of_owner"
        ),
        other => panic!(
            "giving a key of shard {:?} to an owner of shard {owner_shard:?} must be refused with WrongShard, got {other:?}",
            store.shard_of_key(key)
        ),
    }
    match store.load(key, now).await {
        Ok(after) => assert_eq!(
            after.as_ref(),
            before,
            "a write refused with WrongShard changed the record"
        ),
        Err(e) => panic!("load failed: {e}"),
    }
    assert_eq!(
        owned(store, owner, now).await,
        Vec::<StoreKey>::new(),
        "a write refused with WrongShard reached the owner index"
    );
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
pub mod shards;
pub mod state_machine;
pub mod sweep;
