//! `RawSpec`: the spec exactly as written, one serde type per YAML construct. Doc comments here become the
//! descriptions of `schemas/spec.schema.json`, so they are written for spec authors.
//!
//! Nothing here is checked beyond shape: JSONPaths, expressions, templates, durations and references stay
//! text (with their spans) until `validate` compiles them into a `Spec`. That way one run of
//! `engine validate` reports every problem instead of the first.

use crate::source::de::Sp;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A connector spec: what an operator configures, how to talk to the API, which resources to read, how
/// records become shapes, and which indicators to compute from them.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    /// Version of the spec format. Only `1` exists.
    pub spec_version: Sp<u32>,
    /// Connector id in lower snake or kebab case, e.g. `acme-directory`. Stored with every row.
    pub id: Sp<String>,
    /// Human name of the connector.
    pub title: String,
    /// One line saying what the connector brings.
    #[serde(default)]
    pub tagline: Option<String>,
    /// Longer description (Markdown).
    #[serde(default)]
    pub description: Option<String>,
    /// Kind of system, e.g. `identity`, `endpoint`, `ticketing`.
    #[serde(default)]
    pub source_type: Option<String>,
    /// The vendor's API documentation.
    #[serde(default)]
    pub docs_url: Option<String>,
    /// Default schedule: `hourly`, `daily`, `weekly`, or a duration such as `6h`.
    #[serde(default)]
    pub schedule: Option<Sp<String>>,
    /// Steps an operator follows to obtain credentials (Markdown, one step per item).
    #[serde(default)]
    pub setup: Vec<String>,
    /// Known limitations worth stating in the connector's documentation.
    #[serde(default)]
    pub limitations: Vec<String>,
    /// The resource whose first page proves that credentials and connectivity work.
    #[serde(default)]
    pub connection_test: Option<Sp<String>>,
    /// Settings an operator provides, checked before any request.
    #[serde(default)]
    pub config: Items<RawConfigField>,
    /// How to reach and authenticate against the API.
    pub http: RawHttp,
    /// The API collections to read, each mapped into shapes.
    pub resources: Items<RawResource>,
    /// Key risk indicators computed from the stored shapes.
    #[serde(default)]
    pub kris: Items<RawIndicator>,
    /// Dashboard metrics, computed like indicators (bands optional).
    #[serde(default)]
    pub metrics: Items<RawIndicator>,
    /// Items that failed to load (`resources.users`, `config.tenant_id`), already reported. Later checks
    /// skip references to them, so one broken item does not bring a cascade of follow-on errors.
    #[serde(skip)]
    #[schemars(skip)]
    pub broken: std::collections::BTreeSet<String>,
}

/// The top-level keys of a spec, in the order the loader reads them.
pub const SPEC_KEYS: &[&str] = &[
    "spec_version",
    "id",
    "title",
    "tagline",
    "description",
    "source_type",
    "docs_url",
    "schedule",
    "setup",
    "limitations",
    "connection_test",
    "config",
    "http",
    "resources",
    "kris",
    "metrics",
];

// ---------------------------------------------------------------------------------------------------------
// Config

/// One operator setting.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfigField {
    /// Value type. `secret` values never appear in logs, errors or the store, and config files must give
    /// them as `{ env: NAME }` or `{ file: PATH }`.
    #[serde(rename = "type")]
    pub kind: Sp<ConfigType>,
    /// What the setting means, for the generated documentation.
    #[serde(default)]
    pub description: Option<String>,
    /// Whether the operator must give a value (a field with a default never needs one).
    #[serde(default)]
    pub required: bool,
    /// Literal default value.
    #[serde(default)]
    pub default: Option<Sp<serde_json::Value>>,
    /// Default computed from other settings, e.g.
    /// `switch(config.cloud, "china", "https://api.example.cn", "https://api.example.com")`.
    #[serde(default)]
    pub default_expr: Option<Sp<String>>,
    /// Regular expression the whole text must match (strings, urls, list items).
    #[serde(default)]
    pub pattern: Option<Sp<String>>,
    /// Smallest allowed value (integers and numbers).
    #[serde(default)]
    pub minimum: Option<Sp<f64>>,
    /// Largest allowed value (integers and numbers).
    #[serde(default)]
    pub maximum: Option<Sp<f64>>,
    /// Allowed values (`enum` fields, and `list` items of type `enum`).
    #[serde(default)]
    pub values: Vec<Sp<String>>,
    /// Item type of a `list`.
    #[serde(default)]
    pub items: Option<Sp<ConfigType>>,
    /// When true, this list names the resources to sync; its values must be resource names.
    #[serde(default)]
    pub selects_resources: bool,
    /// An example value for the documentation.
    #[serde(default)]
    pub example: Option<serde_json::Value>,
}

/// Type of a config value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigType {
    String,
    Integer,
    Number,
    Boolean,
    /// An absolute http(s) URL.
    Url,
    /// A credential, never printed or stored.
    Secret,
    List,
    /// One of `values`.
    Enum,
}

// ---------------------------------------------------------------------------------------------------------
// HTTP

/// Connection settings shared by every request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Template of the API root, e.g. `"{config.api_base_url}"`. Resource paths are appended to it.
    pub base_url: Sp<String>,
    /// Further origins (templates such as `"https://{config.domain}"`) that may receive credentials.
    /// The base URL's origin is always allowed; a next link anywhere else is refused.
    #[serde(default)]
    pub allowed_hosts: Vec<Sp<String>>,
    /// Headers sent with every request (templates).
    #[serde(default)]
    pub headers: Items<Sp<String>>,
    /// Time allowed for one request, e.g. `60s`.
    #[serde(default)]
    pub timeout: Option<Sp<String>>,
    /// How requests are authenticated.
    #[serde(default)]
    pub auth: Option<RawAuth>,
    /// When and how failed requests are retried.
    #[serde(default)]
    pub retry: Option<RawRetry>,
    /// Named request budgets (client-side rate limits) that resources opt into with `budget:`.
    #[serde(default)]
    pub budgets: Items<RawBudget>,
    /// JSONPath to the machine-readable error code in an error body, e.g. `$.error.code`; used by
    /// `on_status` rules and in messages.
    #[serde(default)]
    pub error_code_path: Option<Sp<String>>,
}

/// Authentication scheme. Write the kind as the only key, e.g. `auth: { bearer: { token: ... } }`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawAuth {
    /// No authentication.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(RawBearer),
    /// A key in a header or a query parameter, e.g. `Authorization: SSWS <token>`.
    ApiKey(RawApiKey),
    /// HTTP basic authentication.
    Basic(RawBasic),
    /// OAuth 2.0 client credentials: one token per run, cached until shortly before it expires.
    Oauth2ClientCredentials(RawOAuth2),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBearer {
    /// Template of the token, normally `"{config.<secret field>}"`.
    pub token: Sp<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    /// Where the key goes.
    #[serde(rename = "in", default)]
    pub location: KeyLocation,
    /// Header or query parameter name.
    pub name: Sp<String>,
    /// Template of the value, e.g. `"SSWS {config.api_token}"`.
    pub value: Sp<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    #[default]
    Header,
    Query,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBasic {
    pub username: Sp<String>,
    pub password: Sp<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2 {
    /// Template of the token endpoint. Its origin receives the client secret and nothing else.
    pub token_url: Sp<String>,
    pub client_id: Sp<String>,
    pub client_secret: Sp<String>,
    /// Template of the requested scope.
    #[serde(default)]
    pub scope: Option<Sp<String>>,
    /// Send the client credentials in the form body (default) or as HTTP basic authentication.
    #[serde(default)]
    pub credentials_in: CredentialsIn,
    /// Refresh the token this long before it expires, e.g. `5m`.
    #[serde(default)]
    pub refresh_before: Option<Sp<String>>,
    /// How to explain token endpoint errors.
    #[serde(default)]
    pub errors: Option<RawTokenErrors>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsIn {
    #[default]
    Body,
    BasicAuth,
}

/// Explanations for token endpoint errors, chosen by the codes the endpoint returns.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTokenErrors {
    /// JSONPaths to the error codes in the error body, tried in order, e.g. `$.error_codes[*]`, `$.error`.
    pub code_paths: Vec<Sp<String>>,
    /// Explanation per code, e.g. `"7000215": "the client secret is wrong"`.
    pub messages: Items<String>,
}

/// Retry policy for transient failures.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Statuses worth retrying. Default: 429, 500, 502, 503, 504.
    #[serde(default)]
    pub statuses: Option<Vec<Sp<u16>>>,
    /// Attempts per request, the first included. Default 5.
    #[serde(default)]
    pub max_attempts: Option<Sp<u32>>,
    /// Whether to wait as long as a `Retry-After` header says. Default `honor`.
    #[serde(default)]
    pub retry_after: RetryAfter,
    /// Longest wait accepted from `Retry-After`, e.g. `10m`; longer waits fail the request.
    #[serde(default)]
    pub max_retry_after: Option<Sp<String>>,
    /// Exponential backoff used when no `Retry-After` is given.
    #[serde(default)]
    pub backoff: Option<RawBackoff>,
    /// Retry timeouts and connection resets too. Default true.
    #[serde(default = "yes")]
    pub on_network_error: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfter {
    #[default]
    Honor,
    Ignore,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackoff {
    /// First wait, e.g. `1s`.
    #[serde(default)]
    pub initial: Option<Sp<String>>,
    /// Longest wait, e.g. `60s`.
    #[serde(default)]
    pub max: Option<Sp<String>>,
    /// Growth factor between waits. Default 2.
    #[serde(default)]
    pub multiplier: Option<Sp<f64>>,
    /// Randomise each wait between half and all of it. Default true.
    #[serde(default = "yes")]
    pub jitter: bool,
}

/// A client-side rate limit: at most `requests` requests in any window of `per`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub requests: Sp<u32>,
    /// Window length, e.g. `10s`.
    pub per: Sp<String>,
    /// Why this budget exists, for the documentation.
    #[serde(default)]
    pub description: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------
// Resources

/// One API collection: how to request it, page through it, sync it incrementally, and map its records.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawResource {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Permissions the credentials need for this resource (documentation and `engine check`).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Licence or edition the API requires, if any.
    #[serde(default)]
    pub licence: Option<String>,
    /// Name of a rate budget from `http.budgets` shared by every request of this resource.
    #[serde(default)]
    pub budget: Option<Sp<String>>,
    /// Fan-out: one request chain per record of another resource, which is read first.
    #[serde(default)]
    pub for_each: Option<RawForEach>,
    pub request: RawRequest,
    /// JSONPath selecting the records in a response body, e.g. `$.items[*]`.
    pub records: Sp<String>,
    /// How to get the next page. Default: no paging.
    #[serde(default)]
    pub paginate: Option<RawPaginate>,
    /// Incremental sync on a time cursor. Without it every run is a full sync.
    #[serde(default)]
    pub incremental: Option<RawIncremental>,
    /// What to do on particular HTTP statuses, first matching rule wins.
    #[serde(default)]
    pub on_status: Vec<RawStatusRule>,
    /// Shapes produced from each record.
    #[serde(default)]
    pub emit: Vec<RawEmit>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawForEach {
    /// The parent resource.
    pub resource: Sp<String>,
    /// Name under which the parent record's fields are available, e.g. `group` gives `{group.id}`.
    #[serde(rename = "as")]
    pub alias: Sp<String>,
    /// Only parents for which this expression is true.
    #[serde(rename = "where", default)]
    pub filter: Option<Sp<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    /// HTTP method. Default GET.
    #[serde(default)]
    pub method: Method,
    /// Path template appended to the base URL; must start with `/`. Hole values are encoded as one
    /// path segment, so they cannot change the host or add path segments.
    pub path: Sp<String>,
    /// Query parameters (templates). Values are encoded as query values.
    #[serde(default)]
    pub query: Items<Sp<String>>,
    /// Extra headers (templates), sent on every page.
    #[serde(default)]
    pub headers: Items<Sp<String>>,
    /// JSON body for POST; string values are templates.
    #[serde(default)]
    pub body: Option<Sp<serde_json::Value>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Post,
}

/// Pagination kind. Write the kind as the only key, e.g. `paginate: { next_url: { path: "$.next" } }`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawPaginate {
    /// A single page.
    None,
    /// The body carries the absolute URL of the next page (e.g. `$['@next.link']`), followed as is.
    NextUrl(RawNextUrl),
    /// An RFC 8288 `Link` header with `rel="next"`.
    LinkHeader(RawLinkHeader),
    /// The body carries an opaque token sent back as a query parameter.
    Cursor(RawCursorPaging),
    /// `offset` and `limit` query parameters.
    Offset(RawOffsetPaging),
    /// A page number query parameter.
    PageNumber(RawPageNumberPaging),
}

/// Settings every pagination kind shares. They are repeated in each kind so each reads on its own.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNextUrl {
    /// JSONPath to the next URL; no value or an empty one ends the paging.
    pub path: Sp<String>,
    /// Guard against endless paging. Default 100000.
    #[serde(default)]
    pub max_pages: Option<Sp<u32>>,
    /// Stop at the first page without records even when it has a next link. Default false: some APIs
    /// send empty pages mid-stream.
    #[serde(default)]
    pub stop_on_empty_page: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLinkHeader {
    /// Link relation to follow. Default `next`.
    #[serde(default)]
    pub rel: Option<String>,
    #[serde(default)]
    pub max_pages: Option<Sp<u32>>,
    #[serde(default)]
    pub stop_on_empty_page: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCursorPaging {
    /// JSONPath to the token for the next page; missing, null or empty ends the paging.
    pub token_path: Sp<String>,
    /// Query parameter that carries the token.
    pub param: Sp<String>,
    /// Optional JSONPath to a boolean that says whether more pages exist.
    #[serde(default)]
    pub has_more_path: Option<Sp<String>>,
    #[serde(default)]
    pub max_pages: Option<Sp<u32>>,
    #[serde(default)]
    pub stop_on_empty_page: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOffsetPaging {
    /// Query parameter for the offset. Default `offset`.
    #[serde(default)]
    pub param: Option<Sp<String>>,
    /// Query parameter for the page size. Default `limit`.
    #[serde(default)]
    pub limit_param: Option<Sp<String>>,
    /// Page size requested.
    pub limit: Sp<u32>,
    /// First offset. Default 0.
    #[serde(default)]
    pub start: u64,
    /// Optional JSONPath to the total number of records.
    #[serde(default)]
    pub total_path: Option<Sp<String>>,
    #[serde(default)]
    pub max_pages: Option<Sp<u32>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPageNumberPaging {
    /// Query parameter for the page number. Default `page`.
    #[serde(default)]
    pub param: Option<Sp<String>>,
    /// First page number. Default 1.
    #[serde(default)]
    pub start: Option<u64>,
    /// Query parameter for the page size, if the API takes one.
    #[serde(default)]
    pub size_param: Option<Sp<String>>,
    /// Page size requested (and expected: a shorter page ends the paging).
    #[serde(default)]
    pub size: Option<Sp<u32>>,
    /// Optional JSONPath to the number of pages.
    #[serde(default)]
    pub total_pages_path: Option<Sp<String>>,
    #[serde(default)]
    pub max_pages: Option<Sp<u32>>,
}

/// Incremental sync on a time cursor taken from the records.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIncremental {
    /// JSONPath to the record's timestamp, e.g. `$.createdAt`.
    pub cursor: Sp<String>,
    /// Expression for the first run's start in unix ms, e.g. `now() - days(config.lookback_days)`.
    pub initial: Sp<String>,
    /// Re-read this much before the saved cursor to catch late arrivals, e.g. `15m` (events are
    /// deduplicated by key, so nothing is stored twice).
    #[serde(default)]
    pub lookback: Option<Sp<String>>,
    /// Never start earlier than this before now (the API's retention), e.g. `29d23h`.
    #[serde(default)]
    pub max_age: Option<Sp<String>>,
    /// How `{cursor}` is written in templates. Default `rfc3339` (seconds, `Z`).
    #[serde(default)]
    pub format: CursorFormat,
    /// Server-side filter: a query parameter whose template uses `{cursor}`.
    #[serde(default)]
    pub filter: Option<RawServerFilter>,
    /// Drop records before the window start on the client as well, for APIs that ignore or round the
    /// server-side filter. The first run's window includes its start; later windows start at the saved
    /// cursor minus `lookback`, and without lookback a record exactly at the saved cursor is not read again.
    /// Default true.
    #[serde(default = "yes")]
    pub client_filter: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CursorFormat {
    /// `2025-06-30T12:00:00Z`
    #[default]
    Rfc3339,
    /// `2025-06-30T12:00:00.123Z`
    Rfc3339Millis,
    UnixMs,
    UnixS,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServerFilter {
    /// Query parameter, e.g. `filter` or `since`.
    pub param: Sp<String>,
    /// Template of its value, e.g. `"createdAt ge {cursor}"` or `"{cursor}"`.
    pub template: Sp<String>,
}

/// What to do when a response has one of `status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStatusRule {
    /// One status or a list, e.g. `403` or `[403, 404]`.
    pub status: StatusList,
    /// Only when the error body's code (see `http.error_code_path`) equals this.
    #[serde(default)]
    pub error_code: Option<Sp<String>>,
    pub action: Sp<StatusAction>,
    /// Warning shown and recorded in the run report.
    #[serde(default)]
    pub message: Option<String>,
    /// For `action: fallback`: how the request changes for the retry.
    #[serde(default)]
    pub fallback: Option<RawFallbackRequest>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusAction {
    /// Fail the resource and the run.
    Fail,
    /// Retry with the retry policy.
    Retry,
    /// The resource is not available to these credentials or this licence: record it, warn, go on.
    NotApplicable,
    /// Repeat the request changed as `fallback` says, warn, and mark the resource degraded.
    Fallback,
    /// Treat the response as an empty last page.
    Skip,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFallbackRequest {
    /// Query parameters to set (templates), replacing values of the same name.
    #[serde(default)]
    pub query: Items<Sp<String>>,
    /// Query parameters to drop.
    #[serde(default)]
    pub remove_query: Vec<Sp<String>>,
}

// ---------------------------------------------------------------------------------------------------------
// Emitting shapes

/// One shape produced from each record. Write the shape as the only key, e.g. `- entity: { ... }`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawEmit {
    /// A thing with an identity, replaced on every full sync: (type, id) → attributes.
    Entity(RawEntityEmit),
    /// Something that happened: (name, key) → start, end, attributes. Deduplicated by key.
    Event(RawEventEmit),
    /// A number at a time: (name, ts, attributes) → value.
    Metric(RawMetricEmit),
    /// A relation between two entities: (from, kind, to) → attributes.
    Edge(RawEdgeEmit),
    /// A histogram or summary at a time.
    Distribution(RawDistributionEmit),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEntityEmit {
    /// Entity type, lower snake case, e.g. `acme_user`.
    #[serde(rename = "type")]
    pub kind: Sp<String>,
    /// The entity's id.
    pub id: FieldMap,
    /// Emit only for records where this expression (over the attributes) is true.
    #[serde(default)]
    pub when: Option<Sp<String>>,
    #[serde(default)]
    pub attributes: Items<FieldMap>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEventEmit {
    /// Event name, lower snake case.
    pub name: Sp<String>,
    /// Deduplication key, unique per event.
    pub key: FieldMap,
    /// Start time; give `transform: unix_ms` for ISO-8601 text.
    pub start: FieldMap,
    #[serde(default)]
    pub end: Option<FieldMap>,
    #[serde(default)]
    pub when: Option<Sp<String>>,
    #[serde(default)]
    pub attributes: Items<FieldMap>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMetricEmit {
    pub name: Sp<String>,
    /// Observation time in unix ms. Default: the run's clock.
    #[serde(default)]
    pub ts: Option<FieldMap>,
    pub value: FieldMap,
    #[serde(default)]
    pub when: Option<Sp<String>>,
    #[serde(default)]
    pub attributes: Items<FieldMap>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEdgeEmit {
    pub from: RawEndpoint,
    /// Relation name, lower snake case, e.g. `has_member`.
    pub kind: Sp<String>,
    pub to: RawEndpoint,
    #[serde(default)]
    pub when: Option<Sp<String>>,
    #[serde(default)]
    pub attributes: Items<FieldMap>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Entity type of this end.
    #[serde(rename = "type")]
    pub kind: Sp<String>,
    pub id: FieldMap,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDistributionEmit {
    pub name: Sp<String>,
    #[serde(default)]
    pub ts: Option<FieldMap>,
    /// Histogram buckets (a list of `{le, count}`) or summary quantiles (a list of `{quantile, value}`).
    pub kind: Sp<DistributionKind>,
    /// The buckets or quantiles list.
    pub points: FieldMap,
    pub count: FieldMap,
    pub sum: FieldMap,
    #[serde(default)]
    pub when: Option<Sp<String>>,
    #[serde(default)]
    pub attributes: Items<FieldMap>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DistributionKind {
    Histogram,
    Summary,
}

/// Where a value comes from. A plain string is a JSONPath into the record (`"$.name"`); a mapping takes
/// exactly one of `path`, `template`, `expr`, `value`, plus optional `transform`, `default`, `missing`.
#[derive(Debug, Default)]
pub struct FieldMap {
    pub path: Option<Sp<String>>,
    pub template: Option<Sp<String>>,
    pub expr: Option<Sp<String>>,
    pub value: Option<Sp<serde_json::Value>>,
    pub transform: Vec<Transform>,
    pub default: Option<Sp<serde_json::Value>>,
    pub missing: MissingPolicy,
    pub description: Option<String>,
    /// Where the whole mapping is written.
    pub span: crate::diag::Span,
}

/// The long form of [`FieldMap`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FieldMapLong {
    /// JSONPath into the record, e.g. `$.profile.email`. A path that can match several values (wildcards,
    /// filters) yields a list.
    #[serde(default)]
    path: Option<Sp<String>>,
    /// Text with `{expression}` holes, e.g. `"{group.id}"` for a fan-out parent's id.
    #[serde(default)]
    template: Option<Sp<String>>,
    /// Expression over attributes mapped by `path`/`template`/`value` in the same emit, fan-out parents
    /// and config, e.g. `if(errorCode == 0, "success", "failure")`.
    #[serde(default)]
    expr: Option<Sp<String>>,
    /// A constant.
    #[serde(default)]
    value: Option<Sp<serde_json::Value>>,
    /// Conversions applied in order, e.g. `unix_ms` or `[trim, lowercase]`.
    #[serde(default)]
    transform: OneOrMany<Transform>,
    /// Value used when the source is missing or null.
    #[serde(default)]
    default: Option<Sp<serde_json::Value>>,
    /// What a missing value means when there is no default. Default `null`.
    #[serde(default)]
    missing: MissingPolicy,
    /// What the field means, for the documentation.
    #[serde(default)]
    description: Option<String>,
}

/// A value conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// ISO-8601 / RFC 3339 text (0–9 fraction digits) to unix milliseconds, floored.
    UnixMs,
    /// ISO-8601 / RFC 3339 text to unix seconds, floored.
    UnixS,
    Lowercase,
    Uppercase,
    Trim,
    /// Any scalar to text.
    String,
    /// Numbers and numeric text to an integer (truncated).
    Integer,
    /// Numbers and numeric text to a number.
    Number,
    /// `true`/`false` (also as text) to a boolean.
    Boolean,
    /// Length of a list or text.
    Length,
    /// First item of a list.
    First,
    /// Empty text or an empty list becomes missing.
    EmptyAsMissing,
}

/// What a value that is missing (or null) turns into. Expressions see both as the empty value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Store an explicit null, so every row of a type has the same attributes.
    #[default]
    Null,
    /// Leave the attribute out.
    Omit,
    /// Do not emit this shape for the record, and count it as skipped.
    SkipRecord,
    /// Fail the resource.
    Error,
}

// ---------------------------------------------------------------------------------------------------------
// Indicators

/// A KRI or metric: named aggregates over stored shapes, then a formula.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawIndicator {
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub unit: Option<Unit>,
    #[serde(default)]
    pub direction: Option<Direction>,
    /// Named aggregates the formula reads.
    #[serde(rename = "let", default)]
    pub lets: Items<RawAggregate>,
    /// Formula over the aggregates, e.g. `percent(enrolled, enabled, 1)`.
    pub value: Sp<String>,
    /// Thresholds; a value that meets neither is red.
    #[serde(default)]
    pub bands: Option<RawBands>,
    /// The aggregate whose matching rows are the evidence behind the number.
    #[serde(default)]
    pub evidence: Option<Sp<String>>,
    /// Most evidence ids kept (the count is always kept). Default 50.
    #[serde(default)]
    pub evidence_limit: Option<u32>,
    /// What to report when a resource this indicator reads was not available in the run.
    #[serde(default)]
    pub when_unavailable: Vec<RawFallback>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Percent,
    Count,
    Ratio,
    Seconds,
    Days,
    Number,
}

impl Unit {
    /// The unit as the spec writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Percent => "percent",
            Unit::Count => "count",
            Unit::Ratio => "ratio",
            Unit::Seconds => "seconds",
            Unit::Days => "days",
            Unit::Number => "number",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

/// Band thresholds as comparisons, e.g. `">= 95"`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBands {
    pub green: Sp<String>,
    #[serde(default)]
    pub amber: Option<Sp<String>>,
}

/// One aggregate. Give exactly one of `count`, `count_distinct`, `sum`, `min`, `max`, `latest`, naming the
/// rows as `<shape>.<type>`, e.g. `entity.acme_user` or `event.acme_login`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAggregate {
    #[serde(default)]
    pub count: Option<Sp<String>>,
    #[serde(default)]
    pub count_distinct: Option<Sp<String>>,
    #[serde(default)]
    pub sum: Option<Sp<String>>,
    #[serde(default)]
    pub min: Option<Sp<String>>,
    #[serde(default)]
    pub max: Option<Sp<String>>,
    /// The field of the most recent row (by `updated_at`, `start` or `ts`).
    #[serde(default)]
    pub latest: Option<Sp<String>>,
    /// The field aggregated (all but `count`).
    #[serde(default)]
    pub field: Option<Sp<String>>,
    /// Predicate over the row, e.g. `accountEnabled == true && lookup("acme_mfa", id, "enrolled") == true`.
    #[serde(rename = "where", default)]
    pub filter: Option<Sp<String>>,
    /// Only rows whose time field lies in `[now - last, now]`, both ends included.
    #[serde(default)]
    pub window: Option<RawWindow>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// Time field in unix ms: `start`, `ts`, `updated_at` or an attribute. Default: the shape's own time.
    #[serde(default)]
    pub field: Option<Sp<String>>,
    /// Window length, e.g. `24h`.
    pub last: Sp<String>,
}

/// A fallback stated as data: when `resource` ended with one of `on`, report this instead.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    pub resource: Sp<String>,
    /// Outcomes that trigger the fallback. Default: `not_applicable` and `failed`.
    #[serde(default)]
    pub on: Vec<ResourceOutcome>,
    /// Formula used instead of `value` (over the same aggregates). Default: the usual formula.
    #[serde(default)]
    pub value: Option<Sp<String>>,
    /// Status reported. Default `degraded`.
    #[serde(default)]
    pub status: FallbackStatus,
    /// Why, in words an operator understands.
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceOutcome {
    NotApplicable,
    Degraded,
    Failed,
    Skipped,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FallbackStatus {
    #[default]
    Degraded,
    NotApplicable,
    Error,
}

// ---------------------------------------------------------------------------------------------------------
// Small building blocks

/// A mapping whose keys are names, in the order written, each key with its span.
#[derive(Debug)]
pub struct Items<T>(pub Vec<(Sp<String>, T)>);

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items(Vec::new())
    }
}

impl<T> Items<T> {
    pub fn iter(&self) -> impl Iterator<Item = (&Sp<String>, &T)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    pub fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k.value == name).map(|(_, v)| v)
    }
    pub fn key(&self, name: &str) -> Option<&Sp<String>> {
        self.0.iter().find(|(k, _)| k.value == name).map(|(k, _)| k)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.value.as_str())
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Items<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemsVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ItemsVisitor<T> {
            type Value = Items<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names to items")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Items<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(key) = map.next_key::<Sp<String>>()? {
                    items.push((key, map.next_value()?));
                }
                Ok(Items(items))
            }
            fn visit_unit<E>(self) -> Result<Items<T>, E> {
                Ok(Items(Vec::new()))
            }
        }
        deserializer.deserialize_map(ItemsVisitor(std::marker::PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Items<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("Items_{}", T::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "object", "additionalProperties": generator.subschema_for::<T>() })
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A list that may also be written as its single item.
#[derive(Debug)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrManyVisitor<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("one value or a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(OneOrMany(items))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany<T>, E> {
                T::deserialize(de::value::StrDeserializer::new(v)).map(|t| OneOrMany(vec![t]))
            }
        }
        deserializer.deserialize_any(OneOrManyVisitor(std::marker::PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<T>();
        json_schema!({ "anyOf": [item.clone(), { "type": "array", "items": item }] })
    }
}

/// HTTP statuses written as one number or a list.
#[derive(Debug, Default)]
pub struct StatusList(pub Vec<Sp<u16>>);

impl<'de> Deserialize<'de> for StatusList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusVisitor;
        impl<'de> Visitor<'de> for StatusVisitor {
            type Value = Vec<Sp<u16>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an HTTP status or a list of them")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(items)
            }
        }
        // A single number goes through `Sp` so it keeps its span; a list is read as a list.
        struct Either;
        impl<'de> de::DeserializeSeed<'de> for Either {
            type Value = Vec<Sp<u16>>;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                let one_or_list: Sp<StatusOrList> = Sp::deserialize(d)?;
                Ok(match one_or_list.value {
                    StatusOrList::One(status) => vec![Sp::new(status, one_or_list.span)],
                    StatusOrList::Many(list) => list,
                })
            }
        }
        enum StatusOrList {
            One(u16),
            Many(Vec<Sp<u16>>),
        }
        impl<'de> Deserialize<'de> for StatusOrList {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = StatusOrList;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("an HTTP status or a list of them")
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusOrList, E> {
                        u16::try_from(v)
                            .map(StatusOrList::One)
                            .map_err(|_| E::custom(format!("{v} is not an HTTP status")))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<StatusOrList, A::Error> {
                        StatusVisitor.visit_seq(seq).map(StatusOrList::Many)
                    }
                }
                d.deserialize_any(V)
            }
        }
        de::DeserializeSeed::deserialize(Either, deserializer).map(StatusList)
    }
}

impl JsonSchema for StatusList {
    fn schema_name() -> Cow<'static, str> {
        "StatusList".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let status = json_schema!({ "type": "integer", "minimum": 100, "maximum": 599 });
        json_schema!({ "anyOf": [status.clone(), { "type": "array", "items": status, "minItems": 1 }] })
    }
}

impl<'de> Deserialize<'de> for FieldMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        enum Form {
            Path(String),
            Long(Box<FieldMapLong>),
        }
        impl<'de> Deserialize<'de> for Form {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Form;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a JSONPath string or a mapping with one of path, template, expr, value")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Form, E> {
                        Ok(Form::Path(v.to_string()))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Form, A::Error> {
                        FieldMapLong::deserialize(de::value::MapAccessDeserializer::new(map))
                            .map(|l| Form::Long(Box::new(l)))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let form: Sp<Form> = Sp::deserialize(deserializer)?;
        let (span, text_offset) = (form.span, form.text_offset);
        Ok(match form.value {
            Form::Path(path) => {
                FieldMap { path: Some(Sp { value: path, span, text_offset }), span, ..FieldMap::default() }
            }
            Form::Long(long) => FieldMap {
                path: long.path,
                template: long.template,
                expr: long.expr,
                value: long.value,
                transform: long.transform.0,
                default: long.default,
                missing: long.missing,
                description: long.description,
                span,
            },
        })
    }
}

impl JsonSchema for FieldMap {
    fn schema_name() -> Cow<'static, str> {
        "FieldMap".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let long = generator.subschema_for::<FieldMapLong>();
        json_schema!({
            "description": "Where a value comes from: a JSONPath string such as \"$.name\", or a mapping with exactly one of path, template, expr, value.",
            "anyOf": [{ "type": "string", "description": "JSONPath into the record, e.g. \"$.name\"." }, long]
        })
    }
}
