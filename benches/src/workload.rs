//! The workloads, written once for every contender.
//!
//! A [`Workload`] is an operation (or the web-shaped mix), a payload size, a
//! store size and a concurrency; the matrices list the workloads of a run.
//! [`Arena`](crate::arena::Arena) runs them.

use std::fmt;

use crate::{Contender, Op};

/// Payload sizes: 256 B, 4 KiB, 64 KiB.
pub const PAYLOADS: [usize; 3] = [256, 4 * 1024, 64 * 1024];

/// The payload of the preloaded sessions and of the mix.
pub const BASE_PAYLOAD: usize = 256;

/// Store sizes: 10,000 and (opt-in) 1,000,000 sessions.
pub const STORE_SIZES: [usize; 2] = [10_000, 1_000_000];

/// Concurrencies of the mix.
pub const CONCURRENCIES: [usize; 3] = [1, 8, 32];

/// With payloads larger than [`BASE_PAYLOAD`], reads and writes go to this
/// many preloaded sessions (rewritten with the larger payload first), not
/// to all of them: rewriting a million sessions with 64 KiB would take
/// 64 GB.
pub const HOT_SESSIONS: usize = 2_000;

/// The mix: 90% load, 8% touch, 2% update (percent thresholds: a draw
/// below [`MIX_LOAD`] loads, below [`MIX_TOUCH`] touches, else updates).
pub(crate) const MIX_LOAD: usize = 90;
/// See [`MIX_LOAD`].
pub(crate) const MIX_TOUCH: usize = 98;

/// What a workload does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// One operation, over and over, on random preloaded (or fresh) sessions.
    Single(Op),
    /// The web-shaped mix: 90% load, 8% touch, 2% update.
    Mix,
}

impl Kind {
    /// The name in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Single(op) => op.name(),
            Kind::Mix => "mix",
        }
    }

    /// Whether a contender that supports these operations can run it.
    pub fn supported_by(self, contender: &dyn Contender) -> bool {
        match self {
            Kind::Single(op) => contender.supports(op),
            Kind::Mix => [Op::Load, Op::Touch, Op::Update]
                .into_iter()
                .all(|op| contender.supports(op)),
        }
    }
}

/// One workload. Its [`Display`](fmt::Display) form is the criterion group
/// id: `load/256B/10k/c1`, `mix/256B/1M/c32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workload {
    /// What it does.
    pub kind: Kind,
    /// Bytes of session data.
    pub payload: usize,
    /// Sessions in the store.
    pub store_size: usize,
    /// Tasks issuing operations at once.
    pub concurrency: usize,
}

fn size_label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n.is_multiple_of(1_000_000) => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n.is_multiple_of(1_000) => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn bytes_label(n: usize) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{}KiB", n / 1024)
    } else {
        format!("{n}B")
    }
}

fn parse_size(text: &str) -> Option<usize> {
    let (digits, factor) = match text.as_bytes().last()? {
        b'M' => (&text[..text.len() - 1], 1_000_000),
        b'k' => (&text[..text.len() - 1], 1_000),
        _ => (text, 1),
    };
    digits.parse::<usize>().ok().map(|n| n * factor)
}

fn parse_bytes(text: &str) -> Option<usize> {
    if let Some(kib) = text.strip_suffix("KiB") {
        return kib.parse::<usize>().ok().map(|n| n * 1024);
    }
    text.strip_suffix('B')?.parse().ok()
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/c{}",
            self.kind.name(),
            bytes_label(self.payload),
            size_label(self.store_size),
            self.concurrency
        )
    }
}

impl Workload {
    /// Parses the [`Display`](fmt::Display) form back.
    pub fn parse(text: &str) -> Option<Workload> {
        let mut parts = text.split('/');
        let kind = match parts.next()? {
            "mix" => Kind::Mix,
            op => Kind::Single(Op::from_name(op)?),
        };
        let payload = parse_bytes(parts.next()?)?;
        let store_size = parse_size(parts.next()?)?;
        let concurrency = parts.next()?.strip_prefix('c')?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Workload {
            kind,
            payload,
            store_size,
            concurrency,
        })
    }

    /// The label of its payload ("256B", "4KiB").
    pub fn payload_label(&self) -> String {
        bytes_label(self.payload)
    }

    /// The label of its store size ("10k", "1M").
    pub fn store_size_label(&self) -> String {
        size_label(self.store_size)
    }
}

/// The full matrix for one store size: every operation at every payload at
/// concurrency 1, every operation at 256 B and concurrency 32, and the mix
/// at every concurrency. At the large store size, 256 B only.
pub fn full_matrix(store_size: usize) -> Vec<Workload> {
    let payloads: &[usize] = if store_size > STORE_SIZES[0] {
        &[BASE_PAYLOAD]
    } else {
        &PAYLOADS
    };
    let mut out = Vec::new();
    for &payload in payloads {
        for op in Op::ALL {
            out.push(Workload {
                kind: Kind::Single(op),
                payload,
                store_size,
                concurrency: 1,
            });
        }
    }
    out.extend(
        quick_matrix(store_size)
            .into_iter()
            .filter(|w| w.concurrency > 1 || w.kind == Kind::Mix),
    );
    out
}

/// The quick matrix for one store size: 256 B only; every operation at
/// concurrency 1 and 32; the mix at 1, 8 and 32.
pub fn quick_matrix(store_size: usize) -> Vec<Workload> {
    let w = |kind, concurrency| Workload {
        kind,
        payload: BASE_PAYLOAD,
        store_size,
        concurrency,
    };
    let mut out: Vec<_> = Op::ALL.into_iter().map(|op| w(Kind::Single(op), 1)).collect();
    out.extend(Op::ALL.into_iter().map(|op| w(Kind::Single(op), 32)));
    out.extend(CONCURRENCIES.into_iter().map(|c| w(Kind::Mix, c)));
    out
}
