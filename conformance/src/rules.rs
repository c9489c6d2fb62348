//! One test per rule of the store contract (the documentation of
//! [`SessionStore`]), named after the rule. Each takes a [`Ctx`] with a fresh store and a manual clock
//! anchored at the real current time; durations are an hour or more so that
//! no server-side TTL fires during a run.

use std::sync::Arc;
use std::time::Duration;

use session_core::{
    Bytes, Error, MAX_OWNER_LEN, Overwrite, OwnedSession, ROTATION_MARK_TTL, Record, SessionStore, StoreKey, Timestamp,
    Update,
};

use crate::fixtures::update;
use crate::harness::{Ctx, HOUR, StoreFactory};

async fn must_load<S: SessionStore + ?Sized>(store: &S, key: &StoreKey, now: Timestamp) -> Record {
    match store.load(key, now).await {
        Ok(Some(r)) => r,
        other => panic!("expected a live record, got {other:?}"),
    }
}

async fn must_create<S: SessionStore + ?Sized>(store: &S, record: &Record, now: Timestamp) {
    if let Err(e) = store.create(record.clone(), now).await {
        panic!("create of a fresh key failed: {e}");
    }
}

async fn owned<S: SessionStore + ?Sized>(store: &S, owner: &str, now: Timestamp) -> Vec<StoreKey> {
    let mut keys: Vec<StoreKey> = match store.list_by_owner(owner, now).await {
        Ok(list) => list.into_iter().map(|s| s.key).collect(),
        Err(e) => panic!("list_by_owner failed: {e}"),
    };
    keys.sort();
    keys
}

fn sorted(mut keys: Vec<StoreKey>) -> Vec<StoreKey> {
    keys.sort();
    keys
}

// ---- 3.2 records and versions ----

/// `create` stores version 1 whatever the record says; `load` returns every
/// field as written.
pub async fn create_then_load_returns_the_record_at_version_1<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let mut r = ctx.record(HOUR);
    r.version = 7;
    r.owner = Some("alice".into());
    r.data = Bytes::from((0..=255u8).collect::<Vec<u8>>());
    must_create(&*ctx.store, &r, now).await;
    let got = must_load(&*ctx.store, &r.key, now).await;
    assert_eq!(got, Record { version: 1, ..r });
}

/// A successful `update` returns and stores exactly the old version + 1 and
/// writes data, expiry and owner; `created_at` never changes.
pub async fn update_increments_the_version_by_exactly_one<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.record(HOUR);
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
    let r = ctx.record(HOUR);
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
pub async fn overwrite_writes_whatever_the_version_and_increments_it<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.record(HOUR);
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
    let (expired, deleted) = (ctx.record(HOUR), ctx.record(HOUR));
    must_create(&*ctx.store, &expired, now).await;
    must_create(&*ctx.store, &deleted, now).await;
    assert_eq!(ctx.store.delete(&deleted.key, now).await.ok(), Some(true));
    let later = now + HOUR;
    for (what, key) in [
        ("unknown", ctx.key()),
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

// ---- 3.3 time and liveness ----

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
    let mut r = ctx.record(HOUR);
    r.owner = Some("carol".into());
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
        store.rotate(&r.key, &ctx.key(), None, later).await,
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
    let mut old = ctx.record(HOUR);
    old.owner = Some("dave".into());
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
        owner: Some("erin".into()),
    };
    must_create(&*ctx.store, &new, later).await;
    assert_eq!(must_load(&*ctx.store, &old.key, later).await, new);
    assert_eq!(owned(&*ctx.store, "dave", later).await, Vec::<StoreKey>::new());
    assert_eq!(owned(&*ctx.store, "erin", later).await, vec![old.key]);
}

/// `create` over a live record fails with `AlreadyExists` and leaves it as it
/// was.
pub async fn create_over_a_live_record_fails_and_changes_nothing<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.record(HOUR);
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
    let r = ctx.record(HOUR);
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
    let mut r = ctx.record(HOUR);
    r.owner = Some("frank".into());
    must_create(&*ctx.store, &r, now).await;
    assert_eq!(ctx.store.delete(&r.key, now).await.ok(), Some(true));
    assert_eq!(ctx.store.delete(&r.key, now).await.ok(), Some(false));
    assert_eq!(ctx.store.touch(&r.key, now + 9 * HOUR, now).await.ok(), Some(false));
    assert!(matches!(
        ctx.store.rotate(&r.key, &ctx.key(), None, now).await,
        Err(Error::NotFound)
    ));
    assert_eq!(ctx.store.load(&r.key, now).await.ok(), Some(None));
    assert_eq!(owned(&*ctx.store, "frank", now).await, Vec::<StoreKey>::new());
}

// ---- 3.4 rotate and delete ----

/// `rotate` gives the new key the data, owner, `created_at` and `expires_at`
/// of the old one with version 1, and frees the old key.
pub async fn rotate_moves_data_owner_created_at_and_expiry_and_frees_the_old_key<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let mut r = ctx.record(HOUR);
    r.owner = Some("grace".into());
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
    let new_key = ctx.key();
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
    let mut owned_by_rita = ctx.record(2 * HOUR);
    owned_by_rita.owner = Some("rita".into());
    must_create(&*ctx.store, &anonymous, now).await;
    must_create(&*ctx.store, &owned_by_rita, now).await;

    let login = ctx.key();
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
    let switched = ctx.key();
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
    let mark_of = |owner: Option<&str>| {
        let mut r = ctx.record(2 * HOUR);
        r.owner = owner.map(str::to_owned);
        r
    };
    let r = mark_of(Some("tess"));
    must_create(store, &r, now).await;
    let new_key = ctx.key();
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
    let second = mark_of(None);
    must_create(store, &second, now).await;
    assert!(store.rotate(&second.key, &ctx.key(), None, now).await.is_ok());
    let mut again = ctx.record(HOUR);
    again.key = second.key;
    must_create(store, &again, now).await;
    assert_eq!(store.was_rotated(&second.key, now).await.ok(), Some(false));
    assert_eq!(must_load(store, &second.key, now).await, again);

    // rotate onto a mark replaces it.
    let third = mark_of(None);
    let source = mark_of(None);
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

// ---- owner index ----

/// `list_by_owner` lists exactly the live sessions of that owner, with their
/// `created_at` and `expires_at`.
pub async fn list_by_owner_lists_only_the_live_sessions_of_that_owner<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let mut mine = Vec::new();
    for ttl in [HOUR, 2 * HOUR, 3 * HOUR] {
        let mut r = ctx.record(ttl);
        r.owner = Some("heidi".into());
        must_create(&*ctx.store, &r, now).await;
        mine.push(r);
    }
    let mut theirs = ctx.record(3 * HOUR);
    theirs.owner = Some("heidi2".into());
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
pub async fn the_owner_index_follows_expiry_rotation_owner_change_and_deletion<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let store = &*ctx.store;
    let mut a = ctx.record(HOUR);
    a.owner = Some("ivan".into());
    let mut b = ctx.record(4 * HOUR);
    b.owner = Some("ivan".into());
    must_create(store, &a, now).await;
    must_create(store, &b, now).await;
    assert_eq!(owned(store, "ivan", now).await, sorted(vec![a.key, b.key]));

    // Rotation: the new key replaces the old one in the index.
    let b2 = ctx.key();
    assert!(store.rotate(&b.key, &b2, None, now).await.is_ok());
    assert_eq!(owned(store, "ivan", now).await, sorted(vec![a.key, b2]));

    // Owner change: moves from one owner's list to the other's.
    assert_eq!(
        store
            .update(&b2, update(1, b"", b.expires_at, Some("judy")), now)
            .await
            .ok(),
        Some(2)
    );
    assert_eq!(owned(store, "ivan", now).await, vec![a.key]);
    assert_eq!(owned(store, "judy", now).await, vec![b2]);

    // Clearing the owner removes it from every list.
    assert_eq!(
        store.update(&b2, update(2, b"", b.expires_at, None), now).await.ok(),
        Some(3)
    );
    assert_eq!(owned(store, "judy", now).await, Vec::<StoreKey>::new());

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
        let mut r = ctx.record(ttl);
        r.owner = Some("ken".into());
        must_create(store, &r, now).await;
        keys.push(r.key);
    }
    let mut other = ctx.record(3 * HOUR);
    other.owner = Some("kenneth".into());
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
        let mut r = ctx.record(HOUR);
        r.owner = Some(o.to_owned());
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
        let mut r = ctx.record(HOUR);
        r.owner = Some("uma".into());
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

// ---- sweep ----

/// `delete_expired` removes only expired records, at most `limit` per call,
/// and returns how many it removed (0 is allowed where the server expires
/// records by itself).
pub async fn delete_expired_removes_only_expired_records_and_respects_limit<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let store = &*ctx.store;
    let expired: Vec<Record> = (0..5).map(|_| ctx.record(HOUR)).collect();
    let live: Vec<Record> = (0..3).map(|_| ctx.record(3 * HOUR)).collect();
    for r in expired.iter().chain(&live) {
        must_create(store, r, now).await;
    }
    let at = now + 2 * HOUR;
    let mut total = 0;
    for _ in 0..4 {
        let n = store
            .delete_expired(at, 2)
            .await
            .unwrap_or_else(|e| panic!("delete_expired failed: {e}"));
        assert!(n <= 2, "delete_expired(limit 2) removed {n}");
        total += n;
    }
    if ctx.factory.expires_by_itself() {
        assert!(total <= 5);
    } else {
        assert_eq!(total, 5, "the sweep left expired records behind");
        for r in &expired {
            assert_eq!(
                store.load(&r.key, now).await.ok(),
                Some(None),
                "an expired record was not removed"
            );
        }
    }
    assert_eq!(store.delete_expired(at, 0).await.ok(), Some(0));
    for r in &live {
        assert_eq!(must_load(store, &r.key, at).await, *r);
    }
}

/// The sweep judges expiry at its own `now`: a session renewed before the
/// sweep survives it.
pub async fn delete_expired_never_removes_a_renewed_session<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let r = ctx.record(HOUR);
    must_create(&*ctx.store, &r, now).await;
    assert_eq!(ctx.store.touch(&r.key, now + 3 * HOUR, now).await.ok(), Some(true));
    let at = now + 2 * HOUR;
    assert_eq!(ctx.store.delete_expired(at, 100).await.ok(), Some(0));
    assert_eq!(must_load(&*ctx.store, &r.key, at).await.expires_at, now + 3 * HOUR);
}

// ---- 3.5 payloads ----

/// Data is opaque bytes: every byte value and a 256 KiB payload round-trip
/// exactly, as does empty data.
pub async fn data_is_stored_as_opaque_bytes_of_any_size<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let now = ctx.now();
    let big: Vec<u8> = (0..256 * 1024)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    for data in [
        Bytes::new(),
        Bytes::from((0..=255u8).collect::<Vec<_>>()),
        Bytes::from(big),
    ] {
        let mut r = ctx.record(HOUR);
        r.data = data;
        must_create(&*ctx.store, &r, now).await;
        assert_eq!(must_load(&*ctx.store, &r.key, now).await, r);
        let u = Update {
            expected_version: 1,
            data: r.data.slice(..r.data.len() / 2),
            expires_at: r.expires_at,
            owner: None,
        };
        assert_eq!(ctx.store.update(&r.key, u.clone(), now).await.ok(), Some(2));
        assert_eq!(must_load(&*ctx.store, &r.key, now).await.data, u.data);
    }
}
