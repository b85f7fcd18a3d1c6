//! Reads an operator config file (YAML, parsed by [`crate::source::parse`] into spanned nodes) against a
//! spec: the top-level keys, each config value, `env:`/`file:` references, `kris:` and `bands:`. Every
//! problem becomes a diagnostic pointing into the file, and all of them are collected.
//!
//! The checks that do not depend on the file's shape live in [`super::resolve`] and are shared with
//! [`super::from_values`]; this file only walks nodes, resolves references and maps places to spans.

use super::RunConfig;
use super::resolve::{self, Given, Place, Problem, check_value, typed_text};
use crate::diag::{Code, Diagnostic, Span, did_you_mean};
use crate::model::{Bands, ConfigField, ConfigType, Spec, Threshold};
use crate::source::{self, Node, NodeKind, Source};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The keys a config file accepts at the top.
const TOP_KEYS: &[&str] = &["instance", "config", "kris", "bands"];
/// The keys of a band override.
const BAND_KEYS: &[&str] = &["green", "amber"];
/// The keys of a reference to a value kept outside the file.
const REFERENCE_KEYS: &[&str] = &["env", "file"];

/// Largest file a `{ file: PATH }` reference may name. Secrets and values are short; a larger file is the
/// wrong file (or a device such as `/dev/zero`), and reading it whole would only waste memory.
pub const MAX_VALUE_FILE_BYTES: u64 = 64 * 1024;

pub(super) fn load(
    source: &Source,
    spec: &Spec,
    env: &dyn Fn(&str) -> Option<String>,
    now_ms: i64,
) -> Result<RunConfig, Vec<Diagnostic>> {
    let root = source::parse(&source.text).map_err(|d| vec![d])?;
    let base_dir = Path::new(&source.name).parent().map(Path::to_path_buf).unwrap_or_default();
    let mut walk = Walk { spec, env, base_dir, diagnostics: Vec::new(), config_key: None, fields: BTreeMap::new() };

    let entries: &[(Node, Node)] = match &root.kind {
        NodeKind::Map(entries) => entries,
        // An empty file sets nothing, which is valid when the spec has nothing required.
        NodeKind::Null => &[],
        _ => {
            walk.error(
                Code::ConfigFileValue,
                root.span,
                format!("a config file is a mapping, found {}", root.kind_name()),
                "here",
            );
            return Err(walk.diagnostics);
        }
    };

    let mut instance = super::DEFAULT_INSTANCE.to_string();
    let mut given = Given::default();
    let mut kris = None;
    let mut bands = BTreeMap::new();
    for (key, value) in entries {
        let name = key.scalar_text().unwrap_or_default();
        match name.as_str() {
            "instance" => {
                if let Some(name) = walk.instance(value) {
                    instance = name;
                }
            }
            "config" => {
                walk.config_key = Some(key.span);
                walk.config(value, &mut given);
            }
            "kris" => kris = walk.kris(value),
            "bands" => bands = walk.bands(value),
            _ => walk.unknown(key, &name, "key", TOP_KEYS.iter().copied(), true),
        }
    }

    let mut problems = Vec::new();
    let mut run = resolve::complete(spec, instance, given, now_ms, &mut |p| problems.push(p));
    for problem in problems {
        walk.problem(problem);
    }
    if walk.diagnostics.iter().any(Diagnostic::is_error) {
        // Sorted by position, as the validator's are, so the operator can work down the file.
        walk.diagnostics.sort_by_key(|d| d.span.map(|s| s.start));
        return Err(walk.diagnostics);
    }
    run.kris = kris;
    run.band_overrides = bands;
    Ok(run)
}

struct Walk<'a> {
    spec: &'a Spec,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Where relative `file:` paths start: the config file's directory.
    base_dir: PathBuf,
    diagnostics: Vec<Diagnostic>,
    /// The span of the `config:` key, for problems about fields that are absent.
    config_key: Option<Span>,
    /// Each config entry written in the file: the key's span and the value node.
    fields: BTreeMap<String, (Span, &'a Node)>,
}

impl<'a> Walk<'a> {
    fn error(&mut self, code: Code, span: Span, message: impl Into<String>, label: &str) {
        self.diagnostics.push(Diagnostic::error(code, span, message).with_label(label));
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// An unknown key (of the file's own format, `is_key`) or name (of something the spec defines), with a
    /// "did you mean" when one is close.
    fn unknown<'c>(
        &mut self,
        key: &Node,
        name: &str,
        what: &str,
        candidates: impl IntoIterator<Item = &'c str> + Clone,
        is_key: bool,
    ) {
        let close = did_you_mean(name, candidates.clone());
        let listing = candidates.into_iter().collect::<Vec<_>>().join(", ");
        let help = match (close, is_key) {
            (Some(close), true) => format!("did you mean `{close}`? Accepted here: {listing}"),
            (Some(close), false) => format!("did you mean `{close}`?"),
            (None, _) if listing.is_empty() => "this spec defines none".to_string(),
            (None, _) => format!("accepted here: {listing}"),
        };
        let message = match is_key {
            true => format!("unknown {what} `{name}`"),
            false => format!("`{name}` is not a {what} of `{}`", self.spec.id),
        };
        let label = if is_key { "unknown key" } else { "unknown name" };
        self.push(Diagnostic::error(Code::ConfigFileKey, key.span, message).with_label(label).with_help(help));
    }

    /// Turns a shared problem into a diagnostic by finding its place in the file.
    fn problem(&mut self, problem: Problem) {
        let file_start = Span::new(0, 0);
        let missing = |this: &Self, name: &str| {
            this.fields.get(name).map(|(key, _)| *key).or(this.config_key).unwrap_or(file_start)
        };
        let span = match &problem.place {
            Place::Field(name) => self.fields.get(name).map(|(_, node)| node.span),
            Place::Item(name, index) => self.fields.get(name).map(|(_, node)| match &node.kind {
                NodeKind::Seq(items) => items.get(*index).map_or(node.span, |item| item.span),
                _ => node.span,
            }),
            Place::Missing(name) => Some(missing(self, name)),
            Place::FirstGiven(names) => names
                .iter()
                .find_map(|name| self.fields.get(name).map(|(_, node)| node.span))
                .or_else(|| names.first().map(|name| missing(self, name))),
        };
        let help = match (&problem.suggestion, &problem.help) {
            (Some(close), Some(help)) => Some(format!("did you mean `{close}`? {help}")),
            (Some(close), None) => Some(format!("did you mean `{close}`?")),
            (None, help) => help.clone(),
        };
        let mut diagnostic =
            Diagnostic::error(problem.code, span.unwrap_or(file_start), problem.message).with_label(problem.label);
        diagnostic.help = help;
        self.push(diagnostic);
    }

    fn instance(&mut self, value: &Node) -> Option<String> {
        let NodeKind::Str(name) = &value.kind else {
            self.error(
                Code::ConfigFileValue,
                value.anchor(),
                format!("`instance` should be a name, found {}", value.kind_name()),
                "here",
            );
            return None;
        };
        match resolve::check_instance(name) {
            Ok(()) => Some(name.clone()),
            Err(why) => {
                self.error(Code::ConfigFileValue, value.span, why, "invalid instance name");
                None
            }
        }
    }

    fn config(&mut self, value: &'a Node, given: &mut Given) {
        let entries = match &value.kind {
            NodeKind::Map(entries) => entries,
            NodeKind::Null => return,
            _ => {
                self.error(
                    Code::ConfigFileValue,
                    value.anchor(),
                    format!("`config` should be a mapping of field names to values, found {}", value.kind_name()),
                    "here",
                );
                return;
            }
        };
        for (key, value) in entries {
            let name = key.scalar_text().unwrap_or_default();
            let Some(field) = self.spec.config_field(&name) else {
                let names = self.spec.config.iter().map(|f| f.name.as_str());
                self.unknown(key, &name, "config field", names, false);
                continue;
            };
            self.fields.insert(name.clone(), (key.span, value));
            // A key written without a value is a blank to fill in: the field counts as not set.
            if matches!(value.kind, NodeKind::Null) {
                continue;
            }
            if self.field(field, value, given).is_none() {
                given.failed.insert(name);
            }
        }
    }

    /// Reads one config value. `None` when it cannot be used (and the problem was reported).
    fn field(&mut self, field: &ConfigField, value: &Node, given: &mut Given) -> Option<()> {
        let secret = field.kind == ConfigType::Secret;
        if let NodeKind::Map(entries) = &value.kind {
            // Problems with the value point at the variable name or path: a mapping's span is only its start.
            let (text, origin, at) = self.reference(field, value, entries)?;
            if secret {
                if text.is_empty() {
                    self.error(
                        Code::ConfigFileSecret,
                        at,
                        format!("secret `{}` is empty ({origin})", field.name),
                        "empty secret",
                    );
                    return None;
                }
                given.secrets.insert(field.name.clone(), SecretString::from(text));
                return Some(());
            }
            let typed = typed_text(field, &text);
            let problems = check_value(field, &typed);
            if problems.is_empty() {
                given.values.insert(field.name.clone(), typed);
                return Some(());
            }
            // The value came from outside the file, so every problem points at the reference and says where
            // the value came from.
            for problem in problems {
                let why = problem.message.clone();
                self.push(
                    Diagnostic::error(Code::ConfigFileValue, at, format!("{why} ({origin})"))
                        .with_label("invalid value"),
                );
            }
            return None;
        }
        if secret {
            // The message never repeats the value: it is a secret written where anyone can read it.
            self.push(
                Diagnostic::error(
                    Code::ConfigFileSecret,
                    value.span,
                    format!(
                        "`{}` is a secret and cannot be written in the config file; use `{{ env: NAME }}` or \
                         `{{ file: PATH }}`",
                        field.name
                    ),
                )
                .with_label("secret written inline")
                .with_help(format!(
                    "write `{0}: {{ env: VARIABLE }}` to read it from an environment variable, or `{0}: {{ file: \
                     PATH }}` to read it from a file (relative to this file's directory); then remove the value \
                     from this file and rotate it if the file was shared",
                    field.name
                )),
            );
            return None;
        }
        let json = value.to_json();
        let problems = check_value(field, &json);
        if problems.is_empty() {
            given.values.insert(field.name.clone(), json);
            return Some(());
        }
        for problem in problems {
            self.problem(problem);
        }
        None
    }

    /// Resolves `{ env: NAME }` or `{ file: PATH }` to its text, says where it came from (for messages,
    /// never the value itself) and gives the span of the variable name or path.
    fn reference(
        &mut self,
        field: &ConfigField,
        value: &Node,
        entries: &[(Node, Node)],
    ) -> Option<(String, String, Span)> {
        let mut found: Vec<(&str, &Node, &Node)> = Vec::new();
        let mut unknown = false;
        for (key, target) in entries {
            let name = key.scalar_text().unwrap_or_default();
            match REFERENCE_KEYS.iter().find(|k| **k == name) {
                Some(known) => found.push((known, key, target)),
                None => {
                    unknown = true;
                    self.unknown(key, &name, "key", REFERENCE_KEYS.iter().copied(), true);
                }
            }
        }
        let (kind, _, target) = match found.as_slice() {
            [one] => *one,
            [] => {
                if !unknown {
                    self.error(
                        Code::ConfigFileValue,
                        value.span,
                        format!("`{}` is an empty mapping; write `{{ env: NAME }}` or `{{ file: PATH }}`", field.name),
                        "here",
                    );
                }
                return None;
            }
            [_, (_, second, _), ..] => {
                self.error(
                    Code::ConfigFileValue,
                    second.span,
                    format!("`{}` gives both `env` and `file`; give one", field.name),
                    "second source",
                );
                return None;
            }
        };
        let text = match &target.kind {
            NodeKind::Str(text) if !text.is_empty() => text.clone(),
            _ => {
                let what = if kind == "env" { "an environment variable name" } else { "a file path" };
                self.error(
                    Code::ConfigFileValue,
                    target.span,
                    format!("`{kind}` should be {what}, found {}", target.kind_name()),
                    "here",
                );
                return None;
            }
        };
        if kind == "env" {
            if !valid_env_name(&text) {
                self.error(
                    Code::ConfigFileValue,
                    target.span,
                    format!("`{text}` is not an environment variable name"),
                    "invalid name",
                );
                return None;
            }
            return match (self.env)(&text) {
                Some(found) => Some((found, format!("from environment variable `{text}`"), target.span)),
                None => {
                    self.push(
                        Diagnostic::error(
                            Code::ConfigFileSecret,
                            target.span,
                            format!("environment variable `{text}` (for `{}`) is not set", field.name),
                        )
                        .with_label("not set")
                        .with_help(format!("set `{text}` in the environment the engine runs in")),
                    );
                    None
                }
            };
        }
        let path = self.base_dir.join(&text);
        match read_value_file(&path) {
            Ok(found) => Some((found, format!("from file `{}`", path.display()), target.span)),
            Err(why) => {
                self.push(
                    Diagnostic::error(
                        Code::ConfigFileSecret,
                        target.span,
                        format!("cannot read `{}` for `{}`: {why}", path.display(), field.name),
                    )
                    .with_label("unreadable")
                    .with_help("relative paths start at the config file's directory"),
                );
                None
            }
        }
    }

    fn kris(&mut self, value: &Node) -> Option<Vec<String>> {
        let NodeKind::Seq(items) = &value.kind else {
            self.error(
                Code::ConfigFileValue,
                value.anchor(),
                format!("`kris` should be a list of KRI or metric names, found {}", value.kind_name()),
                "here",
            );
            return None;
        };
        let spec = self.spec;
        let known = || spec.kris.iter().chain(&spec.metrics).map(|k| k.slug.as_str());
        let mut chosen: Vec<String> = Vec::new();
        for item in items {
            let NodeKind::Str(name) = &item.kind else {
                self.error(
                    Code::ConfigFileValue,
                    item.anchor(),
                    format!("a KRI or metric name is text, found {}", item.kind_name()),
                    "here",
                );
                continue;
            };
            if !known().any(|k| k == name) {
                self.unknown(item, name, "KRI or metric", known(), false);
            } else if !chosen.contains(name) {
                chosen.push(name.clone());
            }
        }
        Some(chosen)
    }

    fn bands(&mut self, value: &Node) -> BTreeMap<String, Bands> {
        let mut out = BTreeMap::new();
        let entries = match &value.kind {
            NodeKind::Map(entries) => entries,
            NodeKind::Null => return out,
            _ => {
                self.error(
                    Code::ConfigFileValue,
                    value.anchor(),
                    format!("`bands` should be a mapping from KRI names to bands, found {}", value.kind_name()),
                    "here",
                );
                return out;
            }
        };
        let spec = self.spec;
        for (key, band) in entries {
            let slug = key.scalar_text().unwrap_or_default();
            if !spec.kris.iter().any(|k| k.slug == slug) {
                if spec.metrics.iter().any(|m| m.slug == slug) {
                    self.push(
                        Diagnostic::error(
                            Code::ConfigFileKey,
                            key.span,
                            format!("`{slug}` is a metric; only KRIs have bands"),
                        )
                        .with_label("metric"),
                    );
                } else {
                    self.unknown(key, &slug, "KRI", spec.kris.iter().map(|k| k.slug.as_str()), false);
                }
                continue;
            }
            if let Some(bands) = self.band(key, &slug, band) {
                out.insert(slug, bands);
            }
        }
        out
    }

    fn band(&mut self, key: &Node, slug: &str, band: &Node) -> Option<Bands> {
        let NodeKind::Map(entries) = &band.kind else {
            self.push(
                Diagnostic::error(
                    Code::ConfigFileValue,
                    band.anchor(),
                    format!("the bands of `{slug}` should be a mapping, found {}", band.kind_name()),
                )
                .with_label("here")
                .with_help("write `{ green: \">= 90\", amber: \">= 70\" }`"),
            );
            return None;
        };
        let (mut green, mut amber) = (None, None);
        let mut ok = true;
        for (name_node, threshold_node) in entries {
            let name = name_node.scalar_text().unwrap_or_default();
            let slot = match name.as_str() {
                "green" => &mut green,
                "amber" => &mut amber,
                _ => {
                    self.unknown(name_node, &name, "key", BAND_KEYS.iter().copied(), true);
                    ok = false;
                    continue;
                }
            };
            match self.threshold(&name, threshold_node) {
                Some(threshold) => *slot = Some(threshold),
                None => ok = false,
            }
        }
        if green.is_none() && ok {
            self.push(
                Diagnostic::error(Code::ConfigFileMissing, key.span, format!("the bands of `{slug}` have no `green`"))
                    .with_label("`green` missing")
                    .with_help("add `green: \">= 90\"` (the comparison that makes the value green)"),
            );
            return None;
        }
        if !ok {
            return None;
        }
        Some(Bands { green: green?, amber })
    }

    fn threshold(&mut self, name: &str, node: &Node) -> Option<Threshold> {
        let parsed = match &node.kind {
            NodeKind::Str(text) => Threshold::parse(text),
            _ => None,
        };
        if parsed.is_none() {
            let shown = match &node.kind {
                NodeKind::Str(text) => format!("`{text}` is not a threshold"),
                _ => format!("`{name}` should be a threshold, found {}", node.kind_name()),
            };
            self.push(
                Diagnostic::error(Code::ConfigFileValue, node.anchor(), shown)
                    .with_label("here")
                    .with_help("write a comparison and a number in quotes, e.g. `\">= 95\"` or `\"<= 0\"`"),
            );
        }
        parsed
    }
}

/// Environment variable names as shells write them. Anything else (an `=`, a NUL, spaces) is certainly a
/// mistake, and some platforms fail or misbehave when asked for such a name.
fn valid_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads a value file: at most [`MAX_VALUE_FILE_BYTES`], UTF-8, trailing line breaks removed (editors and
/// `echo` add one, and no secret or value ends with one). Errors never include the content.
fn read_value_file(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_VALUE_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_VALUE_FILE_BYTES {
        return Err(format!("the file is larger than {MAX_VALUE_FILE_BYTES} bytes"));
    }
    let mut text = String::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_string())?;
    let kept = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(kept);
    Ok(text)
}

/// The config file's text with every secret written inline replaced by `*`, byte for byte, so that the
/// diagnostics' spans still fit. See [`super::mask_inline_secrets`].
pub(super) fn mask_inline_secrets(source: &Source, spec: &Spec) -> Source {
    let Ok(root) = source::parse(&source.text) else { return source.clone() };
    let mut spans = Vec::new();
    if let NodeKind::Map(entries) = &root.kind {
        for (key, value) in entries {
            if key.scalar_text().as_deref() != Some("config") {
                continue;
            }
            let NodeKind::Map(fields) = &value.kind else { continue };
            for (name, value) in fields {
                let is_secret = name
                    .scalar_text()
                    .and_then(|n| spec.config_field(&n))
                    .is_some_and(|f| f.kind == ConfigType::Secret);
                if is_secret {
                    collect_literal_spans(value, &mut spans);
                }
            }
        }
    }
    let mut text = source.text.clone();
    for span in spans {
        let Some(original) = source.text.get(span.start..span.start + span.len) else { continue };
        let masked: String =
            original.chars().map(|c| if c == '\n' { "\n".to_string() } else { "*".repeat(c.len_utf8()) }).collect();
        text.replace_range(span.start..span.start + span.len, &masked);
    }
    Source { name: source.name.clone(), text }
}

/// Scalars under a secret field, except inside an `{ env }`/`{ file }` reference (a variable name or a
/// path is not secret, and masking it would hide what the operator must fix).
fn collect_literal_spans(node: &Node, out: &mut Vec<Span>) {
    match &node.kind {
        NodeKind::Seq(items) => items.iter().for_each(|item| collect_literal_spans(item, out)),
        NodeKind::Map(entries) => {
            for (key, value) in entries {
                let is_reference = key.scalar_text().is_some_and(|k| REFERENCE_KEYS.contains(&k.as_str()));
                if !is_reference {
                    collect_literal_spans(value, out);
                }
            }
        }
        NodeKind::Null => {}
        _ => out.push(node.span),
    }
}
