//! Sessions in sled survive a restart of the demo: log in, stop the
//! process (Ctrl-C), start it again on the same data directory, still
//! logged in with the same cookie.

mod support;

use support::{Demo, log_in, path_str, send, temp_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_session_survives_a_restart_of_the_demo() {
    let dir = temp_dir("demo-restart-");
    let args = ["--store", "sled", "--data-dir", path_str(dir.path())];

    let demo = Demo::start(&args).await;
    assert!(
        demo.banner.iter().any(|l| l.contains("sled in")),
        "the demo does not say it uses sled: {:?}",
        demo.banner
    );
    let cookie = log_in(&demo.base, "alice").await;
    let before = send(&demo.base, "GET", "/api/session", &[("cookie", &cookie)], "").await;
    assert!(before.body.contains("\"user\":\"alice\""), "{}", before.body);
    demo.stop().await;

    let demo = Demo::start(&args).await;
    let after = send(&demo.base, "GET", "/api/session", &[("cookie", &cookie)], "").await;
    assert_eq!(after.status, 200);
    assert!(
        after.body.contains("\"user\":\"alice\""),
        "logged out by a restart: {}",
        after.body
    );
    let home = send(&demo.base, "GET", "/", &[("cookie", &cookie)], "").await;
    assert!(
        home.body.contains("Logged in as <strong id=\"user\">alice</strong>"),
        "{}",
        home.body
    );
    demo.stop().await;
}
