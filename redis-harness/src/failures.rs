//! Failures on purpose: a lossless failover, a `kill -9`, and bringing a
//! killed node back.

use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::cluster::LocalCluster;
use crate::connection::query;
use crate::topology::Node;

/// How often a failover polls `ROLE`.
const POLL: Duration = Duration::from_millis(20);
/// How long a restarted process may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

impl LocalCluster {
    /// Promotes `replica` with `CLUSTER FAILOVER` (lossless: the replica
    /// first catches up with its master, which stops writes meanwhile).
    ///
    /// Waits until `ROLE` on `replica` says `master`, then until the cluster
    /// has settled ([`LocalCluster::wait_ok`]): the old master is then a
    /// replica of `replica` in every node's view. Returns the whole time,
    /// well under a second on loopback. Errs if `replica` is not a replica.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), String> {
    /// let cluster = redis_harness::LocalCluster::start(3, 1)?;
    /// let master = cluster.masters()?.remove(0);
    /// let replica = cluster.replicas_of(&master)?.remove(0);
    /// cluster.failover(&replica)?;
    /// assert_eq!(cluster.replicas_of(&replica)?, vec![master]);
    /// # Ok(()) }
    /// ```
    pub fn failover(&self, replica: &Node) -> Result<Duration, String> {
        let start = Instant::now();
        match self.view()?.by_id(&replica.id) {
            Some(entry) if !entry.master => {}
            Some(_) => return Err(format!("port {} is a master already", replica.port)),
            None => return Err(format!("no node of the cluster has the id {}", replica.id)),
        }
        query::<()>(replica.port, redis::cmd("CLUSTER").arg("FAILOVER"))?;
        // OK only schedules the failover.
        loop {
            let role: Vec<redis::Value> = query(replica.port, &redis::cmd("ROLE"))?;
            let role = role.first().and_then(|r| redis::from_redis_value_ref::<String>(r).ok());
            if role.as_deref() == Some("master") {
                break;
            }
            if start.elapsed() >= self.timeout() {
                return Err(format!(
                    "port {} is still {} {:?} after CLUSTER FAILOVER\n{}",
                    replica.port,
                    role.as_deref().unwrap_or("(no role)"),
                    self.timeout(),
                    self.log_tails()
                ));
            }
            sleep(POLL);
        }
        self.wait_ok(self.timeout().saturating_sub(start.elapsed()))?;
        Ok(start.elapsed())
    }

    /// Kills `node`'s process with SIGKILL (no shutdown, no goodbye to the
    /// cluster) and returns at once. Its files stay, for
    /// [`LocalCluster::restart`]. The cluster notices after the node timeout;
    /// [`LocalCluster::wait_ok`] waits until a replica has taken over.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), String> {
    /// let cluster = redis_harness::LocalCluster::start(3, 1)?;
    /// let master = cluster.masters()?.remove(0);
    /// cluster.kill(&master)?;
    /// cluster.wait_ok(std::time::Duration::from_secs(30))?;
    /// cluster.restart(master.port)?;
    /// # Ok(()) }
    /// ```
    pub fn kill(&self, node: &Node) -> Result<(), String> {
        let mut nodes = self.lock();
        let process = nodes
            .iter_mut()
            .find(|n| n.port == node.port)
            .ok_or_else(|| format!("port {} is no node of this cluster", node.port))?;
        if !process.is_running() {
            return Err(format!("the node on port {} is not running", node.port));
        }
        process.kill();
        Ok(())
    }

    /// Starts the killed node on `port` again, with its own `nodes.conf` (the
    /// same id and the view it had), and waits until the cluster has settled
    /// with it ([`LocalCluster::wait_ok`]). A master that was replaced while
    /// it was down comes back as a replica of the node that replaced it, and
    /// has resynced from it when this returns.
    pub fn restart(&self, port: u16) -> Result<(), String> {
        {
            let mut nodes = self.lock();
            let process = nodes
                .iter_mut()
                .find(|n| n.port == port)
                .ok_or_else(|| format!("port {port} is no node of this cluster"))?;
            if process.is_running() {
                return Err(format!("the node on port {port} is running"));
            }
            process.start(self.node_timeout())?;
            process.wait_ready(READY_TIMEOUT)?;
        }
        self.wait_ok(self.timeout()).map(drop)
    }
}
