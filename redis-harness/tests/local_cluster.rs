//! `LocalCluster` against the real `redis-server` and `redis-cli`: a start
//! covers every slot and a drop leaves nothing behind; a failover, a kill
//! and a restart end with the roles the cluster reports; a slot migration
//! shows `ASK`, `TRYAGAIN` and `MOVED` where Redis says they appear; and
//! `key_slot` agrees with `CLUSTER KEYSLOT`.
//!
//! Each test that changes the topology starts its own cluster; the others
//! share one. Timings go to stderr (`--nocapture` shows them).

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use redis_harness::{LocalCluster, MigrationStep, Node, key_slot};

/// Whether the Redis binaries are here; if not, fails under
/// `SESSIONS_REQUIRE_SERVICES=1` (as `.ci/run` sets it), else prints a skip
/// note the test harness does not capture.
fn redis_available(test: &str) -> bool {
    match redis_harness::check_binaries() {
        Ok(()) => true,
        Err(why) if std::env::var("SESSIONS_REQUIRE_SERVICES").is_ok_and(|v| v == "1") => {
            panic!("{test}: {why} (SESSIONS_REQUIRE_SERVICES=1)")
        }
        Err(why) => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED {test}: {why}; set SESSIONS_REQUIRE_SERVICES=1 to fail instead ***"
            );
            false
        }
    }
}

fn timing(what: &str, took: Duration) {
    eprintln!("timing: {what}: {} ms", took.as_millis());
}

fn connect(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("cannot connect to port {port}: {e}"))
}

fn get(port: u16, key: &str) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET").arg(key).query(&mut connect(port))
}

/// The error code and the port a redirect points to, e.g. `("ASK", 21003)`.
fn redirect(result: redis::RedisResult<Option<String>>) -> (String, Option<u16>) {
    match result {
        Ok(value) => panic!("expected a redirect, got the value {value:?}"),
        Err(e) => {
            let port = e
                .redirect_node()
                .and_then(|(addr, _)| addr.rsplit(':').next()?.parse().ok());
            (e.code().unwrap_or("(no code)").to_owned(), port)
        }
    }
}

/// A key whose slot `master` serves.
fn key_on(cluster: &LocalCluster, master: &Node) -> Result<String, String> {
    let slots = cluster.slots_of(master)?;
    (0..)
        .map(|i| format!("key-{i}"))
        .find(|key| slots.iter().any(|r| r.contains(&key_slot(key.as_bytes()))))
        .ok_or_else(|| "no key found".to_owned())
}

/// A fresh 3+1 cluster, its first master, that master's replica, and a key
/// of the master set to `value` and replicated.
fn master_replica_and_key(value: &str) -> Result<(LocalCluster, Node, Node, String), String> {
    let cluster = LocalCluster::start(3, 1)?;
    let master = cluster.masters()?.remove(0);
    let replica = cluster.replicas_of(&master)?.remove(0);
    let key = key_on(&cluster, &master)?;
    cluster.cli(master.port, &["SET", &key, value])?;
    assert_eq!(cluster.cli(master.port, &["WAIT", "1", "5000"])?, "1", "replicated");
    Ok((cluster, master, replica, key))
}

/// `new` is a master in `old`'s place: it serves `key`, which still holds
/// `value` (nothing was lost), and `old` is no master.
fn took_over(cluster: &LocalCluster, new: &Node, old: &Node, key: &str, value: &str) -> Result<(), String> {
    let masters = cluster.masters()?;
    assert!(masters.contains(new) && !masters.contains(old), "{masters:?}");
    assert_eq!(masters.len(), 3);
    assert_eq!(cluster.master_of_slot(key_slot(key.as_bytes()))?, *new);
    assert_eq!(role(new.port), "master");
    assert_eq!(get(new.port, key), Ok(Some(value.to_owned())));
    Ok(())
}

fn role(port: u16) -> String {
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut connect(port)).expect("ROLE answers");
    redis::from_redis_value_ref(&role[0]).expect("ROLE starts with the role")
}

#[test]
fn a_started_cluster_serves_every_slot_and_its_drop_frees_the_ports_and_the_directory() -> Result<(), String> {
    if !redis_available("start and drop") {
        return Ok(());
    }
    let start = Instant::now();
    let cluster = LocalCluster::start(3, 1)?;
    timing("start 3+3", start.elapsed());

    let ports = cluster.ports();
    assert_eq!(ports.len(), 6);
    let masters = cluster.masters()?;
    assert_eq!(masters.len(), 3);
    let mut slots = 0;
    for master in &masters {
        assert_eq!(cluster.replicas_of(master)?.len(), 1, "replicas of {master:?}");
        slots += cluster.slots_of(master)?.iter().map(|r| r.len()).sum::<usize>();
    }
    assert_eq!(slots, 16384);
    let check = Command::new("redis-cli")
        .args(["--cluster", "check", &format!("127.0.0.1:{}", ports[0])])
        .output()
        .map_err(|e| e.to_string())?;
    let check = String::from_utf8_lossy(&check.stdout);
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");

    // Through redirects, from every node (a replica redirects to its master).
    assert_eq!(cluster.cli(ports[0], &["-c", "SET", "greeting", "hello"])?, "OK");
    for &port in &ports {
        assert_eq!(
            cluster.cli(port, &["-c", "GET", "greeting"])?,
            "hello",
            "GET via port {port}"
        );
    }

    let dir = cluster.dir().to_owned();
    assert!(dir.join(ports[0].to_string()).join("nodes.conf").exists());
    let start = Instant::now();
    drop(cluster);
    timing("drop 3+3", start.elapsed());
    for port in ports {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is still taken"
        );
        assert!(
            TcpListener::bind(("127.0.0.1", port + 10000)).is_ok(),
            "bus port of {port} is still taken"
        );
    }
    assert!(!dir.exists(), "{} is still there", dir.display());
    Ok(())
}

#[test]
fn a_failover_swaps_master_and_replica_and_the_cluster_is_ok_again() -> Result<(), String> {
    if !redis_available("failover") {
        return Ok(());
    }
    let (cluster, master, replica, key) = master_replica_and_key("before")?;

    let took = cluster.failover(&replica)?;
    timing("CLUSTER FAILOVER until settled", took);

    took_over(&cluster, &replica, &master, &key, "before")?;
    assert_eq!(cluster.replicas_of(&replica)?, vec![master.clone()]);
    assert_eq!(role(master.port), "slave");
    cluster.wait_ok(Duration::from_secs(1))?;
    Ok(())
}

#[test]
fn a_killed_master_is_replaced_by_its_replica_and_rejoins_as_a_replica_after_a_restart() -> Result<(), String> {
    if !redis_available("kill and restart") {
        return Ok(());
    }
    let (cluster, master, replica, key) = master_replica_and_key("kept")?;

    cluster.kill(&master)?;
    assert!(cluster.kill(&master).is_err(), "a killed node cannot be killed again");
    let took = cluster.wait_ok(Duration::from_secs(30))?;
    timing(
        "kill -9 of a master until its replica took over (node timeout 2 s)",
        took,
    );

    took_over(&cluster, &replica, &master, &key, "kept")?;

    let start = Instant::now();
    cluster.restart(master.port)?;
    timing("restart of the old master until settled", start.elapsed());
    assert_eq!(cluster.replicas_of(&replica)?, vec![master.clone()]);
    assert_eq!(role(master.port), "slave");
    assert!(
        cluster.restart(master.port).is_err(),
        "a running node cannot be restarted"
    );
    Ok(())
}

#[test]
fn a_migrating_slot_answers_ask_while_its_keys_move_and_moved_once_it_has_moved() -> Result<(), String> {
    if !redis_available("migrate_slot") {
        return Ok(());
    }
    let cluster = LocalCluster::start(3, 0)?;
    let slot = key_slot(b"{mig}");
    let from = cluster.master_of_slot(slot)?;
    let to = cluster.masters()?.into_iter().find(|m| *m != from).expect("3 masters");
    let keys: Vec<String> = (0..250).map(|i| format!("{{mig}}:{i}")).collect();
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("SET").arg(key).arg(key).ignore();
    }
    pipe.query::<()>(&mut connect(from.port)).map_err(|e| e.to_string())?;
    let (first, missing) = (keys[0].as_str(), "{mig}:missing");

    let mut steps = Vec::new();
    cluster.migrate_slot(slot, &from, &to, |step| {
        steps.push(step);
        match step {
            MigrationStep::Marked => {
                assert_eq!(
                    get(from.port, first),
                    Ok(Some(first.to_owned())),
                    "a key not moved yet is served"
                );
                assert_eq!(redirect(get(from.port, missing)), ("ASK".to_owned(), Some(to.port)));
                let split: redis::RedisResult<Vec<Option<String>>> = redis::cmd("MGET")
                    .arg(first)
                    .arg(missing)
                    .query(&mut connect(from.port));
                let code = split.map_err(|e| e.code().map(str::to_owned));
                assert_eq!(
                    code,
                    Err(Some("TRYAGAIN".to_owned())),
                    "a multi-key command split by the migration"
                );
            }
            MigrationStep::KeysMoved { .. } => {
                assert_eq!(redirect(get(from.port, first)), ("ASK".to_owned(), Some(to.port)));
                assert_eq!(
                    redirect(get(to.port, first)),
                    ("MOVED".to_owned(), Some(from.port)),
                    "without ASKING"
                );
                let asked: redis::RedisResult<(String, Option<String>)> = redis::pipe()
                    .cmd("ASKING")
                    .cmd("GET")
                    .arg(first)
                    .query(&mut connect(to.port));
                assert_eq!(asked, Ok(("OK".to_owned(), Some(first.to_owned()))), "after ASKING");
            }
            other => panic!("unexpected step {other:?}"),
        }
    })?;

    assert_eq!(
        steps,
        vec![MigrationStep::Marked, MigrationStep::KeysMoved { keys: 250 }]
    );
    assert_eq!(redirect(get(from.port, first)), ("MOVED".to_owned(), Some(to.port)));
    assert_eq!(get(to.port, first), Ok(Some(first.to_owned())));
    assert_eq!(cluster.master_of_slot(slot)?, to);
    for master in cluster.masters()?.into_iter().filter(|m| *m != to) {
        assert_eq!(
            redirect(get(master.port, first)),
            ("MOVED".to_owned(), Some(to.port)),
            "port {}",
            master.port
        );
    }
    Ok(())
}

#[test]
fn a_reshard_moves_that_many_slots() -> Result<(), String> {
    if !redis_available("reshard") {
        return Ok(());
    }
    let cluster = LocalCluster::start(3, 0)?;
    let masters = cluster.masters()?;
    let count = |node: &Node| -> Result<usize, String> { Ok(cluster.slots_of(node)?.iter().map(|r| r.len()).sum()) };
    let (before_from, before_to) = (count(&masters[0])?, count(&masters[1])?);
    let start = Instant::now();
    cluster.reshard(&masters[0], &masters[1], 100)?;
    timing("reshard of 100 empty slots", start.elapsed());
    assert_eq!(count(&masters[0])?, before_from - 100);
    assert_eq!(count(&masters[1])?, before_to + 100);
    Ok(())
}

#[test]
fn key_slot_agrees_with_cluster_keyslot() -> Result<(), String> {
    if !redis_available("key_slot") {
        return Ok(());
    }
    let cluster = LocalCluster::shared()?;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for i in 0..100 {
        keys.push(format!("session:{i}").into_bytes());
        keys.push(format!("{{owner:{i}}}:sessions").into_bytes());
        keys.push(format!("a{{b{i}}}c{{d}}").into_bytes());
        keys.push(format!("{{}}{i}").into_bytes());
        keys.push(format!("{{{{{i}}}}}").into_bytes());
        keys.push(format!("x{{{i}").into_bytes());
        keys.push(format!("}}{{{i}}}").into_bytes());
        keys.push(vec![b'{', i, 0xff, b'}', 0]);
    }
    keys.extend([&b""[..], b"{", b"}", b"{}", b"}{", b"{{}}", b"foo", b"bar"].map(<[u8]>::to_vec));
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("CLUSTER").arg("KEYSLOT").arg(key);
    }
    let port = cluster.ports()[0];
    let slots: Vec<u16> = pipe.query(&mut connect(port)).map_err(|e| e.to_string())?;
    for (key, slot) in keys.iter().zip(slots) {
        assert_eq!(key_slot(key), slot, "key {:?}", String::from_utf8_lossy(key));
    }
    Ok(())
}

#[test]
fn flushall_empties_every_master() -> Result<(), String> {
    if !redis_available("flushall") {
        return Ok(());
    }
    let cluster = LocalCluster::shared()?;
    let port = cluster.ports()[0];
    for i in 0..30 {
        cluster.cli(port, &["-c", "SET", &format!("flush:{i}"), "1"])?;
    }
    cluster.flushall()?;
    for master in cluster.masters()? {
        assert_eq!(
            cluster.cli(master.port, &["DBSIZE"])?,
            "0",
            "DBSIZE of port {}",
            master.port
        );
    }
    Ok(())
}
