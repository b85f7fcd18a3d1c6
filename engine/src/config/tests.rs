//! Config files and host values against a small inline spec: every rule of `config::load` and
//! `config::from_values`, the scopes, and that secrets stay out of messages and `Debug`.

use super::*;
use crate::diag::{Code, render_json, render_text};
use crate::expr::compile;
use crate::model::Comparison;
use crate::validate::validate;
use std::path::PathBuf;

const SPEC: &str = r#"
spec_version: 1
id: demo
title: Demo
config:
  tenant_id:
    type: string
    required: true
    pattern: "[A-Za-z0-9.-]+"
    example: acme.example
  api_token:
    type: secret
    required: true
  resources:
    type: list
    items: enum
    selects_resources: true
    values: [users, groups, members]
  lookback_days:
    type: integer
    default: 7
    minimum: 1
    maximum: 30
  cloud:
    type: enum
    values: [x, y]
    default: x
  api_base_url:
    type: url
    default_expr: 'switch(config.cloud, "x", "https://x.example", "https://y.example")'
  region:
    type: string
  region_url:
    type: url
    default_expr: '"https://" + coalesce(config.region, "main") + ".example"'
  verbose:
    type: boolean
http:
  base_url: "{config.api_base_url}"
  allowed_hosts: ["{config.region_url}"]
  auth:
    bearer: { token: "{config.api_token}" }
resources:
  users:
    request:
      path: "/{config.tenant_id}/users"
      query: { days: "{config.lookback_days}", verbose: "{config.verbose}" }
    records: "$.items[*]"
    emit:
      - entity: { type: demo_user, id: $.id, attributes: { active: $.active } }
  groups:
    request: { path: /groups }
    records: "$.items[*]"
    emit:
      - entity: { type: demo_group, id: $.id }
  members:
    for_each: { resource: groups, as: group }
    request: { path: "/groups/{group.id}/members" }
    records: "$.items[*]"
    emit:
      - edge:
          from: { type: demo_group, id: { template: "{group.id}" } }
          kind: has_member
          to: { type: demo_user, id: $.id }
kris:
  inactive_users:
    title: Inactive users
    let:
      inactive: { count: entity.demo_user, where: "active != true" }
    value: inactive
    bands: { green: "<= 5", amber: "<= 20" }
metrics:
  user_count:
    title: Users
    let:
      users: { count: entity.demo_user }
    value: users
"#;

fn spec() -> Spec {
    let validated = validate(&Source::new("demo.yaml", SPEC));
    let errors: Vec<_> = validated.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{}", render_text(&validated.diagnostics, "demo.yaml", SPEC, 100));
    validated.spec.expect("the test spec is valid")
}

const TOKEN: &str = "tok-3f9a-very-secret";

fn env(name: &str) -> Option<String> {
    match name {
        "DEMO_TOKEN" => Some(TOKEN.to_string()),
        "DEMO_DAYS" => Some("12".to_string()),
        "DEMO_RESOURCES" => Some("users, members".to_string()),
        "DEMO_TOO_MANY_DAYS" => Some("45".to_string()),
        "DEMO_EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn load_text(text: &str) -> Result<RunConfig, Vec<Diagnostic>> {
    load(&Source::new("run.yaml", text), &spec(), &env)
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match load_text(text) {
        Ok(run) => panic!("expected errors, got {run:?}"),
        Err(diagnostics) => diagnostics,
    }
}

/// The one diagnostic a file yields, with its text under the span.
fn only_error(text: &str) -> (Diagnostic, String) {
    let diagnostics = errors(text);
    assert_eq!(diagnostics.len(), 1, "{}", render_text(&diagnostics, "run.yaml", text, 100));
    let d = diagnostics.into_iter().next().unwrap();
    let span = d.span.expect("placed");
    let under = text[span.start..span.start + span.len].to_string();
    (d, under)
}

const MINIMAL: &str = "config:\n  tenant_id: acme.example\n  api_token: { env: DEMO_TOKEN }\n";

/// A fresh directory for files a test reads.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("engine-config-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

// ---------------------------------------------------------------------------------------------------------
// A valid file

#[test]
fn a_full_file_resolves_values_defaults_secrets_kris_and_bands() {
    let text = r#"
instance: acme-prod_2
config:
  tenant_id: acme.example
  api_token: { env: DEMO_TOKEN }
  resources: [users, groups]
  lookback_days: 14
  cloud: y
kris: [inactive_users, user_count, inactive_users]
bands:
  inactive_users: { green: "<= 1", amber: "< 10.5" }
"#;
    let run = load_text(text).expect("valid");
    assert_eq!(run.instance, "acme-prod_2");
    assert_eq!(run.value("tenant_id"), Some(&Value::from("acme.example")));
    assert_eq!(run.value("lookback_days"), Some(&Value::from(14)));
    assert_eq!(run.value("api_base_url"), Some(&Value::from("https://y.example")), "computed from cloud");
    assert_eq!(run.value("region_url"), Some(&Value::from("https://main.example")), "coalesce over an unset field");
    assert_eq!(run.value("region"), None);
    assert_eq!(run.value("api_token"), None, "secrets are not values");
    assert_eq!(run.secret_values().collect::<Vec<_>>(), [TOKEN]);
    assert_eq!(run.resources, ["users", "groups"]);
    assert_eq!(run.kris.as_deref(), Some(&["inactive_users".to_string(), "user_count".to_string()][..]));
    let bands = &run.band_overrides["inactive_users"];
    assert_eq!((bands.green.op, bands.green.value), (Comparison::Le, 1.0));
    let amber = bands.amber.expect("amber");
    assert_eq!((amber.op, amber.value), (Comparison::Lt, 10.5));
}

#[test]
fn defaults_apply_when_fields_are_absent() {
    let run = load_text(MINIMAL).expect("valid");
    assert_eq!(run.instance, DEFAULT_INSTANCE);
    assert_eq!(run.value("lookback_days"), Some(&Value::from(7)));
    assert_eq!(run.value("cloud"), Some(&Value::from("x")));
    assert_eq!(run.value("api_base_url"), Some(&Value::from("https://x.example")));
    assert_eq!(run.resources, ["users", "groups", "members"], "no selection means every resource");
    assert_eq!(run.kris, None);
    assert!(run.band_overrides.is_empty());
}

#[test]
fn an_explicit_value_wins_over_a_computed_default() {
    let run = load_text(&format!("{MINIMAL}  cloud: y\n  api_base_url: https://proxy.example/api\n")).expect("valid");
    assert_eq!(run.value("api_base_url"), Some(&Value::from("https://proxy.example/api")));
}

#[test]
fn a_key_without_a_value_counts_as_not_set() {
    let run = load_text(&format!("{MINIMAL}  lookback_days:\n  region:\n")).expect("valid");
    assert_eq!(run.value("lookback_days"), Some(&Value::from(7)));
    assert_eq!(run.value("region"), None);

    let text = "config:\n  tenant_id:\n  api_token: { env: DEMO_TOKEN }\n";
    let (d, under) = only_error(text);
    assert_eq!(d.code, Code::ConfigFileMissing);
    assert_eq!(under, "tenant_id", "points at the key written without a value");
}

#[test]
fn selecting_a_fan_out_child_selects_its_parent() {
    let run = load_text(&format!("{MINIMAL}  resources: [members]\n")).expect("valid");
    assert_eq!(run.resources, ["groups", "members"], "the parent is added, in spec order");
}

// ---------------------------------------------------------------------------------------------------------
// Values checked against their fields

#[test]
fn a_pattern_mismatch_is_reported_with_the_pattern() {
    let (d, under) = only_error("config:\n  tenant_id: acme/../other\n  api_token: { env: DEMO_TOKEN }\n");
    assert_eq!(d.code, Code::ConfigFileValue);
    assert_eq!(under, "acme/../other");
    assert_eq!(d.message, "`tenant_id`: `acme/../other` does not match the pattern `[A-Za-z0-9.-]+`");
}

#[test]
fn a_value_above_the_maximum_is_reported() {
    let (d, under) = only_error(&format!("{MINIMAL}  lookback_days: 60\n"));
    assert_eq!(d.code, Code::ConfigFileValue);
    assert_eq!(under, "60");
    assert_eq!(d.message, "`lookback_days` is 60, above the maximum of 30");
}

#[test]
fn a_value_of_the_wrong_type_is_reported() {
    let (d, under) = only_error(&format!("{MINIMAL}  lookback_days: a week\n"));
    assert_eq!(under, "a week");
    assert_eq!(d.message, "`lookback_days` should be an integer, found text");
    let (d, _) = only_error(&format!("{MINIMAL}  verbose: yes\n"));
    assert_eq!(d.message, "`verbose` should be true or false, found text", "strict booleans: `yes` is text");
}

#[test]
fn every_unknown_resource_in_the_selection_is_reported_at_its_item() {
    let text = format!("{MINIMAL}  resources: [users, grups, sign_ins]\n");
    let diagnostics = errors(&text);
    let unders: Vec<&str> =
        diagnostics.iter().map(|d| d.span.unwrap()).map(|s| &text[s.start..s.start + s.len]).collect();
    assert_eq!(unders, ["grups", "sign_ins"]);
    assert_eq!(diagnostics[0].message, "`resources`: `grups` is not one of: users, groups, members");
    assert_eq!(diagnostics[0].help.as_deref(), Some("did you mean `groups`?"));
    assert!(diagnostics.iter().all(|d| d.code == Code::ConfigFileValue));
}

#[test]
fn unknown_keys_and_fields_get_a_did_you_mean() {
    let text = format!("{MINIMAL}  lookback_dayz: 3\nkri: [user_count]\n");
    let diagnostics = errors(&text);
    assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
    assert_eq!(diagnostics[0].code, Code::ConfigFileKey);
    assert_eq!(diagnostics[0].message, "`lookback_dayz` is not a config field of `demo`");
    assert_eq!(diagnostics[0].help.as_deref(), Some("did you mean `lookback_days`?"));
    assert_eq!(diagnostics[1].message, "unknown key `kri`");
    assert_eq!(
        diagnostics[1].help.as_deref(),
        Some("did you mean `kris`? Accepted here: instance, config, kris, bands")
    );
}

#[test]
fn required_fields_missing_point_at_config_or_the_file_start() {
    let text = "instance: a\nconfig:\n  cloud: y\n";
    let diagnostics = errors(text);
    let placed: Vec<(&str, &str)> = diagnostics
        .iter()
        .map(|d| (d.message.as_str(), &text[d.span.unwrap().start..d.span.unwrap().start + d.span.unwrap().len]))
        .collect();
    assert_eq!(
        placed,
        [
            ("required config field `tenant_id` is not set", "config"),
            ("required config field `api_token` is not set", "config"),
        ]
    );
    assert!(diagnostics.iter().all(|d| d.code == Code::ConfigFileMissing));
    assert_eq!(diagnostics[0].help.as_deref(), Some("add `tenant_id: \"acme.example\"` (an example) under `config:`"));
    assert_eq!(
        diagnostics[1].help.as_deref(),
        Some("add `api_token: { env: NAME }` or `api_token: { file: PATH }` under `config:`")
    );

    let diagnostics = errors("instance: a\n");
    assert_eq!(diagnostics.len(), 2);
    assert!(diagnostics.iter().all(|d| d.span == Some(crate::diag::Span::new(0, 0))));
    assert_eq!(errors("").len(), 2, "an empty file sets nothing");
}

#[test]
fn a_computed_default_that_fails_its_field_names_the_field_and_the_expression() {
    let (d, under) = only_error(&format!("{MINIMAL}  region: bad host\n"));
    assert_eq!(d.code, Code::ConfigFileValue);
    assert_eq!(under, "bad host", "points at the input the default was computed from");
    assert!(
        d.message.starts_with(
            "the default of `region_url`, computed by `\"https://\" + coalesce(config.region, \"main\") + \
             \".example\"`, is invalid: `https://bad host.example` is not a URL"
        ),
        "{}",
        d.message
    );
    assert_eq!(
        d.help.as_deref(),
        Some("set `region_url` in the config file, or change what its default reads: region")
    );
}

#[test]
fn a_default_reading_an_invalid_value_is_not_reported_twice() {
    let (d, _) = only_error(&format!("{MINIMAL}  cloud: z\n"));
    assert_eq!(d.message, "`cloud`: `z` is not one of: x, y");
}

#[test]
fn instance_names_are_checked() {
    for bad in ["Acme", "-acme", "acme prod", ""] {
        let text = format!("instance: \"{bad}\"\n{MINIMAL}");
        let (d, _) = only_error(&text);
        assert_eq!(d.code, Code::ConfigFileValue, "{bad}");
    }
    let (d, _) = only_error(&format!("instance: \"{}\"\n{MINIMAL}", "a".repeat(65)));
    assert!(d.message.contains("the limit is 64"), "{}", d.message);
    let (d, _) = only_error(&format!("instance: 7\n{MINIMAL}"));
    assert_eq!(d.message, "`instance` should be a name, found an integer");
}

#[test]
fn a_config_file_that_is_not_a_mapping_is_one_error() {
    let (d, _) = only_error("- a\n- b\n");
    assert_eq!(d.message, "a config file is a mapping, found a list");
    let diagnostics = errors("config: [\n");
    assert_eq!(diagnostics[0].code, Code::Unreadable, "YAML errors keep their own code");
}

// ---------------------------------------------------------------------------------------------------------
// Secrets and references

#[test]
fn a_plain_secret_is_rejected_without_repeating_it() {
    let text = format!("config:\n  tenant_id: acme.example\n  api_token: {TOKEN}\n");
    let (d, under) = only_error(&text);
    assert_eq!(d.code, Code::ConfigFileSecret);
    assert_eq!(under, TOKEN);
    assert_eq!(
        d.message,
        "`api_token` is a secret and cannot be written in the config file; use `{ env: NAME }` or `{ file: PATH }`"
    );
    let everything = format!("{d:?}");
    assert!(!everything.contains(TOKEN), "{everything}");

    // Rendered against the masked text, the excerpt under the message does not show it either.
    let source = Source::new("run.yaml", text.clone());
    let masked = mask_inline_secrets(&source, &spec());
    assert_eq!(masked.text.len(), text.len(), "masking keeps every offset");
    let rendered = render_text(&[d], &masked.name, &masked.text, 100);
    assert!(!rendered.contains(TOKEN), "{rendered}");
    assert!(rendered.contains("api_token: *****"), "{rendered}");

    // Any literal, quoted, a number or a list, is refused the same way.
    for literal in ["\"quoted\"", "12345", "[a, b]", "{ value: x }"] {
        let diagnostics = errors(&format!("config:\n  tenant_id: acme.example\n  api_token: {literal}\n"));
        assert!(
            diagnostics.iter().any(|d| d.code == Code::ConfigFileSecret || d.code == Code::ConfigFileKey),
            "{literal}: {diagnostics:?}"
        );
    }
}

#[test]
fn masking_leaves_references_and_other_values_alone() {
    let text = "config:\n  tenant_id: acme.example\n  api_token: { env: DEMO_TOKEN }\n";
    let masked = mask_inline_secrets(&Source::new("run.yaml", text), &spec());
    assert_eq!(masked.text, text);
    let masked = mask_inline_secrets(&Source::new("run.yaml", "config: [\n"), &spec());
    assert_eq!(masked.text, "config: [\n", "unparsable text is returned as it is");
}

#[test]
fn an_unset_environment_variable_is_named_and_nothing_else() {
    let text = "config:\n  tenant_id: acme.example\n  api_token: { env: DEMO_MISSING }\n";
    let (d, under) = only_error(text);
    assert_eq!(d.code, Code::ConfigFileSecret);
    assert_eq!(under, "DEMO_MISSING");
    assert_eq!(d.message, "environment variable `DEMO_MISSING` (for `api_token`) is not set");

    let (d, under) = only_error("config:\n  tenant_id: acme.example\n  api_token: { env: DEMO_EMPTY }\n");
    assert_eq!(under, "DEMO_EMPTY");
    assert_eq!(d.message, "secret `api_token` is empty (from environment variable `DEMO_EMPTY`)");

    let (d, _) = only_error("config:\n  tenant_id: acme.example\n  api_token: { env: \"A=B\" }\n");
    assert_eq!(d.message, "`A=B` is not an environment variable name");
}

#[test]
fn reference_mappings_are_checked() {
    let base = "config:\n  tenant_id: acme.example\n  api_token: ";
    let (d, under) = only_error(&format!("{base}{{ evn: DEMO_TOKEN }}\n"));
    assert_eq!((d.code, under.as_str()), (Code::ConfigFileKey, "evn"));
    assert_eq!(d.help.as_deref(), Some("did you mean `env`? Accepted here: env, file"));
    let (d, under) = only_error(&format!("{base}{{ env: DEMO_TOKEN, file: token.txt }}\n"));
    assert_eq!((d.message.as_str(), under.as_str()), ("`api_token` gives both `env` and `file`; give one", "file"));
    let (d, _) = only_error(&format!("{base}{{}}\n"));
    assert_eq!(d.message, "`api_token` is an empty mapping; write `{ env: NAME }` or `{ file: PATH }`");
    let (d, _) = only_error(&format!("{base}{{ env: 3 }}\n"));
    assert_eq!(d.message, "`env` should be an environment variable name, found an integer");
}

#[test]
fn file_secrets_resolve_relative_to_the_config_file_and_lose_the_trailing_newline() {
    let dir = scratch_dir("file-secrets");
    std::fs::write(dir.join("token.txt"), format!("{TOKEN}\r\n")).unwrap();
    let config_path = dir.join("run.yaml");
    let text = "config:\n  tenant_id: acme.example\n  api_token: { file: token.txt }\n";
    let source = Source::new(config_path.display().to_string(), text);
    let run = load(&source, &spec(), &env).expect("valid");
    assert_eq!(run.secret_values().collect::<Vec<_>>(), [TOKEN]);

    // An absolute path works too.
    let absolute = format!(
        "config:\n  tenant_id: acme.example\n  api_token: {{ file: \"{}\" }}\n",
        dir.join("token.txt").display()
    );
    let run = load(&Source::new("elsewhere/run.yaml", absolute), &spec(), &env).expect("valid");
    assert_eq!(run.secret_values().collect::<Vec<_>>(), [TOKEN]);

    // An unreadable file is named, with the path it was looked for at.
    let text = "config:\n  tenant_id: acme.example\n  api_token: { file: missing.txt }\n";
    let source = Source::new(config_path.display().to_string(), text);
    let diagnostics = load(&source, &spec(), &env).expect_err("unreadable");
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].code, Code::ConfigFileSecret);
    let expected = format!("cannot read `{}` for `api_token`: ", dir.join("missing.txt").display());
    assert!(diagnostics[0].message.starts_with(&expected), "{}", diagnostics[0].message);

    // A file too large to be a value is refused without being read whole.
    std::fs::write(dir.join("big.txt"), "x".repeat(MAX_VALUE_FILE_BYTES as usize + 1)).unwrap();
    let text = "config:\n  tenant_id: acme.example\n  api_token: { file: big.txt }\n";
    let diagnostics = load(&Source::new(config_path.display().to_string(), text), &spec(), &env).expect_err("big");
    assert!(diagnostics[0].message.ends_with("the file is larger than 65536 bytes"), "{}", diagnostics[0].message);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn references_work_for_plain_fields_and_are_typed_and_checked() {
    let dir = scratch_dir("plain-references");
    std::fs::write(dir.join("tenant.txt"), "acme.example\n").unwrap();
    let text = "config:\n  tenant_id: { file: tenant.txt }\n  api_token: { env: DEMO_TOKEN }\n  \
                lookback_days: { env: DEMO_DAYS }\n  resources: { env: DEMO_RESOURCES }\n";
    let source = Source::new(dir.join("run.yaml").display().to_string(), text);
    let run = load(&source, &spec(), &env).expect("valid");
    assert_eq!(run.value("tenant_id"), Some(&Value::from("acme.example")));
    assert_eq!(run.value("lookback_days"), Some(&Value::from(12)), "typed as an integer");
    assert_eq!(run.resources, ["users", "groups", "members"], "comma-separated list, parent added");
    std::fs::remove_dir_all(&dir).ok();

    let (d, under) = only_error(&format!("{MINIMAL}  lookback_days: {{ env: DEMO_TOO_MANY_DAYS }}\n"));
    assert_eq!(under, "DEMO_TOO_MANY_DAYS");
    assert_eq!(
        d.message,
        "`lookback_days` is 45, above the maximum of 30 (from environment variable `DEMO_TOO_MANY_DAYS`)"
    );
}

// ---------------------------------------------------------------------------------------------------------
// KRIs and bands

#[test]
fn kris_and_bands_name_what_the_spec_defines() {
    let text = format!(
        "{MINIMAL}kris: [inactive_user, user_count, 3]\nbands:\n  user_count: {{ green: \">= 1\" }}\n  \
         nope: {{ green: \">= 1\" }}\n"
    );
    let diagnostics = errors(&text);
    let summary: Vec<(Code, &str)> = diagnostics.iter().map(|d| (d.code, d.message.as_str())).collect();
    assert_eq!(
        summary,
        [
            (Code::ConfigFileKey, "`inactive_user` is not a KRI or metric of `demo`"),
            (Code::ConfigFileValue, "a KRI or metric name is text, found an integer"),
            (Code::ConfigFileKey, "`user_count` is a metric; only KRIs have bands"),
            (Code::ConfigFileKey, "`nope` is not a KRI of `demo`"),
        ]
    );
    assert_eq!(diagnostics[0].help.as_deref(), Some("did you mean `inactive_users`?"));
}

#[test]
fn band_thresholds_are_parsed_like_the_validator_does() {
    let text = format!("{MINIMAL}bands:\n  inactive_users: {{ green: \"=< 5\", amber: 20, red: \"> 1\" }}\n");
    let diagnostics = errors(&text);
    let summary: Vec<(Code, &str)> = diagnostics.iter().map(|d| (d.code, d.message.as_str())).collect();
    assert_eq!(
        summary,
        [
            (Code::ConfigFileValue, "`=< 5` is not a threshold"),
            (Code::ConfigFileValue, "`amber` should be a threshold, found an integer"),
            (Code::ConfigFileKey, "unknown key `red`"),
        ]
    );
    let (d, under) = only_error(&format!("{MINIMAL}bands:\n  inactive_users: {{ amber: \"<= 20\" }}\n"));
    assert_eq!((d.code, under.as_str()), (Code::ConfigFileMissing, "inactive_users"));

    for (text, op, value) in
        [(">= 95", Comparison::Ge, 95.0), ("<0.5", Comparison::Lt, 0.5), (" == 0 ", Comparison::Eq, 0.0)]
    {
        let threshold = crate::model::Threshold::parse(text).expect(text);
        assert_eq!((threshold.op, threshold.value), (op, value));
    }
    for bad in ["95", ">= inf", ">= NaN", "~ 3", ">="] {
        assert!(crate::model::Threshold::parse(bad).is_none(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Several problems at once

#[test]
fn several_problems_in_one_file_are_all_reported_at_their_line_and_column() {
    let text = "\
instance: Acme
config:
  tenant_id: a/b
  api_token: hunter2-literal
  lookback_days: 60
  resources: [users, sign_ins]
  colour: blue
kris: [nope]
bands:
  inactive_users: { green: \"~ 3\" }
extra: 1
";
    let diagnostics = errors(text);
    let json = render_json(&diagnostics, "run.yaml", text);
    let placed: Vec<(&str, usize, usize)> = json.iter().map(|d| (d.code, d.line.unwrap(), d.column.unwrap())).collect();
    assert_eq!(
        placed,
        [
            ("E701", 1, 11),
            ("E701", 3, 14),
            ("E703", 4, 14),
            ("E701", 5, 18),
            ("E701", 6, 22),
            ("E700", 7, 3),
            ("E700", 8, 8),
            ("E701", 10, 28),
            ("E700", 11, 1),
        ]
    );
    assert!(diagnostics.iter().all(|d| !d.message.contains("hunter2")));
}

// ---------------------------------------------------------------------------------------------------------
// RunConfig: scopes, Debug, host values

#[test]
fn debug_redacts_secrets() {
    let run = load_text(MINIMAL).expect("valid");
    let debug = format!("{run:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("\"api_token\": [redacted]"), "{debug}");
    let pretty = format!("{run:#?}");
    assert!(!pretty.contains(TOKEN), "{pretty}");
    let scope = format!("{:?}", run.auth_scope(0));
    assert!(!scope.contains(TOKEN), "{scope}");
}

#[test]
fn only_the_auth_scope_exposes_secrets() {
    let run = load_text(&format!("{MINIMAL}  resources: [users]\n")).expect("valid");
    let token = compile("config.api_token").unwrap();
    let error = token.eval(&run.scope(0)).expect_err("a secret is unbound in the plain scope");
    assert_eq!(error.message, "unknown variable `config.api_token`");
    assert_eq!(token.eval(&run.auth_scope(0)).unwrap(), expr::Value::String(TOKEN.into()));

    let scope = run.scope(1_000);
    let eval = |text: &str| compile(text).unwrap().eval(&scope).unwrap();
    assert_eq!(eval("config.lookback_days + 1"), expr::Value::Int(8));
    assert_eq!(eval("config.resources"), expr::Value::Tuple(vec![expr::Value::String("users".into())]));
    assert_eq!(eval("is_empty(config.region)"), expr::Value::Boolean(true), "unset reads as empty");
    assert_eq!(eval("now()"), expr::Value::Int(1_000));
    assert_eq!(scope.variable("config.nope"), None);
    assert_eq!(scope.variable("lookback_days"), None, "only `config.` names");
}

#[test]
fn from_values_applies_the_same_checks_without_places() {
    let spec = spec();
    let values = |json: serde_json::Value| json.as_object().cloned().unwrap();
    let secrets = BTreeMap::from([("api_token".to_string(), SecretString::from(TOKEN))]);
    let run = from_values(
        &spec,
        "host-1",
        values(
            serde_json::json!({ "tenant_id": "acme.example", "cloud": "y", "resources": ["members"], "region": null }),
        ),
        secrets.clone(),
    )
    .expect("valid");
    assert_eq!(run.instance, "host-1");
    assert_eq!(run.value("api_base_url"), Some(&Value::from("https://y.example")));
    assert_eq!(run.resources, ["groups", "members"]);
    assert_eq!(run.secret_values().collect::<Vec<_>>(), [TOKEN]);

    let errors = from_values(
        &spec,
        "Host",
        values(serde_json::json!({
            "tenant_id": "a/b",
            "api_token": TOKEN,
            "lookback_days": 60,
            "resources": ["users", "grups"],
            "lookbak_days": 1,
        })),
        BTreeMap::from([("cloud".to_string(), SecretString::from("x"))]),
    )
    .expect_err("invalid");
    assert_eq!(
        errors,
        [
            "`Host` is not a valid instance name: use lower-case letters, digits, `-` and `_`, starting with a letter \
             or digit",
            "`tenant_id`: `a/b` does not match the pattern `[A-Za-z0-9.-]+`",
            "`api_token` is a secret; pass it in `secrets`, not in `values`",
            "`lookback_days` is 60, above the maximum of 30",
            "`resources`: `grups` is not one of: users, groups, members; did you mean `groups`?",
            "`lookbak_days` is not a config field of `demo`; did you mean `lookback_days`?",
            "`cloud` is not a secret; pass it in `values`",
        ]
    );
    assert!(errors.iter().all(|e| !e.contains(TOKEN)));

    let errors = from_values(&spec, "h", serde_json::Map::new(), BTreeMap::new()).expect_err("missing");
    assert_eq!(
        errors,
        ["required config field `tenant_id` is not set", "required config field `api_token` is not set"]
    );
}

#[test]
fn process_env_refuses_impossible_names() {
    assert_eq!(process_env(""), None);
    assert_eq!(process_env("A=B"), None);
    assert_eq!(process_env("A\0B"), None);
}
