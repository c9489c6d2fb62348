//! Kill a writer with SIGKILL mid-workload, reopen its directory, and check
//! that nothing acknowledged under `FlushPolicy::EveryWrite` was lost and
//! that every record is still indexed (`verify_indexes`).
//!
//! The writer is this test binary itself, re-run with [`WRITER_DIR_ENV`] set
//! so that only [`writer_process`] does anything. It prints one line per
//! acknowledged operation; the parent reads them, kills the child after a
//! number of them, reads whatever the child had printed before it died, and
//! checks the reopened store against exactly those lines.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use session_core::{Bytes, Record, SessionId, SessionStore, StoreKey, Timestamp, Update};
use store_sled::{FlushPolicy, SledStore};

/// Set in the child: the database directory to write into.
const WRITER_DIR_ENV: &str = "STORE_SLED_CRASH_WRITER_DIR";
/// Set in the child: the seed of its workload.
const WRITER_SEED_ENV: &str = "STORE_SLED_CRASH_WRITER_SEED";

/// The fixed clock of the workload: records expire a day after it, so
/// everything written is live when checked.
const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);
const DAY: Duration = Duration::from_secs(86_400);
const OWNERS: u64 = 4;

fn data_for(key: &StoreKey, version: u64) -> Bytes {
    Bytes::from(format!("{}:{version}", key.short()))
}

/// A small xorshift generator: a reproducible workload without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The child: writes forever (until killed), printing each acknowledgement.
/// Does nothing in a normal test run.
#[test]
fn writer_process() {
    let Ok(dir) = std::env::var(WRITER_DIR_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(WRITER_SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = SledStore::builder(&dir)
            .cache_capacity(8 * 1024 * 1024)
            .flush_policy(FlushPolicy::EveryWrite)
            .open()
            .expect("the writer opens the store");
        let mut rng = Rng(seed | 1);
        // key -> (version, expires_at)
        let mut mine: Vec<(StoreKey, u64, Timestamp)> = Vec::new();
        let mut out = std::io::stdout().lock();
        loop {
            let choice = if mine.len() < 8 { 0 } else { rng.next() % 11 };
            let line = match choice {
                0..=3 => {
                    let key = SessionId::generate().expect("random").store_key();
                    let expires_at = NOW + DAY;
                    let owner = Some(format!("user-{}", rng.next() % OWNERS));
                    let record = Record {
                        key,
                        version: 1,
                        data: data_for(&key, 1),
                        created_at: NOW,
                        expires_at,
                        owner,
                    };
                    store.create(record, NOW).await.expect("create");
                    mine.push((key, 1, expires_at));
                    format!("PUT {key} 1 {}", expires_at.as_millis())
                }
                4..=6 => {
                    let i = (rng.next() % mine.len() as u64) as usize;
                    let (key, version, _) = mine[i];
                    let expires_at = NOW + DAY + Duration::from_millis(rng.next() % 1_000_000);
                    let owner = (!rng.next().is_multiple_of(3)).then(|| format!("user-{}", rng.next() % OWNERS));
                    let update = Update {
                        expected_version: version,
                        data: data_for(&key, version + 1),
                        expires_at,
                        owner,
                    };
                    let new = store.update(&key, update, NOW).await.expect("update");
                    mine[i] = (key, new, expires_at);
                    format!("PUT {key} {new} {}", expires_at.as_millis())
                }
                7 | 8 => {
                    let i = (rng.next() % mine.len() as u64) as usize;
                    let (key, version, old) = mine[i];
                    let expires_at = old + Duration::from_millis(rng.next() % 1_000_000);
                    assert!(store.touch(&key, expires_at, NOW).await.expect("touch"));
                    let expires_at = expires_at.max(old);
                    mine[i] = (key, version, expires_at);
                    format!("PUT {key} {version} {}", expires_at.as_millis())
                }
                9 => {
                    // A rotation, acknowledged on its own line, then an
                    // update that gives the moved data its new key's name.
                    let i = (rng.next() % mine.len() as u64) as usize;
                    let (old, _, expires_at) = mine[i];
                    let new = SessionId::generate().expect("random").store_key();
                    store.rotate(&old, &new, NOW).await.expect("rotate");
                    writeln!(out, "ACK ROT {old} {new} {}", expires_at.as_millis()).expect("stdout");
                    out.flush().expect("stdout");
                    let update = Update {
                        expected_version: 1,
                        data: data_for(&new, 2),
                        expires_at,
                        owner: Some(format!("user-{}", rng.next() % OWNERS)),
                    };
                    let version = store.update(&new, update, NOW).await.expect("update");
                    mine[i] = (new, version, expires_at);
                    format!("PUT {new} {version} {}", expires_at.as_millis())
                }
                _ => {
                    let i = (rng.next() % mine.len() as u64) as usize;
                    let (key, _, _) = mine.swap_remove(i);
                    assert!(store.delete(&key, NOW).await.expect("delete"));
                    format!("DEL {key}")
                }
            };
            // Straight to the pipe (not the test harness's capture), one
            // acknowledged operation per line.
            writeln!(out, "ACK {line}").expect("stdout");
            out.flush().expect("stdout");
        }
    });
}

/// What the parent knows about one key from the acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acked {
    Live {
        version: u64,
        expires_at: Timestamp,
        /// Rotated here: the data is that of the key it came from.
        moved: bool,
    },
    Deleted,
}

/// The keys one acknowledgement line speaks of (a rotation speaks of two).
fn parse_ack(line: &str) -> Vec<(StoreKey, Acked)> {
    parse_ack_words(line).unwrap_or_default()
}

fn parse_ack_words(line: &str) -> Option<Vec<(StoreKey, Acked)>> {
    let mut words = line.strip_prefix("ACK ")?.split(' ');
    match words.next()? {
        "PUT" => {
            let key = words.next()?.parse().ok()?;
            let version = words.next()?.parse().ok()?;
            let expires_at = Timestamp::from_millis(words.next()?.parse().ok()?);
            let moved = false;
            Some(vec![(
                key,
                Acked::Live {
                    version,
                    expires_at,
                    moved,
                },
            )])
        }
        "ROT" => {
            let old = words.next()?.parse().ok()?;
            let new = words.next()?.parse().ok()?;
            let expires_at = Timestamp::from_millis(words.next()?.parse().ok()?);
            let moved = Acked::Live {
                version: 1,
                expires_at,
                moved: true,
            };
            Some(vec![(old, Acked::Deleted), (new, moved)])
        }
        "DEL" => Some(vec![(words.next()?.parse().ok()?, Acked::Deleted)]),
        _ => None,
    }
}

/// Runs one writer, kills it after `kill_after` acknowledgements, and returns
/// every acknowledgement it printed, in order.
fn run_and_kill(dir: &std::path::Path, seed: u64, kill_after: usize) -> Vec<(StoreKey, Acked)> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args(["--exact", "writer_process", "--nocapture", "--test-threads=1"])
        .env(WRITER_DIR_ENV, dir)
        .env(WRITER_SEED_ENV, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut acks = Vec::new();
    while acks.len() < kill_after {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the writer ended after {} acks (see its stderr)", acks.len()))
            .expect("read the writer's stdout");
        acks.extend(parse_ack(&line));
    }
    // Child::kill is SIGKILL on Unix: no destructor, no flush, no exit code.
    child.kill().expect("SIGKILL the writer");
    // Lines the child printed before dying are acknowledgements too.
    for line in lines {
        acks.extend(parse_ack(&line.expect("read the writer's stdout")));
    }
    let status = child.wait().expect("reap the writer");
    assert!(!status.success(), "the writer was killed, not finished");
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write_and_leaves_indexes_consistent() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("sessions");
    // Every round reopens what the previous rounds left: recovery of a
    // recovered database is tested too.
    let mut expected: HashMap<StoreKey, Acked> = HashMap::new();
    for (round, kill_after) in [40usize, 150, 90, 300].into_iter().enumerate() {
        let acks = run_and_kill(&path, round as u64 * 7919 + 11, kill_after);
        let mut this_round = HashMap::new();
        for (key, acked) in acks {
            this_round.insert(key, acked);
        }

        let store = SledStore::builder(&path)
            .cache_capacity(8 * 1024 * 1024)
            .open()
            .unwrap_or_else(|e| panic!("round {round}: the killed writer's directory does not reopen: {e}"));
        let records = store
            .verify_indexes()
            .unwrap_or_else(|e| panic!("round {round}: indexes disagree with records after the kill: {e}"));

        // At most one operation can be in flight when the kill lands (the
        // writer is sequential): it may have been applied without its line.
        let mut in_flight = 0;
        for (key, acked) in &this_round {
            let found = store.load(key, NOW).await.expect("load after recovery");
            let exact = match (acked, &found) {
                (Acked::Deleted, None) => true,
                (
                    Acked::Live {
                        version,
                        expires_at,
                        moved,
                    },
                    Some(r),
                ) => {
                    // Moved data keeps the name of the key it came from
                    // until the update that follows every rotation.
                    if !(*moved && r.version == 1) {
                        assert_eq!(
                            r.data,
                            data_for(key, r.version),
                            "round {round}: data does not match its version"
                        );
                    }
                    r.version == *version && r.expires_at == *expires_at
                }
                _ => false,
            };
            if !exact {
                in_flight += 1;
                match (acked, &found) {
                    // An update or touch after the last acknowledgement.
                    (Acked::Live { version, .. }, Some(r)) => assert!(
                        r.version == *version || r.version == version + 1,
                        "round {round}: {key:?} acknowledged at version {version}, found {}",
                        r.version
                    ),
                    // A delete after the last acknowledgement.
                    (Acked::Live { .. }, None) => {}
                    (Acked::Deleted, Some(_)) => panic!("round {round}: acknowledged delete of {key:?} was lost"),
                    (Acked::Deleted, None) => unreachable!("an exact match"),
                }
            }
        }
        assert!(
            in_flight <= 1,
            "round {round}: {in_flight} sessions differ from their last acknowledgement"
        );
        expected.retain(|k, _| !this_round.contains_key(k));
        // Earlier rounds' sessions are untouched by later writers.
        for (key, acked) in &expected {
            let found = store.load(key, NOW).await.expect("load after recovery");
            match acked {
                Acked::Live { version, .. } => {
                    assert_eq!(
                        found.map(|r| r.version),
                        Some(*version),
                        "round {round}: an earlier session changed"
                    )
                }
                Acked::Deleted => assert!(found.is_none()),
            }
        }
        // Keep the recovered state as the expectation for later rounds.
        for key in this_round.keys() {
            let state = match store.load(key, NOW).await.expect("load") {
                Some(r) => Acked::Live {
                    version: r.version,
                    expires_at: r.expires_at,
                    moved: false,
                },
                None => Acked::Deleted,
            };
            expected.insert(*key, state);
        }
        let live = expected.values().filter(|a| matches!(a, Acked::Live { .. })).count() as u64;
        assert!(
            records >= live,
            "round {round}: {records} records for {live} live sessions"
        );

        // The recovered store works: the owner index answers for every owner.
        let mut listed = 0;
        for owner in 0..OWNERS {
            listed += store
                .list_by_owner(&format!("user-{owner}"), NOW)
                .await
                .expect("list")
                .len();
        }
        assert!(listed as u64 <= records);
        drop(store);
    }
}
