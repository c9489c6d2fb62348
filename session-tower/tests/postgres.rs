//! The HTTP kit against the PostgreSQL at `DATABASE_URL` (default the local
//! server), each test in its own table of the schema `session_tower`,
//! dropped when the test is done.

session_tower::http_suite!(store_postgres::testing::PostgresFactory::new("session_tower"));
