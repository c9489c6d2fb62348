//! Runs one rule against a fresh backend: a manual clock, the adapter over
//! the HTTP layer's counting store (each tower operation must be exactly one
//! call of our store, which each backend's own tests prove is one round
//! trip), a loud skip (or a failure under
//! `SESSIONS_REQUIRE_SERVICES=1`) when the backend's server is missing.

use std::future::Future;
use std::sync::Arc;

use compat_tower_sessions::TowerStore;
use session_core::{Clock, ManualClock, SessionStore, Timestamp};
use session_tower::testkit::{Calls, CountingStore};
use time::OffsetDateTime;

use crate::backends::{Backend, Made};

/// The adapter as the tests drive it.
pub type Adapter = TowerStore<Arc<Counting>, Arc<ManualClock>>;

/// Our store under the adapter, counting the calls it gets.
pub type Counting = CountingStore<dyn SessionStore>;

/// What a rule gets.
pub struct Harness {
    pub backend: Backend,
    /// The store through tower's traits.
    pub tower: Adapter,
    /// The calls the adapter made of our store.
    pub counting: Arc<Counting>,
    /// The adapter's clock, anchored at the real time (server TTLs then
    /// agree with it); advance it to expire sessions.
    pub clock: Arc<ManualClock>,
    made: Made,
}

impl Harness {
    /// Our store under the adapter, for checks below tower's view.
    pub fn inner(&self) -> &Arc<dyn SessionStore> {
        self.counting.inner()
    }

    /// The calls the adapter made of our store since the last `take_calls`.
    pub fn take_calls(&self) -> Calls {
        let calls = self.counting.calls();
        self.counting.reset();
        calls
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The clock's instant as tower's time, plus `extra_nanos` (tower's
    /// expiries have nanoseconds; ours milliseconds).
    pub fn at(&self, ms_from_now: i64, extra_nanos: i128) -> OffsetDateTime {
        let ms = i128::from(self.now().as_millis()) + i128::from(ms_from_now);
        OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000 + extra_nanos).expect("a time near now")
    }

    pub async fn bytes_at_rest(&self) -> Option<Vec<u8>> {
        self.made.bytes_at_rest().await
    }

    /// The round trips counted between a networked store and its server.
    pub fn wire(&self) -> Option<&crate::wire::Wire> {
        self.made.wire.as_ref()
    }
}

pub fn run<T, Fut>(backend: Backend, rule: T)
where
    T: FnOnce(Arc<Harness>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built in a test process");
    runtime.block_on(async move {
        let made = match backend.make().await {
            Ok(made) => made,
            Err(e) => {
                conformance::fixtures::skip_or_fail(backend.name(), &e);
                return;
            }
        };
        let counting = Arc::new(CountingStore::new(Arc::clone(&made.store)));
        let clock = Arc::new(ManualClock::starting_now());
        let harness = Arc::new(Harness {
            backend,
            tower: TowerStore::with_clock(Arc::clone(&counting), Arc::clone(&clock)),
            counting,
            clock,
            made,
        });
        // On its own task, so a failing rule still lets the backend be
        // cleaned up before the failure is reported.
        let outcome = tokio::spawn(rule(Arc::clone(&harness))).await;
        if let Ok(harness) = Arc::try_unwrap(harness) {
            drop(harness.tower);
            drop(harness.counting);
            harness.made.cleanup().await;
        }
        if let Err(e) = outcome {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("{}: the rule's task was cancelled: {e}", backend.name()),
            }
        }
    });
}
