//! One integration test binary; one module per area.

/// `engine validate`: one invalid spec per diagnostic code, rendered output kept as snapshots.
mod validate;
/// The JSON Schema in `schemas/` is what the spec types generate, and every spec satisfies it.
mod schema;
/// `docs/connectors/<id>.md` are what `engine doc` renders from the specs.
mod docs;
/// Every spec and example validates clean; each spec's compiled summary is snapshotted.
mod specs;

/// Path of a file in the repository.
pub fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}
