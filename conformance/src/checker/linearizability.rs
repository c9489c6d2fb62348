//! Decides whether a concurrent [`History`] is linearizable against the pure
//! [`Model`] of the contract: is there one total order of its operations,
//! consistent with real time (an operation that returned before another was
//! invoked comes first), in which the model gives every operation the result
//! the store gave (compared with [`Model::accepts`])?
//!
//! # The search
//!
//! Wing & Gong's search as improved by Lowe (the "WGL" algorithm that
//! Porcupine and Knossos use): walk the history's call and return entries in
//! time order; at a call, try to linearize that operation now (apply it to
//! the model and compare results); at a return whose operation is not yet
//! linearized, backtrack. A cache of every (set of linearized operations,
//! model state) already explored prunes the search: two paths that linearized
//! the same operations and reached the same state have the same future.
//! [`Model`] is `Clone + Hash + Eq` for exactly this.
//!
//! # Partitioning, and why it is sound
//!
//! The search is exponential in the number of overlapping operations, and its
//! cache grows with the history, so the history is split into independent
//! parts that are checked one by one (linearizability is *local*: a history
//! over independent objects is linearizable iff each object's sub-history
//! is). Here an "object" must be a set of keys whose state no operation
//! outside it reads or writes:
//!
//! - each key is a node of a union-find, and so is each owner name;
//! - an operation joins every node it reads or writes: `rotate` joins its two
//!   keys, and with the owner it sets if it sets one; `create`, `update` and
//!   `overwrite` join their key with the owner they write (a record can only
//!   become an owner's through them, or through `rotate`); `list_by_owner` and `delete_by_owner`
//!   belong to their owner's node, so they land with every key that ever had
//!   that owner;
//! - each connected component is one partition, checked from an empty model.
//!   The model restricted to a component's keys evolves only by that
//!   component's operations, and their results depend only on it.
//!
//! `delete_expired` spans every key, but in the model it changes nothing
//! (expired records are unobservable, physical removal is garbage
//! collection) and its count is only bounded from above. When the history
//! has more than one partition, each sweep is therefore taken out of the
//! search and checked alone against a weaker bound that holds at any instant:
//! `count <= min(limit, number of keys in the history)`. This can only miss a
//! bug in a sweep's count, never report a false one; a sweep that removes a
//! live record is still caught, because the later operations on that key see
//! it missing. With a single partition sweeps stay in the search, exactly.
//!
//! Any operation that failed with an error the contract never allows (a
//! backend failure, corruption) fails the check at once: its effect is
//! unknown, and the contract says it must not happen. A fault test that
//! expects such failures marks them [`Indeterminate`](crate::ErrorKind::Indeterminate)
//! instead: such an operation counts as still running until the end of the
//! history, and the search may linearize it at any point after its call
//! (taking effect, any result accepted) or drop it at the end (no effect).
//!
//! # Failures
//!
//! [`NotLinearizable`] keeps the deepest point the search reached in the
//! failing partition: the model state there, the last operations it had
//! linearized, and the window of operations that were candidates next (not
//! yet linearized, invoked before the first of them returned), each with its
//! invocation and response ticks and what the model would have answered. Its
//! `Display` prints that window.

use std::collections::{HashMap, HashSet};
use std::fmt;

use session_core::StoreKey;

use crate::checker::history::{Event, History};
use crate::checker::model::{Model, Op, Outcome};

/// What a successful check covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Operations checked.
    pub ops: usize,
    /// Independent partitions the history was split into.
    pub partitions: usize,
    /// Operations in the largest partition.
    pub largest_partition: usize,
    /// `delete_expired` calls checked apart from the search (see the module
    /// docs).
    pub sweeps_checked_alone: usize,
    /// States the search explored (cache entries), over all partitions.
    pub states_explored: usize,
    /// Operations that overlapped in time with at least one other: how much
    /// concurrency the history really had.
    pub overlapping: usize,
}

/// Why a history is not linearizable, with the window of operations where
/// the search got stuck.
#[derive(Debug, Clone)]
pub struct NotLinearizable {
    /// One line saying what failed.
    pub reason: String,
    /// Operations in the failing partition.
    pub partition_ops: usize,
    /// The model state at the deepest point the search reached (`None` when
    /// the failure is not a search failure).
    pub state: Option<Box<Model>>,
    /// The operations linearized on the way to that point that give context:
    /// the last few, and every one overlapping the window; in linearization
    /// order.
    pub linearized_tail: Vec<Event>,
    /// The operations that could have come next, none of which the model
    /// accepts there, in invocation order; each with what the model would
    /// have answered.
    pub window: Vec<(Event, Option<Outcome>)>,
}

impl fmt::Display for NotLinearizable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.reason)?;
        if self.window.is_empty() {
            return Ok(());
        }
        writeln!(
            f,
            "partition of {} operations; ticks are [invoked..returned] on one shared counter",
            self.partition_ops
        )?;
        if !self.linearized_tail.is_empty() {
            writeln!(
                f,
                "operations linearized before the search got stuck (the last ones, and those overlapping the window), in that order:"
            )?;
            for e in &self.linearized_tail {
                writeln!(f, "  {}", describe(e))?;
            }
        }
        if let Some(state) = &self.state {
            writeln!(f, "model state there: {state:?}")?;
        }
        writeln!(
            f,
            "none of these can come next (each shown with what the model answers there):"
        )?;
        for (e, expected) in &self.window {
            writeln!(f, "  {}", describe(e))?;
            if let Some(expected) = expected {
                writeln!(f, "      model: {expected:?}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for NotLinearizable {}

fn describe(e: &Event) -> String {
    format!(
        "[{:>6}..{:>6}] task {:>2} now={} {:?} -> {:?}",
        e.invoked, e.returned, e.task, e.call.now, e.call.op, e.outcome
    )
}

/// Checks `history`, partitioned as the module docs explain.
pub fn check(history: &History) -> Result<Report, NotLinearizable> {
    check_with(history, true)
}

/// Checks `history` as one partition (exact for sweeps, slower): for small
/// histories and for cross-checking [`check`].
pub fn check_unpartitioned(history: &History) -> Result<Report, NotLinearizable> {
    check_with(history, false)
}

fn check_with(history: &History, partitioned: bool) -> Result<Report, NotLinearizable> {
    let events = history.events();
    if let Some(e) = events.iter().find(|e| e.outcome.is_unexpected()) {
        return Err(NotLinearizable {
            reason: format!(
                "an operation failed in a way the contract never allows: {}",
                describe(e)
            ),
            partition_ops: 0,
            state: None,
            linearized_tail: Vec::new(),
            window: Vec::new(),
        });
    }
    let mut parts = if partitioned {
        partition(events)
    } else {
        vec![events.iter().collect()]
    };
    let mut report = Report {
        ops: events.len(),
        overlapping: overlapping(events),
        ..Report::default()
    };
    if parts.len() > 1 {
        let keys = distinct_keys(events);
        for part in &mut parts {
            part.retain(|e| {
                let Op::DeleteExpired(_) = e.call.op else {
                    return true;
                };
                report.sweeps_checked_alone += 1;
                false
            });
        }
        for e in events {
            if let Op::DeleteExpired(limit) = e.call.op {
                let bound = limit.min(keys) as u64;
                if !matches!(e.outcome, Outcome::Count(n) if n <= bound) {
                    return Err(NotLinearizable {
                        reason: format!(
                            "delete_expired removed more than it possibly could (at most {bound}: its limit, or every key of the history): {}",
                            describe(e)
                        ),
                        partition_ops: events.len(),
                        state: None,
                        linearized_tail: Vec::new(),
                        window: Vec::new(),
                    });
                }
            }
        }
        parts.retain(|p| !p.is_empty());
    }
    report.partitions = parts.len();
    report.largest_partition = parts.iter().map(Vec::len).max().unwrap_or(0);
    for part in &parts {
        report.states_explored += search(part)?;
    }
    Ok(report)
}

/// How many events overlap another in time (`events` in invocation order).
fn overlapping(events: &[Event]) -> usize {
    let mut overlaps = vec![false; events.len()];
    let mut latest: Option<(u64, usize)> = None;
    for (i, e) in events.iter().enumerate() {
        if let Some((returned, j)) = latest
            && e.invoked <= returned
        {
            overlaps[i] = true;
            overlaps[j] = true;
        }
        if latest.is_none_or(|(returned, _)| e.returned > returned) {
            latest = Some((e.returned, i));
        }
    }
    overlaps.into_iter().filter(|&o| o).count()
}

fn distinct_keys(events: &[Event]) -> usize {
    let mut keys: HashSet<StoreKey> = HashSet::new();
    for e in events {
        if let Some(ks) = e.call.op.keys() {
            keys.extend(ks);
        }
    }
    keys.len()
}

/// A node of the partition graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Node {
    Key(StoreKey),
    Owner(String),
}

/// The nodes an operation reads or writes; empty for sweeps.
fn nodes(op: &Op) -> Vec<Node> {
    let owner = |o: &Option<String>| o.iter().map(|o| Node::Owner(o.clone())).collect::<Vec<_>>();
    match op {
        Op::Create(r) => [vec![Node::Key(r.key)], owner(&r.owner)].concat(),
        Op::Update(k, u) => [vec![Node::Key(*k)], owner(&u.owner)].concat(),
        Op::Overwrite(k, w) => [vec![Node::Key(*k)], owner(&w.owner)].concat(),
        Op::Load(k) | Op::Touch(k, _) | Op::WasRotated(k) | Op::Delete(k) => vec![Node::Key(*k)],
        Op::Rotate(a, b, o) => [vec![Node::Key(*a), Node::Key(*b)], owner(o)].concat(),
        Op::ListByOwner(o) | Op::DeleteByOwner(o) => vec![Node::Owner(o.clone())],
        Op::DeleteExpired(_) => Vec::new(),
    }
}

/// Union-find over nodes.
#[derive(Default)]
struct Components {
    ids: HashMap<Node, usize>,
    parent: Vec<usize>,
}

impl Components {
    fn id(&mut self, node: Node) -> usize {
        let next = self.parent.len();
        let id = *self.ids.entry(node).or_insert(next);
        if id == next {
            self.parent.push(next);
        }
        id
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[a.max(b)] = a.min(b);
        }
    }
}

/// Splits events into connected components; sweeps go to the first
/// partition (the caller takes them out again when there are several).
fn partition(events: &[Event]) -> Vec<Vec<&Event>> {
    let mut c = Components::default();
    let mut first_node = Vec::with_capacity(events.len());
    for e in events {
        let ids: Vec<usize> = nodes(&e.call.op).into_iter().map(|n| c.id(n)).collect();
        for w in ids.windows(2) {
            c.union(w[0], w[1]);
        }
        first_node.push(ids.first().copied());
    }
    let mut index: HashMap<Option<usize>, usize> = HashMap::new();
    let mut parts: Vec<Vec<&Event>> = Vec::new();
    for (e, node) in events.iter().zip(first_node) {
        let root = node.map(|n| c.find(n));
        let i = *index.entry(root).or_insert_with(|| {
            parts.push(Vec::new());
            parts.len() - 1
        });
        parts[i].push(e);
    }
    // Sweeps (root `None`) alone would be a partition of their own: fold them
    // into the first one so that a single-component history stays exact.
    if let Some(&sweeps) = index.get(&None)
        && parts.len() > 1
    {
        let moved = std::mem::take(&mut parts[sweeps]);
        let target = usize::from(sweeps == 0);
        parts[target].extend(moved);
        parts[target].sort_by_key(|e| (e.invoked, e.returned));
        parts.retain(|p| !p.is_empty());
    }
    parts
}

/// A set of operation indexes, hashable for the cache.
#[derive(Clone, PartialEq, Eq, Hash)]
struct OpSet(Vec<u64>);

impl OpSet {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

const NIL: usize = usize::MAX;

/// The history's call and return entries as a doubly linked list in time
/// order, from which linearized operations are lifted out and put back.
struct Entries {
    /// `op[i]`: the operation of entry `i`; `is_call[i]`: whether it is its call.
    op: Vec<usize>,
    is_call: Vec<bool>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// The list's first entry (`NIL` when empty).
    head: usize,
    /// Where each operation's call and return entries sit.
    call_of: Vec<usize>,
    return_of: Vec<usize>,
}

impl Entries {
    fn new(events: &[&Event]) -> Self {
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * events.len());
        for (i, e) in events.iter().enumerate() {
            // At equal ticks a call sorts before a return, so operations that
            // touch at one tick count as overlapping (hand-written histories).
            order.push((e.invoked, false, i));
            // An operation of unknown outcome may take effect any time later.
            let returned = if e.outcome.is_indeterminate() {
                u64::MAX
            } else {
                e.returned
            };
            order.push((returned.max(e.invoked), true, i));
        }
        order.sort();
        let n = order.len();
        let mut entries = Entries {
            op: Vec::with_capacity(n),
            is_call: Vec::with_capacity(n),
            next: (1..=n).map(|i| if i == n { NIL } else { i }).collect(),
            prev: (0..n).map(|i| if i == 0 { NIL } else { i - 1 }).collect(),
            head: if n == 0 { NIL } else { 0 },
            call_of: vec![NIL; events.len()],
            return_of: vec![NIL; events.len()],
        };
        for (pos, (_, is_return, op)) in order.into_iter().enumerate() {
            entries.op.push(op);
            entries.is_call.push(!is_return);
            if is_return {
                entries.return_of[op] = pos;
            } else {
                entries.call_of[op] = pos;
            }
        }
        entries
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p] = n;
        }
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        if p == NIL {
            self.head = i;
        } else {
            self.next[p] = i;
        }
        if n != NIL {
            self.prev[n] = i;
        }
    }

    /// Takes an operation's two entries out of the list.
    fn lift(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        self.unlink(self.return_of[op]);
    }

    /// Puts them back, in the reverse order of [`Entries::lift`].
    fn unlift(&mut self, op: usize) {
        self.relink(self.return_of[op]);
        self.relink(self.call_of[op]);
    }
}

/// The deepest point a search reached.
struct Deepest {
    order: Vec<usize>,
    linearized: OpSet,
    state: Model,
}

/// How many of the last linearized operations a failure shows.
const TAIL: usize = 6;

/// The WGL search over one partition; returns the number of states explored.
fn search(events: &[&Event]) -> Result<usize, NotLinearizable> {
    let n = events.len();
    let mut list = Entries::new(events);
    let mut linearized = OpSet::new(n);
    let mut state = Model::new();
    // Operations linearized so far, with the state before each.
    let mut stack: Vec<(usize, Model)> = Vec::new();
    let mut cache: HashSet<(OpSet, Model)> = HashSet::new();
    let mut deepest = Deepest {
        order: Vec::new(),
        linearized: linearized.clone(),
        state: state.clone(),
    };
    let mut entry = list.head;
    while list.head != NIL {
        if entry != NIL && list.is_call[entry] {
            let i = list.op[entry];
            let e = events[i];
            let mut next_state = state.clone();
            let expected = next_state.apply(&e.call);
            if Model::accepts(&e.call.op, &expected, &e.outcome) {
                let mut next_set = linearized.clone();
                next_set.insert(i);
                if cache.insert((next_set.clone(), next_state.clone())) {
                    stack.push((i, std::mem::replace(&mut state, next_state)));
                    linearized = next_set;
                    list.lift(i);
                    if stack.len() > deepest.order.len() {
                        deepest = Deepest {
                            order: stack.iter().map(|(op, _)| *op).collect(),
                            linearized: linearized.clone(),
                            state: state.clone(),
                        };
                    }
                    entry = list.head;
                    continue;
                }
            }
            entry = list.next[entry];
        } else if entry != NIL && events[list.op[entry]].outcome.is_indeterminate() {
            // The end of an operation of unknown outcome that was not
            // linearized: it may never have taken effect. Drop it (state
            // unchanged), unless that was explored already.
            let i = list.op[entry];
            let mut next_set = linearized.clone();
            next_set.insert(i);
            if cache.insert((next_set.clone(), state.clone())) {
                stack.push((i, state.clone()));
                linearized = next_set;
                list.lift(i);
                entry = list.head;
            } else {
                entry = NIL;
            }
        } else {
            // A return of an operation not yet linearized: this path is dead.
            let Some((i, before)) = stack.pop() else {
                return Err(stuck(events, deepest));
            };
            state = before;
            linearized.remove(i);
            list.unlift(i);
            entry = list.next[list.call_of[i]];
        }
    }
    Ok(cache.len())
}

/// Builds the failure report from the deepest point of a failed search.
fn stuck(events: &[&Event], deepest: Deepest) -> NotLinearizable {
    let pending: Vec<usize> = (0..events.len()).filter(|&i| !deepest.linearized.contains(i)).collect();
    // The first pending operation to return must have been linearized before
    // its return; the candidates are those invoked by then.
    let first_return = pending.iter().map(|&i| events[i].returned).min().unwrap_or(0);
    let mut window: Vec<(Event, Option<Outcome>)> = pending
        .iter()
        .filter(|&&i| events[i].invoked <= first_return)
        .map(|&i| {
            let mut model = deepest.state.clone();
            let expected = model.apply(&events[i].call);
            (events[i].clone(), Some(expected))
        })
        .collect();
    window.sort_by_key(|(e, _)| (e.invoked, e.returned));
    // Context: the last few operations linearized, and any linearized one
    // that overlaps the window (the culprit is often among them).
    let window_start = window.iter().map(|(e, _)| e.invoked).min().unwrap_or(0);
    let tail_from = deepest.order.len().saturating_sub(TAIL);
    let context: Vec<Event> = deepest
        .order
        .iter()
        .enumerate()
        .filter(|&(pos, &i)| pos >= tail_from || events[i].returned >= window_start)
        .map(|(_, &i)| events[i].clone())
        .collect();
    NotLinearizable {
        reason: format!(
            "not linearizable: after {} of {} operations of a partition, no order of the next ones matches the model",
            deepest.order.len(),
            events.len()
        ),
        partition_ops: events.len(),
        state: Some(Box::new(deepest.state)),
        linearized_tail: context,
        window,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use session_core::{Bytes, Record, Timestamp, Update};

    use super::*;
    use crate::checker::model::{Call, ErrorKind};
    use crate::harness::fresh_key;

    const T0: Timestamp = Timestamp::from_millis(1_000_000);
    const HOUR: Duration = Duration::from_secs(3600);

    fn record(key: StoreKey, owner: Option<&str>) -> Record {
        Record {
            key,
            version: 1,
            data: Bytes::from_static(b"a"),
            created_at: T0,
            expires_at: T0 + HOUR,
            owner: owner.map(str::to_owned),
        }
    }

    fn update(expected_version: u64, data: &'static [u8]) -> Update {
        Update {
            expected_version,
            data: Bytes::from_static(data),
            expires_at: T0 + HOUR,
            owner: None,
        }
    }

    fn ev(task: usize, invoked: u64, returned: u64, op: Op, outcome: Outcome) -> Event {
        Event {
            task,
            call: Call { op, now: T0 },
            outcome,
            invoked,
            returned,
        }
    }

    fn loaded(key: StoreKey, version: u64, data: &'static [u8]) -> Outcome {
        Outcome::Loaded(Some(Record {
            version,
            data: Bytes::from_static(data),
            ..record(key, None)
        }))
    }

    fn loaded_moved(key: StoreKey, data: &'static [u8]) -> Outcome {
        Outcome::Moved(Record {
            data: Bytes::from_static(data),
            ..record(key, None)
        })
    }

    #[test]
    fn a_write_of_unknown_outcome_may_have_taken_effect_or_not_but_nothing_else() {
        let k = fresh_key();
        let lost = || Outcome::Failed(crate::ErrorKind::Indeterminate);
        let with_load = |version, data| {
            History::new(vec![
                ev(0, 0, 1, Op::Create(record(k, None)), Outcome::Done),
                ev(0, 2, 3, Op::Update(k, update(1, b"b")), lost()),
                ev(1, 4, 5, Op::Load(k), loaded(k, version, data)),
                ev(1, 6, 7, Op::Load(k), loaded(k, version, data)),
            ])
        };
        assert!(check(&with_load(2, b"b")).is_ok(), "it took effect");
        assert!(check(&with_load(1, b"a")).is_ok(), "it did not");
        assert!(check(&with_load(3, b"b")).is_err(), "no write explains version 3");
        // It cannot take effect before its call.
        let early = History::new(vec![
            ev(0, 0, 1, Op::Create(record(k, None)), Outcome::Done),
            ev(1, 2, 3, Op::Load(k), loaded(k, 2, b"b")),
            ev(0, 4, 5, Op::Update(k, update(1, b"b")), lost()),
        ]);
        assert!(check(&early).is_err());
    }

    #[test]
    fn an_empty_history_is_linearizable() {
        assert!(check(&History::default()).is_ok());
    }

    #[test]
    fn a_sequential_correct_history_is_linearizable() {
        let k = fresh_key();
        let h = History::new(vec![
            ev(0, 0, 1, Op::Create(record(k, None)), Outcome::Done),
            ev(0, 2, 3, Op::Update(k, update(1, b"b")), Outcome::Version(2)),
            ev(0, 4, 5, Op::Load(k), loaded(k, 2, b"b")),
        ]);
        assert!(check(&h).is_ok());
    }

    #[test]
    fn concurrent_updates_of_one_version_linearize_in_the_order_the_results_say() {
        // Task 1's update is invoked first but loses: only the order
        // (task 2, task 1) explains the results, and the load sees task 2's data.
        let k = fresh_key();
        let h = History::new(vec![
            ev(0, 0, 1, Op::Create(record(k, None)), Outcome::Done),
            ev(
                1,
                2,
                9,
                Op::Update(k, update(1, b"one")),
                Outcome::Failed(ErrorKind::Conflict(2)),
            ),
            ev(2, 3, 8, Op::Update(k, update(1, b"two")), Outcome::Version(2)),
            ev(3, 4, 7, Op::Load(k), loaded(k, 2, b"two")),
        ]);
        assert!(check(&h).is_ok());
        assert!(check_unpartitioned(&h).is_ok());
    }

    #[test]
    fn two_winners_of_one_version_are_not_linearizable() {
        let k = fresh_key();
        let h = History::new(vec![
            ev(0, 0, 1, Op::Create(record(k, None)), Outcome::Done),
            ev(1, 2, 5, Op::Update(k, update(1, b"one")), Outcome::Version(2)),
            ev(2, 3, 6, Op::Update(k, update(1, b"two")), Outcome::Version(2)),
        ]);
        let err = check(&h).expect_err("two updates of version 1 cannot both win");
        assert_eq!(err.partition_ops, 3);
        assert_eq!(err.window.len(), 1, "{err}");
        let text = err.to_string();
        assert!(text.contains("not linearizable"), "{text}");
        assert!(
            text.contains("Conflict(2)"),
            "the window shows what the model says: {text}"
        );
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_not_linearizable() {
        let k = fresh_key();
        let h = History::new(vec![
            ev(0, 0, 1, Op::Create(record(k, None)), Outcome::Done),
            ev(0, 2, 3, Op::Update(k, update(1, b"b")), Outcome::Version(2)),
            ev(1, 4, 5, Op::Load(k), loaded(k, 1, b"a")),
        ]);
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_read_overlapping_a_write_may_see_either_side() {
        let k = fresh_key();
        for seen in [loaded(k, 1, b"a"), loaded(k, 2, b"b")] {
            let h = History::new(vec![
                ev(0, 0, 1, Op::Create(record(k, None)), Outcome::Done),
                ev(0, 2, 5, Op::Update(k, update(1, b"b")), Outcome::Version(2)),
                ev(1, 3, 4, Op::Load(k), seen),
            ]);
            assert!(check(&h).is_ok());
        }
    }

    #[test]
    fn an_update_after_a_completed_delete_must_not_find_the_record() {
        let k = fresh_key();
        let resurrected = History::new(vec![
            ev(0, 0, 1, Op::Create(record(k, None)), Outcome::Done),
            ev(1, 2, 3, Op::Delete(k), Outcome::Flag(true)),
            ev(2, 4, 5, Op::Update(k, update(1, b"b")), Outcome::Version(2)),
        ]);
        assert!(check(&resurrected).is_err());
        let overlapping = History::new(vec![
            ev(0, 0, 1, Op::Create(record(k, None)), Outcome::Done),
            ev(1, 2, 5, Op::Delete(k), Outcome::Flag(true)),
            ev(2, 3, 4, Op::Update(k, update(1, b"b")), Outcome::Version(2)),
            ev(2, 6, 7, Op::Load(k), Outcome::Loaded(None)),
        ]);
        assert!(check(&overlapping).is_ok());
    }

    #[test]
    fn a_touch_that_revives_a_deleted_session_is_not_linearizable() {
        let k = fresh_key();
        let h = History::new(vec![
            ev(0, 0, 1, Op::Create(record(k, None)), Outcome::Done),
            ev(1, 2, 5, Op::Delete(k), Outcome::Flag(true)),
            ev(2, 3, 6, Op::Touch(k, T0 + 2 * HOUR), Outcome::Flag(true)),
            ev(1, 7, 8, Op::Load(k), loaded(k, 1, b"a")),
        ]);
        assert!(check(&h).is_err());
    }

    #[test]
    fn rotate_links_two_keys_into_one_partition() {
        let (a, b) = (fresh_key(), fresh_key());
        let h = History::new(vec![
            ev(0, 0, 1, Op::Create(record(a, None)), Outcome::Done),
            ev(0, 2, 3, Op::Rotate(a, b, None), loaded_moved(b, b"a")),
            ev(1, 4, 5, Op::Load(b), loaded(b, 1, b"a")),
            ev(2, 6, 7, Op::Load(a), Outcome::Loaded(None)),
            ev(2, 8, 9, Op::WasRotated(a), Outcome::Flag(true)),
        ]);
        let report = check(&h).expect("linearizable");
        assert_eq!(report.partitions, 1);
        // A rotate that hands back other data than it moved is caught.
        let lying = History::new(vec![
            ev(0, 0, 1, Op::Create(record(a, None)), Outcome::Done),
            ev(0, 2, 3, Op::Rotate(a, b, None), loaded_moved(b, b"stale")),
        ]);
        assert!(check(&lying).is_err());
        // Without the rotate, nothing explains the load of `b`: splitting
        // the keys a rotate links would reject correct histories.
        let wrong = History::new(vec![ev(1, 4, 5, Op::Load(b), loaded(b, 1, b"a"))]);
        assert!(check(&wrong).is_err());
    }

    #[test]
    fn owner_operations_join_the_keys_of_their_owner() {
        let (a, b, c) = (fresh_key(), fresh_key(), fresh_key());
        let h = History::new(vec![
            ev(0, 0, 1, Op::Create(record(a, Some("liz"))), Outcome::Done),
            ev(1, 0, 1, Op::Create(record(b, Some("liz"))), Outcome::Done),
            ev(2, 0, 1, Op::Create(record(c, Some("max"))), Outcome::Done),
            ev(0, 2, 5, Op::DeleteByOwner("liz".into()), Outcome::Count(2)),
            ev(1, 3, 4, Op::Load(b), Outcome::Loaded(None)),
            ev(2, 6, 7, Op::Load(a), Outcome::Loaded(None)),
            ev(2, 8, 9, Op::ListByOwner("max".into()), {
                Outcome::Listed(vec![session_core::OwnedSession {
                    key: c,
                    created_at: T0,
                    expires_at: T0 + HOUR,
                }])
            }),
        ]);
        let report = check(&h).expect("linearizable");
        assert_eq!(report.partitions, 2);
        assert!(check_unpartitioned(&h).is_ok());
        // A count that no instant explains.
        let mut bad = h.events().to_vec();
        bad[3].outcome = Outcome::Count(1);
        assert!(check(&History::new(bad)).is_err());
    }

    #[test]
    fn sweeps_are_bounded_exactly_in_one_partition_and_loosely_across_several() {
        let (a, b) = (fresh_key(), fresh_key());
        let later = T0 + 2 * HOUR;
        let sweep = |n| Event {
            task: 3,
            call: Call {
                op: Op::DeleteExpired(10),
                now: later,
            },
            outcome: Outcome::Count(n),
            invoked: 4,
            returned: 5,
        };
        let one_key = |n| History::new(vec![ev(0, 0, 1, Op::Create(record(a, None)), Outcome::Done), sweep(n)]);
        assert!(check(&one_key(1)).is_ok());
        assert!(check(&one_key(2)).is_err(), "one expired record cannot give 2");
        let two_keys = |n| {
            History::new(vec![
                ev(0, 0, 1, Op::Create(record(a, None)), Outcome::Done),
                ev(1, 0, 1, Op::Create(record(b, None)), Outcome::Done),
                sweep(n),
            ])
        };
        assert_eq!(check(&two_keys(2)).expect("linearizable").sweeps_checked_alone, 1);
        assert!(check(&two_keys(3)).is_err());
        assert!(check_unpartitioned(&two_keys(2)).is_ok());
    }

    #[test]
    fn an_unexpected_error_fails_the_check() {
        let k = fresh_key();
        let h = History::new(vec![ev(
            0,
            0,
            1,
            Op::Load(k),
            Outcome::Failed(ErrorKind::Unexpected("connection reset".into())),
        )]);
        let err = check(&h).expect_err("backend errors are not allowed");
        assert!(err.to_string().contains("connection reset"));
    }

    #[test]
    fn the_failure_window_names_the_operations_around_the_stuck_point() {
        let k = fresh_key();
        let mut events = vec![ev(0, 0, 1, Op::Create(record(k, None)), Outcome::Done)];
        // A long correct prefix, then a lost update.
        for v in 1..50u64 {
            let t = 2 * v;
            events.push(ev(0, t, t + 1, Op::Update(k, update(v, b"x")), Outcome::Version(v + 1)));
        }
        events.push(ev(1, 200, 203, Op::Load(k), loaded(k, 3, b"x")));
        events.push(ev(2, 201, 202, Op::Touch(k, T0), Outcome::Flag(false)));
        let err = check(&History::new(events)).expect_err("a stale load");
        assert_eq!(err.window.len(), 2, "{err}");
        assert_eq!(err.linearized_tail.len(), TAIL, "{err}");
        assert!(err.to_string().contains("[   200..   203]"), "{err}");
    }
}
