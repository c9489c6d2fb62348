//! The optional background sweeper: calls `delete_expired` on a timer.
//!
//! It is a tokio task that holds only a [`Weak`] reference to the store, so
//! it never keeps the database open, and a oneshot receiver whose sender
//! lives in the store: dropping the last handle of the store drops the
//! sender, which wakes the task at once and ends it.
//!
//! Starting it takes two steps, [`prepare`] and then [`Prepared::start`],
//! because the task must not exist before the store it sweeps does: its
//! first tick fires at once, and a task spawned while the store is still
//! being built (inside `Arc::new_cyclic`, say) can run on another worker
//! before the store's `Arc` is complete, find its `Weak` not upgradable, take
//! the store for dropped and end for good, leaving a store that never sweeps.

use std::sync::{Arc, Weak};
use std::time::Duration;

use session_core::Clock;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::database::Database;

/// A sweeper ready to start: everything but the store it will sweep.
pub(crate) struct Prepared {
    period: Duration,
    batch: usize,
    clock: Arc<dyn Clock>,
    stopped: oneshot::Receiver<()>,
}

/// Prepares a sweeper. Returns the sender that the store keeps (dropping it
/// stops the task) and the sweeper, to [`start`](Prepared::start) once the
/// store exists.
pub(crate) fn prepare(period: Duration, batch: usize, clock: Arc<dyn Clock>) -> (oneshot::Sender<()>, Prepared) {
    let (stop, stopped) = oneshot::channel::<()>();
    let prepared = Prepared {
        period,
        batch,
        clock,
        stopped,
    };
    (stop, prepared)
}

impl Prepared {
    /// Spawns the task on `runtime`. `database` must already be upgradable: a
    /// failed upgrade means the store was dropped, and ends the task.
    pub(crate) fn start(self, runtime: &tokio::runtime::Handle, database: Weak<Database>) -> AbortHandle {
        let Self {
            period,
            batch,
            clock,
            mut stopped,
        } = self;
        let task = runtime.spawn(async move {
            let mut ticks = tokio::time::interval(period);
            // A slow sweep must not be followed by a burst of catch-up sweeps.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {}
                }
                let Some(database) = database.upgrade() else { break };
                let now = clock.now();
                // Sweeping reads and writes many keys: keep it off the workers.
                let swept = tokio::task::spawn_blocking(move || {
                    let removed = database.delete_expired(now, batch)?;
                    database.acknowledge(removed > 0)?;
                    Ok::<_, session_core::Error>(removed)
                })
                .await;
                match swept {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => tracing::debug!(removed = n, "sled sweeper removed expired sessions"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "sled sweeper failed; retrying next period"),
                    Err(e) => tracing::warn!(error = %e, "sled sweeper task failed; retrying next period"),
                }
            }
        });
        task.abort_handle()
    }
}
