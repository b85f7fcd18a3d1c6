//! The `transform:` conversions of a field mapping, one value at a time.
//!
//! Values travel as `Cow` so that a transform which does not change its input (`trim` of trimmed text,
//! `unix_ms` of a number, `first` of a borrowed list) costs no copy of the record's data. A transform that
//! cannot convert its input returns a message naming the transform and the kind of value, never the value
//! itself: the message becomes a warning, warnings are deduplicated by text, and a value may be long or
//! personal.

use crate::expr::parse_timestamp_ms;
use crate::model::Transform;
use serde_json::{Number, Value};
use std::borrow::Cow;

/// Applies one transform to a present, non-null value. `Ok(None)` means the value became missing.
pub(super) fn apply(transform: Transform, value: Cow<'_, Value>) -> Result<Option<Cow<'_, Value>>, String> {
    let converted = match transform {
        Transform::UnixMs => timestamp(value, "unix_ms", 1)?,
        Transform::UnixS => timestamp(value, "unix_s", 1000)?,
        Transform::Lowercase => text(value, "lowercase", |s| {
            // Most values are already lowercase; only allocate when something changes.
            s.chars().any(char::is_uppercase).then(|| s.to_lowercase())
        })?,
        Transform::Uppercase => {
            text(value, "uppercase", |s| s.chars().any(char::is_lowercase).then(|| s.to_uppercase()))?
        }
        Transform::Trim => text(value, "trim", |s| (s.trim().len() != s.len()).then(|| s.trim().to_string()))?,
        Transform::String => match value.as_ref() {
            Value::String(_) => value,
            Value::Number(n) => Cow::Owned(Value::String(n.to_string())),
            Value::Bool(b) => Cow::Owned(Value::String(b.to_string())),
            other => return Err(cannot("string", other)),
        },
        Transform::Integer => match value.as_ref() {
            Value::Number(n) if n.is_i64() || n.is_u64() => value,
            Value::Number(n) => {
                Cow::Owned(truncate(n.as_f64().unwrap_or(f64::NAN)).ok_or_else(|| out_of_range("integer"))?)
            }
            Value::String(s) => Cow::Owned(parse_integer(s.trim()).ok_or_else(|| not_numeric("integer"))?),
            other => return Err(cannot("integer", other)),
        },
        Transform::Number => match value.as_ref() {
            Value::Number(_) => value,
            Value::String(s) => Cow::Owned(parse_number(s.trim()).ok_or_else(|| not_numeric("number"))?),
            other => return Err(cannot("number", other)),
        },
        Transform::Boolean => match value.as_ref() {
            Value::Bool(_) => value,
            Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Cow::Owned(Value::Bool(true)),
            Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Cow::Owned(Value::Bool(false)),
            Value::String(_) => return Err("`boolean` cannot convert text other than true or false".to_string()),
            other => return Err(cannot("boolean", other)),
        },
        Transform::Length => match value.as_ref() {
            Value::Array(items) => Cow::Owned(Value::from(items.len())),
            Value::String(s) => Cow::Owned(Value::from(s.chars().count())),
            other => return Err(cannot("length", other)),
        },
        // A value that is not a list is kept: APIs that return "one or many" then map the same way.
        Transform::First => match value {
            Cow::Borrowed(Value::Array(items)) => return Ok(items.first().map(Cow::Borrowed)),
            Cow::Owned(Value::Array(items)) => return Ok(items.into_iter().next().map(Cow::Owned)),
            other => other,
        },
        Transform::EmptyAsMissing => match value.as_ref() {
            Value::String(s) if s.is_empty() => return Ok(None),
            Value::Array(items) if items.is_empty() => return Ok(None),
            _ => value,
        },
    };
    Ok(Some(converted))
}

/// `unix_ms` (divisor 1) and `unix_s` (1000): ISO-8601 text to a floored integer; numbers are taken to be
/// in the target unit already and pass through.
fn timestamp<'a>(value: Cow<'a, Value>, name: &str, divisor: i64) -> Result<Cow<'a, Value>, String> {
    match value.as_ref() {
        Value::Number(_) => Ok(value),
        Value::String(s) => match parse_timestamp_ms(s) {
            // div_euclid floors, so a pre-1970 instant never moves forward in time.
            Ok(ms) => Ok(Cow::Owned(Value::from(ms.div_euclid(divisor)))),
            Err(_) => Err(format!("`{name}` cannot convert text that is not an ISO-8601 timestamp")),
        },
        other => Err(cannot(name, other)),
    }
}

/// Text transforms: `change` returns the new text, or None when the text is already as wanted.
fn text<'a>(
    value: Cow<'a, Value>,
    name: &str,
    change: impl Fn(&str) -> Option<String>,
) -> Result<Cow<'a, Value>, String> {
    match value.as_ref() {
        Value::String(s) => Ok(match change(s) {
            Some(changed) => Cow::Owned(Value::String(changed)),
            None => value,
        }),
        other => Err(cannot(name, other)),
    }
}

/// The integer part of a finite float that fits an i64.
fn truncate(f: f64) -> Option<Value> {
    // 2^63 is exactly representable, and the i64 range is [-2^63, 2^63) once the fraction is gone.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let t = f.trunc();
    (-LIMIT..LIMIT).contains(&t).then(|| Value::from(t as i64))
}

fn parse_integer(s: &str) -> Option<Value> {
    match s.parse::<i64>() {
        Ok(i) => Some(Value::from(i)),
        Err(_) => truncate(s.parse::<f64>().ok()?),
    }
}

/// Integer text stays an integer, so `"42"` maps to `42` and not `42.0`.
fn parse_number(s: &str) -> Option<Value> {
    match s.parse::<i64>() {
        Ok(i) => Some(Value::from(i)),
        Err(_) => Number::from_f64(s.parse::<f64>().ok()?).map(Value::Number),
    }
}

fn cannot(name: &str, value: &Value) -> String {
    format!("`{name}` cannot convert {}", kind(value))
}

fn not_numeric(name: &str) -> String {
    format!("`{name}` cannot convert text that is not a number")
}

fn out_of_range(name: &str) -> String {
    format!("`{name}` cannot convert a number outside the integer range")
}

/// The kind of a JSON value, for messages that must not repeat the value.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a floating-point number",
        Value::Number(_) => "an integer",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
