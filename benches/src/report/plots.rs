//! The SVG plots: per family, one line per contender, on a log-x axis.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::measurement::Measurement;
use crate::workload::{BASE_PAYLOAD, Kind};
use crate::{Backend, ContenderId, Op};

type Series = BTreeMap<ContenderId, Vec<(f64, f64)>>;

/// One kind of plot, drawn once per family.
struct Plot {
    /// The file name before `_<family>.svg`.
    file: &'static str,
    /// The title, from the family's name and the smallest store size.
    title: fn(&str, usize) -> String,
    x_desc: &'static str,
    y_desc: &'static str,
    /// Whether a measurement of the family is on the plot, given the
    /// smallest store size measured.
    shows: fn(&Measurement, usize) -> bool,
    /// Where it is on the plot: (x, y).
    point: fn(&Measurement) -> (f64, f64),
}

/// Every plot, in report order (per family).
const PLOTS: [Plot; 2] = [
    Plot {
        file: "throughput_by_concurrency",
        title: |family, smallest| format!("{family}: web-shaped mix, {smallest} sessions, ops/s by concurrency"),
        x_desc: "concurrent tasks",
        y_desc: "operations per second",
        shows: |m, smallest| m.workload.kind == Kind::Mix && m.workload.store_size == smallest,
        point: |m| (m.workload.concurrency as f64, m.ops_per_sec()),
    },
    Plot {
        file: "latency_by_store_size",
        title: |family, _| format!("{family}: load latency (c1, 256 B) by sessions in the store"),
        x_desc: "sessions in the store",
        y_desc: "median latency (µs)",
        shows: |m, _| {
            m.workload.kind == Kind::Single(Op::Load)
                && m.workload.concurrency == 1
                && m.workload.payload == BASE_PAYLOAD
        },
        point: |m| (m.workload.store_size as f64, m.latency_ns() / 1e3),
    },
];

/// Draws every plot of every family that has something to show into
/// `out`; returns the files written, in report order.
pub fn draw_all(measurements: &[Measurement], out: &Path) -> Vec<PathBuf> {
    let Some(smallest) = measurements.iter().map(|m| m.workload.store_size).min() else {
        return Vec::new();
    };
    let mut written = Vec::new();
    for backend in Backend::ALL {
        for plot in &PLOTS {
            let mut series = Series::new();
            for m in measurements
                .iter()
                .filter(|m| m.contender.backend == backend && (plot.shows)(m, smallest))
            {
                series.entry(m.contender.clone()).or_default().push((plot.point)(m));
            }
            let path = out.join(format!("{}_{}.svg", plot.file, backend.name()));
            let title = (plot.title)(backend.name(), smallest);
            if draw(&path, &title, plot.x_desc, plot.y_desc, series) {
                written.push(path);
            }
        }
    }
    written
}

/// Draws one line per contender on log-x axes; `false` if there is nothing
/// to draw or drawing failed (reported on stderr).
fn draw(path: &Path, title: &str, x_desc: &str, y_desc: &str, mut series: Series) -> bool {
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
