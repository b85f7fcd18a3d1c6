//! Canonical JSON text of attributes: keys sorted at every level, no whitespace.
//!
//! The text is what the store compares to decide whether a row changed and, for metrics and
//! distributions, what identifies a series, so it must not depend on the order in which a spec or an API
//! listed the keys (this crate keeps maps in insertion order). It is produced in the single
//! `serde_json::to_string` a row costs, by a serializer wrapper, without building a sorted copy of the
//! value. Number text is serde_json's: `1` and `1.0` differ, as they do in the source data.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

/// The canonical text of an attribute map.
pub(crate) fn canonical(map: &Map<String, Value>) -> serde_json::Result<String> {
    serde_json::to_string(&SortedMap(map))
}

/// The canonical text of any JSON value (the points of a distribution).
pub(crate) fn canonical_value(value: &Value) -> serde_json::Result<String> {
    serde_json::to_string(&Sorted(value))
}

/// Appends `text` as a JSON string, escaped as `serde_json` escapes it. Most texts need no escape and
/// are copied whole, which is most of what makes [`push_canonical`] cheaper than a serializer.
pub(crate) fn push_json_str(out: &mut String, text: &str) {
    // A fold rather than `any`: without an early exit the compiler can vectorize the loop.
    let plain = text.bytes().fold(true, |plain, b| plain & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.reserve(text.len() + 2);
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(text).expect("a string always serializes"));
    }
}

/// Appends the canonical text of `value`, as [`canonical_value`] makes it.
pub(crate) fn push_canonical(out: &mut String, value: &Value) {
    use std::fmt::Write;
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // A number's display is its serialization (`itoa`, or `ryu` for a float, which is always finite).
        Value::Number(n) => write!(out, "{n}").expect("writing to a string cannot fail"),
        Value::String(text) => push_json_str(out, text),
        // Serializing fails only for a map with keys that are not text, which a `Value` cannot hold.
        nested => out.push_str(&canonical_value(nested).expect("a JSON value always serializes")),
    }
}

struct Sorted<'a>(&'a Value);
struct SortedMap<'a>(&'a Map<String, Value>);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => SortedMap(map).serialize(serializer),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Sorted(item))?;
                }
                seq.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

impl Serialize for SortedMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(self.0.len()))?;
        // Spec-mapped attributes usually arrive sorted already; only otherwise pay for a sorted list.
        if self.0.keys().is_sorted() {
            for (key, value) in self.0 {
                out.serialize_entry(key, &Sorted(value))?;
            }
        } else {
            let mut entries: Vec<(&String, &Value)> = self.0.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (key, value) in entries {
                out.serialize_entry(key, &Sorted(value))?;
            }
        }
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::{canonical, canonical_value, push_canonical, push_json_str};
    use serde_json::Value;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter_at_any_depth() {
        let a = json!({"b": 1, "a": {"y": [ {"q": 1, "p": 2} ], "x": null}});
        let b = json!({"a": {"x": null, "y": [ {"p": 2, "q": 1} ]}, "b": 1});
        let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
        assert_eq!(canonical(a).unwrap(), canonical(b).unwrap());
        assert_eq!(canonical(a).unwrap(), r#"{"a":{"x":null,"y":[{"p":2,"q":1}]},"b":1}"#);
    }

    /// The appended texts are the serializer's, byte for byte, for every kind of scalar and for nested
    /// values.
    #[test]
    fn appended_text_is_the_serializers() {
        let values = json!([
            null, true, false, 0, -1, 18446744073709551615u64, -9223372036854775808i64, 1.5, -0.0, 1e21, 1.5e-7,
            123456789.125, "", "plain", "quote \" here", "back \\ slash", "tab\tnew\nline\r\u{1}\u{1f}\u{7f}",
            "é ü 日本 \u{2028} 🎉", "</script>", [], [1, "a", {"b": 1, "a": [null]}], {}, {"z": 1, "a": {"y": 2, "x": 3}}
        ]);
        for value in values.as_array().unwrap() {
            let mut out = String::from("x");
            push_canonical(&mut out, value);
            assert_eq!(out, format!("x{}", canonical_value(value).unwrap()), "{value:?}");
            if let Value::String(text) = value {
                let mut out = String::new();
                push_json_str(&mut out, text);
                assert_eq!(out, serde_json::to_string(text).unwrap());
            }
        }
    }

    #[test]
    fn array_order_matters() {
        let a = json!({"k": [1, 2]});
        let b = json!({"k": [2, 1]});
        assert_ne!(canonical(a.as_object().unwrap()).unwrap(), canonical(b.as_object().unwrap()).unwrap());
    }
}
