//! Rules for `http:` — URL templates that only the operator's config can steer, authentication (the only
//! place secrets may go), retry numbers, budgets and the error-code path.

use super::compile::{ConfigNames, Ctx, Vars};
use super::config::ConfigCheck;
use crate::diag::{Code, Diagnostic};
use crate::expr::{Part, Template};
use crate::model::{Auth, Budget, ConfigType, Http, OAuth2, Retry};
use crate::source::de::Sp;
use crate::spec::raw::{RawAuth, RawSpec};
use std::time::Duration;

pub(crate) fn check(ctx: &mut Ctx, raw: &RawSpec, config: &ConfigCheck) -> Option<Http> {
    let http = &raw.http;
    let before = ctx.diagnostics.len();
    let plain = Vars::new("in an http setting", &config.names);
    let base_url = url_template(ctx, &http.base_url, config, "base_url");
    let allowed_hosts: Vec<Option<Template>> =
        http.allowed_hosts.iter().map(|h| url_template(ctx, h, config, "allowed host")).collect();
    let headers: Vec<(String, Option<Template>)> = http
        .headers
        .iter()
        .map(|(name, value)| {
            (name.value.clone(), ctx.template(value, &Vars { site: "in a default header".into(), ..plain.clone() }))
        })
        .collect();
    let timeout = http.timeout.as_ref().map_or(Some(Duration::from_secs(60)), |t| positive(ctx, t));
    let auth = check_auth(ctx, http.auth.as_ref(), config);
    let retry = check_retry(ctx, raw);
    let budgets: Vec<Option<Budget>> = http
        .budgets
        .iter()
        .map(|(name, budget)| {
            ctx.check_name(name, "budget");
            if budget.requests.value == 0 {
                ctx.push(
                    Diagnostic::error(
                        Code::Retry,
                        budget.requests.span,
                        "a budget of 0 requests would block every request",
                    )
                    .with_label("here"),
                );
            }
            let per = positive(ctx, &budget.per)?;
            Some(Budget {
                name: name.value.clone(),
                requests: budget.requests.value,
                per,
                description: budget.description.clone(),
            })
        })
        .collect();
    let error_code_path = http.error_code_path.as_ref().map(|p| ctx.path(p));

    if ctx.diagnostics[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    Some(Http {
        base_url: base_url?,
        allowed_hosts: allowed_hosts.into_iter().collect::<Option<_>>()?,
        headers: headers.into_iter().map(|(n, t)| t.map(|t| (n, t))).collect::<Option<_>>()?,
        timeout: timeout?,
        auth: auth?,
        retry: retry?,
        budgets: budgets.into_iter().collect::<Option<_>>()?,
        error_code_path: error_code_path.flatten(),
    })
}

/// A URL template whose host only the operator's config decides: it starts with `http://` or `https://`,
/// or with a hole holding one config field of type url or string.
fn url_template(ctx: &mut Ctx, source: &Sp<String>, config: &ConfigCheck, what: &str) -> Option<Template> {
    let vars = Vars::new(format!("in the {what}"), &config.names);
    let template = ctx.template(source, &vars)?;
    let ok = match template.parts().first() {
        Some(Part::Literal(text)) => {
            let lower = text.to_ascii_lowercase();
            lower.starts_with("https://") || lower.starts_with("http://")
        }
        Some(Part::Hole(expr)) => match expr.variables() {
            [only] if expr.source().trim() == only => only
                .strip_prefix("config.")
                .and_then(|name| config.fields.iter().find(|f| f.name == name))
                .is_some_and(|f| matches!(f.kind, ConfigType::Url | ConfigType::String)),
            _ => false,
        },
        None => false,
    };
    if !ok {
        ctx.push(
            Diagnostic::error(
                Code::BadUrl,
                source.span,
                format!("the {what} must start with `https://` or with a config field of type url"),
            )
            .with_label("here")
            .with_help("e.g. `\"{config.api_base_url}\"` or `\"https://api.example.com/v1\"`"),
        );
        return None;
    }
    Some(template)
}

fn positive(ctx: &mut Ctx, source: &Sp<String>) -> Option<Duration> {
    let duration = ctx.duration(source)?;
    if duration.is_zero() {
        ctx.push(
            Diagnostic::error(Code::BadDuration, source.span, "the duration must be longer than zero")
                .with_label("here"),
        );
        return None;
    }
    Some(duration)
}

fn check_auth(ctx: &mut Ctx, auth: Option<&RawAuth>, config: &ConfigCheck) -> Option<Auth> {
    let names: &ConfigNames = &config.names;
    let vars = Vars::new("in authentication", names).allow_secrets();
    Some(match auth {
        None | Some(RawAuth::None) => Auth::None,
        Some(RawAuth::Bearer(b)) => Auth::Bearer { token: ctx.template(&b.token, &vars)? },
        Some(RawAuth::ApiKey(k)) => {
            let value = ctx.template(&k.value, &vars);
            if k.name.value.trim().is_empty() {
                ctx.push(Diagnostic::error(
                    Code::WrongType,
                    k.name.span,
                    "the key's header or parameter name is empty",
                ));
                return None;
            }
            Auth::ApiKey { location: k.location, name: k.name.value.clone(), value: value? }
        }
        Some(RawAuth::Basic(b)) => {
            let username = ctx.template(&b.username, &vars);
            let password = ctx.template(&b.password, &vars);
            Auth::Basic { username: username?, password: password? }
        }
        Some(RawAuth::Oauth2ClientCredentials(o)) => {
            let token_url = url_template(ctx, &o.token_url, config, "token URL");
            let client_id = ctx.template(&o.client_id, &vars);
            let client_secret = ctx.template(&o.client_secret, &vars);
            let scope = o.scope.as_ref().map(|s| ctx.template(s, &vars));
            let refresh_before = o.refresh_before.as_ref().map_or(Some(Duration::from_secs(300)), |d| ctx.duration(d));
            let mut error_code_paths = Vec::new();
            let mut error_messages = Vec::new();
            if let Some(errors) = &o.errors {
                for path in &errors.code_paths {
                    error_code_paths.push(ctx.path(path));
                }
                for (code, message) in errors.messages.iter() {
                    error_messages.push((code.value.clone(), message.clone()));
                }
            }
            Auth::OAuth2ClientCredentials(Box::new(OAuth2 {
                token_url: token_url?,
                client_id: client_id?,
                client_secret: client_secret?,
                scope: scope.map_or(Some(None), |s| s.map(Some))?,
                credentials_in: o.credentials_in,
                refresh_before: refresh_before?,
                error_code_paths: error_code_paths.into_iter().collect::<Option<_>>()?,
                error_messages,
            }))
        }
    })
}

fn check_retry(ctx: &mut Ctx, raw: &RawSpec) -> Option<Retry> {
    let mut retry = Retry {
        statuses: vec![429, 500, 502, 503, 504],
        max_attempts: 5,
        retry_after: Default::default(),
        max_retry_after: Duration::from_secs(600),
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(60),
        multiplier: 2.0,
        jitter: true,
        on_network_error: true,
    };
    let Some(raw_retry) = &raw.http.retry else { return Some(retry) };
    let before = ctx.diagnostics.len();
    let problem = |ctx: &mut Ctx, span, message: String| {
        ctx.push(Diagnostic::error(Code::Retry, span, message).with_label("here"));
    };
    if let Some(statuses) = &raw_retry.statuses {
        for status in statuses {
            if !(400..=599).contains(&status.value) {
                problem(
                    ctx,
                    status.span,
                    format!("{} is not an error status; only 4xx and 5xx can be retried", status.value),
                );
            }
        }
        retry.statuses = statuses.iter().map(|s| s.value).collect();
    }
    if let Some(attempts) = &raw_retry.max_attempts {
        if !(1..=20).contains(&attempts.value) {
            problem(ctx, attempts.span, format!("max_attempts {} is outside 1..=20", attempts.value));
        }
        retry.max_attempts = attempts.value;
    }
    retry.retry_after = raw_retry.retry_after;
    if let Some(max) = &raw_retry.max_retry_after {
        retry.max_retry_after = ctx.duration(max).unwrap_or_default();
    }
    retry.on_network_error = raw_retry.on_network_error;
    if let Some(backoff) = &raw_retry.backoff {
        if let Some(initial) = &backoff.initial {
            retry.initial_backoff = ctx.duration(initial).unwrap_or_default();
        }
        if let Some(max) = &backoff.max {
            retry.max_backoff = ctx.duration(max).unwrap_or_default();
            if retry.max_backoff < retry.initial_backoff {
                problem(ctx, max.span, "the longest backoff is shorter than the first".into());
            }
        }
        if let Some(multiplier) = &backoff.multiplier {
            if !(1.0..=10.0).contains(&multiplier.value) {
                problem(ctx, multiplier.span, format!("multiplier {} is outside 1..=10", multiplier.value));
            }
            retry.multiplier = multiplier.value;
        }
        retry.jitter = backoff.jitter;
    }
    (!ctx.diagnostics[before..].iter().any(Diagnostic::is_error)).then_some(retry)
}
