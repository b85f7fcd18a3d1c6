//! JSONPath (RFC 9535) for reading API responses, compiled once at validation time.
//!
//! Paths made only of names and indexes (`$.a.b`, `$['@x'][0]`), which is almost every path a spec uses,
//! are walked directly with map lookups, about twice as fast as the general evaluator; everything else
//! goes to jsonpath-rust. A path is "singular" when it can match at most one value; a field mapped by a
//! singular path is a value, by any other path a list.
//!
//! Paths read either a `serde_json::Value` or a [`Doc`], the borrowed form pages of records are parsed
//! into (`query_doc`, `first_doc`, `select_doc`). In a `Doc`, paths of names, indexes and wildcards over
//! lists (`$.value[*]`, `$.targets[*].id`) are walked directly too; anything else is evaluated on a
//! `Value` copy.

mod doc;

pub use doc::Doc;

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// A compiled JSONPath.
#[derive(Clone)]
pub struct JsonPath {
    source: String,
    plan: Plan,
}

#[derive(Clone)]
enum Plan {
    /// Only name and index selectors: walk them directly.
    Direct(Vec<Step>),
    /// Names, indexes and at least one wildcard (`$.value[*]`, `$.targets[*].id`): walked directly in a
    /// [`Doc`], through the general evaluator in a `Value`.
    Walk(Vec<Step>, JpQuery),
    /// Anything else: the general evaluator.
    General(JpQuery),
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Name(String),
    Index(i64),
    Wildcard,
}

/// Why a JSONPath did not compile, with the byte offset of the problem when known.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPathError {
    pub message: String,
    pub offset: Option<usize>,
}

impl fmt::Display for JsonPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JsonPathError {}

impl fmt::Debug for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonPath({})", self.source)
    }
}

impl PartialEq for JsonPath {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl JsonPath {
    pub fn compile(source: &str) -> Result<JsonPath, JsonPathError> {
        if !source.starts_with('$') {
            return Err(JsonPathError {
                message: "a JSONPath starts with `$`, the record itself (e.g. `$.id`)".into(),
                offset: Some(0),
            });
        }
        let query = parse_json_path(source).map_err(|e| pest_error(&e.to_string()))?;
        let steps: Option<Vec<Step>> = query
            .segments
            .iter()
            .map(|segment| match segment {
                Segment::Selector(Selector::Name(name)) => Some(Step::Name(unquote(name))),
                Segment::Selector(Selector::Index(i)) => Some(Step::Index(*i)),
                Segment::Selector(Selector::Wildcard) => Some(Step::Wildcard),
                _ => None,
            })
            .collect();
        let plan = match steps {
            Some(steps) if !steps.contains(&Step::Wildcard) => Plan::Direct(steps),
            Some(steps) => Plan::Walk(steps, query),
            None => Plan::General(query),
        };
        Ok(JsonPath { source: source.to_string(), plan })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the path can match at most one value.
    pub fn is_singular(&self) -> bool {
        matches!(self.plan, Plan::Direct(_))
    }

    /// For a direct path of names only, the top-level field it starts with (used to name attributes).
    pub fn first_name(&self) -> Option<&str> {
        match &self.plan {
            Plan::Direct(steps) => match steps.first() {
                Some(Step::Name(name)) => Some(name),
                _ => None,
            },
            Plan::Walk(..) | Plan::General(_) => None,
        }
    }

    /// The member names of a path made only of names (`$.a['@b']` gives `["a", "@b"]`), for writing a
    /// value where the path would read it; `None` for any other path.
    pub fn names(&self) -> Option<Vec<String>> {
        match &self.plan {
            Plan::Direct(steps) => steps
                .iter()
                .map(|step| match step {
                    Step::Name(name) => Some(name.clone()),
                    Step::Index(_) | Step::Wildcard => None,
                })
                .collect(),
            Plan::Walk(..) | Plan::General(_) => None,
        }
    }

    /// For a path of names ending in one wildcard (`$.value[*]`, `$[*]`), the names before it: where a
    /// list of records sits in a document. `None` for any other path.
    pub fn list_names(&self) -> Option<Vec<String>> {
        let Plan::Walk(steps, _) = &self.plan else { return None };
        let (Step::Wildcard, names) = steps.split_last()? else { return None };
        names
            .iter()
            .map(|step| match step {
                Step::Name(name) => Some(name.clone()),
                Step::Index(_) | Step::Wildcard => None,
            })
            .collect()
    }

    /// Every value the path matches, in document order.
    pub fn query<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        match &self.plan {
            Plan::Direct(steps) => walk(steps, value).into_iter().collect(),
            Plan::Walk(_, query) | Plan::General(query) => js_path_process(query, value)
                .map(|hits| hits.into_iter().map(|hit| hit.val).collect())
                .unwrap_or_default(),
        }
    }

    /// The single value of a singular path (`None` when absent), or the first match of any other path.
    pub fn first<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        match &self.plan {
            Plan::Direct(steps) => walk(steps, value),
            Plan::Walk(..) | Plan::General(_) => self.query(value).into_iter().next(),
        }
    }

    /// The value a field mapping reads: the value itself for a singular path, a list of all matches for
    /// any other path. `None` means missing.
    pub fn select(&self, value: &Value) -> Option<Value> {
        match &self.plan {
            Plan::Direct(steps) => walk(steps, value).cloned(),
            Plan::Walk(..) | Plan::General(_) => Some(Value::Array(self.query(value).into_iter().cloned().collect())),
        }
    }

    /// [`JsonPath::query`] on a [`Doc`]. Paths of names, indexes and wildcards over lists borrow from the
    /// document; any other path (or a wildcard over an object) is evaluated on a `Value` copy of it, which
    /// is slower.
    pub fn query_doc<'d, 'a>(&self, doc: &'d Doc<'a>) -> Vec<Cow<'d, Doc<'a>>> {
        match &self.plan {
            Plan::Direct(steps) => walk_doc(steps, doc).map(Cow::Borrowed).into_iter().collect(),
            Plan::Walk(steps, _) => match walk_all(steps, doc) {
                Some(hits) => hits.into_iter().map(Cow::Borrowed).collect(),
                None => self.query_copy(doc),
            },
            Plan::General(_) => self.query_copy(doc),
        }
    }

    /// [`JsonPath::query`] on a `Value` copy of `doc`, the matches copied back.
    fn query_copy<'d, 'a>(&self, doc: &Doc) -> Vec<Cow<'d, Doc<'a>>> {
        let value = doc.to_value();
        self.query(&value).into_iter().map(|hit| Cow::Owned(Doc::from_value(hit).into_static())).collect()
    }

    /// [`JsonPath::first`] on a [`Doc`].
    pub fn first_doc<'d, 'a>(&self, doc: &'d Doc<'a>) -> Option<Cow<'d, Doc<'a>>> {
        match &self.plan {
            Plan::Direct(steps) => walk_doc(steps, doc).map(Cow::Borrowed),
            Plan::Walk(..) | Plan::General(_) => self.query_doc(doc).into_iter().next(),
        }
    }

    /// For a singular path of names and indexes, what it reaches in `doc`, borrowed (`Some(None)` when
    /// nothing); `None` for any other path, whose value [`JsonPath::select_doc`] gives.
    pub fn select_doc_in_place<'d, 'a>(&self, doc: &'d Doc<'a>) -> Option<Option<&'d Doc<'a>>> {
        match &self.plan {
            Plan::Direct(steps) => Some(walk_doc(steps, doc)),
            Plan::Walk(..) | Plan::General(_) => None,
        }
    }

    /// [`JsonPath::select`] on a [`Doc`]: the value a field mapping reads, copied out of the document.
    pub fn select_doc(&self, doc: &Doc) -> Option<Value> {
        match &self.plan {
            Plan::Direct(steps) => walk_doc(steps, doc).map(Doc::to_value),
            Plan::Walk(..) | Plan::General(_) => {
                Some(Value::Array(self.query_doc(doc).into_iter().map(|hit| hit.to_value()).collect()))
            }
        }
    }
}

fn walk_doc<'d, 'a>(steps: &[Step], mut doc: &'d Doc<'a>) -> Option<&'d Doc<'a>> {
    for step in steps {
        doc = match step {
            Step::Name(name) => doc.get(name)?,
            Step::Index(index) => doc.item(*index)?,
            Step::Wildcard => return None,
        };
    }
    Some(doc)
}

/// Every value a path of names, indexes and wildcards reaches in `doc`, in document order. `None` when a
/// wildcard meets an object: its members may repeat a name, which the general evaluator on a `Value`
/// resolves as `serde_json` does.
fn walk_all<'d, 'a>(steps: &[Step], doc: &'d Doc<'a>) -> Option<Vec<&'d Doc<'a>>> {
    let mut reached = vec![doc];
    for step in steps {
        let mut next = Vec::with_capacity(reached.len());
        for doc in reached {
            match (step, doc) {
                (Step::Name(name), _) => next.extend(doc.get(name)),
                (Step::Index(index), _) => next.extend(doc.item(*index)),
                (Step::Wildcard, Doc::Array(items)) => next.extend(items),
                (Step::Wildcard, Doc::Object(_)) => return None,
                (Step::Wildcard, _) => {}
            }
        }
        reached = next;
    }
    Some(reached)
}

fn walk<'a>(steps: &[Step], mut value: &'a Value) -> Option<&'a Value> {
    for step in steps {
        value = match (step, value) {
            (Step::Name(name), Value::Object(map)) => map.get(name)?,
            (Step::Index(index), Value::Array(items)) => {
                let index = if *index < 0 { items.len() as i64 + index } else { *index };
                items.get(usize::try_from(index).ok()?)?
            }
            _ => return None,
        };
    }
    Some(value)
}

/// jsonpath-rust keeps the quotes of bracketed names (`$['a']` gives `'a'`); strip them.
fn unquote(name: &str) -> String {
    let trimmed = name
        .strip_prefix('\'')
        .and_then(|n| n.strip_suffix('\''))
        .or_else(|| name.strip_prefix('"').and_then(|n| n.strip_suffix('"')));
    trimmed.unwrap_or(name).to_string()
}

/// Turns pest's multi-line report (`--> 1:9 ... = expected ...`) into one line and an offset.
fn pest_error(report: &str) -> JsonPathError {
    let offset = report
        .split("--> ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|pos| pos.split(':').nth(1))
        .and_then(|col| col.parse::<usize>().ok())
        .map(|col| col.saturating_sub(1));
    let expected =
        report.lines().find_map(|line| line.trim().strip_prefix("= ")).unwrap_or("invalid syntax").trim().to_string();
    JsonPathError { message: format!("invalid JSONPath: {expected}"), offset }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn direct_paths_read_names_and_indexes() {
        let doc = json!({"a": {"b": [1, 2, 3]}, "@next.link": "x", "n": null});
        assert_eq!(JsonPath::compile("$.a.b[1]").unwrap().select(&doc), Some(json!(2)));
        assert_eq!(JsonPath::compile("$.a.b[-1]").unwrap().select(&doc), Some(json!(3)));
        assert_eq!(JsonPath::compile("$['@next.link']").unwrap().select(&doc), Some(json!("x")));
        assert_eq!(JsonPath::compile("$[\"@next.link\"]").unwrap().select(&doc), Some(json!("x")));
        assert_eq!(JsonPath::compile("$.missing").unwrap().select(&doc), None);
        assert_eq!(JsonPath::compile("$.n").unwrap().select(&doc), Some(Value::Null));
        assert!(JsonPath::compile("$.a.b").unwrap().is_singular());
    }

    #[test]
    fn names_say_where_a_value_or_a_list_sits() {
        let names = |p: &str| JsonPath::compile(p).unwrap().names();
        let list = |p: &str| JsonPath::compile(p).unwrap().list_names();
        assert_eq!(names("$.a['@b']"), Some(vec!["a".to_string(), "@b".to_string()]));
        assert_eq!(names("$.a[0]"), None);
        assert_eq!(list("$.value[*]"), Some(vec!["value".to_string()]));
        assert_eq!(list("$[*]"), Some(vec![]));
        assert_eq!(list("$.a['b c'][*]"), Some(vec!["a".to_string(), "b c".to_string()]));
        assert_eq!(list("$.a[*].b"), None);
        assert_eq!(list("$..a[*]"), None);
    }

    #[test]
    fn general_paths_yield_lists() {
        let doc = json!({"value": [{"id": 1}, {"id": 2}]});
        let path = JsonPath::compile("$.value[*].id").unwrap();
        assert!(!path.is_singular());
        assert_eq!(path.select(&doc), Some(json!([1, 2])));
        assert_eq!(path.query(&doc).len(), 2);
        let records = JsonPath::compile("$.value[*]").unwrap();
        assert_eq!(records.query(&doc), vec![&json!({"id": 1}), &json!({"id": 2})]);
    }

    #[test]
    fn documents_read_like_values() {
        let value = json!({
            "value": [{"id": 1, "tags": ["a", "b"]}, {"id": 2}],
            "obj": {"x": 1, "y": 2}, "n": null, "s": "text", "@next.link": "x"
        });
        let text = value.to_string();
        let doc = Doc::parse(text.as_bytes()).unwrap();
        for path in [
            "$.value[*]",
            "$.value[0].id",
            "$.value[-1]",
            "$.value[0].tags[1]",
            "$.obj[*]",
            "$.n[*]",
            "$.s[*]",
            "$.missing[*]",
            "$.value[*].id",
            "$.value[*].tags[*]",
            "$.value[*].tags[-1]",
            "$.value[*]['id']",
            "$[*]",
            "$..id",
            "$['@next.link']",
            "$.value[?@.id > 1]",
            "$.missing",
            "$.n",
        ] {
            let compiled = JsonPath::compile(path).unwrap();
            let ours: Vec<Value> = compiled.query_doc(&doc).iter().map(|hit| hit.to_value()).collect();
            let theirs: Vec<Value> = compiled.query(&value).into_iter().cloned().collect();
            assert_eq!(ours, theirs, "{path}");
            assert_eq!(compiled.first_doc(&doc).map(|hit| hit.to_value()), compiled.first(&value).cloned(), "{path}");
            assert_eq!(compiled.select_doc(&doc), compiled.select(&value), "{path}");
        }
        // Lists of records, and values under them, borrow from the document.
        for path in ["$.value[*]", "$.value[*].tags[*]"] {
            let hits = JsonPath::compile(path).unwrap().query_doc(&doc);
            assert!(!hits.is_empty() && hits.iter().all(|hit| matches!(hit, Cow::Borrowed(_))), "{path}");
        }
    }

    #[test]
    fn errors_are_one_line_with_an_offset() {
        let error = JsonPath::compile("$.mail[?(").unwrap_err();
        assert!(!error.message.contains('\n'), "{}", error.message);
        assert!(error.offset.is_some());
        let error = JsonPath::compile("mail").unwrap_err();
        assert_eq!(error.offset, Some(0));
    }
}
