//! Writing a sync's output: a page of rows with its cursor in one transaction, and the full-sync sweep.
//!
//! Every row is an upsert whose UPDATE branch only fires when something differs from the stored row
//! (`WHERE old IS NOT new`), so SQLite's change count tells written from unchanged without reading the
//! row first. An unchanged entity or edge then gets a second, tiny update of `last_seen_run` alone: the
//! sweep needs to know it was seen, and `updated_at` must not move.
//!
//! This file does not decide what a page is, when a resource counts as fully enumerated, or whether a
//! sweep is safe (a resource that failed, or an API that suddenly returns nothing): those are the
//! runner's calls, made before calling in here.

use super::json::{canonical, canonical_value};
use super::keys::{self, Keyed, KeyedSet};
use super::records::{PageOutcome, PageWrite, Row, Swept, distribution_kind};
use super::{Result, Store, StoreError, sql_error};
use rusqlite::{CachedStatement, Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::time::{Duration, Instant};

const ENTITY_UPSERT: &str = "
INSERT INTO entities (instance, type, id, attributes, updated_at, resource, last_seen_run)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (instance, type, id) DO UPDATE SET
    attributes = excluded.attributes, updated_at = excluded.updated_at,
    resource = excluded.resource, last_seen_run = excluded.last_seen_run
WHERE entities.attributes IS NOT excluded.attributes";

// Into a table whose key index is left out while it loads (see `keys.rs`).
const ENTITY_INSERT: &str = "
INSERT INTO entities (instance, type, id, attributes, updated_at, resource, last_seen_run)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const ENTITY_SEEN: &str = "
UPDATE entities SET last_seen_run = ?4
WHERE instance = ?1 AND type = ?2 AND id = ?3 AND last_seen_run IS NOT ?4";

const EVENT_UPSERT: &str = "
INSERT INTO events (instance, name, key, start_ts, end_ts, attributes, resource)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (instance, name, key) DO UPDATE SET
    start_ts = excluded.start_ts, end_ts = excluded.end_ts,
    attributes = excluded.attributes, resource = excluded.resource
WHERE events.start_ts IS NOT excluded.start_ts OR events.end_ts IS NOT excluded.end_ts
   OR events.attributes IS NOT excluded.attributes";

const EVENT_INSERT: &str = "
INSERT INTO events (instance, name, key, start_ts, end_ts, attributes, resource)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

// The attributes text is the series key, so for a given key only the value can differ.
const METRIC_UPSERT: &str = "
INSERT INTO metrics (instance, name, ts, attributes_key, attributes, value, resource)
VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)
ON CONFLICT (instance, name, ts, attributes_key) DO UPDATE SET
    value = excluded.value, resource = excluded.resource
WHERE metrics.value IS NOT excluded.value";

const EDGE_UPSERT: &str = "
INSERT INTO edges (instance, from_type, from_id, kind, to_type, to_id, attributes, updated_at, resource, last_seen_run)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT (instance, from_type, from_id, kind, to_type, to_id) DO UPDATE SET
    attributes = excluded.attributes, updated_at = excluded.updated_at,
    resource = excluded.resource, last_seen_run = excluded.last_seen_run
WHERE edges.attributes IS NOT excluded.attributes";

const EDGE_SEEN: &str = "
UPDATE edges SET last_seen_run = ?7
WHERE instance = ?1 AND from_type = ?2 AND from_id = ?3 AND kind = ?4 AND to_type = ?5 AND to_id = ?6
  AND last_seen_run IS NOT ?7";

const DISTRIBUTION_UPSERT: &str = "
INSERT INTO distributions (instance, name, ts, attributes_key, attributes, kind, points, count, sum, resource)
VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (instance, name, ts, attributes_key) DO UPDATE SET
    kind = excluded.kind, points = excluded.points, count = excluded.count, sum = excluded.sum,
    resource = excluded.resource
WHERE distributions.kind IS NOT excluded.kind OR distributions.points IS NOT excluded.points
   OR distributions.count IS NOT excluded.count OR distributions.sum IS NOT excluded.sum";

const STATE_UPSERT: &str = "
INSERT INTO sync_state (instance, resource, cursor, cursor_ms, resume, run_id, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (instance, resource) DO UPDATE SET
    cursor = excluded.cursor, cursor_ms = excluded.cursor_ms, resume = excluded.resume,
    run_id = excluded.run_id, updated_at = excluded.updated_at";

/// The statements of a page, prepared (or taken from the cache) once per page rather than once per row.
/// An upsert cannot even be prepared without its key index, so a loading table gets a plain insert.
struct Statements<'c> {
    entity: CachedStatement<'c>,
    entity_seen: CachedStatement<'c>,
    event: CachedStatement<'c>,
    metric: CachedStatement<'c>,
    edge: CachedStatement<'c>,
    edge_seen: CachedStatement<'c>,
    distribution: CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    fn prepare(conn: &'c Connection, loading: KeyedSet) -> rusqlite::Result<Self> {
        let pick = |table, insert, upsert| if loading.contains(table) { insert } else { upsert };
        Ok(Statements {
            entity: conn.prepare_cached(pick(Keyed::Entities, ENTITY_INSERT, ENTITY_UPSERT))?,
            entity_seen: conn.prepare_cached(ENTITY_SEEN)?,
            event: conn.prepare_cached(pick(Keyed::Events, EVENT_INSERT, EVENT_UPSERT))?,
            metric: conn.prepare_cached(METRIC_UPSERT)?,
            edge: conn.prepare_cached(EDGE_UPSERT)?,
            edge_seen: conn.prepare_cached(EDGE_SEEN)?,
            distribution: conn.prepare_cached(DISTRIBUTION_UPSERT)?,
        })
    }

    /// Writes one row, checked beforehand by [`check_row`]; true when it was inserted or changed.
    fn write(&mut self, page: &PageWrite, row: &Row, checked: &Checked) -> Result<bool, RowProblem> {
        let (instance, resource, run, now) = (&page.instance, &page.resource, &page.run_id, page.now);
        let attributes = &checked.attributes;
        let changed = match row {
            Row::Entity { entity_type, id, .. } => {
                let n = self.entity.execute(params![instance, entity_type, id, attributes, now, resource, run])?;
                if n == 0 {
                    self.entity_seen.execute(params![instance, entity_type, id, run])?;
                }
                n > 0
            }
            Row::Event { name, key, start, end, .. } => {
                self.event.execute(params![instance, name, key, start, end, attributes, resource])? > 0
            }
            Row::Metric { name, ts, value, .. } => {
                self.metric.execute(params![instance, name, ts, attributes, value, resource])? > 0
            }
            Row::Edge { from_type, from_id, kind, to_type, to_id, .. } => {
                let n = self.edge.execute(params![
                    instance, from_type, from_id, kind, to_type, to_id, attributes, now, resource, run
                ])?;
                if n == 0 {
                    self.edge_seen.execute(params![instance, from_type, from_id, kind, to_type, to_id, run])?;
                }
                n > 0
            }
            Row::Distribution { name, ts, kind, count, sum, .. } => {
                let points = &checked.points;
                let kind = distribution_kind(*kind);
                self.distribution
                    .execute(params![instance, name, ts, attributes, kind, points, count, sum, resource])?
                    > 0
            }
        };
        Ok(changed)
    }
}

/// Why a row was not written: refused by the row's own content, or an SQLite failure that has nothing to
/// do with the row (disk full, lock timeout), which is reported as such rather than blamed on the row.
enum RowProblem {
    Invalid(String),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for RowProblem {
    fn from(e: rusqlite::Error) -> Self {
        if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
            RowProblem::Invalid(e.to_string())
        } else {
            RowProblem::Sqlite(e)
        }
    }
}

fn row_error(path: &Path, op: &str, index: usize, row: &Row, problem: RowProblem) -> StoreError {
    match problem {
        RowProblem::Sqlite(e) => sql_error(path, op, e),
        RowProblem::Invalid(reason) => {
            StoreError::Row { path: path.to_path_buf(), op: op.to_string(), index, row: row.describe(), reason }
        }
    }
}

/// SQLite stores NaN as NULL and cannot compare it, so a non-finite number would either be refused by a
/// NOT NULL column with an obscure message or be rewritten on every run.
fn finite(field: &str, value: f64) -> Result<(), String> {
    if value.is_finite() { Ok(()) } else { Err(format!("{field} is {value}, not a finite number")) }
}

/// A row's texts as stored, made while checking it.
struct Checked {
    attributes: String,
    /// A distribution's points; empty for other shapes.
    points: String,
}

/// What a row's content can be refused for: an empty key, a number that is not finite. Cheap, so a
/// page is checked before it is queued for a writer thread.
fn refuse(row: &Row) -> Result<(), String> {
    let key = |field: &str, value: &str| {
        if value.is_empty() { Err(format!("{field} is empty")) } else { Ok(()) }
    };
    match row {
        Row::Entity { id, .. } => key("id", id),
        Row::Event { key: k, .. } => key("key", k),
        Row::Metric { value, .. } => finite("value", *value),
        Row::Edge { from_id, to_id, .. } => key("from id", from_id).and_then(|()| key("to id", to_id)),
        Row::Distribution { sum, .. } => finite("sum", *sum),
    }
}

/// A row's stored texts, with its attributes' text when the caller made it. Checked with [`refuse`]
/// beforehand; what can still fail here is serializing.
fn texts(row: &Row, attributes: Option<String>) -> Result<Checked, String> {
    let points = match row {
        Row::Distribution { points, .. } => canonical_value(points).map_err(|e| e.to_string())?,
        _ => String::new(),
    };
    let attributes = match attributes {
        Some(text) => text,
        None => canonical(row.attributes()).map_err(|e| e.to_string())?,
    };
    Ok(Checked { attributes, points })
}

/// Refuses writes under a run that does not exist, belongs to another instance, or is no longer running:
/// a wrong run id would otherwise mark rows seen by nobody, and a sweep under it would delete them.
pub(super) fn check_run(conn: &Connection, path: &Path, op: &str, run_id: &str, instance: &str) -> Result<()> {
    let found: Option<(String, String)> = conn
        .prepare_cached("SELECT instance, status FROM runs WHERE run_id = ?1")
        .and_then(|mut s| s.query_row([run_id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(|e| sql_error(path, op, e))?;
    let mismatch = |problem: String| StoreError::RunMismatch {
        path: path.to_path_buf(),
        op: op.to_owned(),
        run_id: run_id.to_owned(),
        problem,
    };
    match found {
        None => Err(StoreError::UnknownRun { path: path.to_path_buf(), op: op.to_owned(), run_id: run_id.to_owned() }),
        Some((owner, _)) if owner != instance => Err(mismatch(format!("belongs to instance `{owner}`"))),
        Some((_, status)) if status != "running" => {
            Err(mismatch(format!("is no longer running (it is `{status}`; another run of `{instance}` started)")))
        }
        Some(_) => Ok(()),
    }
}

/// The keyed table a row goes to, if any.
fn keyed(row: &Row) -> Option<Keyed> {
    match row {
        Row::Entity { .. } => Some(Keyed::Entities),
        Row::Event { .. } => Some(Keyed::Events),
        _ => None,
    }
}

/// Whether two rows of one key store the same thing (what decides an upsert's written or unchanged).
fn same_content(a: &Row, a_texts: &Checked, b: &Row, b_texts: &Checked) -> bool {
    let times = match (a, b) {
        (Row::Event { start: s1, end: e1, .. }, Row::Event { start: s2, end: e2, .. }) => s1 == s2 && e1 == e2,
        _ => true,
    };
    times && a_texts.attributes == b_texts.attributes
}

/// Whether two rows have the same [`order_key`], comparing the most telling part (the id) first.
fn same_key(a: &Row, b: &Row) -> bool {
    let ((shape_a, name_a, id_a), (shape_b, name_b, id_b)) = (order_key(a), order_key(b));
    id_a == id_b && shape_a == shape_b && name_a == name_b
}

fn order_key(row: &Row) -> (u8, &str, &str) {
    match row {
        Row::Entity { entity_type, id, .. } => (0, entity_type, id),
        Row::Event { name, key, .. } => (1, name, key),
        Row::Metric { name, .. } => (2, name, ""),
        Row::Edge { kind, from_id, .. } => (3, kind, from_id),
        Row::Distribution { name, .. } => (4, name, ""),
    }
}

/// The order to write a page's rows in: by table and key, keeping the page's order among equal keys (a
/// key written twice ends as the page's last row says). APIs hand out records in their own order, often
/// random ids; writing them in key order touches each index page once and in sequence, which keeps the
/// small page cache from reading and writing the same pages over and over.
///
/// Comparing whole keys was most of the cost of sorting (a page's rows share their type or name, and
/// ids are long): each row gets a number for its table and type (in order of first appearance; any
/// order keeps rows of one key together) and the first eight bytes of its id as a number, which decide
/// nearly every comparison.
pub(super) fn write_order(rows: &[Row]) -> Vec<usize> {
    let mut groups: Vec<(u8, &str)> = Vec::new();
    let mut keys: Vec<(u32, u64, &str, usize)> = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let (shape, name, id) = order_key(row);
        let group = match groups.iter().position(|&g| g == (shape, name)) {
            Some(group) => group,
            None => {
                groups.push((shape, name));
                groups.len() - 1
            }
        };
        keys.push((group as u32, id_prefix(id), id, index));
    }
    // The index, last in each key, makes the unstable sort keep the page's order among equal ids.
    keys.sort_unstable();
    keys.into_iter().map(|(.., index)| index).collect()
}

/// The first eight bytes of an id as a big-endian number (zeros past its end): ordering by it orders by
/// the id, except between ids that share those bytes.
fn id_prefix(id: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let n = id.len().min(8);
    bytes[..n].copy_from_slice(&id.as_bytes()[..n]);
    u64::from_be_bytes(bytes)
}

/// Pages a batch holds at most before it commits. Each commit writes every index page its rows touched
/// to the log, so fewer, larger batches write less: on the benchmark tenant (random ids, a 2 MiB page
/// cache), with checkpoints on their own thread, 64 pages took 10-15 % less time than 16.
/// [`BATCH_WINDOW`] usually ends a batch first.
pub const BATCH_PAGES: u32 = 64;

/// How long a batch takes pages at most: past this, the page that arrives commits the batch. The runner
/// also commits whenever it has waited this long for a response, so a slow API never holds the write
/// lock (other processes writing to the same file wait for it).
pub const BATCH_WINDOW: Duration = Duration::from_millis(500);

/// The write transaction pages are gathered in.
#[derive(Debug)]
pub(super) struct Batch {
    pages: u32,
    opened: Instant,
    /// The tables loading without their key index when the batch began: a rollback restores this.
    deferred_before: KeyedSet,
    /// Keyed tables found holding rows in this batch, which therefore keep their key index.
    holding_rows: KeyedSet,
    /// How many first loads the connection knew of when the batch began: a rollback forgets the others.
    first_loads_before: usize,
}

/// The keyed tables a page writes into.
fn keyed_tables(rows: &[Row]) -> KeyedSet {
    let mut tables = KeyedSet::default();
    rows.iter().filter_map(keyed).for_each(|table| tables.insert(table));
    tables
}

fn page_op(page: &PageWrite) -> String {
    format!("writing a page of resource `{}` for instance `{}`", page.resource, page.instance)
}

/// A page's rows checked and turned into the texts stored, in the order they are written: everything is
/// checked before anything of the page is written, so a refused page leaves the open batch as it was.
pub(super) struct PreparedPage {
    order: Vec<usize>,
    checked: Vec<Checked>,
}

impl PreparedPage {
    /// Refuses the page whole, naming the first row that cannot be stored. `attributes`, when given,
    /// holds the stored text of each row's attributes (the rows' maps are then ignored), as
    /// [`crate::map`] makes it for the runner.
    pub(super) fn new(path: &Path, page: &PageWrite, mut attributes: Option<Vec<String>>) -> Result<PreparedPage> {
        Self::check(path, page)?;
        if let Some(texts) = &attributes
            && texts.len() != page.rows.len()
        {
            return Err(StoreError::Invalid {
                op: page_op(page),
                problem: format!("{} attribute texts for {} rows", texts.len(), page.rows.len()),
            });
        }
        let order = write_order(&page.rows);
        let mut checked = Vec::with_capacity(order.len());
        for &index in &order {
            let row = &page.rows[index];
            let text = attributes.as_mut().map(|texts| std::mem::take(&mut texts[index]));
            checked.push(texts(row, text).map_err(|reason| row_refused(path, page, index, reason))?);
        }
        Ok(PreparedPage { order, checked })
    }

    /// The checks of [`PreparedPage::new`] that need no text made: a page that passes them is refused
    /// later only if SQLite refuses it.
    pub(super) fn check(path: &Path, page: &PageWrite) -> Result<()> {
        for (index, row) in page.rows.iter().enumerate() {
            refuse(row).map_err(|reason| row_refused(path, page, index, reason))?;
        }
        Ok(())
    }
}

fn row_refused(path: &Path, page: &PageWrite, index: usize, reason: String) -> StoreError {
    let row = &page.rows[index];
    StoreError::Row { path: path.to_path_buf(), op: page_op(page), index, row: row.describe(), reason }
}

impl Store {
    /// Writes a page's rows and, if given, the sync state that follows them, within the open batch (a
    /// write transaction, begun when none is open). The batch commits after [`BATCH_PAGES`] pages, with
    /// the first page written [`BATCH_WINDOW`] or more after it opened, on [`Store::flush`], on any other
    /// write, and when the store closes: a page's rows and cursor are durable together, never apart.
    ///
    /// A page with a row that cannot be stored, or under a run that is not running or belongs to another
    /// instance, is refused whole before anything of it is written, and the batch stays as it was. A
    /// failure of SQLite itself (disk full) rolls the batch back, cursors included, so the store stays
    /// consistent and the next run fetches those pages again.
    pub fn write_page(&mut self, page: &PageWrite) -> Result<PageOutcome> {
        let prepared = PreparedPage::new(&self.path, page, None)?;
        self.write_prepared(page, &prepared)
    }

    /// [`Store::write_page`] for a page checked beforehand, possibly on another thread.
    pub(super) fn write_prepared(&mut self, page: &PageWrite, prepared: &PreparedPage) -> Result<PageOutcome> {
        let op = page_op(page);
        let path = self.path.clone();
        if self.batch.is_none() {
            self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| sql_error(&path, op.as_str(), e))?;
            self.batch = Some(Batch {
                pages: 0,
                opened: Instant::now(),
                deferred_before: self.deferred,
                holding_rows: KeyedSet::default(),
                first_loads_before: self.first_loads.len(),
            });
            if let Err(e) = self.settle_key_indexes() {
                self.rollback_batch();
                return Err(sql_error(&path, op.as_str(), e));
            }
        }
        // Checked under the lock, so no other process can interrupt the run between check and write.
        if let Err(e) = check_run(&self.conn, &path, &op, &page.run_id, &page.instance) {
            if self.batch.as_ref().is_some_and(|b| b.pages == 0) {
                self.rollback_batch();
            }
            return Err(e);
        }
        let written = self
            .defer_key_indexes(keyed_tables(&page.rows), &page.run_id)
            .map_err(|e| sql_error(&path, op.as_str(), e))
            .and_then(|()| self.write_in_batch(page, &prepared.order, &prepared.checked, &op));
        match written {
            Ok(outcome) => {
                let batch = self.batch.as_mut().expect("a batch is open");
                batch.pages += 1;
                if batch.pages >= BATCH_PAGES || batch.opened.elapsed() >= BATCH_WINDOW {
                    self.commit_batch()?;
                }
                Ok(outcome)
            }
            Err(e) => {
                self.rollback_batch();
                Err(e)
            }
        }
    }

    /// At the start of a batch: a key index missing that this connection did not drop was left out by a
    /// killed load or by another process's load, and is built now; an index this connection dropped
    /// that is back was built by another process, and its table is written with upserts again.
    fn settle_key_indexes(&mut self) -> rusqlite::Result<()> {
        let missing = keys::missing(&self.conn)?;
        for table in Keyed::ALL {
            if !missing.contains(table) {
                self.deferred.remove(table);
            } else if !self.deferred.contains(table) {
                keys::build_index(&self.conn, table)?;
            }
        }
        Ok(())
    }

    /// Before a page writes into `tables`: the key index of a table that holds no row at all is dropped
    /// until the next [`Store::flush`].
    fn defer_key_indexes(&mut self, tables: KeyedSet, run_id: &str) -> rusqlite::Result<()> {
        if !self.may_defer {
            return Ok(());
        }
        for table in Keyed::ALL {
            let batch = self.batch.as_mut().expect("a batch is open");
            if !tables.contains(table) || self.deferred.contains(table) || batch.holding_rows.contains(table) {
                continue;
            }
            if keys::is_empty(&self.conn, table)? {
                keys::drop_index(&self.conn, table)?;
                self.deferred.insert(table);
                self.first_loads.push((table, run_id.to_string()));
            } else {
                batch.holding_rows.insert(table);
            }
        }
        Ok(())
    }

    /// Rolls the open batch back, with the key indexes it dropped.
    fn rollback_batch(&mut self) {
        if let Some(batch) = self.batch.take() {
            self.deferred = batch.deferred_before;
            self.first_loads.truncate(batch.first_loads_before);
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn write_in_batch(&self, page: &PageWrite, order: &[usize], checked: &[Checked], op: &str) -> Result<PageOutcome> {
        let path = self.path.as_path();
        let fail = |e| sql_error(path, op, e);
        let mut outcome = PageOutcome::default();
        let mut statements = Statements::prepare(&self.conn, self.deferred).map_err(fail)?;
        // Whether the row before (in write order) has the same key as the row at hand.
        let mut repeats = false;
        for (position, (&index, texts)) in order.iter().zip(checked).enumerate() {
            let row = &page.rows[index];
            // A table loading without its key index cannot find the page's earlier row of a key, so the
            // page does: of the rows of one key (neighbours in write order) only the last is inserted, and
            // each counts as an upsert would have counted it.
            if self.deferred.contains(keyed(row)) {
                if repeats && same_content(&page.rows[order[position - 1]], &checked[position - 1], row, texts) {
                    outcome.unchanged += 1;
                } else {
                    outcome.written += 1;
                }
                repeats = order.get(position + 1).is_some_and(|&next| same_key(&page.rows[next], row));
                if !repeats {
                    statements.write(page, row, texts).map_err(|problem| row_error(path, op, index, row, problem))?;
                }
                continue;
            }
            match statements.write(page, row, texts) {
                Ok(true) => outcome.written += 1,
                Ok(false) => outcome.unchanged += 1,
                Err(problem) => return Err(row_error(path, op, index, row, problem)),
            }
        }
        if let Some(state) = &page.state {
            let resume =
                state.resume.as_ref().map(serde_json::to_string).transpose().map_err(|e| StoreError::Invalid {
                    op: op.to_string(),
                    problem: format!("resume position: {e}"),
                })?;
            self.conn
                .prepare_cached(STATE_UPSERT)
                .and_then(|mut s| {
                    s.execute(params![
                        page.instance,
                        page.resource,
                        state.cursor,
                        state.cursor_ms,
                        resume,
                        page.run_id,
                        page.now
                    ])
                })
                .map_err(fail)?;
        }
        Ok(outcome)
    }

    /// Rolls the open batch back, if any, cursors included: for a write that stopped half-way.
    pub(super) fn abandon_batch(&mut self) {
        self.rollback_batch();
    }

    /// Commits the open batch, if any, and builds the key indexes left out while loading empty tables:
    /// what was written is durable and visible to other connections, one row per key.
    pub fn flush(&mut self) -> Result<()> {
        self.commit_batch()?;
        if self.deferred.is_empty() { Ok(()) } else { self.build_missing_indexes() }
    }

    /// Commits the open batch, if any, leaving the key indexes as they are: a table loading without
    /// its index goes on loading in the next batch.
    pub(super) fn commit_batch(&mut self) -> Result<()> {
        if let Some(batch) = self.batch.take()
            && let Err(e) = self.conn.execute_batch("COMMIT")
        {
            // What cannot be committed is dropped whole (its cursors with it), and the connection is ready
            // for the next write.
            self.deferred = batch.deferred_before;
            self.first_loads.truncate(batch.first_loads_before);
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(sql_error(&self.path, "committing written pages", e));
        }
        Ok(())
    }

    /// Ends a full enumeration of `resource` for `instance`: deletes the entities and edges that resource
    /// last wrote and that `run_id` did not see, in one transaction. Call it only once every page of the
    /// resource committed; never after a failure, or rows merely not yet fetched would be deleted.
    pub fn finish_full_sync(&mut self, instance: &str, resource: &str, run_id: &str) -> Result<Swept> {
        self.flush()?;
        let op = format!("removing rows of resource `{resource}` that vanished for instance `{instance}`");
        let path = self.path.as_path();
        let fail = |e| sql_error(path, op.as_str(), e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
        check_run(&tx, path, &op, run_id, instance)?;
        let sweep = |table: &str| -> rusqlite::Result<u64> {
            let sql = format!("DELETE FROM {table} WHERE instance = ?1 AND resource = ?2 AND last_seen_run IS NOT ?3");
            Ok(int_to_u64(tx.prepare_cached(&sql)?.execute(params![instance, resource, run_id])?))
        };
        // A table this run loaded from empty holds only rows the run wrote, so it has nothing to sweep, and
        // looking (a scan of the whole table) is skipped. Another run of the instance writing meanwhile
        // would have made this one no longer running, which `check_run` above refuses.
        let first_load = self.first_loads.iter().any(|(table, run)| *table == Keyed::Entities && run == run_id);
        let entities = if first_load { 0 } else { sweep("entities").map_err(fail)? };
        let swept = Swept { entities, edges: sweep("edges").map_err(fail)? };
        tx.commit().map_err(fail)?;
        Ok(swept)
    }

    /// Counts the rows an interrupted run of `resource` had already seen as seen by `run_id` too, so a run
    /// that continues that enumeration from where it stopped does not sweep them away at its end.
    pub fn adopt_seen(&mut self, instance: &str, resource: &str, from_run: &str, run_id: &str) -> Result<u64> {
        self.flush()?;
        let op = format!("carrying over the rows of resource `{resource}` seen by run `{from_run}`");
        let path = self.path.as_path();
        let fail = |e| sql_error(path, op.as_str(), e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
        check_run(&tx, path, &op, run_id, instance)?;
        let adopt = |table: &str| -> rusqlite::Result<u64> {
            let sql = format!(
                "UPDATE {table} SET last_seen_run = ?4 WHERE instance = ?1 AND resource = ?2 AND last_seen_run = ?3"
            );
            Ok(int_to_u64(tx.prepare_cached(&sql)?.execute(params![instance, resource, from_run, run_id])?))
        };
        let adopted = adopt("entities").map_err(fail)? + adopt("edges").map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(adopted)
    }

    /// Forgets where `resource` stands for `instance`, so its next sync starts from the spec's initial
    /// cursor with a full enumeration. Stored rows are kept.
    pub fn reset_sync_state(&mut self, instance: &str, resource: &str) -> Result<bool> {
        self.flush()?;
        let n = self
            .conn
            .execute("DELETE FROM sync_state WHERE instance = ?1 AND resource = ?2", params![instance, resource])
            .map_err(|e| sql_error(&self.path, format!("resetting the sync state of `{resource}`"), e))?;
        Ok(n > 0)
    }
}

fn int_to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
