//! One integration test binary; one module per area.

/// `docs/connectors/<id>.md` are what `engine doc` renders from the specs.
mod docs;
/// The JSON Schema in `schemas/` is what the spec types generate, and every spec satisfies it.
mod schema;
/// Every spec and example validates clean; each spec's compiled summary is snapshotted.
mod specs;
/// `engine validate`: one invalid spec per diagnostic code, rendered output kept as snapshots.
mod validate;

/// KRIs and metrics over a store: every decision rule, aggregates against a reference, `engine kri`.
mod kri;
/// `engine run` against a scripted loopback API.
mod run;
/// The sandbox server: credentials, bad data, the README's main job.
mod sandbox;
/// Every spec's fixture scenarios replayed through the sandbox, with snapshots.
mod scenarios;
/// The scripted loopback server the HTTP tests use.
mod server;

/// Path of a file in the repository.
pub fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}
