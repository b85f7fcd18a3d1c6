//! Reading stored rows back for KRI evaluation and export: streaming scans of one shape type, and
//! single-entity lookups by key.
//!
//! A scan hands each row to a callback while SQLite steps through the table, with key fields borrowed
//! from SQLite's buffers and only the attributes parsed, so memory stays flat however large the table.
//! Nothing here aggregates, filters by expression or pages: the caller does that on the stream.

use super::records::{Attributes, Fields, RowRef};
use super::{Result, Store, StoreError, corrupt, sql_error};
use crate::model::{DistributionKind, Shape};
use rusqlite::types::ToSql;
use rusqlite::{OptionalExtension, Row as SqlRow};
use std::path::Path;

/// The SELECT of a shape, by name within an instance, optionally from a time on (the shape's time field)
/// and within a slice. Orders follow the indexes, so no scan sorts. Parameters: ?1 instance, ?2 name,
/// ?3 since, ?4 and ?5 the slice's bounds.
fn select_sql(shape: Shape, since: bool, slice: &Slice) -> String {
    let (columns, from, time, order) = match shape {
        Shape::Entity => (
            "type, id, updated_at, attributes, resource",
            "entities WHERE instance = ?1 AND type = ?2",
            "updated_at",
            " ORDER BY id",
        ),
        Shape::Event => (
            "name, key, start_ts, end_ts, attributes, resource",
            "events WHERE instance = ?1 AND name = ?2",
            "start_ts",
            " ORDER BY start_ts",
        ),
        Shape::Metric => (
            "name, ts, value, attributes, resource",
            "metrics WHERE instance = ?1 AND name = ?2",
            "ts",
            " ORDER BY ts, attributes_key",
        ),
        Shape::Edge => (
            "from_type, from_id, kind, to_type, to_id, updated_at, attributes, resource",
            "edges WHERE instance = ?1 AND kind = ?2",
            "updated_at",
            "",
        ),
        Shape::Distribution => (
            "name, ts, kind, count, sum, points, attributes, resource",
            "distributions WHERE instance = ?1 AND name = ?2",
            "ts",
            " ORDER BY ts, attributes_key",
        ),
    };
    let mut sql = format!("SELECT {columns} FROM {from}");
    if since {
        sql.push_str(&format!(" AND {time} >= ?3"));
    }
    match slice {
        Slice::All => {}
        Slice::Ids { after, through } => {
            if after.is_some() {
                sql.push_str(" AND id > ?4");
            }
            if through.is_some() {
                sql.push_str(" AND id <= ?5");
            }
        }
        Slice::Times { from, before } => {
            if from.is_some() {
                sql.push_str(" AND start_ts >= ?4");
            }
            if before.is_some() {
                sql.push_str(" AND start_ts < ?5");
            }
        }
    }
    sql.push_str(order);
    sql
}

/// A part of one type's rows in scan order, so that a scan can be split over threads: entities by a
/// range of ids, events by a range of start times. Other shapes are not split.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Slice {
    #[default]
    All,
    /// Ids in `(after, through]`; an open end is unbounded.
    Ids { after: Option<String>, through: Option<String> },
    /// Start times in `[from, before)`; an open end is unbounded.
    Times { from: Option<i64>, before: Option<i64> },
}

impl Store {
    /// Calls `f` with every stored row of `shape` named `name` (the entity type, event, metric or
    /// distribution name, or edge kind) for `instance`, and returns how many there were. Entities come
    /// by id, events by start, metrics and distributions by time. An error from `f` stops the scan
    /// and is returned as is.
    pub fn for_each_row<E, F>(&self, instance: &str, shape: Shape, name: &str, f: F) -> Result<u64, E>
    where
        F: FnMut(RowRef<'_>) -> Result<(), E>,
        E: From<StoreError>,
    {
        self.scan(instance, shape, name, &Scan::default(), f)
    }

    /// [`for_each_row`](Self::for_each_row), only the rows whose [time field](Shape::time_field) is at or
    /// after `since` (ms): what a KRI window reads. Events, metrics and distributions use an index for it.
    pub fn for_each_row_since<E, F>(&self, instance: &str, shape: Shape, name: &str, since: i64, f: F) -> Result<u64, E>
    where
        F: FnMut(RowRef<'_>) -> Result<(), E>,
        E: From<StoreError>,
    {
        self.scan(instance, shape, name, &Scan { since: Some(since), ..Scan::default() }, f)
    }

    /// [`for_each_row`](Self::for_each_row) as `scan` narrows it: from a time on, and with only some
    /// attributes decoded (the others are skipped while parsing, which is most of a scan's cost).
    pub fn scan<E, F>(&self, instance: &str, shape: Shape, name: &str, scan: &Scan<'_>, f: F) -> Result<u64, E>
    where
        F: FnMut(RowRef<'_>) -> Result<(), E>,
        E: From<StoreError>,
    {
        let path = self.path.as_path();
        let op = || format!("reading {} `{name}` of instance `{instance}`", shape.as_str());
        let fail = |e| sql_error(path, op(), e);
        let mut statement =
            self.conn.prepare_cached(&select_sql(shape, scan.since.is_some(), scan.slice)).map_err(fail)?;
        let (lower, upper): (&dyn ToSql, &dyn ToSql) = match scan.slice {
            Slice::All => (&rusqlite::types::Null, &rusqlite::types::Null),
            Slice::Ids { after, through } => (after, through),
            Slice::Times { from, before } => (from, before),
        };
        let params: [&dyn ToSql; 5] = [&instance, &name, &scan.since, lower, upper];
        let count = statement.parameter_count();
        let rows = statement.query(&params[..count]).map_err(fail)?;
        stream(path, shape, scan, rows, fail, f)
    }

    /// The slice of about `rows` rows that follows `previous` in the scan order of `shape` (the first
    /// slice when `previous` is `None`), or `None` when `previous` reached the end. Only the
    /// boundary is looked up, through the index the scan itself uses, so cutting a table into slices
    /// costs one pass over its index at most. Entities and events are cut; other shapes come whole.
    pub fn next_slice(
        &self,
        instance: &str,
        shape: Shape,
        name: &str,
        since: Option<i64>,
        previous: Option<&Slice>,
        rows: u64,
    ) -> Result<Option<Slice>> {
        let path = self.path.as_path();
        let fail = |e| sql_error(path, format!("cutting {} `{name}` of instance `{instance}`", shape.as_str()), e);
        let offset = i64::try_from(rows.max(1)).unwrap_or(i64::MAX);
        match (shape, previous) {
            (Shape::Entity, None | Some(Slice::Ids { through: Some(_), .. })) => {
                let after = match previous {
                    Some(Slice::Ids { through, .. }) => through.clone(),
                    _ => None,
                };
                // The last id of the slice: `rows - 1` ids past its first.
                // Separate texts with and without a lower bound: an `?3 IS NULL OR` would keep SQLite from
                // seeking in the index.
                let sql = if after.is_some() {
                    "SELECT id FROM entities WHERE instance = ?1 AND type = ?2 AND id > ?3 ORDER BY id LIMIT 1 OFFSET ?4"
                } else {
                    "SELECT id FROM entities WHERE instance = ?1 AND type = ?2 AND ?3 IS NULL ORDER BY id LIMIT 1 OFFSET ?4"
                };
                let through: Option<String> = self
                    .conn
                    .prepare_cached(sql)
                    .and_then(|mut s| s.query_row((instance, name, &after, offset - 1), |r| r.get(0)).optional())
                    .map_err(fail)?;
                Ok(Some(Slice::Ids { after, through }))
            }
            (Shape::Event, None | Some(Slice::Times { before: Some(_), .. })) => {
                let from = match previous {
                    Some(Slice::Times { before, .. }) => *before,
                    _ => since,
                };
                let first_after = |sql: &str, offset: i64| -> Result<Option<i64>> {
                    self.conn
                        .prepare_cached(sql)
                        .and_then(|mut s| s.query_row((instance, name, from, offset), |r| r.get(0)).optional())
                        .map(Option::flatten)
                        .map_err(fail)
                };
                // The start of the next slice: the time `rows` events on, or, when all of those share the
                // slice's first time, the next later time, so that equal times never straddle two slices.
                let mut before = first_after(
                    if from.is_some() {
                        "SELECT start_ts FROM events WHERE instance = ?1 AND name = ?2 AND start_ts >= ?3 \
                         ORDER BY start_ts LIMIT 1 OFFSET ?4"
                    } else {
                        "SELECT start_ts FROM events WHERE instance = ?1 AND name = ?2 AND ?3 IS NULL \
                         ORDER BY start_ts LIMIT 1 OFFSET ?4"
                    },
                    offset,
                )?;
                if before.is_some() && before == from {
                    before = first_after(
                        "SELECT min(start_ts) FROM events WHERE instance = ?1 AND name = ?2 AND start_ts > ?3 \
                         AND ?4 IS NOT NULL",
                        offset,
                    )?;
                }
                Ok(Some(Slice::Times { from, before }))
            }
            (Shape::Entity | Shape::Event, Some(_)) => Ok(None),
            (_, None) => Ok(Some(Slice::All)),
            (_, Some(_)) => Ok(None),
        }
    }

    /// Calls `f` with the entities of `entity_type` whose id is `from` or after, by id, at most `limit`
    /// of them, decoding only the attributes in `only`; returns how many there were. It serves lookups
    /// that come in id order: one seek per `limit` ids instead of one per id.
    pub fn entities_from<E, F>(
        &self,
        instance: &str,
        entity_type: &str,
        from: &str,
        limit: usize,
        only: &[String],
        f: F,
    ) -> Result<u64, E>
    where
        F: FnMut(RowRef<'_>) -> Result<(), E>,
        E: From<StoreError>,
    {
        let path = self.path.as_path();
        let fail = |e| sql_error(path, format!("reading entities `{entity_type}` of instance `{instance}`"), e);
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT type, id, updated_at, attributes, resource FROM entities \
                 WHERE instance = ?1 AND type = ?2 AND id >= ?3 ORDER BY id LIMIT ?4",
            )
            .map_err(fail)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query((instance, entity_type, from, limit)).map_err(fail)?;
        stream(path, Shape::Entity, &Scan { only: Some(only), ..Scan::default() }, rows, fail, f)
    }

    /// The attributes of one entity, by key (instance, type, id); `None` when it is not stored.
    pub fn entity_attributes(&self, instance: &str, entity_type: &str, id: &str) -> Result<Option<Attributes>> {
        let path = self.path.as_path();
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT attributes FROM entities WHERE instance = ?1 AND type = ?2 AND id = ?3")
            .and_then(|mut s| s.query_row([instance, entity_type, id], |r| r.get(0)).optional())
            .map_err(|e| sql_error(path, format!("looking up entity `{entity_type}` `{id}`"), e))?;
        text.map(|t| parse_attributes(path, "entities", &t)).transpose()
    }
}

/// Decodes the rows of a query and hands each to `f`; returns how many there were.
fn stream<E, F>(
    path: &Path,
    shape: Shape,
    scan: &Scan<'_>,
    mut rows: rusqlite::Rows<'_>,
    fail: impl Fn(rusqlite::Error) -> StoreError,
    mut f: F,
) -> Result<u64, E>
where
    F: FnMut(RowRef<'_>) -> Result<(), E>,
    E: From<StoreError>,
{
    let mut count = 0;
    while let Some(row) = rows.next().map_err(&fail)? {
        let row = decode(path, shape, row, scan).map_err(|e| match e {
            Decode::Sql(e) => fail(e),
            Decode::Store(e) => e,
        })?;
        f(row)?;
        count += 1;
    }
    Ok(count)
}

/// How a [`Store::scan`] narrows the rows it yields.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scan<'a> {
    /// Only rows whose time field is at or after this (ms).
    pub since: Option<i64>,
    /// Only these attributes are decoded, into [`RowRef::picked`] (read them with
    /// [`RowRef::attribute`]); the rows' other attributes read as absent. `None`: all, into
    /// [`RowRef::attributes`].
    pub only: Option<&'a [String]>,
    /// Only the rows of this slice (see [`Store::next_slice`]).
    pub slice: &'a Slice,
    /// No attribute is decoded: the stored text ([`RowRef::attributes_text`]) is only checked to be a
    /// JSON object, which costs a fraction of decoding it. For copying rows out as they are.
    pub text_only: bool,
    /// With `text_only`, not even that check is made here: the caller makes it with
    /// [`check_attributes_text`] before using the text (an export checks on its output thread).
    pub unchecked: bool,
}

impl Default for &Slice {
    fn default() -> Self {
        &Slice::All
    }
}

enum Decode {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Decode {
    fn from(e: rusqlite::Error) -> Self {
        Decode::Sql(e)
    }
}

fn decode<'r>(path: &Path, shape: Shape, row: &'r SqlRow<'_>, scan: &Scan<'r>) -> Result<RowRef<'r>, Decode> {
    let text = |i: usize| -> Result<&'r str, Decode> { Ok(row.get_ref(i)?.as_str().map_err(rusqlite::Error::from)?) };
    let mut attributes_text = "";
    let mut picked = Vec::new();
    let mut attributes = |i: usize, table: &str| -> Result<Attributes, Decode> {
        attributes_text = text(i)?;
        match scan.only {
            _ if scan.text_only && scan.unchecked => Ok(()),
            _ if scan.text_only => check_attributes(path, table, attributes_text.as_bytes()),
            None => return parse_attributes(path, table, attributes_text).map_err(Decode::Store),
            Some(names) => pick_attributes(path, table, attributes_text, names).map(|p| picked = p),
        }
        .map(|()| Attributes::new())
        .map_err(Decode::Store)
    };
    let (fields, attributes, resource) = match shape {
        Shape::Entity => (
            Fields::Entity { entity_type: text(0)?, id: text(1)?, updated_at: row.get(2)? },
            attributes(3, "entities")?,
            text(4)?,
        ),
        Shape::Event => (
            Fields::Event { name: text(0)?, key: text(1)?, start: row.get(2)?, end: row.get(3)? },
            attributes(4, "events")?,
            text(5)?,
        ),
        Shape::Metric => (
            Fields::Metric { name: text(0)?, ts: row.get(1)?, value: row.get(2)? },
            attributes(3, "metrics")?,
            text(4)?,
        ),
        Shape::Edge => (
            Fields::Edge {
                from_type: text(0)?,
                from_id: text(1)?,
                kind: text(2)?,
                to_type: text(3)?,
                to_id: text(4)?,
                updated_at: row.get(5)?,
            },
            attributes(6, "edges")?,
            text(7)?,
        ),
        Shape::Distribution => {
            let kind = match text(2)? {
                "histogram" => DistributionKind::Histogram,
                "summary" => DistributionKind::Summary,
                other => return Err(Decode::Store(corrupt(path, "distributions.kind", format!("`{other}`")))),
            };
            let points =
                serde_json::from_str(text(5)?).map_err(|e| Decode::Store(corrupt(path, "distributions.points", e)))?;
            (
                Fields::Distribution {
                    name: text(0)?,
                    ts: row.get(1)?,
                    kind,
                    count: row.get(3)?,
                    sum: row.get(4)?,
                    points,
                },
                attributes(6, "distributions")?,
                text(7)?,
            )
        }
    };
    Ok(RowRef { fields, attributes, picked, attributes_text, resource })
}

/// That the text is a JSON object, without building it.
/// The check a [`Scan`] with `text_only` makes of a row's attributes text (a JSON object), for rows of
/// `shape` read with `unchecked` from the store at `path` (named in the error). It needs no connection,
/// so any thread can make it, and takes the text's bytes as copied (the scan checked they are UTF-8).
pub fn check_attributes_text(path: &Path, shape: Shape, text: &[u8]) -> Result<()> {
    let table = match shape {
        Shape::Entity => "entities",
        Shape::Event => "events",
        Shape::Metric => "metrics",
        Shape::Edge => "edges",
        Shape::Distribution => "distributions",
    };
    check_attributes(path, table, text)
}

fn check_attributes(path: &Path, table: &str, text: &[u8]) -> Result<()> {
    struct Object;
    impl<'de> serde::de::Visitor<'de> for Object {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of attributes")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
            while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            Ok(())
        }
    }
    use serde::Deserializer as _;
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let checked = (&mut deserializer).deserialize_map(Object).and_then(|()| deserializer.end());
    checked.map_err(|e| corrupt(path, format!("{table}.attributes"), e))
}

fn parse_attributes(path: &Path, table: &str, text: &str) -> Result<Attributes> {
    serde_json::from_str(text).map_err(|e| corrupt(path, format!("{table}.attributes"), e))
}

/// The attributes named in `names` only, each under its name in `names` (nothing is allocated for a
/// name); the others are skipped without being built.
fn pick_attributes<'n>(
    path: &Path,
    table: &str,
    text: &str,
    names: &'n [String],
) -> Result<Vec<(&'n str, serde_json::Value)>> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let attributes = Only(names).deserialize(&mut deserializer).and_then(|a| deserializer.end().map(|_| a));
    attributes.map_err(|e| corrupt(path, format!("{table}.attributes"), e))
}

/// Deserializes a JSON object into the members whose names it lists.
struct Only<'n>(&'n [String]);

impl<'de, 'n> serde::de::DeserializeSeed<'de> for Only<'n> {
    type Value = Vec<(&'n str, serde_json::Value)>;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, 'n> serde::de::Visitor<'de> for Only<'n> {
    type Value = Vec<(&'n str, serde_json::Value)>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of attributes")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut kept = Vec::with_capacity(self.0.len());
        while let Some(Name(name)) = map.next_key()? {
            match self.0.iter().find(|wanted| **wanted == name) {
                // Keys are unique in stored attributes (they are written from a map).
                Some(wanted) => kept.push((wanted.as_str(), map.next_value()?)),
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(kept)
    }
}

/// A member name, borrowed from the text when it has no escapes.
struct Name<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Name<'de>, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Name<'de>, E> {
                Ok(Name(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Name<'de>, E> {
                Ok(Name(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(Text)
    }
}
