//! The targets the report checks, each a least speed ratio of ours against
//! the raw client or the fastest peer; `benches/README.md` ("Targets") lists
//! them for readers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::cells::{cells, speed};
use crate::measurement::Measurement;
use crate::workload::Kind;
use crate::{Backend, Op};

/// One check of a target against one measured ratio.
#[derive(Debug, Clone)]
pub struct TargetCheck {
    /// Which target.
    pub target: &'static str,
    /// Workload and backend.
    pub what: String,
    /// The measured speed ratio (ours ÷ theirs).
    pub value: f64,
    /// The least ratio that meets it.
    pub needed: f64,
}

impl TargetCheck {
    /// Whether it is met.
    pub fn met(&self) -> bool {
        self.value >= self.needed
    }
}

/// The targets (see "Targets" in `benches/README.md`), checked wherever
/// both sides were measured.
pub fn check_targets(measurements: &[Measurement]) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    for ((workload, backend), cell) in cells(measurements) {
        if let (Kind::Single(_), Some(compat), Some(tower)) = (workload.kind, cell.compat, cell.best_tower) {
            out.push(TargetCheck {
                target: "through tower-sessions, at least as fast as the fastest tower-sessions store",
                what: format!("{workload} {} (vs {})", backend.name(), tower.contender.label()),
                value: speed(compat, tower),
                needed: 1.0,
            });
        }
        let Some(ours) = cell.ours else { continue };
        let what = format!("{workload} {}", backend.name());
        let networked = matches!(backend, Backend::Redis | Backend::RedisCluster | Backend::Postgres);
        if let (Kind::Single(_), Some(raw)) = (workload.kind, cell.raw) {
            if networked && workload.concurrency == 1 {
                out.push(TargetCheck {
                    target: "latency within 1.25× of the raw client at c1 (speed ≥ 0.80×)",
                    what: what.clone(),
                    value: speed(ours, raw),
                    needed: 1.0 / 1.25,
                });
            }
            if networked && workload.concurrency == 32 {
                out.push(TargetCheck {
                    target: "throughput ≥ 0.8× the raw client at c32",
                    what: what.clone(),
                    value: speed(ours, raw),
                    needed: 0.8,
                });
            }
            if backend == Backend::Memory && workload.kind == Kind::Single(Op::Load) {
                out.push(TargetCheck {
                    target: "memory load ≥ 0.8× raw map get",
                    what: what.clone(),
                    value: speed(ours, raw),
                    needed: 0.8,
                });
            }
            if backend == Backend::Sled {
                out.push(TargetCheck {
                    target: "sled ≥ 0.7× raw sled",
                    what: what.clone(),
                    value: speed(ours, raw),
                    needed: 0.7,
                });
            }
        }
        if let Some(peer) = cell.best_peer {
            match workload.kind {
                Kind::Single(_) => out.push(TargetCheck {
                    target: "at least as fast as the fastest peer",
                    what: format!("{what} (vs {})", peer.contender.label()),
                    value: speed(ours, peer),
                    needed: 1.0,
                }),
                Kind::Mix if matches!(backend, Backend::Memory | Backend::Redis) => out.push(TargetCheck {
                    target: "web-shaped mix ≥ 1.5× the best peer (memory, Redis)",
                    what: format!("{what} (vs {})", peer.contender.label()),
                    value: speed(ours, peer),
                    needed: 1.5,
                }),
                Kind::Mix => out.push(TargetCheck {
                    target: "at least as fast as the fastest peer",
                    what: format!("{what} (vs {})", peer.contender.label()),
                    value: speed(ours, peer),
                    needed: 1.0,
                }),
            }
        }
    }
    out
}

/// The targets as Markdown: a summary per target, then every miss.
pub fn targets_section(checks: &[TargetCheck]) -> String {
    let mut s = String::new();
    let mut by_target: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for c in checks {
        let e = by_target.entry(c.target).or_default();
        e.0 += 1;
        e.1 += usize::from(c.met());
    }
    s.push_str("| target | met |\n|---|---:|\n");
    for (target, (n, met)) in &by_target {
        let _ = writeln!(s, "| {target} | {met} of {n} |");
    }
    let missed: Vec<_> = checks.iter().filter(|c| !c.met()).collect();
    if !missed.is_empty() {
        s.push_str("\nMissed (speed ratio, ours ÷ theirs; needed):\n\n");
        for c in missed {
            let _ = writeln!(
                s,
                "- {}: **{:.2}×** (needed {:.2}×) — {}",
                c.what, c.value, c.needed, c.target
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked_where_both_sides_were_measured() {
        let measurements = [
            Measurement::of("update/256B/10k/c1", "postgres", 1_300.0),
            Measurement::of("update/256B/10k/c1", "postgres:raw", 1_000.0),
            Measurement::of("update/256B/10k/c32", "postgres", 100.0),
            Measurement::of("update/256B/10k/c32", "postgres:raw", 90.0),
            Measurement::of("mix/256B/10k/c8", "memory", 100.0),
            Measurement::of("mix/256B/10k/c8", "memory:peer:tower-sessions-moka-store", 140.0),
            // No raw and no peer measured: nothing to check.
            Measurement::of("load/256B/10k/c1", "sled", 1_000.0),
            // The adapter against the fastest tower-sessions store only
            // (the compat contender is no peer of ours).
            Measurement::of("delete/256B/10k/c32", "memory:compat", 100.0),
            Measurement::of("delete/256B/10k/c32", "memory:peer:tower-sessions-moka-store", 90.0),
            Measurement::of("delete/256B/10k/c32", "memory:peer:tower-sessions-memory-store", 300.0),
        ];
        let checks = check_targets(&measurements);
        let find = |target: &str, what: &str| {
            checks
                .iter()
                .find(|c| c.target.starts_with(target) && c.what.starts_with(what))
                .unwrap_or_else(|| panic!("no check {target} for {what}: {checks:?}"))
        };
        // 1.3x the raw latency misses "within 1.25x".
        assert!(!find("latency within", "update/256B/10k/c1 postgres").met());
        // 0.9x the raw throughput meets "at least 0.8x".
        assert!(find("throughput", "update/256B/10k/c32 postgres").met());
        // 1.4x the best peer misses the mix's 1.5x.
        let mix = find("web-shaped mix", "mix/256B/10k/c8 memory");
        assert!((mix.value - 1.4).abs() < 1e-9 && !mix.met());
        let compat = find("through tower-sessions", "delete/256B/10k/c32 memory");
        assert!((compat.value - 0.9).abs() < 1e-9 && !compat.met(), "{compat:?}");
        assert_eq!(checks.len(), 4);
        let section = targets_section(&checks);
        assert!(section.contains("| web-shaped mix ≥ 1.5× the best peer (memory, Redis) | 0 of 1 |"));
        assert!(section.contains("**1.40×** (needed 1.50×)"));
    }
}
