//! The store's SQL schema, its version, and opening a file: pragmas, refusing a file from a newer engine
//! or another program, and applying the migrations a file lacks.
//!
//! Conventions of every table:
//! - every row is keyed by `instance` first: one store holds many connector instances (tenants), and
//!   every read and delete names one;
//! - times are INTEGER milliseconds since the Unix epoch, UTC;
//! - `attributes` is a JSON object with its keys sorted at every level, so the same attributes always
//!   have the same text and comparing texts is comparing values;
//! - `resource` is the spec resource that last wrote a row, and `last_seen_run` the last run that saw
//!   it, which is how a full sync finds rows that vanished from the API.
//!
//! Deliberately absent: foreign keys from rows to runs (a lookup per row would slow every write, and
//! `write_page` checks the run once per page instead), and an index for the full-sync sweep (it would
//! have to be rewritten for every row on every run, while the sweep reads one instance's rows once).
//! The unique key index of `entities` starts with (instance, type) and so already is the index KRI
//! evaluation needs for listing one entity type.

use super::error::{Result, StoreError};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// The schema version this engine writes and understands (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 2;

/// Marks the file as an engine store (`PRAGMA application_id`, "ENG1"), so that opening another
/// program's SQLite database by mistake is refused instead of adding tables to it.
pub(super) const APPLICATION_ID: i64 = 0x454E_4731;

/// The page size of new store files.
pub(super) const PAGE_SIZE: i64 = 8192;

/// Log bytes between two checkpoints.
pub(super) const CHECKPOINT_BYTES: i64 = 64 << 20;

/// How many log frames (one page each) hold `bytes` in this file.
pub(super) fn frames(conn: &Connection, bytes: i64) -> rusqlite::Result<i64> {
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(bytes / page_size.max(512))
}

/// How long a writer waits for another process's write transaction before giving up.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// `MIGRATIONS[n]` takes a file from version `n` to `n + 1`; version 0 is an empty file.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [V1, V2];

const V1: &str = r#"
-- Things with an identity: users, groups, devices...
CREATE TABLE entities (
    instance      TEXT    NOT NULL,
    type          TEXT    NOT NULL,
    id            TEXT    NOT NULL CHECK (length(id) > 0),
    attributes    TEXT    NOT NULL,             -- JSON object
    updated_at    INTEGER NOT NULL,             -- run clock when the row was inserted or last changed
    resource      TEXT    NOT NULL,
    last_seen_run TEXT    NOT NULL,
    PRIMARY KEY (instance, type, id)
);

-- Things that happened, deduplicated by their key: sign-ins, audit entries, alerts...
CREATE TABLE events (
    instance   TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    key        TEXT    NOT NULL CHECK (length(key) > 0),
    start_ts   INTEGER NOT NULL,
    end_ts     INTEGER,
    attributes TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    PRIMARY KEY (instance, name, key)
);
CREATE INDEX events_by_start ON events (instance, name, start_ts);

-- Numbers at a time, one series per distinct set of attributes.
CREATE TABLE metrics (
    instance       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    ts             INTEGER NOT NULL,
    attributes_key TEXT    NOT NULL,            -- the canonical attributes text: identifies the series
    attributes     TEXT    NOT NULL,
    value          REAL    NOT NULL,
    resource       TEXT    NOT NULL,
    PRIMARY KEY (instance, name, ts, attributes_key)
);

-- Relations between two entities, which need not both be stored.
CREATE TABLE edges (
    instance      TEXT    NOT NULL,
    from_type     TEXT    NOT NULL,
    from_id       TEXT    NOT NULL CHECK (length(from_id) > 0),
    kind          TEXT    NOT NULL,
    to_type       TEXT    NOT NULL,
    to_id         TEXT    NOT NULL CHECK (length(to_id) > 0),
    attributes    TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL,
    resource      TEXT    NOT NULL,
    last_seen_run TEXT    NOT NULL,
    PRIMARY KEY (instance, from_type, from_id, kind, to_type, to_id)
);
CREATE INDEX edges_by_kind ON edges (instance, kind);

-- Histograms and summaries at a time, one series per distinct set of attributes.
CREATE TABLE distributions (
    instance       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    ts             INTEGER NOT NULL,
    attributes_key TEXT    NOT NULL,
    attributes     TEXT    NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('histogram', 'summary')),
    points         TEXT    NOT NULL,            -- JSON, as the spec mapped it
    count          INTEGER NOT NULL,
    sum            REAL    NOT NULL,
    resource       TEXT    NOT NULL,
    PRIMARY KEY (instance, name, ts, attributes_key)
);

-- Every evaluation of every key risk indicator: the history is the point, so nothing replaces it.
CREATE TABLE kris (
    instance       TEXT    NOT NULL,
    slug           TEXT    NOT NULL,
    ts             INTEGER NOT NULL,
    value          REAL,
    status         TEXT    NOT NULL CHECK (status IN ('ok', 'degraded', 'not_applicable', 'error')),
    band           TEXT    CHECK (band IN ('green', 'amber', 'red')),
    reason         TEXT,
    evidence       TEXT    NOT NULL,            -- JSON list of ids
    evidence_count INTEGER NOT NULL,
    run_id         TEXT,
    PRIMARY KEY (instance, slug, ts)
);

-- Where each resource's sync stands; written in the same transaction as the page it follows.
CREATE TABLE sync_state (
    instance   TEXT    NOT NULL,
    resource   TEXT    NOT NULL,
    cursor     TEXT,
    cursor_ms  INTEGER,
    resume     TEXT,                            -- JSON: where an interrupted enumeration stopped
    run_id     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (instance, resource)
);

CREATE TABLE runs (
    run_id     TEXT    NOT NULL PRIMARY KEY,
    spec_id    TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    status     TEXT    NOT NULL CHECK (status IN ('running', 'ok', 'degraded', 'failed', 'interrupted')),
    report     TEXT                             -- JSON, the runner's report
);
CREATE INDEX runs_by_instance ON runs (instance, started_at);

CREATE TABLE run_resources (
    run_id   TEXT    NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    resource TEXT    NOT NULL,
    pages    INTEGER NOT NULL,
    records  INTEGER NOT NULL,
    written  INTEGER NOT NULL,
    skipped  INTEGER NOT NULL,
    status   TEXT    NOT NULL CHECK (status IN ('ok', 'degraded', 'not_applicable', 'failed', 'skipped')),
    warnings TEXT    NOT NULL,                  -- JSON list of strings
    PRIMARY KEY (run_id, resource)
);
"#;

// Entities and events are keyed by a named unique index instead of their primary key, which SQLite
// cannot drop: a first sync into an empty table leaves the index out while it loads and builds it once
// at the end (see `keys.rs`), instead of inserting random ids into it row by row.
const V2: &str = r#"
CREATE TABLE entities_v2 (
    instance      TEXT    NOT NULL,
    type          TEXT    NOT NULL,
    id            TEXT    NOT NULL CHECK (length(id) > 0),
    attributes    TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL,
    resource      TEXT    NOT NULL,
    last_seen_run TEXT    NOT NULL
);
INSERT INTO entities_v2 (instance, type, id, attributes, updated_at, resource, last_seen_run)
    SELECT instance, type, id, attributes, updated_at, resource, last_seen_run FROM entities
    ORDER BY instance, type, id;
DROP TABLE entities;
ALTER TABLE entities_v2 RENAME TO entities;
CREATE UNIQUE INDEX entities_key ON entities (instance, type, id);

CREATE TABLE events_v2 (
    instance   TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    key        TEXT    NOT NULL CHECK (length(key) > 0),
    start_ts   INTEGER NOT NULL,
    end_ts     INTEGER,
    attributes TEXT    NOT NULL,
    resource   TEXT    NOT NULL
);
INSERT INTO events_v2 (instance, name, key, start_ts, end_ts, attributes, resource)
    SELECT instance, name, key, start_ts, end_ts, attributes, resource FROM events
    ORDER BY instance, name, key;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
-- The key first: only lookups use it (see `keys.rs`).
CREATE UNIQUE INDEX events_key ON events (key, instance, name);
CREATE INDEX events_by_start ON events (instance, name, start_ts);
"#;

/// The full schema script of the current version, for documentation and tests.
pub fn schema_sql() -> String {
    MIGRATIONS.concat()
}

/// Opens (creating if needed) and prepares the file at `path`.
pub(super) fn open(path: &Path) -> Result<Connection> {
    let fail = |source| StoreError::Open { path: path.to_path_buf(), source };
    let mut conn = Connection::open(path).map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    // Statements are few and fixed; room for all of them means none is ever prepared twice.
    conn.set_prepared_statement_cache_capacity(64);
    // Only a new file takes it (a file's page size is fixed once written), and only before its first
    // read: a sync of random ids writes fewer, larger log frames, measured 4-8 % faster than 4 KiB.
    conn.pragma_update(None, "page_size", PAGE_SIZE).map_err(fail)?;

    // Read what the file is before changing anything in it: a file this engine must refuse is left as found.
    let (version, app_id, tables) = identify(&conn).map_err(fail)?;
    // Both marks are set in the transaction that creates the tables, so tables without our mark are
    // another program's.
    if (app_id != 0 && app_id != APPLICATION_ID) || (app_id == 0 && tables > 0) {
        return Err(StoreError::NotAStore { path: path.to_path_buf() });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema { path: path.to_path_buf(), found: version, supported: SCHEMA_VERSION });
    }

    // WAL lets readers (an export, a dashboard) proceed while a sync writes; NORMAL sync under WAL can
    // lose the last commits on power loss but never corrupts, and a lost page is simply fetched again.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal { path: path.to_path_buf(), mode });
    }
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(fail)?;
    // Each checkpoint syncs the file to disk. The default (every 4 MiB of WAL) made a 300,000-row sync
    // spend more time waiting for the disk than working; every 64 MiB keeps it to a handful of syncs.
    conn.pragma_update(None, "wal_autocheckpoint", frames(&conn, CHECKPOINT_BYTES).map_err(fail)?).map_err(fail)?;
    conn.pragma_update(None, "foreign_keys", true).map_err(fail)?;

    if version < SCHEMA_VERSION {
        migrate(&mut conn).map_err(fail)?;
        // Another process may have migrated between our look and our lock: check again.
        let (now, _, _) = identify(&conn).map_err(fail)?;
        if now > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema { path: path.to_path_buf(), found: now, supported: SCHEMA_VERSION });
        }
    }
    Ok(conn)
}

/// (user_version, application_id, number of tables).
fn identify(conn: &Connection) -> rusqlite::Result<(i64, i64, i64)> {
    let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let app_id = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let tables = conn.query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table'", [], |r| r.get(0))?;
    Ok((version, app_id, tables))
}

/// Applies the missing migrations in one write transaction, re-reading the version under the lock so two
/// processes opening a fresh file at once do not both create the tables.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let from = usize::try_from(version).unwrap_or(0);
    for script in &MIGRATIONS[from..] {
        tx.execute_batch(script)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}
