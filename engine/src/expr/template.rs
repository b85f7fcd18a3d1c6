//! Templates: text with `{expression}` holes, such as
//! `"{config.login_base_url}/{config.tenant_id}/oauth2/v2.0/token"`.
//!
//! `{{` and `}}` stand for literal braces. Each hole is compiled once as an [`Expr`]; rendering
//! evaluates the holes, turns each value into text and passes that text through an encoder the
//! caller chooses, because only the caller knows whether the text lands in a path segment, a
//! query value or a header. This file does not build URLs or requests and does not decide which
//! encoder is right for which place.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::value::to_text;
use super::{EvalError, Expr, ExprError, Scope, compile};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text copied verbatim (with `{{` and `}}` already reduced to single braces).
    Literal(String),
    /// An expression whose value is spliced in.
    Hole(Expr),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
    variables: Vec<String>,
    functions: Vec<String>,
}

/// Compiles a template. Errors carry byte offsets into `source`: the brace of an unclosed or
/// empty hole, the stray `}`, or the position inside a hole where its expression went wrong (the
/// start of the hole's text when the expression error has no position of its own).
pub fn compile_template(source: &str) -> Result<Template, ExprError> {
    let bytes = source.as_bytes();
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    // Braces and quotes are ASCII, so byte-wise scanning never splits a character; literal text
    // is copied in slices between them.
    let mut copied_from = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                literal.push_str(&source[copied_from..i]);
                literal.push('{');
                i += 2;
                copied_from = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                literal.push_str(&source[copied_from..i]);
                literal.push('}');
                i += 2;
                copied_from = i;
            }
            b'}' => {
                return Err(ExprError::new("stray `}` in template; write `}}` for a literal brace", Some(i)));
            }
            b'{' => {
                literal.push_str(&source[copied_from..i]);
                let start = i + 1;
                let end = hole_end(source, i)?;
                let text = &source[start..end];
                if text.trim().is_empty() {
                    return Err(ExprError::new("empty template hole `{}`", Some(i)));
                }
                let expr = compile(text).map_err(|error| ExprError {
                    message: format!("in template hole `{}`: {}", text.trim(), error.message),
                    offset: Some(start + error.offset.unwrap_or(0)),
                })?;
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Hole(expr));
                i = end + 1;
                copied_from = i;
            }
            _ => i += 1,
        }
    }
    literal.push_str(&source[copied_from..]);
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }

    let mut variables: Vec<String> = Vec::new();
    let mut functions: Vec<String> = Vec::new();
    for part in &parts {
        if let Part::Hole(expr) = part {
            variables.extend(expr.variables().iter().cloned());
            functions.extend(expr.functions().iter().cloned());
        }
    }
    variables.sort();
    variables.dedup();
    functions.sort();
    functions.dedup();
    Ok(Template { source: source.to_string(), parts, variables, functions })
}

/// Byte index of the `}` closing the hole opened at `open`. A `}` inside a string literal does
/// not close the hole, so `{coalesce(x, "}")}` works; a `{` outside a string literal is an error
/// because the expression language never uses braces.
fn hole_end(source: &str, open: usize) -> Result<usize, ExprError> {
    let bytes = source.as_bytes();
    let mut i = open + 1;
    let mut in_string = false;
    while i < bytes.len() {
        match (bytes[i], in_string) {
            (b'\\', true) => i += 1,
            (b'"', _) => in_string = !in_string,
            (b'}', false) => return Ok(i),
            (b'{', false) => {
                return Err(ExprError::new("`{` inside a template hole; holes cannot nest", Some(i)));
            }
            _ => {}
        }
        i += 1;
    }
    Err(ExprError::new("unclosed `{` in template", Some(open)))
}

impl Template {
    /// The text this template was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The literal and hole parts, in order. Adjacent literal text is merged into one part.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Every variable read by any hole, sorted and without duplicates.
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// Every function called by any hole, sorted and without duplicates.
    pub fn functions(&self) -> &[String] {
        &self.functions
    }

    /// True when the template has no holes.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|part| matches!(part, Part::Literal(_)))
    }

    /// The literal text before the first hole (the whole text when there is no hole). A caller
    /// can check, for example, that a URL's scheme and host are fixed by the spec.
    pub fn literal_prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Literal(text)) => text,
            _ => "",
        }
    }

    /// Renders the template: literal parts verbatim, each hole's value as text (see
    /// [`to_text`](super::to_text)) passed through `encode`. A hole whose value is empty is an
    /// error rather than an empty string, so a missing value never silently changes a URL.
    pub fn render(&self, scope: &dyn Scope, encode: &dyn Fn(&str) -> String) -> Result<String, EvalError> {
        self.render_with(scope, &|text| Ok(encode(text)))
    }

    /// Like [`Template::render`], with an encoder that may refuse a value; its message is
    /// reported with the hole it came from. Use it with [`encode_path_segment_strict`].
    pub fn render_with(
        &self,
        scope: &dyn Scope,
        encode: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<String, EvalError> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Hole(expr) => {
                    let hole = expr.source().trim();
                    let value = expr.eval(scope)?;
                    if matches!(value, super::Value::Empty) {
                        return Err(EvalError::new(format!("template hole `{hole}` has no value")));
                    }
                    let text = to_text(&value).map_err(|m| EvalError::new(format!("template hole `{hole}`: {m}")))?;
                    let encoded = encode(&text).map_err(|m| EvalError::new(format!("template hole `{hole}`: {m}")))?;
                    out.push_str(&encoded);
                }
            }
        }
        Ok(out)
    }
}

/// Everything except RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) is percent-encoded.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes everything except RFC 3986 unreserved characters, so `/`, `?`, `#`, `@` and
/// `:` inside a value can never change the path, query, fragment or host of a URL.
///
/// It cannot protect against a value that is exactly `.` or `..`: URL parsers treat those (and
/// their `%2E` spellings) as dot segments and remove them. Use [`encode_path_segment_strict`]
/// where that matters.
pub fn encode_path_segment(s: &str) -> String {
    utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

/// [`encode_path_segment`], refusing the values that would still change the path: the empty
/// string (it would produce `//`), `.` and `..`.
pub fn encode_path_segment_strict(s: &str) -> Result<String, String> {
    match s {
        "" => Err("an empty value cannot be a URL path segment".to_string()),
        "." | ".." => Err(format!("{s:?} cannot be a URL path segment")),
        _ => Ok(encode_path_segment(s)),
    }
}

/// The identity encoder, for places where the caller has already made the text safe or where
/// no encoding applies.
pub fn encode_none(s: &str) -> String {
    s.to_string()
}
