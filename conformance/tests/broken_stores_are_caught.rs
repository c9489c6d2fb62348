//! The linearizability checker catches stores that are correct one
//! operation at a time but not atomic: wrappers around `MemoryStore` that
//! split one operation into a read and a write with a `yield_now` between
//! them, the classic bugs of a store built on a non-transactional client.
//!
//! Each wrapper passes a single-task workload (so it is sequentially
//! correct, and only a race can expose it), and the concurrent workload must
//! report it within a few rounds, every time.

use std::sync::Arc;

use conformance::checker::linearizability::{NotLinearizable, check};
use conformance::rules::concurrent::{Workload, concurrent_histories_are_linearizable, record_round};
use conformance::{StoreFactory, Unavailable};
use session_core::{Error, Overwrite, OwnedSession, Record, SessionStore, StoreKey, Timestamp, Update, async_trait};
use store_memory::MemoryStore;

/// Which operation the wrapper breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    /// `update` checks the version on a read, yields, then writes whatever
    /// version is there by then: two writers of one version can both win.
    UpdateReadThenWrite,
    /// `delete` reads liveness, yields, then removes: it reports what it
    /// read, not what it removed (a record created meanwhile vanishes with
    /// `false`, two deletes both say `true`).
    DeleteFromAStaleRead,
    /// `rotate` reads the record, yields, then rotates, and hands back what
    /// it read: a copy that a write in between made stale (the fault that
    /// let a rotated session's next save overwrite another request's write).
    RotateHandsBackAStaleRead,
}

struct Broken {
    inner: MemoryStore,
    flaw: Flaw,
}

#[async_trait]
impl SessionStore for Broken {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        self.inner.create(record, now).await
    }

    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        self.inner.load(key, now).await
    }

    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        if self.flaw != Flaw::UpdateReadThenWrite {
            return self.inner.update(key, update, now).await;
        }
        match self.inner.load(key, now).await? {
            None => return Err(Error::NotFound),
            Some(r) if r.version != update.expected_version => return Err(Error::Conflict { current: r.version }),
            Some(_) => {}
        }
        tokio::task::yield_now().await;
        // The flaw: the version check above is stale by now.
        let Some(current) = self.inner.load(key, now).await? else {
            return Err(Error::NotFound);
        };
        let blind = Update {
            expected_version: current.version,
            ..update
        };
        self.inner.update(key, blind, now).await
    }

    async fn overwrite(&self, key: &StoreKey, write: Overwrite, now: Timestamp) -> Result<u64, Error> {
        self.inner.overwrite(key, write, now).await
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        self.inner.touch(key, expires_at, now).await
    }

    async fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        if self.flaw != Flaw::RotateHandsBackAStaleRead {
            return self.inner.rotate(old_key, new_key, set_owner, now).await;
        }
        let read = self.inner.load(old_key, now).await?;
        tokio::task::yield_now().await;
        self.inner.rotate(old_key, new_key, set_owner, now).await?;
        // The flaw: what was read before the yield, not what was moved.
        let mut stale = read.ok_or(Error::NotFound)?;
        stale.key = *new_key;
        stale.version = 1;
        if let Some(o) = set_owner {
            stale.owner = Some(o.to_owned());
        }
        Ok(stale)
    }

    async fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        self.inner.was_rotated(key, now).await
    }

    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        if self.flaw != Flaw::DeleteFromAStaleRead {
            return self.inner.delete(key, now).await;
        }
        let was_live = self.inner.load(key, now).await?.is_some();
        tokio::task::yield_now().await;
        self.inner.delete(key, now).await?;
        Ok(was_live)
    }

    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        self.inner.list_by_owner(owner, now).await
    }

    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error> {
        self.inner.delete_by_owner(owner, now).await
    }

    async fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        self.inner.delete_expired(now, limit).await
    }
}

fn broken(flaw: Flaw) -> Arc<Broken> {
    Arc::new(Broken {
        inner: MemoryStore::new(),
        flaw,
    })
}

/// The most rounds the checker may need; in practice it needs one.
const MAX_ROUNDS: u64 = 20;

/// Runs concurrent rounds against the broken store until one is not
/// linearizable; returns the round and the report.
async fn first_failure(flaw: Flaw) -> Option<(u64, NotLinearizable)> {
    let workload = Workload::default();
    let seed = conformance::rules::concurrent::seed();
    for round in 0..MAX_ROUNDS {
        let history = record_round(broken(flaw), &workload, seed.wrapping_add(round)).await;
        if let Err(e) = check(&history) {
            return Some((round, e));
        }
    }
    None
}

async fn is_caught(flaw: Flaw) {
    let Some((round, report)) = first_failure(flaw).await else {
        panic!("{flaw:?}: {MAX_ROUNDS} rounds of the concurrent workload did not catch the broken store");
    };
    eprintln!("{flaw:?} caught in round {round}:\n{report}");
    assert!(
        !report.window.is_empty(),
        "the report names the operations where the search got stuck"
    );
}

async fn passes_alone(flaw: Flaw) {
    let workload = Workload {
        tasks: 1,
        ops_per_task: 1000,
        ..Workload::default()
    };
    let history = record_round(broken(flaw), &workload, conformance::rules::concurrent::seed()).await;
    if let Err(e) = check(&history) {
        panic!("{flaw:?} is sequentially correct, yet a one-task history failed:\n{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_then_write_update_is_not_linearizable() {
    passes_alone(Flaw::UpdateReadThenWrite).await;
    is_caught(Flaw::UpdateReadThenWrite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_that_reports_a_stale_read_is_not_linearizable() {
    passes_alone(Flaw::DeleteFromAStaleRead).await;
    is_caught(Flaw::DeleteFromAStaleRead).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotate_that_hands_back_a_stale_read_is_not_linearizable() {
    passes_alone(Flaw::RotateHandsBackAStaleRead).await;
    is_caught(Flaw::RotateHandsBackAStaleRead).await;
}

/// A correct store whose operations take a while, like a networked one: it
/// yields before and after the (atomic) operation, so most operations of a
/// round overlap and the checker has many orders to consider.
struct Latent(MemoryStore);

impl Latent {
    async fn latency() {
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
    }
}

#[async_trait]
impl SessionStore for Latent {
    async fn create(&self, record: Record, now: Timestamp) -> Result<(), Error> {
        Self::latency().await;
        let r = self.0.create(record, now).await;
        Self::latency().await;
        r
    }

    async fn load(&self, key: &StoreKey, now: Timestamp) -> Result<Option<Record>, Error> {
        Self::latency().await;
        let r = self.0.load(key, now).await;
        Self::latency().await;
        r
    }

    async fn update(&self, key: &StoreKey, update: Update, now: Timestamp) -> Result<u64, Error> {
        Self::latency().await;
        let r = self.0.update(key, update, now).await;
        Self::latency().await;
        r
    }

    async fn overwrite(&self, key: &StoreKey, write: Overwrite, now: Timestamp) -> Result<u64, Error> {
        Self::latency().await;
        let r = self.0.overwrite(key, write, now).await;
        Self::latency().await;
        r
    }

    async fn touch(&self, key: &StoreKey, expires_at: Timestamp, now: Timestamp) -> Result<bool, Error> {
        Self::latency().await;
        let r = self.0.touch(key, expires_at, now).await;
        Self::latency().await;
        r
    }

    async fn rotate(
        &self,
        old_key: &StoreKey,
        new_key: &StoreKey,
        set_owner: Option<&str>,
        now: Timestamp,
    ) -> Result<Record, Error> {
        Self::latency().await;
        let r = self.0.rotate(old_key, new_key, set_owner, now).await;
        Self::latency().await;
        r
    }

    async fn was_rotated(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        Self::latency().await;
        let r = self.0.was_rotated(key, now).await;
        Self::latency().await;
        r
    }

    async fn delete(&self, key: &StoreKey, now: Timestamp) -> Result<bool, Error> {
        Self::latency().await;
        let r = self.0.delete(key, now).await;
        Self::latency().await;
        r
    }

    async fn list_by_owner(&self, owner: &str, now: Timestamp) -> Result<Vec<OwnedSession>, Error> {
        Self::latency().await;
        let r = self.0.list_by_owner(owner, now).await;
        Self::latency().await;
        r
    }

    async fn delete_by_owner(&self, owner: &str, now: Timestamp) -> Result<u64, Error> {
        Self::latency().await;
        let r = self.0.delete_by_owner(owner, now).await;
        Self::latency().await;
        r
    }

    async fn delete_expired(&self, now: Timestamp, limit: usize) -> Result<u64, Error> {
        Self::latency().await;
        let r = self.0.delete_expired(now, limit).await;
        Self::latency().await;
        r
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_correct_store_with_latency_passes_and_is_checked_quickly() {
    let workload = Workload::default();
    let seed = conformance::rules::concurrent::seed();
    for round in 0..3 {
        let store = Arc::new(Latent(MemoryStore::new()));
        let history = record_round(store, &workload, seed.wrapping_add(round)).await;
        let started = std::time::Instant::now();
        match check(&history) {
            Ok(report) => eprintln!(
                "latent memory, round {round}: {} of {} ops overlapping, {} states, checked in {} ms",
                report.overlapping,
                report.ops,
                report.states_explored,
                started.elapsed().as_millis()
            ),
            Err(e) => panic!("round {round}: a correct store with latency is linearizable, yet:\n{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_correct_memory_store_passes_the_same_workload() {
    let workload = Workload::default();
    let seed = conformance::rules::concurrent::seed();
    for round in 0..3 {
        let store = Arc::new(MemoryStore::new());
        let history = record_round(store, &workload, seed.wrapping_add(round)).await;
        if let Err(e) = check(&history) {
            panic!("round {round}: MemoryStore is linearizable, yet:\n{e}");
        }
    }
}

/// Hands the broken store to the suite, exactly as a backend's test file does.
struct BrokenFactory(Flaw);

#[async_trait]
impl StoreFactory for BrokenFactory {
    type Store = Broken;

    fn name(&self) -> &'static str {
        "broken"
    }

    async fn make(&self) -> Result<Broken, Unavailable> {
        Ok(Broken {
            inner: MemoryStore::new(),
            flaw: self.0,
        })
    }
}

#[test]
fn the_suites_concurrent_rule_fails_on_each_broken_store() {
    for flaw in [
        Flaw::UpdateReadThenWrite,
        Flaw::DeleteFromAStaleRead,
        Flaw::RotateHandsBackAStaleRead,
    ] {
        let outcome = std::panic::catch_unwind(|| {
            conformance::run(
                BrokenFactory(flaw),
                concurrent_histories_are_linearizable::<BrokenFactory>,
            );
        });
        let Err(panic) = outcome else {
            panic!("{flaw:?}: the concurrent rule passed a broken store");
        };
        let message = panic.downcast_ref::<String>().map(String::as_str).unwrap_or_default();
        assert!(
            message.contains("is not linearizable"),
            "{flaw:?}: unexpected panic: {message}"
        );
    }
}
