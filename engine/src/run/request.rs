//! Builds the requests of a resource from its compiled templates: the URL (base URL, path with each hole
//! encoded as one path segment, query), headers and body, and the scope their holes read.
//!
//! Host safety does not rest on this module alone: the HTTP client refuses any origin the spec does not
//! allow, and a path hole can never add a segment or change the host because its value is encoded.

use crate::config::RunConfig;
use crate::expr::{self, Scope, Template, Value};
use crate::model::{Body, Incremental, Request as RequestSpec, Spec};
use url::Url;

/// The variables of a request template: `config.*`, the fan-out parent's fields, and `cursor`.
pub struct RequestScope<'a> {
    pub config: &'a dyn Scope,
    pub parent: Option<(&'a str, &'a serde_json::Value)>,
    pub cursor: Option<String>,
    pub now_ms: i64,
}

impl Scope for RequestScope<'_> {
    fn variable(&self, name: &str) -> Option<Value> {
        if name == "cursor" {
            return self.cursor.clone().map(Value::String);
        }
        if let Some((alias, record)) = self.parent
            && let Some(path) = name.strip_prefix(alias).and_then(|rest| rest.strip_prefix('.'))
        {
            let mut value = record;
            for part in path.split('.') {
                value = value.get(part)?;
            }
            return Some(expr::from_json(value));
        }
        self.config.variable(name)
    }

    fn now_ms(&self) -> i64 {
        self.now_ms
    }
}

/// Errors while rendering a request, said in terms of the spec.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

/// Renders a template whose value is text anywhere (headers, query values, bodies).
pub fn render_text(template: &Template, scope: &dyn Scope, what: &str) -> Result<String, RenderError> {
    let text = template
        .render(scope, &expr::encode_none)
        .map_err(|e| RenderError(format!("cannot render {what} `{}`: {}", template.source(), e.message)))?;
    if text.contains(['\r', '\n']) {
        return Err(RenderError(format!("{what} `{}` renders to text with a line break", template.source())));
    }
    Ok(text)
}

/// Renders a URL template (base URL, allowed hosts, token URL) and checks it is an absolute http(s) URL.
pub fn render_url(template: &Template, scope: &dyn Scope, what: &str) -> Result<Url, RenderError> {
    let text = render_text(template, scope, what)?;
    let url = Url::parse(&text).map_err(|e| RenderError(format!("{what} `{text}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(RenderError(format!("{what} `{text}` is not an absolute http(s) URL")));
    }
    Ok(url)
}

/// The first page's URL: base URL, then the path with every hole encoded as one segment, then the query.
pub fn first_url(
    spec: &Spec,
    base: &Url,
    request: &RequestSpec,
    scope: &dyn Scope,
    incremental: Option<(&Incremental, &str)>,
    query_overrides: &[(String, String)],
    query_removed: &[String],
) -> Result<Url, RenderError> {
    let _ = spec;
    let path = request
        .path
        .render_with(scope, &|value| expr::encode_path_segment_strict(value))
        .map_err(|e| RenderError(format!("cannot render path `{}`: {}", request.path.source(), e.message)))?;
    let mut text = base.as_str().trim_end_matches('/').to_string();
    text.push_str(&path);
    let mut url = Url::parse(&text).map_err(|e| RenderError(format!("request URL `{text}` is not valid: {e}")))?;
    if url.origin() != base.origin() {
        return Err(RenderError(format!("path `{}` would leave the base URL's host", request.path.source())));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, template) in &request.query {
        if query_removed.contains(name) || query_overrides.iter().any(|(n, _)| n == name) {
            continue;
        }
        pairs.push((name.clone(), render_text(template, scope, &format!("query parameter `{name}`"))?));
    }
    pairs.extend(query_overrides.iter().cloned());
    if let Some((param, template)) = incremental.and_then(|(i, _)| i.filter.as_ref())
        && !query_removed.contains(param)
    {
        pairs.push((param.clone(), render_text(template, scope, &format!("filter `{param}`"))?));
    }
    if !pairs.is_empty() {
        let mut query = url.query_pairs_mut();
        for (name, value) in &pairs {
            query.append_pair(name, value);
        }
    }
    Ok(url)
}

/// Default headers, then the request's own, all rendered.
pub fn headers(spec: &Spec, request: &RequestSpec, scope: &dyn Scope) -> Result<Vec<(String, String)>, RenderError> {
    spec.http
        .headers
        .iter()
        .chain(request.headers.iter())
        .map(|(name, template)| Ok((name.clone(), render_text(template, scope, &format!("header `{name}`"))?)))
        .collect()
}

/// A JSON body with its templates rendered.
pub fn body(body: &Body, scope: &dyn Scope) -> Result<serde_json::Value, RenderError> {
    Ok(match body {
        Body::Literal(value) => value.clone(),
        Body::Text(template) => serde_json::Value::String(render_text(template, scope, "body value")?),
        Body::List(items) => {
            serde_json::Value::Array(items.iter().map(|i| self::body(i, scope)).collect::<Result<_, _>>()?)
        }
        Body::Object(entries) => serde_json::Value::Object(
            entries.iter().map(|(k, v)| Ok((k.clone(), self::body(v, scope)?))).collect::<Result<_, RenderError>>()?,
        ),
    })
}

/// The rendered base URL and allowed origins of a run.
pub fn base_and_allowed(spec: &Spec, config: &RunConfig, now_ms: i64) -> Result<(Url, Vec<Url>), RenderError> {
    let scope = config.scope(now_ms);
    let base = render_url(&spec.http.base_url, &scope, "base URL")?;
    let allowed =
        spec.http.allowed_hosts.iter().map(|h| render_url(h, &scope, "allowed host")).collect::<Result<Vec<_>, _>>()?;
    Ok((base, allowed))
}
