//! The shared conformance suite against the real PostgreSQL at
//! `DATABASE_URL` (default: the local server), every store in its own table
//! of the schema `conformance`; see `store_postgres::testing::PostgresFactory`.

conformance::suite!(store_postgres::testing::PostgresFactory::new("conformance"));
