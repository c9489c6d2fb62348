//! Time and liveness: a record is live iff `now < expires_at` by the caller's clock, and an expired or deleted one is absent for every operation.

use std::sync::Arc;
use std::time::Duration;

use session_core::{Bytes, Error, Record, SessionStore, StoreKey};

use super::{must_create, must_load, owned};
use crate::fixtures::update;
use crate::harness::{Ctx, HOUR, StoreFactory};

/// A record is live iff `now < expires_at`: at `now == expires_at` it is
/// expired.
pub async fn a_session_is_expired_exactly_at_expires_at<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.record(HOUR);
    must_create(&*ctx.store, &r, now).await;
    let just_before = r.expires_at - Duration::from_millis(1);
    assert!(ctx.store.load(&r.key, just_before).await.ok().flatten().is_some());
    assert_eq!(ctx.store.load(&r.key, r.expires_at).await.ok(), Some(None));
    assert_eq!(
        ctx.store.touch(&r.key, r.expires_at + HOUR, r.expires_at).await.ok(),
        Some(false)
    );
    assert!(matches!(
        ctx.store
            .update(&r.key, update(1, b"x", r.expires_at + HOUR, None), r.expires_at)
            .await,
        Err(Error::NotFound)
    ));
}

/// An expired record is indistinguishable from an absent one for every
/// operation.
pub async fn an_expired_session_is_absent_for_every_operation<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.owned_record(HOUR, "carol");
    must_create(&*ctx.store, &r, now).await;
    let later = now + 2 * HOUR;
    let store = &*ctx.store;
    assert_eq!(store.load(&r.key, later).await.ok(), Some(None));
    assert!(matches!(
        store.update(&r.key, update(1, b"x", later + HOUR, None), later).await,
        Err(Error::NotFound)
    ));
    assert_eq!(store.touch(&r.key, later + HOUR, later).await.ok(), Some(false));
    assert!(matches!(
        store.rotate(&r.key, &ctx.key_for(Some("carol")), None, later).await,
        Err(Error::NotFound)
    ));
    assert_eq!(owned(store, "carol", later).await, Vec::<StoreKey>::new());
    assert_eq!(store.delete_by_owner("carol", later).await.ok(), Some(0));
    assert_eq!(store.delete(&r.key, later).await.ok(), Some(false));
}

/// `create` over an expired record replaces it, with version 1 and the new
/// fields.
pub async fn create_over_an_expired_record_replaces_it<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let old = ctx.owned_record(HOUR, "dave");
    // The key's next owner keeps its sessions where dave does.
    let erin = ctx.owner_beside("dave", "erin");
    must_create(&*ctx.store, &old, now).await;
    assert_eq!(
        ctx.store
            .update(&old.key, update(1, b"old", now + HOUR, Some("dave")), now)
            .await
            .ok(),
        Some(2)
    );

    let later = now + 2 * HOUR;
    let new = Record {
        key: old.key,
        version: 1,
        data: Bytes::from_static(b"new"),
        created_at: later,
        expires_at: later + HOUR,
        owner: Some(erin.clone()),
    };
    must_create(&*ctx.store, &new, later).await;
    assert_eq!(must_load(&*ctx.store, &old.key, later).await, new);
    assert_eq!(owned(&*ctx.store, "dave", later).await, Vec::<StoreKey>::new());
    assert_eq!(owned(&*ctx.store, &erin, later).await, vec![old.key]);
}

/// `create` over a live record fails with `AlreadyExists` and leaves it as it
/// was.
pub async fn create_over_a_live_record_fails_and_changes_nothing<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    // In the intruder's shard, so that only the live record stands in its way.
    let r = Record {
        key: ctx.key_for(Some("mallory")),
        ..ctx.record(HOUR)
    };
    must_create(&*ctx.store, &r, now).await;
    let mut other = r.clone();
    other.data = Bytes::from_static(b"intruder");
    other.expires_at = now + 9 * HOUR;
    other.owner = Some("mallory".into());
    let at = r.expires_at - Duration::from_millis(1);
    assert!(matches!(ctx.store.create(other, at).await, Err(Error::AlreadyExists)));
    assert_eq!(must_load(&*ctx.store, &r.key, now).await, r);
    assert_eq!(owned(&*ctx.store, "mallory", now).await, Vec::<StoreKey>::new());
}

/// `update` of an expired session gives `NotFound` and writes nothing: seen
/// by moving the clock back to when it was live.
pub async fn update_of_an_expired_session_gives_not_found_and_writes_nothing<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    // In the late writer's shard, so that only expiry stands in its way.
    let r = Record {
        key: ctx.key_for(Some("z")),
        ..ctx.record(HOUR)
    };
    must_create(&*ctx.store, &r, now).await;
    let later = now + 2 * HOUR;
    assert!(matches!(
        ctx.store
            .update(&r.key, update(1, b"late", later + 5 * HOUR, Some("z")), later)
            .await,
        Err(Error::NotFound)
    ));
    // From the point of view of a caller whose clock is behind, the record is
    // untouched: same version, data, expiry, owner.
    assert_eq!(must_load(&*ctx.store, &r.key, now).await, r);
    assert_eq!(ctx.store.load(&r.key, later).await.ok(), Some(None));
}

/// `update` of a deleted session gives `NotFound` and brings nothing back.
pub async fn update_of_a_deleted_session_gives_not_found<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.record(HOUR);
    must_create(&*ctx.store, &r, now).await;
    assert_eq!(ctx.store.delete(&r.key, now).await.ok(), Some(true));
    assert!(matches!(
        ctx.store.update(&r.key, update(1, b"x", now + HOUR, None), now).await,
        Err(Error::NotFound)
    ));
    assert_eq!(ctx.store.touch(&r.key, now + HOUR, now).await.ok(), Some(false));
    assert_eq!(ctx.store.load(&r.key, now).await.ok(), Some(None));
}

/// `touch` extends a live session to the given expiry.
pub async fn touch_extends_a_live_session<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.record(HOUR);
    must_create(&*ctx.store, &r, now).await;
    assert_eq!(ctx.store.touch(&r.key, now + 3 * HOUR, now).await.ok(), Some(true));
    let at = now + 2 * HOUR;
    assert_eq!(must_load(&*ctx.store, &r.key, at).await.expires_at, now + 3 * HOUR);
}

/// `touch` with an earlier expiry than the stored one changes nothing.
pub async fn touch_never_shortens_a_session<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.record(3 * HOUR);
    must_create(&*ctx.store, &r, now).await;
    assert_eq!(ctx.store.touch(&r.key, now + HOUR, now).await.ok(), Some(true));
    assert_eq!(ctx.store.touch(&r.key, now, now).await.ok(), Some(true));
    let at = now + 2 * HOUR;
    assert_eq!(must_load(&*ctx.store, &r.key, at).await.expires_at, r.expires_at);
}

/// `touch` of an expired session returns false and does not revive it.
pub async fn touch_never_revives_an_expired_session<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.record(HOUR);
    must_create(&*ctx.store, &r, now).await;
    let later = now + 2 * HOUR;
    assert_eq!(ctx.store.touch(&r.key, later + 5 * HOUR, later).await.ok(), Some(false));
    assert_eq!(ctx.store.load(&r.key, later).await.ok(), Some(None));
    assert_eq!(ctx.store.load(&r.key, later + HOUR).await.ok(), Some(None));
    // Nor did it write the new expiry for a caller whose clock is behind.
    assert_eq!(must_load(&*ctx.store, &r.key, now).await.expires_at, r.expires_at);
}

/// A deleted session stays deleted for every operation.
pub async fn a_deleted_session_stays_deleted<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.owned_record(HOUR, "frank");
    must_create(&*ctx.store, &r, now).await;
    assert_eq!(ctx.store.delete(&r.key, now).await.ok(), Some(true));
    assert_eq!(ctx.store.delete(&r.key, now).await.ok(), Some(false));
    assert_eq!(ctx.store.touch(&r.key, now + 9 * HOUR, now).await.ok(), Some(false));
    assert!(matches!(
        ctx.store.rotate(&r.key, &ctx.key_for(Some("frank")), None, now).await,
        Err(Error::NotFound)
    ));
    assert_eq!(ctx.store.load(&r.key, now).await.ok(), Some(None));
    assert_eq!(owned(&*ctx.store, "frank", now).await, Vec::<StoreKey>::new());
}
