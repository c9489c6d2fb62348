//! The comparison report: one Markdown table (operation × backend), the
//! targets (see "Targets" in `benches/README.md`) checked against it, every
//! raw number, SVG plots, and one server beside a Redis Cluster. One file
//! per part: [`mod@table`], [`targets`], [`plots`], [`scale_out`]; this
//! module puts them together into `report.md`.

mod cells;
pub mod plots;
pub mod scale_out;
pub mod server_cpu;
pub mod table;
pub mod targets;

use std::fmt::Write as _;
use std::path::Path;

use crate::measurement::Measurement;

pub use table::{all_results, compat_table, format_ns, format_rate, table};
pub use targets::{TargetCheck, check_targets, targets_section};

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
            let compat = compat_table(measurements);
            if compat.lines().count() > 2 {
                println!("Ours through the tower-sessions adapter (compat-tower-sessions):\n\n{compat}");
            }
            let scale_out = scale_out::table(measurements);
            if scale_out.lines().count() > 2 {
                println!(
                    "One Redis server against the Redis Cluster, {} tasks:\n\n{scale_out}",
                    scale_out::CONCURRENCY
                );
            }
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
    let plots = plots::draw_all(measurements, out);
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
    let compat = compat_table(measurements);
    if compat.lines().count() > 2 {
        md.push_str(
            "\n## Through the tower-sessions adapter\n\nOur stores through compat-tower-sessions' \
             `TowerStore`, driven as the tower-sessions peers are, beside the fastest \
             tower-sessions store of the family and beside ours called directly.\n\n",
        );
        md.push_str(&compat);
    }
    let scale_out = scale_out::table(measurements);
    if scale_out.lines().count() > 2 {
        let _ = write!(
            md,
            "\n## One Redis server against a Redis Cluster\n\nThroughput at {} tasks of ours and of \
             the raw client on the one server (`REDIS_URL`) and on the cluster \
             (`REDIS_CLUSTER_NODES`), on the same workloads.\n\n{scale_out}",
            scale_out::CONCURRENCY
        );
    }
    md.push_str("\n## Targets\n\nWhat each target means: the Targets section of `benches/README.md`.\n\n");
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
