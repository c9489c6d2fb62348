//! One cluster per test binary, for the tests that only read and write keys.

use std::sync::OnceLock;

use crate::cluster::LocalCluster;

/// The cluster, or why it could not be started: an error is kept too, so
/// that the other tests of the binary fail at once instead of each waiting
/// for their own start to time out.
static SHARED: OnceLock<Result<LocalCluster, String>> = OnceLock::new();

impl LocalCluster {
    /// A 3-master, 1-replica cluster shared by every test of this process,
    /// started (and waited for, as [`LocalCluster::start`] does) by the
    /// first call; the others wait for that start and get the same cluster,
    /// or the same error.
    ///
    /// It is never dropped: it is removed when the process exits, by a
    /// detached watchdog that polls for the process and then kills the
    /// nodes and removes the directory (every cluster has one, for crashes).
    ///
    /// Tests that share it must not change its topology (no `kill`,
    /// `failover` or `migrate_slot`: start a cluster of their own for that)
    /// and should use their own keys, or call [`LocalCluster::flushall`] if
    /// they run alone.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), String> {
    /// let cluster = redis_harness::LocalCluster::shared()?;
    /// let port = cluster.ports()[0];
    /// cluster.cli(port, &["-c", "SET", "my-test:key", "1"])?;
    /// # Ok(()) }
    /// ```
    pub fn shared() -> Result<&'static LocalCluster, String> {
        SHARED
            .get_or_init(|| LocalCluster::start(3, 1))
            .as_ref()
            .map_err(Clone::clone)
    }
}
