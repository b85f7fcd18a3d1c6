//! The bookkeeping around syncs: runs and their per-resource reports, saved sync states, KRI results,
//! and the list of instances the store knows.
//!
//! The store does not read the clock: every time comes from the caller, so a runner can pin it and tests
//! are exact. It does not decide a run's status or a KRI's band either; it records what it is told, and
//! only infers one thing itself: a run still `running` when the next run of the same instance begins was
//! killed, and becomes `interrupted`.

use super::records::{
    Band, KriRecord, KriStatus, ResourceReport, ResourceStatus, RunRecord, RunStatus, SavedSyncState, SyncState,
};
use super::{Result, Store, StoreError, corrupt, int, sql_error, uint};
use rusqlite::{ErrorCode, OptionalExtension, Row as SqlRow, TransactionBehavior, params};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::path::Path;

const RUN_COLUMNS: &str = "run_id, spec_id, instance, started_at, ended_at, status, report";
const KRI_COLUMNS: &str = "slug, ts, value, status, band, reason, evidence, evidence_count, run_id";

impl Store {
    /// Starts a run of `spec_id` for `instance` and returns its id, `r-<started_at>-<4 hex digits>`.
    /// Runs of the instance still marked running belong to a process that died: they become interrupted.
    pub fn begin_run(&mut self, spec_id: &str, instance: &str, started_at: i64) -> Result<String> {
        self.flush()?;
        self.first_loads.clear();
        let path = self.path.as_path();
        let op = format!("starting a run of `{spec_id}` for instance `{instance}`");
        let fail = |e| sql_error(path, op.as_str(), e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
        tx.execute("UPDATE runs SET status = 'interrupted' WHERE instance = ?1 AND status = 'running'", [instance])
            .map_err(fail)?;
        // The suffix only separates runs started in the same millisecond; on the rare clash, draw again.
        let mut attempt = 0u32;
        let run_id = loop {
            let run_id = format!("r-{started_at}-{:04x}", suffix(started_at, attempt));
            let inserted = tx.execute(
                "INSERT INTO runs (run_id, spec_id, instance, started_at, status) VALUES (?1, ?2, ?3, ?4, 'running')",
                params![run_id, spec_id, instance, started_at],
            );
            match inserted {
                Ok(_) => break run_id,
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) && attempt < 64 => attempt += 1,
                Err(e) => return Err(fail(e)),
            }
        };
        tx.commit().map_err(fail)?;
        Ok(run_id)
    }

    /// Records (or replaces) what one resource did in a run.
    pub fn record_resource(&mut self, run_id: &str, report: &ResourceReport) -> Result<()> {
        self.flush()?;
        let path = self.path.as_path();
        let op = format!("recording resource `{}` of run `{run_id}`", report.resource);
        self.require_run(&op, run_id)?;
        let warnings = serde_json::to_string(&report.warnings)
            .map_err(|e| StoreError::Invalid { op: op.clone(), problem: e.to_string() })?;
        self.conn
            .execute(
                "INSERT INTO run_resources (run_id, resource, pages, records, written, skipped, status, warnings)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (run_id, resource) DO UPDATE SET
                     pages = excluded.pages, records = excluded.records, written = excluded.written,
                     skipped = excluded.skipped, status = excluded.status, warnings = excluded.warnings",
                params![
                    run_id,
                    report.resource,
                    int(report.pages),
                    int(report.records),
                    int(report.written),
                    int(report.skipped),
                    report.status.as_str(),
                    warnings
                ],
            )
            .map_err(|e| sql_error(path, op, e))?;
        Ok(())
    }

    /// Ends a run with its status and the runner's report.
    pub fn finish_run(
        &mut self,
        run_id: &str,
        status: RunStatus,
        ended_at: i64,
        report: &serde_json::Value,
    ) -> Result<()> {
        self.flush()?;
        let path = self.path.as_path();
        let op = format!("finishing run `{run_id}`");
        self.require_run(&op, run_id)?;
        let report = serde_json::to_string(report)
            .map_err(|e| StoreError::Invalid { op: op.clone(), problem: e.to_string() })?;
        self.conn
            .execute(
                "UPDATE runs SET status = ?2, ended_at = ?3, report = ?4 WHERE run_id = ?1",
                params![run_id, status.as_str(), ended_at, report],
            )
            .map_err(|e| sql_error(path, op, e))?;
        // The run's rows are all written: the log goes into the database file (and the disk syncs it)
        // while the KRIs are computed, rather than when the store is closed. On the benchmark tenant,
        // closing the store after a first sync took 0.06-0.07 s instead of 0.11 s.
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.wake_now();
        }
        Ok(())
    }

    fn require_run(&self, op: &str, run_id: &str) -> Result<()> {
        let found = self
            .conn
            .prepare_cached("SELECT 1 FROM runs WHERE run_id = ?1")
            .and_then(|mut s| s.query_row([run_id], |_| Ok(())).optional())
            .map_err(|e| sql_error(&self.path, op, e))?;
        found.ok_or_else(|| StoreError::UnknownRun {
            path: self.path.clone(),
            op: op.to_owned(),
            run_id: run_id.to_owned(),
        })
    }

    /// The most recently started run of `instance`, with its resource reports.
    pub fn last_run(&self, instance: &str) -> Result<Option<RunRecord>> {
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM runs WHERE instance = ?1 ORDER BY started_at DESC, rowid DESC LIMIT 1");
        self.one_run(&sql, instance, &format!("reading the last run of instance `{instance}`"))
    }

    /// One run by id, with its resource reports.
    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1");
        self.one_run(&sql, run_id, &format!("reading run `{run_id}`"))
    }

    fn one_run(&self, sql: &str, key: &str, op: &str) -> Result<Option<RunRecord>> {
        let path = self.path.as_path();
        let fail = |e| sql_error(path, op, e);
        let raw = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row([key], RawRun::from_row).optional())
            .map_err(fail)?;
        let Some(raw) = raw else { return Ok(None) };
        let mut resources = Vec::new();
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT resource, pages, records, written, skipped, status, warnings
                 FROM run_resources WHERE run_id = ?1 ORDER BY rowid",
            )
            .map_err(fail)?;
        let mut rows = statement.query([&raw.run_id]).map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            let status: String = row.get(5).map_err(fail)?;
            let warnings: String = row.get(6).map_err(fail)?;
            resources.push(ResourceReport {
                resource: row.get(0).map_err(fail)?,
                pages: uint(row.get(1).map_err(fail)?),
                records: uint(row.get(2).map_err(fail)?),
                written: uint(row.get(3).map_err(fail)?),
                skipped: uint(row.get(4).map_err(fail)?),
                status: word(path, "run_resources.status", &status, ResourceStatus::parse)?,
                warnings: serde_json::from_str(&warnings).map_err(|e| corrupt(path, "run_resources.warnings", e))?,
            });
        }
        Ok(Some(RunRecord {
            status: word(path, "runs.status", &raw.status, RunStatus::parse)?,
            report: raw
                .report
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt(path, "runs.report", e))?,
            run_id: raw.run_id,
            spec_id: raw.spec_id,
            instance: raw.instance,
            started_at: raw.started_at,
            ended_at: raw.ended_at,
            resources,
        }))
    }

    /// Every instance with a run or a KRI result, sorted.
    pub fn list_instances(&self) -> Result<Vec<String>> {
        let fail = |e| sql_error(&self.path, "listing instances", e);
        let mut statement = self
            .conn
            .prepare_cached("SELECT instance FROM runs UNION SELECT instance FROM kris ORDER BY 1")
            .map_err(fail)?;
        let names = statement.query_map([], |r| r.get(0)).map_err(fail)?;
        names.collect::<rusqlite::Result<Vec<String>>>().map_err(fail)
    }

    /// Where `resource` stands for `instance`: the cursor of its last committed page and, if a run died
    /// mid-enumeration, where to resume it.
    pub fn sync_state(&self, instance: &str, resource: &str) -> Result<Option<SavedSyncState>> {
        let path = self.path.as_path();
        let fail = |e| sql_error(path, format!("reading the sync state of `{resource}` for instance `{instance}`"), e);
        let raw = self
            .conn
            .prepare_cached(
                "SELECT cursor, cursor_ms, resume, run_id, updated_at FROM sync_state WHERE instance = ?1 AND resource = ?2",
            )
            .and_then(|mut s| {
                s.query_row([instance, resource], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .optional()
            })
            .map_err(fail)?;
        let Some((cursor, cursor_ms, resume, run_id, updated_at)) = raw else { return Ok(None) };
        let resume = resume
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(path, "sync_state.resume", e))?;
        Ok(Some(SavedSyncState { state: SyncState { cursor, cursor_ms, resume }, run_id, updated_at }))
    }

    /// Stores one KRI result; a result for the same slug and time replaces the earlier one.
    pub fn write_kri(&mut self, instance: &str, kri: &KriRecord) -> Result<()> {
        self.write_kris(instance, std::slice::from_ref(kri))
    }

    /// Stores the results of one evaluation together, so readers never see half of them.
    pub fn write_kris(&mut self, instance: &str, kris: &[KriRecord]) -> Result<()> {
        self.flush()?;
        let path = self.path.as_path();
        let op = format!("storing KRI results for instance `{instance}`");
        let fail = |e| sql_error(path, op.as_str(), e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
        {
            let mut statement = tx
                .prepare_cached(
                    "INSERT INTO kris (instance, slug, ts, value, status, band, reason, evidence, evidence_count, run_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (instance, slug, ts) DO UPDATE SET
                         value = excluded.value, status = excluded.status, band = excluded.band,
                         reason = excluded.reason, evidence = excluded.evidence,
                         evidence_count = excluded.evidence_count, run_id = excluded.run_id",
                )
                .map_err(fail)?;
            for kri in kris {
                let invalid =
                    |problem: String| StoreError::Invalid { op: format!("{op}, KRI `{}`", kri.slug), problem };
                if let Some(v) = kri.value.filter(|v| !v.is_finite()) {
                    return Err(invalid(format!("value is {v}, not a finite number; store None with a reason")));
                }
                let evidence = serde_json::to_string(&kri.evidence).map_err(|e| invalid(e.to_string()))?;
                statement
                    .execute(params![
                        instance,
                        kri.slug,
                        kri.ts,
                        kri.value,
                        kri.status.as_str(),
                        kri.band.map(Band::as_str),
                        kri.reason,
                        evidence,
                        int(kri.evidence_count),
                        kri.run_id
                    ])
                    .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)
    }

    /// The most recent result of every KRI of `instance`, by slug.
    pub fn latest_kris(&self, instance: &str) -> Result<Vec<KriRecord>> {
        let sql = format!(
            "SELECT {KRI_COLUMNS} FROM kris AS k WHERE instance = ?1
             AND ts = (SELECT max(ts) FROM kris WHERE instance = k.instance AND slug = k.slug)
             ORDER BY slug"
        );
        self.kris(&sql, &[instance], &format!("reading the latest KRIs of instance `{instance}`"))
    }

    /// Every stored result of one KRI of `instance`, oldest first.
    pub fn kri_history(&self, instance: &str, slug: &str) -> Result<Vec<KriRecord>> {
        let sql = format!("SELECT {KRI_COLUMNS} FROM kris WHERE instance = ?1 AND slug = ?2 ORDER BY ts");
        self.kris(&sql, &[instance, slug], &format!("reading the history of KRI `{slug}` of instance `{instance}`"))
    }

    fn kris(&self, sql: &str, keys: &[&str], op: &str) -> Result<Vec<KriRecord>> {
        let path = self.path.as_path();
        let fail = |e| sql_error(path, op, e);
        let mut statement = self.conn.prepare_cached(sql).map_err(fail)?;
        let mut rows = statement.query(rusqlite::params_from_iter(keys)).map_err(fail)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(fail)? {
            out.push(kri_from_row(path, row).map_err(|e| match e {
                KriError::Sql(e) => fail(e),
                KriError::Store(e) => e,
            })?);
        }
        Ok(out)
    }
}

enum KriError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for KriError {
    fn from(e: rusqlite::Error) -> Self {
        KriError::Sql(e)
    }
}

impl From<StoreError> for KriError {
    fn from(e: StoreError) -> Self {
        KriError::Store(e)
    }
}

fn kri_from_row(path: &Path, row: &SqlRow<'_>) -> Result<KriRecord, KriError> {
    let status: String = row.get(3)?;
    let band: Option<String> = row.get(4)?;
    let evidence: String = row.get(6)?;
    Ok(KriRecord {
        slug: row.get(0)?,
        ts: row.get(1)?,
        value: row.get(2)?,
        status: word(path, "kris.status", &status, KriStatus::parse)?,
        band: band.map(|b| word(path, "kris.band", &b, Band::parse)).transpose()?,
        reason: row.get(5)?,
        evidence: serde_json::from_str(&evidence).map_err(|e| corrupt(path, "kris.evidence", e))?,
        evidence_count: uint(row.get(7)?),
        run_id: row.get(8)?,
    })
}

struct RawRun {
    run_id: String,
    spec_id: String,
    instance: String,
    started_at: i64,
    ended_at: Option<i64>,
    status: String,
    report: Option<String>,
}

impl RawRun {
    fn from_row(row: &SqlRow<'_>) -> rusqlite::Result<RawRun> {
        Ok(RawRun {
            run_id: row.get(0)?,
            spec_id: row.get(1)?,
            instance: row.get(2)?,
            started_at: row.get(3)?,
            ended_at: row.get(4)?,
            status: row.get(5)?,
            report: row.get(6)?,
        })
    }
}

/// A stored status word back as its enum; the CHECK constraints make a miss mean a damaged file.
fn word<T>(path: &Path, column: &str, text: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(text).ok_or_else(|| corrupt(path, column, format!("unknown word `{text}`")))
}

/// 16 random bits without a random-number dependency: std's hasher is seeded randomly per process.
fn suffix(started_at: i64, attempt: u32) -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_i64(started_at);
    hasher.write_u32(attempt);
    hasher.write_u32(std::process::id());
    hasher.finish() & 0xffff
}
