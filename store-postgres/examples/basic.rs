//! Sessions in PostgreSQL through a login: connect and migrate, an
//! anonymous visitor fills a cart, logs in (a new session id and an owner,
//! in one step), logs in again on a phone, sees both devices, and logs out
//! everywhere; a sweep removes what expired.
//!
//! Run: `cargo run -p store-postgres --example basic`, with `DATABASE_URL`
//! set to your server (default `postgres://postgres@127.0.0.1/test`). It
//! uses the table `public.store_postgres_example` and drops it at the end.

use std::sync::Arc;

use session_core::{Config, SessionManager, SessionStore, Timestamp};
use store_postgres::PostgresStore;

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1/test".to_owned());

    // `PostgresStore::connect(&url)` is the shortcut for every default
    // (table `public.sessions`); this example keeps to a table of its own.
    let store = PostgresStore::builder()
        .url(&url)
        .table("store_postgres_example")
        // At deployment you may rather run `migrate` with a privileged role.
        .migrate_on_connect(true)
        .connect()
        .await?;
    println!("connected; sessions live in {}", store.table());
    let manager = SessionManager::new(Arc::new(store.clone()), Config::default())?;

    println!("\n== an anonymous visitor");
    let mut session = manager.create(None).await?;
    session.data_mut().insert("cart", &vec!["book"])?;
    manager.save(&mut session).await?;
    // The browser gets `session.id()` in a cookie; the table and the logs
    // only ever see its hash, the store key.
    println!(
        "session {} saved at version {}",
        session.key().short(),
        session.version()
    );

    println!("\n== ada logs in");
    // Always a new id on login, so an id planted before it is worth
    // nothing after it; the cart comes along.
    manager.rotate_to_owner(&mut session, "ada").await?;
    let cart: Option<Vec<String>> = session.data().get("cart")?;
    println!(
        "now session {} of {:?}, cart {cart:?}",
        session.key().short(),
        session.owner()
    );

    println!("\n== ada logs in on her phone");
    let phone = manager.create(Some("ada".to_owned())).await?;
    for device in manager.list_by_owner("ada").await? {
        println!(
            "device: session {} expires at {:?}",
            device.key.short(),
            device.expires_at
        );
    }

    println!("\n== ada logs out everywhere");
    let ended = manager.destroy_by_owner("ada").await?;
    println!("{ended} sessions ended");
    assert!(manager.load(phone.id()).await?.is_none(), "the phone is logged out");

    // PostgreSQL has no TTL: an application calls this every minute or so.
    let swept = store.delete_expired(Timestamp::now(), 5_000).await?;
    println!("\nthe sweep removed {swept} expired sessions");

    store.drop_table().await?;
    Ok(())
}
