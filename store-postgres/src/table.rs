//! The store's table: its name, validated once at configuration and then
//! quoted into every statement, and [`Table`], everything built from it.
//!
//! sqlx 0.9 only takes `&'static str` or an explicitly asserted string as SQL,
//! because a name spliced into SQL is an injection risk. The table name is the
//! only thing this crate ever splices into SQL, so it is held to a strict
//! identifier grammar here and always written quoted: no value that passes
//! [`validate`] can change the meaning of a statement.

use session_core::ConfigError;

use crate::statements::Statements;

/// Longest accepted table name. PostgreSQL truncates identifiers at 63 bytes;
/// the store derives `<table>_migrations`, `<table>_expires_at`,
/// `<table>_owner` and `<table>_marks` from the table name, and they must
/// fit too (a silently truncated index name could collide with another
/// store's).
pub const MAX_TABLE_NAME_LEN: usize = 48;

/// Longest accepted schema name (PostgreSQL's identifier limit).
pub const MAX_SCHEMA_NAME_LEN: usize = 63;

/// A schema-qualified table name that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName {
    schema: String,
    table: String,
}

impl TableName {
    /// Validates both parts: `[a-z_][a-z0-9_]*`, bounded lengths, and no
    /// `pg_` schema (PostgreSQL reserves those).
    pub(crate) fn new(schema: &str, table: &str) -> Result<Self, ConfigError> {
        validate("schema", schema, MAX_SCHEMA_NAME_LEN)?;
        if schema.starts_with("pg_") {
            return Err(ConfigError::new(
                "schema",
                format!("{schema:?}: names starting with `pg_` are reserved by PostgreSQL"),
            ));
        }
        validate("table", table, MAX_TABLE_NAME_LEN)?;
        Ok(Self {
            schema: schema.to_owned(),
            table: table.to_owned(),
        })
    }

    /// The schema, unquoted.
    pub(crate) fn schema(&self) -> &str {
        &self.schema
    }

    /// `"schema"."table"`, ready to splice into SQL.
    pub(crate) fn quoted(&self) -> String {
        self.quoted_with_suffix("")
    }

    /// `"schema"."table<suffix>"`, for the objects derived from the table.
    pub(crate) fn quoted_with_suffix(&self, suffix: &str) -> String {
        format!("\"{}\".\"{}{}\"", self.schema, self.table, suffix)
    }

    /// `"<table><suffix>"` without the schema (index names take none).
    pub(crate) fn quoted_local(&self, suffix: &str) -> String {
        format!("\"{}{}\"", self.table, suffix)
    }

    /// `"schema"`.
    pub(crate) fn quoted_schema(&self) -> String {
        format!("\"{}\"", self.schema)
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// Everything that depends on the table name, built once per store (and
/// per [`with_table`](crate::PostgresStore::with_table) sibling).
pub(crate) struct Table {
    pub(crate) name: TableName,
    // `schema.table`, for messages.
    pub(crate) display: String,
    pub(crate) sql: Statements,
}

impl Table {
    pub(crate) fn new(name: TableName) -> Self {
        Self {
            display: name.to_string(),
            sql: Statements::new(&name),
            name,
        }
    }
}

/// `[a-z_][a-z0-9_]{0,max-1}`: lowercase so that the quoted name is also the
/// name a human types unquoted in `psql`.
fn validate(what: &'static str, name: &str, max_len: usize) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::new(what, format!("{name:?}: {reason}"));
    let bytes = name.as_bytes();
    let Some(&first) = bytes.first() else {
        return Err(invalid("it is empty"));
    };
    if bytes.len() > max_len {
        return Err(invalid(if what == "table" {
            "it is longer than 48 characters"
        } else {
            "it is longer than 63 characters"
        }));
    }
    if !(first.is_ascii_lowercase() || first == b'_') {
        return Err(invalid("it must start with a lowercase ASCII letter or `_`"));
    }
    if !bytes
        .iter()
        .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(invalid("only lowercase ASCII letters, digits and `_` are allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_lowercase_identifiers() {
        for (schema, table) in [
            ("public", "sessions"),
            ("_s", "_"),
            ("app1", "user_sessions_2"),
            ("public", &"t".repeat(MAX_TABLE_NAME_LEN)),
            (&"s".repeat(MAX_SCHEMA_NAME_LEN), "sessions"),
        ] {
            let name = TableName::new(schema, table).expect("a valid identifier");
            assert_eq!(name.quoted(), format!("\"{schema}\".\"{table}\""));
        }
    }

    #[test]
    fn refuses_everything_that_could_escape_the_quotes() {
        let too_long_table = "t".repeat(MAX_TABLE_NAME_LEN + 1);
        let too_long_schema = "s".repeat(MAX_SCHEMA_NAME_LEN + 1);
        for (schema, table) in [
            ("public", ""),
            ("", "sessions"),
            ("public", "Sessions"),
            ("public", "1sessions"),
            ("public", "sessions\"; DROP TABLE users; --"),
            ("public", "sess ions"),
            ("public", "sessions-x"),
            ("public", "séssions"),
            ("public", "sessions\0"),
            ("public", "a.b"),
            ("pub\"lic", "sessions"),
            ("pg_catalog", "sessions"),
            ("public", too_long_table.as_str()),
            (too_long_schema.as_str(), "sessions"),
        ] {
            assert!(
                TableName::new(schema, table).is_err(),
                "{schema:?}.{table:?} was accepted"
            );
        }
    }
}
