//! Redis's own CPU time per call, from `INFO commandstats`, diffed around a
//! measurement: the server cost of each operation, visible without a
//! profiler. Redis is single threaded, so this is what bounds throughput.
//!
//! A script's `usec` includes every command it runs (those are counted
//! again under their own names), so a cell that called scripts is reported
//! as Δusec ÷ Δcalls of `EVALSHA` and `FCALL` alone; a cell without scripts
//! as Δusec ÷ Δcalls over every command. `INFO` itself is left out. The
//! server is shared: other clients' commands in the same window count too,
//! which a busy neighbour would show as noise.
//!
//! A Redis Cluster's counters are the sum over its masters ([`Servers`]):
//! each call runs on one master, so the sum is the cluster's CPU per call.
//! Any command the cluster client sends of its own (a `CLUSTER SLOTS`
//! after a topology change) counts in a cell without scripts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use redis::aio::MultiplexedConnection;

use crate::ContenderId;
use crate::workload::{Kind, Workload};

/// `calls` and `usec` per command name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandStats(BTreeMap<String, (u64, u64)>);

impl CommandStats {
    /// Parses the reply of `INFO commandstats`
    /// (`cmdstat_get:calls=2,usec=15,usec_per_call=7.50,...`).
    pub fn parse(info: &str) -> Self {
        let mut stats = BTreeMap::new();
        for line in info.lines() {
            let Some((name, fields)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else {
                continue;
            };
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            if let (Some(calls), Some(usec)) = (field("calls"), field("usec")) {
                stats.insert(name.to_owned(), (calls, usec));
            }
        }
        Self(stats)
    }

    /// Reads the server's counters now.
    pub async fn read(conn: &mut MultiplexedConnection) -> Option<Self> {
        let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await.ok()?;
        Some(Self::parse(&info))
    }

    /// Adds `other`'s counters to these, command by command.
    pub fn add(&mut self, other: &Self) {
        for (name, (calls, usec)) in &other.0 {
            let e = self.0.entry(name.clone()).or_default();
            e.0 += calls;
            e.1 += usec;
        }
    }

    /// What the counters grew by from `self` (before) to `after`, command
    /// by command.
    pub fn since(&self, after: &Self) -> Self {
        let mut grown = BTreeMap::new();
        for (name, &(c1, u1)) in &after.0 {
            let (c0, u0) = self.0.get(name).copied().unwrap_or_default();
            grown.insert(name.clone(), (c1.saturating_sub(c0), u1.saturating_sub(u0)));
        }
        Self(grown)
    }

    /// Server µs per call of these counters (a growth, see
    /// [`since`](Self::since)); `None` if nothing was called.
    pub fn per_call(&self) -> Option<f64> {
        let of = |name: &str| self.0.get(name).copied().unwrap_or_default();
        let scripts = ["evalsha", "eval", "fcall"].map(of);
        let (mut calls, mut usec) = scripts.iter().fold((0, 0), |(c, u), (dc, du)| (c + dc, u + du));
        if calls == 0 {
            for (_, (dc, du)) in self.0.iter().filter(|(n, _)| n.as_str() != "info") {
                calls += dc;
                usec += du;
            }
        }
        (calls > 0).then(|| usec as f64 / calls as f64)
    }

    /// Server µs per call between `self` (before) and `after`; `None` if
    /// nothing was called.
    pub fn per_call_since(&self, after: &Self) -> Option<f64> {
        self.since(after).per_call()
    }
}

/// The servers' work inside timed loops only: [`Arena::run_watched`]
/// opens the watch right before a run's timed loop and closes it right
/// after, so what a run does around it (the preload of the sessions a
/// `delete` or `rotate` cell consumes, the removal of what a `create` cell
/// added) is not counted as the cell's cost.
///
/// [`Arena::run_watched`]: crate::arena::Arena::run_watched
pub struct ServerWatch<'a> {
    servers: &'a mut Servers,
    open: Option<CommandStats>,
    total: CommandStats,
    complete: bool,
}

impl<'a> ServerWatch<'a> {
    /// A watch on `servers`, counting nothing yet.
    pub fn new(servers: &'a mut Servers) -> Self {
        Self {
            servers,
            open: None,
            total: CommandStats::default(),
            complete: true,
        }
    }

    /// Starts counting.
    pub async fn open(&mut self) {
        self.open = self.servers.read().await;
        self.complete &= self.open.is_some();
    }

    /// Stops counting, adding what the servers did since [`open`](Self::open).
    pub async fn close(&mut self) {
        match (self.open.take(), self.servers.read().await) {
            (Some(before), Some(after)) => self.total.add(&before.since(&after)),
            _ => self.complete = false,
        }
    }

    /// Server µs per call over every window; `None` if nothing was called or
    /// a counter could not be read (a partial sum would mislead).
    pub fn per_call(&self) -> Option<f64> {
        if self.complete { self.total.per_call() } else { None }
    }
}

/// The servers behind one family: one Redis, or every master of a cluster.
pub struct Servers(pub Vec<MultiplexedConnection>);

impl Servers {
    /// The sum of their counters now; `None` if any cannot be read (a sum
    /// without it would be too small).
    pub async fn read(&mut self) -> Option<CommandStats> {
        let mut sum = CommandStats::default();
        for conn in &mut self.0 {
            sum.add(&CommandStats::read(conn).await?);
        }
        Some(sum)
    }
}

/// One cell's server cost.
#[derive(Debug, Clone)]
pub struct ServerCost {
    /// The workload.
    pub workload: Workload,
    /// Who.
    pub contender: ContenderId,
    /// Server µs per call.
    pub usec_per_call: f64,
}

/// A Markdown table: one row per workload (mix left out: it blends
/// commands), one column per contender.
pub fn table(costs: &[ServerCost]) -> String {
    let mut contenders: Vec<&ContenderId> = costs.iter().map(|c| &c.contender).collect();
    contenders.sort();
    contenders.dedup();
    let mut rows: BTreeMap<String, BTreeMap<&ContenderId, f64>> = BTreeMap::new();
    for c in costs.iter().filter(|c| c.workload.kind != Kind::Mix) {
        rows.entry(c.workload.to_string())
            .or_default()
            .insert(&c.contender, c.usec_per_call);
    }
    let mut out = String::from("| workload (server µs per call, INFO commandstats) |");
    for c in &contenders {
        let _ = write!(out, " {c} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(contenders.len()));
    out.push('\n');
    for (workload, cells) in &rows {
        let _ = write!(out, "| {workload} |");
        for c in &contenders {
            match cells.get(c) {
                Some(us) => {
                    let _ = write!(out, " {us:.2} |");
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_counted_alone_and_plain_commands_together() {
        let before =
            CommandStats::parse("cmdstat_get:calls=10,usec=20,usec_per_call=2.00\r\ncmdstat_info:calls=1,usec=50\r\n");
        let plain = CommandStats::parse("cmdstat_get:calls=20,usec=40\r\ncmdstat_info:calls=9,usec=500\r\n");
        assert_eq!(before.per_call_since(&plain), Some(2.0));
        let scripted = CommandStats::parse(
            "cmdstat_get:calls=30,usec=60\r\ncmdstat_evalsha:calls=10,usec=50\r\ncmdstat_setrange:calls=10,usec=5\r\n",
        );
        assert_eq!(before.per_call_since(&scripted), Some(5.0));
        assert_eq!(before.per_call_since(&before), None);
        // Growths add up: two windows of 5 µs per script call are 5 µs.
        let mut total = before.since(&scripted);
        total.add(&before.since(&scripted));
        assert_eq!(total.per_call(), Some(5.0));
    }

    #[test]
    fn a_clusters_counters_are_the_sum_over_its_masters() {
        let mut sum = CommandStats::parse("cmdstat_fcall:calls=10,usec=30\r\n");
        sum.add(&CommandStats::parse(
            "cmdstat_fcall:calls=5,usec=20\r\ncmdstat_get:calls=1,usec=1\r\n",
        ));
        assert_eq!(
            sum,
            CommandStats::parse("cmdstat_fcall:calls=15,usec=50\r\ncmdstat_get:calls=1,usec=1\r\n")
        );
    }
}
