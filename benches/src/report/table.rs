//! The report's tables: the main one (ours beside the raw client and the
//! fastest peer) and every raw number, with their units.

use std::fmt::Write as _;

use super::cells::{cells, speed};
use crate::measurement::Measurement;

/// `1.23 µs`.
pub fn format_ns(ns: f64) -> String {
    match ns {
        ns if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        ns if ns >= 1e3 => format!("{:.2} µs", ns / 1e3),
        ns => format!("{ns:.0} ns"),
    }
}

/// `1.23 M/s`.
pub fn format_rate(per_sec: f64) -> String {
    match per_sec {
        r if r >= 1e6 => format!("{:.2} M/s", r / 1e6),
        r if r >= 1e3 => format!("{:.1} k/s", r / 1e3),
        r => format!("{r:.0} /s"),
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{r:.2}×"))
}

/// The main table: one row per workload and backend family.
pub fn table(measurements: &[Measurement]) -> String {
    let mut s = String::new();
    s.push_str(
        "| workload | backend | ours: latency | ours: throughput | raw client | speed vs raw | best peer | best peer: latency | speed vs best peer |\n",
    );
    s.push_str("|---|---|---:|---:|---:|---:|---|---:|---:|\n");
    for ((workload, backend), cell) in cells(measurements) {
        let lat = |m: Option<&Measurement>| m.map_or("—".into(), |m| format_ns(m.latency_ns()));
        let _ = writeln!(
            s,
            "| {workload} | {} | {} | {} | {} | {} | {} | {} | {} |",
            backend.name(),
            lat(cell.ours),
            cell.ours.map_or("—".into(), |m| format_rate(m.ops_per_sec())),
            lat(cell.raw),
            ratio(cell.ours.zip(cell.raw).map(|(o, r)| speed(o, r))),
            cell.best_peer.map_or("—".into(), |m| m.contender.label()),
            lat(cell.best_peer),
            ratio(cell.ours.zip(cell.best_peer).map(|(o, p)| speed(o, p))),
        );
    }
    s
}

/// Ours through the tower-sessions adapter beside the fastest
/// tower-sessions store of the family, and beside ours called directly; one
/// row per workload and family where the adapter was measured.
pub fn compat_table(measurements: &[Measurement]) -> String {
    let mut s = String::new();
    s.push_str(
        "| workload | backend | ours via tower-sessions: latency | throughput | fastest tower-sessions store | its latency | speed vs it | ours direct: latency |\n",
    );
    s.push_str("|---|---|---:|---:|---|---:|---:|---:|\n");
    for ((workload, backend), cell) in cells(measurements) {
        let Some(compat) = cell.compat else { continue };
        let lat = |m: Option<&Measurement>| m.map_or("—".into(), |m| format_ns(m.latency_ns()));
        let _ = writeln!(
            s,
            "| {workload} | {} | {} | {} | {} | {} | {} | {} |",
            backend.name(),
            format_ns(compat.latency_ns()),
            format_rate(compat.ops_per_sec()),
            cell.best_tower.map_or("—".into(), |m| m.contender.label()),
            lat(cell.best_tower),
            ratio(cell.best_tower.map(|t| speed(compat, t))),
            lat(cell.ours),
        );
    }
    s
}

/// Every measurement, one row each.
pub fn all_results(measurements: &[Measurement]) -> String {
    let mut s = String::from("| workload | contender | latency | throughput |\n|---|---|---:|---:|\n");
    for m in measurements {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            m.workload,
            m.contender,
            format_ns(m.latency_ns()),
            format_rate(m.ops_per_sec())
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_compares_ours_with_raw_and_the_fastest_peer() {
        let measurements = [
            Measurement::of("load/256B/10k/c1", "redis", 40_000.0),
            Measurement::of("load/256B/10k/c1", "redis:raw", 32_000.0),
            Measurement::of("load/256B/10k/c1", "redis:peer:actix-session", 80_000.0),
            Measurement::of("load/256B/10k/c1", "redis:peer:tower-sessions-redis-store", 50_000.0),
        ];
        let table = table(&measurements);
        let row = table.lines().nth(2).expect("one row under the header");
        // 32 / 40 = 0.80x the raw client; 50 / 40 = 1.25x the fastest peer.
        assert!(row.contains("| 0.80× |"), "{row}");
        assert!(row.contains("| tower-sessions-redis-store |"), "{row}");
        assert!(row.contains("| 1.25× |"), "{row}");
        assert_eq!(table.lines().count(), 3);
    }

    #[test]
    fn the_compat_table_compares_the_adapter_with_the_fastest_tower_sessions_store() {
        let measurements = [
            Measurement::of("load/256B/10k/c1", "redis", 40_000.0),
            Measurement::of("load/256B/10k/c1", "redis:compat", 42_000.0),
            // actix-session is a peer but no tower-sessions store.
            Measurement::of("load/256B/10k/c1", "redis:peer:actix-session", 30_000.0),
            Measurement::of("load/256B/10k/c1", "redis:peer:tower-sessions-redis-store", 63_000.0),
            // No adapter measured: no row.
            Measurement::of("load/256B/10k/c1", "memory", 400.0),
        ];
        let table = compat_table(&measurements);
        let row = table.lines().nth(2).expect("one row under the header");
        // 63 / 42 = 1.50x the fastest tower-sessions store.
        assert!(
            row.contains("| tower-sessions-redis-store | 63.00 µs | 1.50× | 40.00 µs |"),
            "{row}"
        );
        assert_eq!(table.lines().count(), 3);
    }
}
