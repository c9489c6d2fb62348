//! Picking loopback ports for nodes: the data port `p` and the cluster bus
//! port `p + 10000` must both be free.

use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Data ports are taken from this range; bus ports are 10000 higher.
const FIRST: u16 = 21000;
const END: u16 = 29000;
/// Redis puts a node's cluster bus on its data port plus this.
pub(crate) const BUS_OFFSET: u16 = 10000;

/// Where the next search starts. Shared by every cluster of the process, so
/// two clusters started at once never pick the same ports; it starts at an
/// offset derived from the pid and the clock, so that test binaries running
/// side by side start far apart (a clash between processes is still
/// possible: the node then fails to bind and the start is retried).
static CURSOR: Mutex<Option<u16>> = Mutex::new(None);

/// `count` data ports whose data and bus ports could be bound just now.
pub(crate) fn free_ports(count: usize) -> Result<Vec<u16>, String> {
    let mut cursor = CURSOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let span = END - FIRST;
    let mut next = cursor.unwrap_or_else(|| FIRST + start_offset(span));
    let mut ports = Vec::with_capacity(count);
    for _ in 0..span {
        let port = next;
        next = if next + 1 >= END { FIRST } else { next + 1 };
        if is_free(port) && is_free(port + BUS_OFFSET) {
            ports.push(port);
            if ports.len() == count {
                *cursor = Some(next);
                return Ok(ports);
            }
        }
    }
    *cursor = Some(next);
    Err(format!(
        "only {} of the {count} ports needed are free in {FIRST}..{END} (with their bus ports)",
        ports.len()
    ))
}

/// Whether 127.0.0.1:`port` can be bound now (std sets SO_REUSEADDR, so a
/// port whose last connections linger in TIME_WAIT counts as free, as it
/// does for redis-server).
pub(crate) fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn start_offset(span: u16) -> u16 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = std::process::id().wrapping_mul(7919).wrapping_add(nanos);
    // In whole blocks of 16, so that one cluster's ports tend to be adjacent.
    u16::try_from(mixed % u32::from(span / 16)).map_or(0, |block| block * 16)
}
