//! `engine check`: the token exchange plus one probe request per resource, to tell which resources these
//! credentials can read before a real sync. Nothing is stored.

use super::RunError;
use super::request::{self, RequestScope};
use super::resource;
use crate::config::RunConfig;
use crate::http::{HttpError, Request};
use crate::model::{Spec, StatusAction};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    Ok,
    /// 403: a missing permission or licence.
    Forbidden,
    /// The spec's status policy says the resource is not available here (licence, cloud).
    NotApplicable,
    /// The spec's status policy re-reads the resource in a reduced form.
    Degraded,
    NotFound,
    /// Not probed, because the resource it fans out over could not be read.
    Skipped,
    Error,
}

impl ProbeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeOutcome::Ok => "ok",
            ProbeOutcome::Forbidden => "forbidden",
            ProbeOutcome::NotApplicable => "not applicable",
            ProbeOutcome::Degraded => "degraded",
            ProbeOutcome::NotFound => "not found",
            ProbeOutcome::Skipped => "skipped",
            ProbeOutcome::Error => "error",
        }
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Probe {
    pub resource: String,
    pub outcome: ProbeOutcome,
    pub detail: String,
}

/// Probes every selected resource with its first page. A failed token exchange is an error of the whole
/// check, explained with the spec's messages for the token endpoint's error codes.
pub async fn check(spec: &Spec, config: &RunConfig, now_ms: i64) -> Result<Vec<Probe>, RunError> {
    let client = resource::client(spec, config, now_ms)?;
    let (base, _) = request::base_and_allowed(spec, config, now_ms).map_err(|e| RunError::Setup(e.0))?;
    let scope = config.scope(now_ms);
    let mut first_records: BTreeMap<String, Value> = BTreeMap::new();
    let mut probes = Vec::new();
    for &index in &spec.run_order {
        let resource = &spec.resources[index];
        if !config.resources.contains(&resource.name) {
            continue;
        }
        let parent = match &resource.for_each {
            Some(f) => match first_records.get(&f.resource) {
                Some(record) => Some((f.alias.as_str(), record)),
                None => {
                    probes.push(Probe {
                        resource: resource.name.clone(),
                        outcome: ProbeOutcome::Skipped,
                        detail: format!("needs a record of `{}` to probe", f.resource),
                    });
                    continue;
                }
            },
            None => None,
        };
        let cursor = resource.incremental.as_ref().and_then(|i| match i.initial.eval(&scope) {
            Ok(crate::expr::Value::Int(ms)) => Some(resource::format_cursor(ms, i.format)),
            _ => None,
        });
        let request_scope = RequestScope { config: &scope, parent, cursor: cursor.clone(), now_ms };
        let built = request::first_url(
            spec,
            &base,
            &resource.request,
            &request_scope,
            resource.incremental.as_ref().zip(cursor.as_deref()),
            &[],
            &[],
        )
        .and_then(|url| Ok((url, request::headers(spec, &resource.request, &request_scope)?)));
        let (url, headers) = match built {
            Ok(built) => built,
            Err(e) => {
                probes.push(Probe { resource: resource.name.clone(), outcome: ProbeOutcome::Error, detail: e.0 });
                continue;
            }
        };
        let request = Request {
            method: resource.request.method,
            url,
            headers,
            body: None,
            budget: resource.budget.clone(),
            retry_statuses_extra: Vec::new(),
        };
        let response = match client.send(request).await {
            Ok(response) => response,
            Err(error @ HttpError::Auth { .. }) => return Err(RunError::Setup(error.to_string())),
            Err(error) => {
                probes.push(Probe {
                    resource: resource.name.clone(),
                    outcome: ProbeOutcome::Error,
                    detail: error.to_string(),
                });
                continue;
            }
        };
        let body: Option<Value> = serde_json::from_slice(&response.body).ok();
        let needs = needs(resource);
        let probe = if (200..300).contains(&response.status) {
            let records = body.as_ref().map(|b| resource.records.query(b)).unwrap_or_default();
            if let Some(first) = records.first() {
                first_records.insert(resource.name.clone(), (*first).clone());
            }
            Probe {
                resource: resource.name.clone(),
                outcome: ProbeOutcome::Ok,
                detail: format!("{} records on the first page", records.len()),
            }
        } else {
            let code = body.as_ref().and_then(|b| spec.http.error_code_path.as_ref()?.first(b)).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            let rule = resource.on_status.iter().find(|r| {
                r.statuses.contains(&response.status) && r.error_code.as_ref().is_none_or(|c| Some(c) == code.as_ref())
            });
            let outcome = match (rule.map(|r| r.action), response.status) {
                (Some(StatusAction::NotApplicable), _) => ProbeOutcome::NotApplicable,
                (Some(StatusAction::Fallback), _) => ProbeOutcome::Degraded,
                (_, 403) => ProbeOutcome::Forbidden,
                (_, 404) => ProbeOutcome::NotFound,
                _ => ProbeOutcome::Error,
            };
            let mut detail = format!("HTTP {}", response.status);
            if let Some(code) = &code {
                detail.push_str(&format!(" {code}"));
            }
            if let Some(message) = rule.and_then(|r| r.message.as_ref()) {
                detail.push_str(&format!(": {}", message.split_whitespace().collect::<Vec<_>>().join(" ")));
            }
            if !needs.is_empty() {
                detail.push_str(&format!(" (needs {needs})"));
            }
            Probe { resource: resource.name.clone(), outcome, detail }
        };
        probes.push(probe);
    }
    Ok(probes)
}

/// "User.Read.All, licence: ..." for a resource, from its spec.
fn needs(resource: &crate::model::Resource) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !resource.permissions.is_empty() {
        parts.push(resource.permissions.join(", "));
    }
    if let Some(licence) = &resource.licence {
        parts.push(format!("licence: {licence}"));
    }
    parts.join("; ")
}
