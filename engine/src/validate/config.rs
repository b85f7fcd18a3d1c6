//! Rules for `config:` — field types, constraints, defaults (literal or computed), the resource selector —
//! and the warning for fields nothing reads.

use super::compile::{ConfigNames, Ctx, Vars, is_snake_case};
use crate::diag::{Code, Diagnostic};
use crate::model::{ConfigField, ConfigType};
use crate::source::de::Sp;
use crate::spec::raw::{RawConfigField, RawSpec};
use std::collections::{BTreeMap, BTreeSet};

pub(crate) struct ConfigCheck {
    pub fields: Vec<ConfigField>,
    pub names: ConfigNames,
}

pub(crate) fn check(ctx: &mut Ctx, raw: &RawSpec) -> ConfigCheck {
    let mut names = ConfigNames::default();
    for (name, field) in raw.config.iter() {
        names.all.insert(format!("config.{}", name.value));
        if field.kind.value == ConfigType::Secret {
            names.secrets.insert(format!("config.{}", name.value));
        }
    }
    // A field that failed to load still exists as far as references go; its own error says what is wrong.
    for broken in raw.broken.iter().filter_map(|b| b.strip_prefix("config.")) {
        names.all.insert(format!("config.{broken}"));
    }
    let mut fields = Vec::new();
    let mut default_deps: BTreeMap<String, (Sp<String>, Vec<String>)> = BTreeMap::new();
    for (name, field) in raw.config.iter() {
        if !is_snake_case(&name.value) {
            ctx.check_name(name, "config field");
        }
        if let Some(compiled) = check_field(ctx, name, field, &names, raw) {
            if let (Some(expr), Some(source)) = (&compiled.default_expr, &field.default_expr) {
                let deps =
                    expr.variables().iter().filter_map(|v| v.strip_prefix("config.")).map(str::to_string).collect();
                default_deps.insert(name.value.clone(), (source.clone(), deps));
            }
            fields.push(compiled);
        }
    }
    check_default_cycles(ctx, &default_deps);
    ConfigCheck { fields, names }
}

fn check_field(
    ctx: &mut Ctx,
    name: &Sp<String>,
    field: &RawConfigField,
    names: &ConfigNames,
    raw: &RawSpec,
) -> Option<ConfigField> {
    let kind = field.kind.value;
    let errors_before = ctx.diagnostics.len();
    let fail = |ctx: &mut Ctx, span, message: String, help: &str| {
        ctx.push(Diagnostic::error(Code::ConfigField, span, message).with_label("here").with_help(help.to_string()));
    };

    if kind == ConfigType::Enum && field.values.is_empty() {
        fail(ctx, field.kind.span, format!("enum field `{}` lists no `values`", name.value), "add `values: [a, b]`");
    }
    if kind == ConfigType::List && field.items.is_none() {
        fail(
            ctx,
            field.kind.span,
            format!("list field `{}` has no `items` type", name.value),
            "add `items: string` (or enum, integer, url)",
        );
    }
    if let Some(items) = &field.items {
        if kind != ConfigType::List {
            fail(
                ctx,
                items.span,
                "`items` only applies to `type: list`".into(),
                "remove `items` or make the field a list",
            );
        }
        if matches!(items.value, ConfigType::List | ConfigType::Secret) {
            fail(
                ctx,
                items.span,
                "list items cannot be lists or secrets".into(),
                "use string, integer, number, boolean, url or enum",
            );
        }
        if items.value == ConfigType::Enum && field.values.is_empty() {
            fail(ctx, items.span, "enum items need `values`".into(), "add `values: [a, b]`");
        }
    }
    let takes_values = kind == ConfigType::Enum
        || kind == ConfigType::String
        || field.items.as_ref().is_some_and(|i| i.value == ConfigType::Enum);
    if !field.values.is_empty() && !takes_values {
        fail(
            ctx,
            field.values[0].span,
            "`values` only applies to enums, strings and lists of enums".into(),
            "remove `values`",
        );
    }
    let numeric = matches!(kind, ConfigType::Integer | ConfigType::Number);
    for bound in [&field.minimum, &field.maximum].into_iter().flatten() {
        if !numeric {
            fail(
                ctx,
                bound.span,
                "`minimum` and `maximum` only apply to integers and numbers".into(),
                "remove the bound",
            );
        }
    }
    if let (Some(min), Some(max)) = (&field.minimum, &field.maximum)
        && min.value > max.value
    {
        fail(ctx, max.span, format!("maximum {} is below minimum {}", max.value, min.value), "swap the bounds");
    }
    let pattern = field.pattern.as_ref().and_then(|p| {
        // Anchor the pattern so it must match the whole value, which is what authors mean.
        match regex::Regex::new(&format!("^(?:{})$", p.value)) {
            Ok(re) => Some(re),
            Err(e) => {
                let message = e.to_string().lines().last().unwrap_or("invalid pattern").trim().to_string();
                fail(
                    ctx,
                    p.span,
                    format!("pattern does not compile: {message}"),
                    "write a regular expression such as `^[a-z0-9-]+$`",
                );
                None
            }
        }
    });
    if field.selects_resources {
        check_selector(ctx, name, field, raw);
    }
    if field.required && (field.default.is_some() || field.default_expr.is_some()) {
        fail(
            ctx,
            name.span,
            format!("`{}` has a default, so it is never required", name.value),
            "remove `required: true`",
        );
    }
    if kind == ConfigType::Secret && (field.default.is_some() || field.default_expr.is_some()) {
        fail(
            ctx,
            name.span,
            format!("secret `{}` cannot have a default", name.value),
            "secrets come from the operator's environment or files",
        );
    }
    if field.default.is_some() && field.default_expr.is_some() {
        ctx.push(
            Diagnostic::error(Code::Conflict, name.span, "give `default` or `default_expr`, not both")
                .with_label("here"),
        );
    }
    let default_expr = field.default_expr.as_ref().and_then(|source| {
        let own = format!("config.{}", name.value);
        let mut vars = Vars::new("in a config default", names);
        vars.config.remove(&own);
        if source.value.contains(&own) {
            ctx.push(
                Diagnostic::error(
                    Code::ConfigDefault,
                    source.span,
                    format!("the default of `{}` reads itself", name.value),
                )
                .with_label("here"),
            );
            return None;
        }
        ctx.expr(source, &vars)
    });
    if ctx.diagnostics[errors_before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    let compiled = ConfigField {
        name: name.value.clone(),
        kind,
        description: field.description.clone(),
        required: field.required,
        default: field.default.as_ref().map(|d| d.value.clone()),
        default_expr,
        pattern,
        minimum: field.minimum.as_ref().map(|m| m.value),
        maximum: field.maximum.as_ref().map(|m| m.value),
        values: field.values.iter().map(|v| v.value.clone()).collect(),
        items: field.items.as_ref().map(|i| i.value),
        selects_resources: field.selects_resources,
        example: field.example.clone(),
    };
    if let Some(default) = &field.default
        && let Err(why) = compiled.check(&default.value)
    {
        ctx.push(
            Diagnostic::error(Code::ConfigDefault, default.span, format!("default of `{}` {why}", name.value))
                .with_label("default here"),
        );
        return None;
    }
    Some(compiled)
}

/// A resource-selecting list must be a list of enum whose values are exactly resource names.
fn check_selector(ctx: &mut Ctx, name: &Sp<String>, field: &RawConfigField, raw: &RawSpec) {
    let is_enum_list =
        field.kind.value == ConfigType::List && field.items.as_ref().is_some_and(|i| i.value == ConfigType::Enum);
    if !is_enum_list {
        ctx.push(
            Diagnostic::error(
                Code::ResourceSelector,
                field.kind.span,
                format!("`{}` selects resources, so it must be a list of enum", name.value),
            )
            .with_help("write `type: list`, `items: enum` and `values:` with the resource names"),
        );
        return;
    }
    for value in &field.values {
        if !raw.resources.contains(&value.value) {
            ctx.unknown_resource(value, raw);
        }
    }
    let listed: BTreeSet<&str> = field.values.iter().map(|v| v.value.as_str()).collect();
    let missing: Vec<&str> = raw.resources.names().filter(|r| !listed.contains(r)).collect();
    if !missing.is_empty() {
        ctx.push(
            Diagnostic::error(
                Code::ResourceSelector,
                name.span,
                format!(
                    "`{}` cannot select every resource: {} missing from its values",
                    name.value,
                    missing.join(", ")
                ),
            )
            .with_help("list every resource name in `values`"),
        );
    }
}

fn check_default_cycles(ctx: &mut Ctx, deps: &BTreeMap<String, (Sp<String>, Vec<String>)>) {
    for start in deps.keys() {
        let mut path = vec![start.clone()];
        let mut current = start.clone();
        while let Some((_, next)) = deps.get(&current) {
            let Some(next) = next.iter().find(|n| deps.contains_key(*n)) else { break };
            if next == start {
                let (source, _) = &deps[start];
                path.push(start.clone());
                ctx.push(
                    Diagnostic::error(
                        Code::ConfigDefault,
                        source.span,
                        format!("config defaults depend on each other: {}", path.join(" → ")),
                    )
                    .with_label("part of the cycle"),
                );
                return;
            }
            if path.contains(next) {
                break;
            }
            path.push(next.clone());
            current = next.clone();
        }
    }
}

/// W600: a config field that no expression or template reads is probably a leftover.
pub(crate) fn warn_unused(ctx: &mut Ctx, raw: &RawSpec) {
    for (name, field) in raw.config.iter() {
        let used = ctx.used_variables.contains(&format!("config.{}", name.value));
        if !used && !field.selects_resources {
            ctx.push(
                Diagnostic::warning(
                    Code::UnusedConfig,
                    name.span,
                    format!("config field `{}` is never read", name.value),
                )
                .with_label("unused")
                .with_help("use it as `{config.NAME}` in a template or `config.NAME` in an expression, or remove it"),
            );
        }
    }
}
