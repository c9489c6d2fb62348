//! The demo in a real browser: headless Chromium driven through WebDriver
//! (Debian's `chromium` and `chromium-driver`, which `.ci/run` installs).
//!
//! Logs in as alice, sees the counter go up on reload, checks that the
//! session cookie is `HttpOnly` (invisible to `document.cookie`), `Secure`
//! with its `__Host-` name accepted on `http://127.0.0.1`, and new after
//! login; logs in as alice in a second browser, ends the first one's
//! session from `/devices` there, and sees the first logged out on its next
//! request. Screenshots go to `target/browser-test/`; the paths are printed.
//!
//! Without chromium or chromedriver the test skips loudly, and fails under
//! `SESSIONS_REQUIRE_SERVICES=1` (CI).

mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use support::Demo;

const COOKIE: &str = "__Host-id";
const WAIT: Duration = Duration::from_secs(20);

fn binary(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

fn say(line: &str) {
    // Straight to stderr: the test harness does not capture it.
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("local address").port()
}

/// Starts chromedriver on a free port and waits (polling, 30 s at most)
/// until it accepts connections.
async fn chromedriver(path: &PathBuf) -> (tokio::process::Child, String) {
    let port = free_port();
    let child = tokio::process::Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, format!("http://127.0.0.1:{port}"))
}

/// A headless Chromium with its own fresh profile.
async fn browser(driver: &str, chromium: &PathBuf, profile: &tempfile::TempDir) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1000,800",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a WebDriver session with headless Chromium")
}

async fn session_cookie(c: &Client) -> Option<cookie::Cookie<'static>> {
    c.get_all_cookies()
        .await
        .expect("cookies")
        .into_iter()
        .find(|k| k.name() == COOKIE)
}

async fn log_in(c: &Client, base: &str, user: &str) {
    c.goto(&format!("{base}/")).await.expect("open /");
    c.find(Locator::Id("username"))
        .await
        .expect("the login form")
        .send_keys(user)
        .await
        .expect("type");
    c.find(Locator::Id("password"))
        .await
        .expect("password field")
        .send_keys("demo")
        .await
        .expect("type");
    c.find(Locator::Id("submit"))
        .await
        .expect("submit button")
        .click()
        .await
        .expect("click");
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Id("user"))
        .await
        .expect("logged in: the user is shown");
}

async fn counter(c: &Client) -> u64 {
    let text = c
        .find(Locator::Id("counter"))
        .await
        .expect("the counter")
        .text()
        .await
        .expect("text");
    text.parse()
        .unwrap_or_else(|_| panic!("the counter is not a number: {text:?}"))
}

async fn screenshot(c: &Client, name: &str) {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/browser-test"));
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, c.screenshot().await.expect("a screenshot")).expect("write the screenshot");
    let shown = std::fs::canonicalize(&path).unwrap_or(path);
    say(&format!("browser test: screenshot {}", shown.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_in_headless_chromium() {
    let chromium = binary("CHROMIUM", "/usr/bin/chromium");
    let driver_bin = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
    for (what, path) in [("chromium", &chromium), ("chromedriver", &driver_bin)] {
        if !path.exists() {
            if conformance::services_required() {
                panic!("{what} not found at {} and SESSIONS_REQUIRE_SERVICES=1", path.display());
            }
            conformance::announce_skip("browser", &format!("{what} not found at {}", path.display()));
            return;
        }
    }
    let demo = Demo::start(&["--store", "memory"]).await;
    let base = demo.base.clone();
    let (_driver, driver) = chromedriver(&driver_bin).await;
    let (profile_a, profile_b) = (support::temp_dir("chromium-a-"), support::temp_dir("chromium-b-"));
    let a = browser(&driver, &chromium, &profile_a).await;

    // The login page starts a session: Chrome must have accepted the
    // Secure, __Host- cookie over http://127.0.0.1.
    a.goto(&format!("{base}/")).await.expect("open /");
    let anonymous = session_cookie(&a).await.unwrap_or_else(|| {
        panic!("Chromium refused the Secure {COOKIE} cookie on {base}: loopback is not a secure context here")
    });
    assert_eq!(
        anonymous.http_only(),
        Some(true),
        "the cookie is not HttpOnly: {anonymous:?}"
    );
    assert_eq!(
        anonymous.secure(),
        Some(true),
        "the cookie is not Secure: {anonymous:?}"
    );
    let script = a.execute("return document.cookie", vec![]).await.expect("run a script");
    assert!(
        !script.as_str().unwrap_or("").contains(COOKIE),
        "document.cookie shows the session cookie: {script}"
    );
    say(&format!(
        "browser test: Chromium kept the Secure, HttpOnly {COOKIE} cookie on {base} (document.cookie = {script})"
    ));

    log_in(&a, &base, "alice").await;
    let logged_in = session_cookie(&a).await.expect("a session cookie after login");
    assert_ne!(
        logged_in.value(),
        anonymous.value(),
        "login did not change the session cookie"
    );
    let n = counter(&a).await;
    a.refresh().await.expect("reload");
    let m = counter(&a).await;
    assert_eq!(m, n + 1, "the counter did not go up on reload");
    screenshot(&a, "1-alice-logged-in").await;

    // A second browser logs in as alice too and ends the first one.
    let b = browser(&driver, &chromium, &profile_b).await;
    log_in(&b, &base, "alice").await;
    b.goto(&format!("{base}/devices")).await.expect("open /devices");
    let rows = b.find_all(Locator::Css("tr.device")).await.expect("device rows");
    assert_eq!(rows.len(), 2, "alice should have two sessions");
    b.find(Locator::Css("button.end[data-current=\"false\"]"))
        .await
        .expect("an End button for the other device")
        .click()
        .await
        .expect("click End");
    let deadline = Instant::now() + WAIT;
    loop {
        let rows = b.find_all(Locator::Css("tr.device")).await.expect("device rows");
        if rows.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the ended session is still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    screenshot(&b, "2-second-browser-devices").await;

    // The first browser's next request finds itself logged out.
    a.refresh().await.expect("reload");
    a.wait()
        .at_most(WAIT)
        .for_element(Locator::Id("login"))
        .await
        .expect("the first browser is logged out: the login form is back");
    screenshot(&a, "3-first-browser-logged-out").await;

    a.close().await.expect("close browser a");
    b.close().await.expect("close browser b");
    demo.stop().await;
}
