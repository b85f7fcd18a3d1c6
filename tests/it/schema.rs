//! `schemas/spec.schema.json` is exactly what the `RawSpec` types generate, every spec satisfies it, and
//! `engine schema` prints it.

use crate::repo_path;
use engine::spec::schema::spec_schema_json;
use std::path::PathBuf;

const SCHEMA: &str = "schemas/spec.schema.json";
const MODELINE: &str = "# yaml-language-server: $schema=../schemas/spec.schema.json";

/// `specs/*.yaml`, sorted, as paths relative to the repository.
fn specs() -> Vec<String> {
    let dir = repo_path("specs");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<String> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| format!("specs/{}", p.file_name().expect("a file name").to_string_lossy()))
        .collect();
    out.sort();
    out
}

/// Valid fixtures of the validate tests, so the schema check runs even before `specs/` has files.
fn valid_fixtures() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(repo_path("tests/data/validate"))
        .expect("the fixture directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.file_name().expect("a file name").to_string_lossy().into_owned())
        .filter(|name| name.starts_with("ok-"))
        .map(|name| format!("tests/data/validate/{name}"))
        .collect();
    out.sort();
    out
}

#[test]
fn schema_file_is_generated() {
    let generated = spec_schema_json();
    let path: PathBuf = repo_path(SCHEMA);
    if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("cannot write {SCHEMA}: {e}"));
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {SCHEMA}: {e}"));
    if on_disk != generated {
        let first_difference = on_disk.lines().zip(generated.lines()).position(|(a, b)| a != b).map_or_else(
            || "the files differ in length".to_string(),
            |i| format!("first difference on line {}", i + 1),
        );
        panic!("{SCHEMA} is out of date ({first_difference}); run `UPDATE_SCHEMA=1 cargo test --test it schema`");
    }
}

#[test]
fn generated_schema_is_a_valid_draft_07_schema() {
    let schema: serde_json::Value = serde_json::from_str(&spec_schema_json()).expect("the schema is JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("the schema does not compile: {e}"));
}

/// Every error of one file, with the JSON pointer of the offending value.
fn schema_errors(validator: &jsonschema::Validator, relative: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_path(relative)).unwrap_or_else(|e| panic!("cannot read {relative}: {e}"));
    let node = match engine::source::parse(&text) {
        Ok(node) => node,
        Err(d) => {
            let (line, column) = d.span.map_or((0, 0), |s| engine::diag::line_col(&text, s.start));
            return vec![format!("{relative}:{line}:{column}: does not parse: {}", d.message)];
        }
    };
    let instance = node.to_json();
    validator
        .iter_errors(&instance)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!("{relative}: at `{}`: {e}", if at.is_empty() { "/" } else { at.as_str() })
        })
        .collect()
}

#[test]
fn every_spec_satisfies_the_schema() {
    let schema: serde_json::Value = serde_json::from_str(&spec_schema_json()).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let files: Vec<String> = specs().into_iter().chain(valid_fixtures()).collect();
    assert!(!files.is_empty(), "nothing to check");
    let errors: Vec<String> = files.iter().flat_map(|f| schema_errors(&validator, f)).collect();
    assert!(errors.is_empty(), "{} schema error(s):\n{}", errors.len(), errors.join("\n"));
}

#[test]
fn the_schema_rejects_what_the_loader_rejects() {
    // The check above is only worth something if the schema can fail: a misspelt key must not pass.
    let schema: serde_json::Value = serde_json::from_str(&spec_schema_json()).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let text = std::fs::read_to_string(repo_path("tests/data/validate/E101-unknown-key.yaml")).expect("fixture");
    let instance = engine::source::parse(&text).expect("parses").to_json();
    let paths: Vec<String> = validator.iter_errors(&instance).map(|e| e.instance_path().to_string()).collect();
    assert!(
        paths.iter().any(|p| p.starts_with("/resources/users/paginate")),
        "the schema accepted an unknown key under paginate.next_url: {paths:?}"
    );
}

#[test]
fn every_spec_starts_with_the_schema_modeline() {
    let missing: Vec<String> = specs()
        .into_iter()
        .filter(|relative| {
            let text = std::fs::read_to_string(repo_path(relative)).expect("readable");
            text.lines().next() != Some(MODELINE)
        })
        .collect();
    assert!(missing.is_empty(), "these specs do not start with `{MODELINE}`:\n{}", missing.join("\n"));
}

#[test]
fn cli_prints_the_schema() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .arg("schema")
        .output()
        .expect("the engine binary runs");
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout) == spec_schema_json(), "`engine schema` differs from the library");
}

const SANDBOX_SCHEMA: &str = "schemas/sandbox.schema.json";

/// Every `sandbox.yaml` of the example sandboxes and the test scenarios, sorted, relative to the repository.
fn sandbox_files() -> Vec<String> {
    let mut out = Vec::new();
    for pattern_dir in ["examples/sandbox", "tests/fixtures"] {
        let mut dirs = vec![repo_path(pattern_dir)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("a directory").map(|e| e.expect("an entry").path()) {
                if entry.is_dir() {
                    dirs.push(entry);
                } else if entry.file_name().is_some_and(|n| n == "sandbox.yaml") {
                    let relative = entry.strip_prefix(repo_path("")).expect("inside the repository");
                    out.push(relative.to_string_lossy().into_owned());
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn sandbox_schema_file_is_generated() {
    let generated = engine::sandbox::sandbox_schema_json();
    let path = repo_path(SANDBOX_SCHEMA);
    if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap_or_else(|e| panic!("cannot write {SANDBOX_SCHEMA}: {e}"));
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {SANDBOX_SCHEMA}: {e}"));
    assert!(on_disk == generated, "{SANDBOX_SCHEMA} is out of date; run `UPDATE_SCHEMA=1 cargo test --test it schema`");
}

#[test]
fn every_sandbox_satisfies_its_schema_and_names_it() {
    let schema: serde_json::Value =
        serde_json::from_str(&engine::sandbox::sandbox_schema_json()).expect("the schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let files = sandbox_files();
    assert!(files.len() >= 4, "too few sandboxes found: {files:?}");
    let errors: Vec<String> = files.iter().flat_map(|f| schema_errors(&validator, f)).collect();
    assert!(errors.is_empty(), "{} schema error(s):\n{}", errors.len(), errors.join("\n"));
    let unnamed: Vec<&String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(repo_path(f)).expect("readable");
            let first = text.lines().next().unwrap_or("");
            !(first.starts_with("# yaml-language-server: $schema=") && first.ends_with("schemas/sandbox.schema.json"))
        })
        .collect();
    assert!(unnamed.is_empty(), "these sandboxes do not start with the schema modeline: {unnamed:?}");
    // The check can fail: a misspelt key is reported.
    let instance = engine::source::parse("pagesize: 3\n").expect("parses").to_json();
    assert!(validator.iter_errors(&instance).next().is_some(), "the schema accepted an unknown key");
}
