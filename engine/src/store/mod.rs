//! The embedded store: one SQLite file holding, for many connector instances, the rows a sync emits
//! (entities, events, metrics, edges, distributions), the KRI results computed from them, where each
//! resource's sync stands, and the history of runs.
//!
//! What it guarantees, and the runner may rely on:
//! - a page's rows and the cursor that follows them commit together or not at all
//!   ([`Store::write_page`]), so a killed run resumes from the last committed page. Pages that arrive
//!   in quick succession share a transaction (at most [`BATCH_PAGES`] pages or [`BATCH_WINDOW`]): each
//!   commit rewrites every index page the rows touched, so one commit per page of random ids spent
//!   most of a sync rewriting the same pages. [`Store::flush`] commits at once; every other write, and
//!   closing the store, does too;
//! - [`Store::background`] lends the store to a writer thread while a resource is read, so one page is
//!   turned into text and written while the next is mapped; writes keep their order, at most
//!   [`QUEUED_PAGES`] pages wait, and nothing queued behind a failed page is written; from then on
//!   another thread checkpoints the WAL, so neither waits for the disk. A first sync into an empty table
//!   builds its key index once at the end instead of row by row (`keys.rs`);
//! - writing a row identical to the stored one changes nothing but the run that last saw it, so re-running
//!   a sync reports zero writes and leaves `updated_at` alone;
//! - events are one row per (instance, name, key), whatever the number of times they are fetched;
//! - rows vanished from a fully enumerated resource are deleted only when the runner says the enumeration
//!   succeeded ([`Store::finish_full_sync`]);
//! - reads stream row by row, so memory does not grow with the table ([`Store::for_each_row`]).
//!
//! What it deliberately does not do: fetch, map records to rows, evaluate KRIs, or hold configuration or
//! credentials (no API takes them, so none can end up in the file). It knows shapes and names, never a
//! spec's meaning. One process should sync a given instance at a time: starting a run marks that
//! instance's unfinished runs interrupted, and writes under an interrupted run are then refused.
//!
//! The schema is in [`schema`](schema_sql); the file defaults to [`DEFAULT_PATH`].
//!
//! Write throughput of the release build, 300,000 entities of four attributes in pages of 1,000 (each
//! page with its cursor, in batches) on the project's 2-core machine: 611,000-615,000 rows/s for a
//! first sync (all inserts) and 327,000-337,000 rows/s for a re-run that changes nothing (each row is
//! compared and marked seen); streaming the 300,000 rows back takes 0.22 s. Reproduce with
//! `cargo test --release --lib store::tests::throughput -- --ignored --nocapture`.

mod background;
pub use background::{BackgroundWriter, QUEUED_PAGES};
mod checkpoint;
mod error;
pub(crate) mod json;
mod keys;
mod read;
pub use read::{Scan, Slice, check_attributes_text};
mod records;
mod runs;
mod schema;
mod write;

#[cfg(test)]
mod tests;

pub use error::{Result, StoreError};
pub use records::{
    Attributes, Band, Fields, KriRecord, KriStatus, PageOutcome, PageWrite, ResourceReport, ResourceStatus, Row,
    RowRef, RunRecord, RunStatus, SavedSyncState, Swept, SyncState,
};
pub use schema::{SCHEMA_VERSION, schema_sql};
pub use write::{BATCH_PAGES, BATCH_WINDOW};

use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// Where the store lives unless the operator says otherwise.
pub const DEFAULT_PATH: &str = "./engine.db";

/// An open store file. Writes take `&mut self` and reads `&self`, so the borrow checker keeps a
/// streaming read and a write of the same connection apart.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The write transaction pages are gathered in, when one is open (see [`Store::write_page`]).
    batch: Option<write::Batch>,
    /// Checkpoints the WAL from the first [`Store::background`] on, until the store is closed.
    checkpointer: Option<checkpoint::Checkpointer>,
    /// The keyed tables whose key index this connection dropped to load them, until it is built again.
    deferred: keys::KeyedSet,
    /// Set while a [`BackgroundWriter`] has the store: only then may a key index be left out, because
    /// nothing can read through this connection until the writer ends and builds the index.
    may_defer: bool,
    /// The keyed tables this connection loaded from empty, each with the run that did (see
    /// [`Store::finish_full_sync`]); forgotten when a run begins.
    first_loads: Vec<(keys::Keyed, String)>,
}

/// Whatever was written is committed when the store is closed: every page of a batch is whole.
impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Store {
    /// Opens the store at `path`, creating the file and its schema if needed. Refuses a file written by
    /// a newer engine ([`StoreError::NewerSchema`]) or by another program ([`StoreError::NotAStore`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        let conn = schema::open(path)?;
        let mut store = Store::with_connection(conn, path.to_path_buf());
        // A key index left out by a killed load is built before anything is read, so every reader sees
        // one row per key. Failing here (another process holds the write lock too long, a read-only
        // file) only leaves it to the next writer, which cannot skip it.
        let _ = store.build_missing_indexes();
        Ok(store)
    }

    /// A store on `conn`, with nothing written through it yet.
    fn with_connection(conn: rusqlite::Connection, path: PathBuf) -> Store {
        Store {
            conn,
            path,
            batch: None,
            checkpointer: None,
            deferred: keys::KeyedSet::default(),
            may_defer: false,
            first_loads: Vec::new(),
        }
    }

    /// Sets the connection's page cache size in KiB: reads that pass over each page once need little.
    pub fn set_cache_kib(&self, kib: u32) -> Result<()> {
        self.conn
            .pragma_update(None, "cache_size", -i64::from(kib))
            .map_err(|e| sql_error(&self.path, "setting the page cache size", e))
    }

    /// The file this store was opened from, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// An SQLite failure during `op`, placed in the file. A free function (not a method) so it can be used
/// while a transaction borrows the connection.
fn sql_error(path: &Path, op: impl Into<String>, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite { path: path.to_path_buf(), op: op.into(), source }
}

fn corrupt(path: &Path, what: impl Into<String>, problem: impl ToString) -> StoreError {
    StoreError::Corrupt { path: path.to_path_buf(), what: what.into(), problem: problem.to_string() }
}

/// Counts reach SQLite as i64; no count of rows or pages comes near its limit.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
