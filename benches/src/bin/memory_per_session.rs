//! Bytes per stored session in `MemoryStore` at 1,000,000 sessions of
//! 256 B: heap bytes held after inserting them minus before, counted by an
//! instrumented global allocator, divided by the number of sessions. The
//! target (see "Targets" in `benches/README.md`) is at most
//! 2 × 256 + 200 = 712 B.
//!
//! ```sh
//! cargo run -p benches --release --bin memory_per_session
//! ```
//!
//! The count is of bytes requested from the allocator; the allocator's own
//! per-block overhead (8 to 16 B per block in glibc) comes on top, and the
//! resident-set growth is printed beside it for that reason.

use std::alloc::System;

use benches::keys::{PRELOAD_STREAM, key, payload, record};
use bytes::Bytes;
use session_core::{SessionStore, Timestamp};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use store_memory::MemoryStore;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SESSIONS: usize = 1_000_000;
const PAYLOAD: usize = 256;
const TARGET: f64 = (2 * PAYLOAD + 200) as f64;

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() -> Result<(), session_core::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime can be built");
    let template = payload(PAYLOAD);
    let now = Timestamp::now();
    let expires_at = now + std::time::Duration::from_secs(3600);
    // Room for all of them: the bound is per shard, and keys do not spread
    // exactly evenly, so a bound of exactly 1,000,000 would evict a few.
    let store = MemoryStore::builder().max_sessions(SESSIONS + SESSIONS / 10).build();
    let rss_before = resident_bytes();
    let region = Region::new(GLOBAL);
    runtime.block_on(async {
        for i in 0..SESSIONS as u64 {
            // Each session has its own copy of its data, as it would after
            // decoding a request.
            let record = record(
                key(PRELOAD_STREAM, i),
                Bytes::copy_from_slice(&template),
                now,
                expires_at,
            );
            store.create(record, now).await?;
        }
        Ok::<_, session_core::Error>(())
    })?;
    let change = region.change();
    let rss_after = resident_bytes();
    let held = change.bytes_allocated as f64 - change.bytes_deallocated as f64 + change.bytes_reallocated as f64;
    let stored = store.len();
    let per_session = held / stored as f64;
    println!("MemoryStore, {stored} sessions of {PAYLOAD} B, no owner");
    println!(
        "heap held: {:.1} MiB = {per_session:.0} B per session ({:.0} B beyond the payload); target ≤ {TARGET:.0} B: {}",
        held / 1048576.0,
        per_session - PAYLOAD as f64,
        if per_session <= TARGET { "MET" } else { "MISSED" }
    );
    println!(
        "allocations: {} (+{} reallocations), {:.2} live blocks per session",
        change.allocations,
        change.reallocations,
        (change.allocations as f64 - change.deallocations as f64) / stored as f64
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!(
            "resident set growth: {:.1} MiB = {:.0} B per session (includes allocator overhead and free space)",
            (after.saturating_sub(before)) as f64 / 1048576.0,
            after.saturating_sub(before) as f64 / stored as f64
        );
    }
    drop(store);
    Ok(())
}
