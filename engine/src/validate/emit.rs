//! Rules for `emit:` — field mappings (exactly one source each), transforms, derived fields and the names
//! of shape types — and the catalog of every shape type the spec produces, which indicators check against.

use super::compile::{Ctx, Vars};
use super::config::ConfigCheck;
use super::resources::ResourcesCheck;
use crate::diag::{Code, Diagnostic};
use crate::model::{Attribute, Emit, EmitFields, FieldMap, FieldSource, Shape, ShapeType};
use crate::source::de::Sp;
use crate::spec::raw::{self, Items, RawEmit, RawResource, RawSpec};
use std::collections::BTreeMap;

pub(crate) fn check(
    ctx: &mut Ctx,
    resource_name: &Sp<String>,
    resource: &RawResource,
    config: &ConfigCheck,
    alias: Option<&str>,
) -> Option<Vec<Emit>> {
    let before = ctx.diagnostics.len();
    let mut emits = Vec::new();
    for emit in &resource.emit {
        let (shape, name) = shape_and_name(emit);
        ctx.check_name(name, shape_word(shape));
        let mut base = Vars::new(format!("in a field of `{}`", resource_name.value), &config.names);
        if let Some(alias) = alias {
            base = base.with_prefix(alias);
        }
        let attributes_raw = attributes_of(emit);
        let attributes = check_attributes(ctx, shape, attributes_raw, &base);
        let all_names: Vec<&str> = attributes_raw.names().collect();
        let keyed = base.clone().with_names(all_names.iter().copied());
        let when = when_of(emit).map(|w| ctx.expr(w, &Vars { site: "in `when`".into(), ..keyed.clone() }));
        let fields = match emit {
            RawEmit::Entity(e) => {
                field_map(ctx, &e.id, &keyed).map(|id| EmitFields::Entity { kind: e.kind.value.clone(), id })
            }
            RawEmit::Event(e) => {
                let key = field_map(ctx, &e.key, &keyed);
                let start = field_map(ctx, &e.start, &keyed);
                let end = e.end.as_ref().map(|end| field_map(ctx, end, &keyed));
                (|| {
                    Some(EmitFields::Event {
                        name: e.name.value.clone(),
                        key: key?,
                        start: start?,
                        end: end.map_or(Some(None), |x| x.map(Some))?,
                    })
                })()
            }
            RawEmit::Metric(m) => {
                let ts = m.ts.as_ref().map(|t| field_map(ctx, t, &keyed));
                let value = field_map(ctx, &m.value, &keyed);
                (|| {
                    Some(EmitFields::Metric {
                        name: m.name.value.clone(),
                        ts: ts.map_or(Some(None), |x| x.map(Some))?,
                        value: value?,
                    })
                })()
            }
            RawEmit::Edge(e) => {
                ctx.check_name(&e.from.kind, "entity type");
                ctx.check_name(&e.to.kind, "entity type");
                let from_id = field_map(ctx, &e.from.id, &keyed);
                let to_id = field_map(ctx, &e.to.id, &keyed);
                (|| {
                    Some(EmitFields::Edge {
                        from_type: e.from.kind.value.clone(),
                        from_id: from_id?,
                        kind: e.kind.value.clone(),
                        to_type: e.to.kind.value.clone(),
                        to_id: to_id?,
                    })
                })()
            }
            RawEmit::Distribution(d) => {
                let ts = d.ts.as_ref().map(|t| field_map(ctx, t, &keyed));
                let points = field_map(ctx, &d.points, &keyed);
                let count = field_map(ctx, &d.count, &keyed);
                let sum = field_map(ctx, &d.sum, &keyed);
                (|| {
                    Some(EmitFields::Distribution {
                        name: d.name.value.clone(),
                        ts: ts.map_or(Some(None), |x| x.map(Some))?,
                        kind: d.kind.value,
                        points: points?,
                        count: count?,
                        sum: sum?,
                    })
                })()
            }
        };
        if let (Some(fields), Some(attributes), Some(when)) =
            (fields, attributes, when.map_or(Some(None), |w| w.map(Some)))
        {
            let mut sorted: Vec<usize> = (0..attributes.len()).collect();
            sorted.sort_by(|&a, &b| attributes[a].name.cmp(&attributes[b].name));
            emits.push(Emit {
                shape,
                type_key: format!("{}.{}", shape.as_str(), name.value),
                when,
                fields,
                attributes,
                sorted,
            });
        }
    }
    (!ctx.diagnostics[before..].iter().any(Diagnostic::is_error)).then_some(emits)
}

/// Attributes are mapped in order, so a derived (`expr`) attribute may read the ones before it.
fn check_attributes(
    ctx: &mut Ctx,
    shape: Shape,
    attributes: &Items<raw::FieldMap>,
    base: &Vars,
) -> Option<Vec<Attribute>> {
    let mut out = Vec::new();
    let mut ok = true;
    let mut seen: Vec<&str> = Vec::new();
    for (name, map) in attributes.iter() {
        if !is_identifier(&name.value) {
            ok = false;
            ctx.push(
                Diagnostic::error(
                    Code::BadName,
                    name.span,
                    format!("attribute `{}` cannot be read by expressions", name.value),
                )
                .with_label("not an identifier")
                .with_help("use letters, digits and `_`, starting with a letter, e.g. `lastSignInAt`"),
            );
        }
        if shape.row_fields().contains(&name.value.as_str()) {
            ok = false;
            ctx.push(
                Diagnostic::error(
                    Code::ShapeConflict,
                    name.span,
                    format!("attribute `{}` has the name of a row field of {} rows", name.value, shape.as_str()),
                )
                .with_label("hides the row field")
                .with_help(format!(
                    "{} rows already have {}; rename the attribute",
                    shape.as_str(),
                    shape.row_fields().join(", ")
                )),
            );
        }
        let vars = base.clone().with_names(seen.iter().copied());
        match field_map(ctx, map, &vars) {
            Some(compiled) => {
                out.push(Attribute { name: name.value.clone(), map: compiled, description: map.description.clone() })
            }
            None => ok = false,
        }
        seen.push(&name.value);
    }
    ok.then_some(out)
}

fn field_map(ctx: &mut Ctx, map: &raw::FieldMap, vars: &Vars) -> Option<FieldMap> {
    let given = [map.path.is_some(), map.template.is_some(), map.expr.is_some(), map.value.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given != 1 {
        ctx.push(
            Diagnostic::error(
                Code::Conflict,
                map.span,
                if given == 0 {
                    "a field mapping needs one of `path`, `template`, `expr`, `value`"
                } else {
                    "a field mapping takes only one of `path`, `template`, `expr`, `value`"
                },
            )
            .with_label("here")
            .with_help("e.g. `{ path: \"$.createdAt\", transform: unix_ms }`"),
        );
        return None;
    }
    let source = if let Some(path) = &map.path {
        FieldSource::Path(ctx.path(path)?)
    } else if let Some(template) = &map.template {
        FieldSource::Template(ctx.template(template, vars)?)
    } else if let Some(expr) = &map.expr {
        FieldSource::Expr(ctx.expr(expr, vars)?)
    } else {
        FieldSource::Value(map.value.as_ref().map(|v| v.value.clone()).unwrap_or_default())
    };
    Some(FieldMap {
        source,
        transforms: map.transform.clone(),
        default: map.default.as_ref().map(|d| d.value.clone()),
        missing: map.missing,
    })
}

fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn shape_and_name(emit: &RawEmit) -> (Shape, &Sp<String>) {
    match emit {
        RawEmit::Entity(e) => (Shape::Entity, &e.kind),
        RawEmit::Event(e) => (Shape::Event, &e.name),
        RawEmit::Metric(m) => (Shape::Metric, &m.name),
        RawEmit::Edge(e) => (Shape::Edge, &e.kind),
        RawEmit::Distribution(d) => (Shape::Distribution, &d.name),
    }
}

fn shape_word(shape: Shape) -> &'static str {
    match shape {
        Shape::Entity => "entity type",
        Shape::Event => "event name",
        Shape::Metric => "metric name",
        Shape::Edge => "edge kind",
        Shape::Distribution => "distribution name",
    }
}

fn attributes_of(emit: &RawEmit) -> &Items<raw::FieldMap> {
    match emit {
        RawEmit::Entity(e) => &e.attributes,
        RawEmit::Event(e) => &e.attributes,
        RawEmit::Metric(m) => &m.attributes,
        RawEmit::Edge(e) => &e.attributes,
        RawEmit::Distribution(d) => &d.attributes,
    }
}

fn when_of(emit: &RawEmit) -> Option<&Sp<String>> {
    match emit {
        RawEmit::Entity(e) => e.when.as_ref(),
        RawEmit::Event(e) => e.when.as_ref(),
        RawEmit::Metric(m) => m.when.as_ref(),
        RawEmit::Edge(e) => e.when.as_ref(),
        RawEmit::Distribution(d) => d.when.as_ref(),
    }
}

/// Every shape type the spec emits, with the union of its attributes and the resources that emit it.
pub(crate) fn catalog(_ctx: &mut Ctx, raw: &RawSpec, _resources: &ResourcesCheck) -> BTreeMap<String, ShapeType> {
    let mut shapes: BTreeMap<String, ShapeType> = BTreeMap::new();
    for (resource, body) in raw.resources.iter() {
        for emit in &body.emit {
            let (shape, name) = shape_and_name(emit);
            let key = format!("{}.{}", shape.as_str(), name.value);
            let entry = shapes.entry(key).or_insert_with(|| ShapeType {
                shape,
                name: name.value.clone(),
                attributes: Vec::new(),
                emitted_by: Vec::new(),
            });
            for attribute in attributes_of(emit).names() {
                if !entry.attributes.iter().any(|a| a == attribute) {
                    entry.attributes.push(attribute.to_string());
                }
            }
            if !entry.emitted_by.contains(&resource.value) {
                entry.emitted_by.push(resource.value.clone());
            }
        }
    }
    shapes
}
