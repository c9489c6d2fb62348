//! The axum-login example on our Redis store (at `REDIS_URL`, default the
//! local one, under the key prefix `example:sessions:`):
//! `cargo run -p compat-tower-sessions --example axum_login`, then
//!
//! ```text
//! curl -i -c jar -d 'username=ada&password=lovelace' http://127.0.0.1:3000/login
//! curl -i -b jar http://127.0.0.1:3000/protected
//! curl -i -b jar -X POST http://127.0.0.1:3000/logout
//! ```

mod app;

use compat_tower_sessions::TowerStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    // The one line that differs from an axum-login application on
    // tower-sessions-redis-store: the store.
    let store = store_redis::RedisStore::builder(url)
        .prefix("example:sessions:")
        .connect()
        .await?;
    // Plain HTTP on loopback, so the cookie is not `Secure`; keep it secure
    // behind HTTPS.
    let app = app::app(TowerStore::new(store), false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000");
    axum::serve(listener, app).await?;
    Ok(())
}
