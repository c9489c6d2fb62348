//! The optional background sweeper: calls `delete_expired` on a timer.
//!
//! It is a tokio task that holds only a [`Weak`] reference to the store, so
//! it never keeps the database open, and a oneshot receiver whose sender
//! lives in the store: dropping the last handle of the store drops the
//! sender, which wakes the task at once and ends it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use session_core::Clock;
use tokio::sync::oneshot;

use crate::store::Inner;

/// Starts the sweeper on the current tokio runtime. Returns the sender that
/// the store keeps; dropping it stops the task.
pub(crate) fn spawn(
    runtime: &tokio::runtime::Handle,
    store: Weak<Inner>,
    period: Duration,
    batch: usize,
    clock: Arc<dyn Clock>,
) -> oneshot::Sender<()> {
    let (stop, mut stopped) = oneshot::channel::<()>();
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(period);
        // A slow sweep must not be followed by a burst of catch-up sweeps.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = ticks.tick() => {}
            }
            let Some(inner) = store.upgrade() else { break };
            let now = clock.now();
            // Sweeping reads and writes many keys: keep it off the workers.
            let swept = tokio::task::spawn_blocking(move || {
                let removed = inner.delete_expired_blocking(now, batch)?;
                inner.acknowledge(removed > 0)?;
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
    stop
}
