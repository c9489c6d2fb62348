//! Plain connections to one node, for node commands (no redirects followed).

use std::time::Duration;

/// How long connecting to a node on loopback may take: a node that does not
/// accept within this is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a reply may take. Above the 5 s `MIGRATE` timeout the harness
/// uses, and well above redis-rs's defaults, which a `FLUSHALL` can exceed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to 127.0.0.1:`port`.
pub(crate) fn connect(port: u16) -> Result<redis::Connection, String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
    let con = client
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .map_err(|e| format!("cannot connect to port {port}: {e}"))?;
    con.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(|e| e.to_string())?;
    con.set_write_timeout(Some(REPLY_TIMEOUT)).map_err(|e| e.to_string())?;
    Ok(con)
}

/// Runs `cmd` on the node at `port`, with the port in the error.
pub(crate) fn query<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Result<T, String> {
    let mut con = connect(port)?;
    cmd.query(&mut con).map_err(|e| format!("port {port}: {e}"))
}
