use super::load;
use crate::diag::Code;
use crate::source::Source;

const MINIMAL: &str = "spec_version: 1
id: demo
title: Demo
http:
  base_url: \"https://api.example.com\"
resources:
  users:
    request: { path: /users }
    records: \"$[*]\"
";

#[test]
fn unknown_keys_are_reported_and_loading_goes_on() {
    let text = MINIMAL.replace("    records:", "    paginat: 1\n    recordz: 2\n    records:");
    let loaded = load(&Source::new("spec.yaml", text));
    let codes: Vec<Code> = loaded.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, vec![Code::UnknownKey, Code::UnknownKey]);
    assert!(loaded.raw.is_some(), "unknown keys are skipped, so semantic checks can still run");
}

#[test]
fn broken_items_are_each_reported() {
    let text = MINIMAL.to_string() + "  logins:\n    request: { path: 5 }\n  audits:\n    request: { path: /a }\n";
    let loaded = load(&Source::new("spec.yaml", text));
    let raw = loaded.raw.expect("the items that loaded are kept");
    assert_eq!(raw.resources.names().collect::<Vec<_>>(), ["users"]);
    assert_eq!(raw.broken.iter().map(String::as_str).collect::<Vec<_>>(), ["resources.audits", "resources.logins"]);
    let messages: Vec<&str> = loaded.diagnostics.iter().map(|d| d.message.as_str()).collect();
    // `path: 5` reads as text, so `logins` only misses `records`, and so does `audits`.
    assert_eq!(messages, vec!["missing key `records`", "missing key `records`"]);
}

#[test]
fn missing_top_level_keys_point_at_the_start() {
    let loaded = load(&Source::new("spec.yaml", "spec_version: 1\nid: x\n"));
    let messages: Vec<&str> = loaded.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages, vec!["missing key `title`", "missing key `http`", "missing key `resources`"]);
}
