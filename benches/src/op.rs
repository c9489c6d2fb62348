//! [`Op`]: the operations of the session-store contract that the workloads
//! time, named as in benchmark ids.

/// One of the operations of the contract that the workloads time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Insert a new session.
    Create,
    /// Read a live session.
    Load,
    /// Compare-and-swap write of the data.
    Update,
    /// Extend the expiry.
    Touch,
    /// Move a session to a new key.
    Rotate,
    /// Remove a session.
    Delete,
}

impl Op {
    /// Every operation, in the order of the report.
    pub const ALL: [Op; 6] = [Op::Create, Op::Load, Op::Update, Op::Touch, Op::Rotate, Op::Delete];

    /// The lowercase name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Load => "load",
            Op::Update => "update",
            Op::Touch => "touch",
            Op::Rotate => "rotate",
            Op::Delete => "delete",
        }
    }

    /// The inverse of [`Op::name`].
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}
