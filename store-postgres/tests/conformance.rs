//! The shared conformance suite against the real PostgreSQL at
//! `DATABASE_URL` (default: the local server). Every store the suite asks
//! for gets its own table in the schema `conformance`, dropped afterwards,
//! so the tests run in parallel; all stores of one test share one set of
//! connections, because the state-machine rule makes a store per case.

mod support;

use conformance::{StoreFactory, Unavailable};
use session_core::{StoreKey, async_trait};
use store_postgres::PostgresStore;
use tokio::sync::OnceCell;

/// Makes stores for one test. Each `#[test]` builds its own factory inside its
/// own tokio runtime, so the shared connections never outlive their runtime.
struct Postgres {
    // The first store made; later ones are `with_table` siblings of it.
    base: OnceCell<Result<PostgresStore, Unavailable>>,
}

fn postgres() -> Postgres {
    Postgres { base: OnceCell::new() }
}

#[async_trait]
impl StoreFactory for Postgres {
    type Store = PostgresStore;

    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn make(&self) -> Result<PostgresStore, Unavailable> {
        let base = self
            .base
            .get_or_init(|| async {
                PostgresStore::builder()
                    .url(support::database_url())
                    .schema("conformance")
                    .table("unused")
                    // The concurrent rules run 8 to 32 tasks at once.
                    .max_connections(16)
                    .connect()
                    .await
                    .map_err(|e| Unavailable(format!("PostgreSQL at {}: {e}", support::database_url())))
            })
            .await
            .clone()?;
        let store = base
            .with_table("conformance", &support::unique_table("sessions"))
            .expect("generated table names are valid identifiers");
        if let Err(e) = store.migrate().await {
            panic!("migrating {} failed: {e}", store.table());
        }
        Ok(store)
    }

    async fn corrupt(&self, store: &PostgresStore, key: &StoreKey) {
        // Damage the data the way a foreign writer or a bad restore would:
        // bytes that are no session format.
        support::damage(store, key, "data = '\\xff0001'::bytea").await;
    }

    async fn dispose(&self, store: PostgresStore) {
        if let Err(e) = store.drop_table().await {
            panic!("dropping {} failed: {e}", store.table());
        }
    }
}

conformance::suite!(postgres());
