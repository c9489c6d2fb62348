//! A real Redis Cluster on loopback, for tests and benches.
//!
//! [`LocalCluster`] runs one `redis-server` per node (the binaries on
//! `PATH`; Redis 7.0 or later) on free ports of 127.0.0.1, joins them with
//! `redis-cli --cluster create`, and waits until the cluster is fully up. A
//! test can then fail over a replica, `kill -9` a master and restart it,
//! move one slot step by step (to see `ASK` and `TRYAGAIN` in between) or
//! many with a reshard, and read the roles back from the cluster. Dropping
//! the cluster stops its nodes and removes its files; a watchdog does it if
//! the process dies first. [`LocalCluster::shared`] gives every test of a
//! binary the same cluster.
//!
//! What it is not: a client (use `redis::cluster` for that: seed it with
//! [`LocalCluster::seeds`]), a mock (everything runs against the real
//! server), or fast to start (a few seconds for 3+3: share a cluster where
//! tests do not change its topology). Everything is synchronous, and every
//! method that waits documents what it waits for; errors are `String`s
//! that say what did not happen, with the end of the node logs where it
//! helps.
//!
//! ```no_run
//! use std::time::Duration;
//! use redis_harness::{LocalCluster, key_slot};
//!
//! # fn main() -> Result<(), String> {
//! let cluster = LocalCluster::start(3, 1)?;
//! let owner = cluster.master_of_slot(key_slot(b"greeting"))?;
//! cluster.cli(owner.port, &["SET", "greeting", "hello"])?;
//!
//! // Lose the master: its replica takes over, with the data.
//! cluster.kill(&owner)?;
//! cluster.wait_ok(Duration::from_secs(30))?;
//! let new_owner = cluster.master_of_slot(key_slot(b"greeting"))?;
//! assert_eq!(cluster.cli(new_owner.port, &["GET", "greeting"])?, "hello");
//! # Ok(()) }
//! ```
//!
//! A test that needs the server should skip when the binaries are missing,
//! unless the run requires services (as `.ci/run` does):
//!
//! ```no_run
//! if let Err(why) = redis_harness::check_binaries() {
//!     if std::env::var("SESSIONS_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
//!         panic!("{why}");
//!     }
//!     eprintln!("skipped: {why}");
//!     return;
//! }
//! ```

mod cluster;
mod connection;
mod failures;
mod key_slot;
mod migration;
mod ports;
mod process;
mod shared;
mod topology;
mod watchdog;

use std::process::{Command, Stdio};

pub use cluster::{ClusterBuilder, LocalCluster};
pub use key_slot::{SLOTS, key_slot};
pub use migration::MigrationStep;
pub use topology::Node;

/// `Ok` if `redis-server` and `redis-cli` run (`--version`), or which one
/// does not. [`LocalCluster::start`] checks this too; call it first to tell
/// "no Redis here" (skip) from "the cluster did not come up" (fail).
///
/// ```
/// match redis_harness::check_binaries() {
///     Ok(()) => println!("Redis is installed"),
///     Err(why) => println!("no cluster tests here: {why}"),
/// }
/// ```
pub fn check_binaries() -> Result<(), String> {
    for binary in ["redis-server", "redis-cli"] {
        let status = Command::new(binary)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => return Err(format!("`{binary} --version` failed ({status})")),
            Err(e) => return Err(format!("{binary} is not on PATH ({e})")),
        }
    }
    Ok(())
}
