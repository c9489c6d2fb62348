//! The comparison report: one Markdown table (operation × backend), the
//! targets of issue 7 checked against it, every raw number, and SVG plots.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::measurement::Measurement;
use crate::workload::{Kind, Workload};
use crate::{Backend, ContenderId, Op, Role};

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

/// The measurements of one workload and family: ours, raw, peers.
struct Cell<'a> {
    ours: Option<&'a Measurement>,
    raw: Option<&'a Measurement>,
    best_peer: Option<&'a Measurement>,
}

fn cells(measurements: &[Measurement]) -> BTreeMap<(Workload, Backend), Cell<'_>> {
    let mut out: BTreeMap<(Workload, Backend), Cell<'_>> = BTreeMap::new();
    for m in measurements {
        let cell = out.entry((m.workload, m.contender.backend)).or_insert(Cell {
            ours: None,
            raw: None,
            best_peer: None,
        });
        match &m.contender.role {
            Role::Ours => cell.ours = Some(m),
            Role::Raw => cell.raw = Some(m),
            Role::Peer(_) => {
                if cell.best_peer.is_none_or(|best| m.ns_per_op < best.ns_per_op) {
                    cell.best_peer = Some(m);
                }
            }
        }
    }
    out
}

/// Ours ÷ theirs in speed (throughput): 1.0 = as fast, 2.0 = twice as fast.
fn speed(ours: &Measurement, theirs: &Measurement) -> f64 {
    theirs.ns_per_op / ours.ns_per_op
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

/// The targets of issue 7, checked wherever both sides were measured.
pub fn check_targets(measurements: &[Measurement]) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    for ((workload, backend), cell) in cells(measurements) {
        let Some(ours) = cell.ours else { continue };
        let what = format!("{workload} {}", backend.name());
        let networked = matches!(backend, Backend::Redis | Backend::Postgres);
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

/// Writes the report (table, plots) into `out` and prints the table, the
/// target checks and where it was written; what both the `compare` and the
/// `report` commands end with. `echo_preamble` also prints the preamble
/// above the table.
pub fn publish(
    measurements: &[Measurement],
    out: &Path,
    preamble: &str,
    echo_preamble: bool,
) -> std::process::ExitCode {
    match write(measurements, out, preamble) {
        Ok(table) => {
            if echo_preamble {
                println!("{preamble}");
            }
            println!("{table}");
            println!("{}", targets_section(&check_targets(measurements)));
            println!("written: {}", out.join("report.md").display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write the report into {}: {e}", out.display());
            std::process::ExitCode::FAILURE
        }
    }
}

/// Writes `report.md` and the SVG plots into `out`, returns the main table.
pub fn write(measurements: &[Measurement], out: &Path, preamble: &str) -> std::io::Result<String> {
    std::fs::create_dir_all(out)?;
    let table = table(measurements);
    let checks = check_targets(measurements);
    let mut plots = Vec::new();
    for backend in Backend::ALL {
        if let Some(p) = plot_throughput_by_concurrency(measurements, backend, out) {
            plots.push(p);
        }
        if let Some(p) = plot_latency_by_store_size(measurements, backend, out) {
            plots.push(p);
        }
    }
    let mut md = String::from("# Session stores compared\n\n");
    md.push_str(preamble);
    md.push_str(
        "\nLatency is the median at concurrency 1 and the mean (Little's law: \
         concurrency × wall time per operation) above. Speed ratios are ours ÷ theirs \
         in throughput: 1.00× = as fast, above 1 = faster. Peers pay for their own \
         encoding of a one-entry map holding the payload; ours receive encoded bytes. \
         Peer touch = save of the whole record (tower-sessions) or update_ttl (actix); \
         peer rotate = delete + create.\n\n",
    );
    md.push_str(&table);
    md.push_str("\n## Targets (issue 7)\n\n");
    md.push_str(&targets_section(&checks));
    md.push_str("\n## Plots\n\n");
    for p in &plots {
        if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
            let _ = writeln!(md, "![{name}]({name})");
        }
    }
    md.push_str("\n## All results\n\n");
    md.push_str(&all_results(measurements));
    std::fs::write(out.join("report.md"), md)?;
    Ok(table)
}

type Series = BTreeMap<ContenderId, Vec<(f64, f64)>>;

fn plot_throughput_by_concurrency(measurements: &[Measurement], backend: Backend, out: &Path) -> Option<PathBuf> {
    let smallest = measurements.iter().map(|m| m.workload.store_size).min()?;
    let mut series = Series::new();
    for m in measurements
        .iter()
        .filter(|m| m.contender.backend == backend && m.workload.kind == Kind::Mix && m.workload.store_size == smallest)
    {
        series
            .entry(m.contender.clone())
            .or_default()
            .push((m.workload.concurrency as f64, m.ops_per_sec()));
    }
    let path = out.join(format!("throughput_by_concurrency_{}.svg", backend.name()));
    let title = format!(
        "{}: web-shaped mix, {} sessions, ops/s by concurrency",
        backend.name(),
        smallest
    );
    plot(&path, &title, "concurrent tasks", "operations per second", series).then_some(path)
}

fn plot_latency_by_store_size(measurements: &[Measurement], backend: Backend, out: &Path) -> Option<PathBuf> {
    let mut series = Series::new();
    for m in measurements.iter().filter(|m| {
        m.contender.backend == backend
            && m.workload.kind == Kind::Single(Op::Load)
            && m.workload.concurrency == 1
            && m.workload.payload == crate::workload::BASE_PAYLOAD
    }) {
        series
            .entry(m.contender.clone())
            .or_default()
            .push((m.workload.store_size as f64, m.latency_ns() / 1e3));
    }
    let path = out.join(format!("latency_by_store_size_{}.svg", backend.name()));
    let title = format!("{}: load latency (c1, 256 B) by sessions in the store", backend.name());
    plot(&path, &title, "sessions in the store", "median latency (µs)", series).then_some(path)
}

/// Draws one line per contender on log-x axes; `false` if there is nothing
/// to draw or drawing failed (reported on stderr).
fn plot(path: &Path, title: &str, x_desc: &str, y_desc: &str, mut series: Series) -> bool {
    series.retain(|_, points| !points.is_empty());
    if series.is_empty() {
        return false;
    }
    for points in series.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let xs: BTreeSet<u64> = series.values().flatten().map(|p| p.0 as u64).collect();
    let (x_min, x_max) = (*xs.first().unwrap_or(&1) as f64, *xs.last().unwrap_or(&1) as f64);
    let y_max = series.values().flatten().map(|p| p.1).fold(0.0, f64::max) * 1.15;
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (860, 480)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d((x_min / 1.5..x_max * 1.5).log_scale(), 0.0..y_max.max(1e-9))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|x| format!("{}", x.round()))
            .y_label_formatter(&|y| match *y {
                y if y >= 1e6 => format!("{:.1}M", y / 1e6),
                y if y >= 1e3 => format!("{:.0}k", y / 1e3),
                y => format!("{y:.1}"),
            })
            .draw()?;
        for (i, (id, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
                .label(id.label())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    })();
    match result {
        Ok(()) => true,
        Err(e) => {
            eprintln!("plot {} failed: {e}", path.display());
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(workload: &str, contender: &str, ns_per_op: f64) -> Measurement {
        Measurement {
            workload: Workload::parse(workload).expect("a workload id"),
            contender: ContenderId::parse(contender).expect("a contender id"),
            ns_per_op,
        }
    }

    #[test]
    fn the_table_compares_ours_with_raw_and_the_fastest_peer() {
        let measurements = [
            m("load/256B/10k/c1", "redis", 40_000.0),
            m("load/256B/10k/c1", "redis:raw", 32_000.0),
            m("load/256B/10k/c1", "redis:peer:actix-session", 80_000.0),
            m("load/256B/10k/c1", "redis:peer:tower-sessions-redis-store", 50_000.0),
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
    fn targets_are_checked_where_both_sides_were_measured() {
        let measurements = [
            m("update/256B/10k/c1", "postgres", 1_300.0),
            m("update/256B/10k/c1", "postgres:raw", 1_000.0),
            m("update/256B/10k/c32", "postgres", 100.0),
            m("update/256B/10k/c32", "postgres:raw", 90.0),
            m("mix/256B/10k/c8", "memory", 100.0),
            m("mix/256B/10k/c8", "memory:peer:tower-sessions-moka-store", 140.0),
            // No raw and no peer measured: nothing to check.
            m("load/256B/10k/c1", "sled", 1_000.0),
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
        assert_eq!(checks.len(), 3);
        let section = targets_section(&checks);
        assert!(section.contains("| web-shaped mix ≥ 1.5× the best peer (memory, Redis) | 0 of 1 |"));
        assert!(section.contains("**1.40×** (needed 1.50×)"));
    }
}
