//! How a backend plugs into the suite: a [`StoreFactory`] that makes fresh,
//! isolated stores, and [`run`], which turns one rule into one `#[test]`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use session_core::{
    Bytes, ManualClock, Record, SessionId, SessionStore, StoreKey, Timestamp, Update, async_trait, mint_id,
};

/// The environment variable that turns a missing server from a skip into a
/// failure. `.ci/run` sets it to `1`.
pub const REQUIRE_SERVICES_ENV: &str = "SESSIONS_REQUIRE_SERVICES";

/// The server a factory needs is not reachable: tests skip loudly, or fail if
/// [`REQUIRE_SERVICES_ENV`] is `1`.
#[derive(Debug, Clone)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a backend gives the suite.
///
/// ```
/// use conformance::{StoreFactory, Unavailable};
/// use session_core::async_trait;
/// use store_memory::MemoryStore;
///
/// struct Memory;
///
/// #[async_trait]
/// impl StoreFactory for Memory {
///     type Store = MemoryStore;
///     fn name(&self) -> &'static str { "memory" }
///     async fn make(&self) -> Result<MemoryStore, Unavailable> { Ok(MemoryStore::new()) }
/// }
///
/// // In tests/conformance.rs of the backend:
/// // conformance::suite!(Memory);
/// ```
#[async_trait]
pub trait StoreFactory: Send + Sync + 'static {
    /// The store under test.
    type Store: SessionStore;

    /// A short name for messages, e.g. `"redis"`.
    fn name(&self) -> &'static str;

    /// A fresh, empty store isolated from every other store this factory
    /// makes (its own key prefix, table, directory...), so tests run in
    /// parallel. `Err(Unavailable)` if the server cannot be reached.
    async fn make(&self) -> Result<Self::Store, Unavailable>;

    /// Damages the stored record of `key` (which exists and is live) so that
    /// reading it must give `Error::Corrupt`, from the store or from
    /// decoding its data.
    ///
    /// The default goes through the public contract: it writes bytes that
    /// are no session data format ([`FOREIGN_DATA`]) with an `update`, as
    /// another program sharing the storage could. A backend whose storage
    /// can be damaged below the contract (a field of a Redis hash, a row
    /// edited in SQL, bytes on disk) should override it to damage it that
    /// way, so the suite checks that the store itself copes.
    async fn corrupt(&self, store: &Self::Store, key: &StoreKey) {
        let now = Timestamp::now();
        let record = match store.load(key, now).await {
            Ok(Some(r)) => r,
            other => panic!("corrupt: the record to damage must be live, got {other:?}"),
        };
        let foreign = Update {
            expected_version: record.version,
            data: Bytes::from_static(FOREIGN_DATA),
            expires_at: record.expires_at,
            owner: record.owner,
        };
        if let Err(e) = store.update(key, foreign, now).await {
            panic!("corrupt: writing foreign bytes failed: {e}");
        }
    }

    /// Whether the server removes expired records by itself, so that
    /// `delete_expired` may return 0 (Redis). Default `false`.
    fn expires_by_itself(&self) -> bool {
        false
    }

    /// Whether a `rotate` that moves a session from one shard to another
    /// (see [`SessionStore::shard_of_key`]) is one atomic step, like every
    /// other operation. Default `true`, and a store whose `shard_of_key` is
    /// `None` has nothing to declare: it never moves a session between
    /// shards.
    ///
    /// A sharding backend that cannot move a record between two shards in
    /// one step (Redis Cluster: a script runs in one slot) returns `false`
    /// and does such a rotate in two steps: first it *seals* the old key
    /// (from then on the old key holds a rotation mark, not the session),
    /// then it *publishes* the moved record under the new key. This is the
    /// one declared difference between backends, and the suite allows
    /// exactly this much for it:
    ///
    /// - a load racing the rotate may find *neither* key live (between the
    ///   two steps), which an atomic rotate never shows;
    /// - it never finds *both*: once a reader has seen the new key live, no
    ///   load issued after that finds the old key live (a store that
    ///   publishes before it seals fails);
    /// - everything else is as for an atomic rotate: the errors, the record
    ///   `rotate` hands back, and, once it has returned, the new key live
    ///   with the moved record and the old one holding a rotation mark.
    ///
    /// [`races::a_rotate_across_shards_never_shows_two_live_copies`](crate::rules::races::a_rotate_across_shards_never_shows_two_live_copies)
    /// checks it, and with `true` also checks that the rotate is one step:
    /// once a reader has seen the old key gone, no load issued after that
    /// finds the new key missing. A rotate within one shard must be atomic
    /// either way; the linearizability rule checks that, since every rotate
    /// of its workload stays within one shard.
    fn atomic_cross_shard_rotate(&self) -> bool {
        true
    }

    /// Called when a test is done with a store (drop a table, a prefix...).
    async fn dispose(&self, store: Self::Store) {
        drop(store);
    }
}

/// Bytes that no session data format starts with (format byte 9, then text),
/// as the default [`StoreFactory::corrupt`] writes them.
pub const FOREIGN_DATA: &[u8] = b"\x09not a session";

/// What every rule gets: the factory, a fresh store and a manual clock
/// anchored at the real current time.
pub struct Ctx<F: StoreFactory> {
    /// The backend's factory.
    pub factory: Arc<F>,
    /// A fresh store made for this test.
    pub store: Arc<F::Store>,
    /// The test's clock; advance it by an hour or more so server TTLs never fire.
    pub clock: Arc<ManualClock>,
}

/// How many owner names [`Ctx::owner_beside`] and [`Ctx::owner_apart`]
/// try: a store of `n` shards needs `n` on average (16384 for the slots of
/// a Redis Cluster), so this many miss with probability below `e^-256`.
const OWNER_DRAWS: usize = 1 << 22;

/// One hour: the unit of time in the suite, long enough that no server-side
/// TTL fires during a test run.
pub const HOUR: Duration = Duration::from_secs(3600);

impl<F: StoreFactory> Ctx<F> {
    /// The clock's current time.
    pub fn now(&self) -> Timestamp {
        session_core::Clock::now(&*self.clock)
    }

    /// A fresh random key.
    pub fn key(&self) -> StoreKey {
        fresh_key()
    }

    /// A record with a fresh key, created now, expiring after `ttl` (see
    /// [`fixtures::record`](crate::fixtures::record)).
    pub fn record(&self, ttl: Duration) -> Record {
        crate::fixtures::record(fresh_key(), self.now(), ttl)
    }

    /// A fresh key for a session of `owner`: minted with
    /// [`mint_id`](session_core::mint_id) into the shard the store keeps
    /// `owner`'s sessions in, so a sharding store accepts an owned record
    /// under it (and a rotate onto it that sets or keeps that owner). Any
    /// fresh key for `None`, or on a store that does not shard.
    pub fn key_for(&self, owner: Option<&str>) -> StoreKey {
        key_for(&*self.store, owner)
    }

    /// A record of `owner` under a key minted for its shard
    /// ([`Ctx::key_for`]), created now, expiring after `ttl`.
    pub fn owned_record(&self, ttl: Duration, owner: &str) -> Record {
        Record {
            owner: Some(owner.to_owned()),
            ..crate::fixtures::record(self.key_for(Some(owner)), self.now(), ttl)
        }
    }

    /// An owner named `name`, or `name-1`, `name-2`... if the store keeps
    /// `name`'s sessions in another shard than `beside`'s: the first of
    /// these in `beside`'s shard, so a key of either owner may pass to the
    /// other. `name` itself on a store that does not shard.
    pub fn owner_beside(&self, beside: &str, name: &str) -> String {
        owner_beside(&*self.store, beside, name)
    }

    /// An owner named `name`, `name-1`, `name-2`... whose sessions the store
    /// keeps in another shard than `apart`'s; `None` on a store that does
    /// not shard (or has a single shard).
    pub fn owner_apart(&self, apart: &str, name: &str) -> Option<String> {
        let shard = self.store.shard_of_owner(apart)?;
        draw_owner(name, |o| self.store.shard_of_owner(o) != Some(shard))
    }

    /// Another fresh store from the same factory; dispose of it with
    /// [`Ctx::dispose`].
    pub async fn fresh_store(&self) -> F::Store {
        match self.factory.make().await {
            Ok(s) => s,
            Err(e) => panic!("{}: could not make a second store: {e}", self.factory.name()),
        }
    }

    /// Hands a store made by [`Ctx::fresh_store`] back to the factory.
    pub async fn dispose(&self, store: F::Store) {
        self.factory.dispose(store).await;
    }
}

/// [`Ctx::key_for`] for any store.
pub(crate) fn key_for<S: SessionStore + ?Sized>(store: &S, owner: Option<&str>) -> StoreKey {
    let shard = owner.and_then(|o| store.shard_of_owner(o));
    match mint_id(store, shard) {
        Ok(id) => id.store_key(),
        Err(e) => panic!("no key could be minted for shard {shard:?}: {e}"),
    }
}

/// [`Ctx::owner_beside`] for any store.
pub(crate) fn owner_beside<S: SessionStore + ?Sized>(store: &S, beside: &str, name: &str) -> String {
    let shard = store.shard_of_owner(beside);
    draw_owner(name, |o| store.shard_of_owner(o) == shard)
        .unwrap_or_else(|| panic!("no owner found in the shard of {beside:?} after {OWNER_DRAWS} names"))
}

/// The first of `name`, `name-1`, `name-2`... that `fits`, within
/// [`OWNER_DRAWS`] names.
fn draw_owner(name: &str, fits: impl Fn(&str) -> bool) -> Option<String> {
    std::iter::once(name.to_owned())
        .chain((1..OWNER_DRAWS).map(|i| format!("{name}-{i}")))
        .find(|o| fits(o))
}

/// A random key, as a session id would produce.
pub fn fresh_key() -> StoreKey {
    match SessionId::generate() {
        Ok(id) => id.store_key(),
        Err(e) => panic!("the OS random source failed: {e}"),
    }
}

/// Whether a missing server must fail the test run.
pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES_ENV).is_ok_and(|v| v == "1")
}

/// Prints a skip loudly: straight to the process's stderr, which the test
/// harness does not capture (it captures only the `print!` family), so the
/// line shows even though the test passes.
pub fn announce_skip(backend: &str, why: &dyn std::fmt::Display) {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED: {backend} server unavailable ({why}); set {REQUIRE_SERVICES_ENV}=1 to fail instead ***"
    );
}

/// Runs one rule against a fresh store of `factory` on a multi-thread tokio
/// runtime. If the factory's server is unavailable, prints a loud skip
/// message, or panics when [`services_required`].
pub fn run<F, T, Fut>(factory: F, test: T)
where
    F: StoreFactory,
    T: FnOnce(Arc<Ctx<F>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built in a test process");
    runtime.block_on(async move {
        let factory = Arc::new(factory);
        let store = match factory.make().await {
            Ok(store) => store,
            Err(e) => {
                crate::fixtures::skip_or_fail(factory.name(), &e);
                return;
            }
        };
        let ctx = Arc::new(Ctx {
            factory: Arc::clone(&factory),
            store: Arc::new(store),
            clock: Arc::new(ManualClock::starting_now()),
        });
        // On its own task, so that a failing rule (a panic) still lets the
        // store be disposed of (a table dropped, a prefix deleted) before the
        // failure is reported.
        let outcome = tokio::spawn(test(Arc::clone(&ctx))).await;
        // Dispose only when nothing holds the store any more.
        if let Ok(ctx) = Arc::try_unwrap(ctx)
            && let Ok(store) = Arc::try_unwrap(ctx.store)
        {
            factory.dispose(store).await;
        }
        if let Err(e) = outcome {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("{}: the test task was cancelled: {e}", factory.name()),
            }
        }
    });
}
