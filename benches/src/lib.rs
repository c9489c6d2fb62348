//! # benches: every session backend beside its raw client and its peers
//!
//! This crate measures the backends of this workspace on **one set of
//! workloads**, written once in [`workload`], and puts each backend beside
//!
//! - the **raw client** underneath it doing the one round trip (or the one
//!   map operation) the operation needs: the physical limit; and
//! - the **peers**, the stores people use today, driven through their own
//!   store traits (cargo feature `peers`).
//!
//! Everything that is measured implements [`Contender`]; the backends of this
//! workspace plug in through their [`SessionStore`](session_core::SessionStore)
//! as `Arc<dyn SessionStore>`, so a new backend is one family entry in
//! [`lineup::FAMILIES`] (and its raw client).
//!
//! Ways to run it:
//!
//! - `cargo run -p benches --release --features peers --bin compare`: the quick
//!   comparison (a few minutes on 2 cores), with progress, writing
//!   `target/sessions-report/`;
//! - `cargo bench -p benches --features peers` then
//!   `cargo run -p benches --release --bin report`: the full criterion run and
//!   the report built from its results;
//! - `cargo run -p benches --release --bin memory_per_session`: bytes per
//!   stored session in `MemoryStore`;
//! - `redis_client_cost` and `sled_op_latency` (same command shape): where a
//!   Redis `load`'s CPU goes, and how long a sled operation holds its thread.
//!
//! It is not a load tester of HTTP stacks: no middleware is involved.

pub mod arena;
pub mod clock;
pub mod contenders;
pub mod error;
pub mod fan_out;
pub mod keys;
pub mod lineup;
pub mod measurement;
pub mod namespace;
pub mod op;
pub mod report;
pub mod round;
pub mod servers;
pub mod workload;

pub use contenders::{Backend, Contender, ContenderId, Role};
pub use error::BenchError;
pub use op::Op;
