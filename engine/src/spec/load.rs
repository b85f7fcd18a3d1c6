//! Loads a spec file into a `RawSpec`, collecting every structural diagnostic.
//!
//! Each item (a config field, a resource, an indicator, the `http` block) is read on its own, so a broken
//! resource does not hide the problems of the next one, and unknown keys are all reported. When any
//! item fails to read, it is left out of the `RawSpec` and named in `RawSpec::broken`; the error it caused
//! is already among the diagnostics, so the spec as a whole can never validate.

use super::raw::{Items, RawSpec, SPEC_KEYS};
use crate::diag::{Code, Diagnostic, Span, did_you_mean};
use crate::source::de::{Sp, from_node};
use crate::source::{self, Node, NodeKind, Source};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeSet;

/// The result of loading: the raw spec when every item read cleanly, and all diagnostics found.
pub struct Loaded {
    pub raw: Option<RawSpec>,
    pub diagnostics: Vec<Diagnostic>,
}

pub fn load(source: &Source) -> Loaded {
    let root = match source::parse(&source.text) {
        Ok(root) => root,
        Err(d) => {
            return Loaded { raw: None, diagnostics: vec![d] };
        }
    };
    let sink = RefCell::new(Vec::new());
    let raw = read_spec(&root, &sink);
    let mut diagnostics = sink.into_inner();
    diagnostics.sort_by_key(|d| d.span.map(|s| s.start));
    // Unknown keys were reported and skipped, so a spec that has only those still gets its semantic
    // checks: one run then shows a misspelt key and a broken formula together.
    Loaded { raw, diagnostics }
}

fn read_spec(root: &Node, sink: &RefCell<Vec<Diagnostic>>) -> Option<RawSpec> {
    let NodeKind::Map(entries) = &root.kind else {
        sink.borrow_mut().push(Diagnostic::error(
            Code::WrongType,
            root.span,
            format!("a spec is a mapping of keys such as `id`, `http` and `resources`, found {}", root.kind_name()),
        ));
        return None;
    };
    for (key, _) in entries {
        let name = key.scalar_text().unwrap_or_default();
        if !SPEC_KEYS.contains(&name.as_str()) {
            let help = match did_you_mean(&name, SPEC_KEYS.iter().copied()) {
                Some(close) => format!("did you mean `{close}`? Accepted here: {}", SPEC_KEYS.join(", ")),
                None => format!("accepted here: {}", SPEC_KEYS.join(", ")),
            };
            sink.borrow_mut().push(
                Diagnostic::error(Code::UnknownKey, key.span, format!("unknown key `{name}`"))
                    .with_label("unknown key")
                    .with_help(help),
            );
        }
    }
    let find = |name: &str| entries.iter().find(|(k, _)| k.scalar_text().as_deref() == Some(name)).map(|(_, v)| v);
    let missing = |name: &str| {
        sink.borrow_mut().push(
            Diagnostic::error(Code::MissingKey, Span::new(0, 0), format!("missing key `{name}`"))
                .with_label("the spec starts here"),
        );
        None
    };
    let required = |name: &str| find(name).or_else(|| missing(name));

    let spec_version = required("spec_version").and_then(|n| one::<Sp<u32>>(n, sink));
    let id = required("id").and_then(|n| one::<Sp<String>>(n, sink));
    let title = required("title").and_then(|n| one::<String>(n, sink));
    let tagline = optional(find("tagline"), sink);
    let description = optional(find("description"), sink);
    let source_type = optional(find("source_type"), sink);
    let docs_url = optional(find("docs_url"), sink);
    let schedule = optional(find("schedule"), sink);
    let setup = optional::<Vec<String>>(find("setup"), sink);
    let limitations = optional::<Vec<String>>(find("limitations"), sink);
    let connection_test = optional(find("connection_test"), sink);
    let broken = RefCell::new(BTreeSet::new());
    let config = items("config", find("config"), sink, &broken);
    let http = required("http").and_then(|n| one(n, sink));
    let resources = match find("resources") {
        Some(node) => items("resources", Some(node), sink, &broken),
        None => {
            missing("resources");
            None
        }
    };
    let kris = items("kris", find("kris"), sink, &broken);
    let metrics = items("metrics", find("metrics"), sink, &broken);

    Some(RawSpec {
        spec_version: spec_version?,
        id: id?,
        title: title?,
        tagline: tagline?,
        description: description?,
        source_type: source_type?,
        docs_url: docs_url?,
        schedule: schedule?,
        setup: setup?.unwrap_or_default(),
        limitations: limitations?.unwrap_or_default(),
        connection_test: connection_test?,
        config: config?,
        http: http?,
        resources: resources?,
        kris: kris?,
        metrics: metrics?,
        broken: broken.into_inner(),
    })
}

/// Reads one item; a failure becomes a diagnostic and `None`.
fn one<'a, T: Deserialize<'a>>(node: &'a Node, sink: &RefCell<Vec<Diagnostic>>) -> Option<T> {
    match from_node(node, sink) {
        Ok(value) => Some(value),
        Err(d) => {
            sink.borrow_mut().push(d);
            None
        }
    }
}

/// Reads an optional key: `Some(None)` when absent or null, `None` when present but broken.
fn optional<'a, T: Deserialize<'a>>(node: Option<&'a Node>, sink: &RefCell<Vec<Diagnostic>>) -> Option<Option<T>> {
    match node {
        None => Some(None),
        Some(n) if matches!(n.kind, NodeKind::Null) => Some(None),
        Some(n) => one(n, sink).map(Some),
    }
}

/// Reads a mapping of named items one by one, so every broken item is reported. Broken items are left out
/// and their names recorded in `broken` as `section.name`, so the other items can still be checked.
fn items<'a, T: Deserialize<'a>>(
    section: &str,
    node: Option<&'a Node>,
    sink: &RefCell<Vec<Diagnostic>>,
    broken: &RefCell<BTreeSet<String>>,
) -> Option<Items<T>> {
    let Some(node) = node else {
        return Some(Items::default());
    };
    let entries = match &node.kind {
        NodeKind::Map(entries) => entries,
        NodeKind::Null => return Some(Items::default()),
        _ => {
            sink.borrow_mut().push(Diagnostic::error(
                Code::WrongType,
                node.anchor(),
                format!("expected a mapping of names to items, found {}", node.kind_name()),
            ));
            return None;
        }
    };
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let name = Sp::new(key.scalar_text().unwrap_or_default(), key.span);
        match one::<T>(value, sink) {
            Some(item) => out.push((name, item)),
            None => {
                broken.borrow_mut().insert(format!("{section}.{}", name.value));
            }
        }
    }
    Some(Items(out))
}
