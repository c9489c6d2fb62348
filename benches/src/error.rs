//! [`BenchError`]: why a contender's operation, or the making of a
//! contender, failed.

use std::fmt;

/// A failure of a contender's operation that the workload cannot treat as
/// an ordinary outcome. Workloads count these and go on; the runner prints
/// the count, so a broken contender shows instead of looking fast.
#[derive(Debug)]
pub struct BenchError(pub String);

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl BenchError {
    /// Wraps any displayable error with what was being done.
    pub fn new(context: &str, error: impl fmt::Display) -> Self {
        BenchError(format!("{context}: {error}"))
    }
}
