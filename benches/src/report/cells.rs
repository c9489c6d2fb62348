//! What the report compares: per workload and family, our measurement, the
//! raw client's and the fastest peer's, ours through the tower-sessions
//! adapter and the fastest tower-sessions store's, and the speed ratio
//! between two.

use std::collections::BTreeMap;

use crate::measurement::Measurement;
use crate::workload::Workload;
use crate::{Backend, Role};

/// The measurements of one workload and family: ours, raw, peers, and ours
/// through the tower-sessions adapter.
pub(super) struct Cell<'a> {
    pub(super) ours: Option<&'a Measurement>,
    pub(super) raw: Option<&'a Measurement>,
    pub(super) best_peer: Option<&'a Measurement>,
    /// Ours through compat-tower-sessions.
    pub(super) compat: Option<&'a Measurement>,
    /// The fastest tower-sessions store (a peer named `tower-sessions-*`):
    /// what the adapter replaces.
    pub(super) best_tower: Option<&'a Measurement>,
}

/// The prefix of the tower-sessions stores' crate names.
const TOWER_STORE: &str = "tower-sessions-";

fn faster<'a>(best: &mut Option<&'a Measurement>, m: &'a Measurement) {
    if best.is_none_or(|b| m.ns_per_op < b.ns_per_op) {
        *best = Some(m);
    }
}

pub(super) fn cells(measurements: &[Measurement]) -> BTreeMap<(Workload, Backend), Cell<'_>> {
    let mut out: BTreeMap<(Workload, Backend), Cell<'_>> = BTreeMap::new();
    for m in measurements {
        let cell = out.entry((m.workload, m.contender.backend)).or_insert(Cell {
            ours: None,
            raw: None,
            best_peer: None,
            compat: None,
            best_tower: None,
        });
        match &m.contender.role {
            Role::Ours => cell.ours = Some(m),
            Role::Raw => cell.raw = Some(m),
            Role::Peer(name) => {
                faster(&mut cell.best_peer, m);
                if name.starts_with(TOWER_STORE) {
                    faster(&mut cell.best_tower, m);
                }
            }
            Role::Compat => cell.compat = Some(m),
        }
    }
    out
}

/// Ours ÷ theirs in speed (throughput): 1.0 = as fast, 2.0 = twice as fast.
pub(super) fn speed(ours: &Measurement, theirs: &Measurement) -> f64 {
    theirs.ns_per_op / ours.ns_per_op
}
