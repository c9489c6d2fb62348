//! Kill a writer with SIGKILL mid-workload, reopen its directory, and check
//! that nothing acknowledged under `FlushPolicy::EveryWrite` was lost and
//! that every record is still indexed (`verify_indexes`).
//!
//! The writer is this test binary itself, re-run with [`WRITER_DIR_ENV`] set
//! so that only [`writer_process`] does anything. It prints one line per
//! acknowledged operation; the parent reads them, kills the child after a
//! number of them, reads whatever the child had printed before it died, and
//! checks the reopened store against exactly those lines.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use session_core::{Bytes, Overwrite, Record, SessionId, SessionStore, StoreKey, Timestamp, Update};
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
/// The page cache of the writer and of every reopen.
const CACHE: u64 = 8 * 1024 * 1024;

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

/// An owner as written on an acknowledgement line (`-` for none; owners
/// here are `user-N`).
fn owner_word(owner: Option<&str>) -> &str {
    owner.unwrap_or("-")
}

fn random_owner(rng: &mut Rng) -> String {
    format!("user-{}", rng.next() % OWNERS)
}

/// Prints one acknowledgement line straight to the pipe (not the test
/// harness's capture), at once: the parent reads it as the child goes.
fn ack(out: &mut impl Write, line: std::fmt::Arguments<'_>) {
    writeln!(out, "ACK {line}").expect("stdout");
    out.flush().expect("stdout");
}

/// Opens the killed writer's directory again, as the writer did but for its
/// default flush policy.
fn reopen(path: &std::path::Path) -> Result<SledStore, session_core::Error> {
    SledStore::builder(path).cache_capacity(CACHE).open()
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
            .cache_capacity(CACHE)
            .flush_policy(FlushPolicy::EveryWrite)
            .open()
            .expect("the writer opens the store");
        let mut rng = Rng(seed | 1);
        // key -> (version, expires_at, owner)
        let mut mine: Vec<(StoreKey, u64, Timestamp, Option<String>)> = Vec::new();
        let mut out = std::io::stdout().lock();
        loop {
            let choice = if mine.len() < 8 { 0 } else { rng.next() % 12 };
            let i = (rng.next() % mine.len().max(1) as u64) as usize;
            let (key, version, expires_at, owner) = match choice {
                0..=3 => {
                    let key = SessionId::generate().expect("random").store_key();
                    let expires_at = NOW + DAY;
                    let owner = (!rng.next().is_multiple_of(4)).then(|| random_owner(&mut rng));
                    let record = Record {
                        key,
                        version: 1,
                        data: data_for(&key, 1),
                        created_at: NOW,
                        expires_at,
                        owner: owner.clone(),
                    };
                    store.create(record, NOW).await.expect("create");
                    mine.push((key, 1, expires_at, owner.clone()));
                    (key, 1, expires_at, owner)
                }
                4..=6 => {
                    let (key, version, _, _) = mine[i];
                    let expires_at = NOW + DAY + Duration::from_millis(rng.next() % 1_000_000);
                    let owner = (!rng.next().is_multiple_of(3)).then(|| random_owner(&mut rng));
                    let data = data_for(&key, version + 1);
                    let new = if choice == 6 {
                        let write = Overwrite {
                            data,
                            expires_at,
                            owner: owner.clone(),
                        };
                        store.overwrite(&key, write, NOW).await.expect("overwrite")
                    } else {
                        let update = Update {
                            expected_version: version,
                            data,
                            expires_at,
                            owner: owner.clone(),
                        };
                        store.update(&key, update, NOW).await.expect("update")
                    };
                    mine[i] = (key, new, expires_at, owner.clone());
                    (key, new, expires_at, owner)
                }
                7 | 8 => {
                    let (key, version, old, ref owner) = mine[i];
                    let owner = owner.clone();
                    let expires_at = old + Duration::from_millis(rng.next() % 1_000_000);
                    assert!(store.touch(&key, expires_at, NOW).await.expect("touch"));
                    let expires_at = expires_at.max(old);
                    mine[i] = (key, version, expires_at, owner.clone());
                    (key, version, expires_at, owner)
                }
                9 | 10 => {
                    // A rotation (a login half the time: it sets the owner),
                    // acknowledged on its own line, then an update that gives
                    // the moved data its new key's name.
                    let (old, version, expires_at, ref old_owner) = mine[i];
                    let set_owner = rng.next().is_multiple_of(2).then(|| random_owner(&mut rng));
                    let owner = set_owner.clone().or_else(|| old_owner.clone());
                    let new = SessionId::generate().expect("random").store_key();
                    let moved = store
                        .rotate(&old, &new, set_owner.as_deref(), NOW)
                        .await
                        .expect("rotate");
                    let want = Record {
                        key: new,
                        version: 1,
                        data: data_for(&old, version),
                        created_at: NOW,
                        expires_at,
                        owner: owner.clone(),
                    };
                    assert_eq!(moved, want, "rotate hands back the record it moved");
                    let owner_text = owner_word(owner.as_deref());
                    ack(
                        &mut out,
                        format_args!("ROT {old} {new} {} {owner_text}", expires_at.as_millis()),
                    );
                    let update = Update {
                        expected_version: 1,
                        data: data_for(&new, 2),
                        expires_at,
                        owner: owner.clone(),
                    };
                    let version = store.update(&new, update, NOW).await.expect("update");
                    mine[i] = (new, version, expires_at, owner.clone());
                    (new, version, expires_at, owner)
                }
                _ => {
                    let (key, _, _, _) = mine.swap_remove(i);
                    assert!(store.delete(&key, NOW).await.expect("delete"));
                    ack(&mut out, format_args!("DEL {key}"));
                    continue;
                }
            };
            let owner_text = owner_word(owner.as_deref());
            ack(
                &mut out,
                format_args!("PUT {key} {version} {} {owner_text}", expires_at.as_millis()),
            );
        }
    });
}

/// What the parent knows about one key from the acknowledgements.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Acked {
    Live {
        version: u64,
        expires_at: Timestamp,
        owner: Option<String>,
        /// Rotated here: the data is that of the key it came from.
        moved: bool,
    },
    /// Rotated away: a rotation mark, in force at `NOW`.
    Rotated,
    Deleted,
}

/// The keys one acknowledgement line speaks of (a rotation speaks of two).
fn parse_ack(line: &str) -> Vec<(StoreKey, Acked)> {
    parse_ack_words(line).unwrap_or_default()
}

fn parse_owner(word: &str) -> Option<String> {
    (word != "-").then(|| word.to_owned())
}

fn parse_ack_words(line: &str) -> Option<Vec<(StoreKey, Acked)>> {
    let mut words = line.strip_prefix("ACK ")?.split(' ');
    match words.next()? {
        "PUT" => {
            let key = words.next()?.parse().ok()?;
            let version = words.next()?.parse().ok()?;
            let expires_at = Timestamp::from_millis(words.next()?.parse().ok()?);
            let owner = parse_owner(words.next()?);
            let moved = false;
            Some(vec![(
                key,
                Acked::Live {
                    version,
                    expires_at,
                    owner,
                    moved,
                },
            )])
        }
        "ROT" => {
            let old = words.next()?.parse().ok()?;
            let new = words.next()?.parse().ok()?;
            let expires_at = Timestamp::from_millis(words.next()?.parse().ok()?);
            let owner = parse_owner(words.next()?);
            let moved = Acked::Live {
                version: 1,
                expires_at,
                owner,
                moved: true,
            };
            Some(vec![(old, Acked::Rotated), (new, moved)])
        }
        "DEL" => Some(vec![(words.next()?.parse().ok()?, Acked::Deleted)]),
        _ => None,
    }
}

/// What the reopened store holds under `key`, in the terms of [`Acked`].
async fn recovered(store: &SledStore, key: &StoreKey) -> (Option<Record>, Acked) {
    let found = store.load(key, NOW).await.expect("load after recovery");
    let state = match &found {
        Some(r) => Acked::Live {
            version: r.version,
            expires_at: r.expires_at,
            owner: r.owner.clone(),
            moved: false,
        },
        None if store.was_rotated(key, NOW).await.expect("was_rotated after recovery") => Acked::Rotated,
        None => Acked::Deleted,
    };
    (found, state)
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

        let store = reopen(&path)
            .unwrap_or_else(|e| panic!("round {round}: the killed writer's directory does not reopen: {e}"));
        let records = store
            .verify_indexes()
            .unwrap_or_else(|e| panic!("round {round}: indexes disagree with records after the kill: {e}"));

        // At most one operation can be in flight when the kill lands (the
        // writer is sequential): it may have been applied without its line.
        let mut in_flight = 0;
        for (key, acked) in &this_round {
            let (found, state) = recovered(&store, key).await;
            if let (Acked::Live { moved, .. }, Some(r)) = (acked, &found) {
                // Moved data keeps the name of the key it came from until the
                // update that follows every rotation.
                if !(*moved && r.version == 1) {
                    assert_eq!(
                        r.data,
                        data_for(key, r.version),
                        "round {round}: data does not match its version"
                    );
                }
            }
            let exact = match (acked, &state) {
                (
                    Acked::Live {
                        version,
                        expires_at,
                        owner,
                        ..
                    },
                    Acked::Live {
                        version: v,
                        expires_at: e,
                        owner: o,
                        ..
                    },
                ) => (version, expires_at, owner) == (v, e, o),
                (acked, state) => acked == state,
            };
            if !exact {
                in_flight += 1;
                match (acked, &state) {
                    // An update or overwrite after the last acknowledgement
                    // (any owner), or a touch (the same owner).
                    (
                        Acked::Live { version, owner, .. },
                        Acked::Live {
                            version: v, owner: o, ..
                        },
                    ) => assert!(
                        *v == version + 1 || (v == version && o == owner),
                        "round {round}: {key:?} acknowledged at version {version} of {owner:?}, found {v} of {o:?}"
                    ),
                    // A delete or a rotation after the last acknowledgement.
                    (Acked::Live { .. }, Acked::Deleted | Acked::Rotated) => {}
                    (Acked::Rotated, _) => {
                        panic!("round {round}: acknowledged rotation of {key:?} left {state:?}, not a mark")
                    }
                    (Acked::Deleted, _) => panic!("round {round}: acknowledged delete of {key:?} left {state:?}"),
                }
            }
        }
        assert!(
            in_flight <= 1,
            "round {round}: {in_flight} sessions differ from their last acknowledgement"
        );
        expected.retain(|k, _| !this_round.contains_key(k));
        // Earlier rounds' sessions and marks are untouched by later writers.
        for (key, acked) in &expected {
            let (_, state) = recovered(&store, key).await;
            assert_eq!(&state, acked, "round {round}: an earlier session changed");
        }
        // Keep the recovered state as the expectation for later rounds.
        for key in this_round.keys() {
            let (_, state) = recovered(&store, key).await;
            expected.insert(*key, state);
        }
        let live = expected.values().filter(|a| matches!(a, Acked::Live { .. })).count() as u64;
        assert!(
            records >= live,
            "round {round}: {records} records for {live} live sessions"
        );

        // The owner index lists every live session of each owner (it may
        // also list the copy an interrupted rotation left under a key nobody
        // was given), and only live sessions of that owner.
        for owner in (0..OWNERS).map(|o| format!("user-{o}")) {
            let listed: HashSet<StoreKey> = store
                .list_by_owner(&owner, NOW)
                .await
                .expect("list")
                .into_iter()
                .map(|s| s.key)
                .collect();
            for (key, state) in &expected {
                if let Acked::Live { owner: Some(o), .. } = state
                    && *o == owner
                {
                    assert!(
                        listed.contains(key),
                        "round {round}: {owner} lost a session from its list"
                    );
                }
            }
            for key in &listed {
                let r = store
                    .load(key, NOW)
                    .await
                    .expect("load")
                    .expect("a listed session is live");
                assert_eq!(
                    r.owner.as_deref(),
                    Some(owner.as_str()),
                    "round {round}: listed for another owner"
                );
            }
        }
        drop(store);
    }

    // Whatever the kills left behind (leftover entries, copies of
    // interrupted rotations, marks) is reclaimed by the sweep and the owner
    // operations, as the crate docs say.
    let store = reopen(&path).expect("reopen for the final sweep");
    let sessions = store.verify_indexes().expect("consistent");
    let later = NOW + 365 * DAY;
    assert_eq!(
        store.delete_expired(later, usize::MAX).await.expect("sweep"),
        sessions,
        "the sweep removes every session once expired, and counts no mark"
    );
    for owner in 0..OWNERS {
        assert_eq!(
            store
                .delete_by_owner(&format!("user-{owner}"), later)
                .await
                .expect("delete by owner"),
            0
        );
    }
    assert!(
        store.is_empty(),
        "{} records or marks left after the sweep",
        store.len()
    );
    assert_eq!(store.leftover_index_entries().expect("scan"), 0);
}
