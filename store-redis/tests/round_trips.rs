//! Every operation costs one round trip: for each operation the server
//! executes exactly one command sent by a client (FCALL, or GET for
//! `load`, GETRANGE for `was_rotated` and SET for a `create` without an
//! owner), and nothing else. The one exception, checked here too: a create
//! without owner over an expired record, a mark or a receipt is that SET,
//! then the create function.
//!
//! Two witnesses, both from the server: `INFO commandstats` (its FCALL
//! counter grows by one) and `MONITOR`, which lists every command a client
//! sent in execution order, marking the ones a script ran (`[0 lua]`), so
//! the commands of one operation are exactly those between two markers.
//! Commandstats alone cannot tell a client's GET from a script's.
//!
//! Runs on a private `redis-server`, so no other test's traffic is counted.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use session_core::{Bytes, Overwrite, Record, SessionStore, StoreKey, Timestamp, Update};
use store_redis::RedisStore;
use support::PrivateServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

use conformance::fixtures::HOUR;

/// The server's view of the commands clients send.
struct Witness {
    stats: MultiplexedConnection,
    monitor: Lines<BufReader<OwnedReadHalf>>,
    // Keeps the MONITOR connection open.
    _monitor_writer: tokio::net::tcp::OwnedWriteHalf,
    marker: u64,
}

impl Witness {
    async fn new(server: &PrivateServer) -> Self {
        let stats = support::raw_connection(&server.url()).await;
        let stream = TcpStream::connect(server.url().trim_start_matches("redis://"))
            .await
            .expect("the private server accepts connections");
        let (read, mut write) = stream.into_split();
        write.write_all(b"MONITOR\r\n").await.expect("send MONITOR");
        let mut monitor = BufReader::new(read).lines();
        let ok = monitor.next_line().await.expect("MONITOR reply");
        assert_eq!(ok.as_deref(), Some("+OK"));
        Self {
            stats,
            monitor,
            _monitor_writer: write,
            marker: 0,
        }
    }

    async fn echo(&mut self, text: &str) {
        let _: String = redis::cmd("ECHO")
            .arg(text)
            .query_async(&mut self.stats)
            .await
            .expect("ECHO");
    }

    /// The FCALL calls counted by `INFO commandstats`.
    async fn fcall_calls(&mut self) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut self.stats)
            .await
            .expect("INFO works");
        info.lines()
            .find_map(|line| line.strip_prefix("cmdstat_fcall:"))
            .and_then(|stats| stats.split(',').find_map(|kv| kv.strip_prefix("calls=")))
            .map_or(0, |calls| calls.parse().expect("calls is a number"))
    }

    /// Runs `op`; returns the commands clients sent meanwhile (name → count,
    /// commands run by scripts excluded), after checking commandstats agrees
    /// on the FCALL count.
    async fn commands_of(&mut self, op: impl Future<Output = ()>) -> BTreeMap<String, u64> {
        self.marker += 1;
        let (begin, end) = (format!("begin-{}", self.marker), format!("end-{}", self.marker));
        let fcall_before = self.fcall_calls().await;
        self.echo(&begin).await;
        op.await;
        self.echo(&end).await;
        let fcall_after = self.fcall_calls().await;

        let mut commands = BTreeMap::new();
        let mut inside = false;
        let read = async {
            while let Some(line) = self.monitor.next_line().await.expect("MONITOR stream") {
                // +<time> [<db> <client address or "lua">] "NAME" "arg"...
                let Some((source, command)) = line.split_once("] ") else {
                    continue;
                };
                if command == format!("\"ECHO\" \"{begin}\"") {
                    inside = true;
                } else if command == format!("\"ECHO\" \"{end}\"") {
                    return;
                } else if inside && !source.ends_with(" lua") {
                    let name = command.split('"').nth(1).unwrap_or_default().to_lowercase();
                    *commands.entry(name).or_insert(0) += 1;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("MONITOR shows the end marker");
        assert_eq!(
            commands.get("fcall").copied().unwrap_or(0),
            fcall_after - fcall_before,
            "MONITOR and INFO commandstats disagree"
        );
        commands
    }
}

fn record(key: StoreKey, now: Timestamp, owner: Option<&str>) -> Record {
    Record {
        key,
        version: 1,
        data: Bytes::from_static(b"\x01payload"),
        created_at: now,
        expires_at: now + HOUR,
        owner: owner.map(str::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_exactly_one_fcall() {
    let Some(server) = PrivateServer::start() else { return };
    let store = RedisStore::builder(server.url())
        .connect()
        .await
        .expect("the private server is up");
    let mut witness = Witness::new(&server).await;
    let now = Timestamp::now();
    let (a, b, c, logged_in) = (
        conformance::fresh_key(),
        conformance::fresh_key(),
        conformance::fresh_key(),
        conformance::fresh_key(),
    );

    // Load the library once: the first call is FCALL, "Function not found",
    // FUNCTION LOAD, FCALL. From then on the server has it.
    let warm = conformance::fresh_key();
    store
        .create(record(warm, now, Some("warm")), now)
        .await
        .expect("create");
    store.load(&warm, now).await.expect("load");
    store
        .update(
            &warm,
            Update {
                expected_version: 1,
                data: Bytes::new(),
                expires_at: now + HOUR,
                owner: Some("warm".into()),
            },
            now,
        )
        .await
        .expect("update");
    store.touch(&warm, now + HOUR * 2, now).await.expect("touch");
    let warm2 = conformance::fresh_key();
    store.rotate(&warm, &warm2, None, now).await.expect("rotate");
    store.was_rotated(&warm, now).await.expect("was_rotated");
    store.list_by_owner("warm", now).await.expect("list");
    store.delete(&warm2, now).await.expect("delete");
    store.delete_by_owner("warm", now).await.expect("delete_by_owner");

    let check = |name: &str, delta: BTreeMap<String, u64>| {
        assert_eq!(
            delta,
            BTreeMap::from([("fcall".to_owned(), 1)]),
            "{name} must be one FCALL and nothing else"
        );
    };

    let d = witness
        .commands_of(async {
            store.create(record(a, now, Some("alice")), now).await.expect("create");
        })
        .await;
    check("create", d);

    // Without an owner and on a fresh key: one SET NX, no script.
    let d = witness
        .commands_of(async {
            store.create(record(b, now, None), now).await.expect("create");
        })
        .await;
    assert_eq!(
        d,
        BTreeMap::from([("set".to_owned(), 1)]),
        "a create without owner must be one SET and nothing else"
    );

    // `load` is a plain GET: one command, atomic by itself, no script.
    let d = witness
        .commands_of(async {
            assert!(store.load(&a, now).await.expect("load").is_some());
        })
        .await;
    assert_eq!(
        d,
        BTreeMap::from([("get".to_owned(), 1)]),
        "load must be one GET and nothing else"
    );

    let d = witness
        .commands_of(async {
            let update = Update {
                expected_version: 1,
                data: Bytes::from_static(b"\x01new"),
                expires_at: now + HOUR,
                owner: Some("bob".into()),
            };
            assert_eq!(store.update(&a, update, now).await.expect("update"), 2);
        })
        .await;
    check("update", d);

    let d = witness
        .commands_of(async {
            let write = Overwrite {
                data: Bytes::from_static(b"\x01blind"),
                expires_at: now + HOUR,
                owner: Some("bob".into()),
            };
            assert_eq!(store.overwrite(&a, write, now).await.expect("overwrite"), 3);
        })
        .await;
    check("overwrite", d);

    let d = witness
        .commands_of(async {
            assert!(store.touch(&a, now + HOUR * 3, now).await.expect("touch"));
        })
        .await;
    check("touch", d);

    let d = witness
        .commands_of(async {
            store.rotate(&a, &c, None, now).await.expect("rotate");
        })
        .await;
    check("rotate", d);

    // A login: the owner changes in the same step, two indexes change.
    let d = witness
        .commands_of(async {
            let moved = store.rotate(&c, &logged_in, Some("carl"), now).await.expect("rotate");
            assert_eq!(moved.owner.as_deref(), Some("carl"));
        })
        .await;
    check("rotate with set_owner", d);

    // was_rotated is a plain GETRANGE of the header.
    let d = witness
        .commands_of(async {
            assert!(store.was_rotated(&c, now).await.expect("was_rotated"));
        })
        .await;
    assert_eq!(
        d,
        BTreeMap::from([("getrange".to_owned(), 1)]),
        "was_rotated must be one GETRANGE and nothing else"
    );

    let d = witness
        .commands_of(async {
            assert_eq!(store.list_by_owner("carl", now).await.expect("list").len(), 1);
        })
        .await;
    check("list_by_owner", d);

    let d = witness
        .commands_of(async {
            assert!(store.delete(&b, now).await.expect("delete"));
        })
        .await;
    check("delete", d);

    let d = witness
        .commands_of(async {
            assert_eq!(store.delete_by_owner("carl", now).await.expect("delete_by_owner"), 1);
        })
        .await;
    check("delete_by_owner", d);

    // `c` holds a rotation mark: the SET NX finds it, and the function
    // replaces it. The one path of a create without owner that takes two
    // round trips; a fresh id never takes it.
    let d = witness
        .commands_of(async {
            assert!(store.create(record(c, now, None), now).await.is_ok());
        })
        .await;
    assert_eq!(
        d,
        BTreeMap::from([("set".to_owned(), 1), ("fcall".to_owned(), 1)]),
        "a create over a rotation mark is SET NX, then the function"
    );
    // Errors cost one round trip too.
    let d = witness
        .commands_of(async {
            let err = store.create(record(c, now, None), now).await;
            assert!(matches!(err, Err(session_core::Error::AlreadyExists)), "{err:?}");
        })
        .await;
    assert_eq!(
        d,
        BTreeMap::from([("set".to_owned(), 1)]),
        "a create without owner of a taken key must be one SET"
    );
    let d = witness
        .commands_of(async {
            let err = store.create(record(c, now, Some("alice")), now).await;
            assert!(matches!(err, Err(session_core::Error::AlreadyExists)), "{err:?}");
        })
        .await;
    check("create of a taken key", d);

    // The server expires records by itself: the sweep sends nothing.
    let d = witness
        .commands_of(async {
            assert_eq!(store.delete_expired(now + HOUR * 10, 100).await.expect("sweep"), 0);
        })
        .await;
    assert!(d.is_empty(), "delete_expired must send nothing, sent {d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_reloads_itself_after_the_server_forgets_it() {
    let Some(server) = PrivateServer::start() else { return };
    let store = RedisStore::builder(server.url())
        .connect()
        .await
        .expect("the private server is up");
    let mut witness = Witness::new(&server).await;
    let now = Timestamp::now();
    let key = conformance::fresh_key();
    store.create(record(key, now, None), now).await.expect("create");

    let _: () = redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query_async(&mut witness.stats)
        .await
        .expect("FUNCTION FLUSH");
    let d = witness
        .commands_of(async {
            assert!(
                store
                    .touch(&key, now + HOUR, now)
                    .await
                    .expect("touch after FUNCTION FLUSH")
            );
        })
        .await;
    // FCALL (not found), FUNCTION LOAD, FCALL: only on this rare path.
    assert_eq!(d.get("fcall"), Some(&2), "{d:?}");
    assert_eq!(d.get("function"), Some(&1), "{d:?}");
    assert_eq!(d.len(), 2, "{d:?}");

    let d = witness
        .commands_of(async {
            assert!(store.touch(&key, now + HOUR, now).await.expect("touch"));
        })
        .await;
    assert_eq!(d, BTreeMap::from([("fcall".to_owned(), 1)]));
}
