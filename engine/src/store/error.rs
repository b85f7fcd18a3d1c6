//! `StoreError`: every way the store can fail, each saying what was being done and to which file.
//!
//! Messages name the store file, the operation, and at most the key fields of a row (type, id, name,
//! key, timestamp). They never carry attribute values or cursors: attributes are whatever an API
//! returned, and the caller decides where those may be shown. The store never receives configuration
//! or credentials, so there is nothing secret for a message to leak.

use std::path::PathBuf;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or prepared (permissions, not a database, disk full...).
    #[error("cannot open the store {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },

    /// The file system does not support the shared memory WAL needs (some network file systems).
    #[error(
        "the store {path} cannot use write-ahead logging (SQLite kept journal mode `{mode}`); put it on a local disk"
    )]
    NoWal { path: PathBuf, mode: String },

    /// The file is an SQLite database that some other program made.
    #[error("{path} is not an engine store (it is an SQLite database holding other tables); choose another file")]
    NotAStore { path: PathBuf },

    /// A newer engine has upgraded the file; this engine cannot know what the new schema means.
    #[error(
        "the store {path} has schema version {found}, newer than version {supported} that this engine \
         understands; use a newer engine, or another store file"
    )]
    NewerSchema { path: PathBuf, found: i64, supported: i64 },

    /// An SQLite call failed outside any particular row.
    #[error("{op} failed in the store {path}: {source}")]
    Sqlite { path: PathBuf, op: String, source: rusqlite::Error },

    /// One row of a page was refused (a constraint such as an empty id), so the whole page was rolled
    /// back, cursor included.
    #[error(
        "{op}: row {index} of the page ({row}) was refused by the store {path}, so nothing of the page was written: {reason}"
    )]
    Row { path: PathBuf, op: String, index: usize, row: String, reason: String },

    /// A stored value did not read back (invalid JSON, an unknown status word): the file was edited by
    /// hand or damaged.
    #[error("the store {path} holds an unreadable value in {what}: {problem}")]
    Corrupt { path: PathBuf, what: String, problem: String },

    /// A write named a run that `begin_run` never returned.
    #[error("{op}: run `{run_id}` is not in the store {path}")]
    UnknownRun { path: PathBuf, op: String, run_id: String },

    /// A write named a run of another instance, or one that is no longer running (another process
    /// started a run of the same instance and marked this one interrupted).
    #[error("{op}: run `{run_id}` {problem}, so the store {path} refused the write")]
    RunMismatch { path: PathBuf, op: String, run_id: String, problem: String },

    /// A value SQLite cannot hold faithfully (a NaN or infinite number).
    #[error("{op}: {problem}")]
    Invalid { op: String, problem: String },
}
