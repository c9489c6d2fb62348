//! The quick comparison: the same workloads and contenders as the criterion
//! benches, each measured for a short fixed window, with progress on
//! stderr; writes `<target>/sessions-report/` like `report` and prints the
//! table. A few minutes on 2 cores with every backend reachable.
//!
//! ```sh
//! cargo run -p benches --release --features peers --bin compare
//! ```
//!
//! Options: see [`USAGE`] (`--help`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::Backend;
use benches::arena::Arena;
use benches::lineup::wanted;
use benches::measurement::{Measurement, target_dir, to_json_lines};
use benches::report;
use benches::report::server_cpu::{self, ServerCost, ServerWatch, Servers};
use benches::round::{Round, store_sizes};
use benches::servers::{Server, redis_cluster_masters, redis_connection};
use benches::workload::{Workload, full_matrix, quick_matrix};

/// What `--help` prints.
const USAGE: &str = "\
compare: the quick comparison, written to <target>/sessions-report/

Options:
  --window-ms N  measurement per cell in milliseconds (default 300)
  --full         every payload, like the criterion run
  --large        also 1,000,000 sessions (as SESSIONS_BENCH_LARGE=1): the preload takes minutes
  --only A,B     only workloads whose id contains one of these, e.g. --only load/,mix/
  --help         this text

Environment: REDIS_URL, REDIS_CLUSTER_NODES=redis://127.0.0.1:7000,..., DATABASE_URL,
  SESSIONS_BENCH_BACKENDS=memory,sled,redis,redis-cluster,postgres, SESSIONS_BENCH_LARGE=1";

/// Samples per cell; the median is reported.
const SAMPLES: u32 = 5;

struct Options {
    window: Duration,
    full: bool,
    large: bool,
    only: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        window: Duration::from_millis(300),
        full: false,
        large: false,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--window-ms" => {
                let ms: u64 = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--window-ms needs a number of milliseconds")?;
                o.window = Duration::from_millis(ms.max(10));
            }
            "--full" => o.full = true,
            "--large" => o.large = true,
            "--only" => {
                let list = args.next().ok_or("--only needs a comma-separated list")?;
                o.only = list.split(',').map(str::to_owned).collect();
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(o)
}

/// Median time per operation of `arena` on `workload`: a warm-up that also
/// sizes the batches, then [`SAMPLES`] batches filling the window.
async fn measure(
    arena: &Arc<Arena>,
    workload: &Workload,
    window: Duration,
    mut watch: Option<&mut ServerWatch<'_>>,
) -> f64 {
    let mut iters = 1u64;
    let warm_until = Instant::now() + window / 4;
    let mut per_op = loop {
        let t = arena.run_watched(workload, iters, watch.as_deref_mut()).await;
        let per_op = t.as_secs_f64() / iters as f64;
        if Instant::now() >= warm_until || iters >= 1 << 24 {
            break per_op;
        }
        iters = (iters * 4).min(1 << 24);
    };
    let mut samples = Vec::with_capacity(SAMPLES as usize);
    for _ in 0..SAMPLES {
        let n = ((window.as_secs_f64() / f64::from(SAMPLES)) / per_op.max(1e-9)).clamp(1.0, 1e8) as u64;
        let n = n.max(workload.concurrency as u64);
        let t = arena.run_watched(workload, n, watch.as_deref_mut()).await;
        per_op = t.as_secs_f64() / n as f64;
        samples.push(per_op * 1e9);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The servers whose `INFO commandstats` the Redis families' cells are
/// diffed around: the one server, and every master of the cluster. A family
/// that is not measured or not reachable has none.
async fn stats_servers() -> BTreeMap<Backend, Servers> {
    let mut servers = BTreeMap::new();
    if wanted(Backend::Redis)
        && let Ok(conn) = redis_connection(&Server::Redis.url()).await
    {
        servers.insert(Backend::Redis, Servers(vec![conn]));
    }
    if wanted(Backend::RedisCluster)
        && let Ok(masters) = redis_cluster_masters(&Server::RedisCluster.url()).await
    {
        servers.insert(Backend::RedisCluster, Servers(masters));
    }
    servers
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let load_before = load_average();
    let mut measurements: Vec<Measurement> = Vec::new();
    let mut notes = Vec::new();
    let mut server_costs: Vec<ServerCost> = Vec::new();
    let mut stats = stats_servers().await;
    for size in store_sizes(options.large) {
        let round = Round::start(size).await;
        let matrix = if options.full {
            full_matrix(size)
        } else {
            quick_matrix(size)
        };
        let cells: Vec<(Workload, Arc<Arena>)> = matrix
            .iter()
            .filter(|w| options.only.is_empty() || options.only.iter().any(|o| w.to_string().contains(o.as_str())))
            .flat_map(|w| round.arenas_for(w).map(move |a| (*w, Arc::clone(a))))
            .collect();
        for (i, (workload, arena)) in cells.iter().enumerate() {
            arena.prepare(workload).await;
            let mut watch = stats.get_mut(&arena.contender().id().backend).map(ServerWatch::new);
            let ns = measure(arena, workload, options.window, watch.as_mut()).await;
            if let Some(usec_per_call) = watch.and_then(|w| w.per_call()) {
                server_costs.push(ServerCost {
                    workload: *workload,
                    contender: arena.contender().id().clone(),
                    usec_per_call,
                });
            }
            let m = Measurement {
                workload: *workload,
                contender: arena.contender().id().clone(),
                ns_per_op: ns,
            };
            eprintln!(
                "[{:>4}/{}] {:>5.0}s  {:<22} {:<45} {:>10}  {:>11}",
                i + 1,
                cells.len(),
                started.elapsed().as_secs_f64(),
                workload.to_string(),
                m.contender.to_string(),
                report::format_ns(m.latency_ns()),
                report::format_rate(m.ops_per_sec()),
            );
            measurements.push(m);
        }
        notes.extend(round.finish().await);
    }
    let out = target_dir().join("sessions-report");
    let mut preamble = format!(
        "Quick run (`compare`, {} ms per cell, median of {SAMPLES} samples) in {:.0} s; \
         load average (1, 5, 15 min) before: {load_before}, after: {}; {} cores.\n",
        options.window.as_millis(),
        started.elapsed().as_secs_f64(),
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    for note in &notes {
        preamble.push_str(&format!("\n- {note}"));
    }
    preamble.push('\n');
    if let Some(Servers(masters)) = stats.get(&Backend::RedisCluster) {
        preamble.push_str(&format!("\nRedis Cluster: {} masters.\n", masters.len()));
    }
    if !server_costs.is_empty() {
        preamble.push_str(
            "\nRedis server CPU per call (`INFO commandstats`, diffed around each cell's timed loops, not its setup or cleanup; \
             a cluster's summed over its masters):\n\n",
        );
        preamble.push_str(&server_cpu::table(&server_costs));
    }
    if let Err(e) = std::fs::create_dir_all(&out)
        .and_then(|()| std::fs::write(out.join("quick.jsonl"), to_json_lines(&measurements)))
    {
        eprintln!("cannot save the measurements: {e}");
    }
    report::publish(&measurements, &out, &preamble, true)
}
