//! A concurrent history: what many tasks asked a store, what it answered, and
//! when each call started and ended, as the linearizability checker needs it.
//!
//! Times are ticks of one shared monotonic counter, not clock readings: the
//! checker only needs the real-time order "A returned before B was invoked",
//! and a counter incremented with `SeqCst` gives exactly that order across
//! threads, with no ties and no clock resolution to worry about. The caller's
//! `now` (the contract's time) is an argument of the operation and lives in
//! its [`Call`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use session_core::SessionStore;

use crate::checker::model::{Call, Outcome, execute};

/// One completed operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The task that issued it (tasks are sequential: each has at most one
    /// operation in flight).
    pub task: usize,
    /// The operation and its caller's `now`.
    pub call: Call,
    /// What the store answered.
    pub outcome: Outcome,
    /// Tick taken just before the operation was issued.
    pub invoked: u64,
    /// Tick taken just after it returned; `invoked <= returned`.
    pub returned: u64,
}

impl Event {
    /// Whether this event returned before `other` was invoked, so every
    /// linearization must order it first.
    pub fn precedes(&self, other: &Event) -> bool {
        self.returned < other.invoked
    }
}

/// A finished history: every operation of every task, in invocation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    events: Vec<Event>,
}

impl History {
    /// A history from events (hand-written ones in tests, for example); they
    /// are sorted by invocation tick.
    pub fn new(mut events: Vec<Event>) -> Self {
        events.sort_by_key(|e| (e.invoked, e.returned));
        Self { events }
    }

    /// The events, in invocation order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// How many operations the history holds.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the history is empty.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Records a history from many tasks at once; share it behind an `Arc`.
///
/// ```
/// use std::sync::Arc;
/// use conformance::checker::history::Recorder;
/// use conformance::{Call, Op, Outcome, fresh_key};
/// use session_core::Timestamp;
/// use store_memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = MemoryStore::new();
/// let recorder = Arc::new(Recorder::new());
/// let call = Call { op: Op::Load(fresh_key()), now: Timestamp::now() };
/// assert_eq!(recorder.record(&store, 0, call).await, Outcome::Loaded(None));
/// let history = Arc::try_unwrap(recorder).ok().expect("one owner left").finish();
/// assert_eq!(history.len(), 1);
/// assert!(conformance::checker::linearizability::check(&history).is_ok());
/// # }
/// ```
#[derive(Debug, Default)]
pub struct Recorder {
    // The logical time of invocations and responses.
    ticks: AtomicU64,
    // A std mutex: held only to push one event, never across an `.await`.
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    fn tick(&self) -> u64 {
        self.ticks.fetch_add(1, Ordering::SeqCst)
    }

    /// Runs `call` against `store` on behalf of `task`, records it with its
    /// invocation and response ticks, and returns the outcome.
    pub async fn record<S: SessionStore + ?Sized>(&self, store: &S, task: usize, call: Call) -> Outcome {
        let invoked = self.tick();
        let outcome = execute(store, &call).await;
        let returned = self.tick();
        let event = Event {
            task,
            call,
            outcome: outcome.clone(),
            invoked,
            returned,
        };
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event);
        outcome
    }

    /// The history recorded so far.
    pub fn finish(self) -> History {
        History::new(
            self.events
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}
