//! Checks the key fragments of a document rendered from a small inline spec. Not a snapshot of the whole
//! document: the rendered connector docs in `docs/connectors/` are the full-size check, kept fresh by the
//! `docs` integration test.

use super::{duration, render};
use crate::source::Source;
use crate::validate::validate;
use std::time::Duration;

const SPEC: &str = r#"
spec_version: 1
id: demo-dir
title: Demo Directory
tagline: Users and sign-ins from a demo directory.
schedule: 6h
docs_url: https://api.example.com/docs
setup:
  - Create an API client.
  - |
    Copy its token.
    Keep it safe.
limitations:
  - Sign-ins are kept for 30 days only.
config:
  api_base_url: { type: url, default: "https://api.example.com", description: "API root." }
  api_token: { type: secret, required: true, description: "Token of the API client." }
  lookback_days: { type: integer, default: 7, minimum: 1, maximum: 30, description: "First-run history | days." }
  region: { type: enum, values: [eu, us], default: eu }
  resources:
    type: list
    items: enum
    values: [users, signins]
    selects_resources: true
    default: [users, signins]
http:
  base_url: "{config.api_base_url}"
  auth:
    api_key: { name: Authorization, value: "SSWS {config.api_token}" }
  budgets:
    main: { requests: 100, per: 10s, description: Half the documented limit. }
resources:
  users:
    title: Users
    permissions: [users.read]
    budget: main
    request: { path: /users, query: { limit: 200 } }
    records: "$.items[*]"
    paginate:
      next_url: { path: "$.next" }
    emit:
      - entity:
          type: demo_user
          id: $.id
          attributes:
            enabled: { path: $.enabled, description: Whether the user may sign in. }
            created: { path: $.created, transform: unix_ms, missing: skip_record }
  signins:
    permissions: [logs.read, users.read]
    licence: Premium edition
    request: { path: /signins }
    records: "$[*]"
    incremental:
      cursor: $.at
      initial: now() - days(config.lookback_days)
      lookback: 15m
      max_age: 29d23h
      filter: { param: since, template: "{cursor}" }
    on_status:
      - status: 403
        action: not_applicable
        message: the licence does not include sign-in logs
    emit:
      - event:
          name: demo_signin
          key: $.id
          start: { path: $.at, transform: unix_ms }
          attributes:
            ok: $.ok
            result: { expr: 'if(ok, "success", "failure")' }
kris:
  enabled_share:
    title: Share of enabled users
    unit: percent
    direction: higher_is_better
    let:
      enabled: { count: entity.demo_user, where: 'enabled == true' }
      all: { count: entity.demo_user }
      failures: { count: event.demo_signin, where: 'result == "failure"', window: { last: 24h } }
    value: percent(enabled, all, 1)
    bands: { green: ">= 95", amber: ">= 80" }
    evidence: enabled
    when_unavailable:
      - resource: signins
        on: [not_applicable]
        value: "0"
        reason: sign-in logs need the premium edition
"#;

fn rendered() -> String {
    let validated = validate(&Source::new("demo.yaml", SPEC));
    let errors: Vec<_> = validated.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "the inline spec should be valid: {errors:#?}");
    render(&validated.spec.expect("a valid spec compiles"))
}

fn assert_has(doc: &str, fragment: &str) {
    assert!(doc.contains(fragment), "missing fragment:\n{fragment}\n--- in ---\n{doc}");
}

#[test]
fn renders_the_key_fragments() {
    let doc = rendered();
    assert!(doc.starts_with("# Demo Directory\n"));
    assert!(doc.ends_with('\n') && !doc.ends_with("\n\n"), "exactly one trailing newline");
    assert_has(&doc, "- Default schedule: every 6h\n");
    assert_has(&doc, "1. Create an API client.\n2. Copy its token.\n   Keep it safe.\n");
    assert_has(&doc, "API key in header `Authorization`, value `SSWS {config.api_token}`.");
    assert_has(
        &doc,
        "| `resources` | list of enum | no | all resources | resource names | Selects the resources to sync. |",
    );
    // Config rows: a constrained integer (with `|` escaped) and a secret.
    assert_has(&doc, "| `lookback_days` | integer | no | `7` | 1 to 30 | First-run history \\| days. |");
    assert_has(&doc, "| `api_token` | secret | yes | — | — | Token of the API client. Secret — give as");
    assert_has(&doc, "`resources` selects the resources to sync");
    assert_has(&doc, "```yaml\napi_token: { env: DEMO_DIR_API_TOKEN }\n# api_base_url: \"https://api.example.com\"\n");
    // A resource section with its request, paging, sync mode, budget and status policy.
    assert_has(&doc, "### `users` — Users\n");
    assert_has(&doc, "- Request: `GET /users`\n  - query `limit=200`\n");
    assert_has(&doc, "- Pagination: next link at `$.next`");
    assert_has(&doc, "- Budget: `main` (100 requests per 10s)");
    assert_has(&doc, "- Sync: incremental on `$.at`\n  - first run starts at `now() - days(config.lookback_days)`\n");
    assert_has(&doc, "  - later runs start 15m before the saved cursor\n  - never earlier than 29d 23h ago\n");
    assert_has(&doc, "  - 403 → not applicable — the licence does not include sign-in logs");
    assert_has(&doc, "#### Emits `entity demo_user`\n\n- id: `$.id`\n");
    assert_has(&doc, "| `created` | `$.created` | `unix_ms` | record skipped | — |");
    assert_has(&doc, "| `result` | expr `if(ok, \"success\", \"failure\")` | — | null | — |");
    // Permissions are the deduplicated union, with the resources needing each.
    assert_has(&doc, "- `logs.read` — `signins`\n- `users.read` — `users`, `signins`\n");
    // The KRI table row and its section.
    assert_has(
        &doc,
        "| `enabled_share` | Share of enabled users | percent | higher is better | `percent(enabled, all, 1)` | `>= 95` green, `>= 80` amber, else red |",
    );
    assert_has(&doc, "`failures` = `count(event.demo_signin)` where `result == \"failure\"` within the last 24h");
    assert_has(
        &doc,
        "If `signins` is not applicable: value `0`, status degraded — sign-in logs need the premium edition",
    );
    assert_has(&doc, "## Limitations\n\n- Sign-ins are kept for 30 days only.\n");
}

#[test]
fn rendering_is_deterministic() {
    assert_eq!(rendered(), rendered());
}

#[test]
fn durations_read_like_a_person_wrote_them() {
    assert_eq!(duration(Duration::from_secs(10)), "10s");
    assert_eq!(duration(Duration::from_secs(29 * 86_400 + 23 * 3600)), "29d 23h");
    assert_eq!(duration(Duration::from_secs(90)), "1m 30s");
    assert_eq!(duration(Duration::from_millis(250)), "250ms");
    assert_eq!(duration(Duration::ZERO), "0s");
    assert_eq!(duration(Duration::from_secs(86_400)), "24h");
    assert_eq!(duration(Duration::from_secs(36 * 3600)), "36h");
    assert_eq!(duration(Duration::from_secs(7 * 86_400)), "7d");
}
