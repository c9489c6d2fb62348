//! Rotation and deletion: what `rotate` moves and hands back, its rotation mark, and what `delete` reports.

use std::sync::Arc;
use std::time::Duration;

use session_core::{Bytes, Error, Overwrite, ROTATION_MARK_TTL, Record, SessionStore, StoreKey};

use super::{must_create, must_load, owned, sorted};
use crate::fixtures::update;
use crate::harness::{Ctx, HOUR, StoreFactory};

/// `rotate` gives the new key the data, owner, `created_at` and `expires_at`
/// of the old one with version 1, and frees the old key.
pub async fn rotate_moves_data_owner_created_at_and_expiry_and_frees_the_old_key<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.owned_record(HOUR, "grace");
    must_create(&*ctx.store, &r, now).await;
    let exp = now + 2 * HOUR;
    assert_eq!(
        ctx.store
            .update(&r.key, update(1, b"payload", exp, Some("grace")), now)
            .await
            .ok(),
        Some(2)
    );
    let later = now + HOUR;
    let new_key = ctx.key_for(Some("grace"));
    let moved = match ctx.store.rotate(&r.key, &new_key, None, later).await {
        Ok(moved) => moved,
        Err(e) => panic!("rotate of a live session failed: {e}"),
    };

    let got = must_load(&*ctx.store, &new_key, later).await;
    assert_eq!(moved, got, "rotate hands back exactly the record it stored");
    let want = Record {
        key: new_key,
        version: 1,
        data: Bytes::from_static(b"payload"),
        created_at: r.created_at,
        expires_at: exp,
        owner: Some("grace".into()),
    };
    assert_eq!(got, want);
    assert_eq!(ctx.store.load(&r.key, later).await.ok(), Some(None));
    assert_eq!(owned(&*ctx.store, "grace", later).await, vec![new_key]);
    // The old key is free: a new session may take it.
    let mut again = ctx.record(HOUR);
    again.key = r.key;
    must_create(&*ctx.store, &again, later).await;
}

/// `rotate` with an owner gives the new session that owner in the same step
/// (a login): it leaves the old owner's list and joins the new one's.
pub async fn rotate_can_set_the_owner_in_the_same_step<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let anonymous = ctx.record(2 * HOUR);
    let owned_by_rita = ctx.owned_record(2 * HOUR, "rita");
    must_create(&*ctx.store, &anonymous, now).await;
    must_create(&*ctx.store, &owned_by_rita, now).await;

    // New keys go to the new owner's shard, as the manager mints them.
    let login = ctx.key_for(Some("sam"));
    match ctx.store.rotate(&anonymous.key, &login, Some("sam"), now).await {
        Ok(r) => assert_eq!(
            r,
            Record {
                key: login,
                owner: Some("sam".into()),
                ..anonymous.clone()
            }
        ),
        Err(e) => panic!("rotate setting an owner failed: {e}"),
    }
    assert_eq!(owned(&*ctx.store, "sam", now).await, vec![login]);

    // A user switch: from rita's list to sam's.
    let switched = ctx.key_for(Some("sam"));
    let r = ctx.store.rotate(&owned_by_rita.key, &switched, Some("sam"), now).await;
    assert_eq!(r.ok().and_then(|r| r.owner).as_deref(), Some("sam"));
    assert_eq!(owned(&*ctx.store, "rita", now).await, Vec::<StoreKey>::new());
    assert_eq!(owned(&*ctx.store, "sam", now).await, sorted(vec![login, switched]));
    assert_eq!(
        must_load(&*ctx.store, &switched, now).await.owner.as_deref(),
        Some("sam")
    );
}

/// `rotate` leaves a rotation mark under the old key that `was_rotated`
/// reports for `ROTATION_MARK_TTL`, or until the old session would have
/// expired if that is sooner.
pub async fn rotate_leaves_a_rotation_mark_for_a_minute_or_until_the_old_expiry<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let ms = Duration::from_millis(1);
    let r = ctx.record(2 * HOUR);
    must_create(&*ctx.store, &r, now).await;
    let new_key = ctx.key();
    assert!(ctx.store.rotate(&r.key, &new_key, None, now).await.is_ok());
    assert_eq!(ctx.store.was_rotated(&r.key, now).await.ok(), Some(true));
    assert_eq!(
        ctx.store.was_rotated(&r.key, now + ROTATION_MARK_TTL - ms).await.ok(),
        Some(true)
    );
    assert_eq!(
        ctx.store.was_rotated(&r.key, now + ROTATION_MARK_TTL).await.ok(),
        Some(false),
        "the mark ends after ROTATION_MARK_TTL"
    );
    assert_eq!(ctx.store.was_rotated(&new_key, now).await.ok(), Some(false));

    // A session 30 s from its end: the mark ends with it.
    let short = ctx.record(HOUR);
    must_create(&*ctx.store, &short, now).await;
    let at = short.expires_at - Duration::from_secs(30);
    assert!(ctx.store.rotate(&short.key, &ctx.key(), None, at).await.is_ok());
    assert_eq!(
        ctx.store.was_rotated(&short.key, short.expires_at - ms).await.ok(),
        Some(true)
    );
    assert_eq!(
        ctx.store.was_rotated(&short.key, short.expires_at).await.ok(),
        Some(false)
    );
}

/// A rotation mark is not a session: every operation but `was_rotated`
/// finds the old key absent; `delete` removes the mark, and a `create` or a
/// `rotate` onto the key replaces it.
pub async fn a_rotation_mark_is_not_a_session<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let store = &*ctx.store;
    let r = ctx.owned_record(2 * HOUR, "tess");
    must_create(store, &r, now).await;
    let new_key = ctx.key_for(Some("tess"));
    assert!(store.rotate(&r.key, &new_key, None, now).await.is_ok());
    let old = r.key;
    assert_eq!(store.load(&old, now).await.ok(), Some(None));
    assert!(matches!(
        store.update(&old, update(1, b"x", now + HOUR, None), now).await,
        Err(Error::NotFound)
    ));
    let write = Overwrite {
        data: Bytes::from_static(b"x"),
        expires_at: now + HOUR,
        owner: None,
    };
    assert!(matches!(store.overwrite(&old, write, now).await, Err(Error::NotFound)));
    assert_eq!(store.touch(&old, now + 5 * HOUR, now).await.ok(), Some(false));
    assert!(matches!(
        store.rotate(&old, &ctx.key(), None, now).await,
        Err(Error::NotFound)
    ));
    assert_eq!(owned(store, "tess", now).await, vec![new_key]);
    assert_eq!(store.was_rotated(&old, now).await.ok(), Some(true));

    // delete removes the mark and reports no live session.
    assert_eq!(store.delete(&old, now).await.ok(), Some(false));
    assert_eq!(store.was_rotated(&old, now).await.ok(), Some(false));

    // create over a mark replaces it.
    let second = ctx.record(2 * HOUR);
    must_create(store, &second, now).await;
    assert!(store.rotate(&second.key, &ctx.key(), None, now).await.is_ok());
    let mut again = ctx.record(HOUR);
    again.key = second.key;
    must_create(store, &again, now).await;
    assert_eq!(store.was_rotated(&second.key, now).await.ok(), Some(false));
    assert_eq!(must_load(store, &second.key, now).await, again);

    // rotate onto a mark replaces it.
    let third = ctx.record(2 * HOUR);
    let source = ctx.record(2 * HOUR);
    must_create(store, &third, now).await;
    must_create(store, &source, now).await;
    assert!(store.rotate(&third.key, &ctx.key(), None, now).await.is_ok());
    assert!(store.rotate(&source.key, &third.key, None, now).await.is_ok());
    assert_eq!(store.was_rotated(&third.key, now).await.ok(), Some(false));
    assert_eq!(store.was_rotated(&source.key, now).await.ok(), Some(true));
    assert_eq!(must_load(store, &third.key, now).await.data, source.data);
}

/// `was_rotated` is false for every key that was not rotated away: unknown,
/// live, deleted and expired ones.
pub async fn was_rotated_is_false_for_keys_that_were_not_rotated<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let (live, deleted, expired) = (ctx.record(2 * HOUR), ctx.record(2 * HOUR), ctx.record(HOUR));
    for r in [&live, &deleted, &expired] {
        must_create(&*ctx.store, r, now).await;
    }
    assert_eq!(ctx.store.delete(&deleted.key, now).await.ok(), Some(true));
    let at = now + HOUR;
    for (what, key) in [
        ("unknown", ctx.key()),
        ("live", live.key),
        ("deleted", deleted.key),
        ("expired", expired.key),
    ] {
        assert_eq!(
            ctx.store.was_rotated(&key, at).await.ok(),
            Some(false),
            "was_rotated of a {what} key"
        );
    }
}

/// `rotate` of a missing or expired session gives `NotFound` and changes
/// nothing.
pub async fn rotate_of_a_session_that_is_not_live_gives_not_found<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let (missing, target) = (ctx.key(), ctx.key());
    assert!(matches!(
        ctx.store.rotate(&missing, &target, None, now).await,
        Err(Error::NotFound)
    ));
    let r = ctx.record(HOUR);
    must_create(&*ctx.store, &r, now).await;
    let later = now + HOUR;
    assert!(matches!(
        ctx.store.rotate(&r.key, &target, None, later).await,
        Err(Error::NotFound)
    ));
    assert_eq!(ctx.store.load(&target, now).await.ok(), Some(None));
    assert_eq!(must_load(&*ctx.store, &r.key, now).await, r);
}

/// `rotate` onto a live key (itself included) gives `AlreadyExists` and
/// changes neither record.
pub async fn rotate_onto_a_live_key_gives_already_exists_and_changes_nothing<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let (a, b) = (ctx.record(HOUR), ctx.record(2 * HOUR));
    must_create(&*ctx.store, &a, now).await;
    must_create(&*ctx.store, &b, now).await;
    assert!(matches!(
        ctx.store.rotate(&a.key, &b.key, None, now).await,
        Err(Error::AlreadyExists)
    ));
    assert!(matches!(
        ctx.store.rotate(&a.key, &a.key, None, now).await,
        Err(Error::AlreadyExists)
    ));
    assert_eq!(must_load(&*ctx.store, &a.key, now).await, a);
    assert_eq!(must_load(&*ctx.store, &b.key, now).await, b);
}

/// `rotate` onto a key whose record has expired replaces that record.
pub async fn rotate_onto_an_expired_key_replaces_it<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let (old_target, source) = (ctx.record(HOUR), ctx.record(3 * HOUR));
    must_create(&*ctx.store, &old_target, now).await;
    must_create(&*ctx.store, &source, now).await;
    let later = now + 2 * HOUR;
    let moved = ctx.store.rotate(&source.key, &old_target.key, None, later).await;
    let got = must_load(&*ctx.store, &old_target.key, later).await;
    assert_eq!(moved.ok().as_ref(), Some(&got));
    assert_eq!(
        got,
        Record {
            key: old_target.key,
            ..source
        }
    );
}

/// `delete` returns true only when it removed a live record; an expired one is
/// removed but reported as false.
pub async fn delete_returns_true_only_for_a_live_record<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let (live, expired) = (ctx.record(2 * HOUR), ctx.record(HOUR));
    must_create(&*ctx.store, &live, now).await;
    must_create(&*ctx.store, &expired, now).await;
    let later = now + HOUR;
    assert_eq!(ctx.store.delete(&ctx.key(), later).await.ok(), Some(false));
    assert_eq!(ctx.store.delete(&expired.key, later).await.ok(), Some(false));
    assert_eq!(ctx.store.delete(&live.key, later).await.ok(), Some(true));
    // The expired record is physically gone: a caller whose clock is behind
    // does not see it either.
    assert_eq!(ctx.store.load(&expired.key, now).await.ok(), Some(None));
}
