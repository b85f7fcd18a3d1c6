//! Renders diagnostics for people (miette's graphical report, no colour, fixed width, so output is the
//! same on every terminal and in snapshots) and for machines (JSON with 1-based line and column).

use super::{Diagnostic, Severity, line_col};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;
use std::fmt;

/// Renders every diagnostic of one file as text. `width` is the wrap width of the report.
pub fn render_text(diagnostics: &[Diagnostic], file_name: &str, text: &str, width: usize) -> String {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(width)
        .with_links(false)
        .with_context_lines(1);
    let mut out = String::new();
    for diagnostic in diagnostics {
        let report = Report { diagnostic, source: NamedSource::new(file_name, text.to_string()) };
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, &report);
        out.push('\n');
    }
    out
}

/// One diagnostic as machines read it.
#[derive(Serialize)]
pub struct JsonDiagnostic<'a> {
    pub file: &'a str,
    pub code: &'static str,
    pub severity: Severity,
    pub message: &'a str,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub end_line: Option<usize>,
    pub end_column: Option<usize>,
    pub label: Option<&'a str>,
    pub help: Option<&'a str>,
}

/// Converts diagnostics of one file to their JSON form.
pub fn render_json<'a>(diagnostics: &'a [Diagnostic], file_name: &'a str, text: &str) -> Vec<JsonDiagnostic<'a>> {
    diagnostics
        .iter()
        .map(|d| {
            let start = d.span.map(|s| line_col(text, s.start));
            let end = d.span.map(|s| line_col(text, s.start + s.len));
            JsonDiagnostic {
                file: file_name,
                code: d.code.as_str(),
                severity: d.severity,
                message: &d.message,
                line: start.map(|p| p.0),
                column: start.map(|p| p.1),
                end_line: end.map(|p| p.0),
                end_column: end.map(|p| p.1),
                label: d.label.as_deref(),
                help: d.help.as_deref(),
            }
        })
        .collect()
}

/// Adapter that lets miette draw our diagnostic against the file's text.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: NamedSource<String>,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diagnostic.code.as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.diagnostic.span.map(|_| &self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = self.diagnostic.span?;
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            Some(self.diagnostic.label.clone().unwrap_or_else(|| "here".to_string())),
            (primary.start, primary.len),
        )];
        for secondary in &self.diagnostic.secondary {
            labels.push(LabeledSpan::new_with_span(
                Some(secondary.text.clone()),
                (secondary.span.start, secondary.span.len),
            ));
        }
        Some(Box::new(labels.into_iter()))
    }
}
