//! Reading stored rows back for KRI evaluation and export: streaming scans of one shape type, and
//! single-entity lookups by primary key.
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

/// The SELECT of a shape, by name within an instance, optionally from a time on (the shape's time field).
/// Orders follow the indexes, so no scan sorts.
fn select_sql(shape: Shape, since: bool) -> &'static str {
    macro_rules! sql {
        ($columns:literal, $from:literal, $time:literal, $order:literal) => {
            if since {
                concat!("SELECT ", $columns, " FROM ", $from, " AND ", $time, " >= ?3", $order)
            } else {
                concat!("SELECT ", $columns, " FROM ", $from, $order)
            }
        };
    }
    match shape {
        Shape::Entity => sql!(
            "type, id, updated_at, attributes, resource",
            "entities WHERE instance = ?1 AND type = ?2",
            "updated_at",
            " ORDER BY id"
        ),
        Shape::Event => sql!(
            "name, key, start_ts, end_ts, attributes, resource",
            "events WHERE instance = ?1 AND name = ?2",
            "start_ts",
            " ORDER BY start_ts"
        ),
        Shape::Metric => sql!(
            "name, ts, value, attributes, resource",
            "metrics WHERE instance = ?1 AND name = ?2",
            "ts",
            " ORDER BY ts, attributes_key"
        ),
        Shape::Edge => sql!(
            "from_type, from_id, kind, to_type, to_id, updated_at, attributes, resource",
            "edges WHERE instance = ?1 AND kind = ?2",
            "updated_at",
            ""
        ),
        Shape::Distribution => sql!(
            "name, ts, kind, count, sum, points, attributes, resource",
            "distributions WHERE instance = ?1 AND name = ?2",
            "ts",
            " ORDER BY ts, attributes_key"
        ),
    }
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
        self.scan(instance, shape, name, &Scan { since: Some(since), only: None }, f)
    }

    /// [`for_each_row`](Self::for_each_row) as `scan` narrows it: from a time on, and with only some
    /// attributes decoded (the others are skipped while parsing, which is most of a scan's cost).
    pub fn scan<E, F>(&self, instance: &str, shape: Shape, name: &str, scan: &Scan<'_>, mut f: F) -> Result<u64, E>
    where
        F: FnMut(RowRef<'_>) -> Result<(), E>,
        E: From<StoreError>,
    {
        let path = self.path.as_path();
        let op = || format!("reading {} `{name}` of instance `{instance}`", shape.as_str());
        let fail = |e| sql_error(path, op(), e);
        let mut statement = self.conn.prepare_cached(select_sql(shape, scan.since.is_some())).map_err(fail)?;
        let with_since: [&dyn ToSql; 3] = [&instance, &name, &scan.since];
        let params = if scan.since.is_some() { &with_since[..] } else { &with_since[..2] };
        let mut rows = statement.query(params).map_err(fail)?;
        let mut count = 0;
        while let Some(row) = rows.next().map_err(fail)? {
            let row = decode(path, shape, row, scan.only).map_err(|e| match e {
                Decode::Sql(e) => fail(e),
                Decode::Store(e) => e,
            })?;
            f(row)?;
            count += 1;
        }
        Ok(count)
    }

    /// The attributes of one entity, by primary key; `None` when it is not stored.
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

/// How a [`Store::scan`] narrows the rows it yields.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scan<'a> {
    /// Only rows whose time field is at or after this (ms).
    pub since: Option<i64>,
    /// Only these attributes are decoded; the rows' other attributes read as absent. `None`: all.
    pub only: Option<&'a [String]>,
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

fn decode<'r>(path: &Path, shape: Shape, row: &'r SqlRow<'_>, only: Option<&[String]>) -> Result<RowRef<'r>, Decode> {
    let text = |i: usize| -> Result<&'r str, Decode> { Ok(row.get_ref(i)?.as_str().map_err(rusqlite::Error::from)?) };
    let attributes = |i: usize, table: &str| -> Result<Attributes, Decode> {
        match only {
            None => parse_attributes(path, table, text(i)?),
            Some(names) => parse_some_attributes(path, table, text(i)?, names),
        }
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
    Ok(RowRef { fields, attributes, resource })
}

fn parse_attributes(path: &Path, table: &str, text: &str) -> Result<Attributes> {
    serde_json::from_str(text).map_err(|e| corrupt(path, format!("{table}.attributes"), e))
}

/// The attributes named in `names` only; the others are skipped without being built.
fn parse_some_attributes(path: &Path, table: &str, text: &str, names: &[String]) -> Result<Attributes> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let attributes = Only(names).deserialize(&mut deserializer).and_then(|a| deserializer.end().map(|_| a));
    attributes.map_err(|e| corrupt(path, format!("{table}.attributes"), e))
}

/// Deserializes a JSON object into the members whose names it lists.
struct Only<'n>(&'n [String]);

impl<'de> serde::de::DeserializeSeed<'de> for Only<'_> {
    type Value = Attributes;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<Attributes, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Only<'_> {
    type Value = Attributes;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of attributes")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Attributes, A::Error> {
        let mut kept = Attributes::new();
        while let Some(Name(name)) = map.next_key()? {
            if self.0.iter().any(|wanted| *wanted == name) {
                kept.insert(name.into_owned(), map.next_value()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
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
