//! # demo: a small web app on `session-tower`
//!
//! `cargo run -p demo`, then open the URL it prints: log in as `alice` or
//! `bob` (password `demo`), watch the per-session counter, open a second
//! browser and end the first one's session from "your devices". Sessions
//! live in sled under `target/demo-data` by default, so they survive a
//! restart; `--store memory` keeps them in memory.
//!
//! Routes: `GET /`, `POST /login`, `POST /logout`, `GET /devices`,
//! `POST /devices/end`, `POST /devices/end-others`, `POST /api/counter`,
//! `GET /api/session` (see [`routes`]).

pub mod args;
pub mod html;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use sessions::http::{SessionConfig, SessionLayer};
use sessions::{
    Config, FlushPolicy, MemoryStore, PostgresStore, RedisStore, SessionManager, SessionStore, SledStore, Timestamp,
};

pub use args::{Args, StoreChoice};

/// A chosen store, with what shutting it down needs.
pub struct OpenStore {
    /// The store, as the manager uses it.
    pub store: Arc<dyn SessionStore>,
    /// The sled store, to flush on shutdown.
    sled: Option<Arc<SledStore>>,
    /// What to print: the backend and where its data lives.
    pub description: String,
}

impl OpenStore {
    /// Flushes what needs flushing (sled) before the process exits.
    pub async fn close(self) -> Result<(), sessions::Error> {
        if let Some(sled) = self.sled {
            sled.flush().await?;
        }
        Ok(())
    }
}

/// `REDIS_URL`, or the local default.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// `DATABASE_URL`, or the local default.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Removes expired sessions every minute, for a store whose server does not
/// expire them by itself (PostgreSQL). Stops when the process does.
fn sweep_every_minute(store: Arc<dyn SessionStore>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            // A failed sweep is retried at the next tick; sessions are never
            // live past their deadline whether or not their rows are gone.
            let _ = store.delete_expired(Timestamp::now(), 10_000).await;
        }
    });
}

/// Opens the store `args` ask for.
///
/// Errors: the store's, e.g. a sled directory another process holds or a
/// Redis that does not answer.
pub async fn open_store(args: &Args) -> Result<OpenStore, sessions::Error> {
    Ok(match args.store {
        StoreChoice::Memory => OpenStore {
            store: Arc::new(MemoryStore::new()),
            sled: None,
            description: "memory (sessions end when the demo stops)".to_owned(),
        },
        StoreChoice::Sled => {
            std::fs::create_dir_all(&args.data_dir).map_err(|e| {
                sessions::Error::backend(
                    format!("cannot create the data directory {}: {e}", args.data_dir.display()),
                    false,
                )
            })?;
            let sled = Arc::new(
                SledStore::builder(&args.data_dir)
                    .cache_capacity(16 * 1024 * 1024)
                    .flush_policy(FlushPolicy::EveryWrite)
                    // sled sweeps expired sessions itself.
                    .sweeper(Duration::from_secs(60), 1000)
                    .open()?,
            );
            let path = std::fs::canonicalize(&args.data_dir).unwrap_or_else(|_| args.data_dir.clone());
            OpenStore {
                store: Arc::clone(&sled) as Arc<dyn SessionStore>,
                sled: Some(sled),
                description: format!("sled in {}", path.display()),
            }
        }
        StoreChoice::Redis => {
            let url = redis_url();
            // Redis expires sessions by itself: no sweep needed.
            let redis = RedisStore::builder(url.as_str()).prefix("demo:").connect().await?;
            OpenStore {
                store: Arc::new(redis),
                sled: None,
                description: format!("redis at {url} (keys under demo:)"),
            }
        }
        StoreChoice::Postgres => {
            let url = database_url();
            let pg = PostgresStore::builder()
                .url(url.as_str())
                .table("demo_sessions")
                .connect()
                .await?;
            pg.migrate().await?;
            let store: Arc<dyn SessionStore> = Arc::new(pg);
            sweep_every_minute(Arc::clone(&store));
            OpenStore {
                store,
                sled: None,
                description: format!("postgres at {url} (table demo_sessions)"),
            }
        }
    })
}

/// The layer's settings for the demo: the secure defaults, or `id` without
/// `Secure` under `--insecure-cookies`.
pub fn session_config(args: &Args) -> SessionConfig {
    if args.insecure_cookies {
        SessionConfig::default().cookie_name("id").secure(false)
    } else {
        SessionConfig::default()
    }
}

/// The router on `store` with the manager's default timeouts (30 minutes
/// idle, 12 hours at most).
///
/// Errors: [`sessions::Error::Config`] for an inconsistent `config`.
pub fn app(store: Arc<dyn SessionStore>, config: SessionConfig) -> Result<axum::Router, sessions::Error> {
    let manager = SessionManager::new(store, Config::default())?;
    Ok(routes::router(SessionLayer::new(manager, config)?))
}
