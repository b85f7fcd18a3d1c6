//! `engine validate`: one invalid spec per diagnostic code under `tests/data/validate/`, each rendered as
//! a snapshot; JSON positions; several breaks in one spec reported together at their exact places; the
//! command line's exit codes; and hostile inputs that must end in a diagnostic, never a crash.
//!
//! Fixture names: `<code>-<slug>.yaml` triggers `<code>` (and, unless a `# also: E123` comment line says
//! otherwise, nothing else); `ok-<slug>.yaml` is a valid spec that must validate clean.

use crate::repo_path;
use engine::diag::{Code, Diagnostic, render_json, render_text};
use engine::source::{MAX_SPEC_BYTES, Source};
use engine::validate::validate;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DIR: &str = "tests/data/validate";
const WIDTH: usize = 100;

/// One file of `tests/data/validate/`.
struct Fixture {
    /// File name without `.yaml`, e.g. `E101-unknown-key`.
    stem: String,
    /// Path relative to the repository, as diagnostics name it.
    relative: String,
    text: String,
}

impl Fixture {
    /// The code a `<code>-<slug>` fixture is about; `None` for `ok-` fixtures.
    fn code(&self) -> Option<&str> {
        let (prefix, _) = self.stem.split_once('-')?;
        Code::ALL.iter().map(|c| c.as_str()).find(|c| *c == prefix)
    }

    /// Codes the fixture's `# also: E103, E202` comment allows besides its own.
    fn also(&self) -> BTreeSet<&str> {
        self.text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("# also:"))
            .flat_map(|codes| codes.split(',').map(str::trim))
            .collect()
    }

    fn validate(&self) -> Vec<Diagnostic> {
        validate(&Source::new(self.relative.clone(), self.text.clone())).diagnostics
    }
}

fn fixtures() -> Vec<Fixture> {
    let mut out: Vec<Fixture> = std::fs::read_dir(repo_path(DIR))
        .unwrap_or_else(|e| panic!("cannot list {DIR}: {e}"))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let stem = path.file_stem().expect("a file name").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            Fixture { relative: format!("{DIR}/{stem}.yaml"), stem, text }
        })
        .collect();
    out.sort_by(|a, b| a.stem.cmp(&b.stem));
    assert!(!out.is_empty(), "no fixtures found in {DIR}");
    out
}

fn codes(diagnostics: &[Diagnostic]) -> Vec<&'static str> {
    diagnostics.iter().map(|d| d.code.as_str()).collect()
}

/// 1-based line and column (in characters) of a byte offset, computed independently of the engine.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// `(code, line, column)` of every diagnostic, as `--format json` reports them.
fn placed(diagnostics: &[Diagnostic], text: &str) -> BTreeSet<(String, usize, usize)> {
    render_json(diagnostics, "spec.yaml", text)
        .into_iter()
        .map(|d| (d.code.to_string(), d.line.unwrap_or(0), d.column.unwrap_or(0)))
        .collect()
}

fn snapshot(name: String, description: &str, rendered: String) {
    let mut settings = insta::Settings::clone_current();
    settings.set_description(description);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, rendered));
}

// ---------------------------------------------------------------------------------------------------------
// One fixture per code

#[test]
fn every_code_has_a_fixture() {
    let fixtures = fixtures();
    let covered: BTreeSet<&str> = fixtures.iter().filter_map(Fixture::code).collect();
    // E7xx are about operator config files, not specs; the config module's own tests cover them.
    let missing: Vec<&str> =
        Code::ALL.iter().map(|c| c.as_str()).filter(|c| !c.starts_with("E7") && !covered.contains(c)).collect();
    assert!(missing.is_empty(), "codes without a fixture `{DIR}/<code>-<slug>.yaml`: {}", missing.join(", "));
    let strays: Vec<&str> = fixtures
        .iter()
        .filter(|f| f.code().is_none() && !f.stem.starts_with("ok-"))
        .map(|f| f.relative.as_str())
        .collect();
    assert!(strays.is_empty(), "fixtures named neither `<known code>-<slug>.yaml` nor `ok-<slug>.yaml`: {strays:?}");
}

#[test]
fn each_fixture_reports_its_code_and_nothing_else() {
    let mut failures = Vec::new();
    for fixture in fixtures() {
        let Some(code) = fixture.code() else { continue };
        let diagnostics = fixture.validate();
        let found = codes(&diagnostics);
        let also = fixture.also();
        if !found.contains(&code) {
            failures.push(format!("{}: expected {code}, found {found:?}", fixture.relative));
        }
        let unexpected: Vec<&str> = found.iter().copied().filter(|c| *c != code && !also.contains(c)).collect();
        if !unexpected.is_empty() {
            failures.push(format!(
                "{}: {unexpected:?} besides {code} (list them in an `# also:` comment if unavoidable)",
                fixture.relative
            ));
        }
        if diagnostics.iter().any(|d| d.span.is_none()) {
            failures.push(format!("{}: a diagnostic without a place in the file", fixture.relative));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fixture_renderings() {
    for fixture in fixtures() {
        if fixture.code().is_none() {
            continue;
        }
        let diagnostics = fixture.validate();
        let rendered = render_text(&diagnostics, &fixture.relative, &fixture.text, WIDTH);
        snapshot(format!("validate__{}", fixture.stem), &fixture.relative, rendered);
    }
}

#[test]
fn ok_fixtures_validate_clean() {
    for fixture in fixtures().iter().filter(|f| f.stem.starts_with("ok-")) {
        let validated = validate(&Source::new(fixture.relative.clone(), fixture.text.clone()));
        assert!(
            validated.diagnostics.is_empty(),
            "{} should validate clean:\n{}",
            fixture.relative,
            render_text(&validated.diagnostics, &fixture.relative, &fixture.text, WIDTH)
        );
        assert!(validated.spec.is_some(), "{}: no spec without diagnostics", fixture.relative);
    }
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_parsing() {
    // Valid YAML padded with a comment, so only the size can be the problem.
    let mut text = std::fs::read_to_string(repo_path(&format!("{DIR}/ok-directory.yaml"))).expect("fixture");
    text.push('#');
    text.push_str(&"x".repeat(MAX_SPEC_BYTES + 1 - text.len()));
    text.push('\n');
    assert!(text.len() > MAX_SPEC_BYTES);
    let validated = validate(&Source::new("big.yaml", text.clone()));
    assert_eq!(codes(&validated.diagnostics), ["E104"]);
    assert!(validated.diagnostics[0].span.is_none(), "a whole-file problem has no span");
    assert!(validated.spec.is_none());
    let json = serde_json::to_value(render_json(&validated.diagnostics, "big.yaml", &text)).expect("serializes");
    assert_eq!(json[0]["line"], serde_json::Value::Null);
    assert_eq!(json[0]["end_column"], serde_json::Value::Null);

    // Exactly at the limit is fine as far as size goes.
    let mut text = std::fs::read_to_string(repo_path(&format!("{DIR}/ok-directory.yaml"))).expect("fixture");
    text.push('#');
    text.push_str(&"x".repeat(MAX_SPEC_BYTES - 1 - text.len()));
    text.push('\n');
    assert_eq!(text.len(), MAX_SPEC_BYTES);
    let validated = validate(&Source::new("big.yaml", text));
    assert_eq!(codes(&validated.diagnostics), Vec::<&str>::new());
}

// ---------------------------------------------------------------------------------------------------------
// JSON form

#[test]
fn json_positions_are_one_based_with_end_positions() {
    let relative = format!("{DIR}/E400-unknown-config.yaml");
    let text = std::fs::read_to_string(repo_path(&relative)).expect("fixture");
    let diagnostics = validate(&Source::new(relative.clone(), text.clone())).diagnostics;
    let json = serde_json::to_value(render_json(&diagnostics, &relative, &text)).expect("serializes");

    let name = "config.page_size";
    let offset = text.find(name).expect("the fixture reads config.page_size");
    let (line, column) = position(&text, offset);
    assert_eq!((line, column), (10, 46), "the fixture changed; update this test");
    assert_eq!(
        json,
        serde_json::json!([{
            "file": relative,
            "code": "E400",
            "severity": "error",
            "message": "`page_size` is not a config field",
            "line": line,
            "column": column,
            "end_line": line,
            "end_column": column + name.len(),
            "label": "unknown config field",
            "help": "config fields: api_base_url",
        }])
    );
}

#[test]
fn json_reports_warnings_and_first_column() {
    let relative = format!("{DIR}/W600-unused-config.yaml");
    let text = std::fs::read_to_string(repo_path(&relative)).expect("fixture");
    let diagnostics = validate(&Source::new(relative.clone(), text.clone())).diagnostics;
    let json = serde_json::to_value(render_json(&diagnostics, &relative, &text)).expect("serializes");
    assert_eq!(json[0]["code"], "W600");
    assert_eq!(json[0]["severity"], "warning");
    // `  page_size:` on line 5: the key starts in column 3 and is 9 characters long.
    assert_eq!((&json[0]["line"], &json[0]["column"]), (&5.into(), &3.into()));
    assert_eq!((&json[0]["end_line"], &json[0]["end_column"]), (&5.into(), &12.into()));
}

// ---------------------------------------------------------------------------------------------------------
// Several breaks, several diagnostics

/// One deliberate mistake: `find` (unique in the valid spec) becomes `replace`, and the diagnostic `code`
/// must start where `at` first occurs inside `replace`.
struct Break {
    what: &'static str,
    find: &'static str,
    replace: &'static str,
    at: &'static str,
    code: &'static str,
}

const BREAKS: &[Break] = &[
    Break {
        what: "a misspelt key",
        find: "next_url: { path: \"$.next\", stop_on_empty_page: false }",
        replace: "next_url: { path: \"$.next\", stop_on_empty_pages: false }",
        at: "stop_on_empty_pages",
        code: "E101",
    },
    Break {
        what: "a broken JSONPath",
        find: "records: \"$.groups[*]\"",
        replace: "records: \"$.groups[*\"",
        at: "*",
        code: "E205",
    },
    Break {
        what: "an unknown function",
        find: "value: percent(enrolled, enabled, 1)",
        replace: "value: percnt(enrolled, enabled, 1)",
        at: "percnt",
        code: "E201",
    },
    Break {
        what: "a missing fan-out parent",
        find: "for_each: { resource: groups, as: group }",
        replace: "for_each: { resource: group, as: group }",
        at: "group,",
        code: "E401",
    },
    Break {
        what: "a missing fallback resource",
        find: "- resource: mfa\n",
        replace: "- resource: mfa_report\n",
        at: "mfa_report",
        code: "E401",
    },
    Break {
        what: "an unknown config field in a template",
        find: "top: \"{config.page_size}\"",
        replace: "top: \"{config.pagesize}\"",
        at: "config.pagesize",
        code: "E400",
    },
];

fn valid_spec() -> (String, String) {
    let relative = format!("{DIR}/ok-directory.yaml");
    let text = std::fs::read_to_string(repo_path(&relative)).expect("fixture");
    (relative, text)
}

fn apply(text: &str, breaks: &[&Break]) -> String {
    let mut broken = text.to_string();
    for b in breaks {
        assert_eq!(text.matches(b.find).count(), 1, "{}: `{}` must occur once in the valid spec", b.what, b.find);
        broken = broken.replacen(b.find, b.replace, 1);
    }
    broken
}

/// Where each break's diagnostic must be, found by searching the broken text.
fn expected(broken: &str, breaks: &[&Break]) -> BTreeSet<(String, usize, usize)> {
    breaks
        .iter()
        .map(|b| {
            assert_eq!(broken.matches(b.replace).count(), 1, "{}: `{}` must occur once", b.what, b.replace);
            let start = broken.find(b.replace).expect("just checked") + b.replace.find(b.at).expect("`at` in replace");
            let (line, column) = position(broken, start);
            (b.code.to_string(), line, column)
        })
        .collect()
}

#[test]
fn the_valid_spec_for_breaks_is_valid() {
    let (relative, text) = valid_spec();
    let diagnostics = validate(&Source::new(relative.clone(), text.clone())).diagnostics;
    assert!(diagnostics.is_empty(), "{}", render_text(&diagnostics, &relative, &text, WIDTH));
}

#[test]
fn each_break_alone_is_reported_at_its_place() {
    let (_, text) = valid_spec();
    for b in BREAKS {
        let broken = apply(&text, &[b]);
        let diagnostics = validate(&Source::new("spec.yaml", broken.clone())).diagnostics;
        assert_eq!(
            placed(&diagnostics, &broken),
            expected(&broken, &[b]),
            "{}:\n{}",
            b.what,
            render_text(&diagnostics, "spec.yaml", &broken, WIDTH)
        );
    }
}

#[test]
fn several_breaks_are_reported_together_in_one_run() {
    let (relative, text) = valid_spec();
    let all: Vec<&Break> = BREAKS.iter().collect();
    let broken = apply(&text, &all);
    let validated = validate(&Source::new(relative.clone(), broken.clone()));
    let rendered = render_text(&validated.diagnostics, &relative, &broken, WIDTH);
    assert!(validated.spec.is_none());
    assert_eq!(placed(&validated.diagnostics, &broken), expected(&broken, &all), "{rendered}");
    assert_eq!(validated.diagnostics.len(), BREAKS.len(), "{rendered}");
    // Sorted by position in the file.
    let starts: Vec<usize> = validated.diagnostics.iter().map(|d| d.span.expect("placed").start).collect();
    assert!(starts.is_sorted(), "diagnostics are not in file order: {starts:?}");
    snapshot("validate__several_breaks".to_string(), "ok-directory.yaml with every break of BREAKS applied", rendered);
}

// ---------------------------------------------------------------------------------------------------------
// The command line

fn engine(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the engine binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_report(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", text(&output.stdout), text(&output.stderr))
    })
}

#[test]
fn cli_exit_codes_for_valid_and_invalid_specs() {
    let ok = engine(&["validate", "tests/data/validate/ok-directory.yaml"]);
    assert_eq!(ok.status.code(), Some(0), "stderr:\n{}", text(&ok.stderr));
    assert!(text(&ok.stdout).starts_with("ok      tests/data/validate/ok-directory.yaml: acme-directory"));
    assert_eq!(text(&ok.stderr), "");

    let bad = engine(&["validate", "tests/data/validate/E101-unknown-key.yaml"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(text(&bad.stdout), "invalid tests/data/validate/E101-unknown-key.yaml (1 error)\n");
    let stderr = text(&bad.stderr);
    assert!(stderr.contains("E101"), "{stderr}");
    assert!(stderr.contains("tests/data/validate/E101-unknown-key.yaml:11:35"), "{stderr}");

    // One invalid file among valid ones fails the whole run, and every file is reported.
    let both =
        engine(&["validate", "tests/data/validate/ok-directory.yaml", "tests/data/validate/E101-unknown-key.yaml"]);
    assert_eq!(both.status.code(), Some(1));
    assert_eq!(text(&both.stdout).lines().count(), 2, "{}", text(&both.stdout));
}

#[test]
fn cli_json_format() {
    let bad = engine(&["validate", "--format", "json", "tests/data/validate/E101-unknown-key.yaml"]);
    assert_eq!(bad.status.code(), Some(1));
    let report = json_report(&bad);
    assert_eq!(report.as_array().map(Vec::len), Some(1));
    let file = &report[0];
    assert_eq!(file["file"], "tests/data/validate/E101-unknown-key.yaml");
    assert_eq!(file["valid"], false);
    assert_eq!(file["errors"], 1);
    assert_eq!(file["warnings"], 0);
    assert_eq!(file["diagnostics"][0]["code"], "E101");
    assert_eq!(file["diagnostics"][0]["line"], 11);
    assert_eq!(file["diagnostics"][0]["column"], 35);
    assert_eq!(text(&bad.stderr), "", "JSON output leaves stderr alone");

    let ok = engine(&["validate", "--format", "json", "tests/data/validate/ok-directory.yaml"]);
    assert_eq!(ok.status.code(), Some(0));
    let report = json_report(&ok);
    assert_eq!(report[0]["valid"], true);
    assert_eq!(report[0]["diagnostics"], serde_json::json!([]));
}

#[test]
fn cli_deny_warnings() {
    let path = "tests/data/validate/W600-unused-config.yaml";
    let lenient = engine(&["validate", path]);
    assert_eq!(lenient.status.code(), Some(0), "warnings alone do not fail: {}", text(&lenient.stderr));
    assert!(text(&lenient.stderr).contains("W600"));

    let strict = engine(&["validate", "--deny-warnings", path]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(text(&strict.stdout).starts_with("invalid "), "{}", text(&strict.stdout));

    let json = engine(&["validate", "--deny-warnings", "--format", "json", path]);
    assert_eq!(json.status.code(), Some(1));
    let report = json_report(&json);
    assert_eq!(report[0]["valid"], false);
    assert_eq!(report[0]["warnings"], 1);
}

#[test]
fn cli_missing_file() {
    let output = engine(&["validate", "--format", "json", "tests/data/validate/no-such-file.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    let report = json_report(&output);
    assert_eq!(report[0]["valid"], false);
    assert_eq!(report[0]["diagnostics"][0]["code"], "E100");
}

// ---------------------------------------------------------------------------------------------------------
// Hostile input: a diagnostic and exit code 1, never a crash or a hang.

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("validate");
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("scratch file");
    path
}

const HEAD: &str = "spec_version: 1
id: demo
title: Demo
http:
  base_url: \"https://api.example.com\"
resources:
  users:
    request: { path: /users }
    records: \"$.items[*]\"
    emit:
      - entity: { type: demo_user, id: $.id }
";

fn with_formula(formula: &str) -> String {
    format!(
        "{HEAD}kris:\n  k:\n    title: K\n    let:\n      n: {{ count: entity.demo_user }}\n    value: \"{formula}\"\n"
    )
}

/// Runs `engine validate --format json` on generated text and returns the codes it reports.
fn cli_codes(name: &str, text_: &str) -> Vec<String> {
    let path = scratch(name, text_);
    let output = engine(&["validate", "--format", "json", path.to_str().expect("utf-8 path")]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{name}: expected exit code 1, got {:?}\nstderr (tail): {}",
        output.status,
        text(&output.stderr).chars().rev().take(2000).collect::<String>().chars().rev().collect::<String>()
    );
    let report = json_report(&output);
    report[0]["diagnostics"]
        .as_array()
        .expect("a diagnostics list")
        .iter()
        .map(|d| d["code"].as_str().expect("a code").to_string())
        .collect()
}

#[test]
fn hostile_yaml_ends_in_e104() {
    let cases = [
        ("deep-flow.yaml", format!("{HEAD}setup: {}{}\n", "[".repeat(200_000), "]".repeat(200_000))),
        ("deep-flow-65.yaml", format!("{HEAD}setup: {}x{}\n", "[".repeat(65), "]".repeat(65))),
        (
            "deep-block.yaml",
            format!("{HEAD}description:\n{}", (1..1000).map(|i| format!("{}a:\n", " ".repeat(i))).collect::<String>()),
        ),
        (
            "alias-bomb.yaml",
            std::fs::read_to_string(repo_path(&format!("{DIR}/E104-alias-bomb.yaml"))).expect("fixture"),
        ),
        ("too-large.yaml", format!("{HEAD}#{}\n", "x".repeat(MAX_SPEC_BYTES))),
    ];
    for (name, yaml) in cases {
        assert_eq!(cli_codes(name, &yaml), ["E104"], "{name}");
    }
}

#[test]
fn hostile_expressions_end_in_e203() {
    let cases = [
        ("deep-parens.yaml", with_formula(&format!("{}n{}", "(".repeat(100_000), ")".repeat(100_000)))),
        ("long-formula.yaml", with_formula(&format!("{}n", "n + ".repeat(100_000)))),
        ("unary-chain.yaml", with_formula(&format!("{}n", "-".repeat(10_000)))),
        ("not-chain.yaml", with_formula(&format!("n > 0 && {}true", "!".repeat(10_000)))),
        ("power-chain.yaml", with_formula(&format!("{}n", "n ^ ".repeat(5_000)))),
        (
            "deep-template.yaml",
            HEAD.replace(
                "path: /users",
                &format!("path: \"/users/{{{}1{}}}\"", "(".repeat(50_000), ")".repeat(50_000)),
            ),
        ),
    ];
    for (name, yaml) in cases {
        assert_eq!(cli_codes(name, &yaml), ["E203"], "{name}");
    }
}

#[test]
fn hostile_jsonpaths_end_in_e205() {
    let cases = [
        ("jsonpath-filters.yaml", HEAD.replace("\"$.items[*]\"", &format!("\"${}\"", "[?(".repeat(5_000)))),
        (
            "jsonpath-parens.yaml",
            HEAD.replace("\"$.items[*]\"", &format!("\"$[?{}@.a{}]\"", "(".repeat(50_000), ")".repeat(50_000))),
        ),
    ];
    for (name, yaml) in cases {
        assert_eq!(cli_codes(name, &yaml), ["E205"], "{name}");
    }
}

#[test]
fn cli_invalid_utf8_is_e100() {
    let path = scratch("invalid-utf8.yaml", "");
    std::fs::write(&path, b"spec_version: 1\nid: demo\ntitle: D\xff\xfemo\n").expect("scratch file");
    let output = engine(&["validate", "--format", "json", path.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json_report(&output)[0]["diagnostics"][0]["code"], "E100");
}

// ---------------------------------------------------------------------------------------------------------
// Regressions: each of these once misbehaved.

#[test]
fn fan_out_cycle_message_names_the_cycle() {
    let relative = format!("{DIR}/E402-fan-out-cycle.yaml");
    let diagnostics =
        validate(&Source::new(relative.clone(), std::fs::read_to_string(repo_path(&relative)).unwrap())).diagnostics;
    // `groups` fans out over `members` and `members` over `groups`.
    let message = &diagnostics[0].message;
    assert!(
        message.ends_with("groups → members → groups") || message.ends_with("members → groups → members"),
        "{message}"
    );
}

#[test]
fn cursor_without_incremental_is_one_diagnostic() {
    let text = HEAD.replace("path: /users }", "path: /users, query: { since: \"{cursor}\" } }");
    let diagnostics = validate(&Source::new("spec.yaml", text)).diagnostics;
    assert_eq!(codes(&diagnostics), ["E304"]);
}

#[test]
fn page_number_param_conflict_points_into_the_paginator() {
    let text = HEAD.replace(
        "request: { path: /users }",
        "request: { path: /users, query: { page: \"1\" } }\n    paginate:\n      page_number: { size: 10 }",
    );
    let diagnostics = validate(&Source::new("spec.yaml", text.clone())).diagnostics;
    assert_eq!(codes(&diagnostics), ["E303"]);
    for label in &diagnostics[0].secondary {
        assert_ne!(
            position(&text, label.span.start),
            (1, 1),
            "secondary label `{}` points at the file start",
            label.text
        );
    }
}

#[test]
fn cli_invalid_utf8_points_at_the_bad_byte() {
    let path = scratch("invalid-utf8-position.yaml", "");
    std::fs::write(&path, b"spec_version: 1\nid: demo\ntitle: D\xff\xfemo\n").expect("scratch file");
    let path = path.to_str().expect("utf-8 path");
    // The text cannot be shown, so the place is in the message rather than in a span.
    let json = json_report(&engine(&["validate", "--format", "json", path]));
    let message = json[0]["diagnostics"][0]["message"].as_str().expect("a message");
    assert!(message.contains("line 3, column 9"), "{message}");
    let rendered = text(&engine(&["validate", path]).stderr);
    assert!(!rendered.contains("Failed to read contents"), "{rendered}");
}

#[test]
fn nesting_limit_message_is_plain() {
    let relative = format!("{DIR}/E104-deep-nesting.yaml");
    let diagnostics =
        validate(&Source::new(relative.clone(), std::fs::read_to_string(repo_path(&relative)).unwrap())).diagnostics;
    assert!(!diagnostics[0].message.contains("Depth {"), "{}", diagnostics[0].message);
}
