//! The full criterion run: every workload of [`benches::workload::full_matrix`]
//! for every contender of the lineup, at 10,000 sessions, and at 1,000,000
//! too when `SESSIONS_BENCH_LARGE=1` (its preload takes minutes on 2 cores
//! for sled and PostgreSQL).
//!
//! ```sh
//! cargo bench -p benches --features peers
//! cargo run -p benches --release --bin report
//! ```
//!
//! Group ids are workloads (`load/256B/10k/c1`), function ids contenders
//! (`redis`, `redis:raw`, `redis:peer:actix-session`); criterion's flags
//! work as usual (`-- --measurement-time 2 'load/'`).

use std::sync::Arc;

use benches::round::{Round, store_sizes};
use benches::workload::full_matrix;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn sessions(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built");
    for size in store_sizes(false) {
        let round = rt.block_on(Round::start(size));
        for workload in full_matrix(size) {
            let mut group = c.benchmark_group(workload.to_string());
            group.throughput(Throughput::Elements(1));
            for arena in round.arenas_for(&workload) {
                rt.block_on(arena.prepare(&workload));
                group.bench_function(arena.contender().id().to_string(), |b| {
                    b.to_async(&rt).iter_custom(|iters| {
                        let arena = Arc::clone(arena);
                        async move { arena.run(&workload, iters).await }
                    })
                });
            }
            group.finish();
        }
        rt.block_on(round.finish());
    }
}

criterion_group! {
    name = benches;
    // Shorter than criterion's defaults (3 s + 5 s, 100 samples) so the
    // whole matrix (378 benchmarks with all four families and the peers)
    // takes about 40 minutes on 2 cores; flags override these.
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .sample_size(30);
    targets = sessions
}
criterion_main!(benches);
