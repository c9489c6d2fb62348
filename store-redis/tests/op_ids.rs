//! A write whose reply was lost and that is sent again with the same
//! operation id reports its first outcome, and changes nothing the second
//! time. Each write runs twice with one id against the shared Redis; the
//! second reply must equal the first, and the raw keys must be unchanged.

mod support;

use conformance::fixtures::{self, HOUR};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use session_core::{Bytes, Overwrite, Record, SessionStore, StoreKey, Timestamp};
use store_redis::RedisStore;

/// Everything a write may change: the raw records of `keys` and the
/// owner indexes of `owners`.
async fn state(
    conn: &mut MultiplexedConnection,
    store: &RedisStore,
    keys: &[StoreKey],
    owners: &[&str],
) -> (Vec<Option<Vec<u8>>>, Vec<Vec<(String, f64)>>) {
    let mut records = Vec::new();
    for key in keys {
        records.push(conn.get(store.session_key(key)).await.expect("GET"));
    }
    let mut indexes = Vec::new();
    for owner in owners {
        indexes.push(
            conn.zrange_withscores(store.owner_index_key(owner), 0, -1)
                .await
                .expect("ZRANGE"),
        );
    }
    (records, indexes)
}

fn owned(key: StoreKey, now: Timestamp, owner: &str) -> Record {
    Record {
        owner: Some(owner.to_owned()),
        ..fixtures::record(key, now, HOUR)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_sent_twice_with_one_op_id_reports_its_first_outcome() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let mut conn = support::raw_connection(&support::redis_url()).await;
    let now = Timestamp::now();
    let (a, b, c) = (
        conformance::fresh_key(),
        conformance::fresh_key(),
        conformance::fresh_key(),
    );
    let keys = [a, b, c];
    let owners = ["ivy", "jon"];
    let snapshot = async |conn: &mut MultiplexedConnection| state(conn, &store, &keys, &owners).await;

    // create: Ok twice, not AlreadyExists.
    let first = store.create_with_op_id(owned(a, now, "ivy"), now, [1; 16]).await;
    let after = snapshot(&mut conn).await;
    let again = store.create_with_op_id(owned(a, now, "ivy"), now, [1; 16]).await;
    assert_eq!(format!("{first:?}"), format!("{again:?}"));
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(snapshot(&mut conn).await, after, "a resent create changed something");
    // A different op id is a different create.
    assert!(
        store
            .create_with_op_id(owned(a, now, "ivy"), now, [9; 16])
            .await
            .is_err()
    );

    // A create without owner (a plain SET NX): the same.
    let first = store
        .create_with_op_id(fixtures::record(c, now, HOUR), now, [7; 16])
        .await;
    let after = snapshot(&mut conn).await;
    let again = store
        .create_with_op_id(fixtures::record(c, now, HOUR), now, [7; 16])
        .await;
    assert_eq!(format!("{first:?}"), format!("{again:?}"));
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(
        snapshot(&mut conn).await,
        after,
        "a resent create without owner changed something"
    );
    assert!(matches!(
        store
            .create_with_op_id(fixtures::record(c, now, HOUR), now, [8; 16])
            .await,
        Err(session_core::Error::AlreadyExists)
    ));

    // update: the same new version twice, not Conflict.
    let u = fixtures::update(1, b"\x01two", now + HOUR * 2, Some("jon"));
    let first = store
        .update_with_op_id(&a, u.clone(), now, [2; 16])
        .await
        .expect("update");
    let after = snapshot(&mut conn).await;
    let again = store
        .update_with_op_id(&a, u, now, [2; 16])
        .await
        .expect("resent update");
    assert_eq!((first, again), (2, 2));
    assert_eq!(snapshot(&mut conn).await, after, "a resent update changed something");

    // A touch in between leaves the op id: the update is still recognised.
    assert!(store.touch(&a, now + HOUR * 3, now).await.expect("touch"));
    let after = snapshot(&mut conn).await;
    assert!(store.touch(&a, now + HOUR * 3, now).await.expect("touch again"));
    assert_eq!(snapshot(&mut conn).await, after, "a resent touch changed something");
    let u = fixtures::update(1, b"\x01two", now + HOUR * 2, Some("jon"));
    assert_eq!(
        store
            .update_with_op_id(&a, u, now, [2; 16])
            .await
            .expect("resent update"),
        2
    );

    // overwrite: the same version twice, not a second increment.
    let o = Overwrite {
        data: Bytes::from_static(b"\x01three"),
        expires_at: now + HOUR * 3,
        owner: Some("ivy".into()),
    };
    let first = store
        .overwrite_with_op_id(&a, o.clone(), now, [3; 16])
        .await
        .expect("overwrite");
    let after = snapshot(&mut conn).await;
    let again = store
        .overwrite_with_op_id(&a, o, now, [3; 16])
        .await
        .expect("resent overwrite");
    assert_eq!((first, again), (3, 3));
    assert_eq!(snapshot(&mut conn).await, after, "a resent overwrite changed something");

    // rotate: the same record twice, not NotFound.
    let first = store
        .rotate_with_op_id(&a, &b, Some("jon"), now, [4; 16])
        .await
        .expect("rotate");
    let after = snapshot(&mut conn).await;
    let again = store
        .rotate_with_op_id(&a, &b, Some("jon"), now, [4; 16])
        .await
        .expect("resent rotate");
    assert_eq!(first, again);
    assert_eq!(snapshot(&mut conn).await, after, "a resent rotate changed something");
    assert!(store.was_rotated(&a, now).await.expect("was_rotated"));

    // delete: true twice, not false.
    let first = store.delete_with_op_id(&b, now, [5; 16]).await.expect("delete");
    let after = snapshot(&mut conn).await;
    let again = store.delete_with_op_id(&b, now, [5; 16]).await.expect("resent delete");
    assert_eq!((first, again), (true, true));
    assert_eq!(snapshot(&mut conn).await, after, "a resent delete changed something");
    assert_eq!(store.load(&b, now).await.expect("load"), None);
    assert!(!store.delete_with_op_id(&b, now, [6; 16]).await.expect("another delete"));

    // delete_by_owner: the same count twice, not 0.
    for key in [a, b] {
        store.create(owned(key, now, "ivy"), now).await.expect("create");
    }
    let first = store
        .delete_by_owner_with_op_id("ivy", now, [7; 16])
        .await
        .expect("delete_by_owner");
    let after = snapshot(&mut conn).await;
    let again = store
        .delete_by_owner_with_op_id("ivy", now, [7; 16])
        .await
        .expect("resent delete_by_owner");
    assert_eq!((first, again), (2, 2));
    assert_eq!(
        snapshot(&mut conn).await,
        after,
        "a resent delete_by_owner changed something"
    );
    assert_eq!(
        store
            .delete_by_owner_with_op_id("ivy", now, [8; 16])
            .await
            .expect("another delete_by_owner"),
        0
    );
    support::delete_prefix(store.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_resent_after_another_write_does_not_undo_it() {
    let Some(store) = support::shared_store().await else {
        return;
    };
    let now = Timestamp::now();
    let key = conformance::fresh_key();
    store
        .create(fixtures::record(key, now, HOUR), now)
        .await
        .expect("create");
    let u = fixtures::update(1, b"\x01mine", now + HOUR, None);
    assert_eq!(
        store
            .update_with_op_id(&key, u.clone(), now, [1; 16])
            .await
            .expect("update"),
        2
    );
    let theirs = fixtures::update(2, b"\x01theirs", now + HOUR, None);
    assert_eq!(store.update(&key, theirs, now).await.expect("update"), 3);
    // The first write's record is gone: the resent one is an ordinary
    // update again, and loses.
    assert!(matches!(
        store.update_with_op_id(&key, u, now, [1; 16]).await,
        Err(session_core::Error::Conflict { current: 3 })
    ));
    let loaded = store.load(&key, now).await.expect("load").expect("live");
    assert_eq!((loaded.version, loaded.data.as_ref()), (3, &b"\x01theirs"[..]));
    support::delete_prefix(store.prefix()).await;
}
