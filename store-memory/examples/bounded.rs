//! Sessions in the process's memory, bounded: a shop logs a user in, then
//! survives a flood of anonymous visitors that fills the store, and the
//! logged-in user is still logged in (anonymous sessions are evicted
//! first), then logs out everywhere.
//!
//! Run: `cargo run -p store-memory --example bounded`

use std::sync::Arc;

use session_core::{Config, SessionManager};
use store_memory::MemoryStore;

type Failure = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Failure> {
    // One process, no persistence: a restart logs everyone out. The bound
    // keeps a flood of visitors from taking all the memory.
    let store = MemoryStore::builder().max_sessions(1_000).build();
    let manager = SessionManager::new(Arc::new(store), Config::default())?;

    println!("== ada logs in");
    let mut session = manager.create(None).await?;
    session.data_mut().insert("cart", &vec!["book"])?;
    manager.save(&mut session).await?;
    // A new id at login, with the owner set in the same step.
    manager.rotate_to_owner(&mut session, "ada").await?;
    println!("session {} belongs to {:?}", session.key().short(), session.owner());

    println!("\n== 5,000 anonymous visitors arrive");
    for _ in 0..5_000 {
        manager.create(None).await?;
    }
    println!("sessions stored: {} (the bound is 1,000)", manager.store().len());
    let Some(ada) = manager.load(session.id()).await? else {
        return Err("the logged-in session was evicted by anonymous ones".into());
    };
    let cart: Option<Vec<String>> = ada.data().get("cart")?;
    println!("ada is still logged in, cart {cart:?}");

    println!("\n== ada logs out everywhere");
    println!("sessions ended: {}", manager.destroy_by_owner("ada").await?);
    println!("ada's session loads: {}", manager.load(session.id()).await?.is_some());
    Ok(())
}
