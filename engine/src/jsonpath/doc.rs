//! A parsed JSON document that borrows its text from the bytes it was parsed from: how a page of
//! records is read.
//!
//! Parsing a page into `serde_json::Value` allocates every member name and every string and grows an
//! ordered, hashed map per object; for a page of records that is about nine tenths of the parse, and the
//! mapping then reads a dozen fields of each record and drops the rest. A [`Doc`] keeps names and strings
//! as slices of the page (copied only when they hold escapes) and each object as one list of members,
//! allocated once at its final size. Reading a member compares names in order, which for the small
//! objects APIs return costs less than hashing the name. Values are copied into `serde_json::Value`
//! only where they are kept ([`Doc::to_value`]).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::fmt;

/// A JSON value whose texts borrow from the document's bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum Doc<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Doc<'a>>),
    /// Members in document order, duplicates included; reading a name finds the last one, as
    /// `serde_json` keeps the last value of a repeated name.
    Object(Vec<(Cow<'a, str>, Doc<'a>)>),
}

impl<'a> Doc<'a> {
    /// Parses a JSON document, with `serde_json`'s grammar, errors and nesting limit.
    pub fn parse(bytes: &'a [u8]) -> serde_json::Result<Doc<'a>> {
        let mut stacks = Stacks::default();
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let doc = DocSeed { stacks: &mut stacks }.deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(doc)
    }

    /// A view of a `serde_json::Value`, borrowing its texts (for callers that hold a `Value`).
    pub fn from_value(value: &'a Value) -> Doc<'a> {
        match value {
            Value::Null => Doc::Null,
            Value::Bool(b) => Doc::Bool(*b),
            Value::Number(n) => Doc::Number(n.clone()),
            Value::String(s) => Doc::String(Cow::Borrowed(s)),
            Value::Array(items) => Doc::Array(items.iter().map(Doc::from_value).collect()),
            Value::Object(map) => {
                Doc::Object(map.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), Doc::from_value(v))).collect())
            }
        }
    }

    /// The same value as `serde_json` would have parsed it.
    pub fn to_value(&self) -> Value {
        match self {
            Doc::Null => Value::Null,
            Doc::Bool(b) => Value::Bool(*b),
            Doc::Number(n) => Value::Number(n.clone()),
            Doc::String(s) => Value::String(s.as_ref().to_owned()),
            Doc::Array(items) => Value::Array(items.iter().map(Doc::to_value).collect()),
            Doc::Object(members) => {
                let mut map = Map::with_capacity(members.len());
                for (name, value) in members {
                    map.insert(name.as_ref().to_owned(), value.to_value());
                }
                Value::Object(map)
            }
        }
    }

    /// The same document owning all its texts.
    pub fn into_static(self) -> Doc<'static> {
        match self {
            Doc::Null => Doc::Null,
            Doc::Bool(b) => Doc::Bool(b),
            Doc::Number(n) => Doc::Number(n),
            Doc::String(s) => Doc::String(Cow::Owned(s.into_owned())),
            Doc::Array(items) => Doc::Array(items.into_iter().map(Doc::into_static).collect()),
            Doc::Object(members) => Doc::Object(
                members.into_iter().map(|(name, value)| (Cow::Owned(name.into_owned()), value.into_static())).collect(),
            ),
        }
    }

    /// The member `name` of an object (the last one, if repeated).
    pub fn get(&self, name: &str) -> Option<&Doc<'a>> {
        match self {
            Doc::Object(members) => members.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Item `index` of a list, counting from the end when negative.
    pub fn item(&self, index: i64) -> Option<&Doc<'a>> {
        match self {
            Doc::Array(items) => {
                let index = if index < 0 { items.len() as i64 + index } else { index };
                items.get(usize::try_from(index).ok()?)
            }
            _ => None,
        }
    }
}

/// Members and items of the objects and lists still open, innermost last: each object or list is
/// gathered here, then moved into a list of exactly its size.
#[derive(Default)]
struct Stacks<'a> {
    members: Vec<(Cow<'a, str>, Doc<'a>)>,
    items: Vec<Doc<'a>>,
}

struct DocSeed<'s, 'a> {
    stacks: &'s mut Stacks<'a>,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_, 'de> {
    type Value = Doc<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Doc<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_, 'de> {
    type Value = Doc<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Doc<'de>, E> {
        Ok(Doc::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Doc<'de>, E> {
        Ok(Doc::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Doc<'de>, E> {
        Ok(Doc::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Doc<'de>, E> {
        Ok(Number::from_f64(value).map_or(Doc::Null, Doc::Number))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Doc<'de>, E> {
        Ok(Doc::String(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Doc<'de>, E> {
        Ok(Doc::String(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Doc<'de>, E> {
        Ok(Doc::String(Cow::Owned(value)))
    }

    fn visit_unit<E>(self) -> Result<Doc<'de>, E> {
        Ok(Doc::Null)
    }

    fn visit_none<E>(self) -> Result<Doc<'de>, E> {
        Ok(Doc::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc<'de>, A::Error> {
        let start = self.stacks.items.len();
        while let Some(item) = seq.next_element_seed(DocSeed { stacks: self.stacks })? {
            self.stacks.items.push(item);
        }
        Ok(Doc::Array(self.stacks.items.drain(start..).collect()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc<'de>, A::Error> {
        let start = self.stacks.members.len();
        while let Some(name) = map.next_key_seed(NameSeed)? {
            let value = map.next_value_seed(DocSeed { stacks: self.stacks })?;
            self.stacks.members.push((name, value));
        }
        Ok(Doc::Object(self.stacks.members.drain(start..).collect()))
    }
}

/// A member name, borrowed unless it holds escapes.
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(value))
    }

    fn visit_str<E>(self, value: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(value))
    }
}

#[cfg(test)]
mod tests {
    use super::Doc;
    use serde_json::Value;

    fn same_as_serde_json(text: &str) {
        let ours = Doc::parse(text.as_bytes());
        let theirs = serde_json::from_str::<Value>(text);
        match (ours, theirs) {
            (Ok(doc), Ok(value)) => {
                // Same value, member order included (equality of maps ignores it).
                assert_eq!(doc.to_value().to_string(), value.to_string(), "{text}");
                assert_eq!(Doc::from_value(&value).to_value(), value, "{text}");
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
            (a, b) => panic!("{text}: ours {a:?}, serde_json {b:?}"),
        }
    }

    #[test]
    fn parses_like_serde_json() {
        for text in [
            r#"{"value":[{"id":"a","n":1,"f":1.5,"neg":-3,"big":18446744073709551615,"t":true,"z":null,
                "nested":{"b":[1,[2,{"c":"\u00e9\n"}]],"a":{}},"empty":[]},{"id":"b"}],
                "@next.link":"https://x/y?page=2", "esc\"aped": "q\"uote"}"#,
            r#"{"b":1,"a":2,"b":3}"#,
            "[]",
            "{}",
            "  \"text\"  ",
            "12",
            "-0.0",
            "1e400",
            "[1, 2,]",
            r#"{"a":1"#,
            r#"{"a":1} x"#,
            r#"{1:2}"#,
            "",
            r#"{"a":"\ud800"}"#,
        ] {
            same_as_serde_json(text);
        }
    }

    #[test]
    fn repeated_names_read_the_last_value() {
        let doc = Doc::parse(br#"{"b":1,"a":2,"b":3}"#).unwrap();
        assert_eq!(doc.get("b").map(Doc::to_value), Some(serde_json::json!(3)));
        assert_eq!(doc.get("c"), None);
        let list = Doc::parse(b"[1,2,3]").unwrap();
        assert_eq!(list.item(-1).map(Doc::to_value), Some(serde_json::json!(3)));
        assert_eq!(list.item(3), None);
        assert_eq!(list.get("a"), None);
    }

    #[test]
    fn texts_borrow_unless_escaped() {
        let doc = Doc::parse(br#"{"plain":"x","esc":"a\nb"}"#).unwrap();
        let Doc::Object(members) = &doc else { panic!("an object") };
        assert!(members.iter().all(|(name, _)| matches!(name, std::borrow::Cow::Borrowed(_))));
        assert!(matches!(doc.get("plain"), Some(Doc::String(std::borrow::Cow::Borrowed("x")))));
        assert!(matches!(doc.get("esc"), Some(Doc::String(std::borrow::Cow::Owned(_)))));
    }

    #[test]
    fn keeps_serde_json_nesting_limit() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(Doc::parse(deep.as_bytes()).is_err());
        assert!(serde_json::from_str::<Value>(&deep).is_err());
    }

    /// Parsing a page of 1,000 sign-in-like records, against `serde_json::from_slice`:
    /// `cargo test --release --lib jsonpath::doc::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn throughput() {
        let records: Vec<Value> = (0..1000)
            .map(|i| {
                serde_json::json!({
                    "id": format!("{i:08}-7f17-4b1b-a79e-642a42aabb8f"), "createdDateTime": "2025-06-30T23:59:59Z",
                    "userId": "2ebde721-2b37-40af-9621-d7be6864a712", "userPrincipalName": "someone@example.com",
                    "appId": "1fec8e78-bce4-4aaf-ab1b-5451cc387264", "appDisplayName": "Mail", "ipAddress": "192.0.2.7",
                    "clientAppUsed": "Browser", "conditionalAccessStatus": "success", "riskLevelAggregated": "none",
                    "riskState": "none",
                    "status": {"errorCode": 50074, "failureReason": "MFA required", "additionalDetails": null},
                    "location": {"city": "Paris", "state": "Ile-de-France", "countryOrRegion": "FR"}
                })
            })
            .collect();
        let page = serde_json::to_vec(&serde_json::json!({"value": records, "next": "https://x/y"})).unwrap();
        let rounds = 100;
        let time = |f: &dyn Fn()| {
            let started = std::time::Instant::now();
            for _ in 0..rounds {
                f();
            }
            started.elapsed().as_secs_f64() / f64::from(rounds) * 1e3
        };
        for _ in 0..3 {
            let value = time(&|| drop(std::hint::black_box(serde_json::from_slice::<Value>(&page).unwrap())));
            let doc = time(&|| drop(std::hint::black_box(Doc::parse(&page).unwrap())));
            println!("a page of 1,000 records ({} bytes): Value {value:.2} ms, Doc {doc:.2} ms", page.len());
        }
    }
}
