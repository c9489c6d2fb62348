//! Reads criterion's results (`<target>/criterion/**/new/{benchmark,estimates}.json`)
//! and writes `<target>/sessions-report/report.md` and the SVG plots, then
//! prints the table and the targets.
//!
//! ```sh
//! cargo bench -p benches --features peers
//! cargo run -p benches --release --bin report
//! ```

use benches::measurement::{criterion_dir, read_criterion, target_dir};
use benches::report;

fn main() -> std::process::ExitCode {
    let dir = criterion_dir();
    let measurements = read_criterion(&dir);
    if measurements.is_empty() {
        eprintln!(
            "no session benchmark results under {}: run `cargo bench -p benches` first",
            dir.display()
        );
        return std::process::ExitCode::FAILURE;
    }
    let out = target_dir().join("sessions-report");
    let preamble = format!(
        "From criterion's results in `{}` ({} measurements).\n",
        dir.display(),
        measurements.len()
    );
    report::publish(&measurements, &out, &preamble, false)
}
