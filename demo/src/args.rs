//! The command line: `--store`, `--addr`, `--data-dir`, `--insecure-cookies`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Which backend holds the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChoice {
    /// In process memory: gone when the demo stops.
    Memory,
    /// sled in the data directory (the default): sessions survive a restart.
    Sled,
    /// Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`), keys under
    /// `demo:`.
    Redis,
    /// PostgreSQL at `DATABASE_URL` (default
    /// `postgres://postgres@127.0.0.1:5432/test`), table `demo_sessions`.
    Postgres,
}

impl StoreChoice {
    /// The name as `--store` spells it.
    pub fn name(self) -> &'static str {
        match self {
            StoreChoice::Memory => "memory",
            StoreChoice::Sled => "sled",
            StoreChoice::Redis => "redis",
            StoreChoice::Postgres => "postgres",
        }
    }
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `--store memory|sled|redis|postgres` (default `sled`).
    pub store: StoreChoice,
    /// `--addr` (default `127.0.0.1:3000`; port 0 picks a free one).
    pub addr: SocketAddr,
    /// `--data-dir` for sled (default `target/demo-data` of the workspace).
    pub data_dir: PathBuf,
    /// `--insecure-cookies`: cookie `id` without `Secure`, for browsers that
    /// refuse `Secure` cookies on `http://127.0.0.1`.
    pub insecure_cookies: bool,
}

/// The default data directory: `target/demo-data` in the workspace, which
/// git ignores.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/demo-data"))
}

/// What `--help` prints.
pub const USAGE: &str = "\
usage: demo [--store memory|sled|redis|postgres] [--addr HOST:PORT] [--data-dir DIR] [--insecure-cookies]

  --store             where sessions live (default: sled, in the data directory;
                      redis at REDIS_URL, default redis://127.0.0.1:6379;
                      postgres at DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test)
  --addr              address to listen on (default: 127.0.0.1:3000; port 0 picks one)
  --data-dir          sled's directory (default: target/demo-data of the workspace)
  --insecure-cookies  cookie `id` without Secure, for browsers that refuse Secure
                      cookies on http://127.0.0.1 (Chromium accepts them)";

impl Args {
    /// Parses the arguments after the program name.
    ///
    /// Errors: a message naming the bad or unknown argument (`--help` is an
    /// "error" whose message is the usage).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut out = Args {
            store: StoreChoice::Sled,
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: default_data_dir(),
            insecure_cookies: false,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
            };
            match flag.as_str() {
                "--store" => {
                    out.store = match value("--store")?.as_str() {
                        "memory" => StoreChoice::Memory,
                        "sled" => StoreChoice::Sled,
                        "redis" => StoreChoice::Redis,
                        "postgres" => StoreChoice::Postgres,
                        other => {
                            return Err(format!(
                                "unknown store {other:?}: use memory, sled, redis or postgres\n\n{USAGE}"
                            ));
                        }
                    }
                }
                "--addr" => {
                    let v = value("--addr")?;
                    out.addr = v
                        .parse()
                        .map_err(|e| format!("--addr {v:?} is not HOST:PORT: {e}\n\n{USAGE}"))?;
                }
                "--data-dir" => out.data_dir = PathBuf::from(value("--data-dir")?),
                "--insecure-cookies" => out.insecure_cookies = true,
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults_and_every_flag() {
        let d = parse(&[]).expect("no arguments");
        assert_eq!(d.store, StoreChoice::Sled);
        assert_eq!(d.addr.to_string(), "127.0.0.1:3000");
        let a = parse(&[
            "--store",
            "memory",
            "--addr=127.0.0.1:0",
            "--data-dir",
            "/tmp/x",
            "--insecure-cookies",
        ])
        .expect("valid");
        assert_eq!(a.store, StoreChoice::Memory);
        assert_eq!(a.addr.port(), 0);
        assert_eq!(a.data_dir, PathBuf::from("/tmp/x"));
        assert!(a.insecure_cookies);
        assert_eq!(parse(&["--store", "redis"]).expect("valid").store, StoreChoice::Redis);
        assert_eq!(
            parse(&["--store", "postgres"]).expect("valid").store,
            StoreChoice::Postgres
        );
        assert!(parse(&["--store", "mongo"]).is_err());
        assert!(parse(&["--addr"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
    }
}
