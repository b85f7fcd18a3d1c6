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
pub(super) fn canonical(map: &Map<String, Value>) -> serde_json::Result<String> {
    serde_json::to_string(&SortedMap(map))
}

/// The canonical text of any JSON value (the points of a distribution).
pub(super) fn canonical_value(value: &Value) -> serde_json::Result<String> {
    serde_json::to_string(&Sorted(value))
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
    use super::canonical;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter_at_any_depth() {
        let a = json!({"b": 1, "a": {"y": [ {"q": 1, "p": 2} ], "x": null}});
        let b = json!({"a": {"x": null, "y": [ {"p": 2, "q": 1} ]}, "b": 1});
        let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
        assert_eq!(canonical(a).unwrap(), canonical(b).unwrap());
        assert_eq!(canonical(a).unwrap(), r#"{"a":{"x":null,"y":[{"p":2,"q":1}]},"b":1}"#);
    }

    #[test]
    fn array_order_matters() {
        let a = json!({"k": [1, 2]});
        let b = json!({"k": [2, 1]});
        assert_ne!(canonical(a.as_object().unwrap()).unwrap(), canonical(b.as_object().unwrap()).unwrap());
    }
}
