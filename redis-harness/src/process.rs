//! One `redis-server` process of a cluster: how it is started, stopped and
//! killed, and where its files are.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::connection::connect;

/// A node's process and files. The files live in `<cluster dir>/<port>/` and
/// outlive the process, so that a killed node can be restarted with the same
/// `nodes.conf` (its id, epoch and view of the cluster).
pub(crate) struct NodeProcess {
    pub(crate) port: u16,
    dir: PathBuf,
    /// `None` once killed or shut down. Kept (rather than a pid) so that the
    /// process is reaped and `kill` cannot hit a recycled pid.
    child: Option<Child>,
}

impl NodeProcess {
    /// Starts `redis-server` for `port` with its files in `cluster_dir`.
    pub(crate) fn spawn(cluster_dir: &Path, port: u16, node_timeout: Duration) -> Result<NodeProcess, String> {
        let dir = cluster_dir.join(port.to_string());
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut node = NodeProcess { port, dir, child: None };
        node.start(node_timeout)?;
        Ok(node)
    }

    /// Starts the process again (after [`NodeProcess::kill`]), with the same
    /// files.
    pub(crate) fn start(&mut self, node_timeout: Duration) -> Result<(), String> {
        let path = |name: &str| self.dir.join(name).display().to_string();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file", &path("nodes.conf")])
            .args(["--cluster-node-timeout", &node_timeout.as_millis().to_string()])
            .args(["--dir", &self.dir.display().to_string()])
            .args(["--logfile", &path("redis.log"), "--pidfile", &path("redis.pid")])
            // Test data is disposable: no RDB, no AOF.
            .args(["--save", "", "--appendonly", "no"])
            // The default waits 5 s for more replicas before a diskless full
            // sync starts: every replica would be 5 s late.
            .args(["--repl-diskless-sync-delay", "0"])
            // CLUSTER SLOTS lists a replica only once its replication offset
            // is not 0, and an idle master moves the offset only with the
            // PING it sends its replicas, every 10 s by default.
            .args(["--repl-ping-replica-period", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server (is it on PATH?): {e}"))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the node answers PING, or its process exits, or `timeout`.
    pub(crate) fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_running() {
                return Err(format!(
                    "redis-server on port {} exited at start\n{}",
                    self.port,
                    self.log_tail(8)
                ));
            }
            let pong = connect(self.port)
                .and_then(|mut con| redis::cmd("PING").query::<String>(&mut con).map_err(|e| e.to_string()));
            match pong {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "redis-server on port {} does not answer: {e}\n{}",
                        self.port,
                        self.log_tail(8)
                    ));
                }
                Err(_) => sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Whether the process is still running (reaps it if it has exited).
    pub(crate) fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                Ok(Some(_)) | Err(_) => {
                    self.child = None;
                    false
                }
            },
            None => false,
        }
    }

    /// SIGKILL, and reap. The pid file stays behind after a kill: remove it,
    /// so that the watchdog never signals a recycled pid.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(self.dir.join("redis.pid"));
    }

    /// Asks the node to exit at once (`SHUTDOWN NOSAVE NOW`: no save, and
    /// no waiting for lagging replicas, which 7.0 otherwise does for up to
    /// 10 s). Kills it if it refuses. Returns without waiting for the exit.
    pub(crate) fn request_shutdown(&mut self) {
        if !self.is_running() {
            return;
        }
        let refused = match connect(self.port) {
            // The reply is the connection closing: an I/O error is the success case.
            Ok(mut con) => match redis::cmd("SHUTDOWN").arg("NOSAVE").arg("NOW").query::<()>(&mut con) {
                Err(e) => e.code().is_some(),
                Ok(()) => true,
            },
            Err(_) => true,
        };
        if refused {
            self.kill();
        }
    }

    /// Waits until the process has exited or `deadline`, then kills it if
    /// it has not.
    pub(crate) fn wait_exit(&mut self, deadline: Instant) {
        while self.is_running() && Instant::now() < deadline {
            sleep(Duration::from_millis(10));
        }
        self.kill();
    }

    /// The last `lines` lines of the node's log, indented, for error messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let path = self.dir.join("redis.log");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| format!("(no log at {}: {e})", path.display()));
        let all: Vec<&str> = text.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        format!("  log of port {}:\n    {}", self.port, tail.join("\n    "))
    }
}
