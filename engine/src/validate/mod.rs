//! `RawSpec` → `Spec` plus every diagnostic. One file per rule family:
//! `config`, `http`, `resources`, `emit`, `indicators`, with the shared compilers for
//! expressions, templates, JSONPaths and durations in `compile`.
//!
//! Validation never stops at the first problem and never does I/O. A `Spec` is returned only when there
//! are no errors; warnings do not block it.

mod compile;
mod config;
mod emit;
mod http;
mod indicators;
mod resources;

pub use compile::parse_duration;

use crate::diag::{Code, Diagnostic};
use crate::model::{Schedule, Spec};
use crate::source::Source;
use crate::spec::load::load;
use compile::Ctx;

/// The outcome of validating one file.
pub struct Validated {
    pub spec: Option<Spec>,
    /// Sorted by position in the file.
    pub diagnostics: Vec<Diagnostic>,
}

impl Validated {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Validates a spec file's text and compiles it.
pub fn validate(source: &Source) -> Validated {
    let loaded = load(source);
    let mut ctx = Ctx { diagnostics: loaded.diagnostics, ..Ctx::default() };
    let Some(raw) = loaded.raw else {
        return finish(ctx, None);
    };
    ctx.incomplete = !raw.broken.is_empty();

    if raw.spec_version.value != 1 {
        ctx.push(
            Diagnostic::error(
                Code::SpecVersion,
                raw.spec_version.span,
                format!("spec_version {} is not supported", raw.spec_version.value),
            )
            .with_help("this engine reads spec_version 1"),
        );
    }
    ctx.check_id(&raw.id);
    let schedule = raw.schedule.as_ref().and_then(|s| match s.value.as_str() {
        "hourly" => Some(Schedule::Hourly),
        "daily" => Some(Schedule::Daily),
        "weekly" => Some(Schedule::Weekly),
        _ => match ctx.duration(s) {
            Some(d) if d.is_zero() => {
                ctx.push(Diagnostic::error(Code::BadDuration, s.span, "the schedule must be longer than zero"));
                None
            }
            other => other.map(Schedule::Every),
        },
    });

    let config = config::check(&mut ctx, &raw);
    let http = http::check(&mut ctx, &raw, &config);
    let resources = resources::check(&mut ctx, &raw, &config);
    let shapes = emit::catalog(&mut ctx, &raw, &resources);
    let kris = indicators::check(&mut ctx, &raw.kris, &raw, &config, &shapes, "kris");
    let metrics = indicators::check(&mut ctx, &raw.metrics, &raw, &config, &shapes, "metrics");

    if let Some(test) = &raw.connection_test
        && !raw.resources.contains(&test.value)
    {
        ctx.unknown_resource(test, &raw);
    }
    // An expression that failed to compile reads nothing, so only a clean spec can tell what is unused.
    if !ctx.has_errors() {
        config::warn_unused(&mut ctx, &raw);
    }
    resources::warn_idle(&mut ctx, &raw);

    if ctx.has_errors() {
        return finish(ctx, None);
    }
    let spec = Spec {
        id: raw.id.value,
        title: raw.title,
        tagline: raw.tagline,
        description: raw.description,
        source_type: raw.source_type,
        docs_url: raw.docs_url,
        schedule,
        setup: raw.setup,
        limitations: raw.limitations,
        connection_test: raw.connection_test.map(|t| t.value),
        config: config.fields,
        http: http.expect("no errors means http compiled"),
        run_order: resources.run_order,
        resources: resources
            .resources
            .into_iter()
            .map(|r| r.expect("no errors means every resource compiled"))
            .collect(),
        kris,
        metrics,
        shapes,
    };
    finish(ctx, Some(spec))
}

fn finish(ctx: Ctx, spec: Option<Spec>) -> Validated {
    let mut diagnostics = ctx.diagnostics;
    diagnostics.sort_by_key(|d| (d.span.map(|s| s.start), d.code));
    diagnostics.dedup();
    Validated { spec, diagnostics }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "spec_version: 1
id: demo
title: Demo
http:
  base_url: \"https://api.example.com\"
resources:
  groups:
    request: { path: /groups }
    recrods: \"$[*]\"
  members:
    for_each: { resource: groups, as: group }
    request: { path: \"/groups/{group.id}/members\" }
    records: \"$[*\"
    emit:
      - entity: { type: demo_member, id: $.id }
";

    #[test]
    fn a_broken_item_does_not_hide_problems_elsewhere_nor_cascade() {
        let validated = validate(&Source::new("spec.yaml", SPEC));
        let codes: Vec<&str> = validated.diagnostics.iter().map(|d| d.code.as_str()).collect();
        // `groups` misses `records` (and has an unknown key); `members` still gets its JSONPath checked, and
        // its fan-out over the broken `groups` is not reported again as an unknown resource.
        assert_eq!(codes, ["E103", "E101", "E205"]);
        assert!(validated.spec.is_none());
    }

    #[test]
    fn run_order_puts_parents_first() {
        let text = SPEC.replace("recrods", "records").replace("\"$[*\"", "\"$[*]\"");
        let text = text.replace("resources:\n  groups:", "resources:\n  late:\n    for_each: { resource: members, as: m }\n    request: { path: /x }\n    records: \"$[*]\"\n    emit:\n      - entity: { type: demo_late, id: $.id }\n  groups:");
        let validated = validate(&Source::new("spec.yaml", text));
        let spec = validated.spec.expect("valid");
        let order: Vec<&str> = spec.run_order.iter().map(|&i| spec.resources[i].name.as_str()).collect();
        assert_eq!(order, ["groups", "members", "late"]);
    }
}
