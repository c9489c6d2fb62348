//! Sessions on local disk through a login: an anonymous visitor fills a
//! cart, the server restarts, the visitor logs in (a new session id and an
//! owner, in one step), logs in again on a phone, sees both devices, and
//! logs out, first on one device and then everywhere.
//!
//! Run: `cargo run -p store-sled --example login`

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use session_core::{Config, SessionManager};
use store_sled::{FlushPolicy, SledStore};

type Failure = Box<dyn std::error::Error>;

/// What a server does at startup: open the store in its directory, with a
/// sweeper that removes expired sessions, and put a manager on it.
fn start(path: &Path) -> Result<SessionManager<SledStore>, Failure> {
    let store = SledStore::builder(path)
        // The default, spelled out: a write returns once it is on disk.
        .flush_policy(FlushPolicy::EveryWrite)
        .sweeper(Duration::from_secs(60), 1_000)
        .open()?;
    Ok(SessionManager::new(Arc::new(store), Config::default())?)
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    // A real server uses a directory of its own, such as
    // /var/lib/my-app/sessions; this example uses a temporary one.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sessions");
    let manager = start(&path)?;

    println!("== an anonymous visitor");
    let mut session = manager.create(None).await?;
    session.data_mut().insert("cart", &vec!["book"])?;
    manager.save(&mut session).await?;
    // The browser gets `session.id()` in a cookie; the store and the logs
    // only ever see its hash, the store key.
    println!(
        "session {} saved at version {}",
        session.key().short(),
        session.version()
    );

    println!("\n== the server restarts");
    drop(manager);
    let manager = start(&path)?;
    let Some(mut session) = manager.load(session.id()).await? else {
        return Err("the saved session did not survive the restart".into());
    };
    let cart: Option<Vec<String>> = session.data().get("cart")?;
    println!("session {} loaded again, cart {cart:?}", session.key().short());

    println!("\n== ada logs in");
    let anonymous = session.id().clone();
    // Always a new id on login, so a session id planted before it is worth
    // nothing after it; the cart comes along.
    manager.rotate_to_owner(&mut session, "ada").await?;
    println!(
        "session {} now belongs to {:?}; the old id loads: {}, was rotated a moment ago: {}",
        session.key().short(),
        session.owner(),
        manager.load(&anonymous).await?.is_some(),
        manager.was_rotated(&anonymous).await?,
    );

    println!("\n== ada logs in on her phone too");
    let mut phone = manager.create(None).await?;
    manager.rotate_to_owner(&mut phone, "ada").await?;
    for device in manager.list_by_owner("ada").await? {
        let left = manager.now().until(device.expires_at);
        println!("  device {} (idle timeout in {left:?})", device.key.short());
    }

    println!("\n== ada logs out on the phone, then everywhere");
    println!("phone session ended: {}", manager.destroy(phone.id()).await?);
    println!("devices left: {}", manager.list_by_owner("ada").await?.len());
    println!("sessions ended everywhere: {}", manager.destroy_by_owner("ada").await?);
    println!(
        "the laptop's session loads: {}",
        manager.load(session.id()).await?.is_some()
    );
    Ok(())
}
