//! The schema, as versioned migrations embedded in the crate.
//!
//! Why not sqlx's `Migrator`? Its migrations are fixed SQL with one
//! bookkeeping table per database (`_sqlx_migrations`), while this store's
//! table name is configurable, so several stores (say one per application,
//! or one per test) share a database with different tables. Here each store
//! table has its own bookkeeping table, `<table>_migrations`, beside it, and
//! the migration SQL (`migrations/*.sql` in the crate) names the table
//! through placeholders filled with the validated, quoted name.
//!
//! Running them is idempotent and safe to race: everything happens in one
//! transaction that first takes a transaction-scoped advisory lock for the
//! schema, so concurrent `migrate()` calls (several application instances
//! starting at once) apply each migration exactly once, and a failed
//! migration leaves nothing behind (PostgreSQL DDL is transactional).

use session_core::Error;
use sqlx::{AssertSqlSafe, query, raw_sql};
use sqlx::{Connection as _, PgConnection, Row as _};

use crate::error::{PostgresError, is_transient};
use crate::table::TableName;

/// One schema change.
struct Migration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Append only: a published migration never
/// changes (stores that applied it would not see the change).
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "create the sessions table and its indexes",
        sql: include_str!("../migrations/0001_create_sessions.sql"),
    },
    Migration {
        version: 2,
        description: "add rotation marks: the rotated_until column and its index",
        sql: include_str!("../migrations/0002_rotation_marks.sql"),
    },
];

/// The latest schema version this crate knows.
pub const SCHEMA_VERSION: i64 = 2;

/// The advisory lock key's namespace: the first half of the two-int key, so
/// our locks do not collide with an application's single-int ones.
const LOCK_NAMESPACE: i32 = 0x5E55_1045;

/// Applies the migrations that `table` has not seen yet, up to version
/// `up_to`, on `conn`.
pub(crate) async fn run(conn: &mut PgConnection, table: &TableName, up_to: i64) -> Result<(), Error> {
    let name = table.to_string();
    let step = |version: i64, description: &'static str| {
        let name = name.clone();
        move |source: sqlx::Error| {
            let transient = is_transient(&source);
            Error::backend(
                PostgresError::Migration {
                    version,
                    description,
                    table: name,
                    source,
                },
                transient,
            )
        }
    };
    let mut tx = conn.begin().await.map_err(step(0, "begin"))?;

    // One lock per schema: schema creation and the tables in it are
    // serialized, different schemas are not.
    query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(LOCK_NAMESPACE)
        .bind(table.schema())
        .execute(&mut *tx)
        .await
        .map_err(step(0, "take the migration lock"))?;

    // `CREATE SCHEMA IF NOT EXISTS` checks the CREATE privilege before it
    // checks existence, which fails for a restricted role on an existing
    // schema (common on managed servers): create only if missing.
    let schema_exists: bool = query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(table.schema())
        .fetch_one(&mut *tx)
        .await
        .and_then(|row| row.try_get(0))
        .map_err(step(0, "look up the schema"))?;
    if !schema_exists {
        raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {}", table.quoted_schema())))
            .execute(&mut *tx)
            .await
            .map_err(step(0, "create the schema"))?;
    }

    let ledger = table.quoted_with_suffix("_migrations");
    raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {ledger} ( \
             version bigint PRIMARY KEY, \
             description text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now() \
         )"
    )))
    .execute(&mut *tx)
    .await
    .map_err(step(0, "create the migrations table"))?;

    let applied: Vec<i64> = query(AssertSqlSafe(format!("SELECT version FROM {ledger}")))
        .fetch_all(&mut *tx)
        .await
        .and_then(|rows| rows.iter().map(|r| r.try_get(0)).collect())
        .map_err(step(0, "read the applied migrations"))?;

    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version <= up_to && !applied.contains(&m.version))
    {
        raw_sql(AssertSqlSafe(render(m.sql, table)))
            .execute(&mut *tx)
            .await
            .map_err(step(m.version, m.description))?;
        query(AssertSqlSafe(format!(
            "INSERT INTO {ledger} (version, description) VALUES ($1, $2)"
        )))
        .bind(m.version)
        .bind(m.description)
        .execute(&mut *tx)
        .await
        .map_err(step(m.version, m.description))?;
        tracing::info!(table = %name, version = m.version, "PostgreSQL session store: applied migration");
    }
    tx.commit().await.map_err(step(0, "commit"))?;
    Ok(())
}

/// The SQL that removes the table and its bookkeeping.
pub(crate) fn drop_sql(table: &TableName) -> String {
    format!(
        "DROP TABLE IF EXISTS {}, {}",
        table.quoted(),
        table.quoted_with_suffix("_migrations")
    )
}

/// Fills a migration's placeholders with quoted, validated identifiers.
fn render(sql: &str, table: &TableName) -> String {
    sql.replace("{table}", &table.quoted())
        .replace("{expires_at_index}", &table.quoted_local("_expires_at"))
        .replace("{owner_index}", &table.quoted_local("_owner"))
        .replace("{marks_index}", &table.quoted_local("_marks"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_end_at_the_schema_version() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
        let expected: Vec<i64> = (1..=SCHEMA_VERSION).collect();
        assert_eq!(versions, expected);
    }

    #[test]
    fn rendering_leaves_no_placeholder() {
        let table = TableName::new("app", "sessions").expect("valid");
        for m in MIGRATIONS {
            let sql = render(m.sql, &table);
            assert!(!sql.contains('{') && !sql.contains('}'), "{sql}");
            assert!(sql.contains("\"app\".\"sessions\""));
        }
    }
}
