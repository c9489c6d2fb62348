//! The SQL statements behind each operation of the contract.
//!
//! Each operation is one statement, sent as one extended-protocol exchange
//! (Bind, Execute, Sync), so it is atomic and costs one round trip. The
//! exceptions:
//!
//! - `delete_by_owner`: a table lock and a statement in one simple-query
//!   message, still one transaction and one round trip (see
//!   [`Statements::delete_by_owner`] for why).
//! - `create`, `update` and `rotate` first send a lean statement that does
//!   the common case the way a hand-written query would: a plain `INSERT`,
//!   a conditional `UPDATE`, a `DELETE ... RETURNING` feeding an `INSERT`.
//!   In the rare case where that statement cannot decide alone (the new key
//!   is already in the table, or the row changed between the statement's
//!   snapshot and its write), it has written nothing, and the store sends
//!   the locking statement that always decides (`create_or_replace`,
//!   `update_locked`, `rotate_locked`): two round trips, only then.
//!
//! The statements are built once per store, when its table name is known,
//! and shared as `Arc<str>`: sqlx prepares each one once per connection and
//! then reuses it by its text.
//!
//! All of them run in PostgreSQL's default READ COMMITTED isolation, in
//! autocommit. What makes them linearizable per key:
//!
//! - Every statement that writes a row decides on the newest version of it
//!   while holding its lock (`FOR UPDATE`, `UPDATE`, `DELETE`, `ON
//!   CONFLICT`): when the row was changed by a transaction that committed
//!   meanwhile, PostgreSQL re-evaluates the `WHERE` clause on the newest
//!   version of the row and returns that version.
//! - An answer read without a lock (the `current` version that `update`
//!   reports with a conflict) comes from the statement's snapshot, which is
//!   taken after the operation began: it is a state the record really had
//!   during the call, so the operation is linearized at the snapshot. Where
//!   the snapshot and the write disagree (the snapshot shows the expected
//!   version, yet the write found the row changed), no such point exists
//!   and the store asks again with the locking statement.
//! - A plain `INSERT` that meets an existing key fails with a unique
//!   violation and the whole statement, a `DELETE` in it included, is rolled
//!   back: nothing was applied, so the locking statement can decide.
//! - `rotate_locked`, the one statement that locks two rows, locks them in
//!   key order, so two of them cannot deadlock each other; `delete_expired`
//!   skips locked rows and waits for none. (Should the server still abort a
//!   statement as a deadlock victim, for example two lean rotates swapping
//!   the same two keys, nothing of it was applied and the store retries it.)
//! - A CTE referenced twice is computed once, so a statement's answer is the
//!   very row version it locked, never an older snapshot.
//!
//! Liveness is always `expires_at > $now` with the caller's `now`
//! (milliseconds); the database clock is never read.

use std::sync::Arc;

use crate::table::TableName;

/// Statement texts for one table.
#[derive(Debug)]
pub(crate) struct Statements {
    /// `$1 key, $2 data, $3 created_at, $4 expires_at, $5 owner`; a unique
    /// violation if the key is in the table (live or not), else created.
    pub(crate) create: Arc<str>,
    /// `$1 key, $2 data, $3 created_at, $4 expires_at, $5 owner, $6 now`;
    /// affects 1 row iff created.
    pub(crate) create_or_replace: Arc<str>,
    /// `$1 key, $2 now`; a row iff live.
    pub(crate) load: Arc<str>,
    /// `$1 key, $2 expected version (NULL if unrepresentable), $3 data,
    /// $4 expires_at, $5 owner, $6 now`; one row `(current, updated)`,
    /// `current` read from the statement's snapshot.
    pub(crate) update: Arc<str>,
    /// The same parameters and row, `current` read under the row lock.
    pub(crate) update_locked: Arc<str>,
    /// `$1 key, $2 expires_at, $3 now`; affects 1 row iff live.
    pub(crate) touch: Arc<str>,
    /// `$1 old key, $2 new key, $3 now`; a unique violation if the new key
    /// is in the table, else affects 1 row iff moved. Not for equal keys.
    pub(crate) rotate: Arc<str>,
    /// `$1 old key, $2 new key, $3 now`; one row `(old_live, moved)`.
    pub(crate) rotate_locked: Arc<str>,
    /// `$1 key, $2 now`; a row `(was_live)` iff a record was removed.
    pub(crate) delete: Arc<str>,
    /// `$1 owner, $2 now`; the live sessions.
    pub(crate) list_by_owner: Arc<str>,
    /// The pieces of [`Statements::delete_by_owner`].
    delete_by_owner_lock: Arc<str>,
    delete_by_owner_delete: Arc<str>,
    /// The statement of `delete_by_owner` after its lock, with `$1 owner,
    /// $2 now` placeholders, for `EXPLAIN`.
    pub(crate) delete_by_owner_for_explain: Arc<str>,
    /// `$1 now, $2 limit`; affects the removed rows.
    pub(crate) delete_expired: Arc<str>,
}

impl Statements {
    pub(crate) fn new(table: &TableName) -> Self {
        let t = table.quoted();
        Self {
            // A fresh key (the case of every new session id) needs nothing
            // more than this: no speculative insertion, no ON CONFLICT
            // arbiter check, one WAL record fewer than `create_or_replace`.
            create: format!(
                "INSERT INTO {t} (key, version, data, created_at, expires_at, owner) \
                 VALUES ($1, 1, $2, $3, $4, $5)"
            )
            .into(),
            // The insert and the replacement of an expired row are one
            // statement: ON CONFLICT locks the existing row, and the WHERE
            // lets the update through only if that row is expired at `now`.
            // A live row is left alone and nothing is affected.
            create_or_replace: format!(
                "INSERT INTO {t} AS s (key, version, data, created_at, expires_at, owner) \
                 VALUES ($1, 1, $2, $3, $4, $5) \
                 ON CONFLICT (key) DO UPDATE SET version = 1, data = excluded.data, \
                 created_at = excluded.created_at, expires_at = excluded.expires_at, owner = excluded.owner \
                 WHERE s.expires_at <= $6"
            )
            .into(),
            load: format!(
                "SELECT version, data, created_at, expires_at, owner FROM {t} \
                 WHERE key = $1 AND expires_at > $2"
            )
            .into(),
            // The compare-and-swap is the UPDATE's WHERE, re-checked on the
            // newest row version under its lock, so at most one of two
            // updates expecting the same version writes. When it writes
            // nothing, `current` says why, as of the statement's snapshot
            // (taken after the call began): NULL means not live (NotFound),
            // another version means Conflict { current }. The snapshot and
            // the UPDATE's scan agree, except when the row changed after the
            // snapshot: `current` is then the expected version although
            // nothing was written, and the store asks `update_locked`.
            // No row lock before the write: one WAL record and one buffer
            // dirtying fewer than `update_locked`, the same work as a bare
            // conditional UPDATE plus one index probe of a cached page.
            update: format!(
                "WITH upd AS ( \
                     UPDATE {t} SET version = version + 1, data = $3, expires_at = $4, owner = $5 \
                     WHERE key = $1 AND version = $2 AND expires_at > $6 \
                     RETURNING version \
                 ) \
                 SELECT (SELECT version FROM {t} WHERE key = $1 AND expires_at > $6) AS current, \
                        (SELECT version FROM upd) AS updated"
            )
            .into(),
            // `cur` locks the live row and reads its newest version; `upd`
            // writes only if that version is the expected one. `cur` is
            // computed once, so `current` is the version the decision used:
            // NULL means not live (NotFound), `updated` NULL with `current`
            // set means Conflict { current }.
            update_locked: format!(
                "WITH cur AS ( \
                     SELECT key, version FROM {t} WHERE key = $1 AND expires_at > $6 FOR UPDATE \
                 ), upd AS ( \
                     UPDATE {t} AS s SET version = s.version + 1, data = $3, expires_at = $4, owner = $5 \
                     FROM cur WHERE s.key = cur.key AND cur.version = $2 \
                     RETURNING s.version \
                 ) \
                 SELECT (SELECT version FROM cur) AS current, (SELECT version FROM upd) AS updated"
            )
            .into(),
            // GREATEST: renewal never shortens a session. The liveness test
            // is re-evaluated on the newest row version under its lock, so a
            // touch racing a delete or rotate finds nothing to revive.
            touch: format!("UPDATE {t} SET expires_at = GREATEST(expires_at, $2) WHERE key = $1 AND expires_at > $3")
                .into(),
            // The common case, an old live key and a new key nobody holds,
            // as a hand-written query does it: the DELETE locks the old row
            // and re-checks its liveness on its newest version, the INSERT
            // adds the copy. A new key already in the table (live or
            // expired, or inserted concurrently) is a unique violation that
            // rolls the DELETE back; `rotate_locked` then decides. Equal
            // keys never come here: the INSERT would not see the row the
            // DELETE removed and would "rotate" a key onto itself.
            rotate: format!(
                "WITH old AS ( \
                     DELETE FROM {t} WHERE key = $1 AND expires_at > $3 \
                     RETURNING data, created_at, expires_at, owner \
                 ) \
                 INSERT INTO {t} (key, version, data, created_at, expires_at, owner) \
                 SELECT $2, 1, data, created_at, expires_at, owner FROM old"
            )
            .into(),
            // `locked` locks both rows (when they exist) in key order, the
            // order every multi-row statement here uses, so two rotates of
            // the same pair (or a rotate and a delete_by_owner) cannot
            // deadlock. It yields the newest version of each row. `old` is
            // the source if live; `moved` inserts its copy under the new key
            // unless a live row holds that key (an expired one is replaced,
            // as in `create`; the key is re-checked by ON CONFLICT, which also
            // sees a row inserted concurrently), and never when both keys are
            // equal. `removed` deletes the source only if the copy was made.
            // One statement, so nothing changes on either error.
            rotate_locked: format!(
                "WITH locked AS ( \
                     SELECT key, data, created_at, expires_at, owner FROM {t} \
                     WHERE key = $1 OR key = $2 ORDER BY key FOR UPDATE \
                 ), old AS ( \
                     SELECT * FROM locked WHERE key = $1 AND expires_at > $3 \
                 ), moved AS ( \
                     INSERT INTO {t} AS s (key, version, data, created_at, expires_at, owner) \
                     SELECT $2, 1, data, created_at, expires_at, owner FROM old WHERE old.key <> $2 \
                     ON CONFLICT (key) DO UPDATE SET version = 1, data = excluded.data, \
                     created_at = excluded.created_at, expires_at = excluded.expires_at, owner = excluded.owner \
                     WHERE s.expires_at <= $3 \
                     RETURNING 1 \
                 ), removed AS ( \
                     DELETE FROM {t} AS s USING old \
                     WHERE s.key = old.key AND EXISTS (SELECT 1 FROM moved) \
                 ) \
                 SELECT EXISTS (SELECT 1 FROM old) AS old_live, EXISTS (SELECT 1 FROM moved) AS moved"
            )
            .into(),
            delete: format!("DELETE FROM {t} WHERE key = $1 RETURNING expires_at > $2 AS was_live").into(),
            list_by_owner: format!("SELECT key, created_at, expires_at FROM {t} WHERE owner = $1 AND expires_at > $2")
                .into(),
            delete_by_owner_lock: format!("LOCK TABLE {t} IN SHARE ROW EXCLUSIVE MODE; ").into(),
            delete_by_owner_for_explain: format!(
                "WITH removed AS (DELETE FROM {t} WHERE owner = $1 RETURNING expires_at) \
                 SELECT count(*) FILTER (WHERE expires_at > $2) AS live FROM removed"
            )
            .into(),
            delete_by_owner_delete: format!("WITH removed AS (DELETE FROM {t} WHERE owner = ").into(),
            // Oldest first through the expires_at index, at most `limit`.
            // SKIP LOCKED: concurrent sweepers share the work instead of
            // queueing, and a row being renewed right now is left for the
            // next sweep. The victims are handed over as an array, so the
            // delete looks them up through the primary key even in the
            // generic plan (a join there would hash a third of the table).
            // Compare-and-delete: `expires_at <= $1` is
            // re-checked on the newest version of each locked row, so a
            // session renewed meanwhile survives.
            delete_expired: format!(
                "WITH victims AS ( \
                     SELECT key FROM {t} WHERE expires_at <= $1 \
                     ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED \
                 ) \
                 DELETE FROM {t} WHERE key = ANY (ARRAY (SELECT key FROM victims)) AND expires_at <= $1"
            )
            .into(),
        }
    }
}

impl Statements {
    /// `delete_by_owner`, for one owner and `now`; one row `(live)`.
    ///
    /// The one operation that must see many rows at one instant. In READ
    /// COMMITTED a plain `DELETE ... WHERE owner = $1` does not: a session
    /// rotated (or given to this owner) while the delete runs can be missed,
    /// so "log out everywhere" racing a login could leave a live session. So
    /// the delete first takes a SHARE ROW EXCLUSIVE lock on the table: it
    /// waits for the writes in flight, holds new writes back (not reads)
    /// for the few milliseconds of one indexed delete, and is exclusive with
    /// itself; the delete's snapshot, taken after the lock, is then the whole
    /// truth. The lock and the delete are two statements in one simple-query
    /// message, which PostgreSQL runs as one implicit transaction in one
    /// round trip. The simple protocol takes no parameters, so the owner is
    /// sent hex-encoded (only `[0-9a-f]` reaches the SQL text) and `now` as
    /// an integer literal.
    pub(crate) fn delete_by_owner(&self, owner: &str, now: i64) -> String {
        let mut sql = String::with_capacity(
            self.delete_by_owner_lock.len() + self.delete_by_owner_delete.len() + 2 * owner.len() + 160,
        );
        sql.push_str(&self.delete_by_owner_lock);
        sql.push_str(&self.delete_by_owner_delete);
        sql.push_str("convert_from(decode('");
        for b in owner.bytes() {
            sql.push(char::from(HEX[usize::from(b >> 4)]));
            sql.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        sql.push_str("', 'hex'), 'UTF8') RETURNING expires_at) ");
        sql.push_str("SELECT count(*) FILTER (WHERE expires_at > ");
        sql.push_str(&now.to_string());
        sql.push_str(") AS live FROM removed");
        sql
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_by_owner_puts_only_hex_digits_and_an_integer_into_the_sql() {
        let table = TableName::new("public", "sessions").expect("valid");
        let sql = Statements::new(&table).delete_by_owner("x'); DROP TABLE users; --", -42);
        assert!(!sql.contains("DROP TABLE users"), "{sql}");
        assert!(sql.contains("decode('7827293b20"), "{sql}");
        assert!(sql.ends_with("expires_at > -42) AS live FROM removed"), "{sql}");
    }
}
