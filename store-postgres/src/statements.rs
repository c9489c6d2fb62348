//! The SQL statements behind each operation of the contract.
//!
//! Each operation is one statement, sent as one extended-protocol exchange
//! (Bind, Execute, Sync), so it is atomic and costs one round trip. The
//! exceptions:
//!
//! - `delete_by_owner`: an advisory lock and a statement in one simple-query
//!   message, still one transaction and one round trip (see
//!   [`Statements::delete_by_owner`] for why).
//! - `create`, `update`, `overwrite` and `rotate` first send a lean
//!   statement that does the common case the way a hand-written query would:
//!   a plain `INSERT`, a conditional `UPDATE`, an `UPDATE` of the key
//!   feeding the `INSERT` of the rotation mark. In the rare case where that
//!   statement cannot decide alone (the new key is already in the table but
//!   not live, or the row changed between the statement's snapshot and its
//!   write), it has written nothing, and the store sends the locking
//!   statement that decides (`create_or_replace`, `update_locked`,
//!   `overwrite_locked`, `rotate_locked`): two round trips, only then.
//!   `rotate_locked` is sent once more when the session's owner, or the
//!   rows under its two keys, changed between its snapshot and its row
//!   locks in a way it cannot follow.
//! - `delete` is sent again, with a fresh snapshot, when its snapshot showed
//!   a row under the key that its `DELETE` then found gone or moved (a
//!   `rotate` from that key committed meanwhile and left a rotation mark the
//!   first snapshot cannot see).
//!
//! The statements are built once per store, when its table name is known,
//! and shared as `Arc<str>`: sqlx prepares each one once per connection and
//! then reuses it by its text.
//!
//! # Rotation marks
//!
//! A mark is a row under the old key with `expires_at = i64::MIN`
//! (`-9223372036854775808`), `rotated_until` = the instant it stops being in
//! force, version 0, empty data and no owner. No liveness test accepts it,
//! since `expires_at > $now` is false for every `now`: `load`, `update`,
//! `overwrite`, `touch`, `rotate` and the owner queries treat it as the
//! expired row it looks like, and `create` or `rotate` onto the key replaces
//! it as they replace any row that is not live (both write over the row
//! in place, and clear `rotated_until`). Only `was_rotated` (which
//! asks for `expires_at = i64::MIN AND rotated_until > $now`), `rotate`
//! (which writes marks) and `delete_expired` (which removes ended marks
//! through a partial index on `rotated_until`, and keeps them out of its
//! count and its `expires_at` range) tell a mark from an expired record.
//! Every record this version writes has
//! `rotated_until` NULL (a record that version 1 of the crate wrote over a
//! mark may keep the mark's value; nothing reads it where `expires_at` is
//! not `i64::MIN`). Version 1, which knows no marks, sees them as expired
//! rows too (see the crate docs on rolling upgrades).
//!
//! A record written with `expires_at = i64::MIN` by a caller is never live,
//! like a mark; the sweep leaves it to `delete`, `create`, `rotate` onto its
//! key or `delete_by_owner`, since it shares the marks' place in the expiry
//! index and the sweep skips that place without reading it.
//!
//! # Linearizability
//!
//! All statements run in PostgreSQL's default READ COMMITTED isolation, in
//! autocommit. What makes them linearizable per key:
//!
//! - Every statement that writes a row decides on the newest version of it
//!   while holding its lock (`FOR UPDATE`, `UPDATE`, `DELETE`, `ON
//!   CONFLICT`): when the row was changed by a transaction that committed
//!   meanwhile, PostgreSQL follows the row's update chain to its newest
//!   version, re-evaluates the `WHERE` clause on it and returns that
//!   version.
//! - No key's row is ever replaced by another row within one statement:
//!   a statement that found a row under a key and waits for its lock must
//!   find, by that row's update chain, what the key holds afterwards, never
//!   a deleted row beside a new one it cannot see (it would answer "not
//!   there" although the key never lacked a session; a caller whose clock
//!   is behind sees a record live that another caller's `rotate` replaces
//!   as expired). So the lean `rotate`, onto a key with no row, moves the
//!   session by updating its row's key: the session stays one chain, which
//!   a statement that found it under the old key follows (and, testing
//!   `key = $1` again, leaves alone, while `delete_by_owner`, testing
//!   `owner = $1`, follows it and deletes it). `rotate_locked`, onto a key
//!   that has a row, writes the session into that row and turns the old
//!   row into the mark, each in place. The one exception is the lean
//!   rotate's mark, a new row under the old key where the session's row
//!   was: statements that found the session there answer as for a key
//!   without a session, which is right for a mark, except `delete`, which
//!   must remove it and so asks again.
//! - An answer read without a lock (the `current` version that `update` and
//!   `overwrite` report when they write nothing, `delete`'s `seen`) comes
//!   from the statement's snapshot, which is taken after the operation
//!   began: it is a state the record really had during the call, so the
//!   operation is linearized at the snapshot. Where the snapshot and the
//!   write disagree (the snapshot shows a writable row, yet the write found
//!   it changed), no such point exists and the store asks again, with the
//!   locking statement or a fresh snapshot.
//! - A plain `INSERT` (or an `UPDATE` of the key) that meets an existing key
//!   fails with a unique violation and the whole statement is rolled back:
//!   nothing was applied, so the locking statement can decide.
//! - Deadlocks: `rotate_locked` and `delete_by_owner`, the statements that
//!   lock several rows, lock them in key order; the lean `rotate` refuses a
//!   new key that is live in its snapshot before it locks anything (two
//!   rotates swapping two live keys would otherwise each hold one and wait
//!   for the other); `delete_expired` skips locked rows and waits for none.
//!   Should the server still abort a statement as a deadlock victim,
//!   nothing of it was applied and the store sends it again.
//! - A CTE referenced twice is computed once, so a statement's answer is the
//!   very row version it locked, never an older snapshot.
//!
//! `delete_by_owner` must see many rows at one instant, which READ
//! COMMITTED does not give a single statement: see
//! [`Statements::delete_by_owner`] for the per-owner advisory lock that
//! every statement making a row an owner's takes first.
//!
//! Liveness is always `expires_at > $now` with the caller's `now`
//! (milliseconds); the database clock is never read. A row whose
//! `expires_at` is NULL (only possible if someone dropped the column's NOT
//! NULL constraint) is not live for any of them, and every statement that
//! replaces or removes rows that are not live removes it too.

use std::sync::Arc;

use crate::table::TableName;

/// `expires_at` of a rotation mark: no `now` is before it.
pub(crate) const MARK_EXPIRES_AT: &str = "'-9223372036854775808'::int8";

/// The largest version an `update` or `overwrite` may start from: one more
/// must still fit a `bigint`. Lower than 1 is damage too.
const INCREMENTABLE: &str = "BETWEEN 1 AND 9223372036854775806";

/// The SQL expression of the owner lock key of the owner expression
/// `owner`, for the table whose seed is `seed`: see [`owner_lock_seed`].
fn owner_lock_key(owner: &str, seed: i64) -> String {
    format!("hashtextextended({owner}, {seed})")
}

/// The gate that takes the shared owner lock of the owner that the SQL
/// expression `owner` gives (NULL: the statement makes no row anyone's, and
/// takes none; the lock function is strict).
///
/// It has no column reference, and the volatile lock function hides in an
/// uncorrelated subquery, so PostgreSQL plans it as an InitPlan behind a
/// `One-Time Filter` of a `Result` node above the statement's scan: it runs
/// once, before the scan reads, locks or writes any row (the index test
/// checks every such plan, and that each statement waits there with no
/// row locked). Taking it after a row lock could close a cycle with
/// `delete_by_owner`, which holds the exclusive lock while it waits for row
/// locks.
fn owner_gate(owner: &str, seed: i64) -> String {
    format!(
        "({owner} IS NULL OR (SELECT pg_advisory_xact_lock_shared({key})) IS NOT NULL)",
        key = owner_lock_key(owner, seed)
    )
}

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
    /// `$1 key, $2 data, $3 expires_at, $4 owner, $5 now`; one row
    /// `(current, updated)`, `current` read from the snapshot.
    pub(crate) overwrite: Arc<str>,
    /// The same parameters and row, `current` read under the row lock.
    pub(crate) overwrite_locked: Arc<str>,
    /// `$1 key, $2 expires_at, $3 now`; affects 1 row iff live.
    pub(crate) touch: Arc<str>,
    /// `$1 old key, $2 new key, $3 set_owner, $4 now, $5 now +
    /// ROTATION_MARK_TTL`; a unique
    /// violation if the new key is in the table but not live in the
    /// snapshot, else one row `(new_live, old_live, was_moved, data,
    /// created_at, expires_at, owner)`: the first two from the snapshot, the
    /// last four NULL unless moved. Not for equal keys.
    pub(crate) rotate: Arc<str>,
    /// The same parameters; one row `(old_live, unchanged, was_moved,
    /// data, created_at, expires_at, owner)`, the last four NULL unless
    /// moved; `unchanged` false if the old row's owner, or the keys of the
    /// rows, changed after the statement's snapshot (nothing was applied).
    /// Not for equal keys.
    pub(crate) rotate_locked: Arc<str>,
    /// `$1 key, $2 now`; a row iff a mark in force is under the key.
    pub(crate) was_rotated: Arc<str>,
    /// `$1 key, $2 now`; one row `(removed, was_live, seen)`: whether a
    /// row was removed, whether it was live (NULL if none was), whether the
    /// statement's snapshot had a row.
    pub(crate) delete: Arc<str>,
    /// `$1 owner, $2 now`; the live sessions.
    pub(crate) list_by_owner: Arc<str>,
    /// The quoted table name and the owner lock seed, for
    /// `delete_by_owner`.
    quoted: String,
    /// This table's owner lock seed: see [`owner_lock_seed`].
    pub(crate) seed: i64,
    /// The statement of `delete_by_owner` after its lock, with `$1 owner,
    /// $2 now` placeholders, for `EXPLAIN` in this crate's tests.
    #[cfg(feature = "test-hooks")]
    pub(crate) delete_by_owner_for_explain: Arc<str>,
    /// `$1 now, $2 limit`; affects the removed records (marks and damaged
    /// rows removed beside them are not counted).
    pub(crate) delete_expired: Arc<str>,
}

impl Statements {
    pub(crate) fn new(table: &TableName) -> Self {
        let t = table.quoted();
        let m = MARK_EXPIRES_AT;
        let seed = owner_lock_seed(table);
        let gate = |owner: &str| owner_gate(owner, seed);
        Self {
            // A fresh key (the case of every new session id) needs nothing
            // more than this: no speculative insertion, no ON CONFLICT
            // arbiter check, one WAL record fewer than `create_or_replace`.
            // INSERT ... SELECT rather than VALUES, for the owner gate.
            create: format!(
                "INSERT INTO {t} (key, version, data, created_at, expires_at, owner) \
                 SELECT $1::bytea, 1, $2::bytea, $3::int8, $4::int8, $5::text WHERE {gate}",
                gate = gate("$5::text")
            )
            .into(),
            // The insert and the replacement of a row that is not live are
            // one statement: ON CONFLICT locks the existing row, and the
            // WHERE lets the update through only if that row is not live at
            // `now` (expired, a rotation mark, or an unreadable NULL expiry).
            // A live row is left alone and nothing is affected.
            create_or_replace: format!(
                "INSERT INTO {t} AS s (key, version, data, created_at, expires_at, owner) \
                 SELECT $1::bytea, 1, $2::bytea, $3::int8, $4::int8, $5::text WHERE {gate} \
                 ON CONFLICT (key) DO UPDATE SET version = 1, data = excluded.data, \
                 created_at = excluded.created_at, expires_at = excluded.expires_at, owner = excluded.owner, \
                 rotated_until = NULL \
                 WHERE (s.expires_at > $6::int8) IS NOT TRUE",
                gate = gate("$5::text")
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
            // another version means Conflict { current }, the expected one
            // at the end of the bigint range means it cannot grow (Corrupt).
            // The snapshot and the UPDATE's scan agree, except when the row
            // changed after the snapshot: `current` is then the expected
            // version although nothing was written, and the store asks
            // `update_locked`.
            // No row lock before the write: one WAL record and one buffer
            // dirtying fewer than `update_locked`, the same work as a bare
            // conditional UPDATE plus one index probe of a cached page.
            update: format!(
                "WITH upd AS ( \
                     UPDATE {t} SET version = version + 1, data = $3, expires_at = $4, owner = $5 \
                     WHERE key = $1 AND version = $2 AND expires_at > $6 AND version {INCREMENTABLE} \
                     AND {gate} \
                     RETURNING version \
                 ) \
                 SELECT (SELECT version FROM {t} WHERE key = $1 AND expires_at > $6) AS current, \
                        (SELECT version FROM upd) AS updated",
                gate = gate("$5::text")
            )
            .into(),
            // `cur` locks the live row and reads its newest version; `upd`
            // writes only if that version is the expected one. `cur` is
            // computed once, so `current` is the version the decision used:
            // NULL means not live (NotFound), `updated` NULL with `current`
            // set means Conflict { current } (or, at the expected version,
            // a version that cannot grow).
            update_locked: format!(
                "WITH cur AS ( \
                     SELECT key, version FROM {t} WHERE key = $1 AND expires_at > $6 AND {gate} FOR UPDATE \
                 ), upd AS ( \
                     UPDATE {t} AS s SET version = s.version + 1, data = $3, expires_at = $4, owner = $5 \
                     FROM cur WHERE s.key = cur.key AND cur.version = $2 AND cur.version {INCREMENTABLE} \
                     RETURNING s.version \
                 ) \
                 SELECT (SELECT version FROM cur) AS current, (SELECT version FROM upd) AS updated",
                gate = gate("$5::text")
            )
            .into(),
            // `update` without the version test: when nothing is written,
            // `current` (from the snapshot) NULL means not live (NotFound),
            // a version that cannot grow means Corrupt, and any other means
            // the row changed after the snapshot: `overwrite_locked` decides.
            overwrite: format!(
                "WITH upd AS ( \
                     UPDATE {t} SET version = version + 1, data = $2, expires_at = $3, owner = $4 \
                     WHERE key = $1 AND expires_at > $5 AND version {INCREMENTABLE} AND {gate} \
                     RETURNING version \
                 ) \
                 SELECT (SELECT version FROM {t} WHERE key = $1 AND expires_at > $5) AS current, \
                        (SELECT version FROM upd) AS updated",
                gate = gate("$4::text")
            )
            .into(),
            overwrite_locked: format!(
                "WITH cur AS ( \
                     SELECT key, version FROM {t} WHERE key = $1 AND expires_at > $5 AND {gate} FOR UPDATE \
                 ), upd AS ( \
                     UPDATE {t} AS s SET version = s.version + 1, data = $2, expires_at = $3, owner = $4 \
                     FROM cur WHERE s.key = cur.key AND cur.version {INCREMENTABLE} \
                     RETURNING s.version \
                 ) \
                 SELECT (SELECT version FROM cur) AS current, (SELECT version FROM upd) AS updated",
                gate = gate("$4::text")
            )
            .into(),
            // GREATEST: renewal never shortens a session. The liveness test
            // is re-evaluated on the newest row version under its lock, so a
            // touch racing a delete or rotate finds nothing to revive.
            touch: format!("UPDATE {t} SET expires_at = GREATEST(expires_at, $2) WHERE key = $1 AND expires_at > $3")
                .into(),
            // The common case, an old live key and a new key nobody holds:
            // `moved` gives the session's row the new key (re-checking its
            // liveness on the newest version under the row lock), so the
            // session stays one update chain; `mark` inserts the rotation
            // mark under the old key, which the update has just freed.
            // RETURNING gives the row as stored, so the record handed back
            // is exactly what a load returns. A new key that is live in the
            // statement's snapshot is refused from the snapshot (`taken`:
            // AlreadyExists, or NotFound if the old key is not live there
            // either), without touching a row: two rotates swapping two
            // live keys, or a rotate onto a session that `delete_by_owner`
            // is deleting, would otherwise each hold one row and wait for
            // the other (a deadlock). A new key in the table that is not
            // live there (expired, a mark, or inserted concurrently) is a
            // unique violation that rolls everything back; `rotate_locked`
            // then decides. Equal keys never come here: the mark would land
            // on the moved session.
            rotate: format!(
                "WITH taken AS MATERIALIZED ( \
                     SELECT EXISTS (SELECT 1 FROM {t} WHERE key = $2 AND expires_at > $4) AS new_live, \
                            EXISTS (SELECT 1 FROM {t} WHERE key = $1 AND expires_at > $4) AS old_live \
                 ), moved AS ( \
                     UPDATE {t} SET key = $2, version = 1, owner = COALESCE($3, owner) \
                     WHERE key = $1 AND expires_at > $4 AND NOT (SELECT new_live FROM taken) AND {gate} \
                     RETURNING data, created_at, expires_at, owner \
                 ), mark AS ( \
                     INSERT INTO {t} (key, version, data, created_at, expires_at, owner, rotated_until) \
                     SELECT $1, 0, '\\x'::bytea, $4, {m}, NULL, LEAST(expires_at, $5::int8) FROM moved \
                 ) \
                 SELECT taken.new_live, taken.old_live, EXISTS (SELECT 1 FROM moved) AS was_moved, \
                        moved.data, moved.created_at, moved.expires_at, moved.owner \
                 FROM taken LEFT JOIN moved ON true",
                gate = gate("$3::text")
            )
            .into(),
            // The new key is in the table (not live in the lean statement's
            // snapshot: expired, a mark, or inserted concurrently). The
            // session moves *into the new key's row* (INSERT ... ON
            // CONFLICT updates it in place, or inserts it if it is gone),
            // and the old key's row becomes the mark in place, so that each
            // key keeps its own update chain: a statement that found the
            // new key's old row (expired by this caller's clock, perhaps
            // live by its own) follows it to the session instead of finding
            // it deleted, and one that found the old key's row follows it to
            // the mark. The session thus leaves its row's chain, which
            // `delete_by_owner` would follow, so this takes the lock of the
            // session's owner (`set_owner`, or the old row's owner as the
            // snapshot shows it, in `snap`) before it locks any row.
            // `locked` locks both rows in key order, the order
            // `delete_by_owner` uses too, and yields their newest versions.
            // It moves only if nothing changed under it that it cannot
            // follow (`unchanged`; the store asks again otherwise): the
            // newest version still has the owner whose lock it took, and
            // the rows it locked have the keys the snapshot shows (a row
            // rotated from the new key to the old one after the snapshot is
            // locked under the old key, but `mark`, which finds its row
            // through the snapshot, would not find it, and the session
            // would be copied rather than moved). One statement, so nothing
            // changes on any error.
            rotate_locked: format!(
                "WITH snap AS MATERIALIZED ( \
                     SELECT (SELECT owner FROM {t} WHERE key = $1 AND expires_at > $4) AS owner, \
                            (SELECT array_agg(key ORDER BY key) FROM {t} WHERE key = $1 OR key = $2) AS keys \
                 ), locked AS ( \
                     SELECT key, data, created_at, expires_at, owner FROM {t} \
                     WHERE (key = $1 OR key = $2) AND {gate} \
                     ORDER BY key FOR UPDATE \
                 ), src AS ( \
                     SELECT * FROM locked WHERE key = $1 AND expires_at > $4 \
                 ), old AS ( \
                     SELECT * FROM src \
                     WHERE ($3::text IS NOT NULL OR owner IS NOT DISTINCT FROM (SELECT owner FROM snap)) \
                     AND (SELECT array_agg(key ORDER BY key) FROM locked) IS NOT DISTINCT FROM (SELECT keys FROM snap) \
                 ), moved AS ( \
                     INSERT INTO {t} AS s (key, version, data, created_at, expires_at, owner) \
                     SELECT $2, 1, data, created_at, expires_at, COALESCE($3, owner) FROM old \
                     ON CONFLICT (key) DO UPDATE SET version = 1, data = excluded.data, \
                     created_at = excluded.created_at, expires_at = excluded.expires_at, owner = excluded.owner, \
                     rotated_until = NULL \
                     WHERE (s.expires_at > $4) IS NOT TRUE \
                     RETURNING data, created_at, expires_at, owner \
                 ), mark AS ( \
                     UPDATE {t} AS s SET version = 0, data = '\\x'::bytea, created_at = $4, expires_at = {m}, \
                     owner = NULL, rotated_until = LEAST(old.expires_at, $5::int8) \
                     FROM old WHERE s.key = old.key AND EXISTS (SELECT 1 FROM moved) \
                 ) \
                 SELECT EXISTS (SELECT 1 FROM src) AS old_live, EXISTS (SELECT 1 FROM old) AS unchanged, \
                        EXISTS (SELECT 1 FROM moved) AS was_moved, \
                        moved.data, moved.created_at, moved.expires_at, moved.owner \
                 FROM (VALUES (1)) AS one (x) LEFT JOIN moved ON true",
                gate = gate("COALESCE($3::text, (SELECT owner FROM snap))")
            )
            .into(),
            was_rotated: format!("SELECT 1 FROM {t} WHERE key = $1 AND expires_at = {m} AND rotated_until > $2").into(),
            // Removes whatever is under the key: a record, live or not, or a
            // mark. A row whose expiry cannot be read (NULL) is removed and
            // was not live. `seen` is whether the snapshot had a row: when
            // it did and the DELETE found it gone or moved, a rotate from
            // this key committed meanwhile (its mark is a row the snapshot
            // cannot see) or another delete did; the store asks again.
            delete: format!(
                "WITH gone AS ( \
                     DELETE FROM {t} WHERE key = $1 RETURNING coalesce(expires_at > $2, false) AS was_live \
                 ) \
                 SELECT EXISTS (SELECT 1 FROM gone) AS removed, (SELECT was_live FROM gone) AS was_live, \
                        EXISTS (SELECT 1 FROM {t} WHERE key = $1) AS seen"
            )
            .into(),
            list_by_owner: format!("SELECT key, created_at, expires_at FROM {t} WHERE owner = $1 AND expires_at > $2")
                .into(),
            #[cfg(feature = "test-hooks")]
            delete_by_owner_for_explain: owner_deletion(&t, "$1", "$2").into(),
            quoted: t.clone(),
            seed,
            // Records: oldest first through the expires_at index, at most
            // `limit`, in the range `(i64::MIN, now]`, which starts after
            // the marks' place in the index without reading it. Marks that
            // ended, through their partial index, and rows whose expiry is
            // NULL (damage; the expires_at index holds NULLs too) are
            // removed by `garbage`, at most `limit` of each, and not counted.
            // SKIP LOCKED: concurrent sweepers share the work instead of
            // queueing, and a row being renewed right now is left for the
            // next sweep. Compare-and-delete: FOR UPDATE re-checks each
            // condition on the newest version of the row it locks, so a
            // session renewed meanwhile survives, and the locked rows cannot
            // change before the DELETEs, which therefore test nothing but
            // the key. The victims are handed over as an array, so the
            // delete looks them up through the primary key even in the
            // generic plan (a join there would hash a third of the table,
            // and a re-check of the expiry range would tempt the planner
            // into scanning that range of the expiry index).
            delete_expired: format!(
                "WITH victims AS ( \
                     SELECT key FROM {t} WHERE expires_at <= $1 AND expires_at > {m} \
                     ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED \
                 ), ended AS ( \
                     SELECT key FROM {t} WHERE rotated_until <= $1 AND expires_at = {m} \
                     ORDER BY rotated_until LIMIT $2 FOR UPDATE SKIP LOCKED \
                 ), damaged AS ( \
                     SELECT key FROM {t} WHERE expires_at IS NULL LIMIT $2 FOR UPDATE SKIP LOCKED \
                 ), garbage AS ( \
                     DELETE FROM {t} WHERE key = ANY (ARRAY (SELECT key FROM ended UNION ALL SELECT key FROM damaged)) \
                 ) \
                 DELETE FROM {t} WHERE key = ANY (ARRAY (SELECT key FROM victims))"
            )
            .into(),
        }
    }
}

impl Statements {
    /// `delete_by_owner`, for one owner and `now`; one row `(live)`.
    ///
    /// The one operation that must see many rows at one instant. In READ
    /// COMMITTED a plain `DELETE ... WHERE owner = $1` does not: its snapshot
    /// misses a row that a transaction still in flight is making the
    /// owner's (a create for the owner, an update or a login rotate that
    /// sets it), so "log out everywhere" racing a login could leave a live
    /// session, and could not even be placed before that login when it also
    /// had to wait for another of the owner's sessions.
    ///
    /// So every statement that can make a row the owner's takes the owner's
    /// lock, `pg_advisory_xact_lock_shared(hashtextextended(owner, seed))`,
    /// before it touches any row, and holds it to its commit (see
    /// `owner_gate`): `create`, `update` and `overwrite` writing the owner
    /// (even when it does not change: simpler, and such a write would wait
    /// for this on the row anyway), the lean `rotate` setting it, and
    /// `rotate_locked`, which moves the session out of its row, for the
    /// owner it ends with. This takes the same lock exclusively first, in a
    /// statement of its own, then deletes. The lock waits for every such
    /// writer in flight and holds new ones back (they wait, holding no row
    /// lock), for the few milliseconds of one indexed delete; writers for
    /// other owners, anonymous writes, touches, reads, a lean rotate that
    /// keeps the owner and writes that take a session *away* from the owner
    /// never wait for it. The DELETE, a second statement, gets a fresh
    /// snapshot taken after the lock, in which every writer that made a row
    /// the owner's has committed; what changes later under it is ordered by
    /// row locks: a row it found is re-checked on its newest version, and a
    /// session rotated by the lean rotate to a new key meanwhile is that
    /// row's newest version, so it is followed and deleted. Nothing of the
    /// owner's escapes, so the operation is linearizable at its commit. No
    /// table lock is taken, so VACUUM, ANALYZE, `CREATE INDEX CONCURRENTLY`
    /// and open transactions never hold it up, nor it them.
    ///
    /// The lock and the delete are two statements in one simple-query
    /// message, which PostgreSQL runs as one implicit transaction in one
    /// round trip (the lock statement returns no row, so the delete's count
    /// is the first row). The simple protocol takes no parameters, so the
    /// owner is sent hex-encoded (only `[0-9a-f]` reaches the SQL text) and
    /// `now` as a quoted integer literal.
    pub(crate) fn delete_by_owner(&self, owner: &str, now: i64) -> String {
        let mut hex = String::with_capacity(2 * owner.len());
        for b in owner.bytes() {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        let owner = format!("convert_from(decode('{hex}', 'hex'), 'UTF8')");
        format!(
            "SELECT 1 WHERE pg_advisory_xact_lock({key}) IS NULL; {delete}",
            key = owner_lock_key(&owner, self.seed),
            delete = owner_deletion(&self.quoted, &owner, &format!("'{now}'::int8"))
        )
    }
}

/// The DELETE of `delete_by_owner` for table `t`, with the owner and `now`
/// as the SQL expressions given. `locked` first locks the owner's rows in
/// key order (the order `rotate_locked` uses too), re-checking `owner` on
/// the newest version of each; the DELETE, which waits for `locked` through
/// its count, then finds the same rows through its snapshot (the version
/// the snapshot shows leads, by the update chain, to the newest one it
/// locked, a session rotated meanwhile to a new key included: a DELETE by
/// the locked rows' keys would miss that one, whose new version its
/// snapshot cannot see) and removes them without waiting. Locking them all
/// before deleting any keeps a lean `rotate` onto one of them from waiting
/// on a deletion in flight while holding a row this waits for: a row that
/// is only locked is a unique violation for it at once.
fn owner_deletion(t: &str, owner: &str, now: &str) -> String {
    format!(
        "WITH locked AS ( \
             SELECT key FROM {t} WHERE owner = {owner} ORDER BY key FOR UPDATE \
         ), removed AS ( \
             DELETE FROM {t} WHERE owner = {owner} AND (SELECT count(*) FROM locked) >= 0 RETURNING expires_at \
         ) \
         SELECT count(*) FILTER (WHERE expires_at > {now}) AS live FROM removed"
    )
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The seed of a table's owner lock keys, `hashtextextended(owner, seed)`:
/// FNV-1a (64 bits) of the table's name, so that stores on different tables
/// never wait for each other.
///
/// Part of the table's protocol, like its schema: every instance that
/// writes to the table, whatever its version of this crate, must derive the
/// same key for the same owner, so the seed's function is spelled out here
/// rather than taken from a hasher that may change between Rust releases,
/// and the owner is hashed by PostgreSQL's own `hashtextextended`, the
/// function hash partitioning relies on (so it cannot change between
/// PostgreSQL versions without breaking `pg_upgrade`). The key is computed
/// in SQL because `rotate_locked` only learns the owner from the row. Two
/// owners with the same key only wait for each other; they are never mixed
/// up, since the key guards no data.
pub(crate) fn owner_lock_seed(table: &TableName) -> i64 {
    let seed = fnv1a(FNV_OFFSET, b"store-postgres owner lock\0");
    let seed = fnv1a(seed, table.to_string().as_bytes());
    i64::from_ne_bytes(fnv1a(seed, b"\0").to_ne_bytes())
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut state: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        state ^= u64::from(b);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_by_owner_puts_only_hex_digits_and_integers_into_the_sql() {
        let table = TableName::new("public", "sessions").expect("valid");
        let sql = Statements::new(&table).delete_by_owner("x'); DROP TABLE users; --", -42);
        assert!(!sql.contains("DROP TABLE users"), "{sql}");
        assert!(sql.contains("decode('7827293b20"), "{sql}");
        assert!(
            sql.starts_with("SELECT 1 WHERE pg_advisory_xact_lock(hashtextextended("),
            "{sql}"
        );
        assert!(sql.ends_with("expires_at > '-42'::int8) AS live FROM removed"), "{sql}");
    }

    #[test]
    fn owner_lock_seeds_are_fixed_and_differ_by_table() {
        let a = owner_lock_seed(&TableName::new("public", "sessions").expect("valid"));
        let b = owner_lock_seed(&TableName::new("public", "sessions2").expect("valid"));
        // The published FNV-1a test vector: the function is the standard one.
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        // Pinned: a change here would let instances of two crate versions
        // take different locks for the same owner.
        assert_eq!(a, 5_564_580_068_159_433_864);
        assert_ne!(a, b);
        let sql = Statements::new(&TableName::new("public", "sessions").expect("valid")).delete_by_owner("o", 0);
        assert!(
            sql.contains(&format!(
                "pg_advisory_xact_lock(hashtextextended(convert_from(decode('6f', 'hex'), 'UTF8'), {a}))"
            )),
            "{sql}"
        );
    }
}
