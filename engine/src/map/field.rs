//! One field mapping, evaluated against one record: source, transforms, default. The missing policy is
//! left to the caller, because an attribute and a key field react differently to a missing value.
//!
//! Also the [`Scope`] that expressions and template holes of a mapping read.

use super::MapContext;
use super::transform;
use crate::expr::{Part, Scope, Template, Value as ExprValue, from_json, to_json, to_text};
use crate::jsonpath::Doc;
use crate::model::{Attribute, FieldMap, FieldSource};
use serde_json::Value;
use std::borrow::Cow;

/// A value a mapping found: in the record itself (a singular path, not transformed), or made by the
/// mapping (an expression, a template, a transform, a constant, a path with wildcards).
#[derive(Debug)]
pub(super) enum Found<'v> {
    Doc(&'v Doc<'v>),
    Value(Cow<'v, Value>),
}

impl<'v> Found<'v> {
    pub(super) fn into_value(self) -> Cow<'v, Value> {
        match self {
            Found::Doc(doc) => Cow::Owned(doc.to_value()),
            Found::Value(value) => value,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Found::Doc(Doc::Null) | Found::Value(Cow::Borrowed(Value::Null) | Cow::Owned(Value::Null)))
    }
}

/// One attribute of a record being mapped, in the emit's order.
#[derive(Debug)]
pub(super) enum Slot<'v> {
    /// Missing with `missing: omit`: left out of the row.
    Omitted,
    /// Missing with `missing: null`: stored as JSON null.
    Null,
    Found(Found<'v>),
}

impl Slot<'_> {
    fn to_expr(&self) -> ExprValue {
        match self {
            Slot::Omitted | Slot::Null => ExprValue::Empty,
            Slot::Found(Found::Value(value)) => from_json(value),
            Slot::Found(Found::Doc(doc)) => match doc {
                Doc::String(text) => ExprValue::String(text.to_string()),
                other => from_json(&other.to_value()),
            },
        }
    }
}

/// What a mapping's expressions see: the attributes mapped so far (by name), the fan-out parent's fields
/// (`alias.field`, nested with more dots), then whatever the caller's config scope resolves (`config.*`).
///
/// It borrows the attributes being mapped instead of copying them into a lookup table, because most
/// expressions read one or two names and a copy per record would cost more than every lookup together.
pub(super) struct RecordScope<'s, 'c> {
    /// The attributes already mapped, one per name of `visible` (in order).
    slots: &'s [Slot<'s>],
    /// The attributes this mapping may read: the earlier ones for an attribute, all of them for key fields
    /// and `when`.
    visible: &'s [Attribute],
    cx: &'s MapContext<'c>,
}

impl<'s, 'c> RecordScope<'s, 'c> {
    pub(super) fn new(slots: &'s [Slot<'s>], visible: &'s [Attribute], cx: &'s MapContext<'c>) -> Self {
        RecordScope { slots, visible, cx }
    }
}

impl Scope for RecordScope<'_, '_> {
    fn variable(&self, name: &str) -> Option<ExprValue> {
        // Omitted attributes read as empty, like null ones, so `missing: omit` never turns an expression
        // into an "unknown variable" error.
        if let Some(index) = self.visible.iter().position(|a| a.name == name) {
            return Some(self.slots.get(index).map_or(ExprValue::Empty, Slot::to_expr));
        }
        if let Some((alias, parent)) = self.cx.parent
            && let Some(rest) = name.strip_prefix(alias).and_then(|r| r.strip_prefix('.'))
        {
            return Some(dotted(parent, rest).map_or(ExprValue::Empty, from_json));
        }
        self.cx.config.variable(name)
    }

    fn now_ms(&self) -> i64 {
        self.cx.now_ms
    }
}

/// Walks `a.b.0.c` into a JSON value: names into objects, decimal segments into lists.
fn dotted<'v>(mut value: &'v Value, path: &str) -> Option<&'v Value> {
    for segment in path.split('.') {
        value = match value {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// The value a mapping gives for a record after its transforms and default; `Ok(None)` when it is missing
/// or null. `Err` carries a message (without record data beyond short scalars) for a skip warning.
pub(super) fn resolve<'v>(
    field: &'v FieldMap,
    record: &'v Doc<'v>,
    scope: &dyn Scope,
) -> Result<Option<Found<'v>>, String> {
    let found = match &field.source {
        // A singular path's value stays in the record; others are copied out of it.
        FieldSource::Path(path) => match path.select_doc_in_place(record) {
            Some(reached) => reached.map(Found::Doc),
            None => path.select_doc(record).map(|value| Found::Value(Cow::Owned(value))),
        },
        FieldSource::Template(template) => {
            render(template, scope)?.map(|text| Found::Value(Cow::Owned(Value::String(text))))
        }
        FieldSource::Expr(expr) => match expr.eval(scope) {
            Ok(ExprValue::Empty) => None,
            Ok(result) => Some(Found::Value(Cow::Owned(to_json(&result)))),
            Err(error) => return Err(format!("expression failed: {}", error.message)),
        },
        FieldSource::Value(constant) => Some(Found::Value(Cow::Borrowed(constant))),
    };
    let mut found = found.filter(|f| !f.is_null());
    if !field.transforms.is_empty() {
        let mut value = found.map(Found::into_value);
        for &step in &field.transforms {
            // A missing value stays missing whatever the transforms; `take` leaves `None` behind for that.
            let Some(present_value) = value.take() else { break };
            value = transform::apply(step, present_value)?.filter(|v| !v.is_null());
        }
        found = value.map(Found::Value);
    }
    Ok(found.or_else(|| field.default.as_ref().filter(|d| !d.is_null()).map(|d| Found::Value(Cow::Borrowed(d)))))
}

/// Renders a template as `Template::render` with `encode_none` does, except that a hole without a value
/// makes the whole field missing (so `default` and `missing` apply) instead of being an error.
fn render(template: &Template, scope: &dyn Scope) -> Result<Option<String>, String> {
    let mut out = String::with_capacity(template.source().len());
    for part in template.parts() {
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::Hole(expr) => {
                let hole = expr.source().trim();
                let value = expr.eval(scope).map_err(|e| format!("template hole `{hole}` failed: {}", e.message))?;
                if matches!(value, ExprValue::Empty) {
                    return Ok(None);
                }
                out.push_str(&to_text(&value).map_err(|m| format!("template hole `{hole}`: {m}"))?);
            }
        }
    }
    Ok(Some(out))
}

/// The spec text a mapping reads from, for messages: the JSONPath, template or expression, shortened.
pub(super) fn source_text(field: &FieldMap) -> String {
    const LIMIT: usize = 60;
    let text = match &field.source {
        FieldSource::Path(path) => path.source(),
        FieldSource::Template(template) => template.source(),
        FieldSource::Expr(expr) => expr.source(),
        FieldSource::Value(_) => return "a constant".to_string(),
    };
    match text.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("`{}...`", &text[..cut]),
        None => format!("`{text}`"),
    }
}
