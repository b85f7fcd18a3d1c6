//! Rules for `resources:` — requests, paging, incremental cursors, status policies and fan-out, including
//! the order resources run in and fan-out cycles. Emitted shapes are checked in [`super::emit`].

use super::compile::{Ctx, Vars};
use super::config::ConfigCheck;
use super::emit;
use crate::diag::{Code, Diagnostic};
use crate::expr::Template;
use crate::model::{
    Body, FallbackRequest, ForEach, Incremental, Paginate, Request, Resource, StatusAction, StatusRule,
};
use crate::source::de::Sp;
use crate::spec::raw::{RawIncremental, RawPaginate, RawRequest, RawResource, RawSpec};
use std::collections::BTreeSet;
use std::time::Duration;

/// Names no fan-out alias may take, because expressions already use them.
const RESERVED: &[&str] = &["config", "cursor", "now", "record"];
const DEFAULT_MAX_PAGES: u32 = 100_000;

pub(crate) struct ResourcesCheck {
    pub resources: Vec<Option<Resource>>,
    pub run_order: Vec<usize>,
}

pub(crate) fn check(ctx: &mut Ctx, raw: &RawSpec, config: &ConfigCheck) -> ResourcesCheck {
    let resources = raw.resources.iter().map(|(name, resource)| check_one(ctx, raw, config, name, resource)).collect();
    let run_order = order(ctx, raw);
    ResourcesCheck { resources, run_order }
}

fn check_one(
    ctx: &mut Ctx,
    raw: &RawSpec,
    config: &ConfigCheck,
    name: &Sp<String>,
    resource: &RawResource,
) -> Option<Resource> {
    let before = ctx.diagnostics.len();
    ctx.check_name(name, "resource");
    if let Some(budget) = &resource.budget
        && !raw.http.budgets.contains(&budget.value)
    {
        let defined: Vec<&str> = raw.http.budgets.names().collect();
        ctx.push(
            Diagnostic::error(
                Code::UnknownBudget,
                budget.span,
                format!("budget `{}` is not defined in http.budgets", budget.value),
            )
            .with_label("unknown budget")
            .with_help(if defined.is_empty() {
                "define it under `http.budgets`".to_string()
            } else {
                format!("budgets: {}", defined.join(", "))
            }),
        );
    }

    // Names a request template may read: config, the fan-out parent, and the cursor of an incremental sync.
    let mut vars = Vars::new(format!("in a request of `{}`", name.value), &config.names);
    let for_each = resource.for_each.as_ref().and_then(|f| {
        if !raw.resources.contains(&f.resource.value) {
            ctx.unknown_resource(&f.resource, raw);
        }
        let alias_ok = super::compile::is_snake_case(&f.alias.value) && !RESERVED.contains(&f.alias.value.as_str());
        if !alias_ok {
            ctx.push(
                Diagnostic::error(
                    Code::BadName,
                    f.alias.span,
                    format!("`{}` cannot name a fan-out parent", f.alias.value),
                )
                .with_help(format!("use a lower snake case name other than {}", RESERVED.join(", "))),
            );
            return None;
        }
        let filter_vars = Vars::new("in a fan-out filter", &config.names).with_prefix(&f.alias.value);
        let filter = f.filter.as_ref().map(|w| ctx.expr(w, &filter_vars));
        Some(ForEach { resource: f.resource.value.clone(), alias: f.alias.value.clone(), filter: filter.flatten() })
    });
    if let Some(f) = &for_each {
        vars = vars.with_prefix(&f.alias);
    }
    if resource.incremental.is_some() {
        vars = vars.with_names(["cursor"]);
    } else {
        // Accepted quietly so a resource without `incremental` gets one precise diagnostic (E304), not an
        // unknown-variable error as well.
        vars.quiet_names.insert("cursor".into());
        check_cursor_unused(ctx, &resource.request);
    }

    let request = check_request(ctx, &resource.request, &vars);
    let records = ctx.path(&resource.records);
    let paginate = check_paginate(ctx, resource.paginate.as_ref(), &resource.request);
    let incremental = resource.incremental.as_ref().map(|i| check_incremental(ctx, i, config, &vars));
    let on_status = check_status_rules(ctx, raw, resource, &vars);
    let emits = emit::check(ctx, name, resource, config, for_each.as_ref().map(|f| f.alias.as_str()));

    if ctx.diagnostics[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    Some(Resource {
        name: name.value.clone(),
        title: resource.title.clone(),
        description: resource.description.clone(),
        permissions: resource.permissions.clone(),
        licence: resource.licence.clone(),
        budget: resource.budget.as_ref().map(|b| b.value.clone()),
        for_each,
        request: request?,
        records: records?,
        paginate: paginate?,
        incremental: incremental.map_or(Some(None), |i| i.map(Some))?,
        on_status: on_status?,
        emit: emits?,
    })
}

/// E304: `{cursor}` in a request of a resource without `incremental`.
fn check_cursor_unused(ctx: &mut Ctx, request: &RawRequest) {
    let templates = std::iter::once(&request.path)
        .chain(request.query.iter().map(|(_, v)| v))
        .chain(request.headers.iter().map(|(_, v)| v));
    for template in templates {
        // Syntax errors are reported when the template is compiled for real; here only `cursor` matters.
        let reads_cursor =
            crate::expr::compile_template(&template.value).is_ok_and(|t| t.variables().iter().any(|v| v == "cursor"));
        if reads_cursor {
            let at = template.value.find("cursor").unwrap_or(0);
            ctx.push(
                Diagnostic::error(
                    Code::Incremental,
                    template.sub_span(at, "cursor".len()),
                    "`cursor` is only available to resources with `incremental`",
                )
                .with_label("no cursor here")
                .with_help("add an `incremental:` block, or remove the hole"),
            );
        }
    }
}

fn check_request(ctx: &mut Ctx, request: &RawRequest, vars: &Vars) -> Option<Request> {
    let path = ctx.template(&request.path, vars);
    if !request.path.value.starts_with('/') {
        ctx.push(
            Diagnostic::error(
                Code::BadPath,
                request.path.span,
                format!("request path `{}` must start with `/`", request.path.value),
            )
            .with_label("here")
            .with_help("the path is appended to http.base_url, e.g. `/users`"),
        );
        return None;
    }
    let query: Vec<(String, Option<Template>)> =
        request.query.iter().map(|(k, v)| (k.value.clone(), ctx.template(v, vars))).collect();
    let headers: Vec<(String, Option<Template>)> =
        request.headers.iter().map(|(k, v)| (k.value.clone(), ctx.template(v, vars))).collect();
    let body = request.body.as_ref().map(|b| body(ctx, &b.value, b, vars));
    Some(Request {
        method: request.method,
        path: path?,
        query: query.into_iter().map(|(k, v)| v.map(|v| (k, v))).collect::<Option<_>>()?,
        headers: headers.into_iter().map(|(k, v)| v.map(|v| (k, v))).collect::<Option<_>>()?,
        body: body.map_or(Some(None), |b| b.map(Some))?,
    })
}

fn body(ctx: &mut Ctx, value: &serde_json::Value, at: &Sp<serde_json::Value>, vars: &Vars) -> Option<Body> {
    use serde_json::Value;
    Some(match value {
        Value::String(text) => {
            let source = Sp::new(text.clone(), at.span);
            Body::Text(ctx.template(&source, vars)?)
        }
        Value::Array(items) => Body::List(items.iter().map(|i| body(ctx, i, at, vars)).collect::<Option<_>>()?),
        Value::Object(map) => Body::Object(
            map.iter().map(|(k, v)| body(ctx, v, at, vars).map(|b| (k.clone(), b))).collect::<Option<_>>()?,
        ),
        other => Body::Literal(other.clone()),
    })
}

fn max_pages(ctx: &mut Ctx, value: &Option<Sp<u32>>) -> u32 {
    match value {
        Some(v) if v.value == 0 => {
            ctx.push(Diagnostic::error(Code::Paging, v.span, "max_pages must be at least 1").with_label("here"));
            1
        }
        Some(v) => v.value,
        None => DEFAULT_MAX_PAGES,
    }
}

fn check_paginate(ctx: &mut Ctx, paginate: Option<&RawPaginate>, request: &RawRequest) -> Option<Paginate> {
    let before = ctx.diagnostics.len();
    // A paginator that sets a query parameter must own it: a fixed value in the request would fight it.
    let owns_param = |ctx: &mut Ctx, param: &str, at: Option<crate::diag::Span>| {
        if let Some(key) = request.query.key(param) {
            let mut d = Diagnostic::error(
                Code::Paging,
                key.span,
                format!("the paginator sets `{param}`; remove it from request.query"),
            )
            .with_label("set twice");
            if let Some(at) = at {
                d = d.with_secondary(at, "the paginator sets it");
            }
            ctx.push(d);
        }
    };
    let paginate = match paginate {
        None | Some(RawPaginate::None) => Paginate::None,
        Some(RawPaginate::NextUrl(p)) => Paginate::NextUrl {
            path: ctx.path(&p.path)?,
            max_pages: max_pages(ctx, &p.max_pages),
            stop_on_empty_page: p.stop_on_empty_page,
        },
        Some(RawPaginate::LinkHeader(p)) => Paginate::LinkHeader {
            rel: p.rel.clone().unwrap_or_else(|| "next".into()),
            max_pages: max_pages(ctx, &p.max_pages),
            stop_on_empty_page: p.stop_on_empty_page,
        },
        Some(RawPaginate::Cursor(p)) => {
            owns_param(ctx, &p.param.value, Some(p.param.span));
            let token_path = ctx.path(&p.token_path);
            let has_more_path = p.has_more_path.as_ref().map(|h| ctx.path(h));
            Paginate::Cursor {
                token_path: token_path?,
                param: nonempty(ctx, &p.param)?,
                has_more_path: has_more_path.map_or(Some(None), |h| h.map(Some))?,
                max_pages: max_pages(ctx, &p.max_pages),
                stop_on_empty_page: p.stop_on_empty_page,
            }
        }
        Some(RawPaginate::Offset(p)) => {
            let param = p.param.as_ref().map_or(Some("offset".to_string()), |v| nonempty(ctx, v))?;
            let limit_param = p.limit_param.as_ref().map_or(Some("limit".to_string()), |v| nonempty(ctx, v))?;
            owns_param(ctx, &param, p.param.as_ref().map(|v| v.span));
            owns_param(ctx, &limit_param, p.limit_param.as_ref().map(|v| v.span));
            if p.limit.value == 0 {
                ctx.push(Diagnostic::error(Code::Paging, p.limit.span, "limit must be at least 1").with_label("here"));
            }
            let total_path = p.total_path.as_ref().map(|t| ctx.path(t));
            Paginate::Offset {
                param,
                limit_param,
                limit: p.limit.value,
                start: p.start,
                total_path: total_path.map_or(Some(None), |t| t.map(Some))?,
                max_pages: max_pages(ctx, &p.max_pages),
            }
        }
        Some(RawPaginate::PageNumber(p)) => {
            let param = p.param.as_ref().map_or(Some("page".to_string()), |v| nonempty(ctx, v))?;
            owns_param(ctx, &param, p.param.as_ref().map(|v| v.span));
            let size_param = p.size_param.as_ref().map(|v| nonempty(ctx, v));
            if let Some(size) = &p.size
                && size.value == 0
            {
                ctx.push(Diagnostic::error(Code::Paging, size.span, "size must be at least 1").with_label("here"));
            }
            if let (Some(sp), None) = (&p.size_param, &p.size) {
                ctx.push(
                    Diagnostic::error(Code::Paging, sp.span, "`size_param` needs `size`, the page size to ask for")
                        .with_label("here"),
                );
            }
            let total_pages_path = p.total_pages_path.as_ref().map(|t| ctx.path(t));
            Paginate::PageNumber {
                param,
                start: p.start.unwrap_or(1),
                size_param: size_param.map_or(Some(None), |s| s.map(Some))?,
                size: p.size.as_ref().map(|s| s.value),
                total_pages_path: total_pages_path.map_or(Some(None), |t| t.map(Some))?,
                max_pages: max_pages(ctx, &p.max_pages),
            }
        }
    };
    (!ctx.diagnostics[before..].iter().any(Diagnostic::is_error)).then_some(paginate)
}

fn nonempty(ctx: &mut Ctx, value: &Sp<String>) -> Option<String> {
    if value.value.trim().is_empty() {
        ctx.push(Diagnostic::error(Code::Paging, value.span, "the parameter name is empty").with_label("here"));
        return None;
    }
    Some(value.value.clone())
}

fn check_incremental(
    ctx: &mut Ctx,
    incremental: &RawIncremental,
    config: &ConfigCheck,
    request_vars: &Vars,
) -> Option<Incremental> {
    let cursor = ctx.path(&incremental.cursor);
    if let Some(path) = &cursor
        && !path.is_singular()
    {
        ctx.push(
            Diagnostic::error(
                Code::Incremental,
                incremental.cursor.span,
                "the cursor path must select one value per record",
            )
            .with_label("matches many")
            .with_help("use a path of names only, e.g. `$.createdAt`"),
        );
    }
    let initial_vars = Vars::new("in the initial cursor", &config.names);
    let initial = ctx.expr(&incremental.initial, &initial_vars);
    let lookback = incremental.lookback.as_ref().map_or(Some(Duration::ZERO), |l| ctx.duration(l));
    let max_age = incremental.max_age.as_ref().map(|m| ctx.duration(m));
    if let (Some(Some(max_age)), Some(lookback), Some(m)) = (&max_age, &lookback, &incremental.max_age)
        && max_age <= lookback
    {
        ctx.push(
            Diagnostic::error(Code::Incremental, m.span, "max_age must be longer than lookback")
                .with_label("too short"),
        );
    }
    let filter = incremental.filter.as_ref().map(|f| {
        let template = ctx.template(&f.template, request_vars)?;
        if !template.variables().iter().any(|v| v == "cursor") {
            ctx.push(
                Diagnostic::error(Code::Incremental, f.template.span, "the server-side filter does not use `{cursor}`")
                    .with_label("no cursor")
                    .with_help("e.g. `\"createdAt ge {cursor}\"`"),
            );
            return None;
        }
        Some((f.param.value.clone(), template))
    });
    Some(Incremental {
        cursor: cursor?,
        initial: initial?,
        lookback: lookback?,
        max_age: max_age.map_or(Some(None), |m| m.map(Some))?,
        format: incremental.format,
        filter: filter.map_or(Some(None), |f| f.map(Some))?,
        client_filter: incremental.client_filter,
    })
}

fn check_status_rules(ctx: &mut Ctx, raw: &RawSpec, resource: &RawResource, vars: &Vars) -> Option<Vec<StatusRule>> {
    let before = ctx.diagnostics.len();
    let mut rules = Vec::new();
    for rule in &resource.on_status {
        for status in &rule.status.0 {
            if !(300..=599).contains(&status.value) {
                ctx.push(
                    Diagnostic::error(
                        Code::StatusPolicy,
                        status.span,
                        format!("{} is not a redirect or error status", status.value),
                    )
                    .with_label("here")
                    .with_help("status rules apply to 3xx, 4xx and 5xx responses"),
                );
            }
        }
        if rule.status.0.is_empty() {
            ctx.push(
                Diagnostic::error(Code::StatusPolicy, rule.action.span, "the rule lists no status").with_label("here"),
            );
        }
        if let Some(code) = &rule.error_code
            && raw.http.error_code_path.is_none()
        {
            ctx.push(
                Diagnostic::error(
                    Code::StatusPolicy,
                    code.span,
                    "`error_code` needs `http.error_code_path` to find the code in the body",
                )
                .with_label("cannot be read")
                .with_help("e.g. `error_code_path: \"$.error.code\"`"),
            );
        }
        let fallback = match (rule.action.value, &rule.fallback) {
            (StatusAction::Fallback, None) => {
                ctx.push(
                    Diagnostic::error(
                        Code::StatusPolicy,
                        rule.action.span,
                        "`action: fallback` needs a `fallback:` request change",
                    )
                    .with_label("nothing to fall back to"),
                );
                None
            }
            (StatusAction::Fallback, Some(f)) => {
                let query: Vec<(String, Option<Template>)> =
                    f.query.iter().map(|(k, v)| (k.value.clone(), ctx.template(v, vars))).collect();
                Some(FallbackRequest {
                    query: query.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect(),
                    remove_query: f.remove_query.iter().map(|r| r.value.clone()).collect(),
                })
            }
            (_, Some(_)) => {
                ctx.push(
                    Diagnostic::error(
                        Code::StatusPolicy,
                        rule.action.span,
                        "`fallback:` is only used with `action: fallback`",
                    )
                    .with_label("here"),
                );
                None
            }
            (_, None) => None,
        };
        rules.push(StatusRule {
            statuses: rule.status.0.iter().map(|s| s.value).collect(),
            error_code: rule.error_code.as_ref().map(|c| c.value.clone()),
            action: rule.action.value,
            message: rule.message.clone(),
            fallback,
        });
    }
    (!ctx.diagnostics[before..].iter().any(Diagnostic::is_error)).then_some(rules)
}

/// Orders resources so fan-out parents run first, reporting cycles (E402).
fn order(ctx: &mut Ctx, raw: &RawSpec) -> Vec<usize> {
    let names: Vec<&str> = raw.resources.names().collect();
    let parent = |i: usize| -> Option<usize> {
        let f = raw.resources.0[i].1.for_each.as_ref()?;
        names.iter().position(|n| *n == f.resource.value)
    };
    let mut order = Vec::new();
    let mut placed = vec![false; names.len()];
    let mut reported = BTreeSet::new();
    for start in 0..names.len() {
        // Walk up to the root, then place the chain from the root down.
        let mut chain = vec![start];
        let mut current = start;
        while let Some(p) = parent(current) {
            if chain.contains(&p) {
                // `chain` runs child → parent, so the cycle is the part of it from `p` on, back to `p`.
                let from = chain.iter().position(|&i| i == p).unwrap_or(0);
                let cycle: Vec<&str> = chain[from..].iter().map(|&i| names[i]).collect();
                if reported.insert(cycle.iter().copied().collect::<BTreeSet<_>>()) {
                    let f = raw.resources.0[current].1.for_each.as_ref().expect("a parent means for_each");
                    ctx.push(
                        Diagnostic::error(
                            Code::FanOutCycle,
                            f.resource.span,
                            format!("fan-out forms a cycle: {} → {}", cycle.join(" → "), names[p]),
                        )
                        .with_label("closes the cycle")
                        .with_help(
                            "each resource runs once per record of the next, so none of them can start; \
                             break the cycle",
                        ),
                    );
                }
                break;
            }
            if placed[p] {
                break;
            }
            chain.push(p);
            current = p;
        }
        for &i in chain.iter().rev() {
            if !placed[i] {
                placed[i] = true;
                order.push(i);
            }
        }
    }
    order
}

/// W601: a resource that emits nothing, feeds no fan-out and is not the connection test does no work.
pub(crate) fn warn_idle(ctx: &mut Ctx, raw: &RawSpec) {
    for (name, resource) in raw.resources.iter() {
        let is_parent =
            raw.resources.iter().any(|(_, r)| r.for_each.as_ref().is_some_and(|f| f.resource.value == name.value));
        let is_test = raw.connection_test.as_ref().is_some_and(|t| t.value == name.value);
        if resource.emit.is_empty() && !is_parent && !is_test {
            ctx.push(
                Diagnostic::warning(Code::NoEmit, name.span, format!("resource `{}` emits nothing", name.value))
                    .with_label("does no work")
                    .with_help("add an `emit:` list, or remove the resource"),
            );
        }
    }
}
