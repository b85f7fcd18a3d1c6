//! Conversions between expression values and the outside world: JSON in both directions, the
//! plain text a value becomes inside a template or `to_string`, and short descriptions of values
//! for error messages.
//!
//! It does not decide where values come from or go to; callers choose what to convert.

use evalexpr::Value;

/// JSON → expression value: null → Empty, bool/int/float/string as such (integers that fit i64
/// → Int, else Float), arrays → Tuple (recursively), objects → String holding their compact JSON.
///
/// Objects are opaque in expressions: the language has no map type, so an object can only be
/// compared, passed on or tested for emptiness, and `is_empty(obj)` is false even for `{}`
/// because its text is `"{}"`.
pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Empty,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            // Numbers outside i64 (large u64 values) fall back to the nearest float, which
            // `as_f64` always provides without the arbitrary-precision feature.
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Tuple(items.iter().map(from_json).collect()),
        serde_json::Value::Object(_) => Value::String(v.to_string()),
    }
}

/// Expression value → JSON: Empty → null, Tuple → array, Int/Float/Bool/String as such
/// (non-finite floats → null, since JSON cannot represent them).
pub fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Empty => serde_json::Value::Null,
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Tuple(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
    }
}

/// The text a value stands for when it is spliced into a template or passed to `to_string`:
/// strings as they are, integers and floats in plain decimal (Rust's shortest round-trip form,
/// never exponent notation, so `2.0` becomes `2`), booleans as `true`/`false`, tuples as their
/// elements joined by commas.
///
/// Empty values and non-finite floats have no text and produce an error message, because silently
/// writing `()` or `NaN` into a URL would send a request nobody meant to send.
pub fn to_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        Value::Float(f) if f.is_finite() => Ok(f.to_string()),
        Value::Float(f) => Err(format!("{f} is not a finite number")),
        Value::Boolean(b) => Ok(b.to_string()),
        Value::Empty => Err("the value is empty".to_string()),
        Value::Tuple(items) => {
            let parts = items
                .iter()
                .map(|item| match item {
                    Value::Empty => Err("a tuple element is empty".to_string()),
                    other => to_text(other),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(parts.join(","))
        }
    }
}

/// A short description of a value with its type, for error messages: `string "abc"`, `int 3`,
/// `float 2.5`, `boolean true`, `empty ()` or `tuple of 2 (1, 2)`. Long text is shortened so a
/// message never carries a whole payload.
pub fn describe(v: &Value) -> String {
    const LIMIT: usize = 60;
    let shorten = |text: String| -> String {
        if text.chars().count() > LIMIT {
            let cut: String = text.chars().take(LIMIT).collect();
            format!("{cut}...")
        } else {
            text
        }
    };
    match v {
        Value::String(s) => format!("string {}", shorten(format!("{s:?}"))),
        Value::Int(i) => format!("int {i}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        Value::Empty => "empty ()".to_string(),
        Value::Tuple(items) => format!("tuple of {} {}", items.len(), shorten(v.to_string())),
    }
}
