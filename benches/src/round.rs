//! One round of a run: the lineup at one store size, every contender
//! preloaded, measured, then its failures printed and its data removed.
//! `compare` and the criterion bench differ only in how they measure
//! between [`Round::start`] and [`Round::finish`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::arena::Arena;
use crate::lineup::Lineup;
use crate::workload::{STORE_SIZES, Workload};

/// The store sizes of a run: 10,000 sessions, and 1,000,000 too when
/// `large` (`compare --large`) or `SESSIONS_BENCH_LARGE=1` (the one switch
/// criterion's command line leaves us) asks for it. Opt-in because its
/// preload takes minutes for sled and PostgreSQL on 2 cores.
pub fn store_sizes(large: bool) -> Vec<usize> {
    let large = large || std::env::var("SESSIONS_BENCH_LARGE").is_ok_and(|v| v == "1");
    STORE_SIZES
        .into_iter()
        .filter(|&n| large || n == STORE_SIZES[0])
        .collect()
}

/// From this store size on, a round waits [`SETTLE`] after its preloads.
pub const SETTLE_FROM: usize = 1_000_000;

/// How long a round waits after preloading [`SETTLE_FROM`] sessions or more
/// into every contender, before the first cell. Redis grows its keyspace
/// table by incremental rehashing (a step per command, and 1 ms of its
/// cron every 100 ms), so after millions of inserts the cells measured
/// first paid for it: the first contender's `load` at 1M sessions was
/// 1.39–1.48× its latency at 10k, while the same `GET` measured four cells
/// later was 1.07×; after this wait, the first was 1.04×. Not a timing a
/// result depends on: a wait too short only makes the first cells slower.
pub const SETTLE: Duration = Duration::from_secs(15);

/// The preloaded contenders of one store size.
pub struct Round {
    lineup: Lineup,
    arenas: Vec<Arc<Arena>>,
    /// What went wrong so far (families or contenders left out, failed
    /// preloads), one line each, for the report's preamble.
    notes: Vec<String>,
}

impl Round {
    /// Assembles the lineup and preloads `store_size` sessions into every
    /// contender (timed, with progress on stderr), then, for a large store,
    /// waits [`SETTLE`]. A contender whose preload fails is left out, with
    /// a note.
    pub async fn start(store_size: usize) -> Round {
        let lineup = Lineup::assemble().await;
        let mut notes = Vec::new();
        for line in &lineup.skipped {
            eprintln!("{line}");
            notes.push(line.clone());
        }
        let mut arenas = Vec::new();
        for contender in &lineup.contenders {
            let started = Instant::now();
            eprint!("preloading {store_size} sessions into {} ... ", contender.id());
            match Arena::preload(Arc::clone(contender), store_size).await {
                Ok(arena) => {
                    eprintln!("{:.1?}", started.elapsed());
                    arenas.push(arena);
                }
                Err(e) => {
                    eprintln!("failed: {e}");
                    notes.push(format!("SKIPPED {}: preload failed: {e}", contender.id()));
                }
            }
        }
        if store_size >= SETTLE_FROM {
            eprintln!("letting the servers settle for {SETTLE:?} after the preloads");
            tokio::time::sleep(SETTLE).await;
        }
        Round { lineup, arenas, notes }
    }

    /// The arenas whose contender can run `workload`, in lineup order.
    pub fn arenas_for(&self, workload: &Workload) -> impl Iterator<Item = &Arc<Arena>> + '_ {
        let kind = workload.kind;
        self.arenas
            .iter()
            .filter(move |arena| kind.supported_by(arena.contender().as_ref()))
    }

    /// Prints (and notes) every contender's failed operations, removes what
    /// every contender wrote, and returns the notes of the round.
    pub async fn finish(mut self) -> Vec<String> {
        for arena in &self.arenas {
            if let (n @ 1.., first) = arena.errors() {
                let line = format!(
                    "{}: {n} failed operations; first: {}",
                    arena.contender().id(),
                    first.unwrap_or_default()
                );
                eprintln!("{line}");
                self.notes.push(line);
            }
        }
        self.lineup.cleanup().await;
        self.notes
    }
}
