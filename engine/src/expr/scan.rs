//! Lexical pre-scan of expression text, run before the text is handed to evalexpr.
//!
//! The scan mirrors evalexpr's tokenizer closely enough to know what is inside string literals
//! and comments, which lets it enforce the nesting limits that protect evalexpr's recursive parser
//! and evaluator from overflowing the stack (an overflow aborts the whole process and cannot be
//! caught). It also records where identifiers, assignments and `;` appear so that compile errors
//! can carry byte offsets, which evalexpr's own errors lack.
//!
//! It does not build a tree and does not decide whether the text is valid: every syntax question
//! other than balanced parentheses and terminated strings and comments is left to evalexpr.

use super::{ExprError, MAX_CHAINED_OPERATORS, MAX_PAREN_DEPTH};

/// What the scan learned about a piece of expression text.
#[derive(Debug, Default)]
pub(crate) struct Scanned {
    /// True when the text contains anything besides whitespace and comments.
    pub has_tokens: bool,
    /// Offset of the first assignment operator (`=`, `+=`, `&&=`, ...), if any.
    pub assignment: Option<usize>,
    /// Offset of the first `;`, if any.
    pub semicolon: Option<usize>,
    identifiers: Vec<Identifier>,
}

#[derive(Debug)]
struct Identifier {
    offset: usize,
    text: String,
    /// True when evalexpr will treat the identifier as a function name, which it does whenever
    /// the next token is a value or an opening parenthesis.
    call: bool,
}

impl Scanned {
    /// Offset of the `occurrence`-th (0-based) call of `name`, falling back to the first place the
    /// name appears at all.
    pub fn call_offset(&self, name: &str, occurrence: usize) -> Option<usize> {
        self.identifiers
            .iter()
            .filter(|identifier| identifier.call && identifier.text == name)
            .nth(occurrence)
            .or_else(|| self.identifiers.iter().find(|identifier| identifier.text == name))
            .map(|identifier| identifier.offset)
    }
}

/// Characters that end a literal in evalexpr's tokenizer.
fn is_special(c: char) -> bool {
    matches!(c, '+' | '-' | '*' | '/' | '%' | '^' | '(' | ')' | ',' | ';' | '=' | '!' | '>' | '<' | '&' | '|' | '"')
        || c.is_whitespace()
}

/// True when evalexpr reads the literal as a number or a boolean rather than an identifier.
fn is_constant(text: &str) -> bool {
    let hex = text.strip_prefix("0x").is_some_and(|digits| i64::from_str_radix(digits, 16).is_ok());
    hex || text.parse::<i64>().is_ok() || text.parse::<f64>().is_ok() || text.parse::<bool>().is_ok()
}

/// Skips whitespace and comments starting at index `i` and returns the index of the next
/// significant character (or `chars.len()`).
fn skip_trivia(chars: &[(usize, char)], mut i: usize) -> usize {
    while i < chars.len() {
        let c = chars[i].1;
        let next = chars.get(i + 1).map(|&(_, c)| c);
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            i = skip_line_comment(chars, i);
        } else if c == '/' && next == Some('*') {
            match skip_block_comment(chars, i) {
                Some(end) => i = end,
                None => return chars.len(),
            }
        } else {
            break;
        }
    }
    i
}

/// Index just past the newline that ends the line comment starting at `i`.
fn skip_line_comment(chars: &[(usize, char)], i: usize) -> usize {
    let mut j = i + 2;
    while j < chars.len() && chars[j].1 != '\n' {
        j += 1;
    }
    (j + 1).min(chars.len())
}

/// Index just past the `*/` that ends the block comment starting at `i`, or None when the
/// comment is never closed.
fn skip_block_comment(chars: &[(usize, char)], i: usize) -> Option<usize> {
    let mut j = i + 2;
    while j + 1 < chars.len() {
        if chars[j].1 == '*' && chars[j + 1].1 == '/' {
            return Some(j + 2);
        }
        j += 1;
    }
    None
}

/// Scans `source`, enforcing [`MAX_PAREN_DEPTH`] and [`MAX_CHAINED_OPERATORS`].
pub(crate) fn scan(source: &str) -> Result<Scanned, ExprError> {
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut scanned = Scanned::default();
    let mut open_parens: Vec<usize> = Vec::new();
    let mut chained = 0usize;
    // Mirrors evalexpr's `last_token_is_rightsided_value`, which decides whether `-` is a
    // subtraction or a negation.
    let mut after_value = false;
    let mut i = 0usize;

    let mut chain = |offset: usize| -> Result<(), ExprError> {
        chained += 1;
        if chained > MAX_CHAINED_OPERATORS {
            Err(ExprError::new(
                format!(
                    "expression is too deeply nested: more than {MAX_CHAINED_OPERATORS} unary \
                     operators (`!`, prefix `-`), exponentiations (`^`) and function \
                     applications without parentheses"
                ),
                Some(offset),
            ))
        } else {
            Ok(())
        }
    };

    while i < chars.len() {
        let (offset, c) = chars[i];
        let next = chars.get(i + 1).map(|&(_, c)| c);
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && next == Some('/') {
            i = skip_line_comment(&chars, i);
            continue;
        }
        if c == '/' && next == Some('*') {
            i = skip_block_comment(&chars, i).ok_or_else(|| ExprError::new("unterminated comment", Some(offset)))?;
            continue;
        }
        scanned.has_tokens = true;
        let is_value;
        match c {
            '"' => {
                let mut j = i + 1;
                let mut closed = false;
                while j < chars.len() {
                    match chars[j].1 {
                        '\\' => j += 2,
                        '"' => {
                            closed = true;
                            break;
                        }
                        _ => j += 1,
                    }
                }
                if !closed {
                    return Err(ExprError::new("unterminated string literal", Some(offset)));
                }
                i = j + 1;
                is_value = true;
            }
            '(' => {
                open_parens.push(offset);
                if open_parens.len() > MAX_PAREN_DEPTH {
                    return Err(ExprError::new(
                        format!(
                            "expression is too deeply nested: more than {MAX_PAREN_DEPTH} levels \
                             of parentheses"
                        ),
                        Some(offset),
                    ));
                }
                i += 1;
                is_value = false;
            }
            ')' => {
                if open_parens.pop().is_none() {
                    return Err(ExprError::new("unmatched `)`", Some(offset)));
                }
                i += 1;
                is_value = true;
            }
            ';' => {
                scanned.semicolon.get_or_insert(offset);
                i += 1;
                is_value = false;
            }
            '=' => {
                if next == Some('=') {
                    i += 2;
                } else {
                    scanned.assignment.get_or_insert(offset);
                    i += 1;
                }
                is_value = false;
            }
            '!' => {
                if next == Some('=') {
                    i += 2;
                } else {
                    chain(offset)?;
                    i += 1;
                }
                is_value = false;
            }
            '<' | '>' => {
                i += if next == Some('=') { 2 } else { 1 };
                is_value = false;
            }
            '&' | '|' => {
                if next == Some(c) {
                    if chars.get(i + 2).map(|&(_, c)| c) == Some('=') {
                        scanned.assignment.get_or_insert(offset);
                        i += 3;
                    } else {
                        i += 2;
                    }
                } else {
                    // A lone `&` or `|` is a syntax error that evalexpr reports itself.
                    i += 1;
                }
                is_value = false;
            }
            '+' | '*' | '/' | '%' | '-' | '^' => {
                if next == Some('=') {
                    scanned.assignment.get_or_insert(offset);
                    i += 2;
                } else {
                    if c == '^' || (c == '-' && !after_value) {
                        chain(offset)?;
                    }
                    i += 1;
                }
                is_value = false;
            }
            ',' => {
                i += 1;
                is_value = false;
            }
            _ => {
                let mut j = i;
                while j < chars.len() && !is_special(chars[j].1) {
                    j += 1;
                }
                let end = chars.get(j).map_or(source.len(), |&(o, _)| o);
                let text = &source[offset..end];
                if !is_constant(text) {
                    let k = skip_trivia(&chars, j);
                    let following = chars.get(k).map(|&(_, c)| c);
                    let call = matches!(following, Some('(') | Some('"')) || following.is_some_and(|c| !is_special(c));
                    if call && following != Some('(') {
                        chain(offset)?;
                    }
                    scanned.identifiers.push(Identifier { offset, text: text.to_string(), call });
                }
                i = j;
                is_value = true;
            }
        }
        after_value = is_value;
    }

    if let Some(&offset) = open_parens.last() {
        return Err(ExprError::new("unclosed `(`", Some(offset)));
    }
    Ok(scanned)
}
