//! Mapping: one API record becomes store rows, as a resource's `emit:` list says.
//!
//! [`map_record`] takes the compiled emits of one resource, one record and a [`MapContext`] (the run's
//! clock, the config scope and, for a fan-out child, the parent record under its alias) and returns the
//! rows, how many emits were skipped for the record and why. It does no I/O and knows no vendor; the
//! runner decides what a warning or an error means for the run.
//!
//! # Semantics
//!
//! Each emit is mapped on its own, in order; one emit skipping a record does not stop the others.
//!
//! **Attributes**, in the order written. A mapping's source gives a value:
//! - `path`: the JSONPath read on the record; a singular path gives the value, any other path a JSON
//!   list of every match (possibly empty); a path that matches nothing is missing.
//! - `template`: the text with each hole's value spliced in unencoded. Holes read `config.*`, the
//!   parent's fields (`{alias.field}`, `{alias.a.b}`) and the attributes mapped before. A hole whose value
//!   is empty makes the whole field missing.
//! - `expr`: the expression's value as JSON (the empty value `()` is missing; tuples become lists,
//!   non-finite floats null). Variables: the attributes mapped before in this emit, by name (null,
//!   omitted and missing read as `()`), the parent's fields as `alias.field` (`()` when absent),
//!   `config.*`, and `now()` is [`MapContext::now_ms`]. Equality is type-strict, so with `errorCode` missing
//!   `if(errorCode == 0, "success", "failure")` is `"failure"`; a spec that means "unknown" writes
//!   `if(typeof(errorCode) == "int", ..., ())`.
//! - `value`: the constant.
//!
//! Then each `transform`, in order. A transform of a missing or null value leaves it missing.
//! - `unix_ms` / `unix_s`: ISO-8601 text (0 to 9 fraction digits, any offset) to integer milliseconds /
//!   seconds, floored (also before 1970). A number passes through unchanged.
//! - `lowercase`, `uppercase`, `trim`: text only.
//! - `string`: text, numbers and booleans to text.
//! - `integer`: numbers (truncated) and numeric text to an integer. `number`: numbers and numeric text to a
//!   number (integer text stays an integer). `boolean`: booleans and the text `true`/`false` (any case).
//! - `length`: items of a list, characters of text. `first`: a list's first item (an empty list is
//!   missing); any other value is kept. `empty_as_missing`: `""` and `[]` become missing.
//!
//! A transform that cannot convert its value (unparsable timestamp, `trim` of a number, ...) skips the
//! emit for the record with a warning naming the attribute and the kind of value, never the value.
//!
//! Then a missing or null value takes the `default` if there is one (`default: null` counts as none, and a
//! default is not transformed), else the `missing` policy:
//! `null` (the default) stores an explicit JSON null; `omit` leaves the attribute out; `skip_record`
//! produces no row from this emit for the record and counts it in [`Mapped::skipped`], without a
//! warning; `error` fails with a [`MapError`] naming the emit, the field and what it reads.
//!
//! **`when`**, after the attributes, with every attribute of the emit visible: false means no row and is
//! not counted; a value that is not a boolean or an evaluation error skips the record with a warning.
//!
//! **Key fields** (entity `id`; event `key`, `start`, `end`; metric `ts`, `value`; edge `from`/`to` ids;
//! distribution `ts`, `points`, `count`, `sum`) are mapped like attributes, with every attribute of the
//! emit visible to their expressions and templates. `missing: error` and `missing: skip_record` act as
//! for attributes; otherwise a missing required key field skips the record with a warning ("record
//! without id"). Then:
//! - ids and keys: text as it is, integers as decimal text; anything else skips the record with a warning;
//! - times (`start`, `end`, `ts`): an integer of milliseconds (a float is floored); text skips the record
//!   (the mapping needs `transform: unix_ms`); a missing `end` is none and a missing `ts` is the run's
//!   clock, [`MapContext::now_ms`];
//! - metric `value` and distribution `sum`: a number; distribution `count`: an integer; `points`: any
//!   JSON value.
//!
//! **Errors in expressions and templates** (a type error, division by zero, a hole whose value has no text
//! such as a non-finite number) skip the emit for the record with a warning naming the emit type, the
//! field and the error message.
//!
//! Warnings are meant to be deduplicated by text by the caller: they name the emit's `<shape>.<name>`, the
//! field and the spec text the field reads, and hold no record data except what an expression error
//! message quotes (short scalars, shortened text).
//!
//! # Cost
//!
//! Records are read as [`Doc`]s, which borrow from the page's text: JSONPaths walk the record in place,
//! a singular path's value stays in the record until the row is made, and expressions look up the
//! attributes being mapped instead of a per-record copy. [`map_record`] then copies the values into the
//! row's attribute map, as [`Row`] holds them. The runner instead calls `map_record_text_into`, which
//! writes the attributes straight into the text the store keeps (names sorted once per emit, text read
//! from the record copied unless it needs escaping): on the benchmark tenant that took a sync from
//! 2.0-2.1 s to 1.5-1.75 s and its CPU time by a third, because building the maps, serializing and
//! freeing them were about a fifth of all the work. Both paths are compared by every mapping test.
//!
//! Measured on the project's 2-core machine (release build, the system allocator): a sign-in-like event
//! of 12 attributes (one an expression), a key and a `unix_ms` start costs 2.2-2.5 µs per record into
//! attribute maps and 1.2-1.3 µs into stored text (text included, which the maps still need made), over
//! 200,000 distinct records or from one page still in cache, as in a run. Reproduce with
//! `cargo test --release --lib map::tests::throughput -- --ignored --nocapture`.

mod field;
mod transform;

#[cfg(test)]
mod tests;

use crate::expr::Scope;
use crate::jsonpath::Doc;
use crate::model::{Emit, EmitFields, FieldMap, MissingPolicy};
use crate::store::Row;
use crate::store::json;
use field::{Found, RecordScope, Slot, resolve, source_text};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// What a record is mapped with besides the record itself.
pub struct MapContext<'a> {
    /// The run's clock in unix milliseconds: `now()` in expressions and the time of metrics and
    /// distributions whose `ts` is missing.
    pub now_ms: i64,
    /// Resolves `config.<name>` (never a secret: the validator keeps secrets out of `emit:`).
    pub config: &'a dyn Scope,
    /// For a fan-out child, the parent's alias (`for_each.as`) and the parent record.
    pub parent: Option<(&'a str, &'a Value)>,
}

/// The result of mapping one record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mapped {
    pub rows: Vec<Row>,
    /// Emits that produced no row for the record because of a missing value, `skip_record`, a conversion
    /// or evaluation failure. Records filtered out by `when` are not counted.
    pub skipped: u32,
    /// Why records were skipped, one message per skip (except `skip_record`, which is deliberate).
    pub warnings: Vec<String>,
}

/// A field whose mapping says `missing: error` was missing or null: the resource should fail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{emit}: `{field}` is missing or null, and its mapping says `missing: error` (it reads {reads})")]
pub struct MapError {
    /// The emit's `<shape>.<name>`, e.g. `event.acme_login`.
    pub emit: String,
    /// The attribute or key field, e.g. `createdAt` or `start`.
    pub field: String,
    /// What the mapping reads, quoted: the JSONPath (`` `$.createdAt` ``), template or expression.
    pub reads: String,
}

/// Maps one record through every emit of a resource. See the module documentation for the rules.
pub fn map_record(emits: &[Emit], record: &Value, cx: &MapContext) -> Result<Mapped, MapError> {
    let mut mapped = Mapped::default();
    map_record_into(emits, &Doc::from_value(record), cx, &mut mapped)?;
    Ok(mapped)
}

/// [`map_record`] appending to `out`, so a caller can collect a whole page into one [`Mapped`] without a
/// vector per record. On error, `out` may already hold rows of this record's earlier emits.
pub fn map_record_into(emits: &[Emit], record: &Doc, cx: &MapContext, out: &mut Mapped) -> Result<(), MapError> {
    for emit in emits {
        let mapped = map_emit(emit, record, cx);
        if let Some((mut row, slots)) = settle(mapped, &mut out.skipped, &mut out.warnings)? {
            *row.attributes_mut() = attribute_map(emit, slots);
            out.rows.push(row);
        }
    }
    Ok(())
}

/// Rows as the store writes them: each row's key fields, with its attributes as their stored text
/// (canonical JSON, as `store::json::canonical` makes it) instead of a map.
#[derive(Debug, Default)]
pub(crate) struct MappedText {
    /// Rows with empty attribute maps.
    pub rows: Vec<Row>,
    /// The attributes of `rows[i]`, as stored.
    pub texts: Vec<String>,
    pub skipped: u32,
    pub warnings: Vec<String>,
}

/// [`map_record_into`] for the runner: the attributes go straight into their stored text, without a
/// map of owned names and values per row (building, then serializing and freeing those maps was about
/// a fifth of a first sync's time), and text read from the record is copied rather than escaped again.
pub(crate) fn map_record_text_into(
    emits: &[Emit],
    record: &Doc,
    cx: &MapContext,
    out: &mut MappedText,
) -> Result<(), MapError> {
    for emit in emits {
        let mapped = map_emit(emit, record, cx);
        if let Some((row, slots)) = settle(mapped, &mut out.skipped, &mut out.warnings)? {
            out.texts.push(attribute_text(emit, &slots));
            out.rows.push(row);
        }
    }
    Ok(())
}

/// Counts a skipped emit and keeps its warning; passes a row on and an error up.
fn settle<T>(
    mapped: Result<Option<T>, Fail>,
    skipped: &mut u32,
    warnings: &mut Vec<String>,
) -> Result<Option<T>, MapError> {
    match mapped {
        Ok(row) => Ok(row),
        Err(Fail::Skip(warning)) => {
            *skipped = skipped.saturating_add(1);
            warnings.extend(warning);
            Ok(None)
        }
        Err(Fail::Error(error)) => Err(error),
    }
}

/// The attributes of a row as a map, in the emit's order.
fn attribute_map(emit: &Emit, slots: Vec<Slot>) -> Map<String, Value> {
    let mut attributes = Map::with_capacity(slots.len());
    for (attribute, slot) in emit.attributes.iter().zip(slots) {
        let value = match slot {
            Slot::Omitted => continue,
            Slot::Null => Value::Null,
            Slot::Found(found) => found.into_value().into_owned(),
        };
        attributes.insert(attribute.name.clone(), value);
    }
    attributes
}

/// The attributes of a row as the store's canonical text: names in byte order (the emit's
/// [`Emit::sorted`]), values with their object keys sorted at every level.
fn attribute_text(emit: &Emit, slots: &[Slot]) -> String {
    let mut text = String::with_capacity(32 * slots.len());
    text.push('{');
    for &index in &emit.sorted {
        let value = match &slots[index] {
            Slot::Omitted => continue,
            Slot::Null => None,
            Slot::Found(found) => Some(found),
        };
        if text.len() > 1 {
            text.push(',');
        }
        json::push_json_str(&mut text, &emit.attributes[index].name);
        text.push(':');
        match value {
            None => text.push_str("null"),
            Some(Found::Value(value)) => json::push_canonical(&mut text, value),
            Some(Found::Doc(doc)) => match doc {
                Doc::String(string) => json::push_json_str(&mut text, string),
                Doc::Null => text.push_str("null"),
                Doc::Bool(b) => text.push_str(if *b { "true" } else { "false" }),
                // Numbers (no copy of text) and nested values, whose keys are sorted on the way.
                other => json::push_canonical(&mut text, &other.to_value()),
            },
        }
    }
    text.push('}');
    text
}

/// Why an emit produced no row for a record.
enum Fail {
    /// Skip the record for this emit, with the warning to report (none for `skip_record`).
    Skip(Option<String>),
    Error(MapError),
}

fn skip(emit: &Emit, detail: impl std::fmt::Display) -> Fail {
    Fail::Skip(Some(format!("{}: record skipped: {detail}", emit.type_key)))
}

fn map_error(emit: &Emit, field: &str, map: &FieldMap) -> Fail {
    Fail::Error(MapError { emit: emit.type_key.clone(), field: field.to_string(), reads: source_text(map) })
}

/// One emit for one record: `Ok(None)` when `when` is false. The row comes with an empty attribute map;
/// the attributes are the slots, one per attribute of the emit.
fn map_emit<'v>(emit: &'v Emit, record: &'v Doc<'v>, cx: &'v MapContext) -> Result<Option<(Row, Vec<Slot<'v>>)>, Fail> {
    let mut slots: Vec<Slot<'v>> = Vec::with_capacity(emit.attributes.len());
    for (i, attribute) in emit.attributes.iter().enumerate() {
        let scope = RecordScope::new(&slots, &emit.attributes[..i], cx);
        let found = resolve(&attribute.map, record, &scope)
            .map_err(|problem| skip(emit, format_args!("attribute `{}`: {problem}", attribute.name)))?;
        let slot = match found {
            Some(found) => Slot::Found(found),
            None => match attribute.map.missing {
                MissingPolicy::Null => Slot::Null,
                MissingPolicy::Omit => Slot::Omitted,
                MissingPolicy::SkipRecord => return Err(Fail::Skip(None)),
                MissingPolicy::Error => return Err(map_error(emit, &attribute.name, &attribute.map)),
            },
        };
        slots.push(slot);
    }

    let scope = RecordScope::new(&slots, &emit.attributes, cx);
    // `when` runs before the key fields, so records it filters out never warn about a missing id.
    if let Some(when) = &emit.when {
        match when.eval_bool(&scope) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(error) => return Err(skip(emit, format_args!("`when` failed: {}", error.message))),
        }
    }
    let keys = Keys { emit, record, scope: &scope, now_ms: cx.now_ms };
    // The row's attribute map stays empty (no allocation): the caller makes a map or text of the slots.
    let row = match &emit.fields {
        EmitFields::Entity { kind, id } => {
            Row::Entity { entity_type: kind.clone(), id: keys.id(id, "id")?, attributes: Map::new() }
        }
        EmitFields::Event { name, key, start, end } => Row::Event {
            name: name.clone(),
            key: keys.id(key, "key")?,
            start: keys.required_time(start, "start")?,
            end: match end {
                Some(end) => keys.time(end, "end")?,
                None => None,
            },
            attributes: Map::new(),
        },
        EmitFields::Metric { name, ts, value } => Row::Metric {
            name: name.clone(),
            ts: keys.time_or_now(ts.as_ref())?,
            value: keys.number(value, "value")?,
            attributes: Map::new(),
        },
        EmitFields::Edge { from_type, from_id, kind, to_type, to_id } => Row::Edge {
            from_type: from_type.clone(),
            from_id: keys.id(from_id, "from id")?,
            kind: kind.clone(),
            to_type: to_type.clone(),
            to_id: keys.id(to_id, "to id")?,
            attributes: Map::new(),
        },
        EmitFields::Distribution { name, ts, kind, points, count, sum } => Row::Distribution {
            name: name.clone(),
            ts: keys.time_or_now(ts.as_ref())?,
            kind: *kind,
            points: keys.required(points, "points")?.into_owned(),
            count: keys.integer(count, "count")?,
            sum: keys.number(sum, "sum")?,
            attributes: Map::new(),
        },
    };
    Ok(Some((row, slots)))
}

/// Maps the key fields of one emit for one record, with every attribute visible.
struct Keys<'a, 's, 'c> {
    emit: &'a Emit,
    record: &'a Doc<'a>,
    scope: &'s RecordScope<'s, 'c>,
    now_ms: i64,
}

impl<'a> Keys<'a, '_, '_> {
    /// The field's value, `None` when missing and its policy lets a missing value through.
    fn value(&self, field: &'a FieldMap, role: &str) -> Result<Option<Cow<'a, Value>>, Fail> {
        match resolve(field, self.record, self.scope) {
            Ok(Some(found)) => Ok(Some(found.into_value())),
            Ok(None) => match field.missing {
                MissingPolicy::Null | MissingPolicy::Omit => Ok(None),
                MissingPolicy::SkipRecord => Err(Fail::Skip(None)),
                MissingPolicy::Error => Err(map_error(self.emit, role, field)),
            },
            Err(problem) => Err(skip(self.emit, format_args!("{role}: {problem}"))),
        }
    }

    fn required(&self, field: &'a FieldMap, role: &str) -> Result<Cow<'a, Value>, Fail> {
        self.value(field, role)?.ok_or_else(|| {
            Fail::Skip(Some(format!(
                "{}: record without {role} skipped ({} is missing or null)",
                self.emit.type_key,
                source_text(field)
            )))
        })
    }

    fn wrong_kind(&self, field: &FieldMap, role: &str, value: &Value, expected: &str) -> Fail {
        Fail::Skip(Some(format!(
            "{}: record skipped: {role} {} is {}, not {expected}",
            self.emit.type_key,
            source_text(field),
            transform::kind(value)
        )))
    }

    /// An id or key: text as it is, an integer as decimal text.
    fn id(&self, field: &'a FieldMap, role: &str) -> Result<String, Fail> {
        match self.required(field, role)? {
            Cow::Owned(Value::String(text)) => Ok(text),
            Cow::Borrowed(Value::String(text)) => Ok(text.clone()),
            value => match value.as_ref() {
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
                other => Err(self.wrong_kind(field, role, other, "text or an integer")),
            },
        }
    }

    /// A time in unix milliseconds, `None` when missing.
    fn time(&self, field: &'a FieldMap, role: &str) -> Result<Option<i64>, Fail> {
        self.value(field, role)?.map(|value| self.millis(field, role, &value)).transpose()
    }

    fn required_time(&self, field: &'a FieldMap, role: &str) -> Result<i64, Fail> {
        let value = self.required(field, role)?;
        self.millis(field, role, &value)
    }

    fn millis(&self, field: &FieldMap, role: &str, value: &Value) -> Result<i64, Fail> {
        match value {
            Value::Number(n) => n
                .as_i64()
                // A float is floored, as parsed text is; an integer beyond i64 is out of range.
                .or_else(|| n.as_f64().filter(|f| n.is_f64() && f.abs() < 9.2e18).map(|f| f.floor() as i64))
                .ok_or_else(|| self.wrong_kind(field, role, value, "milliseconds in range")),
            Value::String(_) => Err(self.wrong_kind(field, role, value, "milliseconds (add `transform: unix_ms`)")),
            other => Err(self.wrong_kind(field, role, other, "milliseconds")),
        }
    }

    fn time_or_now(&self, field: Option<&'a FieldMap>) -> Result<i64, Fail> {
        match field {
            Some(field) => Ok(self.time(field, "ts")?.unwrap_or(self.now_ms)),
            None => Ok(self.now_ms),
        }
    }

    fn number(&self, field: &'a FieldMap, role: &str) -> Result<f64, Fail> {
        let value = self.required(field, role)?;
        match value.as_ref() {
            Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => Ok(n.as_f64().unwrap_or_default()),
            other => Err(self.wrong_kind(field, role, other, "a number")),
        }
    }

    fn integer(&self, field: &'a FieldMap, role: &str) -> Result<i64, Fail> {
        let value = self.required(field, role)?;
        match value.as_ref() {
            Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
            other => Err(self.wrong_kind(field, role, other, "an integer")),
        }
    }
}
