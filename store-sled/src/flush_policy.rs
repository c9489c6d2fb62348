//! When writes reach the disk, and so what a crash can lose.

use std::time::Duration;

/// When a [`SledStore`](crate::SledStore) makes its writes durable.
///
/// sled first writes into in-memory log buffers; a *flush* writes them out
/// and `fsync`s. What a crash (power loss, `SIGKILL`, a panic that aborts)
/// can lose depends on this policy. In both cases a reopened database is
/// consistent: each operation's change of a record is recovered entirely or
/// not at all, and every record is indexed (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FlushPolicy {
    /// Every operation that writes waits for a flush of the log before it
    /// returns `Ok`. An acknowledged write survives any crash of the process
    /// or the machine (as far as the disk honours `fsync`). Costs one `fsync`
    /// per write; concurrent writers share flushes. The default.
    #[default]
    EveryWrite,
    /// A background thread of sled flushes every given interval (sled's
    /// `flush_every_ms`). Writes are acknowledged at memory speed; a crash
    /// loses at most about the last interval of acknowledged writes (never
    /// part of one). Dropping the store flushes.
    Periodic(Duration),
}
