//! A detached shell that removes a cluster if this process dies without
//! dropping it: statics are never dropped, and a test binary killed by a
//! timeout or a signal drops nothing.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `$1` is this process's pid, `$2` the cluster's directory. The loop ends
/// when the process is gone (then the nodes are killed and the directory
/// removed) or when the directory is (the cluster was dropped).
///
/// The nodes are found by their pid files, not their ports: after a drop,
/// another cluster may already have the same ports, and this must never
/// shut that one down. A node's pid file is removed when it exits, cleanly
/// (by redis-server) or killed (by the harness), so no recycled pid is hit.
const SCRIPT: &str = r#"
while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 0.5; done
[ -d "$2" ] || exit 0
for f in "$2"/*/redis.pid; do
  [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
done
rm -rf "$2"
"#;

/// Starts the watchdog of the cluster in `dir`, in its own session (so the
/// Ctrl-C that stops a test run does not stop it too). `None` if no shell
/// could be started: the cluster still works, it just is not cleaned up
/// after a crash.
pub(crate) fn spawn(dir: &Path) -> Option<Child> {
    let pid = std::process::id().to_string();
    let detached = Command::new("setsid")
        .args(["sh", "-c", SCRIPT, "redis-harness-watchdog", &pid])
        .arg(dir)
        .spawn_quietly();
    detached.or_else(|| {
        Command::new("sh")
            .args(["-c", SCRIPT, "redis-harness-watchdog", &pid])
            .arg(dir)
            .spawn_quietly()
    })
}

trait SpawnQuietly {
    fn spawn_quietly(&mut self) -> Option<Child>;
}

impl SpawnQuietly for Command {
    fn spawn_quietly(&mut self) -> Option<Child> {
        self.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    }
}
