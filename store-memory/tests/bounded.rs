//! The memory store's own promise beyond the contract: it is bounded, and
//! when full it evicts expired records first, then rotation marks, then the
//! anonymous session closest to its end, and an owned one only when no
//! anonymous session is left.

use std::time::Duration;

use conformance::fixtures::{self, HOUR};
use session_core::{Bytes, Record, SessionStore, StoreKey, Timestamp};
use store_memory::MemoryStore;

/// Record `n`, owned by one of three owners: its key starts with `n`, so
/// tests choose which shard (the key's first byte) and order keys.
fn record(n: u32, now: Timestamp, ttl: Duration) -> Record {
    let mut key = [0u8; 32];
    key[..4].copy_from_slice(&n.to_be_bytes());
    key[31] = 1;
    Record {
        owner: Some(format!("owner-{}", n % 3)),
        ..fixtures::record(StoreKey::from_bytes(key), now, ttl)
    }
}

#[tokio::test]
async fn the_store_never_holds_more_than_max_sessions() {
    let store = MemoryStore::builder().max_sessions(100).build();
    let now = Timestamp::now();
    for n in 0..1000 {
        store.create(record(n, now, HOUR), now).await.expect("create");
        assert!(store.len() <= 100, "holds {} records", store.len());
    }
    assert_eq!(store.len(), 100);
}

#[tokio::test]
async fn a_full_store_evicts_expired_records_before_live_ones() {
    let store = MemoryStore::builder().max_sessions(10).build();
    let now = Timestamp::now();
    // Five that will have expired, five long-lived.
    for n in 0..5 {
        store.create(record(n, now, HOUR), now).await.expect("create");
    }
    for n in 5..10 {
        store.create(record(n, now, 10 * HOUR), now).await.expect("create");
    }
    let later = now + 2 * HOUR;
    for n in 10..15 {
        store.create(record(n, later, HOUR), later).await.expect("create");
    }
    assert_eq!(store.len(), 10);
    for n in 5..15 {
        let r = record(n, now, HOUR);
        assert!(
            store.load(&r.key, later).await.expect("load").is_some(),
            "live record {n} was evicted"
        );
    }
}

#[tokio::test]
async fn when_all_are_live_the_soonest_to_expire_goes_first() {
    let store = MemoryStore::builder().max_sessions(3).build();
    let now = Timestamp::now();
    store.create(record(0, now, 3 * HOUR), now).await.expect("create");
    store.create(record(1, now, HOUR), now).await.expect("create");
    store.create(record(2, now, 2 * HOUR), now).await.expect("create");
    store.create(record(3, now, 4 * HOUR), now).await.expect("create");
    let gone = record(1, now, HOUR).key;
    assert!(store.load(&gone, now).await.expect("load").is_none());
    // The owner index forgot it too.
    let owners = store.list_by_owner("owner-1", now).await.expect("list");
    assert!(owners.iter().all(|s| s.key != gone));
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn the_indexes_stay_consistent_through_every_operation() {
    // Owner changes, renewals and rotations, then a sweep and delete_by_owner
    // must leave nothing behind.
    let store = MemoryStore::builder().max_sessions(1000).build();
    let now = Timestamp::now();
    let mut keys = Vec::new();
    for n in 0..50 {
        let r = record(n, now, HOUR);
        store.create(r.clone(), now).await.expect("create");
        keys.push(r.key);
    }
    for (i, k) in keys.clone().iter().enumerate() {
        match i % 4 {
            0 => {
                let u = session_core::Update {
                    expected_version: 1,
                    data: Bytes::from_static(b"y"),
                    expires_at: now + 3 * HOUR,
                    owner: Some("owner-0".into()),
                };
                store.update(k, u, now).await.expect("update");
            }
            1 => assert!(store.touch(k, now + 3 * HOUR, now).await.expect("touch")),
            2 => {
                let mut new = *k.as_bytes();
                new[30] = 9;
                let new = StoreKey::from_bytes(new);
                store.rotate(k, &new, None, now).await.expect("rotate");
                keys[i] = new;
            }
            _ => {}
        }
    }
    let later = now + 2 * HOUR;
    let swept = store.delete_expired(later, usize::MAX).await.expect("sweep");
    let live = store.len();
    assert_eq!(swept as usize + live, 50);
    let mut ended = 0;
    for o in 0..3 {
        ended += store
            .delete_by_owner(&format!("owner-{o}"), later)
            .await
            .expect("delete_by_owner");
    }
    assert_eq!(ended as usize, live);
    assert!(store.is_empty());
}

fn anonymous(n: u32, now: Timestamp, ttl: Duration) -> Record {
    Record {
        owner: None,
        ..record(n, now, ttl)
    }
}

/// The fault an independent test found: 5,000 anonymous creates into a
/// 1,000-session store evicted all 500 logged-in sessions, because those
/// expired soonest.
#[tokio::test]
async fn an_anonymous_flood_never_evicts_a_logged_in_session() {
    let store = MemoryStore::builder().max_sessions(1000).build();
    let now = Timestamp::now();
    for n in 0..500 {
        store.create(record(n, now, HOUR), now).await.expect("create");
    }
    // The flood comes later and lives longer: by expiry alone, the
    // logged-in sessions would go first.
    let later = now + Duration::from_secs(60);
    for n in 500..5500 {
        store
            .create(anonymous(n, later, 2 * HOUR), later)
            .await
            .expect("create");
    }
    assert_eq!(store.len(), 1000);
    for n in 0..500 {
        let r = record(n, now, HOUR);
        assert!(
            store.load(&r.key, later).await.expect("load").is_some(),
            "logged-in session {n} was evicted by anonymous traffic"
        );
    }
    let mut listed = 0;
    for o in 0..3 {
        listed += store
            .list_by_owner(&format!("owner-{o}"), later)
            .await
            .expect("list")
            .len();
    }
    assert_eq!(listed, 500, "every logged-in session is still listed");
    // The newest anonymous sessions are there; the flood evicted its own.
    assert!(
        store
            .load(&anonymous(5499, later, 2 * HOUR).key, later)
            .await
            .expect("load")
            .is_some()
    );
}

/// With no anonymous session left, owned ones are evicted soonest first, so
/// the bound always holds.
#[tokio::test]
async fn a_store_full_of_owned_sessions_still_evicts_to_stay_bounded() {
    let store = MemoryStore::builder().max_sessions(3).build();
    let now = Timestamp::now();
    store.create(record(0, now, 2 * HOUR), now).await.expect("create");
    store.create(record(1, now, HOUR), now).await.expect("create");
    store.create(record(2, now, 3 * HOUR), now).await.expect("create");
    store.create(anonymous(3, now, 4 * HOUR), now).await.expect("create");
    assert_eq!(store.len(), 3);
    assert!(
        store
            .load(&record(1, now, HOUR).key, now)
            .await
            .expect("load")
            .is_none()
    );
    // The anonymous one is now the first to go.
    store.create(record(4, now, HOUR), now).await.expect("create");
    assert!(
        store
            .load(&anonymous(3, now, HOUR).key, now)
            .await
            .expect("load")
            .is_none()
    );
    assert!(
        store
            .load(&record(0, now, HOUR).key, now)
            .await
            .expect("load")
            .is_some()
    );
}

/// Rotation marks count toward the bound and go before any session.
#[tokio::test]
async fn rotation_marks_are_evicted_before_sessions() {
    let store = MemoryStore::builder().max_sessions(3).build();
    let now = Timestamp::now();
    store.create(anonymous(0, now, HOUR), now).await.expect("create");
    store.create(anonymous(1, now, HOUR), now).await.expect("create");
    let rotated_to = anonymous(2, now, HOUR).key;
    store
        .rotate(&anonymous(0, now, HOUR).key, &rotated_to, None, now)
        .await
        .expect("rotate");
    assert!(
        store
            .was_rotated(&anonymous(0, now, HOUR).key, now)
            .await
            .expect("was_rotated")
    );
    // Full: two sessions and one mark. A new session evicts the mark.
    store.create(anonymous(3, now, HOUR), now).await.expect("create");
    assert!(
        !store
            .was_rotated(&anonymous(0, now, HOUR).key, now)
            .await
            .expect("was_rotated")
    );
    for n in [1, 2, 3] {
        assert!(
            store
                .load(&anonymous(n, now, HOUR).key, now)
                .await
                .expect("load")
                .is_some()
        );
    }
}

/// A renewal leaves the session's expiry-index entry early (that is what
/// makes it cheap); eviction must still go by the renewed expiry.
#[tokio::test]
async fn a_renewed_session_is_evicted_by_its_new_expiry_not_its_old_one() {
    let store = MemoryStore::builder().max_sessions(3).build();
    let now = Timestamp::now();
    for (n, hours) in [(0, 1), (1, 2), (2, 3)] {
        store
            .create(anonymous(n, now, hours * HOUR), now)
            .await
            .expect("create");
    }
    // 0 now ends last but one; 1 is the soonest.
    let renewed = anonymous(0, now, HOUR).key;
    assert!(store.touch(&renewed, now + 4 * HOUR, now).await.expect("touch"));
    store.create(anonymous(3, now, 5 * HOUR), now).await.expect("create");
    assert!(
        store.load(&renewed, now).await.expect("load").is_some(),
        "the renewed session was evicted"
    );
    let soonest = anonymous(1, now, HOUR).key;
    assert!(
        store.load(&soonest, now).await.expect("load").is_none(),
        "the soonest was kept"
    );
    assert_eq!(store.len(), 3);
}

/// The sweep removes what has expired by each record's latest expiry: not a
/// renewed session whose index entry is early, and a session whose expiry an
/// overwrite brought forward, at its new expiry.
#[tokio::test]
async fn the_sweep_goes_by_each_records_latest_expiry() {
    let store = MemoryStore::builder().max_sessions(1000).build();
    let now = Timestamp::now();
    let minutes = |m: u32| Duration::from_secs(60 * u64::from(m));
    let (renewed, plain, shortened) = (
        anonymous(0, now, HOUR),
        anonymous(1, now, 2 * HOUR),
        anonymous(2, now, 5 * HOUR),
    );
    for r in [&renewed, &plain, &shortened] {
        store.create(r.clone(), now).await.expect("create");
    }
    assert!(store.touch(&renewed.key, now + 3 * HOUR, now).await.expect("touch"));
    let earlier = session_core::Overwrite {
        data: Bytes::from_static(b"\x01x"),
        expires_at: now + minutes(30),
        owner: None,
    };
    store.overwrite(&shortened.key, earlier, now).await.expect("overwrite");
    // At 90 minutes only the shortened one has ended; the renewed one's
    // entry (filed at 60 minutes) must not take it.
    assert_eq!(store.delete_expired(now + minutes(90), 100).await.expect("sweep"), 1);
    let live = async |key: &StoreKey, at: Timestamp| store.load(key, at).await.expect("load").is_some();
    assert!(!live(&shortened.key, now).await);
    assert!(live(&renewed.key, now + minutes(90)).await);
    assert!(live(&plain.key, now + minutes(90)).await);
    assert_eq!(store.delete_expired(now + minutes(150), 100).await.expect("sweep"), 1);
    assert!(live(&renewed.key, now + minutes(150)).await);
    assert_eq!(store.len(), 1);
    assert_eq!(store.delete_expired(now + minutes(200), 100).await.expect("sweep"), 1);
    assert_eq!(store.len(), 0);
}
