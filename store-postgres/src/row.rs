//! Reading rows back into the contract's types, refusing what no correct
//! store could have written.
//!
//! The table is plain SQL that anyone with access can edit, so every value is
//! checked on the way out: a key that is not 32 bytes, a version below 1, a
//! NULL or a column of an unexpected type is [`Error::Corrupt`], never a
//! panic and never a silently wrong record.

use session_core::{Bytes, Error, OwnedSession, Record, StoreKey, Timestamp};
use sqlx::Row as _;
use sqlx::postgres::PgRow;

fn column<'r, T>(row: &'r PgRow, name: &str) -> Result<T, Error>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name)
        .map_err(|e| Error::Corrupt(format!("column `{name}` of a session row could not be read: {e}")))
}

/// A stored version: at least 1.
pub(crate) fn version(stored: i64) -> Result<u64, Error> {
    u64::try_from(stored)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| Error::Corrupt(format!("a session row has version {stored}; versions start at 1")))
}

/// A stored version that an `update` or `overwrite` may increment: at
/// least 1 and below `i64::MAX`, the largest `bigint` (a damaged row could
/// hold it; growing it would fail, so the write is refused).
pub(crate) fn incrementable(stored: i64) -> Result<u64, Error> {
    let v = version(stored)?;
    if stored == i64::MAX {
        return Err(Error::Corrupt(format!(
            "a session row has version {stored}, the largest a bigint holds: it cannot be written again"
        )));
    }
    Ok(v)
}

/// A live record read by `load`; `key` is the one asked for.
pub(crate) fn record(key: StoreKey, row: &PgRow) -> Result<Record, Error> {
    let data: Vec<u8> = column(row, "data")?;
    Ok(Record {
        key,
        version: version(column(row, "version")?)?,
        // Takes the vector's allocation: no copy of the payload.
        data: Bytes::from(data),
        created_at: Timestamp::from_millis(column(row, "created_at")?),
        expires_at: Timestamp::from_millis(column(row, "expires_at")?),
        owner: column(row, "owner")?,
    })
}

/// The record `rotate` moved to `key`, from the moved row's `data,
/// created_at, expires_at, owner` as stored (version 1).
pub(crate) fn moved(key: StoreKey, row: &PgRow) -> Result<Record, Error> {
    let data: Vec<u8> = column(row, "data")?;
    Ok(Record {
        key,
        version: 1,
        data: Bytes::from(data),
        created_at: Timestamp::from_millis(column(row, "created_at")?),
        expires_at: Timestamp::from_millis(column(row, "expires_at")?),
        owner: column(row, "owner")?,
    })
}

/// The row's key for a log line: its [`StoreKey::short`] prefix, or its
/// length when it is not a key (a foreign writer's bytes could be anything,
/// even a token, so they are never shown).
pub(crate) fn key_for_log(row: &PgRow) -> String {
    match row.try_get::<&[u8], _>("key") {
        Ok(bytes) => match StoreKey::from_slice(bytes) {
            Ok(key) => key.short(),
            Err(_) => format!("(not a key: {} bytes)", bytes.len()),
        },
        Err(_) => "(unreadable key)".to_owned(),
    }
}

/// One row of `list_by_owner`.
pub(crate) fn owned_session(row: &PgRow) -> Result<OwnedSession, Error> {
    let key: &[u8] = column(row, "key")?;
    Ok(OwnedSession {
        key: StoreKey::from_slice(key)?,
        created_at: Timestamp::from_millis(column(row, "created_at")?),
        expires_at: Timestamp::from_millis(column(row, "expires_at")?),
    })
}

/// A non-NULL value of a column that a statement always fills.
pub(crate) fn required<'r, T>(row: &'r PgRow, name: &str) -> Result<T, Error>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    column(row, name)
}

/// A column that may be NULL.
pub(crate) fn optional<'r, T>(row: &'r PgRow, name: &str) -> Result<Option<T>, Error>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    column(row, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_below_one_are_corrupt() {
        assert_eq!(version(1).expect("valid"), 1);
        assert_eq!(version(i64::MAX).expect("valid"), i64::MAX as u64);
        for bad in [0, -1, i64::MIN] {
            assert!(matches!(version(bad), Err(Error::Corrupt(_))), "{bad}");
        }
    }
}
