//! Round trips counted on the wire: a loopback TCP proxy between a store
//! and its server that counts *turns*, the times the client starts sending
//! after the server has answered. A client that sends one request and waits
//! for its answer makes one turn, however many packets either side needs; a
//! ping before a query, a script reloaded after NOSCRIPT or a read before a
//! write make more. It needs no knowledge of the protocol, so it counts
//! Redis and PostgreSQL alike.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// The proxy's counters, shared by its connections.
#[derive(Default)]
struct Counters {
    turns: AtomicU64,
    /// Whether the server spoke last, so the client's next bytes open a
    /// turn. (One flag for all connections: the tests count sequential
    /// operations, one connection at a time.)
    server_spoke_last: AtomicBool,
}

/// A proxy listening on a loopback port, relaying to `upstream`.
pub struct Wire {
    pub port: u16,
    counters: Arc<Counters>,
}

impl Wire {
    /// Starts a proxy to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> std::io::Result<Wire> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let counters = Arc::new(Counters {
            turns: AtomicU64::new(0),
            server_spoke_last: AtomicBool::new(true),
        });
        let shared = Arc::clone(&counters);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(relay(client_read, server_write, Arc::clone(&shared), true));
                tokio::spawn(relay(server_read, client_write, Arc::clone(&shared), false));
            }
        });
        Ok(Wire { port, counters })
    }

    /// Turns since the last call.
    pub fn take(&self) -> u64 {
        self.counters.turns.swap(0, Ordering::SeqCst)
    }
}

async fn relay(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, counters: Arc<Counters>, from_client: bool) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Counted before the bytes go on, so the answer they cause is
        // always seen after the turn they open.
        if from_client {
            if counters.server_spoke_last.swap(false, Ordering::SeqCst) {
                counters.turns.fetch_add(1, Ordering::SeqCst);
            }
        } else {
            counters.server_spoke_last.store(true, Ordering::SeqCst);
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
