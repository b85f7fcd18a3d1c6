//! Runs a spec: reads every selected resource through the HTTP runtime, maps records into shapes and
//! writes them to the store page by page, and returns a run report.
//!
//! Guarantees, each kept by a specific step below:
//! - A page's rows and the state that follows them commit in one store transaction.
//! - A full sync removes vanished rows only after every resource of the run was read; a resource that
//!   failed or was not applicable removes nothing.
//! - Incremental cursors advance only when a resource's window has been read to the end, so records may
//!   arrive in any order; an interrupted run re-reads the window and events deduplicate by key.
//! - A full sync killed mid-way resumes from its last committed page, keeping the rows it had already seen.
//! - Memory does not grow with the size of a collection: one page is parsed and mapped at a time, while
//!   the next one is fetched and the rows of the two before it are written by the store's writer thread
//!   ([`crate::store::BackgroundWriter`]).
//!
//! This module does not print; progress goes to an [`Observer`], the outcome into the [`RunReport`].

mod check;
mod paginate;
mod request;
mod resource;

pub use check::{Probe, ProbeOutcome, check};
pub use paginate::{Next, Pager, PagingError, link_with_rel};
pub use resource::format_cursor;

use crate::config::RunConfig;
use crate::kri::{KriOptions, KriResult, LastRun};
use crate::model::Spec;
use crate::store::{ResourceReport, ResourceStatus, RunStatus, Store, StoreError};
use serde::Serialize;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// How to run, besides the spec, the config and the store.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// The run's clock in unix milliseconds (`--now`); it decides windows, `updated_at` and `now()`.
    pub now_ms: i64,
    /// Ignore saved cursors and resume positions: read every resource from its beginning.
    pub full: bool,
    /// Only these resources (and the fan-out parents they need), instead of the config's selection.
    pub only: Option<Vec<String>>,
    /// Stops the run after the page in flight has been committed.
    pub cancel: CancellationToken,
    /// Told about progress as it happens.
    pub observer: Option<Arc<dyn Observer>>,
}

/// Progress callbacks, for progress bars or logs. Every method has a default that does nothing.
pub trait Observer: Send + Sync {
    fn resource_started(&self, _resource: &str) {}
    fn page_committed(&self, _resource: &str, _pages: u64, _records: u64) {}
    fn resource_finished(&self, _report: &ResourceReport) {}
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub spec: String,
    pub instance: String,
    pub status: RunStatus,
    pub started_at: i64,
    pub ended_at: i64,
    pub resources: Vec<ResourceReport>,
    /// Run-wide warnings (each resource's own are in its report).
    pub warnings: Vec<String>,
    pub http_requests: u64,
    pub token_requests: u64,
    /// The selected KRIs and metrics, evaluated over the store once the sync ended (also when it failed:
    /// each then says why it is degraded), by slug in spec order.
    #[serde(serialize_with = "crate::kri::serialize_by_slug")]
    pub kris: Vec<KriResult>,
}

impl RunReport {
    pub fn resource(&self, name: &str) -> Option<&ResourceReport> {
        self.resources.iter().find(|r| r.resource == name)
    }

    pub fn kri(&self, slug: &str) -> Option<&KriResult> {
        self.kris.iter().find(|k| k.slug == slug)
    }
}

/// Why a run could not run at all (as opposed to a resource failing, which the report records).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs `spec` with `config` into `store`.
pub async fn run(
    spec: &Spec,
    config: &RunConfig,
    store: &mut Store,
    options: RunOptions,
) -> Result<RunReport, RunError> {
    let now_ms = options.now_ms;
    let selected = selection(spec, config, options.only.as_deref())?;
    let client = Arc::new(resource::client(spec, config, now_ms)?);
    let (base, _) = request::base_and_allowed(spec, config, now_ms).map_err(|e| RunError::Setup(e.0))?;
    let requests = std::sync::atomic::AtomicU64::new(0);
    let started_at = wall_clock_ms();
    let run_id = store.begin_run(&spec.id, &config.instance, now_ms)?;
    let mut reports: Vec<ResourceReport> = Vec::new();
    let mut warnings = Vec::new();
    let mut parents: std::collections::BTreeMap<String, Vec<serde_json::Value>> = Default::default();
    let mut full_synced: Vec<String> = Vec::new();
    let mut interrupted = false;

    for &index in &spec.run_order {
        let resource = &spec.resources[index];
        if !selected.contains(&resource.name) {
            continue;
        }
        if let Some(observer) = &options.observer {
            observer.resource_started(&resource.name);
        }
        let parent_records = match &resource.for_each {
            Some(f) => {
                let parent_ok = reports
                    .iter()
                    .find(|r| r.resource == f.resource)
                    .is_some_and(|r| matches!(r.status, ResourceStatus::Ok | ResourceStatus::Degraded));
                if !parent_ok {
                    let report = ResourceReport {
                        resource: resource.name.clone(),
                        pages: 0,
                        records: 0,
                        written: 0,
                        skipped: 0,
                        status: ResourceStatus::Skipped,
                        warnings: vec![format!("not read: its fan-out parent `{}` was not read", f.resource)],
                    };
                    store.record_resource(&run_id, &report)?;
                    reports.push(report);
                    continue;
                }
                Some(parents.get(&f.resource).cloned().unwrap_or_default())
            }
            None => None,
        };
        let keeps_records =
            spec.resources.iter().any(|r| r.for_each.as_ref().is_some_and(|f| f.resource == resource.name));
        let mut job = resource::ResourceJob {
            spec,
            resource,
            config,
            scope: config.scope(now_ms),
            client: client.clone(),
            base: &base,
            requests: &requests,
            run_id: &run_id,
            now_ms,
            full: options.full,
            cancel: &options.cancel,
            observer: options.observer.as_deref(),
            keep_records: keeps_records,
        };
        let outcome = job.run(store, parent_records.as_deref()).await?;
        if keeps_records {
            parents.insert(resource.name.clone(), outcome.records);
        }
        if outcome.full_sync_complete {
            full_synced.push(resource.name.clone());
        }
        interrupted |= outcome.interrupted;
        store.record_resource(&run_id, &outcome.report)?;
        if let Some(observer) = &options.observer {
            observer.resource_finished(&outcome.report);
        }
        reports.push(outcome.report);
        if interrupted {
            break;
        }
        if outcome.auth_failed {
            warnings.push("the credentials were refused, so no further resource was read".to_string());
            break;
        }
    }

    // Vanished rows go only once every resource has been read, so an entity emitted by two resources
    // cannot be removed by the first before the second has seen it.
    if !interrupted {
        for resource in &full_synced {
            let swept = store.finish_full_sync(&config.instance, resource, &run_id)?;
            if swept.total() > 0
                && let Some(report) = reports.iter_mut().find(|r| &r.resource == resource)
            {
                report.warnings.push(format!("removed {} rows that are no longer in the API", swept.total()));
            }
        }
    }

    let status = if interrupted {
        RunStatus::Interrupted
    } else if reports.iter().any(|r| r.status == ResourceStatus::Failed) {
        RunStatus::Failed
    } else if reports
        .iter()
        .any(|r| matches!(r.status, ResourceStatus::NotApplicable | ResourceStatus::Degraded | ResourceStatus::Skipped))
    {
        RunStatus::Degraded
    } else {
        RunStatus::Ok
    };
    if interrupted {
        warnings.push("the run was stopped; the next run continues where this one left off".to_string());
    }
    let ended_at = started_at + elapsed_since(started_at);
    let mut report = RunReport {
        run_id: run_id.clone(),
        spec: spec.id.clone(),
        instance: config.instance.clone(),
        status,
        started_at: now_ms,
        ended_at: now_ms + (ended_at - started_at),
        resources: reports,
        warnings,
        http_requests: requests.load(std::sync::atomic::Ordering::Relaxed),
        token_requests: client.token_requests(),
        kris: Vec::new(),
    };
    let json = serde_json::to_value(&report).unwrap_or_default();
    store.finish_run(&run_id, status, report.ended_at, &json)?;

    // KRIs come after the run is recorded, from the same outcomes `engine kri` reads back, so both give
    // the same answer. A store failure here loses no synced data, so it is a warning, not a failed run.
    let last = LastRun::from_reports(&run_id, status, &report.resources);
    let kri_options = KriOptions::new(&config.instance, now_ms).with_config(config);
    match crate::kri::evaluate_with(spec, store, &kri_options, Some(&last)) {
        Ok(kris) => report.kris = kris,
        Err(e) => report.warnings.push(format!("KRIs could not be evaluated: {e}")),
    }
    Ok(report)
}

/// The resources to read: the config's selection or `only`, plus the fan-out parents they need.
/// The base URL a run of `spec` under `config` sends its requests to.
pub fn base_url(spec: &Spec, config: &RunConfig, now_ms: i64) -> Result<url::Url, String> {
    request::base_and_allowed(spec, config, now_ms).map(|(base, _)| base).map_err(|e| e.0)
}

/// What a run presents to prove who it is, for test servers that check what they receive. Every value
/// is a secret.
pub enum Credential {
    None,
    /// This header on every API call: bearer tokens, keys in a header, basic auth.
    Header {
        name: String,
        value: secrecy::SecretString,
    },
    /// This query parameter on every API call.
    Query {
        name: String,
        value: secrecy::SecretString,
    },
    /// OAuth2 client credentials posted to `token_url`, in the form or (`basic`) in an `Authorization`
    /// header; API calls then carry the minted token.
    ClientCredentials {
        token_url: url::Url,
        client_id: String,
        client_secret: secrecy::SecretString,
        basic: bool,
    },
}

/// The credential a run of `spec` under `config` presents.
pub fn credential(spec: &Spec, config: &RunConfig, now_ms: i64) -> Result<Credential, String> {
    use crate::http::ResolvedAuth;
    use crate::model::KeyLocation;
    use secrecy::ExposeSecret;
    Ok(match resource::resolve_auth(spec, config, now_ms).map_err(|e| e.0)? {
        ResolvedAuth::None => Credential::None,
        ResolvedAuth::Bearer(token) => Credential::Header {
            name: "authorization".into(),
            value: format!("Bearer {}", token.expose_secret()).into(),
        },
        ResolvedAuth::ApiKey { location: KeyLocation::Header, name, value } => {
            Credential::Header { name: name.to_ascii_lowercase(), value }
        }
        ResolvedAuth::ApiKey { location: KeyLocation::Query, name, value } => Credential::Query { name, value },
        ResolvedAuth::Basic { username, password } => Credential::Header {
            name: "authorization".into(),
            value: crate::http::basic(&username, password.expose_secret()).into(),
        },
        ResolvedAuth::OAuth2 { token_url, client_id, client_secret, credentials_in, .. } => {
            Credential::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                basic: credentials_in == crate::model::CredentialsIn::BasicAuth,
            }
        }
    })
}

fn selection(spec: &Spec, config: &RunConfig, only: Option<&[String]>) -> Result<Vec<String>, RunError> {
    let mut selected: Vec<String> = match only {
        Some(names) => {
            for name in names {
                if spec.resource(name).is_none() {
                    let known: Vec<&str> = spec.resources.iter().map(|r| r.name.as_str()).collect();
                    return Err(RunError::Setup(format!(
                        "`{name}` is not a resource of {}; resources: {}",
                        spec.id,
                        known.join(", ")
                    )));
                }
            }
            names.to_vec()
        }
        None => config.resources.clone(),
    };
    let mut index = 0;
    while index < selected.len() {
        let parent = spec.resource(&selected[index]).and_then(|r| r.for_each.as_ref()).map(|f| f.resource.clone());
        if let Some(parent) = parent.filter(|p| !selected.contains(p)) {
            selected.push(parent);
        }
        index += 1;
    }
    Ok(selected)
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn elapsed_since(started_at: i64) -> i64 {
    (wall_clock_ms() - started_at).max(0)
}
