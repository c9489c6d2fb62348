//! Configuration: the builder refuses what cannot work (names that could
//! escape their quotes or collide, no connections, no URL) with
//! `Error::Config` naming the setting, before any connection is made, and
//! a server that cannot be reached is a transient backend error.

mod support;

use std::time::Duration;

use session_core::Error;
use store_postgres::{PostgresError, PostgresStore};

/// The setting a configuration error names.
fn refused_setting(e: &Error) -> Option<&str> {
    match e {
        Error::Config(c) => Some(c.setting()),
        _ => None,
    }
}

#[tokio::test]
async fn invalid_table_and_schema_names_are_refused_at_configuration() {
    // Port 1 on loopback: were a connection attempted, the error would be a
    // connection error, not a configuration error.
    let unreachable = "postgres://nobody@127.0.0.1:1/none";
    for (schema, table, refused) in [
        ("public", "Sessions", "table"),
        ("public", "sessions\"; DROP TABLE users; --", "table"),
        ("public", "1sessions", "table"),
        ("public", "", "table"),
        ("public", "sessions.other", "table"),
        ("my schema", "sessions", "schema"),
        ("pg_catalog", "sessions", "schema"),
        (
            "public",
            "a_table_name_that_is_far_too_long_for_the_derived_names",
            "table",
        ),
    ] {
        let built = PostgresStore::builder()
            .url(unreachable)
            .schema(schema)
            .table(table)
            .build();
        let err = built.expect_err("an invalid name was accepted by build");
        assert_eq!(refused_setting(&err), Some(refused), "{schema:?}.{table:?}: {err}");
        assert!(!err.is_retryable(), "a configuration error is permanent");

        let connected = PostgresStore::builder()
            .url(unreachable)
            .schema(schema)
            .table(table)
            .connect()
            .await;
        let err = connected.expect_err("an invalid name was accepted by connect");
        assert_eq!(refused_setting(&err), Some(refused), "{err}");

        let base = PostgresStore::builder()
            .url(unreachable)
            .build()
            .expect("valid defaults");
        let err = base
            .with_table(schema, table)
            .expect_err("with_table accepted an invalid name");
        assert_eq!(refused_setting(&err), Some(refused), "{err}");
    }
    let zero = PostgresStore::builder().url(unreachable).max_connections(0).build();
    assert_eq!(
        refused_setting(&zero.expect_err("0 connections")),
        Some("max_connections")
    );
    let no_url = PostgresStore::builder().build();
    assert_eq!(refused_setting(&no_url.expect_err("no url")), Some("url"));
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_backend_error() {
    let err = PostgresStore::builder()
        .url("postgres://nobody@127.0.0.1:1/none")
        .acquire_timeout(Duration::from_secs(2))
        .connect()
        .await
        .expect_err("nothing listens on port 1");
    assert!(
        matches!(support::postgres_error(&err), Some(PostgresError::Connect(_))),
        "{err}"
    );
    assert!(err.is_retryable());
}

/// `PostgresStore::connect(url)` is the builder with every default: it
/// connects to the server at `url` (table `public.sessions`), and a URL
/// that does not parse is refused as configuration without being echoed,
/// since a URL can hold a password.
#[tokio::test]
async fn connect_takes_a_url_and_refuses_one_that_does_not_parse_without_echoing_it() {
    let err = PostgresStore::connect("postgres://app:hunter2@db.internal:notaport/app")
        .await
        .expect_err("a URL with a non-numeric port was accepted");
    assert_eq!(refused_setting(&err), Some("url"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "the password was echoed: {err}");
    assert!(!err.is_retryable(), "a configuration error is permanent");

    if !support::server_available().await {
        return;
    }
    let store = PostgresStore::connect(support::database_url())
        .await
        .expect("connect to the test server");
    assert_eq!(store.table(), "public.sessions");
    store.close().await;
}
