//! Every operation of a `RedisStore` once, against the Redis at `REDIS_URL`
//! (default `redis://127.0.0.1:6379`):
//!
//! ```text
//! cargo run -p store-redis --example basic
//! ```

use std::time::Duration;

use session_core::{Bytes, Error, Record, SessionId, SessionStore, Timestamp, Update};
use store_redis::RedisStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let store = RedisStore::builder(url)
        .prefix("example:basic:")
        .response_timeout(Duration::from_millis(500))
        .connect()
        .await?;

    let now = Timestamp::now();
    let half_hour = Duration::from_secs(1800);
    let key = SessionId::generate()?.store_key();
    store
        .create(
            Record {
                key,
                version: 1,
                data: Bytes::from_static(b"\x01\x00"),
                created_at: now,
                expires_at: now + half_hour,
                owner: None,
            },
            now,
        )
        .await?;
    println!("created {}", key.short());

    // A compare-and-swap on the version just loaded; logging in sets an owner.
    let loaded = store.load(&key, now).await?.expect("just created");
    let update = Update {
        expected_version: loaded.version,
        data: loaded.data.clone(),
        expires_at: now + half_hour,
        owner: Some("ada".into()),
    };
    let version = store.update(&key, update, now).await?;
    println!("updated to version {version}");

    // Renewal, then rotation (what a login does with the session id).
    store.touch(&key, now + half_hour * 2, now).await?;
    let new_key = SessionId::generate()?.store_key();
    let moved = store.rotate(&key, &new_key, None, now).await?;
    println!(
        "rotated to {} (version {}), old key rotated: {}",
        new_key.short(),
        moved.version,
        store.was_rotated(&key, now).await?
    );

    for s in store.list_by_owner("ada", now).await? {
        println!("ada has {} until {:?}", s.key.short(), s.expires_at);
    }
    println!("ended {} of ada's sessions", store.delete_by_owner("ada", now).await?);
    Ok(())
}
