//! `docs/connectors/<spec id>.md` is exactly what `engine doc` renders from `specs/<file>.yaml`, so the
//! published reference cannot drift from the spec the engine runs. With `UPDATE_DOCS=1` the test writes
//! the documents instead of comparing (and removes documents whose spec is gone).
//!
//! Whether a spec is valid is the `specs` test's business; here an invalid spec only fails with a pointer
//! to `engine validate`, because there is nothing to render.

use crate::repo_path;
use engine::source::Source;
use engine::validate::validate;
use std::path::PathBuf;

const UPDATE_HINT: &str = "run `UPDATE_DOCS=1 cargo test --test it docs` to regenerate";

fn updating() -> bool {
    std::env::var("UPDATE_DOCS").is_ok_and(|v| v == "1")
}

/// `specs/*.yaml`, sorted.
fn spec_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_path("specs"))
        .map(|entries| entries.map(|e| e.expect("a directory entry").path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    files
}

/// Where two texts first differ, as a message naming the line.
fn first_difference(expected: &str, actual: &str) -> String {
    let (mut expected_lines, mut actual_lines) = (expected.lines(), actual.lines());
    let mut number = 1;
    loop {
        match (expected_lines.next(), actual_lines.next()) {
            (Some(e), Some(a)) if e == a => number += 1,
            (None, None) => return "the files differ only in line endings or the final newline".to_string(),
            (e, a) => {
                return format!(
                    "first difference at line {number}:\n  file:     {}\n  rendered: {}",
                    e.unwrap_or("<end of file>"),
                    a.unwrap_or("<end of document>")
                );
            }
        }
    }
}

#[test]
fn connector_docs_are_fresh() {
    let docs_dir = repo_path("docs/connectors");
    let mut problems = Vec::new();
    let mut documented = Vec::new();
    for path in spec_files() {
        let source = Source::read(&path).unwrap_or_else(|d| panic!("cannot read {}: {d:?}", path.display()));
        let Some(spec) = validate(&source).spec else {
            problems.push(format!("{} is not a valid spec; `engine validate {}` says why", source.name, source.name));
            continue;
        };
        let rendered = engine::doc::render(&spec);
        let doc_path = docs_dir.join(format!("{}.md", spec.id));
        documented.push(doc_path.clone());
        if updating() {
            std::fs::create_dir_all(&docs_dir).expect("docs/connectors can be created");
            std::fs::write(&doc_path, &rendered).unwrap_or_else(|e| panic!("cannot write {}: {e}", doc_path.display()));
            continue;
        }
        match std::fs::read_to_string(&doc_path) {
            Ok(current) if current == rendered => {}
            Ok(current) => problems.push(format!(
                "{} is stale: {}\n{UPDATE_HINT}",
                doc_path.display(),
                first_difference(&current, &rendered)
            )),
            Err(_) => problems.push(format!("{} is missing; {UPDATE_HINT}", doc_path.display())),
        }
    }

    // A document whose spec was removed or renamed would go on describing a connector that no longer exists.
    let mut existing: Vec<PathBuf> = std::fs::read_dir(&docs_dir)
        .map(|entries| entries.map(|e| e.expect("a directory entry").path()).collect())
        .unwrap_or_default();
    existing.retain(|p| p.extension().is_some_and(|e| e == "md") && !documented.contains(p));
    existing.sort();
    for orphan in existing {
        if updating() {
            std::fs::remove_file(&orphan).unwrap_or_else(|e| panic!("cannot remove {}: {e}", orphan.display()));
        } else {
            problems.push(format!("{} has no spec in specs/; {UPDATE_HINT} (it removes the file)", orphan.display()));
        }
    }

    assert!(problems.is_empty(), "connector docs are out of date:\n\n{}", problems.join("\n\n"));
}

#[test]
fn first_difference_names_the_line() {
    assert_eq!(first_difference("a\nb\n", "a\nc\n"), "first difference at line 2:\n  file:     b\n  rendered: c");
    assert!(first_difference("a\n", "a\nb\n").contains("<end of file>"));
}
