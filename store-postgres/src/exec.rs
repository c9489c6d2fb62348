//! Sending a statement and reading its reply: one connection from the pool,
//! the retry of a statement the server aborted without effect, and the
//! mapping of a failure to the contract's [`Error`], naming the operation
//! and the table.
//!
//! What a caller reads from a statement (a row count, at most one row, all
//! rows) is a [`Reply`] type, so each helper returns exactly that shape and
//! no caller has to handle a shape its statement cannot have.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::Error;
use sqlx::postgres::{PgArguments, PgConnection, PgQueryResult, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Execute, Executor as _, Postgres, query};

use crate::error::{
    CancelCause, PostgresError, cancel_cause, is_aborted_without_effect, is_query_canceled, is_transient,
    is_unique_violation,
};
use crate::store::PostgresStore;

/// A prepared statement with its arguments bound.
pub(crate) type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

/// How many times a statement is sent when the server keeps aborting it as a
/// deadlock victim or for a serialization failure.
const ABORTED_STATEMENT_ATTEMPTS: u32 = 3;

/// What a statement that always returns one row got instead.
const NO_ROW: &str = "one row, and there was none";

/// The future of a statement on a connection, as sqlx's executor methods
/// return it.
type Sent<'c, T> = Pin<Box<dyn Future<Output = sqlx::Result<T>> + Send + 'c>>;

/// What a caller reads from a statement's reply, and how.
pub(crate) trait Reply: Copy + Send + Sync + 'static {
    /// What the caller reads: a result with its row count, a row or none,
    /// the rows.
    type Output: Send;

    /// Sends `q` on `conn` and reads the reply.
    fn send<'c, Q>(self, conn: &'c mut PgConnection, q: Q) -> Sent<'c, Self::Output>
    where
        Q: Execute<'static, Postgres> + Send + 'static;
}

/// The result of a statement that changes rows: how many it changed.
#[derive(Clone, Copy)]
pub(crate) struct RowsAffected;

/// The one row a statement returns, or none.
#[derive(Clone, Copy)]
pub(crate) struct AtMostOneRow;

/// Every row a statement returns.
#[derive(Clone, Copy)]
pub(crate) struct AllRows;

impl Reply for RowsAffected {
    type Output = PgQueryResult;

    fn send<'c, Q>(self, conn: &'c mut PgConnection, q: Q) -> Sent<'c, PgQueryResult>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        conn.execute(q)
    }
}

impl Reply for AtMostOneRow {
    type Output = Option<PgRow>;

    fn send<'c, Q>(self, conn: &'c mut PgConnection, q: Q) -> Sent<'c, Option<PgRow>>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        conn.fetch_optional(q)
    }
}

impl Reply for AllRows {
    type Output = Vec<PgRow>;

    fn send<'c, Q>(self, conn: &'c mut PgConnection, q: Q) -> Sent<'c, Vec<PgRow>>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        conn.fetch_all(q)
    }
}

/// A statement's failure and how long it had run (to tell a statement
/// timeout from another cancel).
pub(crate) struct Failed {
    pub(crate) error: sqlx::Error,
    pub(crate) elapsed: Duration,
}

impl PostgresStore {
    /// A prepared statement for `sql`, to bind arguments to.
    pub(crate) fn statement(sql: &Arc<str>) -> PgQuery<'static> {
        query(AssertSqlSafe(Arc::clone(sql)))
    }

    /// Runs a statement that changes rows; returns how many.
    pub(crate) async fn execute(&self, op: &'static str, make: impl Fn() -> PgQuery<'static>) -> Result<u64, Error> {
        Ok(self.run(op, RowsAffected, make).await?.rows_affected())
    }

    /// Runs a lean statement that changes rows; how many, or `None` if the
    /// key it inserts was already in the table (nothing was applied).
    pub(crate) async fn execute_or_taken(
        &self,
        op: &'static str,
        make: impl Fn() -> PgQuery<'static>,
    ) -> Result<Option<u64>, Error> {
        let done = self.run_or_taken(op, RowsAffected, make).await?;
        Ok(done.map(|r| r.rows_affected()))
    }

    /// Runs a statement that returns at most one row.
    pub(crate) async fn fetch_optional<Q>(&self, op: &'static str, make: impl Fn() -> Q) -> Result<Option<PgRow>, Error>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        self.run(op, AtMostOneRow, make).await
    }

    /// Runs a statement that always returns exactly one row, or `None` if
    /// the key it inserts was already in the table (nothing was applied).
    pub(crate) async fn fetch_one_or_taken(
        &self,
        op: &'static str,
        make: impl Fn() -> PgQuery<'static>,
    ) -> Result<Option<PgRow>, Error> {
        match self.run_or_taken(op, AtMostOneRow, make).await? {
            Some(row) => row.map(Some).ok_or_else(|| self.impossible(op, NO_ROW)),
            None => Ok(None),
        }
    }

    /// Runs a statement that always returns exactly one row; a reply
    /// without one is an [`impossible`](Self::impossible) reply.
    pub(crate) async fn fetch_one<Q>(&self, op: &'static str, make: impl Fn() -> Q) -> Result<PgRow, Error>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        self.fetch_optional(op, make)
            .await?
            .ok_or_else(|| self.impossible(op, NO_ROW))
    }

    /// Runs a statement that returns any number of rows.
    pub(crate) async fn fetch_all(
        &self,
        op: &'static str,
        make: impl Fn() -> PgQuery<'static>,
    ) -> Result<Vec<PgRow>, Error> {
        self.run(op, AllRows, make).await
    }

    /// Sends the statement that `make` builds on one connection and reads
    /// the reply `reply` names. Normally one attempt, one round trip. When
    /// the server aborted the statement as a deadlock victim or for a
    /// serialization failure, nothing of it was applied, so it is sent again
    /// (at most [`ABORTED_STATEMENT_ATTEMPTS`] times in all).
    async fn run<R: Reply, Q>(&self, op: &'static str, reply: R, make: impl Fn() -> Q) -> Result<R::Output, Error>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        self.send(reply, make).await?.map_err(|f| self.op_error(op, f))
    }

    /// [`run`](Self::run) for a statement that fails with a unique
    /// violation when the key it inserts is already in the table: `None`
    /// then, and nothing of the statement was applied.
    async fn run_or_taken<R: Reply, Q>(
        &self,
        op: &'static str,
        reply: R,
        make: impl Fn() -> Q,
    ) -> Result<Option<R::Output>, Error>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        match self.send(reply, make).await? {
            Err(f) if is_unique_violation(&f.error) => Ok(None),
            other => other.map(Some).map_err(|f| self.op_error(op, f)),
        }
    }

    /// The sending and retrying behind [`run`](Self::run); the statement's
    /// own failure is left to the caller to map.
    async fn send<R: Reply, Q>(&self, reply: R, make: impl Fn() -> Q) -> Result<Result<R::Output, Failed>, Error>
    where
        Q: Execute<'static, Postgres> + Send + 'static,
    {
        let mut lease = self.pool.acquire().await?;
        let mut attempt = 1;
        loop {
            let q = make();
            let started = Instant::now();
            let result = reply.send(lease.conn(), q).await;
            lease.settle(result.as_ref().err());
            match result {
                Err(e) if attempt < ABORTED_STATEMENT_ATTEMPTS && is_aborted_without_effect(&e) => {
                    tracing::debug!(error = %e, "PostgreSQL session store: retrying an aborted statement");
                    attempt += 1;
                }
                other => {
                    return Ok(other.map_err(|error| Failed {
                        error,
                        elapsed: started.elapsed(),
                    }));
                }
            }
        }
    }

    /// A failed statement as the contract's error: a timeout or a cancel
    /// told apart, retryable where a retry may help.
    pub(crate) fn op_error(&self, op: &'static str, failed: Failed) -> Error {
        let Failed { error: source, elapsed } = failed;
        let table = self.table.display.clone();
        if let sqlx::Error::Database(db) = &source
            && is_query_canceled(&source)
        {
            let error = match cancel_cause(db.message(), elapsed, self.statement_timeout) {
                CancelCause::Timeout => PostgresError::StatementTimeout {
                    op,
                    table,
                    // Ours only if the statement ran that long; a shorter
                    // server-side setting canceled it otherwise.
                    timeout: self.statement_timeout.filter(|t| elapsed >= *t),
                    source,
                },
                CancelCause::Other => PostgresError::Canceled {
                    op,
                    table,
                    elapsed,
                    source,
                },
            };
            return Error::backend(error, true);
        }
        let retryable = is_transient(&source);
        Error::backend(PostgresError::Statement { op, table, source }, retryable)
    }

    /// The operation was attempted `attempts` times and met a concurrent
    /// change of the same rows every time; nothing was applied.
    pub(crate) fn kept_changing(&self, op: &'static str, attempts: u32) -> Error {
        Error::backend(
            PostgresError::KeptChanging {
                op,
                table: self.table.display.clone(),
                attempts,
            },
            true,
        )
    }

    /// The server answered `op` in a way its statement cannot (`expected`
    /// says what it must answer): the table is not what the migrations
    /// made, or something between the store and the server rewrote the
    /// reply. Not retryable: the same statement would get the same answer.
    pub(crate) fn impossible(&self, op: &'static str, expected: &'static str) -> Error {
        Error::backend(
            PostgresError::ImpossibleReply {
                op,
                table: self.table.display.clone(),
                expected,
            },
            false,
        )
    }
}
