//! The HTTP side of the sandbox: one handler that answers the token endpoint and every resource's route.

use super::data::{Fault, Reply, SandboxData};
use super::routes::{Paging, Route, time_ms};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One request the sandbox answered, as the request log keeps it: never a header or a body.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query, percent-decoded for reading.
    pub target: String,
    pub status: u16,
    /// What was served: `page 2: 100 records`, `fault: 429`, `token issued`...
    pub note: String,
}

impl std::fmt::Display for LoggedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {} ({})", self.method, self.target, self.status, self.note)
    }
}

/// Told about every request as it is answered.
pub type RequestCallback = Arc<dyn Fn(&LoggedRequest) + Send + Sync>;

/// What the sandbox checks a request's credentials against.
pub enum Expected {
    None,
    /// OAuth2 client credentials at this token path, in the form or, when `basic` holds the expected
    /// `Authorization` header, there; API calls carry one of the tokens issued.
    ClientCredentials {
        token_path: String,
        client_id: String,
        client_secret: SecretString,
        basic: Option<SecretString>,
    },
    /// This header with this value on every API call.
    Header {
        name: String,
        value: SecretString,
    },
    /// This query parameter with this value on every API call (redacted in the request log).
    Query {
        name: String,
        value: SecretString,
    },
}

/// One resource's records, ready to serve.
struct Collection {
    /// Each record's parent key (fan-out), time (incremental) and JSON text.
    records: Vec<(Option<String>, Option<i64>, String)>,
    page_size: usize,
    replies: Vec<Reply>,
    faults: Vec<Fault>,
}

pub struct State {
    origin: String,
    expected: Expected,
    routes: Vec<Route>,
    collections: HashMap<String, Collection>,
    page_size_param: Option<String>,
    page_token_param: String,
    select_param: Option<String>,
    unauthorized: Value,
    token_error: Value,
    now_ms: i64,
    issued: Mutex<Vec<String>>,
    fault_hits: Mutex<HashMap<(String, String, usize), u32>>,
    log: Arc<Mutex<Vec<LoggedRequest>>>,
    on_request: Option<RequestCallback>,
}

impl State {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        origin: String,
        expected: Expected,
        routes: Vec<Route>,
        data: &SandboxData,
        now_ms: i64,
        shift_ms: i64,
        log: Arc<Mutex<Vec<LoggedRequest>>>,
        on_request: Option<RequestCallback>,
    ) -> Result<State, String> {
        let mut collections = HashMap::new();
        for route in &routes {
            let Some(resource) = data.resources.get(&route.resource) else { continue };
            let mut records = Vec::with_capacity(resource.records.len());
            for (index, text) in resource.records.iter().enumerate() {
                let place = || {
                    let file = resource.file.as_ref().map_or_else(String::new, |f| f.display().to_string());
                    format!("{file}: record {}", index + 1)
                };
                if !route.fan_out && route.time.is_none() && shift_ms == 0 {
                    records.push((None, None, text.clone()));
                    continue;
                }
                let mut record: Value =
                    serde_json::from_str(text).map_err(|e| format!("{}: not a JSON value: {e}", place()))?;
                let parent = if route.fan_out {
                    let field = &resource.parent_field;
                    let key = record.as_object_mut().and_then(|o| o.remove(field)).ok_or_else(|| {
                        format!("{}: a record of fan-out resource `{}` needs `{field}`", place(), route.resource)
                    })?;
                    Some(match key {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                } else {
                    None
                };
                if shift_ms != 0 {
                    shift_times(&mut record, shift_ms);
                }
                let time = match &route.time {
                    Some((path, format)) => Some(
                        path.first(&record)
                            .and_then(|v| time_ms(v, *format))
                            .ok_or_else(|| format!("{}: `{}` is missing or not a time", place(), path.source()))?,
                    ),
                    None => None,
                };
                records.push((parent, time, record.to_string()));
            }
            collections.insert(
                route.resource.clone(),
                Collection {
                    records,
                    page_size: resource.page_size.unwrap_or(data.page_size).max(1),
                    replies: resource.replies.clone(),
                    faults: resource.faults.clone(),
                },
            );
        }
        for name in data.resources.keys() {
            if !routes.iter().any(|r| &r.resource == name) {
                return Err(format!("the sandbox has data for `{name}`, which is not a resource of the spec"));
            }
        }
        Ok(State {
            origin,
            expected,
            routes,
            collections,
            page_size_param: data.page_size_param.clone(),
            page_token_param: data.page_token_param.clone(),
            select_param: data.select_param.clone(),
            unauthorized: data.unauthorized.clone(),
            token_error: data.token_error.clone(),
            now_ms,
            issued: Mutex::new(Vec::new()),
            fault_hits: Mutex::new(HashMap::new()),
            log,
            on_request,
        })
    }

    fn record(&self, method: &Method, uri: &Uri, status: u16, note: String) {
        let mut target = uri.path().to_string();
        if let Some(query) = uri.query() {
            let pairs: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| match &self.expected {
                    Expected::Query { name: secret, .. } if *secret == name => format!("{name}=[redacted]"),
                    _ => format!("{name}={value}"),
                })
                .collect();
            target = format!("{target}?{}", pairs.join("&"));
        }
        let target = percent_encoding::percent_decode_str(&target).decode_utf8_lossy().into_owned();
        let entry = LoggedRequest { method: method.to_string(), target, status, note };
        if let Some(callback) = &self.on_request {
            callback(&entry);
        }
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
    }
}

/// Answers one request.
pub async fn handle(state: Arc<State>, method: Method, uri: Uri, headers: HeaderMap, body: bytes::Bytes) -> Response {
    let (status, note, response) = answer(&state, &method, &uri, &headers, &body);
    state.record(&method, &uri, status, note);
    response
}

fn answer(state: &State, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> (u16, String, Response) {
    let path = uri.path();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    if let Expected::ClientCredentials { token_path, client_id, client_secret, basic } = &state.expected
        && path == token_path
        && method == Method::POST
    {
        let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
        let credentials_ok = match basic {
            Some(expected) => {
                headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(expected.expose_secret())
            }
            None => {
                form.get("client_id").map(String::as_str) == Some(client_id.as_str())
                    && form.get("client_secret").map(String::as_str) == Some(client_secret.expose_secret())
            }
        };
        if form.get("grant_type").map(String::as_str) != Some("client_credentials") || !credentials_ok {
            return (401, "token refused: wrong client credentials".into(), json_reply(401, &state.token_error));
        }
        let mut issued = state.issued.lock().unwrap_or_else(|e| e.into_inner());
        let token = format!("sandbox-token-{}", issued.len() + 1);
        issued.push(token.clone());
        let reply = json!({"token_type": "Bearer", "expires_in": 3599, "access_token": token});
        return (200, "token issued".into(), json_reply(200, &reply));
    }
    let Some((route, parent)) = state.routes.iter().find_map(|r| r.matches(method.as_str(), path).map(|p| (r, p)))
    else {
        let reply = json!({"error": format!("no resource of the spec is served at {method} {path}")});
        return (404, "no such endpoint".into(), json_reply(404, &reply));
    };
    if !authorized(state, headers, &query) {
        return (401, "missing or wrong credentials".into(), json_reply(401, &state.unauthorized));
    }
    let Some(collection) = state.collections.get(&route.resource) else {
        return (200, "no records".into(), page_reply(state, route, uri, &query, &[], None, Vec::new(), false));
    };
    if let Some(reply) = collection.replies.iter().find(|r| query_matches(&r.when_query, &query)) {
        let mut response = json_reply(reply.status, &reply.body);
        for (name, value) in &reply.headers {
            if let (Ok(name), Ok(value)) = (name.parse::<header::HeaderName>(), HeaderValue::from_str(value)) {
                response.headers_mut().insert(name, value);
            }
        }
        return (reply.status, "canned reply".into(), response);
    }
    let param = |name: &str| param(&query, name);
    let cursor_ms = match (&route.filter, &route.time) {
        (Some(filter), Some((_, format))) => param(&filter.param).and_then(|v| filter.cursor_ms(v, *format)),
        _ => None,
    };
    let window = match page_window(state, route, collection, &query) {
        Ok(window) => window,
        Err(why) => return (400, why.clone(), json_reply(400, &json!({"error": why}))),
    };
    // One pass up to the end of the page: a page costs what comes before it, not the whole collection
    // (which is only counted when the paging kind reports a total).
    let mut visible = collection
        .records
        .iter()
        .filter(|(p, time, _)| {
            (!route.fan_out || p.as_deref() == Some(parent.as_str()))
                && time.is_none_or(|t| t <= state.now_ms && cursor_ms.is_none_or(|c| t >= c))
        })
        .map(|(_, _, record)| record.as_str());
    let before = visible.by_ref().take(window.offset).count();
    let page: Vec<&str> = visible.by_ref().take(window.size).collect();
    let after = if reports_total(&route.paging) { visible.count() } else { usize::from(visible.next().is_some()) };
    let page_number = window.offset.div_ceil(window.size.max(1)) + 1;
    if let Some(fault) = collection.faults.iter().find(|f| f.page == page_number) {
        let key = (route.resource.clone(), parent.clone(), page_number);
        let mut hits = state.fault_hits.lock().unwrap_or_else(|e| e.into_inner());
        let count = hits.entry(key).or_insert(0);
        if *count < fault.times {
            *count += 1;
            drop(hits);
            return fault_reply(state, route, uri, &query, &page, &window, fault, page_number);
        }
    }
    let select = state.select_param.as_deref().and_then(param);
    let records: Vec<Cow<str>> = page.iter().map(|r| project(r, select)).collect();
    let count = records.len();
    let end = window.offset + count;
    let next = (after > 0 || always_links(&route.paging)).then_some(end);
    let note = format!("page {page_number}: {count} records");
    let extra = totals(route, before + count + after, window.size);
    (200, note, page_reply(state, route, uri, &query, &records, next, extra, false))
}

/// The record with only the members `select` lists (comma-separated), or whole without a list.
fn project<'a>(record: &'a str, select: Option<&str>) -> Cow<'a, str> {
    let Some(list) = select else { return Cow::Borrowed(record) };
    match serde_json::from_str::<Value>(record) {
        Ok(Value::Object(members)) => {
            let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
            let kept: Map<String, Value> = members.into_iter().filter(|(k, _)| wanted.contains(&k.as_str())).collect();
            Cow::Owned(Value::Object(kept).to_string())
        }
        _ => Cow::Borrowed(record),
    }
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn authorized(state: &State, headers: &HeaderMap, query: &[(String, String)]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match &state.expected {
        Expected::None => true,
        Expected::ClientCredentials { .. } => {
            let issued = state.issued.lock().unwrap_or_else(|e| e.into_inner());
            header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|token| issued.iter().any(|t| t == token))
        }
        Expected::Header { name, value } => header(name) == Some(value.expose_secret()),
        Expected::Query { name, value } => param(query, name) == Some(value.expose_secret()),
    }
}

fn query_matches(when: &std::collections::BTreeMap<String, String>, query: &[(String, String)]) -> bool {
    when.iter().all(|(name, text)| query.iter().any(|(n, v)| n == name && v.contains(text.as_str())))
}

/// The records a request asks for: from `offset`, at most `size`.
struct Window {
    offset: usize,
    size: usize,
}

fn page_window(
    state: &State,
    route: &Route,
    collection: &Collection,
    query: &[(String, String)],
) -> Result<Window, String> {
    let param = |name: &str| param(query, name);
    let number = |name: &str| -> Result<Option<usize>, String> {
        param(name)
            .map(|v| v.parse::<usize>().map_err(|_| format!("`{name}` must be a whole number, not `{v}`")))
            .transpose()
    };
    // The client may ask for smaller pages than the sandbox serves, never for larger ones.
    let capped = |size: usize| match state.page_size_param.as_deref().map(number) {
        Some(Ok(Some(asked))) => Ok(asked.clamp(1, size)),
        Some(Err(e)) => Err(e),
        _ => Ok(size),
    };
    let token = |name: &str| param(name).map(|t| decode_token(t).ok_or_else(|| format!("invalid page token `{t}`")));
    Ok(match &route.paging {
        Paging::None => Window { offset: 0, size: usize::MAX },
        Paging::NextUrl { .. } | Paging::LinkHeader { .. } => Window {
            offset: token(&state.page_token_param).transpose()?.unwrap_or(0),
            size: capped(collection.page_size)?,
        },
        Paging::Cursor { param: name, .. } => {
            Window { offset: token(name).transpose()?.unwrap_or(0), size: capped(collection.page_size)? }
        }
        // Offset and page-number clients compute the next position themselves: serve the size they ask.
        Paging::Offset { param: name, limit_param, limit, start, .. } => {
            let at = number(name)?.unwrap_or(*start as usize);
            Window { offset: at.saturating_sub(*start as usize), size: number(limit_param)?.unwrap_or(*limit).max(1) }
        }
        Paging::PageNumber { param: name, start, size_param, size, .. } => {
            let size = match size_param {
                Some(p) => number(p)?.or(*size),
                None => *size,
            }
            .unwrap_or(collection.page_size)
            .max(1);
            let page = number(name)?.unwrap_or(*start as usize).saturating_sub(*start as usize);
            Window { offset: page * size, size }
        }
    })
}

fn always_links(paging: &Paging) -> bool {
    matches!(paging, Paging::NextUrl { always: true, .. } | Paging::LinkHeader { always: true, .. })
}

/// Whether pages of this kind carry a total (records or pages), which needs the whole collection counted.
fn reports_total(paging: &Paging) -> bool {
    matches!(paging, Paging::Offset { total: Some(_), .. } | Paging::PageNumber { total_pages: Some(_), .. })
}

/// Totals some paging kinds put in every page.
fn totals(route: &Route, count: usize, size: usize) -> Vec<(Vec<String>, Value)> {
    match &route.paging {
        Paging::Offset { total: Some(names), .. } => vec![(names.clone(), count.into())],
        Paging::PageNumber { total_pages: Some(names), .. } => {
            vec![(names.clone(), count.div_ceil(size.max(1)).into())]
        }
        _ => Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn fault_reply(
    state: &State,
    route: &Route,
    uri: &Uri,
    query: &[(String, String)],
    records: &[&str],
    window: &Window,
    fault: &Fault,
    page: usize,
) -> (u16, String, Response) {
    if let Some(status) = fault.status {
        let mut response = json_reply(status, &fault.body);
        let mut note = format!("fault on page {page}: {status}");
        if let Some(seconds) = fault.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            note.push_str(&format!(", Retry-After {seconds}"));
        }
        return (status, note, response);
    }
    if fault.empty_page {
        let response = page_reply(state, route, uri, query, &[], Some(window.offset), Vec::new(), true);
        return (200, format!("fault on page {page}: empty page with a next link"), response);
    }
    // Truncated: the declared length is the whole page's, the body stops halfway and the connection drops.
    let records: Vec<Cow<str>> = records.iter().map(|r| Cow::Borrowed(*r)).collect();
    let bytes = page_body(route, &records, Value::Object(Map::new())).into_bytes();
    let (parts, _) = json_reply(200, &Value::Null).into_parts();
    let half = bytes::Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
    let stream = cut_off_body(half);
    let mut response = Response::from_parts(parts, Body::from_stream(stream));
    response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    (200, format!("fault on page {page}: body cut off after {} of {} bytes", bytes.len() / 2, bytes.len()), response)
}

/// A body stream that yields `first`, then fails, so the server drops the connection mid-body.
fn cut_off_body(first: bytes::Bytes) -> impl futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    struct Cut(Option<bytes::Bytes>, bool);
    impl futures_core::Stream for Cut {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if let Some(first) = self.0.take() {
                return std::task::Poll::Ready(Some(Ok(first)));
            }
            if !self.1 {
                self.1 = true;
                return std::task::Poll::Ready(Some(Err(std::io::Error::other("body cut off"))));
            }
            std::task::Poll::Ready(None)
        }
    }
    Cut(Some(first), false)
}

/// A page: the records where the spec reads them, and the link to the record at `next`, if any (`detour`:
/// with a token of its own, for an extra page in between).
#[allow(clippy::too_many_arguments)]
fn page_reply(
    state: &State,
    route: &Route,
    uri: &Uri,
    query: &[(String, String)],
    records: &[Cow<str>],
    next: Option<usize>,
    extra: Vec<(Vec<String>, Value)>,
    detour: bool,
) -> Response {
    let token = |at: usize| if detour { encode_token_variant(at, 1) } else { encode_token(at) };
    let mut body = Value::Object(Map::new());
    for (names, value) in extra {
        set(&mut body, &names, value);
    }
    let mut link_header = None;
    match (&route.paging, next) {
        (Paging::NextUrl { names, .. }, Some(at)) => {
            set(&mut body, names, next_url(state, uri.path(), query, &state.page_token_param, &token(at)).into())
        }
        (Paging::LinkHeader { rel, .. }, Some(at)) => {
            let url = next_url(state, uri.path(), query, &state.page_token_param, &token(at));
            link_header = Some(format!("<{url}>; rel=\"{rel}\""));
        }
        (Paging::Cursor { token: token_names, has_more, .. }, next) => {
            set(&mut body, token_names, next.map_or(Value::Null, |at| token(at).into()));
            if let Some(names) = has_more {
                set(&mut body, names, next.is_some().into());
            }
        }
        _ => {}
    }
    let mut response = text_reply(200, page_body(route, records, body));
    if let Some(link) = link_header.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

fn next_url(state: &State, path: &str, query: &[(String, String)], token_param: &str, token: &str) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    // The credential is not repeated in links: the client adds its own.
    let secret = match &state.expected {
        Expected::Query { name, .. } => Some(name.as_str()),
        _ => None,
    };
    for (name, value) in query.iter().filter(|(n, _)| n != token_param && Some(n.as_str()) != secret) {
        serializer.append_pair(name, value);
    }
    serializer.append_pair(token_param, token);
    format!("{}{path}?{}", state.origin, serializer.finish())
}

/// Page tokens are opaque to the client: the offset, scrambled.
const TOKEN_KEY: u64 = 0x5a17_c0de_9e37_79b9;

fn encode_token(offset: usize) -> String {
    encode_token_variant(offset, 0)
}

/// Another token for the same offset (the top 16 bits differ), so a link to it is not a repeat.
fn encode_token_variant(offset: usize, variant: u16) -> String {
    format!("{:016x}", (offset as u64 & OFFSET_BITS | u64::from(variant) << 48) ^ TOKEN_KEY)
}

const OFFSET_BITS: u64 = (1 << 48) - 1;

fn decode_token(token: &str) -> Option<usize> {
    let raw = u64::from_str_radix(token, 16).ok().filter(|_| token.len() == 16)?;
    usize::try_from((raw ^ TOKEN_KEY) & OFFSET_BITS).ok()
}

/// The page's JSON text: `rest` with the records spliced in as text where the spec reads them, so records
/// are never parsed to be served.
fn page_body(route: &Route, records: &[Cow<str>], mut rest: Value) -> String {
    let mut list = String::with_capacity(records.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
    list.push('[');
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(record);
    }
    list.push(']');
    if route.list.is_empty() {
        return list;
    }
    const MARK: &str = "\u{0}records\u{0}";
    set(&mut rest, &route.list, Value::String(MARK.into()));
    let text = rest.to_string();
    text.replacen(&Value::String(MARK.into()).to_string(), &list, 1)
}

/// Writes `value` at the member path `names`, creating objects on the way.
fn set(body: &mut Value, names: &[String], value: Value) {
    let Some((last, path)) = names.split_last() else { return };
    let mut at = body;
    for name in path {
        let Some(object) = at.as_object_mut() else { return };
        at = object.entry(name.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
    if let Some(object) = at.as_object_mut() {
        object.insert(last.clone(), value);
    }
}

fn json_reply(status: u16, body: &Value) -> Response {
    text_reply(status, body.to_string())
}

fn text_reply(status: u16, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Moves every RFC 3339 time in `value` by `shift_ms`, keeping its number of fractional digits.
pub fn shift_times(value: &mut Value, shift_ms: i64) {
    match value {
        Value::String(text) => {
            if let Some(shifted) = shift_time(text, shift_ms) {
                *text = shifted;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| shift_times(v, shift_ms)),
        Value::Object(map) => map.values_mut().for_each(|v| shift_times(v, shift_ms)),
        _ => {}
    }
}

fn shift_time(text: &str, shift_ms: i64) -> Option<String> {
    let bytes = text.as_bytes();
    if !(20..=40).contains(&bytes.len()) || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        return None;
    }
    let at: jiff::Timestamp = text.parse().ok()?;
    let shifted = at.checked_add(jiff::SignedDuration::from_millis(shift_ms)).ok()?;
    let digits = text[19..].strip_prefix('.').map_or(0, |rest| rest.bytes().take_while(u8::is_ascii_digit).count());
    let seconds = shifted.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if digits == 0 {
        return Some(format!("{seconds}Z"));
    }
    let nanos = format!("{:09}", shifted.subsec_nanosecond());
    let fraction: String = nanos.chars().chain(std::iter::repeat('0')).take(digits).collect();
    Some(format!("{seconds}.{fraction}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_shift_and_keep_their_precision() {
        assert_eq!(shift_time("2025-01-01T00:00:00Z", 86_400_000).as_deref(), Some("2025-01-02T00:00:00Z"));
        assert_eq!(shift_time("2025-01-01T00:00:00.1234567Z", 1_000).as_deref(), Some("2025-01-01T00:00:01.1234567Z"));
        assert_eq!(shift_time("2025-01-01T01:00:00.5+01:00", 0).as_deref(), Some("2025-01-01T00:00:00.5Z"));
        assert_eq!(shift_time("not a time at all, really", 1), None);
        let mut record = json!({"a": ["2025-01-01T00:00:00Z", 3], "b": {"c": "2025-01-01T00:00:00.000Z"}});
        shift_times(&mut record, -1);
        assert_eq!(record, json!({"a": ["2024-12-31T23:59:59Z", 3], "b": {"c": "2024-12-31T23:59:59.999Z"}}));
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        for offset in [0, 1, 999, 1_000_000] {
            assert_eq!(decode_token(&encode_token(offset)), Some(offset));
            assert_eq!(decode_token(&encode_token_variant(offset, 1)), Some(offset));
            assert_ne!(encode_token_variant(offset, 1), encode_token(offset));
        }
        assert_eq!(decode_token("xyz"), None);
        assert_eq!(decode_token("12"), None);
    }

    #[test]
    fn members_are_set_where_the_spec_reads_them() {
        let mut body = json!({"value": [1]});
        set(&mut body, &["meta".to_string(), "next".to_string()], json!("t"));
        assert_eq!(body, json!({"value": [1], "meta": {"next": "t"}}));
    }

    #[test]
    fn projection_keeps_the_listed_members() {
        assert_eq!(project(r#"{"a":1,"b":2,"c":3}"#, Some("a, c")), r#"{"a":1,"c":3}"#);
        assert_eq!(project(r#"{"a":1}"#, None), r#"{"a":1}"#);
    }
}
