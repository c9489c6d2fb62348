//! [`LocalCluster`]: starting a cluster, waiting for it to settle, reading
//! its topology, and tearing it down.

use std::collections::BTreeMap;
use std::fs;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::connection::query;
use crate::ports::free_ports;
use crate::process::NodeProcess;
use crate::topology::{Node, View, slot_ranges};
use crate::watchdog;

/// How often the waits poll the nodes.
const POLL: Duration = Duration::from_millis(50);
/// How many times a start is tried on fresh ports when a node cannot bind
/// its port (another process took it between the check and the bind).
const START_ATTEMPTS: usize = 3;

/// A real Redis Cluster on 127.0.0.1: one `redis-server` process per node,
/// all files in one temporary directory, removed with the cluster.
///
/// Every method talks to the nodes directly (no redirects followed) and
/// reads roles from the cluster itself, so they stay right after a failover.
/// Dropping it shuts every node down and removes its directory; if the
/// process dies first, a watchdog does it (see [`LocalCluster::shared`]).
///
/// ```no_run
/// use redis_harness::LocalCluster;
///
/// # fn main() -> Result<(), String> {
/// let cluster = LocalCluster::start(3, 1)?;
/// // Seeds for a cluster client (`redis::cluster::ClusterClient::new`, with
/// // redis's `cluster` feature), or one node for node commands:
/// let seeds = cluster.seeds();
/// let master = cluster.masters()?.remove(0);
/// assert_eq!(cluster.cli(master.port, &["PING"])?, "PONG");
/// # let _ = seeds;
/// # Ok(()) }
/// ```
pub struct LocalCluster {
    dir: PathBuf,
    /// Behind a mutex so that `kill` and `restart` take `&self`: a shared
    /// cluster is only ever borrowed.
    nodes: Mutex<Vec<NodeProcess>>,
    options: ClusterBuilder,
    /// Removes the nodes and the directory if this process dies without
    /// dropping the cluster; stopped by `Drop`.
    watchdog: Option<Child>,
}

/// How to start a [`LocalCluster`]; [`LocalCluster::start`] is the short form.
///
/// ```no_run
/// use std::time::Duration;
/// use redis_harness::LocalCluster;
///
/// # fn main() -> Result<(), String> {
/// let cluster = LocalCluster::builder()
///     .masters(3)
///     .replicas(2)
///     .node_timeout(Duration::from_millis(1000))
///     .timeout(Duration::from_secs(30))
///     .start()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    masters: usize,
    replicas: usize,
    node_timeout: Duration,
    timeout: Duration,
}

impl Default for ClusterBuilder {
    /// 3 masters with 1 replica each, a 2 s node timeout, 60 s to settle.
    fn default() -> Self {
        ClusterBuilder {
            masters: 3,
            replicas: 1,
            node_timeout: Duration::from_millis(2000),
            timeout: Duration::from_secs(60),
        }
    }
}

impl ClusterBuilder {
    /// How many masters (at least 3, as `redis-cli --cluster create` requires).
    pub fn masters(mut self, masters: usize) -> Self {
        self.masters = masters;
        self
    }

    /// How many replicas each master gets.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// `cluster-node-timeout`: how long a node is unreachable before it is
    /// failed and its replica takes over (default 2 s).
    pub fn node_timeout(mut self, node_timeout: Duration) -> Self {
        self.node_timeout = node_timeout;
        self
    }

    /// How long `start`, `failover`, `restart`, `migrate_slot` and `reshard`
    /// wait for the cluster to settle before they give up (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts the cluster and waits until it has settled (see
    /// [`LocalCluster::start`]).
    pub fn start(self) -> Result<LocalCluster, String> {
        if self.masters < 3 {
            return Err(format!("a cluster needs at least 3 masters, not {}", self.masters));
        }
        crate::check_binaries()?;
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let cluster = self.clone().spawn_nodes();
            match cluster {
                Ok(cluster) => {
                    cluster.create()?;
                    return Ok(cluster);
                }
                Err(e) => failures.push(e),
            }
        }
        Err(format!(
            "no cluster could be started in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        ))
    }

    /// A cluster whose nodes run and answer, not joined yet.
    fn spawn_nodes(self) -> Result<LocalCluster, String> {
        static SEQUENCE: AtomicUsize = AtomicUsize::new(0);
        let count = self.masters * (1 + self.replicas);
        let ports = free_ports(count)?;
        let dir = std::env::temp_dir().join(format!(
            "redis-harness-{}-{}-{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed),
            ports[0]
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cluster = LocalCluster {
            watchdog: watchdog::spawn(&dir),
            dir,
            nodes: Mutex::new(Vec::new()),
            options: self,
        };
        for port in ports {
            let node = NodeProcess::spawn(&cluster.dir, port, cluster.options.node_timeout)?;
            cluster.lock().push(node);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for node in cluster.lock().iter_mut() {
            node.wait_ready(deadline.saturating_duration_since(Instant::now()))?;
        }
        Ok(cluster)
    }
}

impl LocalCluster {
    /// Starts `masters` masters (at least 3) with `replicas` replicas each,
    /// on free loopback ports (data port `p` and bus port `p + 10000`, `p`
    /// in 21000..29000), with a 2 s `cluster-node-timeout`, no persistence,
    /// in a fresh temporary directory.
    ///
    /// Returns once `redis-cli --cluster create` has joined them and the
    /// cluster has settled: every node says `cluster_state:ok` with all 16384
    /// slots ok, all nodes agree on roles and slots, every slot range lists
    /// its `replicas` replicas in `CLUSTER SLOTS`, and every replica's link
    /// to its master is up. A 3+3 start takes a few seconds. The error says
    /// what did not come up, with the tail of every node's log.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), String> {
    /// let cluster = redis_harness::LocalCluster::start(3, 1)?;
    /// assert_eq!(cluster.masters()?.len(), 3);
    /// # Ok(()) }
    /// ```
    pub fn start(masters: usize, replicas: usize) -> Result<LocalCluster, String> {
        Self::builder().masters(masters).replicas(replicas).start()
    }

    /// Options for a start other than the defaults of [`LocalCluster::start`].
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// `redis-cli --cluster create`, then waits as [`LocalCluster::start`] says.
    fn create(&self) -> Result<(), String> {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["--cluster", "create"]);
        cmd.args(self.ports().iter().map(|p| format!("127.0.0.1:{p}")));
        cmd.args([
            "--cluster-replicas",
            &self.options.replicas.to_string(),
            "--cluster-yes",
        ]);
        run(&mut cmd).map_err(|e| format!("{e}\n{}", self.log_tails()))?;
        self.wait_settled(self.options.timeout, Some(self.options.replicas))
            .map(drop)
            .map_err(|e| format!("the new cluster did not come up: {e}"))
    }

    /// The cluster's directory (one subdirectory per node: `nodes.conf`,
    /// `redis.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data ports of every node, running or not, in ascending order.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.lock().iter().map(|n| n.port).collect();
        ports.sort_unstable();
        ports
    }

    /// `redis://127.0.0.1:PORT` for every node (running or not), to seed a
    /// cluster client.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), String> {
    /// let cluster = redis_harness::LocalCluster::shared()?;
    /// assert_eq!(cluster.seeds().len(), 6);
    /// # Ok(()) }
    /// ```
    pub fn seeds(&self) -> Vec<String> {
        self.ports()
            .into_iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The running masters, in port order, as the cluster currently sees
    /// them (roles change with a failover). A killed node is never listed.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), String> {
    /// let cluster = redis_harness::LocalCluster::start(3, 1)?;
    /// for master in cluster.masters()? {
    ///     assert_eq!(cluster.replicas_of(&master)?.len(), 1);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn masters(&self) -> Result<Vec<Node>, String> {
        let live = self.live_ports();
        let view = self.view()?;
        let mut masters: Vec<Node> = view
            .entries
            .iter()
            .filter(|e| e.master && !e.failing && !e.joining && live.contains(&e.port))
            .map(|e| e.node())
            .collect();
        masters.sort();
        Ok(masters)
    }

    /// The running replicas of `master`, in port order, as the cluster
    /// currently sees them.
    pub fn replicas_of(&self, master: &Node) -> Result<Vec<Node>, String> {
        let live = self.live_ports();
        let view = self.view()?;
        let mut replicas: Vec<Node> = view
            .entries
            .iter()
            .filter(|e| !e.master && e.master_id.as_deref() == Some(&master.id))
            .filter(|e| !e.failing && !e.joining && live.contains(&e.port))
            .map(|e| e.node())
            .collect();
        replicas.sort();
        Ok(replicas)
    }

    /// The running master that serves `slot` now (the owner, also while
    /// the slot is being migrated away).
    ///
    /// ```no_run
    /// use redis_harness::{LocalCluster, key_slot};
    ///
    /// # fn main() -> Result<(), String> {
    /// let cluster = LocalCluster::shared()?;
    /// let owner = cluster.master_of_slot(key_slot(b"greeting"))?;
    /// cluster.cli(owner.port, &["SET", "greeting", "hello"])?;
    /// # Ok(()) }
    /// ```
    pub fn master_of_slot(&self, slot: u16) -> Result<Node, String> {
        let live = self.live_ports();
        let view = self.view()?;
        view.entries
            .iter()
            .find(|e| e.master && !e.failing && e.serves(slot) && live.contains(&e.port))
            .map(|e| e.node())
            .ok_or_else(|| format!("no running master serves slot {slot} in the view of port {}", view.from))
    }

    /// The slots `master` serves now, as inclusive ranges in ascending
    /// order (empty for a replica).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), String> {
    /// let cluster = redis_harness::LocalCluster::shared()?;
    /// let mut total = 0;
    /// for master in cluster.masters()? {
    ///     total += cluster.slots_of(&master)?.iter().map(|r| r.len()).sum::<usize>();
    /// }
    /// assert_eq!(total, 16384);
    /// # Ok(()) }
    /// ```
    pub fn slots_of(&self, master: &Node) -> Result<Vec<RangeInclusive<u16>>, String> {
        let view = self.view()?;
        let entry = view
            .by_id(&master.id)
            .ok_or_else(|| format!("port {} does not know the id {}", view.from, master.id))?;
        let mut ranges: Vec<RangeInclusive<u16>> = entry.slots.iter().map(|&(a, b)| a..=b).collect();
        ranges.sort_by_key(|r| *r.start());
        Ok(ranges)
    }

    /// Waits until the cluster has settled: every running node says
    /// `cluster_state:ok` with all 16384 slots ok, no slot is served by a
    /// stopped node, all running nodes agree on each other's roles and
    /// slots (none flagged failing), and every replica's link to its master
    /// is up. Returns how long it waited.
    ///
    /// Right after a [`LocalCluster::kill`] of a master this waits for its
    /// replica to take over (about the node timeout plus a second or two).
    ///
    /// ```no_run
    /// use std::time::Duration;
    ///
    /// # fn main() -> Result<(), String> {
    /// let cluster = redis_harness::LocalCluster::start(3, 1)?;
    /// let master = cluster.masters()?.remove(0);
    /// cluster.kill(&master)?;
    /// let took = cluster.wait_ok(Duration::from_secs(30))?;
    /// println!("the replica took over in {took:?}");
    /// # Ok(()) }
    /// ```
    pub fn wait_ok(&self, timeout: Duration) -> Result<Duration, String> {
        self.wait_settled(timeout, None)
    }

    /// [`LocalCluster::wait_ok`], and with `replicas`, also that many
    /// replicas listed for every range in `CLUSTER SLOTS`.
    pub(crate) fn wait_settled(&self, timeout: Duration, replicas: Option<usize>) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let why = match self.unsettled(replicas) {
                None => return Ok(start.elapsed()),
                Some(why) => why,
            };
            if start.elapsed() >= timeout {
                return Err(format!("not settled after {timeout:?}: {why}\n{}", self.log_tails()));
            }
            sleep(POLL);
        }
    }

    /// Why the cluster has not settled, or `None` if it has.
    fn unsettled(&self, replicas: Option<usize>) -> Option<String> {
        let live = self.live_ports();
        if live.is_empty() {
            return Some("no node is running".to_owned());
        }
        let mut first: Option<(u16, BTreeMap<u16, String>)> = None;
        for &port in &live {
            let info: String = match query(port, redis::cmd("CLUSTER").arg("INFO")) {
                Ok(info) => info,
                Err(e) => return Some(e),
            };
            for (field, want) in [("cluster_state", "ok"), ("cluster_slots_ok", "16384")] {
                let got = info_field(&info, field);
                if got != Some(want) {
                    return Some(format!("port {port} says {field}:{}", got.unwrap_or("(missing)")));
                }
            }
            let view = match View::of(port) {
                Ok(view) => view,
                Err(e) => return Some(e),
            };
            if let Some(dead) = view
                .entries
                .iter()
                .find(|e| !e.slots.is_empty() && !live.contains(&e.port))
            {
                return Some(format!(
                    "port {port} still sees slots served by the stopped node {}",
                    dead.port
                ));
            }
            let summary = view.summary(&live);
            if let Some((node, state)) = summary
                .iter()
                .find(|(_, s)| s.contains("failing") || s.contains("joining") || *s == "unknown")
            {
                return Some(format!("port {port} sees port {node} as {state}"));
            }
            match &first {
                None => first = Some((port, summary)),
                Some((other, theirs)) => {
                    if let Some((node, state)) = summary.iter().find(|(n, s)| theirs.get(n) != Some(*s)) {
                        let their = theirs.get(node).map_or("nothing", String::as_str);
                        return Some(format!(
                            "port {port} sees port {node} as {state}, port {other} as {their}"
                        ));
                    }
                }
            }
            if let Some(want) = replicas {
                match slot_ranges(port) {
                    Err(e) => return Some(e),
                    Ok(ranges) => {
                        if let Some(r) = ranges.iter().find(|r| r.replicas < want) {
                            return Some(format!(
                                "CLUSTER SLOTS of port {port} lists {} of {want} replicas for slots {}-{}",
                                r.replicas, r.start, r.end
                            ));
                        }
                    }
                }
            }
        }
        let (_, summary) = first?;
        for (port, state) in &summary {
            if !state.starts_with("replica") {
                continue;
            }
            let link = query::<String>(*port, redis::cmd("INFO").arg("replication")).map(|info| {
                info_field(&info, "master_link_status")
                    .unwrap_or("(missing)")
                    .to_owned()
            });
            match link {
                Ok(link) if link == "up" => {}
                Ok(link) => return Some(format!("replica {port} has master_link_status:{link}")),
                Err(e) => return Some(e),
            }
        }
        None
    }

    /// `FLUSHALL` and `FUNCTION FLUSH` on every master (replicas follow):
    /// every key and every loaded function library is gone when it returns.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), String> {
    /// let cluster = redis_harness::LocalCluster::shared()?;
    /// cluster.flushall()?; // a clean slate for this test
    /// # Ok(()) }
    /// ```
    pub fn flushall(&self) -> Result<(), String> {
        for master in self.masters()? {
            query::<()>(master.port, &redis::cmd("FLUSHALL"))?;
            query::<()>(master.port, redis::cmd("FUNCTION").arg("FLUSH"))?;
        }
        Ok(())
    }

    /// Runs `redis-cli -p port args...` and returns what it printed.
    ///
    /// redis-cli prints a server's error reply (`MOVED 3999 127.0.0.1:21002`,
    /// `ERR ...`) as text and exits 0, so that is `Ok` too; `Err` means
    /// redis-cli failed (it could not connect, for example). Pass `-c`
    /// first to have it follow redirects.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), String> {
    /// let cluster = redis_harness::LocalCluster::shared()?;
    /// let port = cluster.ports()[0];
    /// assert_eq!(cluster.cli(port, &["-c", "SET", "greeting", "hello"])?, "OK");
    /// assert_eq!(cluster.cli(port, &["-c", "GET", "greeting"])?, "hello");
    /// # Ok(()) }
    /// ```
    pub fn cli(&self, port: u16, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &port.to_string()]).args(args);
        run(&mut cmd).map(|out| out.trim_end().to_owned())
    }

    /// The first running node's `CLUSTER NODES`.
    pub(crate) fn view(&self) -> Result<View, String> {
        let mut errors = Vec::new();
        for port in self.live_ports() {
            match View::of(port) {
                Ok(view) => return Ok(view),
                Err(e) => errors.push(e),
            }
        }
        Err(format!(
            "no running node answers CLUSTER NODES: [{}]",
            errors.join("; ")
        ))
    }

    /// The ports of the nodes whose process runs, ascending.
    pub(crate) fn live_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .lock()
            .iter_mut()
            .filter_map(|n| n.is_running().then_some(n.port))
            .collect();
        ports.sort_unstable();
        ports
    }

    pub(crate) fn node_timeout(&self) -> Duration {
        self.options.node_timeout
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.options.timeout
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Vec<NodeProcess>> {
        // A panic while the list was held leaves it consistent: every
        // change to it is one push or one field update.
        self.nodes.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The end of every node's log, for error messages.
    pub(crate) fn log_tails(&self) -> String {
        self.lock().iter().map(|n| n.log_tail(6)).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for LocalCluster {
    /// Shuts every node down (`SHUTDOWN NOSAVE NOW`, all at once), waits up
    /// to 5 s for the processes to exit and kills what is left, then removes
    /// the directory and stops the watchdog. Never panics.
    fn drop(&mut self) {
        let nodes = self.nodes.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        for node in nodes.iter_mut() {
            node.request_shutdown();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for node in nodes.iter_mut() {
            node.wait_exit(deadline);
        }
        let _ = fs::remove_dir_all(&self.dir);
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// `field:value` of an `INFO`-style reply.
pub(crate) fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// Runs a command to completion; `Err` with its output unless it succeeds.
pub(crate) fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "{shown} failed ({}):\n{}\n{}",
            out.status,
            stdout.trim_end(),
            stderr.trim_end()
        ))
    }
}
