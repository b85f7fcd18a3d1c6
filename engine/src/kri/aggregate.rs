//! Aggregates over stored rows: planning (which aggregates share a scan, which are the same), the
//! streaming pass over each shape type, and the accumulators.
//!
//! Semantics, per aggregate, over the rows of its type that pass its window and its `where`:
//! - `count`: the number of rows, an integer (0 over no rows);
//! - `count_distinct(field)`: the number of distinct non-empty values (null and missing are not
//!   values, as in SQL); `1` and `"1"` are distinct, since equality in expressions is type-strict;
//! - `sum`, `min`, `max` of a numeric field: rows where it is empty are left out; integers stay
//!   integers while every value is one (a sum that would overflow becomes a float); any other value
//!   is an error. Over no values: empty;
//! - `latest(field)`: the field of the row with the greatest time field (ties go to the greatest row
//!   id, so the answer does not depend on scan order); empty over no rows;
//! - a window keeps rows with `now - last <= t <= now`, both ends included, where `t` is the window
//!   field (the shape's time field unless the spec names another; a row whose field is not a number
//!   falls outside).

use super::KriOptions;
use super::host::{Host, RowScope, RowValues};
use crate::expr::{self, Expr, Value, format_iso_ms};
use crate::model::{Aggregate, AggregateOp, Indicator, Shape, Spec};
use crate::store::{Fields, RowRef, Scan, Slice, Store, StoreError};
use foldhash::{HashMap as FastMap, HashMapExt, HashSet as FastSet, HashSetExt};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// What one aggregate came to.
pub(super) struct AggOutput {
    pub result: Result<AggValue, String>,
}

pub(super) struct AggValue {
    pub value: Value,
    /// The smallest ids of the rows behind the value (distinct values for `count_distinct`).
    pub evidence: Vec<String>,
    /// How many rows (distinct values) there were in all.
    pub evidence_count: u64,
}

/// Every distinct aggregate of the selected indicators, grouped by the shape type it reads.
pub(super) struct Plan<'s> {
    aggregates: Vec<Planned<'s>>,
    groups: Vec<Group<'s>>,
    /// Per selected indicator, the planned aggregate behind each of its `let`s, in order.
    lets: Vec<Vec<usize>>,
}

struct Planned<'s> {
    aggregate: &'s Aggregate,
    /// The largest evidence limit of the indicators that show this aggregate as evidence; 0 when none.
    evidence_limit: usize,
    /// `(from, to)` inclusive, on the window field.
    window: Option<(i64, i64)>,
    window_on_time: bool,
}

struct Group<'s> {
    shape: Shape,
    name: &'s str,
    /// Indexes into `Plan::aggregates`.
    members: Vec<usize>,
    /// Distinct predicates of the members, evaluated at most once per row, pinned to the evaluation
    /// clock.
    predicates: Vec<Expr>,
    /// Per member, its predicate in `predicates`.
    member_predicate: Vec<Option<usize>>,
    /// Every name the members read (predicate variables, fields, window fields): the only attributes a
    /// scan decodes.
    reads: Vec<String>,
    /// When every member has a window on the time field, rows before the earliest window start are of
    /// no use, and the store can skip them.
    since: Option<i64>,
}

impl<'s> Plan<'s> {
    pub fn new(indicators: impl Iterator<Item = &'s Indicator>, now_ms: i64) -> Plan<'s> {
        let mut plan = Plan { aggregates: Vec::new(), groups: Vec::new(), lets: Vec::new() };
        let mut by_signature: HashMap<String, usize> = HashMap::new();
        for indicator in indicators {
            let mut lets = Vec::new();
            for aggregate in &indicator.lets {
                let index = *by_signature.entry(signature(aggregate)).or_insert_with(|| {
                    let window = aggregate.window.as_ref().map(|w| {
                        let last = i64::try_from(w.last.as_millis()).unwrap_or(i64::MAX);
                        (now_ms.saturating_sub(last), now_ms)
                    });
                    let window_on_time =
                        aggregate.window.as_ref().is_some_and(|w| w.field == aggregate.shape.time_field());
                    plan.aggregates.push(Planned { aggregate, evidence_limit: 0, window, window_on_time });
                    plan.aggregates.len() - 1
                });
                if indicator.evidence.as_deref() == Some(aggregate.name.as_str())
                    || indicator.fallbacks.iter().any(|f| super::names_aggregate(f.value.as_ref(), &aggregate.name))
                {
                    let planned = &mut plan.aggregates[index];
                    planned.evidence_limit = planned.evidence_limit.max(indicator.evidence_limit as usize);
                }
                lets.push(index);
            }
            plan.lets.push(lets);
        }
        for (index, planned) in plan.aggregates.iter().enumerate() {
            let aggregate = planned.aggregate;
            let group =
                match plan.groups.iter().position(|g| g.shape == aggregate.shape && g.name == aggregate.type_name) {
                    Some(g) => &mut plan.groups[g],
                    None => {
                        plan.groups.push(Group {
                            shape: aggregate.shape,
                            name: &aggregate.type_name,
                            members: Vec::new(),
                            predicates: Vec::new(),
                            member_predicate: Vec::new(),
                            reads: Vec::new(),
                            since: None,
                        });
                        plan.groups.last_mut().expect("just pushed")
                    }
                };
            let predicate = aggregate.filter.as_ref().map(|filter| {
                match group.predicates.iter().position(|p| p.source() == filter.source()) {
                    Some(p) => p,
                    None => {
                        group.predicates.push(filter.pinned(now_ms));
                        group.predicates.len() - 1
                    }
                }
            });
            group.members.push(index);
            group.member_predicate.push(predicate);
            let reads = aggregate.filter.iter().flat_map(|f| f.variables().iter().cloned());
            let reads = reads.chain(aggregate.field.iter().cloned());
            let reads = reads.chain(aggregate.window.iter().map(|w| w.field.clone()));
            for name in reads {
                if !group.reads.contains(&name) {
                    group.reads.push(name);
                }
            }
        }
        for group in &mut plan.groups {
            group.since = group
                .members
                .iter()
                .map(|&member| {
                    let planned = &plan.aggregates[member];
                    planned.window.filter(|_| planned.window_on_time).map(|(from, _)| from)
                })
                .collect::<Option<Vec<i64>>>()
                .and_then(|starts| starts.into_iter().min());
        }
        plan
    }

    /// The planned aggregates behind the `let`s of the `n`-th selected indicator.
    pub fn lets_of(&self, n: usize) -> &[usize] {
        &self.lets[n]
    }

    /// Runs every scan and returns the output of every planned aggregate.
    ///
    /// Each shape type is cut into slices of about `slice_rows` rows (entities by id, events by start
    /// time), and every worker takes the next slice of the type at hand, computing all of the type's
    /// aggregates over it; the other workers read through connections of their own to the same store
    /// file. The accumulators of a type's slices are then merged in slice order. Where the slices fall
    /// depends on the stored rows alone, so the results do not depend on the number of workers nor on
    /// which worker read which slice.
    pub fn run(
        &self,
        spec: &Spec,
        store: &Store,
        options: &KriOptions<'_>,
        workers: usize,
        slice_rows: u64,
    ) -> Result<Vec<AggOutput>, StoreError> {
        let cutters: Vec<Mutex<Cutter>> = self.groups.iter().map(|_| Mutex::default()).collect();
        let failed = AtomicBool::new(false);
        let work = |store: &Store| -> Result<Vec<Scanned>, StoreError> {
            let host = Host::new(spec, store, options);
            let mut done = Vec::new();
            for (g, group) in self.groups.iter().enumerate() {
                // Memos outlive a slice: verdicts are pure, whichever slice they were learnt in.
                let mut memos: Vec<Memo> = group.predicates.iter().map(|_| Memo::new()).collect();
                loop {
                    if failed.load(Ordering::Relaxed) {
                        return Ok(done);
                    }
                    let claimed = cutters[g].lock().unwrap_or_else(std::sync::PoisonError::into_inner).claim(
                        store,
                        options.instance,
                        group,
                        slice_rows,
                    );
                    let result = claimed.and_then(|claimed| match claimed {
                        Some((index, slice)) => {
                            let accumulators = self.scan(g, &slice, store, options.instance, &host, &mut memos)?;
                            Ok(Some((g, index, accumulators)))
                        }
                        None => Ok(None),
                    });
                    match result {
                        Ok(Some(scanned)) => done.push(scanned),
                        Ok(None) => break,
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                }
            }
            Ok(done)
        };
        let helpers = workers.saturating_sub(1);
        let path = store.path();
        // A helper must read the same file: the path could name another one by now (a relative path after
        // a change of directory), and opening a missing file would create an empty store.
        let last_run = if helpers > 0 { store.last_run(options.instance)?.map(|r| r.run_id) } else { None };
        let same_store = |own: &Store| own.last_run(options.instance).is_ok_and(|r| r.map(|r| r.run_id) == last_run);
        let results: Vec<Result<Vec<Scanned>, StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..helpers)
                .map(|_| {
                    scope.spawn(|| match path.exists().then(|| Store::open(path)) {
                        Some(Ok(own)) if same_store(&own) => {
                            // A scan reads each page once: a small cache keeps a helper's memory small
                            // (and a helper works as well without it).
                            let _ = own.set_cache_kib(HELPER_CACHE_KIB);
                            work(&own)
                        }
                        // A helper that cannot read the store leaves its share to the others.
                        _ => Ok(Vec::new()),
                    })
                })
                .collect();
            let mut results = vec![work(store)];
            results
                .extend(handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))));
            results
        });
        let mut slices = Vec::new();
        for result in results {
            slices.extend(result?);
        }
        slices.sort_by_key(|(g, index, _)| (*g, *index));
        let mut accumulators: Vec<Option<Accumulator>> = self.aggregates.iter().map(|_| None).collect();
        for (g, _, scanned) in slices {
            for (&member, accumulator) in self.groups[g].members.iter().zip(scanned) {
                accumulators[member] = Some(match accumulators[member].take() {
                    Some(earlier) => earlier.merge(accumulator),
                    None => accumulator,
                });
            }
        }
        Ok(accumulators
            .into_iter()
            .zip(&self.aggregates)
            .map(|(accumulator, planned)| accumulator.unwrap_or_else(|| Accumulator::new(planned)).finish())
            .collect())
    }

    /// One streaming pass over a slice of a shape type for all of its aggregates, in member order.
    fn scan(
        &self,
        g: usize,
        slice: &Slice,
        store: &Store,
        instance: &str,
        host: &Host<'_>,
        memos: &mut [Memo],
    ) -> Result<Vec<Accumulator>, StoreError> {
        let group = &self.groups[g];
        host.enter_scan(g);
        let mut accumulators: Vec<Accumulator> =
            group.members.iter().map(|&member| Accumulator::new(&self.aggregates[member])).collect();
        let mut verdicts: Vec<Option<Result<bool, String>>> = vec![None; group.predicates.len()];
        let mut values = RowValues::new(&group.reads);
        let mut visit = |row: RowRef<'_>| {
            verdicts.iter_mut().for_each(|v| *v = None);
            values.clear();
            for (slot, accumulator) in accumulators.iter_mut().enumerate() {
                if accumulator.error.is_some() {
                    continue;
                }
                let planned = &self.aggregates[group.members[slot]];
                if let Some((from, to)) = planned.window {
                    let t = if planned.window_on_time { Some(row.time()) } else { window_time(&row, planned) };
                    if !t.is_some_and(|t| from <= t && t <= to) {
                        continue;
                    }
                }
                if let Some(p) = group.member_predicate[slot] {
                    let verdict = verdicts[p].get_or_insert_with(|| {
                        let predicate = &group.predicates[p];
                        let scope = RowScope { row: &row, host, values: &values };
                        memos[p].verdict(predicate, &scope).map_err(|e| format!("{}: {e}", row_name(&row)))
                    });
                    match verdict {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(message) => {
                            accumulator.error = Some(message.clone());
                            continue;
                        }
                    }
                }
                accumulator.add(planned, &row);
            }
            // A store failure inside a lookup stops the scan: the results would be wrong, not merely
            // degraded.
            match host.take_failure() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        };
        let scan = Scan { since: group.since, only: Some(&group.reads), slice, ..Scan::default() };
        store.scan(instance, group.shape, group.name, &scan, &mut visit)?;
        Ok(accumulators)
    }
}

/// Page cache of a helper thread's connection, in KiB (SQLite's default is 2,000).
const HELPER_CACHE_KIB: u32 = 256;

/// The accumulators of one slice: (group, slice position, one per group member).
type Scanned = (usize, usize, Vec<Accumulator>);

/// Where the cutting of one shape type into slices stands: shared by the workers, each of which takes
/// the next slice under the lock.
#[derive(Default)]
struct Cutter {
    last: Option<Slice>,
    claimed: usize,
    finished: bool,
}

impl Cutter {
    /// The next slice and its position, or `None` when the type is used up.
    fn claim(
        &mut self,
        store: &Store,
        instance: &str,
        group: &Group<'_>,
        rows: u64,
    ) -> Result<Option<(usize, Slice)>, StoreError> {
        if self.finished {
            return Ok(None);
        }
        match store.next_slice(instance, group.shape, group.name, group.since, self.last.as_ref(), rows)? {
            Some(slice) => {
                self.last = Some(slice.clone());
                self.claimed += 1;
                Ok(Some((self.claimed - 1, slice)))
            }
            None => {
                self.finished = true;
                Ok(None)
            }
        }
    }
}

/// Remembers a predicate's verdict by the values of the variables it reads.
///
/// A predicate is a pure function of its variables: functions read only their arguments and the pinned
/// clock, and host lookups read a store that does not change during an evaluation. Most predicates read
/// a few low-cardinality attributes (`accountEnabled`, `userType`, `status`), so over a million rows
/// they see a handful of distinct inputs and one evaluation per input is enough. A predicate that reads
/// a unique field (an id, a timestamp) fills the memo quickly; it is then dropped and the predicate is
/// evaluated on every row, as without it.
struct Memo {
    verdicts: Option<FastMap<Vec<u8>, Result<bool, String>>>,
    key: Vec<u8>,
}

/// Distinct inputs remembered before a predicate counts as not worth remembering.
const MEMO_LIMIT: usize = 1024;

impl Memo {
    fn new() -> Memo {
        Memo { verdicts: Some(FastMap::new()), key: Vec::new() }
    }

    fn verdict(&mut self, predicate: &Expr, scope: &RowScope<'_>) -> Result<bool, expr::EvalError> {
        let Some(verdicts) = &mut self.verdicts else {
            return predicate.eval_bool(scope);
        };
        self.key.clear();
        for name in predicate.variables() {
            scope.encode_variable(name, &mut self.key);
        }
        if let Some(verdict) = verdicts.get(self.key.as_slice()) {
            return verdict.clone().map_err(expr::EvalError::new);
        }
        let verdict = predicate.eval_bool(scope);
        if verdicts.len() < MEMO_LIMIT {
            verdicts.insert(self.key.clone(), verdict.clone().map_err(|e| e.message));
        } else {
            self.verdicts = None;
        }
        verdict
    }
}

/// Two aggregates with the same signature always compute the same value.
fn signature(aggregate: &Aggregate) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\u{1f}{:?}",
        aggregate.op.as_str(),
        aggregate.type_key,
        aggregate.field,
        aggregate.filter.as_ref().map(Expr::source),
        aggregate.window.as_ref().map(|w| (&w.field, w.last)),
    )
}

/// A row field or attribute by name, as JSON (`None` when the row has neither). Attributes are borrowed:
/// most rows are only compared or counted.
fn field_value<'r>(row: &'r RowRef<'_>, name: &str) -> Option<Cow<'r, serde_json::Value>> {
    match row.field(name) {
        Some(value) => Some(Cow::Owned(value)),
        None => row.attribute(name).map(Cow::Borrowed),
    }
}

fn window_time(row: &RowRef<'_>, planned: &Planned<'_>) -> Option<i64> {
    let field = &planned.aggregate.window.as_ref()?.field;
    let value = field_value(row, field)?;
    value.as_i64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18).map(|f| f as i64))
}

/// The identity of a row in evidence and messages: entity id, event key, an edge's target, a metric's
/// or distribution's time.
fn row_id<'r>(row: &RowRef<'r>) -> Cow<'r, str> {
    match &row.fields {
        Fields::Entity { id, .. } => Cow::Borrowed(id),
        Fields::Event { key, .. } => Cow::Borrowed(key),
        Fields::Edge { to_id, .. } => Cow::Borrowed(to_id),
        Fields::Metric { ts, .. } | Fields::Distribution { ts, .. } => {
            Cow::Owned(format_iso_ms(*ts).unwrap_or_else(|_| ts.to_string()))
        }
    }
}

/// Where a predicate failed, for the error message: key fields only, never attribute values.
fn row_name(row: &RowRef<'_>) -> String {
    match &row.fields {
        Fields::Entity { entity_type, id, .. } => format!("{entity_type} `{id}`"),
        Fields::Event { name, key, .. } => format!("event {name} `{key}`"),
        Fields::Edge { kind, from_id, to_id, .. } => format!("edge {kind} `{from_id}` → `{to_id}`"),
        Fields::Metric { name, .. } | Fields::Distribution { name, .. } => {
            format!("{name} at {}", row_id(row))
        }
    }
}

/// A value as a distinct key: type-strict, so `1` and `"1"` differ.
#[derive(Hash, PartialEq, Eq)]
enum Key {
    Text(String),
    Int(i64),
    Float(u64),
    Bool(bool),
    /// Lists and objects, by their JSON text.
    Json(String),
}

impl Key {
    fn of(value: Cow<'_, serde_json::Value>) -> Option<Key> {
        use serde_json::Value as J;
        Some(match value.as_ref() {
            J::Null => return None,
            J::String(_) => match value.into_owned() {
                J::String(s) => Key::Text(s),
                _ => unreachable!("matched a string just above"),
            },
            J::Bool(b) => Key::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Key::Int(i),
                None => Key::Float(n.as_f64().unwrap_or(f64::NAN).to_bits()),
            },
            other => Key::Json(other.to_string()),
        })
    }

    /// The text evidence shows for this value.
    fn text(&self) -> Cow<'_, str> {
        match self {
            Key::Text(s) | Key::Json(s) => Cow::Borrowed(s),
            Key::Int(i) => Cow::Owned(i.to_string()),
            Key::Float(bits) => Cow::Owned(f64::from_bits(*bits).to_string()),
            Key::Bool(b) => Cow::Owned(b.to_string()),
        }
    }
}

/// The `limit` smallest ids seen, kept sorted; memory stays bounded by the limit.
struct Evidence {
    limit: usize,
    ids: BTreeSet<String>,
}

impl Evidence {
    /// The evidence of both: the smallest ids of the union.
    fn merge(mut self, later: Evidence) -> Evidence {
        self.ids.extend(later.ids);
        while self.ids.len() > self.limit {
            self.ids.pop_last();
        }
        self
    }

    fn offer(&mut self, id: &str) {
        if self.limit == 0 {
            return;
        }
        if self.ids.len() >= self.limit {
            // Entities arrive by id, so past the limit nearly every offer stops at this comparison.
            match self.ids.last() {
                Some(last) if id < last.as_str() => {}
                _ => return,
            }
        }
        if !self.ids.contains(id) {
            self.ids.insert(id.to_string());
            if self.ids.len() > self.limit {
                self.ids.pop_last();
            }
        }
    }
}

enum State {
    Count,
    Distinct(FastSet<Key>),
    Sum(Option<Value>),
    Extreme(Option<Value>),
    /// (time, row id, value).
    Latest(Option<(i64, String, Value)>),
}

struct Accumulator {
    op: AggregateOp,
    rows: u64,
    state: State,
    evidence: Evidence,
    error: Option<String>,
}

impl Accumulator {
    fn new(planned: &Planned<'_>) -> Accumulator {
        let op = planned.aggregate.op;
        let state = match op {
            AggregateOp::Count => State::Count,
            AggregateOp::CountDistinct => State::Distinct(FastSet::new()),
            AggregateOp::Sum => State::Sum(None),
            AggregateOp::Min | AggregateOp::Max => State::Extreme(None),
            AggregateOp::Latest => State::Latest(None),
        };
        Accumulator {
            op,
            rows: 0,
            state,
            evidence: Evidence { limit: planned.evidence_limit, ids: BTreeSet::new() },
            error: None,
        }
    }

    fn add(&mut self, planned: &Planned<'_>, row: &RowRef<'_>) {
        let field = planned.aggregate.field.as_deref();
        let value = || field.and_then(|f| field_value(row, f)).filter(|v| !v.is_null());
        match &mut self.state {
            State::Count => {
                self.rows += 1;
                self.evidence.offer(&row_id(row));
            }
            State::Distinct(seen) => {
                let Some(key) = value().and_then(Key::of) else { return };
                if !seen.contains(&key) {
                    self.evidence.offer(&key.text());
                    seen.insert(key);
                }
            }
            State::Sum(total) => {
                let Some(value) = value() else { return };
                match number(&value, field, row) {
                    Ok(x) => {
                        *total = Some(match total.take() {
                            None => x,
                            Some(sum) => add(sum, x),
                        });
                        self.rows += 1;
                        self.evidence.offer(&row_id(row));
                    }
                    Err(message) => self.error = Some(message),
                }
            }
            State::Extreme(best) => {
                let Some(value) = value() else { return };
                match number(&value, field, row) {
                    Ok(x) => {
                        let better = match best.as_ref() {
                            None => true,
                            Some(b) if self.op == AggregateOp::Min => as_f64(&x) < as_f64(b),
                            Some(b) => as_f64(&x) > as_f64(b),
                        };
                        if better {
                            *best = Some(x);
                        }
                        self.rows += 1;
                        self.evidence.offer(&row_id(row));
                    }
                    Err(message) => self.error = Some(message),
                }
            }
            State::Latest(latest) => {
                let t = row.time();
                let replaces = match latest.as_ref() {
                    None => true,
                    Some((best, id, _)) => t > *best || (t == *best && row_id(row).as_ref() > id.as_str()),
                };
                if replaces {
                    let value = value().map_or(Value::Empty, |v| expr::from_json(&v));
                    *latest = Some((t, row_id(row).into_owned(), value));
                }
                self.rows += 1;
                self.evidence.offer(&row_id(row));
            }
        }
    }

    /// This accumulator (of earlier rows in scan order) followed by `later`: what one accumulator would
    /// hold after seeing the rows of both, except that a sum is added up per slice.
    fn merge(self, later: Accumulator) -> Accumulator {
        let error = self.error.or(later.error);
        let state = match (self.state, later.state) {
            (State::Count, State::Count) => State::Count,
            (State::Distinct(mut seen), State::Distinct(more)) => {
                seen.extend(more);
                State::Distinct(seen)
            }
            (State::Sum(a), State::Sum(b)) => State::Sum(match (a, b) {
                (Some(a), Some(b)) => Some(add(a, b)),
                (a, b) => a.or(b),
            }),
            (State::Extreme(a), State::Extreme(b)) => State::Extreme(match (a, b) {
                // The earlier value stays unless the later one is strictly better, as in one pass.
                (Some(a), Some(b)) => {
                    let better =
                        if self.op == AggregateOp::Min { as_f64(&b) < as_f64(&a) } else { as_f64(&b) > as_f64(&a) };
                    Some(if better { b } else { a })
                }
                (a, b) => a.or(b),
            }),
            (State::Latest(a), State::Latest(b)) => State::Latest(match (a, b) {
                (Some(a), Some(b)) => Some(if (b.0, &b.1) > (a.0, &a.1) { b } else { a }),
                (a, b) => a.or(b),
            }),
            _ => unreachable!("slices of one aggregate accumulate the same way"),
        };
        Accumulator {
            op: self.op,
            rows: self.rows + later.rows,
            state,
            evidence: self.evidence.merge(later.evidence),
            error,
        }
    }

    fn finish(self) -> AggOutput {
        if let Some(message) = self.error {
            return AggOutput { result: Err(message) };
        }
        let (value, count) = match self.state {
            State::Count => (Value::Int(i64::try_from(self.rows).unwrap_or(i64::MAX)), self.rows),
            State::Distinct(seen) => {
                let n = seen.len() as u64;
                (Value::Int(i64::try_from(n).unwrap_or(i64::MAX)), n)
            }
            State::Sum(total) => (total.unwrap_or(Value::Empty), self.rows),
            State::Extreme(best) => (best.unwrap_or(Value::Empty), self.rows),
            State::Latest(latest) => (latest.map_or(Value::Empty, |(_, _, v)| v), self.rows),
        };
        AggOutput {
            result: Ok(AggValue { value, evidence: self.evidence.ids.into_iter().collect(), evidence_count: count }),
        }
    }
}

fn number(value: &serde_json::Value, field: Option<&str>, row: &RowRef<'_>) -> Result<Value, String> {
    match expr::from_json(value) {
        v @ (Value::Int(_) | Value::Float(_)) => Ok(v),
        other => Err(format!(
            "{}: field `{}` is {}, not a number",
            row_name(row),
            field.unwrap_or_default(),
            kind_of(&other)
        )),
    }
}

/// The type of a value without the value itself: attributes may hold anything, and messages are shown.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "text",
        Value::Int(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Tuple(_) => "a list",
        Value::Empty => "empty",
    }
}

fn as_f64(value: &Value) -> f64 {
    match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => f64::NAN,
    }
}

fn add(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.checked_add(y).map_or(Value::Float(x as f64 + y as f64), Value::Int),
        (a, b) => Value::Float(as_f64(&a) + as_f64(&b)),
    }
}
