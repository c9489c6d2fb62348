//! One server against a Redis Cluster: the throughput of ours and of the
//! raw client at 32 tasks on each, where both families were measured (the
//! same workloads, the same machine, one run).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::table::format_rate;
use crate::measurement::Measurement;
use crate::workload::Workload;
use crate::{Backend, Role};

/// The concurrency the comparison is made at: where one server's CPU, not
/// the round trip, is the limit.
pub const CONCURRENCY: usize = 32;

/// A Markdown table, one row per workload at [`CONCURRENCY`] tasks and
/// role (ours, raw) measured on both one server and the cluster; only the
/// header when there is none.
pub fn table(measurements: &[Measurement]) -> String {
    let mut pairs: BTreeMap<(Workload, Role), [Option<&Measurement>; 2]> = BTreeMap::new();
    for m in measurements.iter().filter(|m| m.workload.concurrency == CONCURRENCY) {
        let side = match m.contender.backend {
            Backend::Redis => 0,
            Backend::RedisCluster => 1,
            _ => continue,
        };
        if matches!(m.contender.role, Role::Ours | Role::Raw) {
            pairs.entry((m.workload, m.contender.role.clone())).or_default()[side] = Some(m);
        }
    }
    let mut s = String::from(
        "| workload | contender | one server: throughput | cluster: throughput | cluster ÷ one server |\n\
         |---|---|---:|---:|---:|\n",
    );
    for ((workload, role), pair) in &pairs {
        let [Some(one), Some(cluster)] = pair else { continue };
        let who = if *role == Role::Ours { "ours" } else { "raw client" };
        let _ = writeln!(
            s,
            "| {workload} | {who} | {} | {} | {:.2}× |",
            format_rate(one.ops_per_sec()),
            format_rate(cluster.ops_per_sec()),
            cluster.ops_per_sec() / one.ops_per_sec(),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_is_set_beside_one_server_at_32_tasks() {
        let measurements = [
            Measurement::of("load/256B/10k/c32", "redis", 20_000.0),
            Measurement::of("load/256B/10k/c32", "redis-cluster", 10_000.0),
            Measurement::of("load/256B/10k/c32", "redis:raw", 16_000.0),
            // Only one side measured, or another concurrency: no row.
            Measurement::of("touch/256B/10k/c32", "redis-cluster", 10_000.0),
            Measurement::of("load/256B/10k/c1", "redis", 50_000.0),
            Measurement::of("load/256B/10k/c1", "redis-cluster", 60_000.0),
        ];
        let table = table(&measurements);
        // 1e9 / 20 µs = 50k/s on one server, 100k/s on the cluster.
        assert!(
            table.contains("| load/256B/10k/c32 | ours | 50.0 k/s | 100.0 k/s | 2.00× |"),
            "{table}"
        );
        assert_eq!(table.lines().count(), 3, "{table}");
    }
}
