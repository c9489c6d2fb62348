//! The demo binary on each store it offers: it starts, says which store it
//! uses, and logs a user in. Redis must answer at `REDIS_URL`: without it
//! the test skips loudly, or fails under `SESSIONS_REQUIRE_SERVICES=1`.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_redis() {
    let url = demo::redis_url();
    let host = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    if let Err(e) = tokio::net::TcpStream::connect(&host).await {
        if conformance::services_required() {
            panic!("Redis at {url} is unreachable ({e}) and SESSIONS_REQUIRE_SERVICES=1");
        }
        conformance::announce_skip("redis", &e);
        return;
    }
    logs_in_on(&["--store", "redis"], "store redis at").await;
}
