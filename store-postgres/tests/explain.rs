//! The statements' plans on a table of 1,000,000 sessions and 10,000
//! rotation marks:
//!
//! - every statement uses an index, never a sequential scan or a hash:
//!   the key operations the primary key, the owner queries the owner index,
//!   the sweep the expiry index and the marks index;
//! - every statement that makes a row an owner's takes the owner's advisory
//!   lock first, planned as a one-time filter above its scan, and, run for
//!   real while `delete_by_owner` holds that lock, it waits there before
//!   it has locked or written any row (its transaction has no id yet).
//!
//! The plans are printed (run with `--nocapture` to read them).

mod support;

use std::time::Duration;

use session_core::{SessionStore as _, Timestamp};
use sqlx::{AssertSqlSafe, Connection as _, Executor as _, PgConnection, Row as _};

const ROWS: i64 = 1_000_000;
const MARKS: i64 = 10_000;

/// The owner the gated statements make a row belong to here.
const OWNER: &str = "user-42";

/// `(operation, arguments for EXECUTE, expected indexes, the owner whose
/// lock it takes first)`.
type Case = (&'static str, String, &'static [&'static str], Option<&'static str>);

fn cases(now: i64) -> Vec<Case> {
    // Row i expires at now - 12 h + i days / ROWS: the last ones are live.
    let live = format!("sha256('{ROWS}'::text::bytea)");
    let live2 = format!("sha256('{}'::text::bytea)", ROWS - 1);
    let fresh = "sha256('fresh'::bytea)";
    let exp = now + 3_600_000;
    let mark_until = now + 60_000;
    let pkey: &[&str] = &["_pkey"];
    vec![
        (
            "create",
            format!("{fresh}, '\\x01', {now}, {exp}, '{OWNER}'"),
            &[],
            Some(OWNER),
        ),
        (
            "create (key in the table)",
            format!("{live}, '\\x01', {now}, {exp}, '{OWNER}', {now}"),
            pkey,
            Some(OWNER),
        ),
        ("load", format!("{live}, {now}"), pkey, None),
        (
            "update",
            format!("{live}, 1, '\\x01', {exp}, '{OWNER}', {now}"),
            pkey,
            Some(OWNER),
        ),
        (
            "update (row changed meanwhile)",
            format!("{live}, 1, '\\x01', {exp}, '{OWNER}', {now}"),
            pkey,
            Some(OWNER),
        ),
        (
            "overwrite",
            format!("{live}, '\\x01', {exp}, '{OWNER}', {now}"),
            pkey,
            Some(OWNER),
        ),
        (
            "overwrite (row changed meanwhile)",
            format!("{live}, '\\x01', {exp}, '{OWNER}', {now}"),
            pkey,
            Some(OWNER),
        ),
        ("touch", format!("{live}, {exp}, {now}"), pkey, None),
        (
            "rotate",
            format!("{live}, {fresh}, '{OWNER}', {now}, {mark_until}"),
            pkey,
            Some(OWNER),
        ),
        (
            // No owner given: the lock is the old row's owner's, which
            // the statement reads from its snapshot first (row ROWS is
            // `user-0`'s).
            "rotate (new key in the table)",
            format!("{live}, {live2}, NULL, {now}, {mark_until}"),
            pkey,
            Some("user-0"),
        ),
        ("was_rotated", format!("{live}, {now}"), pkey, None),
        ("delete", format!("{live}, {now}"), pkey, None),
        ("list_by_owner", format!("'{OWNER}', {now}"), &["_owner"], None),
        ("delete_by_owner", format!("'{OWNER}', {now}"), &["_owner"], None),
        (
            "delete_expired",
            format!("{now}, 1000"),
            &["_expires_at", "_marks"],
            None,
        ),
    ]
}

const MODES: [&str; 2] = ["force_custom_plan", "force_generic_plan"];

async fn plan(conn: &mut PgConnection, sql: &str, args: &str, mode: &str) -> String {
    // The plan PostgreSQL uses for the store's prepared statement: custom
    // plans for its first executions, then possibly the generic one; both
    // are checked.
    let mut tx = conn.begin().await.expect("begin");
    tx.execute(sqlx::raw_sql(AssertSqlSafe(format!(
        "SET LOCAL plan_cache_mode = {mode}; PREPARE p AS {sql}"
    ))))
    .await
    .expect("prepare the store's statement");
    let plan: Vec<String> = sqlx::raw_sql(AssertSqlSafe(format!("EXPLAIN EXECUTE p({args})")))
        .fetch_all(&mut *tx)
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    tx.execute("DEALLOCATE p").await.expect("deallocate");
    tx.rollback().await.expect("rollback");
    plan.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_uses_an_index_and_takes_the_owner_lock_before_any_row_on_a_million_rows() {
    let Some(store) = support::fresh_store_or_skip(|b| b).await else {
        return;
    };
    let now = Timestamp::now().as_millis();
    let table = store.table().to_owned();

    // 1,000,000 sessions: expiries spread over ±12 hours around `now` (half
    // expired), 70% with an owner among 100,000 users, 100 bytes of data;
    // and 10,000 rotation marks, half of them ended.
    support::execute(format!(
        "INSERT INTO {table} (key, version, data, created_at, expires_at, owner) \
         SELECT sha256(i::text::bytea), 1, convert_to(repeat('x', 100), 'UTF8'), {now} - 3600000, \
                {now} - 43200000 + (i * 86400000::bigint / {ROWS}), \
                CASE WHEN i % 10 < 7 THEN 'user-' || (i % 100000) END \
         FROM generate_series(1, {ROWS}) AS i; \
         INSERT INTO {table} (key, version, data, created_at, expires_at, owner, rotated_until) \
         SELECT sha256(('mark ' || i)::bytea), 0, '\\x', {now}, '-9223372036854775808'::int8, NULL, \
                {now} - 30000 + i * 60000 / {MARKS} \
         FROM generate_series(1, {MARKS}) AS i; \
         ANALYZE {table}"
    ))
    .await;

    let mut conn = support::raw_connection().await.expect("raw connection");
    let cases = cases(now);
    assert_eq!(
        cases.len(),
        store.statements_for_tests().len(),
        "every statement of the store has a case here"
    );
    for (op, args, indexes, gate) in &cases {
        let sql = support::statement(&store, op);
        for mode in MODES {
            let plan = plan(&mut conn, &sql, args, mode).await;
            println!("--- {op} ({mode}) on {ROWS} rows:\n{plan}\n");
            assert!(!plan.contains("Seq Scan"), "{op} scans the whole table:\n{plan}");
            assert!(!plan.contains("Hash"), "{op} hashes a part of the table:\n{plan}");
            for index in *indexes {
                assert!(plan.contains(index), "{op} does not use its index ({index}):\n{plan}");
            }
            if gate.is_some() {
                assert!(
                    plan.contains("One-Time Filter") && plan.contains("InitPlan"),
                    "{op}: the owner lock is not a one-time filter:\n{plan}"
                );
            }
        }
    }

    // The owner lock comes before any row lock or write: run each gated
    // statement while the lock is held exclusively, and look at it waiting.
    let mut holder = support::raw_connection().await.expect("raw connection");
    let mut runner = support::raw_connection().await.expect("raw connection");
    let runner_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut runner)
        .await
        .expect("pid");
    let seed = store.owner_lock_seed_for_tests();
    for (op, args, _, gate) in &cases {
        let Some(owner) = gate else {
            continue;
        };
        let sql = support::statement(&store, op);
        for mode in MODES {
            let mut hold = holder.begin().await.expect("begin");
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
                .bind(owner)
                .bind(seed)
                .execute(&mut *hold)
                .await
                .expect("hold the owner lock");
            runner
                .execute(sqlx::raw_sql(AssertSqlSafe(format!(
                    "BEGIN; SET LOCAL plan_cache_mode = {mode}; PREPARE p AS {sql}"
                ))))
                .await
                .expect("prepare");
            let execute = format!("EXECUTE p({args})");
            let running = tokio::spawn(async move {
                let result = sqlx::raw_sql(AssertSqlSafe(execute)).execute(&mut runner).await;
                (runner, result)
            });
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            let xid = loop {
                let row: Option<(Option<String>,)> = sqlx::query_as(
                    "SELECT backend_xid::text FROM pg_stat_activity \
                     WHERE pid = $1 AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
                )
                .bind(runner_pid)
                .fetch_optional(&mut conn)
                .await
                .expect("pg_stat_activity");
                if let Some((xid,)) = row {
                    break xid;
                }
                assert!(!running.is_finished(), "{op} ({mode}) did not wait for the owner lock");
                assert!(tokio::time::Instant::now() < deadline, "{op} ({mode}) never waited");
                tokio::task::yield_now().await;
            };
            assert_eq!(
                xid, None,
                "{op} ({mode}) locked or wrote a row before it took the owner lock"
            );
            hold.rollback().await.expect("release the owner lock");
            let (back, result) = running.await.expect("task");
            runner = back;
            result.unwrap_or_else(|e| panic!("{op} ({mode}) failed once the lock was free: {e}"));
            runner
                .execute("ROLLBACK; DEALLOCATE p")
                .await
                .expect("undo the statement");
        }
    }

    // And the statements do what the plans say.
    let n = store
        .delete_expired(Timestamp::from_millis(now), 10_000)
        .await
        .expect("delete_expired");
    assert_eq!(n, 10_000, "marks are removed beside the records, not counted");
    let marks_left: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {table} WHERE rotated_until IS NOT NULL"
    )))
    .fetch_one(&mut conn)
    .await
    .expect("count the marks");
    assert_eq!(marks_left, MARKS / 2, "the ended marks are gone, those in force kept");
    let listed = store
        .list_by_owner("user-42", Timestamp::from_millis(now))
        .await
        .expect("list");
    let deleted = store
        .delete_by_owner("user-42", Timestamp::from_millis(now))
        .await
        .expect("delete");
    assert_eq!(listed.len() as u64, deleted);
    let left: i64 = sqlx::query(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut conn)
        .await
        .expect("count")
        .get(0);
    assert!(left < ROWS);
    store.drop_table().await.expect("drop");
}
