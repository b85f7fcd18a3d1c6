//! The unique key indexes that deduplicate entities and events, and leaving them out while a first sync
//! loads an empty table.
//!
//! APIs hand out records in the order of their random ids, so keeping a key index up to date row by
//! row reads and rewrites a random index page for nearly every row once the index outgrows the page
//! cache: on the benchmark tenant that was most of the writer's time and of its disk traffic. A table
//! with no rows at all has nothing to deduplicate against, so when a page written through a
//! [`BackgroundWriter`](super::BackgroundWriter) is about to go into one, the writer drops the table's
//! key index (in the page's transaction) and inserts plainly; the index is built once, from sorted keys,
//! when the writer ends (and by [`Store::flush`], should that fail). Nothing reads through the
//! connection meanwhile: the writer has it.
//!
//! Within a page, rows of one key are neighbours in write order, so only the last is inserted and each
//! is counted as an upsert would have counted it. A record the API repeats on a later page of such a
//! load is counted as written again and stored twice until the load ends; building the index then keeps
//! the row written last of each key, as the upserts would have. The index can be missing when nobody is
//! loading: the process was killed, or another process is loading. So whoever finds it missing without
//! having dropped it builds it first: every batch of writes, and every opening of the store (so that a
//! read after a killed run sees one row per key). A loading process that finds its index rebuilt by
//! someone else goes on with upserts.

use super::{Result, Store, sql_error};
use rusqlite::{Connection, ErrorCode};

/// A table whose rows are deduplicated by a unique key index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyed {
    Entities,
    Events,
}

impl Keyed {
    pub(super) const ALL: [Keyed; 2] = [Keyed::Entities, Keyed::Events];

    fn table(self) -> &'static str {
        match self {
            Keyed::Entities => "entities",
            Keyed::Events => "events",
        }
    }

    fn index(self) -> &'static str {
        match self {
            Keyed::Entities => "entities_key",
            Keyed::Events => "events_key",
        }
    }

    /// An event's key comes first: nothing lists events by key, so only lookups use the index, and with
    /// the key first sorting it compares one column, not three (building it took 0.10 s instead of 0.14 s
    /// for 200,000 sign-ins). Entities are listed by id within a type, so theirs keeps that order.
    fn columns(self) -> &'static str {
        match self {
            Keyed::Entities => "instance, type, id",
            Keyed::Events => "key, instance, name",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Keyed::Entities => 1,
            Keyed::Events => 2,
        }
    }
}

/// A set of [`Keyed`] tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct KeyedSet(u8);

impl KeyedSet {
    /// Whether `table` is in the set; `None` (a table without a key index) never is.
    pub(super) fn contains(self, table: impl Into<Option<Keyed>>) -> bool {
        table.into().is_some_and(|table| self.0 & table.bit() != 0)
    }

    pub(super) fn insert(&mut self, table: Keyed) {
        self.0 |= table.bit();
    }

    pub(super) fn remove(&mut self, table: Keyed) {
        self.0 &= !table.bit();
    }

    pub(super) fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The keyed tables whose index is missing from the file.
pub(super) fn missing(conn: &Connection) -> rusqlite::Result<KeyedSet> {
    let mut missing = KeyedSet::default();
    let mut present = conn.prepare_cached("SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?1")?;
    for table in Keyed::ALL {
        if !present.exists([table.index()])? {
            missing.insert(table);
        }
    }
    Ok(missing)
}

/// Whether `table` holds no row at all, of any instance.
pub(super) fn is_empty(conn: &Connection, table: Keyed) -> rusqlite::Result<bool> {
    let sql = format!("SELECT NOT EXISTS (SELECT 1 FROM {})", table.table());
    conn.prepare_cached(&sql)?.query_row([], |r| r.get(0))
}

/// Drops the key index of `table`, inside the caller's transaction.
pub(super) fn drop_index(conn: &Connection, table: Keyed) -> rusqlite::Result<()> {
    conn.execute_batch(&format!("DROP INDEX IF EXISTS {}", table.index()))
}

/// Builds the key index of `table`, inside the caller's transaction. Where a key was stored more than
/// once, the row written last (the greatest rowid) is kept, as an upsert would have left it.
pub(super) fn build_index(conn: &Connection, table: Keyed) -> rusqlite::Result<()> {
    let (name, index, columns) = (table.table(), table.index(), table.columns());
    let create = format!("CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {name} ({columns})");
    match conn.execute_batch(&create) {
        // A failed statement undoes its own work and leaves the transaction open.
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            conn.execute(
                &format!("DELETE FROM {name} WHERE rowid NOT IN (SELECT max(rowid) FROM {name} GROUP BY {columns})"),
                [],
            )?;
            conn.execute_batch(&create)
        }
        other => other,
    }
}

impl Store {
    /// Ends a load: builds the key indexes this connection left out, in the open batch if there is one
    /// (so they commit with its last pages), else in a transaction of their own.
    pub(super) fn end_load(&mut self) -> Result<()> {
        self.may_defer = false;
        if self.deferred.is_empty() {
            return Ok(());
        }
        if self.batch.is_none() {
            return self.build_missing_indexes();
        }
        let path = self.path.as_path();
        for table in Keyed::ALL {
            if self.deferred.contains(table) {
                build_index(&self.conn, table)
                    .map_err(|e| sql_error(path, "building the key indexes of entities and events", e))?;
                self.deferred.remove(table);
            }
        }
        Ok(())
    }

    /// Builds the key indexes missing from the file in a transaction of their own, whoever left them
    /// out. Called with no batch open.
    pub(super) fn build_missing_indexes(&mut self) -> Result<()> {
        let path = self.path.as_path();
        let fail = |e| sql_error(path, "building the key indexes of entities and events", e);
        if missing(&self.conn).map_err(fail)?.is_empty() {
            self.deferred = KeyedSet::default();
            return Ok(());
        }
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(fail)?;
        for table in Keyed::ALL {
            build_index(&tx, table).map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        self.deferred = KeyedSet::default();
        Ok(())
    }
}
