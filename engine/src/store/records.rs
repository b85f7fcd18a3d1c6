//! The values that cross the store's API: rows to write, rows read back, cursors, runs and KRI results.
//!
//! These are plain data. They do not know SQL (that is in `write`, `read` and `runs`) and they do not
//! know specs: turning an API record into a [`Row`] through a spec's `emit:` is the runner's job. All
//! times are milliseconds since the Unix epoch, UTC, as the rest of the engine counts them.

use crate::model::{DistributionKind, Shape};
use serde::Serialize;
use serde_json::{Map, Value};

/// Attributes of a row, by attribute name.
pub type Attributes = Map<String, Value>;

/// One row of one of the five emitted shapes, with its key fields. What is not a key field or a time is
/// an attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Row {
    Entity {
        entity_type: String,
        id: String,
        attributes: Attributes,
    },
    Event {
        name: String,
        key: String,
        start: i64,
        end: Option<i64>,
        attributes: Attributes,
    },
    Metric {
        name: String,
        ts: i64,
        value: f64,
        attributes: Attributes,
    },
    Edge {
        from_type: String,
        from_id: String,
        kind: String,
        to_type: String,
        to_id: String,
        attributes: Attributes,
    },
    Distribution {
        name: String,
        ts: i64,
        kind: DistributionKind,
        /// The buckets or quantiles, as the spec mapped them; stored as JSON and not interpreted.
        points: Value,
        count: i64,
        sum: f64,
        attributes: Attributes,
    },
}

impl Row {
    pub fn shape(&self) -> Shape {
        match self {
            Row::Entity { .. } => Shape::Entity,
            Row::Event { .. } => Shape::Event,
            Row::Metric { .. } => Shape::Metric,
            Row::Edge { .. } => Shape::Edge,
            Row::Distribution { .. } => Shape::Distribution,
        }
    }

    pub fn attributes(&self) -> &Attributes {
        match self {
            Row::Entity { attributes, .. }
            | Row::Event { attributes, .. }
            | Row::Metric { attributes, .. }
            | Row::Edge { attributes, .. }
            | Row::Distribution { attributes, .. } => attributes,
        }
    }

    /// For the mapper, which fills them in, and the writer, which frees them once they are stored text.
    pub(crate) fn attributes_mut(&mut self) -> &mut Attributes {
        match self {
            Row::Entity { attributes, .. }
            | Row::Event { attributes, .. }
            | Row::Metric { attributes, .. }
            | Row::Edge { attributes, .. }
            | Row::Distribution { attributes, .. } => attributes,
        }
    }

    /// The row's key fields, for error messages: never its attributes, which may hold anything.
    pub(crate) fn describe(&self) -> String {
        match self {
            Row::Entity { entity_type, id, .. } => format!("entity `{entity_type}` id `{id}`"),
            Row::Event { name, key, .. } => format!("event `{name}` key `{key}`"),
            Row::Metric { name, ts, .. } => format!("metric `{name}` at {ts}"),
            Row::Edge { from_type, from_id, kind, to_type, to_id, .. } => {
                format!("edge `{kind}` from {from_type} `{from_id}` to {to_type} `{to_id}`")
            }
            Row::Distribution { name, ts, .. } => format!("distribution `{name}` at {ts}"),
        }
    }
}

/// Where a resource's sync stands: the incremental cursor to start the next run from, and, while a
/// paged enumeration is under way, the position to resume it from if the process dies.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SyncState {
    /// The cursor as the API spells it (an opaque token, or a timestamp in the spec's format).
    pub cursor: Option<String>,
    /// The cursor as a time, when it is one, so lookback and max-age can be applied without parsing.
    pub cursor_ms: Option<i64>,
    /// Where an unfinished enumeration stopped (next URL, page token, offset...), in whatever form the
    /// runner needs; `None` once the resource has been read to the end.
    pub resume: Option<Value>,
}

/// A [`SyncState`] as stored, with which run wrote it and when: a resume position from a paging
/// token may have expired by the time a later run reads it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SavedSyncState {
    #[serde(flatten)]
    pub state: SyncState,
    pub run_id: String,
    pub updated_at: i64,
}

/// One page of one resource: its rows and the cursor that follows them, committed together.
#[derive(Clone, Debug)]
pub struct PageWrite {
    pub instance: String,
    pub run_id: String,
    pub resource: String,
    /// The run's clock: the `updated_at` of entities and edges that are new or changed, and of the cursor.
    pub now: i64,
    pub rows: Vec<Row>,
    /// The state to save with these rows; `None` leaves the saved state as it is.
    pub state: Option<SyncState>,
}

/// What a page changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PageOutcome {
    /// Rows inserted, or whose attributes, times or values differ from the stored ones.
    pub written: u64,
    /// Rows identical to the stored ones: left as they were (entities and edges only marked seen).
    pub unchanged: u64,
}

/// What [`Store::finish_full_sync`](super::Store::finish_full_sync) deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub entities: u64,
    pub edges: u64,
}

impl Swept {
    pub fn total(self) -> u64 {
        self.entities + self.edges
    }
}

/// The key fields and times of a stored row, borrowed from SQLite's buffers while a read is under way.
#[derive(Clone, Debug, PartialEq)]
pub enum Fields<'a> {
    Entity { entity_type: &'a str, id: &'a str, updated_at: i64 },
    Event { name: &'a str, key: &'a str, start: i64, end: Option<i64> },
    Metric { name: &'a str, ts: i64, value: f64 },
    Edge { from_type: &'a str, from_id: &'a str, kind: &'a str, to_type: &'a str, to_id: &'a str, updated_at: i64 },
    Distribution { name: &'a str, ts: i64, kind: DistributionKind, count: i64, sum: f64, points: Value },
}

/// One stored row as a streaming read yields it.
#[derive(Clone, Debug, PartialEq)]
pub struct RowRef<'a> {
    pub fields: Fields<'a>,
    /// Every attribute, when the scan decoded them all; empty after a narrowed scan (see `picked`).
    pub attributes: Attributes,
    /// After a scan narrowed to some attributes ([`Scan::only`](super::Scan)): those of them the row
    /// has, by name. [`RowRef::attribute`] reads either.
    pub picked: Vec<(&'a str, Value)>,
    /// The attributes as stored: a JSON object with its keys sorted at every level.
    pub attributes_text: &'a str,
    /// The resource that last wrote the row.
    pub resource: &'a str,
}

impl RowRef<'_> {
    pub fn shape(&self) -> Shape {
        match self.fields {
            Fields::Entity { .. } => Shape::Entity,
            Fields::Event { .. } => Shape::Event,
            Fields::Metric { .. } => Shape::Metric,
            Fields::Edge { .. } => Shape::Edge,
            Fields::Distribution { .. } => Shape::Distribution,
        }
    }

    /// An attribute by name, whether the scan decoded all of them or picked some.
    pub fn attribute(&self, name: &str) -> Option<&Value> {
        match self.picked.iter().find(|(picked, _)| *picked == name) {
            Some((_, value)) => Some(value),
            None => self.attributes.get(name),
        }
    }

    /// A row field by the name expressions use ([`Shape::row_fields`], plus `kind` and `points` of a
    /// distribution); `None` for a name the shape does not have. A missing event end is JSON null.
    pub fn field(&self, name: &str) -> Option<Value> {
        let text = |s: &str| Some(Value::from(s));
        match (&self.fields, name) {
            (Fields::Entity { entity_type, .. }, "type") => text(entity_type),
            (Fields::Entity { id, .. }, "id") => text(id),
            (Fields::Entity { updated_at, .. } | Fields::Edge { updated_at, .. }, "updated_at") => {
                Some((*updated_at).into())
            }
            (Fields::Event { name, .. } | Fields::Metric { name, .. } | Fields::Distribution { name, .. }, "name") => {
                text(name)
            }
            (Fields::Event { key, .. }, "key") => text(key),
            (Fields::Event { start, .. }, "start") => Some((*start).into()),
            (Fields::Event { end, .. }, "end") => Some(end.map_or(Value::Null, Value::from)),
            (Fields::Metric { ts, .. } | Fields::Distribution { ts, .. }, "ts") => Some((*ts).into()),
            (Fields::Metric { value, .. }, "value") => Some((*value).into()),
            (Fields::Edge { from_type, .. }, "from_type") => text(from_type),
            (Fields::Edge { from_id, .. }, "from_id") => text(from_id),
            (Fields::Edge { kind, .. }, "kind") => text(kind),
            (Fields::Edge { to_type, .. }, "to_type") => text(to_type),
            (Fields::Edge { to_id, .. }, "to_id") => text(to_id),
            (Fields::Distribution { count, .. }, "count") => Some((*count).into()),
            (Fields::Distribution { sum, .. }, "sum") => Some((*sum).into()),
            (Fields::Distribution { kind, .. }, "kind") => text(distribution_kind(*kind)),
            (Fields::Distribution { points, .. }, "points") => Some(points.clone()),
            _ => None,
        }
    }

    /// The value of the shape's [`time_field`](Shape::time_field), which windows and `latest` use.
    pub fn time(&self) -> i64 {
        match self.fields {
            Fields::Entity { updated_at, .. } | Fields::Edge { updated_at, .. } => updated_at,
            Fields::Event { start, .. } => start,
            Fields::Metric { ts, .. } | Fields::Distribution { ts, .. } => ts,
        }
    }
}

pub(crate) fn distribution_kind(kind: DistributionKind) -> &'static str {
    match kind {
        DistributionKind::Histogram => "histogram",
        DistributionKind::Summary => "summary",
    }
}

/// Declares a closed set of words stored in a TEXT column guarded by a CHECK constraint, so the Rust
/// names and the stored words cannot drift apart.
macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($word => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words! {
    /// How a run ended; `Running` until `finish_run`, `Interrupted` when the process died first.
    RunStatus { Running = "running", Ok = "ok", Degraded = "degraded", Failed = "failed", Interrupted = "interrupted" }
}

words! {
    /// How one resource of a run went.
    ResourceStatus { Ok = "ok", Degraded = "degraded", NotApplicable = "not_applicable", Failed = "failed", Skipped = "skipped" }
}

words! {
    /// Whether a KRI could be computed.
    KriStatus { Ok = "ok", Degraded = "degraded", NotApplicable = "not_applicable", Error = "error" }
}

words! {
    /// The band a KRI value falls in, when the indicator has bands.
    Band { Green = "green", Amber = "amber", Red = "red" }
}

/// What one resource did in a run, as the run report shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResourceReport {
    pub resource: String,
    pub pages: u64,
    /// Records the API returned.
    pub records: u64,
    /// Rows inserted or changed.
    pub written: u64,
    /// Records dropped (a `when:` that was false, a missing key field...).
    pub skipped: u64,
    pub status: ResourceStatus,
    pub warnings: Vec<String>,
}

/// One run as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub spec_id: String,
    pub instance: String,
    pub started_at: i64,
    /// `None` while running, and for a run found interrupted (nobody saw it end).
    pub ended_at: Option<i64>,
    pub status: RunStatus,
    pub report: Option<Value>,
    /// In the order recorded.
    pub resources: Vec<ResourceReport>,
}

/// One evaluation of one KRI.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KriRecord {
    pub slug: String,
    /// When it was evaluated; one record per (slug, ts), so re-evaluating at the same instant replaces.
    pub ts: i64,
    /// `None` when the KRI could not be computed (see `status` and `reason`).
    pub value: Option<f64>,
    pub status: KriStatus,
    pub band: Option<Band>,
    pub reason: Option<String>,
    /// Ids of rows that make up the value, at most the indicator's evidence limit.
    pub evidence: Vec<String>,
    /// How many rows there were in all, which may be more than `evidence` lists.
    pub evidence_count: u64,
    pub run_id: Option<String>,
}
