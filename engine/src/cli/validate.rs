//! `engine validate` and `engine doc`.

use super::RENDER_WIDTH;
use crate::diag::{Diagnostic, render_json, render_text};
use crate::source::Source;
use crate::validate::{Validated, validate};
use std::path::Path;
use std::process::ExitCode;

pub fn run(paths: &[std::path::PathBuf], json: bool, deny_warnings: bool) -> ExitCode {
    let mut all_ok = true;
    let mut reports = Vec::new();
    for path in paths {
        let (source, validated) = match Source::read(path) {
            Ok(source) => {
                let validated = validate(&source);
                (source, validated)
            }
            Err(d) => {
                (Source::new(path.display().to_string(), String::new()), Validated { spec: None, diagnostics: vec![d] })
            }
        };
        let errors = validated.diagnostics.iter().filter(|d| d.is_error()).count();
        let warnings = validated.diagnostics.len() - errors;
        let ok = errors == 0 && (!deny_warnings || warnings == 0);
        all_ok &= ok;
        if json {
            reports.push(serde_json::json!({
                "file": source.name,
                "valid": ok,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": render_json(&validated.diagnostics, &source.name, &source.text),
            }));
        } else {
            print_text(&source, &validated, errors, warnings, ok);
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&reports).expect("reports serialize"));
    }
    if all_ok { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

fn print_text(source: &Source, validated: &Validated, errors: usize, warnings: usize, ok: bool) {
    if !validated.diagnostics.is_empty() {
        eprint!("{}", render_text(&validated.diagnostics, &source.name, &source.text, RENDER_WIDTH));
    }
    let counts = match (errors, warnings) {
        (0, 0) => String::new(),
        (e, w) => format!(
            " ({})",
            [plural(e, "error"), plural(w, "warning")].into_iter().flatten().collect::<Vec<_>>().join(", ")
        ),
    };
    match (&validated.spec, ok) {
        (Some(spec), true) => println!(
            "ok      {}: {} — {} config fields, {} resources, {} KRIs, {} metrics{counts}",
            source.name,
            spec.id,
            spec.config.len(),
            spec.resources.len(),
            spec.kris.len(),
            spec.metrics.len()
        ),
        _ => println!("invalid {}{counts}", source.name),
    }
}

fn plural(n: usize, word: &str) -> Option<String> {
    (n > 0).then(|| format!("{n} {word}{}", if n == 1 { "" } else { "s" }))
}

/// Loads and validates a spec for commands that need a valid one, printing diagnostics when it is not.
pub fn load_valid(path: &Path) -> Result<(Source, crate::model::Spec), ExitCode> {
    let source = Source::read(path).map_err(|d| {
        report(&Source::new(path.display().to_string(), String::new()), &[d]);
        ExitCode::from(1)
    })?;
    let validated = validate(&source);
    let warnings: Vec<Diagnostic> = validated.diagnostics.iter().filter(|d| !d.is_error()).cloned().collect();
    match validated.spec {
        Some(spec) => {
            if !warnings.is_empty() {
                report(&source, &warnings);
            }
            Ok((source, spec))
        }
        None => {
            report(&source, &validated.diagnostics);
            eprintln!("{} is not a valid spec; `engine validate {}` lists the problems", source.name, source.name);
            Err(ExitCode::from(1))
        }
    }
}

fn report(source: &Source, diagnostics: &[Diagnostic]) {
    eprint!("{}", render_text(diagnostics, &source.name, &source.text, RENDER_WIDTH));
}

pub fn doc(path: &Path, output: Option<&Path>) -> ExitCode {
    let (_, spec) = match load_valid(path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let markdown = crate::doc::render(&spec);
    match output {
        Some(out) => match std::fs::write(out, markdown) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cannot write {}: {e}", out.display());
                ExitCode::from(2)
            }
        },
        None => {
            print!("{markdown}");
            ExitCode::SUCCESS
        }
    }
}
