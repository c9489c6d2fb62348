//! A tour of the session contract on the embedded default store: create,
//! load, renewal, rotation, a version conflict and expiry, with a manual
//! clock so that hours pass in an instant.
//!
//! Run: `cargo run -p sessions --example tour`

use std::sync::Arc;
use std::time::Duration;

use sessions::{Config, Error, ManualClock, MemoryStore, SessionManager, SessionStore};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let clock = Arc::new(ManualClock::starting_now());
    let store = Arc::new(MemoryStore::builder().max_sessions(10_000).build());
    let config = Config {
        idle_timeout: 30 * MINUTE,
        absolute_timeout: 8 * 60 * MINUTE,
        renewal_threshold: 15 * MINUTE,
        ..Config::default()
    };
    let manager = SessionManager::with_clock(Arc::clone(&store), config, clock.clone())?;

    println!("== create");
    let mut session = manager.create(None).await?;
    session.data_mut().insert("cart", &vec!["book".to_string()])?;
    manager.save(&mut session).await?;
    println!(
        "new session {} (the browser gets a 43-char token, the store only its SHA-256)",
        session.key().short()
    );
    println!(
        "version {} after one save, expires in {:?}",
        session.version(),
        clock_until(&clock, session.expires_at())
    );

    println!("\n== load and renewal");
    clock.advance(5 * MINUTE);
    let s = manager.load(session.id()).await?.expect("live");
    println!(
        "after 5 min: loaded, expires in {:?} (no write: more than 15 min left)",
        clock_until(&clock, s.expires_at())
    );
    clock.advance(20 * MINUTE);
    let s = manager.load(session.id()).await?.expect("live");
    println!(
        "after 25 min: loaded, renewed, expires in {:?}",
        clock_until(&clock, s.expires_at())
    );

    println!("\n== conflict");
    let mut a = manager.load(session.id()).await?.expect("live");
    let mut b = manager.load(session.id()).await?.expect("live");
    a.data_mut()
        .insert("cart", &vec!["book".to_string(), "pen".to_string()])?;
    b.data_mut().insert("cart", &Vec::<String>::new())?;
    manager.save(&mut a).await?;
    match manager.save(&mut b).await {
        Err(Error::Conflict { current }) => println!("second writer lost: Conflict {{ current: {current} }}"),
        other => println!("unexpected: {other:?}"),
    }
    let n = manager
        .update_with(session.id(), |d| {
            let mut cart: Vec<String> = d.get("cart")?.unwrap_or_default();
            cart.push("ink".into());
            d.insert("cart", &cart)?;
            Ok(cart.len())
        })
        .await?;
    println!("update_with reloads and retries: the cart now holds {n} items");

    println!("\n== rotation after login");
    let old_id = session.id().clone();
    let mut session = manager.load(session.id()).await?.expect("live");
    manager.rotate_to_owner(&mut session, "user-42").await?;
    println!("old token works: {}", manager.load(&old_id).await?.is_some());
    println!(
        "old token known as rotated a moment ago (a late response must not clobber the new cookie): {}",
        manager.was_rotated(&old_id).await?
    );
    println!(
        "new token works: {}, owner {:?}",
        manager.load(session.id()).await?.is_some(),
        session.owner()
    );
    println!("sessions of user-42: {}", manager.list_by_owner("user-42").await?.len());

    println!("\n== expiry");
    clock.advance(31 * MINUTE);
    println!(
        "after 31 idle minutes: live = {}",
        manager.load(session.id()).await?.is_some()
    );
    let swept = store.delete_expired(sessions::Clock::now(&*clock), 100).await?;
    println!(
        "the sweep reclaimed {swept} expired record(s); {} left in memory",
        store.len()
    );

    println!("\n== bad input");
    println!(
        "malformed token: {:?}",
        manager.load_str("not-a-session-id").await.err()
    );
    Ok(())
}

fn clock_until(clock: &ManualClock, t: sessions::Timestamp) -> Duration {
    sessions::Clock::now(clock).until(t)
}
