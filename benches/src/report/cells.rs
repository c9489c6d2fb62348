//! What the report compares: per workload and family, our measurement, the
//! raw client's and the fastest peer's, and the speed ratio between two.

use std::collections::BTreeMap;

use crate::measurement::Measurement;
use crate::workload::Workload;
use crate::{Backend, Role};

/// The measurements of one workload and family: ours, raw, peers.
pub(super) struct Cell<'a> {
    pub(super) ours: Option<&'a Measurement>,
    pub(super) raw: Option<&'a Measurement>,
    pub(super) best_peer: Option<&'a Measurement>,
}

pub(super) fn cells(measurements: &[Measurement]) -> BTreeMap<(Workload, Backend), Cell<'_>> {
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
pub(super) fn speed(ours: &Measurement, theirs: &Measurement) -> f64 {
    theirs.ns_per_op / ours.ns_per_op
}
