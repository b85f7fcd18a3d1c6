//! A sandbox directory: `sandbox.yaml` and one JSON Lines file of records per resource.
//!
//! `sandbox.yaml` may `extends:` another sandbox directory; its settings then override the other's, key by
//! key, and a resource's records come from the nearest directory of the chain that has a file for it.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file that makes a directory a sandbox.
pub const SANDBOX_FILE: &str = "sandbox.yaml";
const MAX_EXTENDS: usize = 8;

/// The JSON Schema of `sandbox.yaml`, pretty, with a trailing newline, as `schemas/sandbox.schema.json`
/// holds it.
pub fn sandbox_schema_json() -> String {
    crate::spec::schema::draft07_json::<SandboxFile>("sandbox.schema.json", "Sandbox")
}

/// Why a sandbox directory could not be loaded; the message names the file (and line) at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

/// `sandbox.yaml`: a local API server's settings for one spec. Records live beside it, one
/// `<resource>.jsonl` per resource.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SandboxFile {
    /// The id of the spec this tenant is for; loading it with another spec is an error.
    spec: Option<String>,
    /// What this tenant or scenario is.
    description: Option<String>,
    /// Another sandbox directory, relative to this one, whose settings and data this one starts from.
    extends: Option<String>,
    /// The moment the records' times are as of (RFC 3339). Without `--now`, a sandbox run moves every
    /// time by the whole days since, so the tenant looks recent.
    anchor: Option<String>,
    /// The connector instance name a run against the sandbox stores under (default `sandbox`).
    instance: Option<String>,
    /// Config values a run against the sandbox uses; `{origin}` in a string is the server's origin.
    config: Option<Map<String, Value>>,
    /// Values of the spec's secret fields: made-up credentials the sandbox accepts.
    secrets: Option<BTreeMap<String, String>>,
    /// The most records one page holds.
    page_size: Option<usize>,
    /// A query parameter by which the client asks for a smaller page (`$top`, `limit`).
    page_size_param: Option<String>,
    /// The query parameter that carries the opaque page token in next links.
    page_token_param: Option<String>,
    /// A query parameter listing, comma-separated, the top-level members each record is served with.
    select_param: Option<String>,
    /// Answer to a request without the expected credentials (status 401).
    unauthorized: Option<Value>,
    /// Answer of the token endpoint to wrong client credentials (status 401).
    token_error: Option<Value>,
    /// Per resource of the spec: where its records are, page size, canned replies, injected faults.
    #[serde(default)]
    resources: BTreeMap<String, ResourceFile>,
    /// For replayed scenarios (snapshot tests): the runs to make, in order.
    runs: Option<Vec<RunPlan>>,
    /// For replayed scenarios: another scenario directory whose stored rows this one must end with.
    same_store_as: Option<String>,
}

/// One resource's sandbox settings.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ResourceFile {
    /// The records file, relative to this directory (default `<resource>.jsonl`).
    data: Option<String>,
    /// The most records one page of this resource holds.
    page_size: Option<usize>,
    /// The member of a fan-out resource's records that names the parent they belong to.
    parent_field: Option<String>,
    /// Canned answers instead of the records; the first whose `when_query` matches is given.
    replies: Option<Vec<Reply>>,
    /// Faults injected on given pages.
    faults: Option<Vec<Fault>>,
}

/// A canned answer that replaces the resource's records when its query matches.
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// Query parameters whose value must contain the given text for this reply to apply; empty matches all.
    #[serde(default)]
    pub when_query: BTreeMap<String, String>,
    /// The HTTP status.
    pub status: u16,
    /// The JSON body, e.g. the vendor's error object.
    #[serde(default)]
    pub body: Value,
    /// Extra response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A fault injected on the first `times` requests of one page (numbered from 1).
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The page (from 1) whose requests fail.
    pub page: usize,
    /// How many requests of that page fail before it is served.
    #[serde(default = "one")]
    pub times: u32,
    /// Answer with this status instead of the page.
    pub status: Option<u16>,
    /// With `status`: a `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
    /// With `status`: the JSON body.
    #[serde(default)]
    pub body: Value,
    /// Send half of the page and drop the connection.
    #[serde(default)]
    pub truncate: bool,
    /// Send an empty page whose next link leads to the real one.
    #[serde(default)]
    pub empty_page: bool,
}

fn one() -> u32 {
    1
}

/// One run of a replayed scenario.
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunPlan {
    /// The run's clock (RFC 3339); the anchor when not given.
    pub now: Option<String>,
    /// Ignore saved cursors and resume positions, as `engine run --full`.
    #[serde(default)]
    pub full: bool,
    /// Only these resources, as `engine run --resources`.
    pub resources: Option<Vec<String>>,
}

/// A loaded sandbox: settings with `extends` applied and every resource's records.
#[derive(Clone, Debug)]
pub struct SandboxData {
    pub dir: PathBuf,
    pub spec: Option<String>,
    pub description: Option<String>,
    /// Timestamps in the records are as of this moment (ms). A sandbox run without a fixed clock shifts
    /// every timestamp by the whole days since, so the tenant always looks recent.
    pub anchor_ms: Option<i64>,
    pub instance: String,
    pub config: Map<String, Value>,
    pub secrets: BTreeMap<String, String>,
    pub page_size: usize,
    pub page_size_param: Option<String>,
    pub page_token_param: String,
    pub select_param: Option<String>,
    pub unauthorized: Value,
    pub token_error: Value,
    pub resources: BTreeMap<String, ResourceData>,
    pub runs: Vec<RunPlan>,
    /// For replayed scenarios: a scenario whose stored rows this one must end with (not inherited).
    pub same_store_as: Option<PathBuf>,
}

#[derive(Clone, Debug, Default)]
pub struct ResourceData {
    /// Where the records came from, for messages; `None` when no file exists (an empty collection).
    pub file: Option<PathBuf>,
    /// Each record as its JSON text (checked to be JSON), which takes a fraction of the memory of a parsed
    /// value: a benchmark tenant holds hundreds of thousands.
    pub records: Vec<String>,
    pub page_size: Option<usize>,
    pub parent_field: String,
    pub replies: Vec<Reply>,
    pub faults: Vec<Fault>,
}

impl SandboxData {
    /// Loads the sandbox in `dir`, following `extends`.
    pub fn load(dir: &Path) -> Result<SandboxData, DataError> {
        let chain = read_chain(dir)?;
        let same_store_as = chain[0].0.same_store_as.as_ref().map(|other| dir.join(other));
        let mut merged = SandboxFile::default();
        let mut resources: BTreeMap<String, (ResourceFile, PathBuf)> = BTreeMap::new();
        // Oldest ancestor first, so every later file overrides what came before.
        for (file, dir) in chain.iter().rev() {
            let file = file.clone();
            merged.spec = file.spec.or(merged.spec);
            merged.description = file.description.or(merged.description);
            merged.anchor = file.anchor.or(merged.anchor);
            merged.instance = file.instance.or(merged.instance);
            if let Some(config) = file.config {
                merged.config.get_or_insert_with(Map::new).extend(config);
            }
            if let Some(secrets) = file.secrets {
                merged.secrets.get_or_insert_with(BTreeMap::new).extend(secrets);
            }
            merged.page_size = file.page_size.or(merged.page_size);
            merged.page_size_param = file.page_size_param.or(merged.page_size_param);
            merged.page_token_param = file.page_token_param.or(merged.page_token_param);
            merged.select_param = file.select_param.or(merged.select_param);
            merged.unauthorized = file.unauthorized.or(merged.unauthorized);
            merged.token_error = file.token_error.or(merged.token_error);
            merged.runs = file.runs.or(merged.runs);
            for (name, resource) in file.resources {
                let entry = resources.entry(name).or_insert_with(|| (ResourceFile::default(), dir.clone()));
                let old = &mut entry.0;
                if resource.data.is_some() {
                    entry.1 = dir.clone();
                    old.data = resource.data;
                }
                old.page_size = resource.page_size.or(old.page_size);
                old.parent_field = resource.parent_field.or(old.parent_field.take());
                old.replies = resource.replies.or(old.replies.take());
                old.faults = resource.faults.or(old.faults.take());
            }
        }
        let anchor_ms = merged
            .anchor
            .as_deref()
            .map(|text| {
                text.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).map_err(|e| {
                    DataError(format!(
                        "{}: anchor `{text}` is not an RFC 3339 time: {e}",
                        dir.join(SANDBOX_FILE).display()
                    ))
                })
            })
            .transpose()?;
        let dirs: Vec<&PathBuf> = chain.iter().map(|(_, d)| d).collect();
        let mut loaded = BTreeMap::new();
        let mut names: Vec<String> = resources.keys().cloned().collect();
        // A records file without a `resources:` entry is a resource too.
        for dir in &dirs {
            for entry in std::fs::read_dir(dir).map_err(|e| DataError(format!("{}: {e}", dir.display())))? {
                let path = entry.map_err(|e| DataError(format!("{}: {e}", dir.display())))?.path();
                if path.extension().is_some_and(|e| e == "jsonl")
                    && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                    && !names.iter().any(|n| n == stem)
                {
                    names.push(stem.to_string());
                }
            }
        }
        for name in names {
            let (settings, named_in) = resources.remove(&name).unwrap_or_else(|| (ResourceFile::default(), dir.into()));
            let file = match &settings.data {
                Some(data) => Some(named_in.join(data)),
                None => dirs.iter().map(|d| d.join(format!("{name}.jsonl"))).find(|p| p.is_file()),
            };
            let records = match &file {
                Some(path) => read_jsonl(path)?,
                None => Vec::new(),
            };
            let resource = ResourceData {
                file,
                records,
                page_size: settings.page_size,
                parent_field: settings.parent_field.unwrap_or_else(|| "_parent".into()),
                replies: settings.replies.unwrap_or_default(),
                faults: settings.faults.unwrap_or_default(),
            };
            if let Some(fault) = resource.faults.iter().find(|f| f.page == 0) {
                return Err(DataError(format!("resource `{name}`: fault pages count from 1, not {}", fault.page)));
            }
            loaded.insert(name, resource);
        }
        Ok(SandboxData {
            dir: dir.to_path_buf(),
            spec: merged.spec,
            description: merged.description,
            anchor_ms,
            instance: merged.instance.unwrap_or_else(|| "sandbox".into()),
            config: merged.config.unwrap_or_default(),
            secrets: merged.secrets.unwrap_or_default(),
            page_size: merged.page_size.unwrap_or(100).max(1),
            page_size_param: merged.page_size_param,
            page_token_param: merged.page_token_param.unwrap_or_else(|| "page_token".into()),
            select_param: merged.select_param,
            unauthorized: merged.unauthorized.unwrap_or_else(|| serde_json::json!({"error": "unauthorized"})),
            token_error: merged.token_error.unwrap_or_else(|| serde_json::json!({"error": "invalid_client"})),
            resources: loaded,
            runs: merged.runs.unwrap_or_else(|| vec![RunPlan { now: None, full: false, resources: None }]),
            same_store_as,
        })
    }
}

/// `dir`'s file, then the file it extends, and so on.
fn read_chain(dir: &Path) -> Result<Vec<(SandboxFile, PathBuf)>, DataError> {
    let mut chain = Vec::new();
    let mut next = Some(dir.to_path_buf());
    while let Some(dir) = next.take() {
        if chain.len() == MAX_EXTENDS {
            return Err(DataError(format!("{}: more than {MAX_EXTENDS} levels of `extends`", dir.display())));
        }
        let path = dir.join(SANDBOX_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            DataError(format!("{}: {e} (a sandbox directory holds a `{SANDBOX_FILE}`)", path.display()))
        })?;
        let file: SandboxFile =
            serde_saphyr::from_str(&text).map_err(|e| DataError(format!("{}: {e}", path.display())))?;
        if let Some(parent) = &file.extends {
            next = Some(dir.join(parent));
        }
        chain.push((file, dir));
    }
    Ok(chain)
}

/// One JSON value per line; blank lines are skipped.
fn read_jsonl(path: &Path) -> Result<Vec<String>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError(format!("{}: {e}", path.display())))?;
    let mut records = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        serde_json::from_str::<serde::de::IgnoredAny>(line)
            .map_err(|e| DataError(format!("{}:{}: not a JSON value: {e}", path.display(), number + 1)))?;
        records.push(line.to_string());
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn extends_overrides_settings_and_finds_the_nearest_records() {
        let root = std::env::temp_dir().join(format!("sandbox-data-{}", std::process::id()));
        let base = root.join("base");
        let child = root.join("child");
        write(&base, SANDBOX_FILE, "spec: s\nanchor: 2025-01-01T00:00:00Z\npage_size: 2\nconfig: { a: 1, b: 2 }\n");
        write(&base, "users.jsonl", "{\"id\": 1}\n\n{\"id\": 2}\n");
        write(&base, "logs.jsonl", "{\"id\": 9}\n");
        write(
            &child,
            SANDBOX_FILE,
            "extends: ../base\nconfig: { b: 3 }\nresources:\n  users:\n    replies: [{ status: 403, body: { e: 1 } }]\n",
        );
        write(&child, "logs.jsonl", "");
        let data = SandboxData::load(&child).unwrap();
        assert_eq!(data.spec.as_deref(), Some("s"));
        assert_eq!(data.page_size, 2);
        assert_eq!(data.config, serde_json::json!({"a": 1, "b": 3}).as_object().unwrap().clone());
        assert_eq!(data.resources["users"].records.len(), 2);
        assert_eq!(data.resources["users"].replies[0].status, 403);
        assert!(data.resources["logs"].records.is_empty());
        assert_eq!(data.anchor_ms, Some(1_735_689_600_000));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_bad_line_is_named_by_file_and_line() {
        let dir = std::env::temp_dir().join(format!("sandbox-bad-{}", std::process::id()));
        write(&dir, SANDBOX_FILE, "{}\n");
        write(&dir, "users.jsonl", "{\"id\": 1}\n{\"id\": \n");
        let error = SandboxData::load(&dir).unwrap_err().0;
        assert!(error.contains("users.jsonl:2: not a JSON value"), "{error}");
        write(&dir, SANDBOX_FILE, "pagesize: 3\n");
        let error = SandboxData::load(&dir).unwrap_err().0;
        assert!(error.contains("pagesize"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
