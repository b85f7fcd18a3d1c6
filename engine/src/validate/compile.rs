//! Shared compilers used by every rule family: expressions, templates and JSONPaths with their errors
//! mapped onto the spec text, variable and function checks, durations and names.

use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::expr::{self, Expr, Template};
use crate::jsonpath::JsonPath;
use crate::source::de::Sp;
use crate::spec::raw::RawSpec;
use std::collections::BTreeSet;
use std::time::Duration;

/// Collected diagnostics plus everything expressions referred to (for the unused-config warning).
#[derive(Default)]
pub(crate) struct Ctx {
    pub diagnostics: Vec<Diagnostic>,
    pub used_variables: BTreeSet<String>,
    /// Some items failed to load, so names they would define may legitimately be missing.
    pub incomplete: bool,
}

/// What names an expression or template may read at one place of the spec.
#[derive(Clone, Default)]
pub(crate) struct Vars {
    /// Said in messages: "in a request template", "in a predicate over entity.acme_user".
    pub site: String,
    /// Names allowed exactly.
    pub names: BTreeSet<String>,
    /// Names accepted without being offered in help lines, because another rule reports their misuse.
    pub quiet_names: BTreeSet<String>,
    /// Prefixes under which any name is allowed (`group.` for a fan-out parent's fields).
    pub prefixes: Vec<String>,
    /// `config.<name>` of every config field, and which of them are secrets.
    pub config: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
    /// Whether secrets may be read here (only authentication settings).
    pub secrets_allowed: bool,
    /// Whether host functions (`lookup`, `exists`, `has_edge`) are available here.
    pub host_functions: bool,
    /// A help line naming what is available, shown with unknown-variable errors.
    pub available: Option<String>,
}

impl Vars {
    pub fn new(site: impl Into<String>, config: &ConfigNames) -> Vars {
        Vars { site: site.into(), config: config.all.clone(), secrets: config.secrets.clone(), ..Vars::default() }
    }
    pub fn with_names<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Vars {
        self.names.extend(names.into_iter().map(str::to_string));
        self
    }
    pub fn with_prefix(mut self, prefix: &str) -> Vars {
        self.prefixes.push(format!("{prefix}."));
        self
    }
    pub fn allow_secrets(mut self) -> Vars {
        self.secrets_allowed = true;
        self
    }
    pub fn allow_host_functions(mut self) -> Vars {
        self.host_functions = true;
        self
    }
    pub fn with_available(mut self, text: String) -> Vars {
        self.available = Some(text);
        self
    }
}

/// Config field names as expressions read them (`config.tenant_id`).
#[derive(Clone, Default)]
pub(crate) struct ConfigNames {
    pub all: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

impl Ctx {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn path(&mut self, source: &Sp<String>) -> Option<JsonPath> {
        match JsonPath::compile(&source.value) {
            Ok(path) => Some(path),
            Err(e) => {
                let span = e.offset.map_or(source.span, |o| source.sub_span(o, 1));
                self.push(
                    Diagnostic::error(Code::JsonPathSyntax, span, format!("`{}`: {}", source.value, e.message))
                        .with_label("JSONPath error here")
                        .with_help("JSONPaths start at the record with `$`, e.g. `$.name` or `$['@next.link']`"),
                );
                None
            }
        }
    }

    pub fn expr(&mut self, source: &Sp<String>, vars: &Vars) -> Option<Expr> {
        match expr::compile(&source.value) {
            Ok(compiled) => {
                let ok = self.check_names(source, 0, compiled.variables(), compiled.functions(), vars);
                ok.then_some(compiled)
            }
            Err(e) => {
                self.expr_error(source, 0, &e);
                None
            }
        }
    }

    pub fn template(&mut self, source: &Sp<String>, vars: &Vars) -> Option<Template> {
        match expr::compile_template(&source.value) {
            Ok(template) => {
                let ok = self.check_names(source, 0, template.variables(), template.functions(), vars);
                ok.then_some(template)
            }
            Err(e) => {
                // Errors inside a hole are expression errors; the rest are about the braces themselves.
                let code = match e.message.strip_prefix("in template hole") {
                    Some(inner) if inner.contains("unknown function") => Code::UnknownFunction,
                    Some(inner) if inner.contains("deep") || inner.contains("long") => Code::ExprTooComplex,
                    Some(_) => Code::ExprSyntax,
                    None => Code::TemplateSyntax,
                };
                let span = e.offset.map_or(source.span, |o| source.sub_span(o, 1));
                self.push(
                    Diagnostic::error(code, span, format!("template `{}`: {}", source.value, e.message))
                        .with_label("here")
                        .with_help("holes are written `{expression}`; write `{{` and `}}` for literal braces"),
                );
                None
            }
        }
    }

    fn expr_error(&mut self, source: &Sp<String>, base: usize, error: &expr::ExprError) {
        let span = error.offset.map_or(source.span, |o| source.sub_span(base + o, 1));
        let too_complex =
            error.message.contains("long") || error.message.contains("deep") || error.message.contains("nest");
        let code = if too_complex {
            Code::ExprTooComplex
        } else if error.message.starts_with("unknown function") {
            Code::UnknownFunction
        } else {
            Code::ExprSyntax
        };
        let help = if too_complex {
            "split the formula into named aggregates or simpler parts"
        } else {
            "expressions use operators such as `==`, `&&`, `+` and functions such as `coalesce(x, 0)`"
        };
        // "unknown function `x`; did you mean `y`?" reads better with the suggestion as the help line.
        let (message, help) = match error.message.split_once("; did you mean") {
            Some((message, rest)) => (message.to_string(), format!("did you mean{rest}")),
            None => (error.message.clone(), help.to_string()),
        };
        self.push(
            Diagnostic::error(code, span, format!("expression `{}`: {message}", one_line(&source.value)))
                .with_label("here")
                .with_help(help),
        );
    }

    /// Checks that every variable and function an expression uses exists here. Returns false on error.
    fn check_names(
        &mut self,
        source: &Sp<String>,
        base: usize,
        variables: &[String],
        functions: &[String],
        vars: &Vars,
    ) -> bool {
        let mut ok = true;
        for function in functions {
            let info = expr::functions().iter().find(|f| f.name == function.as_str());
            match info {
                Some(info) if info.host && !vars.host_functions => {
                    ok = false;
                    self.push(
                        Diagnostic::error(
                            Code::UnknownFunction,
                            name_span(source, base, function),
                            format!("`{function}` reads stored data and is only available in indicator predicates"),
                        )
                        .with_label("not available here"),
                    );
                }
                Some(_) => {}
                None => {
                    ok = false;
                    let help = match expr::suggest_function(function) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => "see the function list in the spec language reference".to_string(),
                    };
                    self.push(
                        Diagnostic::error(
                            Code::UnknownFunction,
                            name_span(source, base, function),
                            format!("unknown function `{function}`"),
                        )
                        .with_label("unknown function")
                        .with_help(help),
                    );
                }
            }
        }
        for variable in variables {
            self.used_variables.insert(variable.clone());
            if let Some(field) = variable.strip_prefix("config.") {
                if !vars.config.contains(variable) {
                    ok = false;
                    let names: Vec<&str> = vars.config.iter().filter_map(|c| c.strip_prefix("config.")).collect();
                    let help = match did_you_mean(field, names.iter().copied()) {
                        Some(close) => format!("did you mean `config.{close}`?"),
                        None if names.is_empty() => "the spec defines no config fields".to_string(),
                        None => format!("config fields: {}", names.join(", ")),
                    };
                    self.push(
                        Diagnostic::error(
                            Code::UnknownConfig,
                            name_span(source, base, variable),
                            format!("`{field}` is not a config field"),
                        )
                        .with_label("unknown config field")
                        .with_help(help),
                    );
                } else if vars.secrets.contains(variable) && !vars.secrets_allowed {
                    ok = false;
                    self.push(
                        Diagnostic::error(
                            Code::SecretLeak,
                            name_span(source, base, variable),
                            format!("secret `{field}` is read {}", vars.site),
                        )
                        .with_label("secret used here")
                        .with_help("secrets may only be used in `http.auth`, which sends them to allowed hosts only"),
                    );
                }
                continue;
            }
            let allowed = vars.names.contains(variable)
                || vars.quiet_names.contains(variable)
                || vars.prefixes.iter().any(|p| variable.starts_with(p.as_str()));
            if !allowed {
                ok = false;
                let mut candidates: Vec<&str> = vars.names.iter().map(String::as_str).collect();
                candidates.extend(vars.config.iter().map(String::as_str));
                let help = match did_you_mean(variable, candidates.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => vars.available.clone().unwrap_or_else(|| {
                        let mut all: Vec<String> = vars.names.iter().cloned().collect();
                        all.extend(vars.prefixes.iter().map(|p| format!("{p}<field>")));
                        all.push("config.<field>".into());
                        format!("available here: {}", all.join(", "))
                    }),
                };
                let code = if vars.site.contains("predicate") { Code::UnknownAttribute } else { Code::UnknownVariable };
                self.push(
                    Diagnostic::error(
                        code,
                        name_span(source, base, variable),
                        format!("`{variable}` is not available {}", vars.site),
                    )
                    .with_label("unknown name")
                    .with_help(help),
                );
            }
        }
        ok
    }

    pub fn duration(&mut self, source: &Sp<String>) -> Option<Duration> {
        match parse_duration(&source.value) {
            Ok(d) => Some(d),
            Err(message) => {
                self.push(
                    Diagnostic::error(Code::BadDuration, source.span, message)
                        .with_label("not a duration")
                        .with_help("write a number and a unit, e.g. `500ms`, `10s`, `15m`, `24h`, `30d` or `1d12h`"),
                );
                None
            }
        }
    }

    /// Checks a lower-snake-case name (resources, shape types, slugs). Returns false on error.
    pub fn check_name(&mut self, name: &Sp<String>, what: &str) -> bool {
        let ok = is_snake_case(&name.value);
        if !ok {
            self.push(
                Diagnostic::error(Code::BadName, name.span, format!("{what} `{}` is not lower snake case", name.value))
                    .with_label("here")
                    .with_help("use lowercase letters, digits and `_`, starting with a letter, e.g. `user_sessions`"),
            );
        }
        ok
    }

    pub fn check_id(&mut self, id: &Sp<String>) {
        let ok = !id.value.is_empty()
            && id.value.starts_with(|c: char| c.is_ascii_lowercase())
            && id.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            self.push(
                Diagnostic::error(Code::BadName, id.span, format!("spec id `{}` is not a lowercase name", id.value))
                    .with_help("use lowercase letters, digits, `-` and `_`, e.g. `acme-directory`"),
            );
        }
    }

    pub fn unknown_resource(&mut self, name: &Sp<String>, raw: &RawSpec) {
        if raw.broken.contains(&format!("resources.{}", name.value)) {
            return; // Already reported where it failed to load.
        }
        let help = match did_you_mean(&name.value, raw.resources.names()) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("resources: {}", raw.resources.names().collect::<Vec<_>>().join(", ")),
        };
        self.push(
            Diagnostic::error(
                Code::UnknownResource,
                name.span,
                format!("`{}` is not a resource of this spec", name.value),
            )
            .with_label("unknown resource")
            .with_help(help),
        );
    }
}

pub(crate) fn is_snake_case(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 80 { format!("{}…", flat.chars().take(80).collect::<String>()) } else { flat }
}

/// The span of the first whole-word occurrence of `name` in the source, or the whole value.
fn name_span(source: &Sp<String>, base: usize, name: &str) -> crate::diag::Span {
    let text = &source.value[base.min(source.value.len())..];
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '.' || c == ':';
    let mut start = 0;
    while let Some(found) = text[start..].find(name) {
        let at = start + found;
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            return source.sub_span(base + at, name.len());
        }
        start = at + name.len();
    }
    source.span
}

/// Parses `500ms`, `10s`, `15m`, `24h`, `30d` and sums like `1d12h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim().is_empty() {
        return Err("empty duration".into());
    }
    if text.contains(char::is_whitespace) {
        return Err(format!("`{text}` is not a duration"));
    }
    let mut total_ms: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{text}` is not a duration"));
        }
        let number: u128 = rest[..digits].parse().map_err(|_| format!("`{text}` is not a duration"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit_ms: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{text}` has a number without a unit")),
            other => return Err(format!("`{other}` is not a duration unit")),
        };
        rest = &rest[unit_len..];
        total_ms = total_ms.saturating_add(number.saturating_mul(unit_ms));
    }
    if total_ms > 10 * 365 * 86_400_000 {
        return Err(format!("`{text}` is longer than ten years"));
    }
    Ok(Duration::from_millis(total_ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1d12h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_duration("29d23h"), Ok(Duration::from_secs(29 * 86_400 + 23 * 3600)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10 sec").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn name_span_finds_whole_words() {
        let source =
            Sp { value: "config.a + a".to_string(), span: crate::diag::Span::new(100, 12), text_offset: Some(0) };
        assert_eq!(name_span(&source, 0, "a"), crate::diag::Span::new(111, 1));
        assert_eq!(name_span(&source, 0, "config.a"), crate::diag::Span::new(100, 8));
    }
}
