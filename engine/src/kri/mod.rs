//! KRIs and metrics as expressions, evaluated over the store: the sixth shape.
//!
//! An indicator names aggregates (`count`, `count_distinct`, `sum`, `min`, `max`, `latest`) over the
//! stored rows of one shape type, each with an optional `where` predicate and time window, then a formula
//! over those aggregates, bands, an evidence aggregate, and fallbacks for resources the last run could
//! not read. [`evaluate`] computes the selected indicators of one instance and stores one observation of
//! each in the store's `kris` table, so the history of every indicator accumulates run after run.
//!
//! How it stays fast on large tenants:
//! - every aggregate of every selected indicator that reads the same shape type is computed in one
//!   streaming pass over that type, and identical aggregates (the same op, type, field, predicate and
//!   window, which specs repeat across indicators) are computed once;
//! - identical predicates are evaluated once per row, not at all for rows outside their window, and
//!   only once per distinct input when the variables they read take few values (`accountEnabled`,
//!   `userType`: see `Memo` in `aggregate.rs`); windows on the time field let the store skip older rows;
//! - `lookup` and `exists` never scan per call: the first calls of an entity type and attribute are
//!   primary-key queries; past 2,048 of them, calls whose ids come in order read the type ahead in id
//!   order (a merge join with one window of rows in memory), and other calls probe a hash index built by
//!   streaming the type once (`has_edge` indexes an edge kind on its first call). A join of a few
//!   hundred role members costs a few hundred queries, a join of a million users one pass.
//!   [`LookupStrategy`] can force either way, to measure them;
//! - predicates are pinned to the evaluation clock, so `now() - days(90)` is computed once, not per row,
//!   and the row values they read are converted once per row for all of them;
//! - each shape type is cut into slices of [`SLICE_ROWS`] rows (entities by id, events by start time),
//!   and with several cores the threads take slices in turn, each reading through its own connection
//!   to the store file and computing every aggregate of the type over its slice. The slices' partial
//!   results are merged in slice order; where slices fall depends only on the stored rows, so results
//!   do not depend on the number of threads.
//!
//! Decisions a reader would otherwise have to reverse-engineer:
//! - metrics are stored in the `kris` table beside the KRIs, not as rows of the `metrics` table: an
//!   indicator's observation has a status, band, reason and evidence that metric rows cannot carry,
//!   metric rows can only be written inside a running sync (`engine kri` recomputes without one), and a
//!   computed metric stored as a metric row would feed back into aggregates over emitted metrics;
//! - resource outcomes come from the last run of the instance, so `engine kri` reproduces what
//!   `engine run` computed. A resource the run never reached counts as failed when the run failed (the
//!   credentials were refused) and as skipped when it was stopped;
//! - the first fallback whose resource had one of its outcomes wins. Without a `value`, a degraded
//!   fallback keeps the normal formula, while a not-applicable or error fallback has no value: the
//!   indicator cannot be computed, which is the point of saying so;
//! - a resource the indicator reads that was not read (not applicable, failed or skipped) and that no
//!   fallback covers makes the indicator degraded, with a reason naming it: the value then comes from
//!   rows stored by earlier runs, which is worth knowing;
//! - an evaluation error (a predicate that does not give true or false, a sum over text) makes that
//!   indicator `error` with the message as reason; other indicators are unaffected;
//! - evidence lists the smallest ids (in text order) of the rows behind the evidence aggregate, so it is
//!   the same whatever order the store yields rows in; `evidence_count` is the full number. When a
//!   fallback's value is one of the aggregates, that aggregate is the evidence: it follows the value.
//!
//! This module does not print, fetch or decide exit codes; it reads rows and writes KRI records.

mod aggregate;
mod host;

#[cfg(test)]
mod tests;

use crate::config::RunConfig;
use crate::expr::{self, Scope, Value};
use crate::model::{Bands, FallbackStatus, Indicator, ResourceOutcome, Spec, Unit};
use crate::store::{
    Band, KriRecord, KriStatus, ResourceReport, ResourceStatus, RunRecord, RunStatus, Store, StoreError,
};
use aggregate::{AggOutput, Plan};
use host::Host;
use serde::Serialize;
use serde::ser::SerializeMap;
use std::collections::BTreeMap;

/// How `lookup` and `exists` reach entities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LookupStrategy {
    /// Primary-key queries for the first calls of a type and attribute, then, when the ids came in
    /// order, rows read ahead in id order (a merge join), otherwise a hash index built by streaming the
    /// type once: a join of a few hundred edges costs a few hundred queries, a join of a million users
    /// one pass.
    #[default]
    Auto,
    /// Stream the entity type into a hash index on the first call, then probe it.
    Index,
    /// One primary-key query per call.
    PrimaryKey,
}

/// What to evaluate, for whom and when.
#[derive(Clone, Copy, Debug)]
pub struct KriOptions<'a> {
    /// The connector instance whose rows are read and under which results are stored.
    pub instance: &'a str,
    /// The evaluation clock in unix milliseconds: `now()`, window ends, and the stored time.
    pub now_ms: i64,
    /// The operator's config: its KRI selection, band overrides and `config.*` values. Without one,
    /// every KRI and metric is evaluated with the spec's bands, and `config.*` reads the spec's literal
    /// defaults (empty when there is none).
    pub config: Option<&'a RunConfig>,
    pub lookups: LookupStrategy,
    /// Scans run at once, each on its own connection to the store file; 0 picks one per core, at most
    /// [`MAX_THREADS`]. Results do not depend on it.
    pub threads: usize,
    /// Rows per slice that scans are cut into for the threads to share; 0 picks the default
    /// ([`SLICE_ROWS`]). Only a float `sum` can depend on it, in its last digits.
    pub slice_rows: u64,
}

/// Most scans run at once by default: past this, parallel scans of one table mostly wait on each other.
pub const MAX_THREADS: usize = 4;

/// Rows per slice of a scan by default: cutting costs an index seek per slice, and smaller slices let
/// the threads finish a table closer together.
pub const SLICE_ROWS: u64 = 16_384;

impl<'a> KriOptions<'a> {
    pub fn new(instance: &'a str, now_ms: i64) -> Self {
        KriOptions { instance, now_ms, config: None, lookups: LookupStrategy::Auto, threads: 0, slice_rows: 0 }
    }

    pub fn with_config(mut self, config: &'a RunConfig) -> Self {
        self.config = Some(config);
        self
    }
}

/// What the last run of an instance said about each resource: the input of fallbacks.
#[derive(Clone, Debug, PartialEq)]
pub struct LastRun {
    pub run_id: String,
    pub status: RunStatus,
    /// Each resource the run recorded, with how it went.
    pub resources: Vec<(String, ResourceStatus)>,
}

impl LastRun {
    pub fn from_record(record: &RunRecord) -> LastRun {
        LastRun::from_reports(&record.run_id, record.status, &record.resources)
    }

    pub fn from_reports(run_id: &str, status: RunStatus, reports: &[ResourceReport]) -> LastRun {
        LastRun {
            run_id: run_id.to_string(),
            status,
            resources: reports.iter().map(|r| (r.resource.clone(), r.status)).collect(),
        }
    }

    /// The outcome a fallback's `on` is matched against; `None` when the resource was read normally (or
    /// not selected in a run that completed, so its stored rows are simply the latest known).
    pub fn outcome(&self, resource: &str) -> Option<ResourceOutcome> {
        match self.resources.iter().find(|(name, _)| name == resource).map(|(_, status)| *status) {
            Some(ResourceStatus::Ok) => None,
            Some(ResourceStatus::Degraded) => Some(ResourceOutcome::Degraded),
            Some(ResourceStatus::NotApplicable) => Some(ResourceOutcome::NotApplicable),
            Some(ResourceStatus::Failed) => Some(ResourceOutcome::Failed),
            Some(ResourceStatus::Skipped) => Some(ResourceOutcome::Skipped),
            // The run stops reading after refused credentials, and a stopped run leaves the rest unread.
            None => match self.status {
                RunStatus::Failed => Some(ResourceOutcome::Failed),
                RunStatus::Interrupted | RunStatus::Running => Some(ResourceOutcome::Skipped),
                RunStatus::Ok | RunStatus::Degraded => None,
            },
        }
    }
}

/// Whether an indicator comes from the spec's `kris:` or `metrics:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    Kri,
    Metric,
}

/// A computed value: counts stay integers, so `3` is not shown as `3.0`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum KriValue {
    Int(i64),
    Float(f64),
}

impl KriValue {
    pub fn as_f64(self) -> f64 {
        match self {
            KriValue::Int(i) => i as f64,
            KriValue::Float(f) => f,
        }
    }
}

impl std::fmt::Display for KriValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KriValue::Int(i) => write!(f, "{i}"),
            KriValue::Float(x) => write!(f, "{x}"),
        }
    }
}

/// One evaluation of one indicator.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KriResult {
    /// The key of the map this is serialized in.
    #[serde(skip)]
    pub slug: String,
    pub kind: IndicatorKind,
    pub title: String,
    /// `None` when the indicator could not be computed (see `status` and `reason`), or when its formula
    /// gave the empty value (a `latest` over no rows).
    pub value: Option<KriValue>,
    pub status: KriStatus,
    pub band: Option<Band>,
    pub reason: Option<String>,
    /// At most the indicator's evidence limit, smallest first.
    pub evidence: Vec<String>,
    pub evidence_count: u64,
    pub unit: Option<&'static str>,
}

impl KriResult {
    /// The record stored for this result.
    pub fn record(&self, ts: i64, run_id: Option<&str>) -> KriRecord {
        KriRecord {
            slug: self.slug.clone(),
            ts,
            value: self.value.map(KriValue::as_f64),
            status: self.status,
            band: self.band,
            reason: self.reason.clone(),
            evidence: self.evidence.clone(),
            evidence_count: self.evidence_count,
            run_id: run_id.map(str::to_string),
        }
    }
}

/// Serializes results as a map by slug, in the order given (the spec's), for reports.
pub fn serialize_by_slug<S: serde::Serializer>(results: &[KriResult], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(results.len()))?;
    for result in results {
        map.serialize_entry(&result.slug, result)?;
    }
    map.end()
}

/// Evaluates the selected indicators against the outcomes of the instance's last stored run and stores
/// the results. Returns them in spec order, KRIs then metrics.
pub fn evaluate(spec: &Spec, store: &mut Store, options: &KriOptions<'_>) -> Result<Vec<KriResult>, StoreError> {
    let last_run = store.last_run(options.instance)?.map(|r| LastRun::from_record(&r));
    evaluate_with(spec, store, options, last_run.as_ref())
}

/// [`evaluate`] with the last run given by the caller (a runner that has just finished one).
pub fn evaluate_with(
    spec: &Spec,
    store: &mut Store,
    options: &KriOptions<'_>,
    last_run: Option<&LastRun>,
) -> Result<Vec<KriResult>, StoreError> {
    let results = compute(spec, store, options, last_run)?;
    let run_id = last_run.map(|r| r.run_id.as_str());
    let records: Vec<KriRecord> = results.iter().map(|r| r.record(options.now_ms, run_id)).collect();
    store.write_kris(options.instance, &records)?;
    Ok(results)
}

/// Computes the selected indicators without storing anything.
pub fn compute(
    spec: &Spec,
    store: &Store,
    options: &KriOptions<'_>,
    last_run: Option<&LastRun>,
) -> Result<Vec<KriResult>, StoreError> {
    let selection = options.config.and_then(|c| c.kris.as_deref());
    let selected: Vec<(&Indicator, IndicatorKind)> = spec
        .kris
        .iter()
        .map(|i| (i, IndicatorKind::Kri))
        .chain(spec.metrics.iter().map(|i| (i, IndicatorKind::Metric)))
        .filter(|(i, _)| selection.is_none_or(|names| names.contains(&i.slug)))
        .collect();
    let plan = Plan::new(selected.iter().map(|(i, _)| *i), options.now_ms);
    let workers = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS),
        n => n,
    };
    let slice_rows = if options.slice_rows == 0 { SLICE_ROWS } else { options.slice_rows };
    let outputs = plan.run(spec, store, options, workers, slice_rows)?;
    let host = Host::new(spec, store, options);
    let overrides = options.config.map(|c| &c.band_overrides);
    Ok(selected
        .iter()
        .enumerate()
        .map(|(index, (indicator, kind))| {
            let lets = plan.lets_of(index).iter().map(|&a| &outputs[a]);
            let bands = overrides.and_then(|o| o.get(&indicator.slug)).or(indicator.bands.as_ref());
            finish(indicator, *kind, lets.collect(), bands, last_run, &host)
        })
        .collect())
}

/// True when `value` is nothing but the name of the aggregate `name`.
pub(super) fn names_aggregate(value: Option<&crate::expr::Expr>, name: &str) -> bool {
    value.is_some_and(|v| v.source().trim() == name)
}

/// From aggregate outputs to the indicator's value, status, band and evidence.
fn finish(
    indicator: &Indicator,
    kind: IndicatorKind,
    lets: Vec<&AggOutput>,
    bands: Option<&Bands>,
    last_run: Option<&LastRun>,
    host: &Host<'_>,
) -> KriResult {
    let mut result = KriResult {
        slug: indicator.slug.clone(),
        kind,
        title: indicator.title.clone(),
        value: None,
        status: KriStatus::Ok,
        band: None,
        reason: None,
        evidence: Vec::new(),
        evidence_count: 0,
        unit: indicator.unit.map(Unit::as_str),
    };

    let outcome = |resource: &str| last_run.and_then(|r| r.outcome(resource));
    let fallback = indicator.fallbacks.iter().find(|f| outcome(&f.resource).is_some_and(|o| f.on.contains(&o)));
    let formula = match fallback {
        Some(f) => {
            result.status = match f.status {
                FallbackStatus::Degraded => KriStatus::Degraded,
                FallbackStatus::NotApplicable => KriStatus::NotApplicable,
                FallbackStatus::Error => KriStatus::Error,
            };
            result.reason = Some(f.reason.clone());
            match (&f.value, f.status) {
                (Some(value), _) => Some(value),
                (None, FallbackStatus::Degraded) => Some(&indicator.value),
                (None, _) => None,
            }
        }
        None => {
            let unread: Vec<String> = indicator
                .reads
                .iter()
                .filter_map(|r| match outcome(r) {
                    Some(o @ (ResourceOutcome::NotApplicable | ResourceOutcome::Failed | ResourceOutcome::Skipped)) => {
                        Some(format!("`{r}` ({})", outcome_name(o)))
                    }
                    _ => None,
                })
                .collect();
            if !unread.is_empty() {
                result.status = KriStatus::Degraded;
                result.reason = Some(format!(
                    "not read in the last run: {}; the value comes from rows stored before",
                    unread.join(", ")
                ));
            }
            Some(&indicator.value)
        }
    };
    // Without a formula there is no value, and so nothing for evidence to stand behind.
    let Some(formula) = formula else { return result };
    // A fallback whose value is one of the aggregates shows that aggregate's rows: the evidence follows the
    // value (every enabled member when all count as stale, not the stale ones the store happens to hold).
    let evidence_name = fallback
        .and_then(|f| indicator.lets.iter().find(|a| names_aggregate(f.value.as_ref(), &a.name)))
        .map(|a| &a.name)
        .or(indicator.evidence.as_ref());
    let evidence = evidence_name.and_then(|name| {
        indicator.lets.iter().zip(&lets).find(|(aggregate, _)| &aggregate.name == name).map(|(_, output)| output)
    });
    if let Some(AggOutput { result: Ok(output) }) = evidence {
        result.evidence = output.evidence.iter().take(indicator.evidence_limit as usize).cloned().collect();
        result.evidence_count = output.evidence_count;
    }

    let mut scope = FormulaScope { values: BTreeMap::new(), host };
    for (aggregate, output) in indicator.lets.iter().zip(&lets) {
        match &output.result {
            Ok(output) => {
                scope.values.insert(aggregate.name.as_str(), output.value.clone());
            }
            Err(message) if formula.variables().contains(&aggregate.name) => {
                return error(result, format!("aggregate `{}`: {message}", aggregate.name));
            }
            Err(_) => {}
        }
    }
    let value = match formula.eval(&scope) {
        Ok(value) => value,
        Err(e) => return error(result, format!("formula `{formula}`: {e}")),
    };
    result.value = match value {
        Value::Int(i) => Some(KriValue::Int(i)),
        Value::Float(f) if f.is_finite() => Some(KriValue::Float(f)),
        Value::Empty => None,
        other => {
            return error(result, format!("formula `{formula}` gave {}, not a number", expr::describe(&other)));
        }
    };
    if result.value.is_none() && result.reason.is_none() {
        result.reason = Some("the formula gave no value: the aggregates it reads matched no rows".into());
    }
    result.band = match (result.value, bands) {
        (Some(value), Some(bands)) => Some(band(bands, value.as_f64())),
        _ => None,
    };
    result
}

fn error(mut result: KriResult, message: String) -> KriResult {
    result.value = None;
    result.band = None;
    result.evidence.clear();
    result.evidence_count = 0;
    result.status = KriStatus::Error;
    result.reason = Some(message);
    result
}

/// Green if green's threshold holds, else amber if amber's holds, else red.
pub fn band(bands: &Bands, value: f64) -> Band {
    if bands.green.holds(value) {
        Band::Green
    } else if bands.amber.is_some_and(|a| a.holds(value)) {
        Band::Amber
    } else {
        Band::Red
    }
}

fn outcome_name(outcome: ResourceOutcome) -> &'static str {
    match outcome {
        ResourceOutcome::NotApplicable => "not_applicable",
        ResourceOutcome::Degraded => "degraded",
        ResourceOutcome::Failed => "failed",
        ResourceOutcome::Skipped => "skipped",
    }
}

/// What a formula reads: the indicator's aggregates by name, `config.*` and the clock.
struct FormulaScope<'a> {
    values: BTreeMap<&'a str, Value>,
    host: &'a Host<'a>,
}

impl Scope for FormulaScope<'_> {
    fn variable(&self, name: &str) -> Option<Value> {
        self.values.get(name).cloned().or_else(|| self.host.config_variable(name))
    }

    fn now_ms(&self) -> i64 {
        self.host.now_ms()
    }
}
