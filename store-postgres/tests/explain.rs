//! The indexes do their job: on a table of 1,000,000 sessions, the sweep
//! (`delete_expired`) and the owner queries (`list_by_owner`,
//! `delete_by_owner`) use an index, never a sequential scan. The plans are
//! printed (run with `--nocapture` to read them).

mod support;

use session_core::{SessionStore as _, Timestamp};
use sqlx::{Connection as _, Executor as _, Row as _};

const ROWS: i64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeps_and_owner_queries_use_an_index_on_a_million_rows() {
    if !support::server_or_skip("sweeps_and_owner_queries_use_an_index_on_a_million_rows").await {
        return;
    }
    let store = support::fresh_store(|b| b).await;
    let now = Timestamp::now().as_millis();
    let table = store.table().to_owned();

    // 1,000,000 sessions: expiries spread over ±12 hours around `now` (half
    // expired), 70% with an owner among 100,000 users, 100 bytes of data.
    support::execute(format!(
        "INSERT INTO {table} (key, version, data, created_at, expires_at, owner) \
         SELECT sha256(i::text::bytea), 1, convert_to(repeat('x', 100), 'UTF8'), {now} - 3600000, \
                {now} - 43200000 + (i * 86400000::bigint / {ROWS}), \
                CASE WHEN i % 10 < 7 THEN 'user-' || (i % 100000) END \
         FROM generate_series(1, {ROWS}) AS i; \
         ANALYZE {table}"
    ))
    .await;

    let mut conn = support::raw_connection().await.expect("raw connection");
    let statements = store.statements_for_tests();
    let sql = |op: &str| {
        statements
            .iter()
            .find(|(name, _)| *name == op)
            .map(|(_, sql)| (*sql).to_owned())
            .expect("the store has this statement")
    };
    for (op, args) in [
        ("delete_expired", format!("{now}, 1000")),
        ("list_by_owner", format!("'user-42', {now}")),
        ("delete_by_owner", format!("'user-42', {now}")),
    ] {
        for generic in [false, true] {
            // The plan PostgreSQL uses for the store's prepared statement:
            // custom plans for its first executions, then possibly the
            // generic one; both are shown.
            let mut tx = conn.begin().await.expect("begin");
            let mode = if generic {
                "force_generic_plan"
            } else {
                "force_custom_plan"
            };
            tx.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SET LOCAL plan_cache_mode = {mode}; PREPARE p AS {}",
                sql(op)
            ))))
            .await
            .expect("prepare the store's statement");
            let plan: Vec<String> = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("EXPLAIN EXECUTE p({args})")))
                .fetch_all(&mut *tx)
                .await
                .expect("explain")
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            tx.execute("DEALLOCATE p").await.expect("deallocate");
            tx.rollback().await.expect("rollback");
            let plan = plan.join("\n");
            println!("--- {op} ({mode}) on {ROWS} rows:\n{plan}\n");
            assert!(!plan.contains("Seq Scan"), "{op} scans the whole table:\n{plan}");
            assert!(!plan.contains("Hash"), "{op} hashes a part of the table:\n{plan}");
            let index = if op == "delete_expired" {
                "_expires_at"
            } else {
                "_owner"
            };
            assert!(plan.contains(index), "{op} does not use its index ({index}):\n{plan}");
        }
    }

    // And the statements do what the plans say.
    let n = store
        .delete_expired(Timestamp::from_millis(now), 1000)
        .await
        .expect("delete_expired");
    assert_eq!(n, 1000);
    let listed = store
        .list_by_owner("user-42", Timestamp::from_millis(now))
        .await
        .expect("list");
    let deleted = store
        .delete_by_owner("user-42", Timestamp::from_millis(now))
        .await
        .expect("delete");
    assert_eq!(listed.len() as u64, deleted);
    let left: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut conn)
        .await
        .expect("count")
        .get(0);
    assert!(left < ROWS);
    store.drop_table().await.expect("drop");
}
