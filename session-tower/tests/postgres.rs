//! The HTTP kit against the PostgreSQL at `DATABASE_URL` (default the local
//! server), each test in its own table, dropped when the test is done.

use conformance::{StoreFactory, Unavailable};
use session_core::async_trait;
use store_postgres::PostgresStore;

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

struct Postgres;

#[async_trait]
impl StoreFactory for Postgres {
    type Store = PostgresStore;

    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn make(&self) -> Result<PostgresStore, Unavailable> {
        let table = format!("t{}", conformance::fresh_key().short());
        let store = PostgresStore::builder()
            .url(database_url())
            .schema("session_tower")
            .table(table)
            // The concurrency rules run up to 64 requests at once.
            .max_connections(8)
            .connect()
            .await
            .map_err(|e| Unavailable(format!("PostgreSQL at {}: {e}", database_url())))?;
        if let Err(e) = store.migrate().await {
            panic!("migrating {} failed: {e}", store.table());
        }
        Ok(store)
    }

    async fn dispose(&self, store: PostgresStore) {
        if let Err(e) = store.drop_table().await {
            panic!("dropping {} failed: {e}", store.table());
        }
        store.close().await;
    }
}

session_tower::http_suite!(Postgres);
