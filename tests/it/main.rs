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

/// A fresh directory under the temp dir, removed with everything in it when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// `engine-<name>-<pid>`, emptied if a previous process with the same id left it behind.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("engine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// The store file's path in this directory.
    pub fn store(&self) -> std::path::PathBuf {
        self.0.join("store.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
