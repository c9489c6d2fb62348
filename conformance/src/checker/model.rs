//! A pure, in-memory model of the contract (the documentation of
//! [`SessionStore`]), and the comparable [`Outcome`] of running an [`Op`]
//! against a real store.
//!
//! The state-machine test replays random operations on both and compares
//! every outcome; the linearizability checker searches for an order of
//! concurrent operations that this model accepts.

use std::collections::BTreeMap;

use session_core::{
    Error, Overwrite, OwnedSession, ROTATION_MARK_TTL, Record, SessionStore, StoreKey, Timestamp, Update,
};

/// One operation of the contract with its arguments (and the caller's `now`
/// kept beside it in [`Call`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// `create(record, now)`.
    Create(Record),
    /// `load(key, now)`.
    Load(StoreKey),
    /// `update(key, update, now)`.
    Update(StoreKey, Update),
    /// `overwrite(key, write, now)`.
    Overwrite(StoreKey, Overwrite),
    /// `touch(key, expires_at, now)`.
    Touch(StoreKey, Timestamp),
    /// `rotate(old, new, set_owner, now)`.
    Rotate(StoreKey, StoreKey, Option<String>),
    /// `was_rotated(key, now)`.
    WasRotated(StoreKey),
    /// `delete(key, now)`.
    Delete(StoreKey),
    /// `list_by_owner(owner, now)`.
    ListByOwner(String),
    /// `delete_by_owner(owner, now)`.
    DeleteByOwner(String),
    /// `delete_expired(now, limit)`.
    DeleteExpired(usize),
}

impl Op {
    /// The session keys this operation reads or writes; `None` for the
    /// operations that span keys (owner index, sweep).
    pub fn keys(&self) -> Option<Vec<StoreKey>> {
        match self {
            Op::Create(r) => Some(vec![r.key]),
            Op::Load(k)
            | Op::Update(k, _)
            | Op::Overwrite(k, _)
            | Op::Touch(k, _)
            | Op::WasRotated(k)
            | Op::Delete(k) => Some(vec![*k]),
            Op::Rotate(a, b, _) => Some(vec![*a, *b]),
            Op::ListByOwner(_) | Op::DeleteByOwner(_) | Op::DeleteExpired(_) => None,
        }
    }
}

/// An operation and the `now` its caller passed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Call {
    /// What was asked.
    pub op: Op,
    /// The caller's clock.
    pub now: Timestamp,
}

/// The error kinds the contract names, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `Error::NotFound`.
    NotFound,
    /// `Error::AlreadyExists`.
    AlreadyExists,
    /// `Error::Conflict { current }`.
    Conflict(u64),
    /// Anything else (backend failure, corruption...): never expected by the
    /// model, so it always fails a comparison. Holds the message.
    Unexpected(String),
    /// The outcome is unknown: the call failed in a way that leaves open
    /// whether it took effect (a connection lost in a failover, a timeout).
    /// Never made by [`execute`]: a fault test that expects such failures
    /// marks them so ([`Outcome::indeterminate_if_failed`]). The checker
    /// lets such an operation take effect at any instant after its call, with
    /// any result, or never.
    Indeterminate,
}

/// The result of an operation, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `Ok(())`.
    Done,
    /// `load`'s result.
    Loaded(Option<Record>),
    /// `update`'s and `overwrite`'s new version.
    Version(u64),
    /// `touch`, `was_rotated` and `delete`.
    Flag(bool),
    /// `rotate`'s record under the new key.
    Moved(Record),
    /// `list_by_owner`, sorted by key.
    Listed(Vec<OwnedSession>),
    /// `delete_by_owner` and `delete_expired`.
    Count(u64),
    /// An error.
    Failed(ErrorKind),
}

impl Outcome {
    fn from_result<T>(r: Result<T, Error>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
        match r {
            Ok(v) => ok(v),
            Err(Error::NotFound) => Outcome::Failed(ErrorKind::NotFound),
            Err(Error::AlreadyExists) => Outcome::Failed(ErrorKind::AlreadyExists),
            Err(Error::Conflict { current }) => Outcome::Failed(ErrorKind::Conflict(current)),
            Err(e) => Outcome::Failed(ErrorKind::Unexpected(e.to_string())),
        }
    }

    /// Whether this is an error the contract does not allow (backend failure,
    /// corruption...).
    pub fn is_unexpected(&self) -> bool {
        matches!(self, Outcome::Failed(ErrorKind::Unexpected(_)))
    }

    /// Whether the outcome is unknown ([`ErrorKind::Indeterminate`]).
    pub fn is_indeterminate(&self) -> bool {
        matches!(self, Outcome::Failed(ErrorKind::Indeterminate))
    }

    /// For fault tests: an unexpected failure becomes
    /// [`ErrorKind::Indeterminate`] (any other outcome stays), so that a
    /// history with calls that failed in a failover can still be checked.
    ///
    /// ```
    /// use conformance::{ErrorKind, Outcome};
    /// let lost = Outcome::Failed(ErrorKind::Unexpected("connection reset".into()));
    /// assert!(lost.indeterminate_if_failed().is_indeterminate());
    /// assert_eq!(Outcome::Done.indeterminate_if_failed(), Outcome::Done);
    /// ```
    pub fn indeterminate_if_failed(self) -> Outcome {
        if self.is_unexpected() {
            Outcome::Failed(ErrorKind::Indeterminate)
        } else {
            self
        }
    }
}

/// Runs `call` against a real store and returns its comparable outcome.
pub async fn execute<S: SessionStore + ?Sized>(store: &S, call: &Call) -> Outcome {
    let now = call.now;
    match &call.op {
        Op::Create(r) => Outcome::from_result(store.create(r.clone(), now).await, |()| Outcome::Done),
        Op::Load(k) => Outcome::from_result(store.load(k, now).await, Outcome::Loaded),
        Op::Update(k, u) => Outcome::from_result(store.update(k, u.clone(), now).await, Outcome::Version),
        Op::Overwrite(k, w) => Outcome::from_result(store.overwrite(k, w.clone(), now).await, Outcome::Version),
        Op::Touch(k, e) => Outcome::from_result(store.touch(k, *e, now).await, Outcome::Flag),
        Op::Rotate(a, b, o) => Outcome::from_result(store.rotate(a, b, o.as_deref(), now).await, Outcome::Moved),
        Op::WasRotated(k) => Outcome::from_result(store.was_rotated(k, now).await, Outcome::Flag),
        Op::Delete(k) => Outcome::from_result(store.delete(k, now).await, Outcome::Flag),
        Op::ListByOwner(o) => Outcome::from_result(store.list_by_owner(o, now).await, |mut v| {
            v.sort();
            Outcome::Listed(v)
        }),
        Op::DeleteByOwner(o) => Outcome::from_result(store.delete_by_owner(o, now).await, Outcome::Count),
        Op::DeleteExpired(limit) => Outcome::from_result(store.delete_expired(now, *limit).await, Outcome::Count),
    }
}

/// The contract as a pure state machine.
///
/// It keeps expired records until they are replaced or deleted: their
/// physical removal is unobservable except through `delete_expired`'s count,
/// for which the model gives an upper bound (see [`Model::accepts`]). It
/// keeps rotation marks (a rotated-away key and the instant its mark ends)
/// beside the records, under keys that hold no record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Model {
    records: BTreeMap<StoreKey, Record>,
    marks: BTreeMap<StoreKey, Timestamp>,
}

impl Model {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The record under `key` if live at `now`.
    pub fn live(&self, key: &StoreKey, now: Timestamp) -> Option<&Record> {
        self.records.get(key).filter(|r| r.is_live_at(now))
    }

    /// Keeps only the records and marks whose key satisfies `keep` (used to
    /// split a model per key for the linearizability checker).
    pub fn retain_keys(&mut self, keep: impl Fn(&StoreKey) -> bool) {
        self.records.retain(|k, _| keep(k));
        self.marks.retain(|k, _| keep(k));
    }

    /// Puts `r` under its key (version 1), replacing whatever was there, a
    /// rotation mark included.
    fn put_new(&mut self, mut r: Record) {
        r.version = 1;
        self.marks.remove(&r.key);
        self.records.insert(r.key, r);
    }

    /// Applies `call` and returns what the contract says it returns. For
    /// `delete_expired` the count is an upper bound: see [`Model::accepts`].
    pub fn apply(&mut self, call: &Call) -> Outcome {
        let now = call.now;
        match &call.op {
            Op::Create(r) => {
                if self.live(&r.key, now).is_some() {
                    return Outcome::Failed(ErrorKind::AlreadyExists);
                }
                self.put_new(r.clone());
                Outcome::Done
            }
            Op::Load(k) => Outcome::Loaded(self.live(k, now).cloned()),
            Op::Update(k, u) => {
                let Some(current) = self.live(k, now).map(|r| r.version) else {
                    return Outcome::Failed(ErrorKind::NotFound);
                };
                if current != u.expected_version {
                    return Outcome::Failed(ErrorKind::Conflict(current));
                }
                let r = self.records.get_mut(k).expect("the record was just found live");
                r.version += 1;
                r.data = u.data.clone();
                r.expires_at = u.expires_at;
                r.owner = u.owner.clone();
                Outcome::Version(r.version)
            }
            Op::Overwrite(k, w) => {
                if self.live(k, now).is_none() {
                    return Outcome::Failed(ErrorKind::NotFound);
                }
                let r = self.records.get_mut(k).expect("the record was just found live");
                r.version += 1;
                r.data = w.data.clone();
                r.expires_at = w.expires_at;
                r.owner = w.owner.clone();
                Outcome::Version(r.version)
            }
            Op::Touch(k, e) => {
                if self.live(k, now).is_none() {
                    return Outcome::Flag(false);
                }
                let r = self.records.get_mut(k).expect("the record was just found live");
                r.expires_at = r.expires_at.max(*e);
                Outcome::Flag(true)
            }
            Op::Rotate(a, b, owner) => {
                if self.live(a, now).is_none() {
                    return Outcome::Failed(ErrorKind::NotFound);
                }
                if self.live(b, now).is_some() {
                    return Outcome::Failed(ErrorKind::AlreadyExists);
                }
                let mut r = self.records.remove(a).expect("the record was just found live");
                let mark_until = r.expires_at.min(now + ROTATION_MARK_TTL);
                self.marks.insert(*a, mark_until);
                r.key = *b;
                if let Some(o) = owner {
                    r.owner = Some(o.clone());
                }
                self.put_new(r.clone());
                r.version = 1;
                Outcome::Moved(r)
            }
            Op::WasRotated(k) => Outcome::Flag(self.marks.get(k).is_some_and(|until| now < *until)),
            Op::Delete(k) => {
                self.marks.remove(k);
                Outcome::Flag(self.records.remove(k).is_some_and(|r| r.is_live_at(now)))
            }
            Op::ListByOwner(o) => {
                let mut v: Vec<OwnedSession> = self
                    .records
                    .values()
                    .filter(|r| r.is_live_at(now) && r.owner.as_deref() == Some(o.as_str()))
                    .map(|r| OwnedSession {
                        key: r.key,
                        created_at: r.created_at,
                        expires_at: r.expires_at,
                    })
                    .collect();
                v.sort();
                Outcome::Listed(v)
            }
            Op::DeleteByOwner(o) => {
                let mut live = 0;
                self.records.retain(|_, r| {
                    if r.owner.as_deref() == Some(o.as_str()) {
                        live += u64::from(r.is_live_at(now));
                        false
                    } else {
                        true
                    }
                });
                Outcome::Count(live)
            }
            Op::DeleteExpired(limit) => {
                let expired = self.records.values().filter(|r| !r.is_live_at(now)).count();
                Outcome::Count(expired.min(*limit) as u64)
            }
        }
    }

    /// Whether `actual` is an outcome the contract allows where the model
    /// computed `expected` for `op`: equal, except that `delete_expired` may
    /// remove fewer records than the model's bound (some may already have been
    /// collected by a TTL, an eviction or an earlier sweep that chose others).
    pub fn accepts(op: &Op, expected: &Outcome, actual: &Outcome) -> bool {
        match (op, expected, actual) {
            (Op::DeleteExpired(_), Outcome::Count(bound), Outcome::Count(n)) => n <= bound,
            (_, _, Outcome::Failed(ErrorKind::Indeterminate)) => true,
            _ => expected == actual,
        }
    }
}
