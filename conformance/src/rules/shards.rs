//! Shards: a store that splits its records into shards (see
//! [`SessionStore::shard_of_owner`]) keeps each owner's sessions in the
//! owner's shard and refuses a record placed elsewhere; a store that does not
//! says so through both hooks.

use std::sync::Arc;

use session_core::{Record, SessionStore, StoreKey};

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
