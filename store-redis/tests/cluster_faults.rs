//! Faults of a real Redis Cluster under a concurrent workload of the store,
//! on a private 3-master, 3-replica cluster this binary starts and removes:
//!
//! 1. a lossless manual failover (`CLUSTER FAILOVER`): the history must be
//!    linearizable (a call that failed meanwhile counts as of unknown
//!    outcome: it may or may not have taken effect);
//! 2. one slot migrated step by step, with the workload on that slot: the
//!    redirections a plain client meets at each step (ASK, TRYAGAIN, MOVED)
//!    are probed and counted, and the history must be linearizable;
//! 3. `redis-cli --cluster reshard` of 1000 slots under the workload: the
//!    history must be linearizable;
//! 4. a `kill -9` of a master: acknowledged writes may be lost (asynchronous
//!    replication); the test counts them, counts sessions live twice after
//!    a login across shards, and fails only on corruption, a panic, a hang
//!    or a non-retryable error. It reports the recovery time.
//!
//! One test, the scenarios in order: they share the cluster, and each needs
//! the machine to itself. Figures go to stderr (`--nocapture` shows them).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conformance::checker::history::History;
use conformance::checker::history::Recorder;
use conformance::checker::linearizability;
use conformance::{Call, Op, Outcome};
use redis_harness::{LocalCluster, MigrationStep, Node, key_slot};
use session_core::{Error, Record, SessionStore, StoreKey, Timestamp, Update, mint_id};
use store_redis::RedisStore;

/// A tiny deterministic generator (xorshift), seeded per task.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One owner and the keys of its shard the workload plays with.
struct Group {
    owner: String,
    keys: Vec<StoreKey>,
}

fn groups(store: &RedisStore, owners: &[String]) -> Vec<Group> {
    owners
        .iter()
        .map(|owner| Group {
            owner: owner.clone(),
            keys: (0..3)
                .map(|_| mint_id(store, store.shard_of_owner(owner)).expect("an id").store_key())
                .collect(),
        })
        .collect()
}

fn record(key: StoreKey, owner: Option<String>, now: Timestamp, tag: u64) -> Record {
    Record {
        key,
        version: 1,
        data: tag.to_be_bytes().to_vec().into(),
        created_at: now,
        expires_at: now + Duration::from_secs(3600),
        owner,
    }
}

/// One random operation on one group: every key of a group is in its
/// owner's shard, so every operation is one function in one slot.
fn pick(rng: &mut Rng, g: &Group, now: Timestamp, tag: u64) -> Op {
    let k = g.keys[usize::try_from(rng.below(3)).expect("small")];
    let other = g.keys[usize::try_from(rng.below(3)).expect("small")];
    let owner = (rng.below(2) == 0).then(|| g.owner.clone());
    match rng.below(100) {
        0..20 => Op::Create(record(k, owner, now, tag)),
        20..45 => Op::Load(k),
        45..65 => Op::Update(
            k,
            Update {
                expected_version: 1 + rng.below(3),
                data: tag.to_be_bytes().to_vec().into(),
                expires_at: now + Duration::from_secs(3600),
                owner,
            },
        ),
        65..72 => Op::Touch(k, now + Duration::from_secs(3600 + rng.below(600))),
        72..80 => Op::Delete(k),
        80..88 => Op::Rotate(k, other, owner),
        88..96 => Op::ListByOwner(g.owner.clone()),
        _ => Op::WasRotated(k),
    }
}

/// Runs the workload on `groups` with `tasks` tasks until `stop`, pacing
/// each task so that the history spans the fault; returns the history with
/// failed calls marked of unknown outcome, and how many failed.
async fn workload(store: RedisStore, groups: Arc<Vec<Group>>, tasks: usize, stop: Arc<AtomicBool>) -> (History, u64) {
    let recorder = Arc::new(Recorder::new());
    let failed = Arc::new(AtomicU64::new(0));
    let now = Timestamp::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (store, groups, recorder, stop, failed) = (
            store.clone(),
            groups.clone(),
            recorder.clone(),
            stop.clone(),
            failed.clone(),
        );
        handles.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((task as u64 + 1) * 0x2545_f491_4f6c_dd1d));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 600 {
                let g = &groups[usize::try_from(rng.below(groups.len() as u64)).expect("small")];
                let op = pick(&mut rng, g, now, ((task as u64) << 32) | n);
                let outcome = recorder.record(&store, task, Call { op, now }).await;
                if outcome.is_unexpected() {
                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("cluster faults: a call failed: {outcome:?}");
                    }
                    // A retry must be able to help: a permanent error here
                    // (say, a function stopped half way by a migrating slot)
                    // is a bug.
                    assert!(
                        !matches!(outcome, Outcome::Failed(conformance::ErrorKind::Unexpected(ref m)) if m.contains("(permanent)")),
                        "a fault gave a permanent error: {outcome:?}"
                    );
                    assert!(
                        !matches!(outcome, Outcome::Failed(conformance::ErrorKind::Unexpected(ref m)) if m.contains("corrupt")),
                        "corruption in a fault: {outcome:?}"
                    );
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
        }));
    }
    for h in handles {
        h.await.expect("a workload task panicked");
    }
    let recorder = Arc::try_unwrap(recorder).unwrap_or_else(|_| panic!("every task is done"));
    let events = recorder
        .finish()
        .events()
        .iter()
        .cloned()
        .map(|mut e| {
            e.outcome = e.outcome.indeterminate_if_failed();
            e
        })
        .collect();
    (History::new(events), failed.load(Ordering::Relaxed))
}

fn check(what: &str, history: &History, failed: u64) {
    match linearizability::check(history) {
        Ok(r) => eprintln!(
            "cluster faults: {what}: {} operations ({failed} failed, of unknown outcome), {} partitions: linearizable",
            r.ops, r.partitions
        ),
        Err(e) => panic!("cluster faults: {what}: the history is not linearizable:\n{e}"),
    }
}

async fn connect(cluster: &LocalCluster) -> RedisStore {
    RedisStore::cluster_builder(cluster.seeds())
        .prefix("faults:")
        .cluster_operation_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("the store connects to the fresh cluster")
}

/// `n` owners named `<scenario>-<i>` whose shards are served by `master`
/// (each scenario's model starts empty, so its owners must be new).
fn owners_on(cluster: &LocalCluster, store: &RedisStore, master: &Node, n: usize, scenario: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("{scenario}-{i}"))
        .filter(|o| {
            let slot = key_slot(store.owner_index_key(o).as_bytes());
            cluster.master_of_slot(slot).expect("slot map") == *master
        })
        .take(n)
        .collect()
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn lossless_failover(cluster: &LocalCluster, store: &RedisStore) {
    let masters = cluster.masters().expect("masters");
    let victim = masters[0].clone();
    let owners = [
        owners_on(cluster, store, &victim, 3, "failover-a"),
        owners_on(cluster, store, &masters[1], 2, "failover-b"),
    ]
    .concat();
    let groups = Arc::new(groups(store, &owners));
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(workload(store.clone(), groups, 6, stop.clone()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let replica = cluster.replicas_of(&victim).expect("replicas")[0].clone();
    let took = blocking(|| cluster.failover(&replica)).expect("manual failover");
    eprintln!(
        "cluster faults: manual failover of port {} to {} took {took:?}",
        victim.port, replica.port
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.store(true, Ordering::Relaxed);
    let (history, failed) = run.await.expect("workload");
    check("manual failover", &history, failed);
    blocking(|| cluster.wait_ok(Duration::from_secs(30))).expect("cluster ok");
}

async fn slot_migration(cluster: &LocalCluster, store: &RedisStore) {
    let masters = cluster.masters().expect("masters");
    let from = masters[0].clone();
    let to = masters[1].clone();
    let owners = owners_on(cluster, store, &from, 1, "migration");
    let owner = owners[0].clone();
    let slot = key_slot(store.owner_index_key(&owner).as_bytes());
    let groups = Arc::new(groups(store, &owners));
    // A session of the slot that stays, and a name of the slot that never exists.
    let now = Timestamp::now();
    let resident = mint_id(store, store.shard_of_owner(&owner)).expect("id").store_key();
    // Anonymous, so the owner's listing (which the model checks) is the workload's.
    store.create(record(resident, None, now, 0), now).await.expect("create");
    let absent = mint_id(store, store.shard_of_owner(&owner)).expect("id").store_key();
    let (resident, absent) = (store.session_key(&resident), store.session_key(&absent));
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(workload(store.clone(), groups, 6, stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut met = Vec::new();
    blocking(|| {
        cluster.migrate_slot(slot, &from, &to, |step| {
            let reply = |args: &[&str]| cluster.cli(from.port, args).expect("redis-cli runs");
            match step {
                MigrationStep::Marked => {
                    met.push(("ASK for a key not on the source", reply(&["GET", &absent])));
                    met.push(("TRYAGAIN for keys split", reply(&["MGET", &resident, &absent])));
                }
                MigrationStep::KeysMoved { .. } => {
                    met.push(("ASK for a moved key", reply(&["GET", &resident])));
                }
                _ => {}
            }
            // Let the workload meet this step too.
            std::thread::sleep(Duration::from_millis(300));
        })
    })
    .expect("migrate the slot");
    met.push((
        "MOVED after the move",
        cluster.cli(from.port, &["GET", &resident]).expect("redis-cli runs"),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (history, failed) = run.await.expect("workload");
    for (what, reply) in &met {
        eprintln!("cluster faults: slot {slot} migration: {what}: {}", reply.trim());
    }
    let prefixes = ["ASK", "TRYAGAIN", "ASK", "MOVED"];
    for ((what, reply), want) in met.iter().zip(prefixes) {
        assert!(reply.contains(want), "{what}: expected {want}, got {reply:?}");
    }
    check("one slot migrated", &history, failed);
}

async fn reshard(cluster: &LocalCluster, store: &RedisStore) {
    let masters = cluster.masters().expect("masters");
    let (from, to) = (masters[2].clone(), masters[0].clone());
    // `--cluster reshard` takes the source's slots from its lowest one up:
    // owners among the first 1000 are moved under the workload.
    let first = *cluster.slots_of(&from).expect("slots")[0].start();
    let moved: Vec<String> = (0..)
        .map(|i| format!("reshard-{i}"))
        .filter(|o| {
            let slot = key_slot(store.owner_index_key(o).as_bytes());
            (first..first + 1000).contains(&slot) && cluster.master_of_slot(slot).expect("slot map") == from
        })
        .take(4)
        .collect();
    let owners = [moved, owners_on(cluster, store, &to, 1, "reshard-b")].concat();
    let groups = Arc::new(groups(store, &owners));
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(workload(store.clone(), groups, 6, stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    blocking(|| cluster.reshard(&from, &to, 1000)).expect("reshard");
    eprintln!("cluster faults: reshard of 1000 slots took {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (history, failed) = run.await.expect("workload");
    check("reshard of 1000 slots", &history, failed);
}

/// What the kill test saw.
#[derive(Default, Debug)]
struct Losses {
    acked_creates: u64,
    lost_creates: u64,
    acked_deletes: u64,
    resurrected: u64,
    logins: u64,
    live_twice: u64,
    failed_calls: u64,
}

async fn kill_a_master(cluster: &LocalCluster, store: &RedisStore) {
    let masters = cluster.masters().expect("masters");
    let victim = masters[1].clone();
    let victim_owner = owners_on(cluster, store, &victim, 1, "kill").remove(0);
    let probe = mint_id(store, store.shard_of_owner(&victim_owner))
        .expect("id")
        .store_key();
    let now = Timestamp::now();
    store
        .create(record(probe, Some(victim_owner.clone()), now, 0), now)
        .await
        .expect("probe");
    let stop = Arc::new(AtomicBool::new(false));
    let losses = Arc::new(tally::Tally::default());
    let mut handles = Vec::new();
    for task in 0..6u64 {
        let (store, stop, losses) = (store.clone(), stop.clone(), losses.clone());
        handles.push(tokio::spawn(async move {
            let mut rng = Rng(0x51_7cc1_b727_220a ^ ((task + 1) * 0x9e37_79b9));
            let mut mine: Vec<(StoreKey, bool)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let owner = format!("user-{}", rng.below(50));
                let roll = rng.below(10);
                let result: Result<(), Error> = async {
                    if roll < 5 || mine.is_empty() {
                        let key = mint_id(&store, store.shard_of_owner(&owner))?.store_key();
                        store.create(record(key, Some(owner), now, task), now).await?;
                        mine.push((key, true));
                        losses.add(|l| l.acked_creates += 1);
                    } else if roll < 7 {
                        let i = usize::try_from(rng.below(mine.len() as u64)).expect("small");
                        let (key, _) = mine[i];
                        store.delete(&key, now).await?;
                        mine[i].1 = false;
                        losses.add(|l| l.acked_deletes += 1);
                    } else {
                        // A login across shards: an anonymous session rotated
                        // into its new owner's shard.
                        let anon = mint_id(&store, None)?.store_key();
                        store.create(record(anon, None, now, task), now).await?;
                        let new = mint_id(&store, store.shard_of_owner(&owner))?.store_key();
                        store.rotate(&anon, &new, Some(&owner), now).await?;
                        losses.logins(anon, new);
                    }
                    Ok(())
                }
                .await;
                match result {
                    Ok(()) => {}
                    Err(Error::Backend(e)) => {
                        assert!(e.is_retryable(), "a failover gave a permanent error: {e}");
                        losses.add(|l| l.failed_calls += 1);
                    }
                    Err(Error::Corrupt(m)) => panic!("corruption after a kill: {m}"),
                    Err(e) => panic!("an error the workload cannot cause: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            mine
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    blocking(|| cluster.kill(&victim)).expect("kill -9");
    let killed = Instant::now();
    // Recovery: until a load of a key on the killed master's slots answers.
    let recovered = loop {
        if store.load(&probe, now).await.is_ok() {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "the cluster never recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut keys = Vec::new();
    for h in handles {
        keys.extend(
            tokio::time::timeout(Duration::from_secs(60), h)
                .await
                .expect("no workload task hangs")
                .expect("no workload task panics"),
        );
    }
    // The audit, once the cluster is whole again.
    blocking(|| cluster.wait_ok(Duration::from_secs(60))).expect("cluster ok");
    let mut l = losses.take();
    for (key, live) in keys {
        let loaded = store.load(&key, now).await.expect("load after recovery");
        match (live, loaded.is_some()) {
            (true, false) => l.lost_creates += 1,
            (false, true) => l.resurrected += 1,
            _ => {}
        }
    }
    for (old, new) in losses.take_logins() {
        let a = store.load(&old, now).await.expect("load after recovery").is_some();
        let b = store.load(&new, now).await.expect("load after recovery").is_some();
        if a && b {
            l.live_twice += 1;
        }
    }
    eprintln!(
        "cluster faults: kill -9 of master {}: recovered in {recovered:?}; {} acknowledged creates, {} lost; {} acknowledged deletes, {} undone; {} logins across shards, {} sessions live twice; {} calls failed (retryable)",
        victim.port,
        l.acked_creates,
        l.lost_creates,
        l.acked_deletes,
        l.resurrected,
        l.logins,
        l.live_twice,
        l.failed_calls
    );
    blocking(|| cluster.restart(victim.port)).expect("restart the killed node");
    blocking(|| cluster.wait_ok(Duration::from_secs(60))).expect("cluster ok");
}

/// Counters shared by the kill test's tasks (a std mutex, never held across
/// an await).
mod tally {
    use std::sync::Mutex;

    use session_core::StoreKey;

    use super::Losses;

    #[derive(Default)]
    pub(super) struct Tally {
        losses: Mutex<Losses>,
        logins: Mutex<Vec<(StoreKey, StoreKey)>>,
    }

    impl Tally {
        pub(super) fn add(&self, f: impl FnOnce(&mut Losses)) {
            f(&mut self.losses.lock().unwrap_or_else(|e| e.into_inner()));
        }
        pub(super) fn logins(&self, old: StoreKey, new: StoreKey) {
            self.add(|l| l.logins += 1);
            self.logins.lock().unwrap_or_else(|e| e.into_inner()).push((old, new));
        }
        pub(super) fn take(&self) -> Losses {
            std::mem::take(&mut self.losses.lock().unwrap_or_else(|e| e.into_inner()))
        }
        pub(super) fn take_logins(&self) -> Vec<(StoreKey, StoreKey)> {
            std::mem::take(&mut self.logins.lock().unwrap_or_else(|e| e.into_inner()))
        }
    }
}

/// The FCALLs a node has run so far (`INFO commandstats`).
fn fcalls(cluster: &LocalCluster, node: &Node) -> u64 {
    let stats = cluster.cli(node.port, &["INFO", "commandstats"]).expect("INFO");
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_fcall:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The cluster client's own resends: a create whose reply is lost because
/// its connection is killed right after the server ran it. The client
/// reconnects and sends the same FCALL again (same operation id), which must
/// report the create's success, not `AlreadyExists`. The kill is timed by
/// stalling the node with a busy script, so that the FCALL and the `CLIENT
/// KILL` are read in one turn of its event loop: the FCALL runs, and its
/// connection is closed before the reply is written. Whether a given try
/// lands that way is up to the node; the test counts the tries where the
/// node ran the FCALL twice, and every try must succeed.
async fn resends(cluster: &LocalCluster, store: &RedisStore) {
    let now = Timestamp::now();
    let (mut ran_twice, tries) = (0, 20);
    for _ in 0..tries {
        let key = mint_id(store, None).expect("id").store_key();
        let slot = key_slot(store.session_key(&key).as_bytes());
        let node = cluster.master_of_slot(slot).expect("slot map");
        let before = fcalls(cluster, &node);
        let port = node.port;
        let stall = std::thread::spawn(move || {
            std::process::Command::new("redis-cli")
                .args(["-p", &port.to_string(), "EVAL"])
                .arg("local t = redis.call('TIME'); local s = t[1] * 1e6 + t[2]; repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] > s + 200000")
                .arg("0")
                .output()
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let create = {
            let store = store.clone();
            tokio::spawn(async move { store.create(record(key, None, now, 7), now).await })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let kill = std::thread::spawn(move || {
            std::process::Command::new("redis-cli")
                .args([
                    "-p",
                    &port.to_string(),
                    "CLIENT",
                    "KILL",
                    "TYPE",
                    "normal",
                    "SKIPME",
                    "yes",
                ])
                .output()
        });
        let outcome = create.await.expect("the create task");
        let _ = stall.join();
        let _ = kill.join();
        match outcome {
            Ok(()) => assert!(
                store.load(&key, now).await.expect("load").is_some(),
                "a create that reported success did not take effect"
            ),
            // A resend that itself met the killed connection: its outcome is
            // unknown, which is allowed.
            Err(Error::Backend(e)) if e.is_retryable() => {}
            Err(e) => panic!("a create whose reply was lost and resent reported {e}"),
        }
        if fcalls(cluster, &node) - before >= 2 {
            ran_twice += 1;
        }
    }
    eprintln!(
        "cluster faults: resends: {tries} creates with the reply cut off; the node ran {ran_twice} of them twice, every one reported success"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_failover_migration_resharding_and_a_killed_master() {
    let cluster = match blocking(|| LocalCluster::start(3, 1)) {
        Ok(c) => c,
        Err(e) if !conformance::services_required() => {
            conformance::announce_skip("redis-cluster faults", &e);
            return;
        }
        Err(e) => panic!("the fault tests need a local Redis Cluster: {e}"),
    };
    let store = connect(&cluster).await;
    resends(&cluster, &store).await;
    lossless_failover(&cluster, &store).await;
    slot_migration(&cluster, &store).await;
    reshard(&cluster, &store).await;
    kill_a_master(&cluster, &store).await;
}
