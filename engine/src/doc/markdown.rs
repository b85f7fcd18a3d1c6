//! Markdown building blocks for `engine doc`: code spans that survive any content, table cells that cannot
//! break a row, and pipe tables.
//!
//! There is deliberately no general escaping of prose: descriptions in a spec are Markdown already and pass
//! through as written. Only what would break the document's structure (a `|` or a line break inside a
//! table cell, a backtick inside a code span) is handled here.

/// `text` as an inline code span. Line breaks become spaces (a code span shows them as spaces anyway, and
/// a raw line break would end a table row). A backtick inside gets a longer fence so the span stays whole.
pub fn code(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return "(empty)".to_string();
    }
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    // A span that starts or ends with a backtick needs a space so the fence is not read as part of it.
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// Text made safe for one table cell: paragraphs become `<br>`, other line breaks spaces, and `|` is
/// escaped (inside code spans too: pipe tables split rows before reading code spans, and show `\|` as `|`).
pub fn cell(text: &str) -> String {
    let text = text.trim().replace("\r\n", "\n");
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    let joined = paragraphs.join("<br>");
    if joined.is_empty() { "—".to_string() } else { joined.replace('|', "\\|") }
}

/// A pipe table. Cells go through [`cell`] when rendered, so callers pass plain Markdown.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "a table row needs one cell per column");
        self.rows.push(cells);
    }

    /// The table's lines, without a trailing newline.
    pub fn render(&self) -> String {
        let line = |cells: &[String]| format!("| {} |", cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | "));
        let mut lines = vec![line(&self.header), format!("|{}", "---|".repeat(self.header.len()))];
        lines.extend(self.rows.iter().map(|r| line(r)));
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks_and_line_breaks() {
        assert_eq!(code("a || b"), "`a || b`");
        assert_eq!(code("x `y` z"), "``x `y` z``");
        assert_eq!(code("`q`"), "`` `q` ``");
        assert_eq!(code("a\n  b"), "`a b`");
    }

    #[test]
    fn cells_cannot_break_a_row() {
        assert_eq!(cell("a | b\nc\n\nd"), "a \\| b c<br>d");
        assert_eq!(cell("  "), "—");
        let mut table = Table::new(&["x", "y"]);
        table.row(vec!["`a|b`".into(), String::new()]);
        assert_eq!(table.render(), "| x | y |\n|---|---|\n| `a\\|b` | — |");
    }
}
