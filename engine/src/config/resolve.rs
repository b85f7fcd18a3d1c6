//! The checks shared by operator config files ([`super::load`]) and host-given values
//! ([`super::from_values`]): checking one value against its field, turning `env:`/`file:` text into a
//! typed value, required fields, defaults (literal, then computed in dependency order), the resource
//! selection with fan-out parents, and the instance name.
//!
//! Problems are reported with a [`Place`] rather than a span, because only the config file has spans;
//! the caller turns places into spans (file) or drops them (host values). Nothing here reads files or the
//! environment: references are resolved by the caller, so this stays testable and free of I/O.

use super::RunConfig;
use crate::diag::{Code, did_you_mean};
use crate::expr::{self, MapScope};
use crate::model::{ConfigField, ConfigType, Spec};
use secrecy::SecretString;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Where a problem is, in terms both callers understand.
#[derive(Clone, Debug)]
pub(super) enum Place {
    /// The value given for a field (the whole value).
    Field(String),
    /// One item of a list value given for a field.
    Item(String, usize),
    /// Something that is absent: the field's key if it was written with no value, else the `config:`
    /// key, else the start of the file.
    Missing(String),
    /// The first of these fields that was given a value (a computed default is explained by its inputs);
    /// if none was, as for [`Place::Missing`] of the first name.
    FirstGiven(Vec<String>),
}

/// One problem, before it becomes a diagnostic (with a span) or a plain message (for hosts).
#[derive(Debug)]
pub(super) struct Problem {
    pub code: Code,
    pub place: Place,
    pub message: String,
    pub label: &'static str,
    /// A close name for a misspelt one; hosts get it too.
    pub suggestion: Option<String>,
    /// Advice worded for the config file; hosts do not get it.
    pub help: Option<String>,
}

impl Problem {
    pub fn new(code: Code, place: Place, message: impl Into<String>, label: &'static str) -> Problem {
        Problem { code, place, message: message.into(), label, suggestion: None, help: None }
    }

    pub fn suggest(mut self, suggestion: Option<&str>) -> Problem {
        self.suggestion = suggestion.map(str::to_string);
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    /// The message a host application gets: no place, no file-oriented help.
    pub fn host_text(&self) -> String {
        match &self.suggestion {
            Some(close) => format!("{}; did you mean `{close}`?", self.message),
            None => self.message.clone(),
        }
    }
}

/// Joins a field name and a reason from [`ConfigField::check`]. Reasons either start with the value in
/// backquotes (`` `a/b` does not match ``) or with a verb (`is 60, above the maximum`).
pub(super) fn field_message(name: &str, why: &str) -> String {
    if why.starts_with('`') { format!("`{name}`: {why}") } else { format!("`{name}` {why}") }
}

/// Checks a (non-secret) value against its field. A list is checked item by item so that every bad item
/// is reported at its own place, where [`ConfigField::check`] would stop at the first.
pub(super) fn check_value(field: &ConfigField, value: &Value) -> Vec<Problem> {
    let problem = |place: Place, why: String, item: Option<&Value>| {
        // An unknown enum value (or resource name) is most often a typo.
        let suggestion = item
            .and_then(Value::as_str)
            .filter(|s| !field.values.iter().any(|v| v == s))
            .and_then(|s| did_you_mean(s, field.values.iter().map(String::as_str)));
        Problem::new(Code::ConfigFileValue, place, field_message(&field.name, &why), "invalid value")
            .suggest(suggestion)
    };
    match (field.kind, value) {
        (ConfigType::List, Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                let why = field.check(&Value::Array(vec![item.clone()])).err()?;
                Some(problem(Place::Item(field.name.clone(), index), why, Some(item)))
            })
            .collect(),
        _ => match field.check(value) {
            Ok(()) => Vec::new(),
            Err(why) => vec![problem(Place::Field(field.name.clone()), why, Some(value))],
        },
    }
}

/// Turns text read from an environment variable or a file into the JSON value a literal of the field's
/// type would have been. Text that does not parse stays text, so the field's own check reports the type
/// mismatch in its usual words. Lists take JSON (`["a", "b"]`) or comma-separated items (`a, b`).
pub(super) fn typed_text(field: &ConfigField, text: &str) -> Value {
    fn typed(kind: ConfigType, items: Option<ConfigType>, text: &str) -> Value {
        let trimmed = text.trim();
        let parsed = match kind {
            ConfigType::Integer => trimmed.parse::<i64>().ok().map(Value::from),
            ConfigType::Number => trimmed
                .parse::<i64>()
                .ok()
                .map(Value::from)
                .or_else(|| trimmed.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number)),
            ConfigType::Boolean => match trimmed {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            ConfigType::List if trimmed.starts_with('[') => serde_json::from_str(trimmed).ok(),
            ConfigType::List => Some(Value::Array(
                trimmed
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| typed(items.unwrap_or(ConfigType::String), None, item))
                    .collect(),
            )),
            ConfigType::String | ConfigType::Url | ConfigType::Enum | ConfigType::Secret => None,
        };
        parsed.unwrap_or_else(|| Value::String(text.to_string()))
    }
    typed(field.kind, field.items, text)
}

/// Longest instance name accepted. Instance names end up in store keys, file names and log lines.
pub const MAX_INSTANCE_LEN: usize = 64;

/// An instance name is 1 to 64 lower-case letters, digits, `-` and `_`, starting with a letter or digit
/// (a leading `-` would read as an option on a command line). Public so that an instance name from
/// elsewhere (a command-line override) gets the same check as one from a config file.
pub fn check_instance(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if name.is_empty() {
        return Err("the instance name is empty".into());
    }
    if name.len() > MAX_INSTANCE_LEN {
        return Err(format!("the instance name is {} characters long; the limit is {MAX_INSTANCE_LEN}", name.len()));
    }
    if !name.chars().all(allowed) || !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err(format!(
            "`{name}` is not a valid instance name: use lower-case letters, digits, `-` and `_`, starting with a \
             letter or digit"
        ));
    }
    Ok(())
}

/// What the operator gave, after every given value was checked on its own.
#[derive(Default)]
pub(super) struct Given {
    /// Non-secret values that passed their field's check.
    pub values: BTreeMap<String, Value>,
    pub secrets: BTreeMap<String, SecretString>,
    /// Fields that were given but could not be used (already reported). They neither count as missing nor
    /// get a default, and computed defaults that read them are skipped, so one mistake is reported once.
    pub failed: BTreeSet<String>,
}

impl Given {
    fn has(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.secrets.contains_key(name) || self.failed.contains(name)
    }
}

/// Applies required-field checks and defaults, and selects the resources. The result is meaningful only
/// when nothing was reported, but it is always built so that the caller can go on checking other parts.
pub(super) fn complete(
    spec: &Spec,
    instance: String,
    mut given: Given,
    now_ms: i64,
    report: &mut dyn FnMut(Problem),
) -> RunConfig {
    for field in spec.config.iter().filter(|f| f.required && !given.has(&f.name)) {
        let how = if field.kind == ConfigType::Secret {
            format!("add `{}: {{ env: NAME }}` or `{}: {{ file: PATH }}` under `config:`", field.name, field.name)
        } else {
            match &field.example {
                Some(example) => format!("add `{}: {example}` (an example) under `config:`", field.name),
                None => format!("add `{}: <value>` under `config:`", field.name),
            }
        };
        report(
            Problem::new(
                Code::ConfigFileMissing,
                Place::Missing(field.name.clone()),
                format!("required config field `{}` is not set", field.name),
                "required field missing",
            )
            .help(how),
        );
    }

    // Literal defaults depend on nothing, so they all go in before any computed default reads them.
    for field in &spec.config {
        if let Some(default) = &field.default
            && !given.has(&field.name)
        {
            given.values.insert(field.name.clone(), default.clone());
        }
    }
    let mut done = BTreeSet::new();
    for field in &spec.config {
        compute_default(spec, field, &mut given, &mut done, now_ms, report);
    }

    let resources = select_resources(spec, &given.values);
    let unset = spec
        .config
        .iter()
        .filter(|f| !given.values.contains_key(&f.name) && !given.secrets.contains_key(&f.name))
        .map(|f| (f.name.clone(), f.kind == ConfigType::Secret))
        .collect();
    RunConfig {
        instance,
        values: given.values,
        secrets: given.secrets,
        unset,
        resources,
        kris: None,
        band_overrides: BTreeMap::new(),
    }
}

/// Evaluates a field's `default_expr` when the field has no value, after the defaults it reads. The
/// validator rejects cycles; `done` also guards against them, so a hand-built spec cannot recurse forever.
fn compute_default(
    spec: &Spec,
    field: &ConfigField,
    given: &mut Given,
    done: &mut BTreeSet<String>,
    now_ms: i64,
    report: &mut dyn FnMut(Problem),
) {
    let Some(expr) = &field.default_expr else { return };
    if given.has(&field.name) || !done.insert(field.name.clone()) {
        return;
    }
    let reads: Vec<String> =
        expr.variables().iter().filter_map(|v| v.strip_prefix("config.")).map(str::to_string).collect();
    for name in &reads {
        if let Some(dependency) = spec.config_field(name) {
            compute_default(spec, dependency, given, done, now_ms, report);
        }
    }
    if reads.iter().any(|name| given.failed.contains(name)) {
        // The input is wrong and already reported; a second error about the default would only add noise.
        given.failed.insert(field.name.clone());
        return;
    }
    // Secrets are not bound: the validator forbids defaults that read them. An unset field reads as empty,
    // as it does when the spec runs, so `coalesce` works in defaults too.
    let mut scope = MapScope::new(now_ms);
    for other in spec.config.iter().filter(|f| f.kind != ConfigType::Secret) {
        let value = given.values.get(&other.name).map_or(expr::Value::Empty, expr::from_json);
        scope.set(format!("config.{}", other.name), value);
    }
    let place = Place::FirstGiven(if reads.is_empty() { vec![field.name.clone()] } else { reads.clone() });
    let help = if reads.is_empty() {
        format!("set `{}` in the config file", field.name)
    } else {
        format!("set `{}` in the config file, or change what its default reads: {}", field.name, reads.join(", "))
    };
    let fail = |why: String| {
        Problem::new(
            Code::ConfigFileValue,
            place.clone(),
            format!("the default of `{}`, computed by `{}`, {why}", field.name, expr.source()),
            "the computed default depends on this",
        )
        .help(help.clone())
    };
    match expr.eval(&scope) {
        Err(error) => {
            report(fail(format!("cannot be computed: {error}")));
            given.failed.insert(field.name.clone());
        }
        // An empty result means "no value", like an optional field left out.
        Ok(expr::Value::Empty) => {}
        Ok(value) => {
            let json = expr::to_json(&value);
            match field.check(&json) {
                Ok(()) => {
                    given.values.insert(field.name.clone(), json);
                }
                Err(why) => {
                    report(fail(format!("is invalid: {why}")));
                    given.failed.insert(field.name.clone());
                }
            }
        }
    }
}

/// The resources a run reads, in spec order: those the selecting field lists (all when the spec has no
/// such field or it has no value), plus every fan-out parent they need, transitively, since a child's
/// requests are built from its parent's records.
fn select_resources(spec: &Spec, values: &BTreeMap<String, Value>) -> Vec<String> {
    let chosen = spec.resource_selector().and_then(|field| values.get(&field.name)).and_then(Value::as_array);
    let mut selected: BTreeSet<&str> = match chosen {
        Some(items) => items.iter().filter_map(Value::as_str).collect(),
        None => spec.resources.iter().map(|r| r.name.as_str()).collect(),
    };
    let mut pending: Vec<&str> = selected.iter().copied().collect();
    while let Some(name) = pending.pop() {
        if let Some(parent) = spec.resource(name).and_then(|r| r.for_each.as_ref()).map(|f| f.resource.as_str())
            && selected.insert(parent)
        {
            pending.push(parent);
        }
    }
    spec.resources.iter().filter(|r| selected.contains(r.name.as_str())).map(|r| r.name.clone()).collect()
}
