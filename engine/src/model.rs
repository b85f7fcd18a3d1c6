//! `Spec`: a connector spec after validation. Every JSONPath, expression and template in it is compiled,
//! every reference resolved, every duration parsed. Code that runs a spec only ever sees this type, so it
//! cannot meet a syntax error or a dangling name.

use crate::expr::{Expr, Template};
use crate::jsonpath::JsonPath;
pub use crate::spec::raw::{
    ConfigType, CredentialsIn, CursorFormat, Direction, DistributionKind, FallbackStatus, KeyLocation, Method,
    MissingPolicy, ResourceOutcome, RetryAfter, StatusAction, Transform, Unit,
};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug)]
pub struct Spec {
    pub id: String,
    pub title: String,
    pub tagline: Option<String>,
    pub description: Option<String>,
    pub source_type: Option<String>,
    pub docs_url: Option<String>,
    pub schedule: Option<Schedule>,
    pub setup: Vec<String>,
    pub limitations: Vec<String>,
    pub connection_test: Option<String>,
    pub config: Vec<ConfigField>,
    pub http: Http,
    /// In the order written.
    pub resources: Vec<Resource>,
    /// Indexes into `resources` such that every fan-out parent comes before its children.
    pub run_order: Vec<usize>,
    pub kris: Vec<Indicator>,
    pub metrics: Vec<Indicator>,
    /// Every shape type some resource emits, by `<shape>.<name>`.
    pub shapes: BTreeMap<String, ShapeType>,
}

impl Spec {
    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.name == name)
    }
    pub fn config_field(&self, name: &str) -> Option<&ConfigField> {
        self.config.iter().find(|f| f.name == name)
    }
    /// The list field whose values choose the resources to sync, if the spec has one.
    pub fn resource_selector(&self) -> Option<&ConfigField> {
        self.config.iter().find(|f| f.selects_resources)
    }
}

/// How often a connector is meant to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    Hourly,
    Daily,
    Weekly,
    Every(Duration),
}

impl Schedule {
    pub fn period(self) -> Duration {
        match self {
            Schedule::Hourly => Duration::from_secs(3600),
            Schedule::Daily => Duration::from_secs(86_400),
            Schedule::Weekly => Duration::from_secs(7 * 86_400),
            Schedule::Every(d) => d,
        }
    }
}

#[derive(Debug)]
pub struct ConfigField {
    pub name: String,
    pub kind: ConfigType,
    pub description: Option<String>,
    pub required: bool,
    pub default: Option<serde_json::Value>,
    pub default_expr: Option<Expr>,
    pub pattern: Option<regex::Regex>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub values: Vec<String>,
    pub items: Option<ConfigType>,
    pub selects_resources: bool,
    pub example: Option<serde_json::Value>,
}

impl ConfigField {
    /// Checks a value an operator (or a literal default) gives against this field. The message says what
    /// is wrong with the value without repeating it when the field is a secret.
    pub fn check(&self, value: &serde_json::Value) -> Result<(), String> {
        self.check_as(self.kind, value)
    }

    fn check_as(&self, kind: ConfigType, value: &serde_json::Value) -> Result<(), String> {
        use serde_json::Value;
        let in_range = |n: f64| {
            if let Some(min) = self.minimum.filter(|min| n < *min) {
                return Err(format!("is {n}, below the minimum of {min}"));
            }
            if let Some(max) = self.maximum.filter(|max| n > *max) {
                return Err(format!("is {n}, above the maximum of {max}"));
            }
            Ok(())
        };
        let matches = |s: &str| match &self.pattern {
            Some(re) if !re.is_match(s) => {
                let pattern = re.as_str().trim_start_matches("^(?:").trim_end_matches(")$");
                Err(format!("`{s}` does not match the pattern `{pattern}`"))
            }
            _ => Ok(()),
        };
        let one_of = |s: &str| {
            if self.values.is_empty() || self.values.iter().any(|v| v == s) {
                Ok(())
            } else {
                Err(format!("`{s}` is not one of: {}", self.values.join(", ")))
            }
        };
        match (kind, value) {
            (ConfigType::String, Value::String(s)) => matches(s).and_then(|_| one_of(s)),
            (ConfigType::Enum, Value::String(s)) => one_of(s),
            (ConfigType::Url, Value::String(s)) => {
                let parsed = url::Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    return Err(format!("`{s}` is not an absolute http(s) URL"));
                }
                matches(s)
            }
            (ConfigType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => in_range(n.as_f64().unwrap_or(0.0)),
            (ConfigType::Number, Value::Number(n)) => in_range(n.as_f64().unwrap_or(0.0)),
            (ConfigType::Boolean, Value::Bool(_)) => Ok(()),
            (ConfigType::List, Value::Array(items)) => {
                let item_kind = self.items.unwrap_or(ConfigType::String);
                items.iter().try_for_each(|item| self.check_as(item_kind, item))
            }
            (ConfigType::Secret, Value::String(_)) => Ok(()),
            (kind, other) => Err(format!("should be {}, found {}", kind_text(kind), json_kind(other))),
        }
    }
}

fn kind_text(kind: ConfigType) -> &'static str {
    match kind {
        ConfigType::String | ConfigType::Secret => "text",
        ConfigType::Integer => "an integer",
        ConfigType::Number => "a number",
        ConfigType::Boolean => "true or false",
        ConfigType::Url => "a URL",
        ConfigType::List => "a list",
        ConfigType::Enum => "one of the listed values",
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[derive(Debug)]
pub struct Http {
    pub base_url: Template,
    pub allowed_hosts: Vec<Template>,
    pub headers: Vec<(String, Template)>,
    pub timeout: Duration,
    pub auth: Auth,
    pub retry: Retry,
    pub budgets: Vec<Budget>,
    pub error_code_path: Option<JsonPath>,
}

#[derive(Debug)]
pub enum Auth {
    None,
    Bearer { token: Template },
    ApiKey { location: KeyLocation, name: String, value: Template },
    Basic { username: Template, password: Template },
    OAuth2ClientCredentials(Box<OAuth2>),
}

#[derive(Debug)]
pub struct OAuth2 {
    pub token_url: Template,
    pub client_id: Template,
    pub client_secret: Template,
    pub scope: Option<Template>,
    pub credentials_in: CredentialsIn,
    pub refresh_before: Duration,
    pub error_code_paths: Vec<JsonPath>,
    /// Explanation per error code returned by the token endpoint.
    pub error_messages: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct Retry {
    pub statuses: Vec<u16>,
    pub max_attempts: u32,
    pub retry_after: RetryAfter,
    pub max_retry_after: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
    pub jitter: bool,
    pub on_network_error: bool,
}

#[derive(Debug)]
pub struct Budget {
    pub name: String,
    pub requests: u32,
    pub per: Duration,
    pub description: Option<String>,
}

#[derive(Debug)]
pub struct Resource {
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub licence: Option<String>,
    pub budget: Option<String>,
    pub for_each: Option<ForEach>,
    pub request: Request,
    pub records: JsonPath,
    pub paginate: Paginate,
    pub incremental: Option<Incremental>,
    pub on_status: Vec<StatusRule>,
    pub emit: Vec<Emit>,
}

#[derive(Debug)]
pub struct ForEach {
    pub resource: String,
    pub alias: String,
    pub filter: Option<Expr>,
}

#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub path: Template,
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(String, Template)>,
    pub body: Option<Body>,
}

/// A JSON request body whose strings are templates.
#[derive(Debug)]
pub enum Body {
    Literal(serde_json::Value),
    Text(Template),
    List(Vec<Body>),
    Object(Vec<(String, Body)>),
}

#[derive(Debug)]
pub enum Paginate {
    None,
    NextUrl {
        path: JsonPath,
        max_pages: u32,
        stop_on_empty_page: bool,
    },
    LinkHeader {
        rel: String,
        max_pages: u32,
        stop_on_empty_page: bool,
    },
    Cursor {
        token_path: JsonPath,
        param: String,
        has_more_path: Option<JsonPath>,
        max_pages: u32,
        stop_on_empty_page: bool,
    },
    Offset {
        param: String,
        limit_param: String,
        limit: u32,
        start: u64,
        total_path: Option<JsonPath>,
        max_pages: u32,
    },
    PageNumber {
        param: String,
        start: u64,
        size_param: Option<String>,
        size: Option<u32>,
        total_pages_path: Option<JsonPath>,
        max_pages: u32,
    },
}

impl Paginate {
    pub fn kind(&self) -> &'static str {
        match self {
            Paginate::None => "none",
            Paginate::NextUrl { .. } => "next_url",
            Paginate::LinkHeader { .. } => "link_header",
            Paginate::Cursor { .. } => "cursor",
            Paginate::Offset { .. } => "offset",
            Paginate::PageNumber { .. } => "page_number",
        }
    }
}

#[derive(Debug)]
pub struct Incremental {
    pub cursor: JsonPath,
    pub initial: Expr,
    pub lookback: Duration,
    pub max_age: Option<Duration>,
    pub format: CursorFormat,
    pub filter: Option<(String, Template)>,
    pub client_filter: bool,
}

#[derive(Debug)]
pub struct StatusRule {
    pub statuses: Vec<u16>,
    pub error_code: Option<String>,
    pub action: StatusAction,
    pub message: Option<String>,
    pub fallback: Option<FallbackRequest>,
}

#[derive(Debug)]
pub struct FallbackRequest {
    pub query: Vec<(String, Template)>,
    pub remove_query: Vec<String>,
}

/// One shape produced per record.
#[derive(Debug)]
pub struct Emit {
    pub shape: Shape,
    /// `<shape>.<name>`, the key of [`Spec::shapes`].
    pub type_key: String,
    pub when: Option<Expr>,
    pub fields: EmitFields,
    pub attributes: Vec<Attribute>,
    /// Indexes into `attributes`, in the byte order of their names: the order of the stored text.
    pub sorted: Vec<usize>,
}

/// Built once per spec, so the size difference between variants costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum EmitFields {
    Entity {
        kind: String,
        id: FieldMap,
    },
    Event {
        name: String,
        key: FieldMap,
        start: FieldMap,
        end: Option<FieldMap>,
    },
    Metric {
        name: String,
        ts: Option<FieldMap>,
        value: FieldMap,
    },
    Edge {
        from_type: String,
        from_id: FieldMap,
        kind: String,
        to_type: String,
        to_id: FieldMap,
    },
    Distribution {
        name: String,
        ts: Option<FieldMap>,
        kind: DistributionKind,
        points: FieldMap,
        count: FieldMap,
        sum: FieldMap,
    },
}

#[derive(Debug)]
pub struct Attribute {
    pub name: String,
    pub map: FieldMap,
    pub description: Option<String>,
}

#[derive(Debug)]
pub struct FieldMap {
    pub source: FieldSource,
    pub transforms: Vec<Transform>,
    pub default: Option<serde_json::Value>,
    pub missing: MissingPolicy,
}

#[derive(Debug)]
pub enum FieldSource {
    Path(JsonPath),
    Template(Template),
    Expr(Expr),
    Value(serde_json::Value),
}

/// The five stored shapes (the sixth, `kri`, is computed, never emitted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shape {
    Entity,
    Event,
    Metric,
    Edge,
    Distribution,
}

impl Shape {
    pub const ALL: [Shape; 5] = [Shape::Entity, Shape::Event, Shape::Metric, Shape::Edge, Shape::Distribution];

    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Entity => "entity",
            Shape::Event => "event",
            Shape::Metric => "metric",
            Shape::Edge => "edge",
            Shape::Distribution => "distribution",
        }
    }

    pub fn parse(text: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The row fields every row of this shape has, besides its attributes, as expressions see them.
    pub fn row_fields(self) -> &'static [&'static str] {
        match self {
            Shape::Entity => &["type", "id", "updated_at"],
            Shape::Event => &["name", "key", "start", "end"],
            Shape::Metric => &["name", "ts", "value"],
            Shape::Edge => &["from_type", "from_id", "kind", "to_type", "to_id", "updated_at"],
            Shape::Distribution => &["name", "ts", "count", "sum"],
        }
    }

    /// The row field that places a row in time, for windows and `latest`.
    pub fn time_field(self) -> &'static str {
        match self {
            Shape::Entity | Shape::Edge => "updated_at",
            Shape::Event => "start",
            Shape::Metric | Shape::Distribution => "ts",
        }
    }
}

/// What the spec says about one shape type, gathered from every emitter of it.
#[derive(Debug)]
pub struct ShapeType {
    pub shape: Shape,
    pub name: String,
    pub attributes: Vec<String>,
    pub emitted_by: Vec<String>,
}

#[derive(Debug)]
pub struct Indicator {
    pub slug: String,
    pub title: String,
    pub description: Option<String>,
    pub unit: Option<Unit>,
    pub direction: Option<Direction>,
    pub lets: Vec<Aggregate>,
    pub value: Expr,
    pub bands: Option<Bands>,
    pub evidence: Option<String>,
    pub evidence_limit: u32,
    pub fallbacks: Vec<Fallback>,
    /// Resources whose data the indicator reads (through its aggregates and lookups).
    pub reads: Vec<String>,
}

#[derive(Debug)]
pub struct Aggregate {
    pub name: String,
    pub op: AggregateOp,
    pub shape: Shape,
    /// `<shape>.<name>`.
    pub type_key: String,
    pub type_name: String,
    pub field: Option<String>,
    pub filter: Option<Expr>,
    pub window: Option<Window>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateOp {
    Count,
    CountDistinct,
    Sum,
    Min,
    Max,
    Latest,
}

impl AggregateOp {
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateOp::Count => "count",
            AggregateOp::CountDistinct => "count_distinct",
            AggregateOp::Sum => "sum",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
            AggregateOp::Latest => "latest",
        }
    }
}

#[derive(Debug)]
pub struct Window {
    pub field: String,
    pub last: Duration,
}

#[derive(Debug)]
pub struct Bands {
    pub green: Threshold,
    pub amber: Option<Threshold>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    pub op: Comparison,
    pub value: f64,
}

impl Threshold {
    /// Parses a band threshold such as `>= 95` or `< 0.5`: a comparison, then a finite number.
    pub fn parse(text: &str) -> Option<Threshold> {
        let text = text.trim();
        let (op, rest) = [
            (">=", Comparison::Ge),
            ("<=", Comparison::Le),
            ("==", Comparison::Eq),
            (">", Comparison::Gt),
            ("<", Comparison::Lt),
        ]
        .iter()
        .find_map(|(token, op)| text.strip_prefix(token).map(|rest| (*op, rest)))?;
        let value = rest.trim().parse::<f64>().ok().filter(|v| v.is_finite())?;
        Some(Threshold { op, value })
    }

    pub fn holds(self, value: f64) -> bool {
        match self.op {
            Comparison::Ge => value >= self.value,
            Comparison::Gt => value > self.value,
            Comparison::Le => value <= self.value,
            Comparison::Lt => value < self.value,
            Comparison::Eq => value == self.value,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
}

impl Comparison {
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Ge => ">=",
            Comparison::Gt => ">",
            Comparison::Le => "<=",
            Comparison::Lt => "<",
            Comparison::Eq => "==",
        }
    }
}

#[derive(Debug)]
pub struct Fallback {
    pub resource: String,
    pub on: Vec<ResourceOutcome>,
    pub value: Option<Expr>,
    pub status: FallbackStatus,
    pub reason: String,
}
