//! Operator configuration: reads a config file (or values a host application passes) against a `Spec`
//! and produces the [`RunConfig`] a run uses: the instance name, every config value with defaults
//! applied, the secrets, the selected resources (with the fan-out parents they need), which KRIs to
//! compute and band overrides.
//!
//! Everything is checked before any request is made, and every problem is reported at once, with a place
//! in the config file. Secrets are handled so that they do not end up in messages or logs by accident:
//! - a config file may only name where a secret is (`{ env: NAME }` or `{ file: PATH }`); a secret
//!   written inline is an error whose message does not repeat it ([`mask_inline_secrets`] hides it from
//!   the rendered file excerpt too);
//! - secrets are kept as [`SecretString`], printed as `[redacted]` by `Debug`, and absent from
//!   [`RunConfig::scope`]; only [`RunConfig::auth_scope`] exposes them, for building authentication;
//! - [`RunConfig::secret_values`] lists them so that callers can redact logs and error text.
//!
//! It deliberately does not make requests, write the store, run KRIs, print anything, or read the process
//! environment by itself (the lookup is injected; [`process_env`] is the CLI's). It knows no vendor.
//!
//! The config file format:
//!
//! ```yaml
//! instance: acme-prod              # optional, default "default"
//! config:                          # values for the spec's `config:` fields
//!   tenant: acme                   # a literal, checked against the field
//!   api_token: { env: ACME_TOKEN } # secrets only as { env: NAME } or { file: PATH }
//!   page_size: { file: size.txt }  # references work for any field; the text is then typed and checked
//!   resources: [users, groups]     # the spec's resource-selecting list, if it has one
//! kris: [inactive_users]           # optional: KRIs and metrics to compute (default all)
//! bands:                           # optional: per-KRI band overrides
//!   inactive_users: { green: "<= 5", amber: "<= 20" }
//! ```

mod file;
mod resolve;

#[cfg(test)]
mod tests;

pub use file::MAX_VALUE_FILE_BYTES;
pub use resolve::{MAX_INSTANCE_LEN, check_instance};

use crate::diag::{Diagnostic, did_you_mean};
use crate::expr::{self, Scope};
use crate::model::{Bands, ConfigType, Spec};
use crate::source::Source;
use resolve::Given;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The instance name when a config file does not give one.
pub const DEFAULT_INSTANCE: &str = "default";

/// Reads an operator config file against a spec. `env` looks up environment variables (pass
/// [`process_env`] outside tests). Relative `{ file: PATH }` paths start at the directory of
/// `source.name`.
///
/// On failure, every problem is returned, each pointing into the file. Render them against
/// [`mask_inline_secrets`]`(source, spec)` rather than `source`, so a secret pasted into the file does
/// not reappear in the excerpt shown under the message.
///
/// Computed defaults are evaluated with the current time as `now()`.
pub fn load(source: &Source, spec: &Spec, env: &dyn Fn(&str) -> Option<String>) -> Result<RunConfig, Vec<Diagnostic>> {
    file::load(source, spec, env, now_ms())
}

/// Looks a variable up in the process environment; a variable that is unset or not valid UTF-8 is `None`.
pub fn process_env(name: &str) -> Option<String> {
    // Names the platform cannot hold are refused here rather than passed on: some platforms panic on them.
    if name.is_empty() || name.contains(['=', '\0']) {
        return None;
    }
    std::env::var(name).ok()
}

/// The config file's text with every secret written inline (under a secret field, outside an `env:` or
/// `file:` reference) replaced by `*`, byte for byte, so the spans of [`load`]'s diagnostics still fit.
/// A file that does not parse is returned as it is: nothing in it can be told to be a secret.
pub fn mask_inline_secrets(source: &Source, spec: &Spec) -> Source {
    file::mask_inline_secrets(source, spec)
}

/// Builds a run configuration from values a host application already holds, with the same checks as
/// [`load`]: unknown names, each value against its field, secrets only in `secrets`, required fields,
/// defaults, resource selection. A `null` value counts as not set. Messages have no place and never
/// contain a secret. `kris` is `None` and `band_overrides` empty; set them afterwards if needed.
pub fn from_values(
    spec: &Spec,
    instance: &str,
    values: serde_json::Map<String, Value>,
    secrets: BTreeMap<String, SecretString>,
) -> Result<RunConfig, Vec<String>> {
    let mut errors = Vec::new();
    if let Err(why) = resolve::check_instance(instance) {
        errors.push(why);
    }
    let unknown = |name: &str| {
        let mut message = format!("`{name}` is not a config field of `{}`", spec.id);
        if let Some(close) = did_you_mean(name, spec.config.iter().map(|f| f.name.as_str())) {
            message.push_str(&format!("; did you mean `{close}`?"));
        }
        message
    };
    let mut given = Given::default();
    for (name, value) in values {
        let Some(field) = spec.config_field(&name) else {
            errors.push(unknown(&name));
            continue;
        };
        if field.kind == ConfigType::Secret {
            // The value is not repeated: it is a secret in the wrong place.
            errors.push(format!("`{name}` is a secret; pass it in `secrets`, not in `values`"));
            given.failed.insert(name);
            continue;
        }
        if value.is_null() {
            continue;
        }
        let problems = resolve::check_value(field, &value);
        if problems.is_empty() {
            given.values.insert(name, value);
        } else {
            errors.extend(problems.iter().map(resolve::Problem::host_text));
            given.failed.insert(name);
        }
    }
    for (name, secret) in secrets {
        match spec.config_field(&name) {
            None => errors.push(unknown(&name)),
            Some(field) if field.kind != ConfigType::Secret => {
                errors.push(format!("`{name}` is not a secret; pass it in `values`"));
                given.failed.insert(name);
            }
            Some(_) if secret.expose_secret().is_empty() => {
                errors.push(format!("secret `{name}` is empty"));
                given.failed.insert(name);
            }
            Some(_) => {
                given.secrets.insert(name, secret);
            }
        }
    }
    let run = resolve::complete(spec, instance.to_string(), given, now_ms(), &mut |p| errors.push(p.host_text()));
    if errors.is_empty() { Ok(run) } else { Err(errors) }
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Everything a run needs from its operator, checked against the spec.
pub struct RunConfig {
    /// Names this connector instance in the store and in logs.
    pub instance: String,
    /// Non-secret values, defaults applied.
    values: BTreeMap<String, Value>,
    secrets: BTreeMap<String, SecretString>,
    /// Fields without a value, and whether each is a secret: they read as the empty value in expressions,
    /// as unset optional values do everywhere in the engine, instead of being unknown variables.
    unset: BTreeMap<String, bool>,
    /// The resources to sync, in spec order: the ones the spec's resource-selecting field lists (all when
    /// it has none or the field is unset), plus the fan-out parents they need.
    pub resources: Vec<String>,
    /// KRI and metric slugs to compute; `None` computes all.
    pub kris: Option<Vec<String>>,
    /// Bands that replace the spec's, by KRI slug.
    pub band_overrides: BTreeMap<String, Bands>,
}

impl RunConfig {
    /// A non-secret value (given, or a default). Secrets are never returned here.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// Every non-secret value, defaults applied, for recording what a run was configured with.
    pub fn values(&self) -> &BTreeMap<String, Value> {
        &self.values
    }

    /// A scope with `config.<name>` for every non-secret field (unset ones read as empty). Secrets are
    /// unbound in it, so an expression that reads one fails instead of leaking it into a URL or a record.
    pub fn scope(&self, now_ms: i64) -> ConfigScope<'_> {
        ConfigScope { config: self, now_ms, secrets: false }
    }

    /// Like [`RunConfig::scope`], but secrets are bound too (their exposed text). Only for evaluating the
    /// spec's `http.auth` templates to build authentication requests and headers; nothing else may use it.
    pub fn auth_scope(&self, now_ms: i64) -> ConfigScope<'_> {
        ConfigScope { config: self, now_ms, secrets: true }
    }

    /// The text of every secret, for callers that redact logs and error messages before showing them.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.secrets.values().map(|s| s.expose_secret())
    }
}

impl fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a BTreeMap<String, SecretString>);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.0.keys().map(|k| (k, format_args!("[redacted]")))).finish()
            }
        }
        f.debug_struct("RunConfig")
            .field("instance", &self.instance)
            .field("values", &self.values)
            .field("secrets", &Redacted(&self.secrets))
            .field("unset", &self.unset.keys().collect::<Vec<_>>())
            .field("resources", &self.resources)
            .field("kris", &self.kris)
            .field("band_overrides", &self.band_overrides)
            .finish()
    }
}

/// The [`Scope`] of [`RunConfig::scope`] and [`RunConfig::auth_scope`]: `config.<name>` variables and
/// a pinned clock, no host functions. Hosts that need more variables delegate `config.` names to it.
#[derive(Debug)]
pub struct ConfigScope<'a> {
    config: &'a RunConfig,
    now_ms: i64,
    secrets: bool,
}

impl Scope for ConfigScope<'_> {
    fn variable(&self, name: &str) -> Option<expr::Value> {
        let field = name.strip_prefix("config.")?;
        if let Some(value) = self.config.values.get(field) {
            return Some(expr::from_json(value));
        }
        if let Some(secret) = self.config.secrets.get(field) {
            return self.secrets.then(|| expr::Value::String(secret.expose_secret().to_string()));
        }
        match self.config.unset.get(field) {
            Some(&is_secret) if !is_secret || self.secrets => Some(expr::Value::Empty),
            _ => None,
        }
    }

    fn now_ms(&self) -> i64 {
        self.now_ms
    }
}
