//! The owner index: listing and ending an owner's sessions, the owners the contract accepts, damaged records.

use std::sync::Arc;

use session_core::{MAX_OWNER_LEN, OwnedSession, SessionStore, StoreKey};

use super::{assert_wrong_shard, must_create, must_load, owned, sorted};
use crate::fixtures::update;
use crate::harness::{Ctx, HOUR, StoreFactory};

/// `list_by_owner` lists exactly the live sessions of that owner, with their
/// `created_at` and `expires_at`.
pub async fn list_by_owner_lists_only_the_live_sessions_of_that_owner<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let mut mine = Vec::new();
    for ttl in [HOUR, 2 * HOUR, 3 * HOUR] {
        let r = ctx.owned_record(ttl, "heidi");
        must_create(&*ctx.store, &r, now).await;
        mine.push(r);
    }
    let theirs = ctx.owned_record(3 * HOUR, "heidi2");
    must_create(&*ctx.store, &theirs, now).await;
    must_create(&*ctx.store, &ctx.record(3 * HOUR), now).await;

    let at = now + HOUR;
    let mut listed = match ctx.store.list_by_owner("heidi", at).await {
        Ok(l) => l,
        Err(e) => panic!("list_by_owner failed: {e}"),
    };
    listed.sort();
    let mut want: Vec<OwnedSession> = mine[1..]
        .iter()
        .map(|r| OwnedSession {
            key: r.key,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
        .collect();
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(owned(&*ctx.store, "nobody", at).await, Vec::<StoreKey>::new());
}

/// The owner index follows expiry, rotation, owner changes and deletion.
///
/// An owner change by `update` keeps the key, so on a store that shards it
/// works only towards an owner whose sessions are in the key's shard; one
/// towards an owner in another shard is refused with `WrongShard` and
/// changes neither the record nor the index (a change of owner across
/// shards goes through `rotate`).
pub async fn the_owner_index_follows_expiry_rotation_owner_change_and_deletion<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let store = &*ctx.store;
    let a = ctx.owned_record(HOUR, "ivan");
    let b = ctx.owned_record(4 * HOUR, "ivan");
    must_create(store, &a, now).await;
    must_create(store, &b, now).await;
    assert_eq!(owned(store, "ivan", now).await, sorted(vec![a.key, b.key]));

    // Rotation: the new key replaces the old one in the index.
    let b2 = ctx.key_for(Some("ivan"));
    assert!(store.rotate(&b.key, &b2, None, now).await.is_ok());
    assert_eq!(owned(store, "ivan", now).await, sorted(vec![a.key, b2]));

    // Owner change towards an owner of another shard: refused.
    if let Some(elsewhere) = ctx.owner_apart("ivan", "judy") {
        let before = must_load(store, &b2, now).await;
        let refused = store
            .update(&b2, update(1, b"moved", b.expires_at, Some(&elsewhere)), now)
            .await;
        assert_wrong_shard(store, &b2, &elsewhere, refused, Some(&before), now).await;
        assert_eq!(owned(store, "ivan", now).await, sorted(vec![a.key, b2]));
    }

    // Owner change: moves from one owner's list to the other's.
    let judy = ctx.owner_beside("ivan", "judy");
    assert_eq!(
        store
            .update(&b2, update(1, b"", b.expires_at, Some(&judy)), now)
            .await
            .ok(),
        Some(2)
    );
    assert_eq!(owned(store, "ivan", now).await, vec![a.key]);
    assert_eq!(owned(store, &judy, now).await, vec![b2]);

    // Clearing the owner removes it from every list.
    assert_eq!(
        store.update(&b2, update(2, b"", b.expires_at, None), now).await.ok(),
        Some(3)
    );
    assert_eq!(owned(store, &judy, now).await, Vec::<StoreKey>::new());

    // Expiry: a drops out.
    assert_eq!(owned(store, "ivan", now + HOUR).await, Vec::<StoreKey>::new());

    // Deletion.
    assert_eq!(
        store
            .update(&b2, update(3, b"", b.expires_at, Some("ivan")), now)
            .await
            .ok(),
        Some(4)
    );
    assert_eq!(owned(store, "ivan", now + HOUR).await, vec![b2]);
    assert_eq!(store.delete(&b2, now + HOUR).await.ok(), Some(true));
    assert_eq!(owned(store, "ivan", now).await, vec![a.key]);
}

/// `delete_by_owner` ends every session of the owner, counts only the live
/// ones, and leaves other owners alone.
pub async fn delete_by_owner_ends_every_session_of_the_owner_and_counts_the_live_ones<F: StoreFactory>(
    ctx: Arc<Ctx<F>>,
) {
    let now = ctx.now();
    let store = &*ctx.store;
    let mut keys = Vec::new();
    for ttl in [HOUR, 3 * HOUR, 3 * HOUR] {
        let r = ctx.owned_record(ttl, "ken");
        must_create(store, &r, now).await;
        keys.push(r.key);
    }
    let other = ctx.owned_record(3 * HOUR, "kenneth");
    must_create(store, &other, now).await;

    let at = now + 2 * HOUR;
    assert_eq!(store.delete_by_owner("ken", at).await.ok(), Some(2));
    for k in &keys {
        assert_eq!(
            store.load(k, now).await.ok(),
            Some(None),
            "a session of the owner survived"
        );
    }
    assert_eq!(owned(store, "kenneth", at).await, vec![other.key]);
    assert_eq!(store.delete_by_owner("ken", at).await.ok(), Some(0));
}

/// Every owner the contract accepts works and is kept apart from every
/// other: separators, glob, LIKE and hash-tag characters, quotes, case,
/// Unicode forms, and owners of the maximum length (which differ only in
/// their last byte, so no store may truncate them).
pub async fn every_owner_the_contract_accepts_is_kept_apart<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let longest = "o".repeat(MAX_OWNER_LEN);
    let longest_but_last = format!("{}p", "o".repeat(MAX_OWNER_LEN - 1));
    let longest_wide = "\u{1f980}".repeat(MAX_OWNER_LEN / 4);
    let owners = [
        "a",
        "A",
        "a:",
        "a*",
        "a?",
        "a%",
        "a_",
        "[a]",
        "{a}",
        "}a{",
        "a b",
        "a\u{a0}b",
        "a\u{200b}b",
        "\\a",
        "a\"b",
        "ä",
        "a\u{308}",
        "a\u{1f600}",
        "\u{202e}a",
        "a'); --",
        longest.as_str(),
        longest_but_last.as_str(),
        longest_wide.as_str(),
    ];
    let mut keys = Vec::new();
    for o in owners {
        let r = ctx.owned_record(HOUR, o);
        must_create(&*ctx.store, &r, now).await;
        keys.push(r.key);
    }
    for (o, k) in owners.iter().zip(&keys) {
        assert_eq!(owned(&*ctx.store, o, now).await, vec![*k], "owner {o:?}");
    }
    assert_eq!(ctx.store.delete_by_owner("a*", now).await.ok(), Some(1));
    assert_eq!(ctx.store.delete_by_owner("a%", now).await.ok(), Some(1));
    assert_eq!(ctx.store.delete_by_owner(&longest, now).await.ok(), Some(1));
    assert_eq!(owned(&*ctx.store, "a", now).await, vec![keys[0]]);
    assert_eq!(owned(&*ctx.store, &longest_but_last, now).await, vec![keys[21]]);
}

/// One damaged record of an owner never hides the others: `list_by_owner`
/// still lists every readable session (the damaged one may be listed or
/// left out), and `delete_by_owner` ends them all.
pub async fn a_damaged_record_never_hides_an_owners_other_sessions<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let mut keys = Vec::new();
    for _ in 0..3 {
        let r = ctx.owned_record(HOUR, "uma");
        must_create(&*ctx.store, &r, now).await;
        keys.push(r.key);
    }
    ctx.factory.corrupt(&ctx.store, &keys[1]).await;
    let listed = owned(&*ctx.store, "uma", now).await;
    for healthy in [keys[0], keys[2]] {
        assert!(listed.contains(&healthy), "a healthy session of the owner is missing");
    }
    assert!(listed.iter().all(|k| keys.contains(k)), "a foreign key was listed");
    let ended = ctx.store.delete_by_owner("uma", now).await;
    assert!(
        matches!(ended, Ok(2 | 3)),
        "delete_by_owner must end the two healthy sessions (the damaged one may count), got {ended:?}"
    );
    for k in &keys {
        assert!(
            matches!(ctx.store.load(k, now).await, Ok(None)),
            "a session of the owner survived delete_by_owner"
        );
    }
}
