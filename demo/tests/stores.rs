//! The demo binary on each store it offers: it starts, says which store it
//! uses, and logs a user in. Redis must answer at `REDIS_URL` and
//! PostgreSQL at `DATABASE_URL`: without them those tests skip loudly, or
//! fail under `SESSIONS_REQUIRE_SERVICES=1`.

mod support;

use support::{Demo, log_in, path_str, send, temp_dir};

async fn logs_in_on(args: &[&str], says: &str) {
    let demo = Demo::start(args).await;
    assert!(
        demo.banner.iter().any(|l| l.contains(says)),
        "the demo does not say {says:?}: {:?}",
        demo.banner
    );
    let cookie = log_in(&demo.base, "bob").await;
    let api = send(&demo.base, "GET", "/api/session", &[("cookie", &cookie)], "").await;
    assert!(api.body.contains(r#""user":"bob""#), "{}", api.body);
    demo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_memory() {
    logs_in_on(&["--store", "memory"], "store memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_sled_by_default() {
    let dir = temp_dir("demo-sled-");
    logs_in_on(&["--data-dir", path_str(dir.path())], "store sled in").await;
}

/// Whether `host:port` answers; a loud skip (or a failure when services
/// are required) otherwise.
async fn reachable(what: &str, url: &str, host: &str) -> bool {
    match tokio::net::TcpStream::connect(host).await {
        Ok(_) => true,
        Err(e) if conformance::services_required() => {
            panic!("{what} at {url} is unreachable ({e}) and SESSIONS_REQUIRE_SERVICES=1")
        }
        Err(e) => {
            conformance::announce_skip(what, &e);
            false
        }
    }
}

/// `host:port` of a `scheme://[user@]host:port/...` URL.
fn host_port(url: &str, default: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or("");
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if host.is_empty() {
        default.to_owned()
    } else {
        host.to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_redis() {
    let url = demo::redis_url();
    if reachable("redis", &url, &host_port(&url, "127.0.0.1:6379")).await {
        logs_in_on(&["--store", "redis"], "store redis at").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_postgres() {
    let url = demo::database_url();
    if reachable("postgres", &url, &host_port(&url, "127.0.0.1:5432")).await {
        logs_in_on(&["--store", "postgres"], "store postgres at").await;
    }
}
