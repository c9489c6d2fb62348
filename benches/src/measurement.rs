//! One measured number, and reading them from criterion's results.

use std::path::{Path, PathBuf};

use crate::ContenderId;
use crate::workload::Workload;

/// The time per operation of one contender on one workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The workload.
    pub workload: Workload,
    /// Who.
    pub contender: ContenderId,
    /// Median time per operation in nanoseconds. At concurrency 1 this is
    /// the median latency; above, it is wall time divided by operations
    /// (the inverse of throughput).
    pub ns_per_op: f64,
}

impl Measurement {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        1e9 / self.ns_per_op
    }

    /// Median latency at concurrency 1; the mean latency by Little's law
    /// (concurrency × time per operation) above.
    pub fn latency_ns(&self) -> f64 {
        self.ns_per_op * self.workload.concurrency as f64
    }
}

#[cfg(test)]
impl Measurement {
    /// A measurement from the id forms of its workload and contender, for
    /// the report's tests.
    pub(crate) fn of(workload: &str, contender: &str, ns_per_op: f64) -> Self {
        Measurement {
            workload: Workload::parse(workload).expect("a workload id"),
            contender: ContenderId::parse(contender).expect("a contender id"),
            ns_per_op,
        }
    }
}

/// Where criterion writes: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`,
/// else the workspace's `target/criterion` (found from `cargo metadata` when
/// run through cargo, else by walking up to the `Cargo.lock`).
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    target_dir().join("criterion")
}

/// The cargo target directory, found as criterion finds it.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(cargo) = std::env::var_os("CARGO")
        && let Ok(out) = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
        && let Ok(meta) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        && let Some(dir) = meta.get("target_directory").and_then(|d| d.as_str())
    {
        return PathBuf::from(dir);
    }
    let mut dir = std::env::current_dir().unwrap_or_default();
    loop {
        if dir.join("Cargo.lock").is_file() {
            return dir.join("target");
        }
        if !dir.pop() {
            return PathBuf::from("target");
        }
    }
}

/// Reads every `new/benchmark.json` + `new/estimates.json` under `dir` whose
/// ids are ours (`<workload>` / `<contender>`); other benchmarks are ignored.
pub fn read_criterion(dir: &Path) -> Vec<Measurement> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                if let Some(m) = read_one(&path) {
                    out.push(m);
                }
            } else if path
                .file_name()
                .is_none_or(|n| n != "base" && n != "change" && n != "report")
            {
                stack.push(path);
            }
        }
    }
    out.sort_by(|a, b| (a.workload, &a.contender).cmp(&(b.workload, &b.contender)));
    out
}

fn read_one(new: &Path) -> Option<Measurement> {
    let read =
        |name: &str| -> Option<serde_json::Value> { serde_json::from_slice(&std::fs::read(new.join(name)).ok()?).ok() };
    let benchmark = read("benchmark.json")?;
    let estimates = read("estimates.json")?;
    let workload = Workload::parse(benchmark.get("group_id")?.as_str()?)?;
    let contender = ContenderId::parse(benchmark.get("function_id")?.as_str()?)?;
    let ns_per_op = estimates.get("median")?.get("point_estimate")?.as_f64()?;
    Some(Measurement {
        workload,
        contender,
        ns_per_op,
    })
}

/// Writes measurements as JSON lines (what `compare` saves beside its report).
pub fn to_json_lines(measurements: &[Measurement]) -> String {
    measurements
        .iter()
        .map(|m| {
            serde_json::json!({
                "workload": m.workload.to_string(),
                "contender": m.contender.to_string(),
                "ns_per_op": m.ns_per_op,
            })
            .to_string()
                + "\n"
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_result(root: &Path, group: &str, function: &str, median: f64) {
        let dir = root.join(group.replace('/', "_")).join(function).join("new");
        std::fs::create_dir_all(&dir).expect("create the result directory");
        let benchmark = serde_json::json!({ "group_id": group, "function_id": function });
        let estimates = serde_json::json!({ "median": { "point_estimate": median } });
        std::fs::write(dir.join("benchmark.json"), benchmark.to_string()).expect("write");
        std::fs::write(dir.join("estimates.json"), estimates.to_string()).expect("write");
    }

    #[test]
    fn criterion_results_are_read_back_and_foreign_ones_ignored() {
        let root = std::env::temp_dir().join(format!("benches-measurement-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        write_result(&root, "load/256B/10k/c32", "sled:raw", 500.0);
        write_result(&root, "load/256B/10k/c1", "memory", 1_200.5);
        write_result(&root, "not-ours", "something", 1.0);
        // A previous run's `base` is not read.
        let base = root.join("load_256B_10k_c1").join("memory").join("base");
        std::fs::create_dir_all(&base).expect("create base");
        let found = read_criterion(&root);
        std::fs::remove_dir_all(&root).expect("clean up");
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].contender.to_string(), "memory");
        assert_eq!(found[0].ns_per_op, 1_200.5);
        // 500 ns per operation at 32 tasks: 2M ops/s, 16 µs mean latency.
        assert_eq!(found[1].workload.to_string(), "load/256B/10k/c32");
        assert_eq!(found[1].ops_per_sec(), 2_000_000.0);
        assert_eq!(found[1].latency_ns(), 16_000.0);
        let lines = to_json_lines(&found);
        assert_eq!(lines.lines().count(), 2);
        assert!(lines.contains("\"contender\":\"sled:raw\""));
    }
}
