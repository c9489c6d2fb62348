//! Rules of the session manager (the documentation of [`SessionManager`])
//! and of bad input, checked through the manager on top of the store under
//! test.

use std::sync::Arc;
use std::time::Duration;

use session_core::{
    Bytes, Clock, Config, Error, MAX_OWNER_LEN, ROTATION_MARK_TTL, SessionData, SessionId, SessionManager,
    SessionStore, Update,
};

use crate::harness::{Ctx, HOUR, StoreFactory};

fn config() -> Config {
    Config {
        idle_timeout: 2 * HOUR,
        absolute_timeout: 5 * HOUR,
        renewal_threshold: HOUR,
        max_data_bytes: 64 * 1024,
        max_update_attempts: 64,
    }
}

fn manager<F: StoreFactory>(ctx: &Ctx<F>, config: Config) -> SessionManager<F::Store> {
    match SessionManager::with_clock(Arc::clone(&ctx.store), config, ctx.clock.clone()) {
        Ok(m) => m,
        Err(e) => panic!("the suite's configuration is valid: {e}"),
    }
}

async fn stored_expiry<F: StoreFactory>(ctx: &Ctx<F>, id: &SessionId) -> Option<session_core::Timestamp> {
    match ctx.store.load(&id.store_key(), ctx.now()).await {
        Ok(r) => r.map(|r| r.expires_at),
        Err(e) => panic!("load failed: {e}"),
    }
}

/// Loading an unknown id returns `None` and never creates a record.
pub async fn loading_an_unknown_id_never_creates_a_session<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let id = SessionId::generate().expect("random source");
    assert!(matches!(m.load(&id).await, Ok(None)));
    assert!(matches!(ctx.store.load(&id.store_key(), ctx.now()).await, Ok(None)));
}

/// A session untouched for the idle timeout is gone.
pub async fn the_idle_timeout_ends_an_inactive_session<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let s = m.create(None).await.expect("create");
    ctx.clock.advance(2 * HOUR - Duration::from_millis(1));
    assert!(m.load(s.id()).await.expect("load").is_some());
    // That load renewed it (less than the threshold was left): two more hours.
    ctx.clock.advance(2 * HOUR - Duration::from_millis(1));
    assert!(m.load(s.id()).await.expect("load").is_some());
    ctx.clock.advance(2 * HOUR);
    assert!(m.load(s.id()).await.expect("load").is_none());
}

/// Activity never extends a session past `created_at + absolute_timeout`.
pub async fn the_absolute_timeout_ends_an_active_session<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let created = ctx.now();
    let s = m.create(None).await.expect("create");
    for _ in 0..6 {
        ctx.clock.advance(HOUR + Duration::from_secs(60));
        if let Some(mut live) = m.load(s.id()).await.expect("load") {
            assert!(live.expires_at() <= created + 5 * HOUR);
            live.data_mut().insert("tick", &1u8).expect("encode");
            m.save(&mut live).await.expect("save");
            assert!(live.expires_at() <= created + 5 * HOUR);
        }
    }
    assert!(ctx.now() >= created + 5 * HOUR);
    assert!(m.load(s.id()).await.expect("load").is_none());
}

/// A load writes a renewal only when less than the threshold of idle time is
/// left.
pub async fn renewal_writes_only_when_the_threshold_is_crossed<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let s = m.create(None).await.expect("create");
    let first = stored_expiry(&ctx, s.id()).await;
    ctx.clock.advance(HOUR - Duration::from_secs(60));
    let unrenewed = m.load(s.id()).await.expect("load").expect("live");
    assert!(
        !unrenewed.renewed_on_load(),
        "a load that did not touch says it renewed"
    );
    assert_eq!(
        stored_expiry(&ctx, s.id()).await,
        first,
        "renewed although more than the threshold was left"
    );
    ctx.clock.advance(Duration::from_secs(120));
    let loaded = m.load(s.id()).await.expect("load").expect("live");
    let renewed = stored_expiry(&ctx, s.id()).await;
    assert_eq!(renewed, Some(ctx.now() + 2 * HOUR));
    assert_eq!(loaded.expires_at(), ctx.now() + 2 * HOUR);
    assert_eq!(loaded.version(), 1, "renewal is not a data write");
    assert!(loaded.renewed_on_load(), "a load that touched does not say so");
}

/// Rotation gives a new id, kills the old one, keeps data and owner, and
/// keeps the absolute deadline.
pub async fn rotation_keeps_data_owner_and_the_absolute_deadline<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let created = ctx.now();
    // Owned from the start: an owner given to a saved session by `save` would
    // stay under a key minted for no owner, which a sharding store refuses
    // (a change of owner goes through `rotate_to_owner`).
    let mut s = m.create(Some("user-1".into())).await.expect("create");
    s.data_mut().insert("cart", &3u32).expect("encode");
    // Stay active (renewals) for four hours: close to the absolute deadline.
    for _ in 0..3 {
        ctx.clock.advance(HOUR + Duration::from_secs(20 * 60));
        assert!(m.load(s.id()).await.expect("load").is_some());
    }
    // Unsaved changes are saved before rotating.
    let old = s.id().clone();
    m.rotate(&mut s).await.expect("rotate");
    assert_ne!(s.id(), &old);
    assert!(m.load(&old).await.expect("load").is_none());
    let loaded = m.load(s.id()).await.expect("load").expect("live");
    assert_eq!(loaded.data().get::<u32>("cart").expect("decode"), Some(3));
    assert_eq!(loaded.owner(), Some("user-1"));
    assert_eq!(loaded.created_at(), created);
    assert!(loaded.expires_at() <= created + 5 * HOUR);
    ctx.clock.set(created + 5 * HOUR);
    assert!(m.load(s.id()).await.expect("load").is_none());
}

/// A copy loaded before another request's write never overwrites that write
/// through a rotation: `rotate` continues from what the store holds, so the
/// later save keeps both changes (the fault an independent test found).
pub async fn rotation_never_lets_a_stale_copy_overwrite_a_newer_write<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let s = m.create(None).await.expect("create");
    let mut a = m.load(s.id()).await.expect("load").expect("live");
    let mut b = m.load(s.id()).await.expect("load").expect("live");
    b.data_mut().insert("from_b", &2u8).expect("encode");
    m.save(&mut b).await.expect("b saves version 2");
    m.rotate(&mut a).await.expect("rotate");
    assert_eq!(
        a.data().get::<u8>("from_b").expect("decode"),
        Some(2),
        "rotate handed back a stale copy"
    );
    a.data_mut().insert("from_a", &1u8).expect("encode");
    m.save(&mut a).await.expect("save after rotate");
    let stored = m.load(a.id()).await.expect("load").expect("live");
    assert_eq!(
        stored.data().get::<u8>("from_b").expect("decode"),
        Some(2),
        "b's write was lost"
    );
    assert_eq!(stored.data().get::<u8>("from_a").expect("decode"), Some(1));
    // b's copy names the rotated-away id: its next save finds nothing.
    b.data_mut().insert("late", &3u8).expect("encode");
    assert!(matches!(m.save(&mut b).await, Err(Error::NotFound)));
}

/// Login: `rotate_to_owner` gives an anonymous session a new id and an owner
/// in one step, keeping its data and `created_at`; the old token is then
/// known to have been rotated, and an unknown one is not.
pub async fn login_rotates_and_sets_the_owner_in_one_step<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let created = ctx.now();
    let mut s = m.create(None).await.expect("create");
    s.data_mut().insert("cart", &5u32).expect("encode");
    let anonymous = s.id().clone();
    ctx.clock.advance(Duration::from_secs(60));
    m.rotate_to_owner(&mut s, "vera").await.expect("login");
    assert_ne!(s.id(), &anonymous);
    assert_eq!((s.owner(), s.version(), s.created_at()), (Some("vera"), 1, created));
    assert_eq!(
        s.data().get::<u32>("cart").expect("decode"),
        Some(5),
        "pending changes were saved first"
    );
    let listed = m.list_by_owner("vera").await.expect("list");
    assert_eq!(listed.iter().map(|o| o.key).collect::<Vec<_>>(), vec![s.key()]);
    assert!(m.load(&anonymous).await.expect("load").is_none());
    assert!(m.was_rotated(&anonymous).await.expect("was_rotated"));
    assert!(!m.was_rotated(s.id()).await.expect("was_rotated"));
    assert!(
        !m.was_rotated(&SessionId::generate().expect("random"))
            .await
            .expect("was_rotated")
    );
    ctx.clock.advance(ROTATION_MARK_TTL);
    assert!(
        !m.was_rotated(&anonymous).await.expect("was_rotated"),
        "the mark outlived its minute"
    );

    // Re-login as another user rotates again and switches the owner.
    let before = s.id().clone();
    m.rotate_to_owner(&mut s, "walt").await.expect("user switch");
    assert_ne!(s.id(), &before);
    assert!(m.list_by_owner("vera").await.expect("list").is_empty());
    assert_eq!(m.list_by_owner("walt").await.expect("list").len(), 1);
}

/// Configurations that cannot work are refused when the manager is built,
/// naming the setting.
pub async fn unusable_configurations_are_refused_when_the_manager_is_built<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let good = config();
    let bad = [
        (
            "idle_timeout",
            Config {
                idle_timeout: Duration::ZERO,
                ..good.clone()
            },
        ),
        (
            "absolute_timeout",
            Config {
                absolute_timeout: good.idle_timeout - Duration::from_secs(1),
                ..good.clone()
            },
        ),
        (
            "renewal_threshold",
            Config {
                renewal_threshold: good.idle_timeout + Duration::from_millis(1),
                ..good.clone()
            },
        ),
        (
            "max_data_bytes",
            Config {
                max_data_bytes: 0,
                ..good.clone()
            },
        ),
        (
            "max_update_attempts",
            Config {
                max_update_attempts: 0,
                ..good.clone()
            },
        ),
    ];
    for (setting, config) in bad {
        match SessionManager::with_clock(Arc::clone(&ctx.store), config, ctx.clock.clone()) {
            Err(Error::Config(e)) => assert_eq!(e.setting(), setting),
            Err(e) => panic!("{setting}: refused with the wrong error: {e}"),
            Ok(_) => panic!("{setting}: an unusable configuration was accepted"),
        }
    }
    // The edges are accepted: a threshold equal to the idle timeout, and an
    // absolute timeout equal to it.
    let edge = Config {
        absolute_timeout: good.idle_timeout,
        renewal_threshold: good.idle_timeout,
        ..good
    };
    assert!(SessionManager::with_clock(Arc::clone(&ctx.store), edge, ctx.clock.clone()).is_ok());
}

/// Owners the contract does not accept are refused with `InvalidOwner`
/// before any store call, and nothing changes.
pub async fn owners_the_contract_refuses_are_refused_before_any_store_call<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let too_long = "x".repeat(MAX_OWNER_LEN + 1);
    let mut s = m.create(Some("xena".into())).await.expect("create");
    for bad in [
        "",
        "a\0b",
        "line\nbreak",
        "tab\t",
        "\u{7f}",
        "\u{85}",
        too_long.as_str(),
    ] {
        let invalid = |r: &Result<_, Error>, what: &str| {
            assert!(
                matches!(r, Err(Error::InvalidOwner(_))),
                "{what} with owner {bad:?} was not refused as InvalidOwner"
            );
        };
        invalid(&m.create(Some(bad.to_owned())).await.map(drop), "create");
        invalid(&s.set_owner(Some(bad.to_owned())), "set_owner");
        invalid(&m.rotate_to_owner(&mut s, bad).await, "rotate_to_owner");
        invalid(&m.list_by_owner(bad).await.map(drop), "list_by_owner");
        invalid(&m.destroy_by_owner(bad).await.map(drop), "destroy_by_owner");
        invalid(&m.destroy_owned(bad, &s.key()).await.map(drop), "destroy_owned");
    }
    // The session is as it was: same id, same owner, nothing pending.
    assert!(!s.is_dirty());
    let stored = m.load(s.id()).await.expect("load").expect("still live under its id");
    assert_eq!((stored.owner(), stored.version()), (Some("xena"), 1));
}

/// Saving a copy that another writer has overtaken gives `Conflict`.
pub async fn saving_a_stale_session_gives_conflict<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let s = m.create(None).await.expect("create");
    let mut a = m.load(s.id()).await.expect("load").expect("live");
    let mut b = m.load(s.id()).await.expect("load").expect("live");
    a.data_mut().insert("who", "a").expect("encode");
    b.data_mut().insert("who", "b").expect("encode");
    m.save(&mut a).await.expect("first save wins");
    assert!(matches!(m.save(&mut b).await, Err(Error::Conflict { current: 2 })));
    let now = m.load(s.id()).await.expect("load").expect("live");
    assert_eq!(now.data().get::<String>("who").expect("decode").as_deref(), Some("a"));
}

/// `update_with` from many tasks at once loses no update.
pub async fn update_with_under_contention_loses_no_update<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let s = m.create(None).await.expect("create");
    let (tasks, each) = (16u64, 5u64);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (m, id) = (m.clone(), s.id().clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..each {
                m.update_with(&id, |d| {
                    let n = d.get::<u64>("n")?.unwrap_or(0);
                    d.insert("n", &(n + 1))
                })
                .await
                .expect("update_with");
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let done = m.load(s.id()).await.expect("load").expect("live");
    assert_eq!(done.data().get::<u64>("n").expect("decode"), Some(tasks * each));
    assert_eq!(done.version(), 1 + tasks * each);
}

/// `destroy_owned` ends a session by its store key only for its owner;
/// `destroy_owner` ends them all.
pub async fn an_owner_can_end_only_their_own_sessions<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let mine = m.create(Some("liz".into())).await.expect("create");
    ctx.clock.advance(Duration::from_secs(1));
    let mine2 = m.create(Some("liz".into())).await.expect("create");
    let theirs = m.create(Some("max".into())).await.expect("create");
    let listed = m.list_by_owner("liz").await.expect("list");
    assert_eq!(
        listed.iter().map(|s| s.key).collect::<Vec<_>>(),
        vec![mine.key(), mine2.key()]
    );
    assert!(!m.destroy_owned("liz", &theirs.key()).await.expect("destroy"));
    assert!(m.load(theirs.id()).await.expect("load").is_some());
    assert!(m.destroy_owned("liz", &mine.key()).await.expect("destroy"));
    assert!(m.load(mine.id()).await.expect("load").is_none());
    assert_eq!(m.destroy_by_owner("liz").await.expect("destroy"), 1);
    assert!(m.load(mine2.id()).await.expect("load").is_none());
    assert!(m.destroy(theirs.id()).await.expect("destroy"));
}

/// Malformed ids are refused with `InvalidId` before any store call.
pub async fn malformed_ids_are_refused_before_any_store_call<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let good = SessionId::generate().expect("random source");
    let text = good.expose();
    let long = "A".repeat(10_000);
    for bad in [
        "",
        "short",
        &text[1..],
        &format!("{text}A"),
        &format!("{}=", &text[..42]),
        &format!("{}+", &text[..42]),
        long.as_str(),
        "\0\0\0",
    ] {
        assert!(
            matches!(m.load_str(bad).await, Err(Error::InvalidId)),
            "{bad:?} accepted"
        );
    }
}

/// Oversized data is refused with `TooLarge` and nothing is written.
pub async fn oversized_data_is_refused_and_nothing_is_written<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(
        &ctx,
        Config {
            max_data_bytes: 1024,
            ..config()
        },
    );
    let mut big = SessionData::new();
    big.insert("blob", &vec![7u8; 2048]).expect("encode");
    assert!(matches!(
        m.create_with(big.clone(), None).await,
        Err(Error::TooLarge { limit: 1024, .. })
    ));

    let mut s = m.create(None).await.expect("create");
    s.data_mut().insert("blob", &vec![7u8; 2048]).expect("encode");
    match m.save(&mut s).await {
        Err(Error::TooLarge { size, limit: 1024 }) => assert!(size > 2048),
        other => panic!("oversized save gave {other:?}"),
    }
    let stored = ctx.store.load(&s.key(), ctx.now()).await.expect("load").expect("live");
    assert_eq!(stored.version, 1);
    assert!(SessionData::decode(&stored.data).expect("decode").is_empty());
}

/// Stored bytes damaged in the backend give `Corrupt`, never a panic, and the
/// damaged session can still be destroyed.
pub async fn corrupted_stored_bytes_give_corrupt<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let s = m.create(Some("nina".into())).await.expect("create");
    ctx.factory.corrupt(&ctx.store, &s.key()).await;
    match m.load(s.id()).await {
        Err(Error::Corrupt(msg)) => assert!(!msg.contains(s.id().expose()), "the error shows the token"),
        other => panic!("loading a corrupted record gave {other:?}"),
    }
    // Deleting by key needs no decoding of the record.
    let _ = m.destroy(s.id()).await;
    assert!(matches!(ctx.store.load(&s.key(), ctx.now()).await, Ok(None)));
}

/// Data that is not in the session format (written by another program)
/// gives `Corrupt` through the manager.
pub async fn foreign_data_gives_corrupt_through_the_manager<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let s = m.create(None).await.expect("create");
    let u = Update {
        expected_version: 1,
        data: Bytes::from_static(crate::FOREIGN_DATA),
        expires_at: ctx.now() + HOUR,
        owner: None,
    };
    ctx.store.update(&s.key(), u, ctx.clock.now()).await.expect("update");
    assert!(matches!(m.load(s.id()).await, Err(Error::Corrupt(_))));
}

/// No store ever holds the token: the record is keyed by SHA-256 of the id,
/// and neither the key nor the error messages contain the id.
pub async fn no_record_holds_the_raw_token<F: StoreFactory>(ctx: Arc<Ctx<F>>) {
    let m = manager(&ctx, config());
    let s = m.create(Some("oscar".into())).await.expect("create");
    let token = s.id().expose().to_owned();
    let record = ctx.store.load(&s.key(), ctx.now()).await.expect("load").expect("live");
    assert_eq!(record.key, s.id().store_key());
    assert!(!record.key.to_hex().contains(&token));
    let listed = m.list_by_owner("oscar").await.expect("list");
    assert!(!format!("{listed:?}").contains(&token));
    assert!(!format!("{s:?}").contains(&token));
    assert!(!record.data.windows(token.len()).any(|w| w == token.as_bytes()));
}
