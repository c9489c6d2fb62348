//! Records and versions: what create, update, overwrite and touch write, and the version each leaves.

use std::sync::Arc;
use std::time::Duration;

use session_core::{Bytes, Error, Overwrite, Record, SessionStore, StoreKey};

use super::{assert_wrong_shard, must_create, must_load, owned};
use crate::fixtures::update;
use crate::harness::{Ctx, HOUR, StoreFactory};

/// `create` stores version 1 whatever the record says; `load` returns every
/// field as written.
pub async fn create_then_load_returns_the_record_at_version_1<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let mut r = ctx.owned_record(HOUR, "alice");
    r.version = 7;
    r.data = Bytes::from((0..=255u8).collect::<Vec<u8>>());
    must_create(&*ctx.store, &r, now).await;
    let got = must_load(&*ctx.store, &r.key, now).await;
    assert_eq!(got, Record { version: 1, ..r });
}

/// A successful `update` returns and stores exactly the old version + 1 and
/// writes data, expiry and owner; `created_at` never changes.
pub async fn update_increments_the_version_by_exactly_one<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    // In the new owner's shard, where a sharding store lets it go.
    let r = Record {
        key: ctx.key_for(Some("bob")),
        ..ctx.record(HOUR)
    };
    must_create(&*ctx.store, &r, now).await;
    for expected in 1..=3u64 {
        let exp = now + 2 * HOUR + Duration::from_millis(expected);
        let v = ctx
            .store
            .update(&r.key, update(expected, b"next", exp, Some("bob")), now)
            .await;
        assert_eq!(v.ok(), Some(expected + 1));
        let got = must_load(&*ctx.store, &r.key, now).await;
        assert_eq!(
            (got.version, got.expires_at, got.created_at),
            (expected + 1, exp, r.created_at)
        );
        assert_eq!((&got.data[..], got.owner.as_deref()), (&b"next"[..], Some("bob")));
    }
}

/// An update with a stale version fails with `Conflict { current }` and
/// writes nothing.
pub async fn update_with_a_stale_version_gives_conflict_with_the_current_version<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    // In the shard of the stale writers' owner, so that only the version
    // stands in their way.
    let r = Record {
        key: ctx.key_for(Some("x")),
        ..ctx.record(HOUR)
    };
    must_create(&*ctx.store, &r, now).await;
    assert_eq!(
        ctx.store
            .update(&r.key, update(1, b"a", now + HOUR, None), now)
            .await
            .ok(),
        Some(2)
    );
    for stale in [0, 1, 3, u64::MAX] {
        match ctx
            .store
            .update(&r.key, update(stale, b"lost", now + 3 * HOUR, Some("x")), now)
            .await
        {
            Err(Error::Conflict { current: 2 }) => {}
            other => panic!("update expecting version {stale} of a version-2 record gave {other:?}"),
        }
    }
    let got = must_load(&*ctx.store, &r.key, now).await;
    assert_eq!((got.version, &got.data[..], got.owner), (2, &b"a"[..], None));
}

/// `touch` never changes the version.
pub async fn touch_does_not_change_the_version<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.record(HOUR);
    must_create(&*ctx.store, &r, now).await;
    assert_eq!(ctx.store.touch(&r.key, now + 5 * HOUR, now).await.ok(), Some(true));
    assert_eq!(must_load(&*ctx.store, &r.key, now).await.version, 1);
}

/// `overwrite` writes data, expiry and owner whatever the stored version,
/// and increments the version by exactly one; `created_at` never changes.
/// On a store that shards, an overwrite giving the record an owner whose
/// sessions are in another shard is refused with `WrongShard` and writes
/// nothing.
pub async fn overwrite_writes_whatever_the_version_and_increments_it<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = Record {
        key: ctx.key_for(Some("pat")),
        ..ctx.record(HOUR)
    };
    must_create(&*ctx.store, &r, now).await;
    assert_eq!(
        ctx.store
            .update(&r.key, update(1, b"v2", now + HOUR, None), now)
            .await
            .ok(),
        Some(2)
    );
    let exp = now + 3 * HOUR;
    let write = Overwrite {
        data: Bytes::from_static(b"blind"),
        expires_at: exp,
        owner: Some("pat".into()),
    };
    assert_eq!(ctx.store.overwrite(&r.key, write, now).await.ok(), Some(3));
    let got = must_load(&*ctx.store, &r.key, now).await;
    assert_eq!(
        (got.version, &got.data[..], got.created_at, got.expires_at),
        (3, &b"blind"[..], r.created_at, exp)
    );
    assert_eq!(owned(&*ctx.store, "pat", now).await, vec![r.key]);
    if let Some(elsewhere) = ctx.owner_apart("pat", "pat") {
        let before = must_load(&*ctx.store, &r.key, now).await;
        let misplaced = Overwrite {
            data: Bytes::from_static(b"misplaced"),
            expires_at: now + 5 * HOUR,
            owner: Some(elsewhere.clone()),
        };
        let refused = ctx.store.overwrite(&r.key, misplaced, now).await;
        assert_wrong_shard(&*ctx.store, &r.key, &elsewhere, refused, Some(&before), now).await;
        assert_eq!(owned(&*ctx.store, "pat", now).await, vec![r.key]);
    }
    // It may shorten the session, as update may.
    let shorter = Overwrite {
        data: Bytes::from_static(b"short"),
        expires_at: now + HOUR,
        owner: None,
    };
    assert_eq!(ctx.store.overwrite(&r.key, shorter, now).await.ok(), Some(4));
    assert_eq!(ctx.store.load(&r.key, now + HOUR).await.ok(), Some(None));
    assert_eq!(owned(&*ctx.store, "pat", now).await, Vec::<StoreKey>::new());
}

/// `overwrite` of a session that is not live (never created, expired,
/// deleted) gives `NotFound` and brings nothing back.
pub async fn overwrite_never_brings_a_session_back<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let write = |owner: Option<&str>| Overwrite {
        data: Bytes::from_static(b"late"),
        expires_at: now + 9 * HOUR,
        owner: owner.map(str::to_owned),
    };
    // Keys in the late writer's shard, so that only liveness stands in its way.
    let in_quinns_shard = || Record {
        key: ctx.key_for(Some("quinn")),
        ..ctx.record(HOUR)
    };
    let (expired, deleted) = (in_quinns_shard(), in_quinns_shard());
    must_create(&*ctx.store, &expired, now).await;
    must_create(&*ctx.store, &deleted, now).await;
    assert_eq!(ctx.store.delete(&deleted.key, now).await.ok(), Some(true));
    let later = now + HOUR;
    for (what, key) in [
        ("unknown", ctx.key_for(Some("quinn"))),
        ("expired", expired.key),
        ("deleted", deleted.key),
    ] {
        assert!(
            matches!(
                ctx.store.overwrite(&key, write(Some("quinn")), later).await,
                Err(Error::NotFound)
            ),
            "overwrite of an {what} session did not give NotFound"
        );
        assert_eq!(ctx.store.load(&key, later).await.ok(), Some(None), "{what} came back");
    }
    assert_eq!(owned(&*ctx.store, "quinn", later).await, Vec::<StoreKey>::new());
    // Nor was the expired record rewritten, for a caller whose clock is behind.
    assert_eq!(must_load(&*ctx.store, &expired.key, now).await, expired);
}
