//! What the sandbox serves for each resource, read from the spec: the path to answer on, where the records
//! sit in a page, how pages link (the spec's pagination kind), and how the incremental filter narrows the
//! records. The sandbox thus speaks exactly the dialect the spec expects, with no vendor knowledge.

use crate::expr::{Part, Template};
use crate::jsonpath::JsonPath;
use crate::model::{CursorFormat, Method, Paginate, Resource, Spec};
use regex::Regex;

/// How one resource's pages link to each other.
#[derive(Debug)]
pub enum Paging {
    /// Everything in one response.
    None,
    /// A next URL in the body at `names`; on every page, the last included, when `always`.
    NextUrl { names: Vec<String>, always: bool },
    /// A next URL in a `Link` header with this `rel`.
    LinkHeader { rel: String, always: bool },
    /// A token in the body; the client sends it back in `param`.
    Cursor { token: Vec<String>, param: String, has_more: Option<Vec<String>> },
    /// `param` is the index of the first record, `limit_param` the page size.
    Offset { param: String, limit_param: String, limit: usize, start: u64, total: Option<Vec<String>> },
    /// `param` is the page number, from `start`.
    PageNumber {
        param: String,
        start: u64,
        size_param: Option<String>,
        size: Option<usize>,
        total_pages: Option<Vec<String>>,
    },
}

/// The incremental filter, as a query parameter whose value is `prefix` + cursor + `suffix`.
#[derive(Debug)]
pub struct TimeFilter {
    pub param: String,
    pub prefix: String,
    pub suffix: String,
}

/// One resource's endpoint.
#[derive(Debug)]
pub struct Route {
    pub resource: String,
    pub method: &'static str,
    pattern: Regex,
    /// Where the list of records sits in a page (empty: the page is the list).
    pub list: Vec<String>,
    pub paging: Paging,
    /// The record's time, for incremental resources: records later than the sandbox's clock do not exist
    /// yet, and the filter compares it.
    pub time: Option<(JsonPath, CursorFormat)>,
    pub filter: Option<TimeFilter>,
    pub fan_out: bool,
}

impl Route {
    /// The values of the path's holes, joined by `/`, when `path` is this route's.
    pub fn matches(&self, method: &str, path: &str) -> Option<String> {
        if method != self.method {
            return None;
        }
        let captures = self.pattern.captures(path)?;
        let holes: Vec<String> = captures
            .iter()
            .skip(1)
            .flatten()
            .map(|m| percent_encoding::percent_decode_str(m.as_str()).decode_utf8_lossy().into_owned())
            .collect();
        Some(holes.join("/"))
    }
}

/// Every resource's route under the base URL path `base_path`.
pub fn routes(spec: &Spec, base_path: &str) -> Result<Vec<Route>, String> {
    spec.resources.iter().map(|r| route(r, base_path.trim_end_matches('/'))).collect()
}

fn route(resource: &Resource, base_path: &str) -> Result<Route, String> {
    let name = &resource.name;
    let list = resource.records.list_names().ok_or_else(|| {
        format!(
            "resource `{name}`: the sandbox serves records at a path of names ending in `[*]` (like `$.value[*]` \
             or `$[*]`), not `{}`",
            resource.records.source()
        )
    })?;
    let names = |path: &JsonPath, what: &str| {
        path.names().ok_or_else(|| {
            format!("resource `{name}`: the sandbox writes the {what} at a path of names only, not `{}`", path.source())
        })
    };
    let paging = match &resource.paginate {
        Paginate::None => Paging::None,
        Paginate::NextUrl { path, stop_on_empty_page, .. } => {
            Paging::NextUrl { names: names(path, "next URL")?, always: *stop_on_empty_page }
        }
        Paginate::LinkHeader { rel, stop_on_empty_page, .. } => {
            Paging::LinkHeader { rel: rel.clone(), always: *stop_on_empty_page }
        }
        Paginate::Cursor { token_path, param, has_more_path, .. } => Paging::Cursor {
            token: names(token_path, "page token")?,
            param: param.clone(),
            has_more: has_more_path.as_ref().map(|p| names(p, "has-more flag")).transpose()?,
        },
        Paginate::Offset { param, limit_param, limit, start, total_path, .. } => Paging::Offset {
            param: param.clone(),
            limit_param: limit_param.clone(),
            limit: *limit as usize,
            start: *start,
            total: total_path.as_ref().map(|p| names(p, "total")).transpose()?,
        },
        Paginate::PageNumber { param, start, size_param, size, total_pages_path, .. } => Paging::PageNumber {
            param: param.clone(),
            start: *start,
            size_param: size_param.clone(),
            size: size.map(|s| s as usize),
            total_pages: total_pages_path.as_ref().map(|p| names(p, "page count")).transpose()?,
        },
    };
    let incremental = resource.incremental.as_ref();
    Ok(Route {
        resource: name.clone(),
        method: match resource.request.method {
            Method::Get => "GET",
            Method::Post => "POST",
        },
        pattern: path_pattern(base_path, &resource.request.path)?,
        list,
        paging,
        time: incremental.map(|i| (i.cursor.clone(), i.format)),
        filter: incremental.and_then(|i| i.filter.as_ref()).and_then(|(param, template)| time_filter(param, template)),
        fan_out: resource.for_each.is_some(),
    })
}

/// The path template as a pattern: literal text as is, each hole one path segment.
fn path_pattern(base_path: &str, path: &Template) -> Result<Regex, String> {
    let mut pattern = format!("^{}", regex::escape(base_path));
    for part in path.parts() {
        match part {
            Part::Literal(text) => pattern.push_str(&regex::escape(text)),
            Part::Hole(_) => pattern.push_str("([^/]+)"),
        }
    }
    pattern.push('$');
    Regex::new(&pattern).map_err(|e| format!("path `{}`: {e}", path.source()))
}

/// A filter template of literal text around one `{cursor}` hole; other templates are not interpreted
/// (the client-side filter still applies).
fn time_filter(param: &str, template: &Template) -> Option<TimeFilter> {
    let (mut prefix, mut suffix, mut holes) = (String::new(), String::new(), 0);
    for part in template.parts() {
        match part {
            Part::Literal(text) if holes == 0 => prefix.push_str(text),
            Part::Literal(text) => suffix.push_str(text),
            Part::Hole(_) => holes += 1,
        }
    }
    (holes == 1 && template.variables() == ["cursor"]).then(|| TimeFilter { param: param.to_string(), prefix, suffix })
}

impl TimeFilter {
    /// The cursor in a filter value, in ms.
    pub fn cursor_ms(&self, value: &str, format: CursorFormat) -> Option<i64> {
        let text = value.strip_prefix(self.prefix.as_str())?.strip_suffix(self.suffix.as_str())?;
        time_ms(&serde_json::Value::String(text.to_string()), format)
    }
}

/// A record's time as the spec's cursor format writes it.
pub fn time_ms(value: &serde_json::Value, format: CursorFormat) -> Option<i64> {
    match (value, format) {
        (serde_json::Value::String(text), CursorFormat::Rfc3339 | CursorFormat::Rfc3339Millis) => {
            crate::expr::parse_timestamp_ms(text).ok()
        }
        (serde_json::Value::String(text), CursorFormat::UnixMs) => text.parse().ok(),
        (serde_json::Value::String(text), CursorFormat::UnixS) => text.parse::<i64>().ok().map(|s| s * 1000),
        (serde_json::Value::Number(n), CursorFormat::UnixS) => n.as_i64().map(|s| s * 1000),
        (serde_json::Value::Number(n), _) => n.as_i64(),
        _ => None,
    }
}
