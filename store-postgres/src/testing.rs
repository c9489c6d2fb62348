//! The test factory of this backend (feature `test-hooks`): what the
//! conformance suite, the HTTP kit and any other suite over
//! [`conformance::StoreFactory`] run against. Not for applications.

use conformance::{StoreFactory, Unavailable};
use session_core::{StoreKey, async_trait};
use sqlx::Connection as _;
use tokio::sync::OnceCell;

use crate::PostgresStore;

/// The PostgreSQL the tests use: `DATABASE_URL`, or the local server's
/// database `test`.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Stores on the PostgreSQL at [`database_url`], each in a fresh table of
/// its own in one schema (so tests run in parallel), migrated when made and
/// dropped when disposed of. All stores of one factory share one pool of
/// 16 connections, as the state-machine rule makes a store per case: build
/// one factory per test (the suite macros do), inside that test's runtime.
/// A server that cannot be reached is [`Unavailable`]: the suite skips, or
/// fails under `SESSIONS_REQUIRE_SERVICES=1`.
///
/// ```no_run
/// use conformance::StoreFactory;
/// use store_postgres::testing::PostgresFactory;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let factory = PostgresFactory::new("conformance");
/// let store = factory.make().await.expect("a PostgreSQL at DATABASE_URL");
/// assert!(store.table().starts_with("\"conformance\"."));
/// factory.dispose(store).await;
/// # }
/// ```
#[derive(Debug)]
pub struct PostgresFactory {
    schema: &'static str,
    // The first store made; later ones are `with_table` siblings of it.
    base: OnceCell<Result<PostgresStore, Unavailable>>,
}

impl PostgresFactory {
    /// A factory whose tables go in `schema` (created if missing).
    pub fn new(schema: &'static str) -> Self {
        Self {
            schema,
            base: OnceCell::new(),
        }
    }
}

#[async_trait]
impl StoreFactory for PostgresFactory {
    type Store = PostgresStore;

    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn make(&self) -> Result<PostgresStore, Unavailable> {
        let base = self
            .base
            .get_or_init(|| async {
                PostgresStore::builder()
                    .url(database_url())
                    .schema(self.schema)
                    .table("unused")
                    // The concurrent rules run 8 to 64 tasks at once.
                    .max_connections(16)
                    .connect()
                    .await
                    .map_err(|e| Unavailable(format!("PostgreSQL at {}: {e}", database_url())))
            })
            .await
            .clone()?;
        let table = format!("sessions_{}", conformance::fresh_key().short());
        let store = base
            .with_table(self.schema, &table)
            .expect("generated table names are valid identifiers");
        if let Err(e) = store.migrate().await {
            panic!("migrating {} failed: {e}", store.table());
        }
        Ok(store)
    }

    async fn corrupt(&self, store: &PostgresStore, key: &StoreKey) {
        // Damage the data the way a foreign writer or a bad restore would:
        // bytes that are no session format.
        let mut conn = sqlx::PgConnection::connect(&database_url())
            .await
            .expect("the server the store just reached is reachable");
        let sql = format!(
            "UPDATE {} SET data = '\\xff0001'::bytea WHERE key = '\\x{}'::bytea",
            store.table(),
            key.to_hex()
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .expect("the test's own SQL runs");
    }

    async fn dispose(&self, store: PostgresStore) {
        if let Err(e) = store.drop_table().await {
            panic!("dropping {} failed: {e}", store.table());
        }
    }
}
