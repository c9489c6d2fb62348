//! Sessions in sled survive a restart of the demo: log in, stop the
//! process (Ctrl-C), start it again on the same data directory, still
//! logged in with the same cookie.

mod support;

use support::{Demo, csrf_field, path_str, send, temp_dir};

const COOKIE: &str = "__Host-id";

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
    let first = send(&demo.base, "GET", "/", &[], "").await;
    assert_eq!(first.status, 200);
    let anonymous = first.set_cookie(COOKIE).expect("the login page starts a session");
    let csrf = csrf_field(&first.body);
    let cookie = format!("{COOKIE}={anonymous}");
    let login = send(
        &demo.base,
        "POST",
        "/login",
        &[
            ("cookie", &cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        &format!("username=alice&password=demo&csrf={csrf}"),
    )
    .await;
    assert_eq!(login.status, 303, "{}", login.body);
    let token = login.set_cookie(COOKIE).expect("login sets the new cookie");
    let cookie = format!("{COOKIE}={token}");
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
