//! Shards: a store that splits its records into shards (see
//! [`SessionStore::shard_of_owner`]) keeps each owner's sessions in the
//! owner's shard and refuses a record placed elsewhere; a store that does not
//! says so through both hooks.

use std::sync::Arc;

use session_core::{Error, Record, SessionStore, StoreKey};

use super::{assert_wrong_shard, must_create, must_load, owned};
use crate::harness::{Ctx, HOUR, StoreFactory};

/// How many owners and keys the hooks are asked about.
const PROBES: usize = 64;

/// How many fresh keys are drawn to find one outside an owner's shard: a
/// store of `n` shards misses with probability `(1/n)^4096`.
const MISPLACED_DRAWS: usize = 4096;

/// A record whose key is in another shard than its owner's sessions is
/// refused by `create` with `WrongShard` naming both shards, and nothing is
/// written: the key stays free and the owner lists nothing. The same key
/// then takes an unowned record (which may go anywhere), and a key minted
/// for the owner's shard takes the owned one.
///
/// On a store that does not shard (`shard_of_owner` is `None`), the hooks
/// must say so together (`shard_of_key` is `None` for every key too), and
/// `create` takes an owned record under any key.
pub async fn create_of_a_record_outside_its_owners_shard_gives_wrong_shard<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let store = &*ctx.store;
    let owners: Vec<String> = (0..PROBES).map(|i| format!("owner-{i}")).collect();
    let keys: Vec<StoreKey> = (0..PROBES).map(|_| ctx.key()).collect();
    for o in &owners {
        assert_eq!(
            store.shard_of_owner(o),
            store.shard_of_owner(o),
            "shard_of_owner({o:?}) is not a function of the owner"
        );
    }
    let owner = "wendy";
    let Some(owner_shard) = store.shard_of_owner(owner) else {
        assert!(
            owners.iter().all(|o| store.shard_of_owner(o).is_none()),
            "shard_of_owner is None for one owner and Some for another"
        );
        assert!(
            keys.iter().all(|k| store.shard_of_key(k).is_none()),
            "shard_of_key is Some on a store whose shard_of_owner is None"
        );
        // Any key will do.
        let r = Record {
            owner: Some(owner.to_owned()),
            ..ctx.record(HOUR)
        };
        must_create(store, &r, now).await;
        assert_eq!(must_load(store, &r.key, now).await, r);
        assert_eq!(owned(store, owner, now).await, vec![r.key]);
        return;
    };
    assert!(
        owners.iter().all(|o| store.shard_of_owner(o).is_some()),
        "shard_of_owner is Some for one owner and None for another"
    );
    assert!(
        keys.iter().all(|k| store.shard_of_key(k).is_some()),
        "shard_of_key is None for a key of a store whose shard_of_owner is Some"
    );

    // A single-shard store has no key outside the owner's shard.
    if let Some(elsewhere) = (0..MISPLACED_DRAWS)
        .map(|_| ctx.key())
        .find(|k| store.shard_of_key(k) != Some(owner_shard))
    {
        let misplaced = Record {
            key: elsewhere,
            owner: Some(owner.to_owned()),
            ..ctx.record(HOUR)
        };
        let refused = store.create(misplaced.clone(), now).await;
        assert_wrong_shard(store, &elsewhere, owner, refused, None, now).await;
        assert_eq!(
            store.was_rotated(&elsewhere, now).await.ok(),
            Some(false),
            "a create refused with WrongShard left a rotation mark"
        );
        // An unowned record may go anywhere.
        let unowned = Record {
            owner: None,
            ..misplaced
        };
        must_create(store, &unowned, now).await;
        assert_eq!(must_load(store, &elsewhere, now).await, unowned);
    }

    let placed = ctx.owned_record(HOUR, owner);
    assert_eq!(store.shard_of_key(&placed.key), Some(owner_shard));
    must_create(store, &placed, now).await;
    assert_eq!(must_load(store, &placed.key, now).await, placed);
    assert_eq!(owned(store, owner, now).await, vec![placed.key]);
}

/// A `rotate` whose new key is outside the shard of the owner the session
/// ends with (the old owner, or `set_owner`) is refused with `WrongShard`
/// naming both shards, and the session is as it was: still live under the
/// old key, same version and data, no rotation mark, the new key free. With
/// a new key in the right shard the same rotate works.
///
/// On a store that does not shard, both rotates work.
pub async fn rotate_onto_a_key_outside_the_resulting_owners_shard_gives_wrong_shard<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let store = &*ctx.store;
    let (a, b) = ("xavier", ctx.owner_apart("xavier", "yusuf"));
    let old = ctx.owned_record(HOUR, a);
    must_create(store, &old, now).await;
    let Some(b) = b else {
        // Not sharded: a rotate may set any owner on any key.
        let moved = store.rotate(&old.key, &ctx.key(), Some("yusuf"), now).await;
        assert!(moved.is_ok(), "rotate on a store that does not shard failed: {moved:?}");
        return;
    };
    let refused_as = |result: Result<Record, Error>, key: &StoreKey, owner: &str| match result {
        Err(Error::WrongShard { key_shard, owner_shard }) => assert_eq!(
            (Some(key_shard), Some(owner_shard)),
            (store.shard_of_key(key), store.shard_of_owner(owner)),
            "WrongShard names other shards than shard_of_key and shard_of_owner"
        ),
        other => panic!("a rotate onto a key outside {owner:?}'s shard must give WrongShard, got {other:?}"),
    };
    // Keeping the owner `a`, onto a key of `b`'s shard.
    let in_b = ctx.key_for(Some(&b));
    refused_as(store.rotate(&old.key, &in_b, None, now).await, &in_b, a);
    // Switching to `b`, onto a key of `a`'s shard.
    let in_a = ctx.key_for(Some(a));
    refused_as(store.rotate(&old.key, &in_a, Some(&b), now).await, &in_a, &b);
    for new in [in_a, in_b] {
        assert_eq!(
            store.load(&new, now).await.ok(),
            Some(None),
            "a refused rotate wrote the new key"
        );
    }
    assert_eq!(
        must_load(store, &old.key, now).await,
        old,
        "a refused rotate changed the session"
    );
    assert_eq!(store.was_rotated(&old.key, now).await.ok(), Some(false));
    assert_eq!(owned(store, a, now).await, vec![old.key]);
    // In the right shards, both work.
    let kept = store
        .rotate(&old.key, &in_a, None, now)
        .await
        .expect("a rotate within the owner's shard");
    assert_eq!(kept.owner.as_deref(), Some(a));
    let switched = store
        .rotate(&in_a, &in_b, Some(&b), now)
        .await
        .expect("a rotate into the new owner's shard");
    assert_eq!(switched.owner.as_deref(), Some(b.as_str()));
    assert_eq!(owned(store, &b, now).await, vec![in_b]);
    assert!(owned(store, a, now).await.is_empty());
}
