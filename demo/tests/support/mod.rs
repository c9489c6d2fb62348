//! Running the demo binary and talking HTTP/1.1 to it, for the tests that
//! need a real process (restart, browser).

#![allow(dead_code)] // each test file uses a part

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A running demo process.
pub struct Demo {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// What it printed before the URL.
    pub banner: Vec<String>,
}

impl Demo {
    /// Starts the demo binary with `args` (plus `--addr 127.0.0.1:0`) and
    /// waits, up to 60 s, for the line with its URL.
    pub async fn start(args: &[&str]) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_demo"))
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the demo binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("reading the demo's stdout") {
                if let Some(rest) = line.split("open ").nth(1) {
                    let url = rest.split_whitespace().next().expect("a URL after 'open'");
                    return url.trim_end_matches('/').to_owned();
                }
                banner.push(line);
            }
            panic!("the demo exited before printing its URL: {banner:?}");
        })
        .await
        .expect("the demo printed its URL within 60 s");
        // Keep draining stdout so the demo never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Demo { child, base, banner }
    }

    /// Stops the demo the way Ctrl-C does (SIGINT) and waits, up to 30 s,
    /// for a clean exit.
    pub async fn stop(mut self) {
        let pid = self.child.id().expect("the demo is running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -INT failed");
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the demo stopped within 30 s of SIGINT")
            .expect("waiting for the demo");
        assert!(exit.success(), "the demo exited with {exit}");
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl Reply {
    /// The value of the session cookie this response sets, if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .find_map(|(_, v)| {
                v.strip_prefix(&format!("{name}="))
                    .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
            })
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends one request over a fresh connection (`Connection: close`).
pub async fn send(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let host = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.expect("connect to the demo");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete HTTP response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Extracts `name="csrf" value="..."` from a page.
pub fn csrf_field(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field on the page") + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().expect("a closing quote").to_owned()
}

/// A fresh temporary directory that outlives the returned guard's scope
/// only as long as the guard.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a temporary directory")
}

/// `dir` as a `&str` for command lines.
pub fn path_str(dir: &Path) -> &str {
    dir.to_str().expect("temporary paths are UTF-8 here")
}

/// Logs `user` in through the login form, as a browser would; returns the
/// `Cookie` header value of the logged-in session.
pub async fn log_in(base: &str, user: &str) -> String {
    let name = "__Host-id";
    let first = send(base, "GET", "/", &[], "").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let anonymous = first.set_cookie(name).expect("the login page starts a session");
    let cookie = format!("{name}={anonymous}");
    let login = send(
        base,
        "POST",
        "/login",
        &[
            ("cookie", &cookie),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        &format!("username={user}&password=demo&csrf={}", csrf_field(&first.body)),
    )
    .await;
    assert_eq!(login.status, 303, "{}", login.body);
    let token = login.set_cookie(name).expect("login sets the new cookie");
    assert_ne!(token, anonymous, "login kept the session id");
    format!("{name}={token}")
}
