//! Every spec and example validates clean; each spec's compiled form is kept as a readable summary
//! snapshot, so a change to a spec shows up as a reviewable diff; and the engine names no vendor.

use crate::repo_path;
use engine::diag::render_text;
use engine::model::{
    Aggregate, Attribute, Auth, Emit, EmitFields, FieldMap, FieldSource, Indicator, Resource, Schedule, Spec,
};
use engine::source::Source;
use engine::validate::validate;
use serde_json::{Map, Value, json};
use std::path::Path;
use std::time::Duration;

/// Every `.yaml` file under `dir` (recursively), as paths relative to the repository, sorted.
fn yaml_files(relative_dir: &str) -> Vec<String> {
    fn walk(dir: &Path, relative: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            let child = format!("{relative}/{name}");
            if path.is_dir() {
                walk(&path, &child, out);
            } else if name.ends_with(".yaml") {
                out.push(child);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_path(relative_dir), relative_dir, &mut out);
    out.sort();
    out
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative)).unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// `specs/*.yaml` (not recursive: that is where connector specs live).
fn specs() -> Vec<String> {
    yaml_files("specs").into_iter().filter(|f| f.matches('/').count() == 1).collect()
}

/// `examples/**/*.yaml` that are specs (other YAML there, such as config files, is skipped).
fn example_specs() -> Vec<String> {
    yaml_files("examples").into_iter().filter(|f| read(f).lines().any(|l| l.starts_with("spec_version:"))).collect()
}

fn validate_clean(relative: &str) -> Result<Spec, String> {
    let text = read(relative);
    let validated = validate(&Source::new(relative, text.clone()));
    if !validated.diagnostics.is_empty() {
        return Err(render_text(&validated.diagnostics, relative, &text, 100));
    }
    validated.spec.ok_or_else(|| format!("{relative}: no diagnostics but no spec either"))
}

#[test]
fn specs_directory_is_found() {
    assert!(repo_path("specs").is_dir(), "no specs/ directory at {}", repo_path("specs").display());
    // Whatever lists the specs must see every `.yaml` the directory has, so a wrong path cannot pass silently.
    let on_disk = std::fs::read_dir(repo_path("specs"))
        .expect("specs/ is readable")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml")))
        .count();
    assert_eq!(specs().len(), on_disk, "specs() missed some of specs/*.yaml");
}

#[test]
fn every_spec_and_example_validates_clean() {
    let files: Vec<String> = specs().into_iter().chain(example_specs()).collect();
    let failures: Vec<String> = files.iter().filter_map(|f| validate_clean(f).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} specs do not validate clean:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn spec_summaries() {
    for relative in specs() {
        // A spec that does not validate is reported by the test above; it has no summary to compare.
        let Ok(spec) = validate_clean(&relative) else { continue };
        let mut settings = insta::Settings::clone_current();
        settings.set_description(format!("compiled summary of {relative}"));
        settings.set_omit_expression(true);
        settings.bind(|| insta::assert_yaml_snapshot!(format!("spec__{}", spec.id), summary(&spec)));
    }
}

#[test]
fn fixture_summary() {
    // The summary of the validate tests' bigger valid spec, so the summary itself is reviewed even
    // while specs/ is empty.
    let spec = validate_clean("tests/data/validate/ok-directory.yaml").unwrap_or_else(|e| panic!("{e}"));
    let mut settings = insta::Settings::clone_current();
    settings.set_description("compiled summary of tests/data/validate/ok-directory.yaml");
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_yaml_snapshot!("spec__fixture_acme-directory", summary(&spec)));
}

// ---------------------------------------------------------------------------------------------------------
// The summary

fn summary(spec: &Spec) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(spec.id));
    out.insert("title".into(), json!(spec.title));
    if let Some(schedule) = spec.schedule {
        out.insert("schedule".into(), json!(schedule_text(schedule)));
    }
    if let Some(test) = &spec.connection_test {
        out.insert("connection_test".into(), json!(test));
    }
    out.insert("config".into(), spec.config.iter().map(config_field).collect());
    out.insert("auth".into(), json!(auth_kind(&spec.http.auth)));
    out.insert("resources".into(), spec.run_order.iter().map(|&i| resource(&spec.resources[i])).collect());
    out.insert("kris".into(), spec.kris.iter().map(indicator).collect());
    out.insert("metrics".into(), spec.metrics.iter().map(indicator).collect());
    Value::Object(out)
}

fn config_field(field: &engine::model::ConfigField) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(field.name));
    out.insert("type".into(), json!(snake(&format!("{:?}", field.kind))));
    if let Some(items) = field.items {
        out.insert("items".into(), json!(snake(&format!("{items:?}"))));
    }
    if !field.values.is_empty() {
        out.insert("values".into(), json!(field.values));
    }
    out.insert("required".into(), json!(field.required));
    if let Some(default) = &field.default {
        out.insert("default".into(), default.clone());
    }
    if let Some(expr) = &field.default_expr {
        out.insert("default_expr".into(), json!(expr.source()));
    }
    if field.selects_resources {
        out.insert("selects_resources".into(), json!(true));
    }
    Value::Object(out)
}

fn auth_kind(auth: &Auth) -> &'static str {
    match auth {
        Auth::None => "none",
        Auth::Bearer { .. } => "bearer",
        Auth::ApiKey { .. } => "api_key",
        Auth::Basic { .. } => "basic",
        Auth::OAuth2ClientCredentials(_) => "oauth2_client_credentials",
    }
}

fn resource(r: &Resource) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(r.name));
    out.insert("method".into(), json!(format!("{:?}", r.request.method).to_uppercase()));
    out.insert("path".into(), json!(r.request.path.source()));
    if !r.request.query.is_empty() {
        out.insert("query".into(), r.request.query.iter().map(|(k, _)| json!(k)).collect());
    }
    out.insert("records".into(), json!(r.records.source()));
    out.insert("paging".into(), json!(r.paginate.kind()));
    if let Some(f) = &r.for_each {
        let mut each = Map::new();
        each.insert("resource".into(), json!(f.resource));
        each.insert("as".into(), json!(f.alias));
        if let Some(filter) = &f.filter {
            each.insert("where".into(), json!(filter.source()));
        }
        out.insert("for_each".into(), Value::Object(each));
    }
    if let Some(i) = &r.incremental {
        let mut inc = Map::new();
        inc.insert("cursor".into(), json!(i.cursor.source()));
        inc.insert("initial".into(), json!(i.initial.source()));
        if let Some((param, template)) = &i.filter {
            inc.insert("filter".into(), json!(format!("{param}={}", template.source())));
        }
        out.insert("incremental".into(), Value::Object(inc));
    }
    if let Some(budget) = &r.budget {
        out.insert("budget".into(), json!(budget));
    }
    if !r.on_status.is_empty() {
        let rules = r
            .on_status
            .iter()
            .map(|rule| {
                let mut m = Map::new();
                m.insert("status".into(), json!(rule.statuses));
                if let Some(code) = &rule.error_code {
                    m.insert("error_code".into(), json!(code));
                }
                m.insert("action".into(), json!(snake(&format!("{:?}", rule.action))));
                Value::Object(m)
            })
            .collect();
        out.insert("on_status".into(), rules);
    }
    out.insert("emit".into(), r.emit.iter().map(emit).collect());
    Value::Object(out)
}

fn emit(e: &Emit) -> Value {
    let mut out = Map::new();
    out.insert("type".into(), json!(e.type_key));
    let fields: Vec<(&str, &FieldMap)> = match &e.fields {
        EmitFields::Entity { id, .. } => vec![("id", id)],
        EmitFields::Event { key, start, end, .. } => {
            [("key", Some(key)), ("start", Some(start)), ("end", end.as_ref())]
                .into_iter()
                .filter_map(|(n, f)| f.map(|f| (n, f)))
                .collect()
        }
        EmitFields::Metric { ts, value, .. } => {
            [("ts", ts.as_ref()), ("value", Some(value))].into_iter().filter_map(|(n, f)| f.map(|f| (n, f))).collect()
        }
        EmitFields::Edge { from_type, from_id, kind, to_type, to_id } => {
            out.insert("edge".into(), json!(format!("{from_type} -{kind}-> {to_type}")));
            vec![("from", from_id), ("to", to_id)]
        }
        EmitFields::Distribution { ts, points, count, sum, kind, .. } => {
            out.insert("kind".into(), json!(snake(&format!("{kind:?}"))));
            [("ts", ts.as_ref()), ("points", Some(points)), ("count", Some(count)), ("sum", Some(sum))]
                .into_iter()
                .filter_map(|(n, f)| f.map(|f| (n, f)))
                .collect()
        }
    };
    for (name, map) in fields {
        out.insert(name.into(), json!(field_map(map)));
    }
    if let Some(when) = &e.when {
        out.insert("when".into(), json!(when.source()));
    }
    if !e.attributes.is_empty() {
        out.insert("attributes".into(), Value::Object(e.attributes.iter().map(attribute).collect()));
    }
    Value::Object(out)
}

fn attribute(a: &Attribute) -> (String, Value) {
    (a.name.clone(), json!(field_map(&a.map)))
}

/// `path $.createdAt | unix_ms`, `expr if(ok, 1, 0)`, `template {group.id}`, `value true`.
fn field_map(map: &FieldMap) -> String {
    let mut text = match &map.source {
        FieldSource::Path(p) => format!("path {}", p.source()),
        FieldSource::Template(t) => format!("template {}", t.source()),
        FieldSource::Expr(e) => format!("expr {}", e.source()),
        FieldSource::Value(v) => format!("value {v}"),
    };
    for transform in &map.transforms {
        text.push_str(&format!(" | {}", snake(&format!("{transform:?}"))));
    }
    text
}

fn indicator(i: &Indicator) -> Value {
    let mut out = Map::new();
    out.insert("slug".into(), json!(i.slug));
    out.insert("let".into(), Value::Object(i.lets.iter().map(aggregate).collect()));
    out.insert("value".into(), json!(i.value.source()));
    if let Some(bands) = &i.bands {
        let mut b = Map::new();
        b.insert("green".into(), json!(format!("{} {}", bands.green.op.as_str(), bands.green.value)));
        if let Some(amber) = &bands.amber {
            b.insert("amber".into(), json!(format!("{} {}", amber.op.as_str(), amber.value)));
        }
        out.insert("bands".into(), Value::Object(b));
    }
    if let Some(evidence) = &i.evidence {
        out.insert("evidence".into(), json!(evidence));
    }
    if !i.fallbacks.is_empty() {
        let fallbacks = i
            .fallbacks
            .iter()
            .map(|f| {
                let mut m = Map::new();
                m.insert("resource".into(), json!(f.resource));
                m.insert("on".into(), f.on.iter().map(|o| json!(snake(&format!("{o:?}")))).collect());
                m.insert("status".into(), json!(snake(&format!("{:?}", f.status))));
                if let Some(value) = &f.value {
                    m.insert("value".into(), json!(value.source()));
                }
                Value::Object(m)
            })
            .collect();
        out.insert("when_unavailable".into(), fallbacks);
    }
    out.insert("reads".into(), json!(i.reads));
    Value::Object(out)
}

fn aggregate(a: &Aggregate) -> (String, Value) {
    let mut out = Map::new();
    out.insert(a.op.as_str().into(), json!(a.type_key));
    if let Some(field) = &a.field {
        out.insert("field".into(), json!(field));
    }
    if let Some(filter) = &a.filter {
        out.insert("where".into(), json!(filter.source()));
    }
    if let Some(window) = &a.window {
        out.insert("window".into(), json!(format!("{} in the last {}", window.field, duration(window.last))));
    }
    (a.name.clone(), Value::Object(out))
}

fn schedule_text(schedule: Schedule) -> String {
    match schedule {
        Schedule::Hourly => "hourly".into(),
        Schedule::Daily => "daily".into(),
        Schedule::Weekly => "weekly".into(),
        Schedule::Every(d) => format!("every {}", duration(d)),
    }
}

/// `1d12h`, `15m`, `500ms`: the way specs write durations.
fn duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// `NotApplicable` → `not_applicable`, the way specs spell enum values.
fn snake(debug: &str) -> String {
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------
// No vendor in the engine

const VENDOR_WORDS: &[&str] = &["entra", "okta", "odata", "microsoft"];

/// Splits text into lowercase words at anything but letters and digits, and at lower-to-upper case changes,
/// so `entra_user`, `@odata.nextLink` and `oktaUser` all yield the vendor word while `central` does not.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in line.chars() {
        let boundary = !c.is_alphanumeric() || (c.is_uppercase() && previous_lower);
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current).to_lowercase());
        }
        if c.is_alphanumeric() {
            current.push(c);
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    if !current.is_empty() {
        words.push(current.to_lowercase());
    }
    words
}

#[test]
fn vendor_word_splitting() {
    assert_eq!(words("e.g. `$['@odata.nextLink']`"), ["e", "g", "odata", "next", "link"]);
    assert!(words("entity entra_user").contains(&"entra".to_string()));
    assert!(words("let oktaUser = 1").contains(&"okta".to_string()));
    assert!(!words("central entrance").iter().any(|w| VENDOR_WORDS.contains(&w.as_str())));
}

#[test]
fn engine_names_no_vendor() {
    let mut files = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    walk(&repo_path("engine/src"), &mut files);
    files.sort();
    assert!(!files.is_empty(), "engine/src has no files");
    let root = repo_path("");
    let mut hits = Vec::new();
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        let relative = path.strip_prefix(&root).unwrap_or(path).display().to_string();
        for (index, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            let found: Vec<&str> = VENDOR_WORDS
                .iter()
                .copied()
                .filter(|v| words(line).iter().any(|w| w == v))
                .chain(lower.contains("graph.microsoft").then_some("graph.microsoft"))
                .collect();
            if !found.is_empty() {
                hits.push(format!("{relative}:{}: {} — {}", index + 1, found.join(", "), line.trim()));
            }
        }
    }
    assert!(hits.is_empty(), "the engine must not name a vendor; move these to a spec:\n{}", hits.join("\n"));
}
