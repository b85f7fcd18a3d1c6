//! The loaded spec file: its name and text, parsed into a [`Node`] tree in which every value knows its
//! byte span. Nothing else in the engine reads spec bytes from disk or parses YAML.
//!
//! The tree is deliberately untyped; [`de`] turns a node into any serde type while collecting precise
//! diagnostics. Parsing guards against hostile input: a size cap, alias-expansion budgets and a nesting
//! cap are enforced before anything is built.

pub mod de;

use crate::diag::{Code, Diagnostic, Span};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;
use std::path::Path;

/// Largest spec file accepted. Real specs are tens of kilobytes; anything near this is a mistake or an attack.
pub const MAX_SPEC_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;

/// A spec file as read from disk (or given by a host application).
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Source { name: name.into(), text: text.into() }
    }

    /// Reads a file, refusing one larger than [`MAX_SPEC_BYTES`] before reading it whole.
    pub fn read(path: &Path) -> Result<Source, Diagnostic> {
        let name = path.display().to_string();
        let unreadable =
            |e: std::io::Error| Diagnostic::error(Code::Unreadable, None, format!("cannot read `{name}`: {e}"));
        let size = std::fs::metadata(path).map_err(unreadable)?.len();
        if size > MAX_SPEC_BYTES as u64 {
            return Err(too_large(size as usize));
        }
        let bytes = std::fs::read(path).map_err(unreadable)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            // The text cannot be shown, so the place goes into the message instead of a span.
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let (line, column) = crate::diag::line_col(&String::from_utf8_lossy(valid), valid.len());
            Diagnostic::error(
                Code::Unreadable,
                None,
                format!("`{name}` is not valid UTF-8 (first bad byte at line {line}, column {column})"),
            )
            .with_help("save the spec as UTF-8")
        })?;
        Ok(Source { name, text })
    }
}

fn too_large(size: usize) -> Diagnostic {
    Diagnostic::error(
        Code::Limits,
        None,
        format!("the file is {size} bytes; specs larger than {MAX_SPEC_BYTES} bytes are refused"),
    )
    .with_help("split generated content out of the spec, or check that the right file was given")
}

/// One YAML value with its place in the text.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value's own span. Scalars get their exact text; mappings and sequences only their start.
    pub span: Span,
    /// For a mapping value, the span of its key: the natural place to point at for "missing key" errors.
    pub key_span: Option<Span>,
    /// How many bytes the value's text is shifted from its span start (1 for a quoted scalar), or `None`
    /// when the text is not a verbatim copy of the value (block scalars, escapes), so offsets cannot map.
    pub text_offset: Option<usize>,
    pub kind: NodeKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The span a diagnostic about this value as a whole should point at.
    pub fn anchor(&self) -> Span {
        match (&self.kind, self.key_span) {
            (NodeKind::Map(_) | NodeKind::Seq(_), Some(key)) => key,
            _ => self.span,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// The scalar as text, for mapping keys and lenient string reads.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Null => Some("null".into()),
            NodeKind::Bool(b) => Some(b.to_string()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// The value as JSON, for the schema check and for values the spec passes through untouched.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => {
                Value::Object(entries.iter().map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json())).collect())
            }
        }
    }
}

/// Parses YAML text into a node tree. YAML errors, budget breaches and excessive nesting are diagnostics.
pub fn parse(text: &str) -> Result<Node, Diagnostic> {
    if text.len() > MAX_SPEC_BYTES {
        return Err(too_large(text.len()));
    }
    let mut options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_alias_expansions_per_anchor = 1_000;
    options.alias_limits.max_replay_stack_depth = 16;
    let raw: Spanned<RawNode> = serde_saphyr::from_str_with_options(text, options).map_err(|e| yaml_error(text, &e))?;
    let mut node = convert(raw, text, None, 0)?;
    if matches!(node.kind, NodeKind::Null) && text.trim().is_empty() {
        node.span = Span::new(0, 0);
    }
    Ok(node)
}

fn yaml_error(text: &str, error: &serde_saphyr::Error) -> Diagnostic {
    let span = error.location().map(|l| location_span(text, &l, true));
    let message = error.to_string();
    // serde-saphyr appends " at line X column Y"; the rendered label already shows where.
    let message = message.split(" at line ").next().unwrap_or(&message).trim();
    let code = if message.contains("budget") || message.contains("alias") || message.contains("limit") {
        Code::Limits
    } else {
        Code::Unreadable
    };
    // Reword the parser's messages that speak of its own options rather than of the spec.
    let message = if message.contains("Depth") {
        format!("nesting deeper than {MAX_DEPTH} levels")
    } else {
        message.split(", set DuplicateKeyPolicy").next().unwrap_or(message).to_string()
    };
    Diagnostic::error(code, span, message).with_label("here")
}

fn location_span(text: &str, location: &serde_saphyr::Location, at_least_one: bool) -> Span {
    let span = location.span();
    let start = span
        .byte_offset()
        .map(|o| o as usize)
        .unwrap_or_else(|| offset_of_line_col(text, location.line() as usize, location.column() as usize));
    let len = span.byte_len().unwrap_or(0) as usize;
    let start = start.min(text.len());
    let len = len.min(text.len() - start);
    Span::new(start, if at_least_one && len == 0 && start < text.len() { 1 } else { len })
}

fn offset_of_line_col(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (index, l) in text.split_inclusive('\n').enumerate() {
        if index + 1 == line {
            return offset + l.char_indices().nth(column.saturating_sub(1)).map_or(l.len(), |(i, _)| i);
        }
        offset += l.len();
    }
    text.len()
}

fn convert(raw: Spanned<RawNode>, text: &str, key_span: Option<Span>, depth: usize) -> Result<Node, Diagnostic> {
    let span = location_span(text, &raw.referenced, false);
    if depth > MAX_DEPTH {
        return Err(Diagnostic::error(Code::Limits, span, format!("nesting deeper than {MAX_DEPTH} levels")));
    }
    let (kind, text_offset) = match raw.value {
        RawNode::Null => (NodeKind::Null, None),
        RawNode::Bool(b) => (NodeKind::Bool(b), None),
        RawNode::Int(i) => (NodeKind::Int(i), None),
        RawNode::Float(f) => (NodeKind::Float(f), None),
        RawNode::Str(s) => {
            let offset = text_offset(text, span, &s);
            (NodeKind::Str(s), offset)
        }
        RawNode::Seq(items) => (
            NodeKind::Seq(items.into_iter().map(|i| convert(i, text, None, depth + 1)).collect::<Result<_, _>>()?),
            None,
        ),
        RawNode::Map(entries) => {
            let mut converted = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let key = convert(key, text, None, depth + 1)?;
                let value = convert(value, text, Some(key.span), depth + 1)?;
                converted.push((key, value));
            }
            (NodeKind::Map(converted), None)
        }
    };
    Ok(Node { span, key_span, text_offset, kind })
}

/// Finds how a string value sits in its span: verbatim (plain scalar), or inside one pair of quotes.
fn text_offset(text: &str, span: Span, value: &str) -> Option<usize> {
    let raw = text.get(span.start..span.start + span.len)?;
    if raw == value {
        return Some(0);
    }
    let inner = raw.get(1..raw.len().checked_sub(1)?)?;
    ((raw.starts_with('\'') || raw.starts_with('"')) && inner == value).then_some(1)
}

/// The shape serde-saphyr gives us before spans are converted.
enum RawNode {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawNodeVisitor)
    }
}

struct RawNodeVisitor;

impl<'de> Visitor<'de> for RawNodeVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
        Ok(i64::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawNode, E> {
        Ok(i64::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }
    fn visit_u128<E>(self, v: u128) -> Result<RawNode, E> {
        Ok(i64::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::Str(v))
    }
    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(RawNode::Map(entries))
    }
}

#[cfg(test)]
mod tests;
