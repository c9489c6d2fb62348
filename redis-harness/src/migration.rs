//! Moving slots between masters: one slot step by step (to probe `ASK` and
//! `TRYAGAIN` in between), or many with `redis-cli --cluster reshard`.

use std::process::Command;

use crate::cluster::{LocalCluster, run};
use crate::connection::query;
use crate::topology::Node;

/// How many keys one `MIGRATE` moves.
const BATCH: usize = 100;
/// `MIGRATE`'s own timeout, in milliseconds.
const MIGRATE_TIMEOUT_MS: u64 = 5000;

/// Where [`LocalCluster::migrate_slot`] is when it calls its hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationStep {
    /// The slot is `IMPORTING` on the destination and `MIGRATING` on the
    /// source, and no key has moved. The source still serves the keys it
    /// holds, answers `ASK` for a key it does not hold, and `TRYAGAIN` for a
    /// multi-key command on keys of which only some are there.
    Marked,
    /// Every key of the slot is on the destination, but the slot is still
    /// the source's: the source answers `ASK` for every key of it, and the
    /// destination serves them after `ASKING` (and `MOVED` without).
    KeysMoved {
        /// How many keys were moved.
        keys: usize,
    },
}

impl LocalCluster {
    /// Moves `slot` from the master `from` to the master `to` as
    /// `redis-cli --cluster reshard` does, calling `between` at two points:
    ///
    /// 1. `CLUSTER SETSLOT slot IMPORTING` on `to`, `MIGRATING` on `from`;
    ///    `between(MigrationStep::Marked)`;
    /// 2. `MIGRATE` of every key of the slot (`CLUSTER GETKEYSINSLOT`, 100 at
    ///    a time); `between(MigrationStep::KeysMoved { .. })`;
    /// 3. `CLUSTER SETSLOT slot NODE to` on `to`, then on `from`, then on the
    ///    other masters; after it, `from` answers `MOVED` for the slot.
    ///
    /// Returns once the cluster has settled ([`LocalCluster::wait_ok`]) with
    /// the slot on `to` in every node's view. Errs if `from` does not serve
    /// the slot.
    ///
    /// ```no_run
    /// use redis_harness::{LocalCluster, MigrationStep, key_slot};
    ///
    /// # fn main() -> Result<(), String> {
    /// let cluster = LocalCluster::start(3, 0)?;
    /// let slot = key_slot(b"greeting");
    /// let from = cluster.master_of_slot(slot)?;
    /// let to = cluster.masters()?.into_iter().find(|m| *m != from).expect("3 masters");
    /// cluster.cli(from.port, &["SET", "greeting", "hello"])?;
    /// cluster.migrate_slot(slot, &from, &to, |step| {
    ///     if let MigrationStep::KeysMoved { .. } = step {
    ///         let reply = cluster.cli(from.port, &["GET", "greeting"]).expect("redis-cli runs");
    ///         assert!(reply.starts_with("ASK"), "{reply}");
    ///     }
    /// })?;
    /// assert_eq!(cluster.master_of_slot(slot)?, to);
    /// # Ok(()) }
    /// ```
    pub fn migrate_slot(
        &self,
        slot: u16,
        from: &Node,
        to: &Node,
        mut between: impl FnMut(MigrationStep),
    ) -> Result<(), String> {
        let owner = self.master_of_slot(slot)?;
        if owner != *from {
            return Err(format!(
                "slot {slot} is served by port {}, not by port {}",
                owner.port, from.port
            ));
        }
        let setslot = |port: u16, state: &str, id: &str| {
            query::<()>(port, redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg(state).arg(id))
        };
        setslot(to.port, "IMPORTING", &from.id)?;
        setslot(from.port, "MIGRATING", &to.id)?;
        between(MigrationStep::Marked);

        let mut moved = 0;
        loop {
            let keys: Vec<Vec<u8>> = query(
                from.port,
                redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(BATCH),
            )?;
            if keys.is_empty() {
                break;
            }
            let mut migrate = redis::cmd("MIGRATE");
            migrate
                .arg("127.0.0.1")
                .arg(to.port)
                .arg("")
                .arg(0)
                .arg(MIGRATE_TIMEOUT_MS)
                .arg("KEYS")
                .arg(&keys);
            query::<()>(from.port, &migrate)?;
            moved += keys.len();
        }
        between(MigrationStep::KeysMoved { keys: moved });

        // The destination first, so that it serves the slot before the
        // source starts sending clients there (the order redis-cli uses).
        setslot(to.port, "NODE", &to.id)?;
        setslot(from.port, "NODE", &to.id)?;
        for master in self.masters()? {
            if master != *from && master != *to {
                setslot(master.port, "NODE", &to.id)?;
            }
        }
        self.wait_ok(self.timeout()).map(drop)
    }

    /// Moves `slots` slots from `from` to `to` with
    /// `redis-cli --cluster reshard ... --cluster-yes` (keys included), after
    /// waiting for the cluster to settle (redis-cli refuses a cluster whose
    /// nodes disagree), and waits for it to settle again.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), String> {
    /// let cluster = redis_harness::LocalCluster::start(3, 1)?;
    /// let masters = cluster.masters()?;
    /// cluster.reshard(&masters[0], &masters[1], 100)?;
    /// # Ok(()) }
    /// ```
    pub fn reshard(&self, from: &Node, to: &Node, slots: u32) -> Result<(), String> {
        self.wait_ok(self.timeout())?;
        let mut cmd = Command::new("redis-cli");
        cmd.args(["--cluster", "reshard", &format!("127.0.0.1:{}", from.port)]);
        cmd.args(["--cluster-from", &from.id, "--cluster-to", &to.id]);
        cmd.args(["--cluster-slots", &slots.to_string(), "--cluster-yes"]);
        let out = run(&mut cmd)?;
        // redis-cli reports some failures on stdout only.
        if let Some(line) = out.lines().find(|l| l.contains("[ERR]")) {
            return Err(format!("redis-cli --cluster reshard: {line}"));
        }
        self.wait_ok(self.timeout()).map(drop)
    }
}
