//! Damaged records and wrong directories give clear errors, never a panic
//! and never damage to someone else's files.

use std::time::Duration;

use session_core::{Bytes, Error, Overwrite, Record, SessionId, SessionStore, StoreKey, Timestamp, Update};
use store_sled::{FlushPolicy, SledStore};

const HOUR: Duration = Duration::from_secs(3600);

fn key() -> StoreKey {
    SessionId::generate().expect("OS random source").store_key()
}

fn record(now: Timestamp, owner: Option<&str>) -> Record {
    Record {
        key: key(),
        version: 1,
        data: Bytes::from_static(b"\x01\x00"),
        created_at: now,
        expires_at: now + HOUR,
        owner: owner.map(str::to_owned),
    }
}

fn open(path: &std::path::Path) -> Result<SledStore, Error> {
    SledStore::builder(path)
        .cache_capacity(4 * 1024 * 1024)
        .flush_policy(FlushPolicy::Periodic(Duration::from_millis(100)))
        .open()
}

fn backend_message(result: Result<SledStore, Error>) -> String {
    match result {
        Err(e @ Error::Backend(_)) => e.to_string(),
        Err(other) => panic!("expected a backend error, got {other:?}"),
        Ok(store) => panic!("expected an error, the store opened: {store:?}"),
    }
}

#[tokio::test]
async fn corrupted_record_bytes_give_corrupt_errors_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("db")).expect("open");
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
        let r = record(now, Some("alice"));
        let key = r.key;
        store.create(r, now).await.expect("create");
        store.overwrite_record_bytes_for_tests(&key, bytes).expect("raw write");

        assert!(
            matches!(store.load(&key, now).await, Err(Error::Corrupt(_))),
            "load of {bytes:?}"
        );
        let update = Update {
            expected_version: 1,
            data: Bytes::new(),
            expires_at: now + HOUR,
            owner: None,
        };
        assert!(matches!(store.update(&key, update, now).await, Err(Error::Corrupt(_))));
        assert!(matches!(
            store.touch(&key, now + HOUR, now).await,
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            store.rotate(&key, &self::key(), None, now).await,
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
        assert_eq!(store.list_by_owner("alice", now).await.expect("list"), []);
        // The sweeper skips what it cannot read instead of stalling on it.
        store.create(record(now, None), now).await.expect("create");
        assert_eq!(store.delete_expired(now + 2 * HOUR, 100).await.expect("sweep"), 1);
        assert!(matches!(store.load(&key, now).await, Err(Error::Corrupt(_))));
        // Ending a session needs no decoding: a damaged one can always go.
        assert!(
            !store.delete(&key, now).await.expect("delete"),
            "a damaged record counts as not live"
        );
        assert_eq!(store.load(&key, now).await.expect("load"), None);
        // Its leftover index entries are dropped by the owner and expiry paths.
        assert_eq!(store.list_by_owner("alice", now).await.expect("list"), []);
        assert_eq!(store.delete_by_owner("alice", now).await.expect("delete by owner"), 0);
        assert_eq!(store.delete_expired(now + 2 * HOUR, 100).await.expect("sweep"), 0);
        assert_eq!(store.verify_indexes().expect("consistent again"), 0);
    }
    assert!(
        matches!(store.load(&key(), now).await, Ok(None)),
        "other keys still read fine"
    );
}

#[tokio::test]
async fn ending_all_sessions_of_an_owner_removes_damaged_ones_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("db")).expect("open");
    let now = Timestamp::now();
    let damaged = record(now, Some("carol"));
    let fine = record(now, Some("carol"));
    store.create(damaged.clone(), now).await.expect("create");
    store.create(fine.clone(), now).await.expect("create");
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
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("db")).expect("open");
    let now = Timestamp::now();
    let sessions: Vec<Record> = (0..3).map(|_| record(now, Some("erin"))).collect();
    for r in &sessions {
        store.create(r.clone(), now).await.expect("create");
    }
    store
        .overwrite_record_bytes_for_tests(&sessions[1].key, b"\x02torn")
        .expect("raw write");
    let mut listed: Vec<StoreKey> = store
        .list_by_owner("erin", now)
        .await
        .expect("a damaged record must not fail the listing")
        .into_iter()
        .map(|s| s.key)
        .collect();
    listed.sort();
    let mut healthy = vec![sessions[0].key, sessions[2].key];
    healthy.sort();
    assert_eq!(listed, healthy, "the readable sessions, and only those");
    // A read leaves the damaged record where it is, for `load` to report...
    assert!(matches!(
        store.load(&sessions[1].key, now).await,
        Err(Error::Corrupt(_))
    ));
    // ...and ending the owner's sessions ends it too.
    assert_eq!(store.delete_by_owner("erin", now).await.expect("delete by owner"), 2);
    assert_eq!(store.list_by_owner("erin", now).await.expect("list"), []);
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
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("db")).expect("open");
    let now = Timestamp::now();
    let r = record(now, None);
    store.create(r.clone(), now).await.expect("create");
    store
        .overwrite_record_bytes_for_tests(&r.key, &record_bytes(&r, u64::MAX))
        .expect("raw write");
    let at_max = Record {
        version: u64::MAX,
        ..r.clone()
    };
    assert_eq!(store.load(&r.key, now).await.expect("load"), Some(at_max.clone()));

    let update = Update {
        expected_version: u64::MAX,
        data: Bytes::from_static(b"next"),
        expires_at: now + 2 * HOUR,
        owner: Some("frank".into()),
    };
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
    assert_eq!(store.list_by_owner("frank", now).await.expect("list"), []);
    assert_eq!(store.leftover_index_entries().expect("scan"), 0);
    assert_eq!(store.verify_indexes().expect("consistent"), 1);
}

#[test]
fn an_open_directory_is_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let first = open(&path).expect("first open");
    let message = backend_message(open(&path));
    assert!(message.contains("in use"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    drop(first);
    open(&path).expect("reopens once the first store is dropped");
}

#[test]
fn a_directory_of_other_files_is_not_touched() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), b"mine").expect("write");
    let message = backend_message(open(dir.path()));
    assert!(message.contains("not a sled database"), "{message}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["notes.txt"], "opening must not write into a foreign directory");
}

#[test]
fn a_file_is_not_a_database_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    let message = backend_message(open(&file));
    assert!(message.contains("not a directory"), "{message}");
}

#[test]
fn garbage_sled_files_give_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("conf"), [0xcd; 50]).expect("write");
    std::fs::write(dir.path().join("db"), [0xab; 100_000]).expect("write");
    let message = backend_message(open(dir.path()));
    assert!(
        message.contains("not a usable sled database") || message.contains("damaged"),
        "{message}"
    );
}

#[test]
fn another_applications_sled_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = sled::Config::new().path(dir.path()).open().expect("plain sled");
        db.insert(b"someone", b"else's data").expect("insert");
        db.flush().expect("flush");
    }
    let message = backend_message(open(dir.path()));
    assert!(message.contains("not a store-sled one"), "{message}");
}

#[tokio::test]
async fn sessions_survive_a_clean_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let now = Timestamp::now();
    let r = record(now, Some("bob"));
    let key = r.key;
    {
        let store = open(&path).expect("open");
        store.create(r.clone(), now).await.expect("create");
    }
    let store = open(&path).expect("reopen");
    assert_eq!(store.load(&key, now).await.expect("load"), Some(r));
    assert_eq!(store.list_by_owner("bob", now).await.expect("list").len(), 1);
    assert_eq!(store.verify_indexes().expect("consistent"), 1);
}
