//! Damaged records, a database in use and damaged database files give clear
//! errors, never a panic. (Directories that cannot hold a store are refused
//! as configuration: see `config.rs`.)

mod support;

use conformance::fixtures::{self, HOUR};
use conformance::fresh_key;
use session_core::{Bytes, Error, Overwrite, Record, SessionStore, Timestamp};
use store_sled::SledStore;
use support::{builder, listed, stored, temporary_store};

/// The message of a permanent backend error from an open that must fail.
fn permanent_backend_message(result: Result<SledStore, Error>) -> String {
    match result {
        Err(e @ Error::Backend(_)) if !e.is_retryable() => e.to_string(),
        Err(other) => panic!("expected a permanent backend error, got {other:?}"),
        Ok(store) => panic!("expected an error, the store opened: {store:?}"),
    }
}

#[tokio::test]
async fn corrupted_record_bytes_give_corrupt_errors_not_panics() {
    let (_dir, store) = temporary_store();
    let now = Timestamp::now();
    let garbage: [&[u8]; 6] = [
        b"",
        b"\x00",
        b"\x01short",
        b"\x09unknown format",
        &[0xff; 100],
        &[1; 26],
    ];
    for bytes in garbage {
        let key = stored(&store, Some("alice"), now, HOUR).await.key;
        store.overwrite_record_bytes_for_tests(&key, bytes).expect("raw write");

        assert!(
            matches!(store.load(&key, now).await, Err(Error::Corrupt(_))),
            "load of {bytes:?}"
        );
        let update = fixtures::update(1, b"", now + HOUR, None);
        assert!(matches!(store.update(&key, update, now).await, Err(Error::Corrupt(_))));
        assert!(matches!(
            store.touch(&key, now + HOUR, now).await,
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            store.rotate(&key, &fresh_key(), None, now).await,
            Err(Error::Corrupt(_))
        ));
        let write = Overwrite {
            data: Bytes::new(),
            expires_at: now + HOUR,
            owner: None,
        };
        assert!(matches!(
            store.overwrite(&key, write, now).await,
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(store.was_rotated(&key, now).await, Err(Error::Corrupt(_))));
        // A listing leaves it out instead of failing.
        assert_eq!(listed(&store, "alice", now).await, []);
        // The sweeper skips what it cannot read instead of stalling on it.
        stored(&store, None, now, HOUR).await;
        assert_eq!(store.delete_expired(now + 2 * HOUR, 100).await.expect("sweep"), 1);
        assert!(matches!(store.load(&key, now).await, Err(Error::Corrupt(_))));
        // Ending a session needs no decoding: a damaged one can always go.
        assert!(
            !store.delete(&key, now).await.expect("delete"),
            "a damaged record counts as not live"
        );
        assert_eq!(store.load(&key, now).await.expect("load"), None);
        // Its leftover index entries are dropped by the owner and expiry paths.
        assert_eq!(listed(&store, "alice", now).await, []);
        assert_eq!(store.delete_by_owner("alice", now).await.expect("delete by owner"), 0);
        assert_eq!(store.delete_expired(now + 2 * HOUR, 100).await.expect("sweep"), 0);
        assert_eq!(store.verify_indexes().expect("consistent again"), 0);
    }
    assert!(
        matches!(store.load(&fresh_key(), now).await, Ok(None)),
        "other keys still read fine"
    );
}

#[tokio::test]
async fn ending_all_sessions_of_an_owner_removes_damaged_ones_too() {
    let (_dir, store) = temporary_store();
    let now = Timestamp::now();
    let damaged = stored(&store, Some("carol"), now, HOUR).await;
    let fine = stored(&store, Some("carol"), now, HOUR).await;
    store
        .overwrite_record_bytes_for_tests(&damaged.key, &[0xee; 7])
        .expect("raw write");
    assert_eq!(store.delete_by_owner("carol", now).await.expect("delete by owner"), 1);
    assert_eq!(store.load(&damaged.key, now).await.expect("load"), None);
    assert_eq!(store.load(&fine.key, now).await.expect("load"), None);
    assert_eq!(store.delete_expired(now + 2 * HOUR, 10).await.expect("sweep"), 0);
    assert_eq!(store.verify_indexes().expect("consistent again"), 0);
}

#[tokio::test]
async fn a_damaged_record_is_left_out_of_its_owners_listing_not_fatal_to_it() {
    let (_dir, store) = temporary_store();
    let now = Timestamp::now();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(stored(&store, Some("erin"), now, HOUR).await);
    }
    store
        .overwrite_record_bytes_for_tests(&sessions[1].key, b"\x02torn")
        .expect("raw write");
    let mut healthy = vec![sessions[0].key, sessions[2].key];
    healthy.sort();
    assert_eq!(
        listed(&store, "erin", now).await,
        healthy,
        "the readable sessions, and only those"
    );
    // A read leaves the damaged record where it is, for `load` to report...
    assert!(matches!(
        store.load(&sessions[1].key, now).await,
        Err(Error::Corrupt(_))
    ));
    // ...and ending the owner's sessions ends it too.
    assert_eq!(store.delete_by_owner("erin", now).await.expect("delete by owner"), 2);
    assert_eq!(listed(&store, "erin", now).await, []);
    assert!(store.is_empty());
}

/// The bytes of a record of layout 2 (see `record_layout`) at `version`: the
/// crate's own encoding, written by hand, as damaged storage could hold it.
fn record_bytes(r: &Record, version: u64) -> Vec<u8> {
    let mut out = vec![2];
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&r.created_at.as_millis().to_be_bytes());
    out.extend_from_slice(&r.expires_at.as_millis().to_be_bytes());
    // indexed_at: where `create` filed it.
    out.extend_from_slice(&r.expires_at.as_millis().to_be_bytes());
    out.push(0);
    out.extend_from_slice(&u32::try_from(r.data.len()).expect("small data").to_be_bytes());
    out.extend_from_slice(&r.data);
    out
}

#[tokio::test]
async fn a_version_at_its_maximum_is_refused_by_update_and_overwrite_and_nothing_is_written() {
    let (_dir, store) = temporary_store();
    let now = Timestamp::now();
    let r = stored(&store, None, now, HOUR).await;
    store
        .overwrite_record_bytes_for_tests(&r.key, &record_bytes(&r, u64::MAX))
        .expect("raw write");
    let at_max = Record {
        version: u64::MAX,
        ..r.clone()
    };
    assert_eq!(store.load(&r.key, now).await.expect("load"), Some(at_max.clone()));

    let update = fixtures::update(u64::MAX, b"next", now + 2 * HOUR, Some("frank"));
    assert!(matches!(
        store.update(&r.key, update, now).await,
        Err(Error::Corrupt(_))
    ));
    let write = Overwrite {
        data: Bytes::from_static(b"blind"),
        expires_at: now + 2 * HOUR,
        owner: Some("frank".into()),
    };
    assert!(matches!(
        store.overwrite(&r.key, write, now).await,
        Err(Error::Corrupt(_))
    ));
    // Nothing was written: not the record, not an index entry.
    assert_eq!(store.load(&r.key, now).await.expect("load"), Some(at_max));
    assert_eq!(listed(&store, "frank", now).await, []);
    assert_eq!(store.leftover_index_entries().expect("scan"), 0);
    assert_eq!(store.verify_indexes().expect("consistent"), 1);
}

#[test]
fn an_open_directory_is_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let first = builder(&path).open().expect("first open");
    let message = permanent_backend_message(builder(&path).open());
    assert!(message.contains("in use"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    drop(first);
    builder(&path).open().expect("reopens once the first store is dropped");
}

#[test]
fn garbage_sled_files_give_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("conf"), [0xcd; 50]).expect("write");
    std::fs::write(dir.path().join("db"), [0xab; 100_000]).expect("write");
    let message = permanent_backend_message(builder(dir.path()).open());
    assert!(
        message.contains("not a usable sled database") || message.contains("damaged"),
        "{message}"
    );
}

#[tokio::test]
async fn sessions_survive_a_clean_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let now = Timestamp::now();
    let r = {
        let store = builder(&path).open().expect("open");
        stored(&store, Some("bob"), now, HOUR).await
    };
    let key = r.key;
    let store = builder(&path).open().expect("reopen");
    assert_eq!(store.load(&key, now).await.expect("load"), Some(r));
    assert_eq!(listed(&store, "bob", now).await, [key]);
    assert_eq!(store.verify_indexes().expect("consistent"), 1);
}
