//! Rules for `kris:` and `metrics:` — aggregates over shape types the spec emits, predicates over those
//! types' attributes, lookups into entity types, formulas over the aggregates, bands, evidence and
//! fallbacks for unavailable resources.

use super::compile::{ConfigNames, Ctx, Vars};
use super::config::ConfigCheck;
use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::model::{
    Aggregate, AggregateOp, Bands, Fallback, Indicator, ResourceOutcome, Shape, ShapeType, Threshold, Window,
};
use crate::source::de::Sp;
use crate::spec::raw::{Items, RawAggregate, RawIndicator, RawSpec};
use std::collections::BTreeMap;

pub(crate) fn check(
    ctx: &mut Ctx,
    indicators: &Items<RawIndicator>,
    raw: &RawSpec,
    config: &ConfigCheck,
    shapes: &BTreeMap<String, ShapeType>,
    section: &str,
) -> Vec<Indicator> {
    let mut out = Vec::new();
    for (slug, indicator) in indicators.iter() {
        if let Some(compiled) = check_one(ctx, slug, indicator, raw, &config.names, shapes, section) {
            out.push(compiled);
        }
    }
    out
}

fn check_one(
    ctx: &mut Ctx,
    slug: &Sp<String>,
    indicator: &RawIndicator,
    raw: &RawSpec,
    config: &ConfigNames,
    shapes: &BTreeMap<String, ShapeType>,
    section: &str,
) -> Option<Indicator> {
    let before = ctx.diagnostics.len();
    ctx.check_name(slug, if section == "kris" { "KRI slug" } else { "metric name" });
    let mut reads: Vec<String> = Vec::new();
    let mut lets = Vec::new();
    for (name, aggregate) in indicator.lets.iter() {
        if !super::compile::is_snake_case(&name.value) {
            ctx.check_name(name, "aggregate name");
        }
        if let Some(compiled) = check_aggregate(ctx, name, aggregate, config, shapes, &mut reads) {
            lets.push(compiled);
        }
    }
    // A fan-out child's data depends on its parents, so an indicator reads them too.
    let mut index = 0;
    while index < reads.len() {
        let parent =
            raw.resources.get(&reads[index]).and_then(|r| r.for_each.as_ref()).map(|f| f.resource.value.clone());
        if let Some(parent) = parent.filter(|p| !reads.contains(p)) {
            reads.push(parent);
        }
        index += 1;
    }
    let let_names: Vec<&str> = indicator.lets.names().collect();
    let formula_vars = Vars::new(format!("in the formula of `{}`", slug.value), config)
        .with_names(let_names.iter().copied())
        .with_available(format!("aggregates defined in `let`: {}", let_names.join(", ")));
    let value = ctx.expr(&indicator.value, &formula_vars);
    let bands = indicator.bands.as_ref().and_then(|b| {
        let green = threshold(ctx, &b.green);
        let amber = b.amber.as_ref().map(|a| threshold(ctx, a));
        Some(Bands { green: green?, amber: amber.map_or(Some(None), |a| a.map(Some))? })
    });
    if let Some(evidence) = &indicator.evidence
        && !indicator.lets.contains(&evidence.value)
    {
        unknown_aggregate(ctx, evidence, &let_names);
    }
    let mut fallbacks = Vec::new();
    for fallback in &indicator.when_unavailable {
        if !raw.resources.contains(&fallback.resource.value) {
            ctx.unknown_resource(&fallback.resource, raw);
            continue;
        }
        if !reads.contains(&fallback.resource.value) {
            ctx.push(
                Diagnostic::warning(
                    Code::UnreadResource,
                    fallback.resource.span,
                    format!(
                        "`{}` does not read `{}`, so this fallback can never apply",
                        slug.value, fallback.resource.value
                    ),
                )
                .with_label("not read by this indicator")
                .with_help(format!(
                    "it reads: {}",
                    if reads.is_empty() { "nothing".to_string() } else { reads.join(", ") }
                )),
            );
        }
        let fallback_value = fallback.value.as_ref().map(|v| ctx.expr(v, &formula_vars));
        fallbacks.push(Fallback {
            resource: fallback.resource.value.clone(),
            on: if fallback.on.is_empty() {
                vec![ResourceOutcome::NotApplicable, ResourceOutcome::Failed]
            } else {
                fallback.on.clone()
            },
            value: fallback_value.flatten(),
            status: fallback.status,
            reason: fallback.reason.clone(),
        });
    }
    if ctx.diagnostics[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    Some(Indicator {
        slug: slug.value.clone(),
        title: indicator.title.clone(),
        description: indicator.description.clone(),
        unit: indicator.unit,
        direction: indicator.direction,
        lets,
        value: value?,
        bands,
        evidence: indicator.evidence.as_ref().map(|e| e.value.clone()),
        evidence_limit: indicator.evidence_limit.unwrap_or(50),
        fallbacks,
        reads,
    })
}

fn unknown_aggregate(ctx: &mut Ctx, name: &Sp<String>, lets: &[&str]) {
    let help = match did_you_mean(&name.value, lets.iter().copied()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("aggregates: {}", lets.join(", ")),
    };
    ctx.push(
        Diagnostic::error(
            Code::UnknownAggregate,
            name.span,
            format!("`{}` is not an aggregate of this indicator", name.value),
        )
        .with_label("unknown aggregate")
        .with_help(help),
    );
}

fn check_aggregate(
    ctx: &mut Ctx,
    name: &Sp<String>,
    aggregate: &RawAggregate,
    config: &ConfigNames,
    shapes: &BTreeMap<String, ShapeType>,
    reads: &mut Vec<String>,
) -> Option<Aggregate> {
    let ops = [
        (AggregateOp::Count, &aggregate.count),
        (AggregateOp::CountDistinct, &aggregate.count_distinct),
        (AggregateOp::Sum, &aggregate.sum),
        (AggregateOp::Min, &aggregate.min),
        (AggregateOp::Max, &aggregate.max),
        (AggregateOp::Latest, &aggregate.latest),
    ];
    let given: Vec<(AggregateOp, &Sp<String>)> =
        ops.iter().filter_map(|(op, v)| v.as_ref().map(|v| (*op, v))).collect();
    let [(op, target)] = given.as_slice() else {
        ctx.push(
            Diagnostic::error(
                Code::Conflict,
                name.span,
                format!("aggregate `{}` needs exactly one of count, count_distinct, sum, min, max, latest", name.value),
            )
            .with_label("here")
            .with_help("e.g. `{ count: entity.acme_user, where: 'active == true' }`"),
        );
        return None;
    };
    let (op, target) = (*op, *target);
    let shape_type = resolve_type(ctx, target, shapes)?;
    for resource in &shape_type.emitted_by {
        if !reads.contains(resource) {
            reads.push(resource.clone());
        }
    }
    let row_names: Vec<&str> =
        shape_type.shape.row_fields().iter().copied().chain(shape_type.attributes.iter().map(String::as_str)).collect();
    let field = match (&aggregate.field, op) {
        (None, AggregateOp::Count) => None,
        (Some(field), AggregateOp::Count) => {
            ctx.push(
                Diagnostic::error(Code::AggregateField, field.span, "`count` counts rows and takes no `field`")
                    .with_label("not used")
                    .with_help("use `count_distinct` to count distinct values of a field"),
            );
            None
        }
        (None, _) => {
            ctx.push(
                Diagnostic::error(
                    Code::AggregateField,
                    target.span,
                    format!("`{}` needs a `field` to aggregate", op.as_str()),
                )
                .with_label("which field?"),
            );
            None
        }
        (Some(field), _) => {
            if !row_names.contains(&field.value.as_str()) {
                unknown_attribute(ctx, field, target, &row_names);
            }
            Some(field.value.clone())
        }
    };
    let predicate_vars = Vars::new(format!("in a predicate over {}", target.value), config)
        .with_names(row_names.iter().copied())
        .allow_host_functions()
        .with_available(format!("fields of {}: {}", target.value, row_names.join(", ")));
    let filter = aggregate.filter.as_ref().map(|w| {
        let compiled = ctx.expr(w, &predicate_vars);
        check_lookups(ctx, w, shapes, reads);
        compiled
    });
    let window = aggregate.window.as_ref().and_then(|w| {
        let field = match &w.field {
            Some(f) => {
                if !row_names.contains(&f.value.as_str()) {
                    unknown_attribute(ctx, f, target, &row_names);
                }
                f.value.clone()
            }
            None => shape_type.shape.time_field().to_string(),
        };
        Some(Window { field, last: ctx.duration(&w.last)? })
    });
    Some(Aggregate {
        name: name.value.clone(),
        op,
        shape: shape_type.shape,
        type_key: target.value.clone(),
        type_name: shape_type.name.clone(),
        field,
        filter: filter.flatten(),
        window,
    })
}

fn resolve_type<'a>(
    ctx: &mut Ctx,
    target: &Sp<String>,
    shapes: &'a BTreeMap<String, ShapeType>,
) -> Option<&'a ShapeType> {
    let shape_ok = target.value.split_once('.').and_then(|(shape, _)| Shape::parse(shape)).is_some();
    if let Some(found) = shapes.get(&target.value) {
        return Some(found);
    }
    if ctx.incomplete {
        return None; // A resource that failed to load may emit it; its own error is already reported.
    }
    let help = if !shape_ok {
        "name rows as `<shape>.<type>`, where shape is entity, event, metric, edge or distribution".to_string()
    } else {
        match did_you_mean(&target.value, shapes.keys().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("emitted types: {}", shapes.keys().cloned().collect::<Vec<_>>().join(", ")),
        }
    };
    ctx.push(
        Diagnostic::error(Code::UnknownShapeType, target.span, format!("no resource emits `{}`", target.value))
            .with_label("unknown shape type")
            .with_help(help),
    );
    None
}

fn unknown_attribute(ctx: &mut Ctx, field: &Sp<String>, target: &Sp<String>, names: &[&str]) {
    let help = match did_you_mean(&field.value, names.iter().copied()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("fields of {}: {}", target.value, names.join(", ")),
    };
    ctx.push(
        Diagnostic::error(
            Code::UnknownAttribute,
            field.span,
            format!("`{}` is not a field of {}", field.value, target.value),
        )
        .with_label("unknown field")
        .with_help(help),
    );
}

/// `lookup("type", id, "attribute")` and `exists("type", id)` with literal names: the entity type must be
/// emitted and the attribute must exist. Such lookups also make the indicator read the type's resources.
fn check_lookups(ctx: &mut Ctx, source: &Sp<String>, shapes: &BTreeMap<String, ShapeType>, reads: &mut Vec<String>) {
    let calls = regex::Regex::new(r#"\b(lookup|exists)\(\s*"([^"]*)"([^()]*?)(?:,\s*"([^"]*)"\s*)?\)"#)
        .expect("a fixed pattern compiles");
    for capture in calls.captures_iter(&source.value) {
        let function = &capture[1];
        let type_match = capture.get(2).expect("group 2 always matches");
        let key = format!("entity.{}", type_match.as_str());
        let Some(shape_type) = shapes.get(&key) else {
            if ctx.incomplete {
                continue; // A resource that failed to load may emit it.
            }
            let entity_types: Vec<&str> =
                shapes.values().filter(|s| s.shape == Shape::Entity).map(|s| s.name.as_str()).collect();
            let help = match did_you_mean(type_match.as_str(), entity_types.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("entity types: {}", entity_types.join(", ")),
            };
            ctx.push(
                Diagnostic::error(
                    Code::UnknownShapeType,
                    source.sub_span(type_match.start(), type_match.len()),
                    format!("`{function}` reads entity type `{}`, which no resource emits", type_match.as_str()),
                )
                .with_label("unknown entity type")
                .with_help(help),
            );
            continue;
        };
        for resource in &shape_type.emitted_by {
            if !reads.contains(resource) {
                reads.push(resource.clone());
            }
        }
        if let Some(attribute) = capture.get(4).filter(|_| function == "lookup") {
            let names: Vec<&str> = Shape::Entity
                .row_fields()
                .iter()
                .copied()
                .chain(shape_type.attributes.iter().map(String::as_str))
                .collect();
            if !names.contains(&attribute.as_str()) {
                let target = Sp::new(key.clone(), source.span);
                let field =
                    Sp::new(attribute.as_str().to_string(), source.sub_span(attribute.start(), attribute.len()));
                unknown_attribute(ctx, &field, &target, &names);
            }
        }
    }
}

/// Parses a band threshold such as `>= 95` or `< 0.5`, or reports why not.
fn threshold(ctx: &mut Ctx, source: &Sp<String>) -> Option<Threshold> {
    let parsed = Threshold::parse(&source.value);
    if parsed.is_none() {
        ctx.push(
            Diagnostic::error(Code::BandSyntax, source.span, format!("`{}` is not a threshold", source.value))
                .with_label("here")
                .with_help("write a comparison and a number, e.g. `>= 95` or `<= 0`"),
        );
    }
    parsed
}
