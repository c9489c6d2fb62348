//! Settings and directories that cannot hold a store are refused when it is
//! opened, as `Error::Config` naming the setting, and nothing is written.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use session_core::Error;
use store_sled::SledStore;

/// What is wrong with `setting`, from an open that must refuse it.
fn refused(result: Result<SledStore, Error>, setting: &str) -> String {
    match result {
        Err(Error::Config(e)) if e.setting() == setting => e.problem().to_owned(),
        Err(other) => panic!("expected the setting {setting} refused, got {other:?}"),
        Ok(store) => panic!("expected {setting} refused, the store opened: {store:?}"),
    }
}

/// The names in `dir`: a refused open must leave them as they were.
fn names_in(dir: &Path) -> Vec<OsString> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    names
}

/// A plain sled database (not store-sled's) in `dir`, holding `key` =
/// `value` in its default tree.
fn plain_sled_database(dir: &Path, key: &[u8], value: &[u8]) {
    let db = sled::Config::new().path(dir).open().expect("plain sled");
    db.insert(key, value).expect("insert");
    db.flush().expect("flush");
}

#[test]
fn a_file_is_not_a_database_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    let problem = refused(SledStore::open(&file), "path");
    assert!(problem.contains("not a directory"), "{problem}");
    assert!(problem.contains(&file.display().to_string()), "{problem}");
    assert_eq!(std::fs::read(&file).expect("read"), b"x");
}

#[test]
fn a_directory_of_other_files_is_not_touched() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), b"mine").expect("write");
    let problem = refused(SledStore::open(dir.path()), "path");
    assert!(problem.contains("not a sled database"), "{problem}");
    assert_eq!(
        names_in(dir.path()),
        ["notes.txt"],
        "opening must not write into a foreign directory"
    );
}

#[test]
fn another_applications_sled_database_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    plain_sled_database(dir.path(), b"someone", b"else's data");
    let problem = refused(SledStore::open(dir.path()), "path");
    assert!(problem.contains("not a store-sled one"), "{problem}");
}

#[test]
fn a_database_of_an_unknown_store_sled_format_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    plain_sled_database(dir.path(), b"store-sled/format", &[9]);
    let problem = refused(SledStore::open(dir.path()), "path");
    assert!(problem.contains("unknown store-sled format"), "{problem}");
}

/// sled panics on a cache under 256 bytes; the store reported that as
/// damaged database files.
#[test]
fn a_cache_under_sleds_minimum_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    for bytes in [0, 255] {
        let problem = refused(SledStore::builder(&path).cache_capacity(bytes).open(), "cache_capacity");
        assert!(problem.contains("256"), "{problem}");
        assert!(!path.exists(), "a refused open created the directory");
    }
    SledStore::builder(&path)
        .cache_capacity(256)
        .open()
        .expect("sled's minimum is accepted");
}

/// `Instant::now() + Duration::MAX` overflows: the store panicked.
#[test]
fn a_lock_wait_too_long_to_count_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let problem = refused(SledStore::builder(&path).lock_wait(Duration::MAX).open(), "lock_wait");
    assert!(problem.contains("too long"), "{problem}");
    assert!(!path.exists(), "a refused open created the directory");
}

#[test]
fn a_sweeper_needs_a_runtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let builder = SledStore::builder(&path).sweeper(Duration::from_secs(1), 10);
    let problem = refused(builder.open(), "sweeper");
    assert!(problem.contains("tokio runtime"), "{problem}");
    assert!(!path.exists(), "a refused open created the directory");
}
