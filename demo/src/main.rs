//! `cargo run -p demo [-- --store memory|sled|redis|postgres --addr HOST:PORT --data-dir DIR]`

use std::process::ExitCode;

use demo::{Args, app, open_store, session_config};

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("demo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let store = open_store(&args)
        .await
        .map_err(|e| format!("cannot open the {} store: {e}", args.store.name()))?;
    let router = app(store.store.clone(), session_config(&args)).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("demo: store {}", store.description);
    println!("demo: open http://{addr}/  (log in as alice or bob, password demo; Ctrl-C stops)");
    if !addr.ip().is_loopback() && !args.insecure_cookies {
        println!(
            "demo: note: browsers send Secure cookies over plain http only to localhost; use https or --insecure-cookies"
        );
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server error: {e}"))?;
    store.close().await.map_err(|e| format!("closing the store: {e}"))?;
    println!("demo: stopped");
    Ok(())
}
