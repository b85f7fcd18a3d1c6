//! Behavioural tests of the store through its public API, each on its own temporary file: page and cursor
//! atomicity, idempotent re-runs, event deduplication, the full-sync sweep, instance isolation, run
//! bookkeeping, schema refusal, streaming reads and KRI history. They do not time anything, except the
//! ignored `throughput` test, which prints rows per second for the release build.

use super::*;
use crate::model::{DistributionKind, Shape};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A store file in the temp directory, removed with its WAL files when the test ends.
struct Temp {
    path: PathBuf,
}

impl Temp {
    fn new(name: &str) -> Temp {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("engine-store-{name}-{}-{nanos}-{n}.db", std::process::id()));
        Temp { path }
    }

    fn open(&self) -> Store {
        Store::open(&self.path).expect("the store opens")
    }

    /// A second, raw connection, to look at what the API does not show.
    fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).unwrap()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

fn attrs(value: Value) -> Attributes {
    match value {
        Value::Object(map) => map,
        other => panic!("attributes must be an object, got {other}"),
    }
}

fn entity(kind: &str, id: &str, attributes: Value) -> Row {
    Row::Entity { entity_type: kind.into(), id: id.into(), attributes: attrs(attributes) }
}

fn event(name: &str, key: &str, start: i64, end: Option<i64>, attributes: Value) -> Row {
    Row::Event { name: name.into(), key: key.into(), start, end, attributes: attrs(attributes) }
}

fn edge(from: &str, kind: &str, to: &str) -> Row {
    Row::Edge {
        from_type: "user".into(),
        from_id: from.into(),
        kind: kind.into(),
        to_type: "group".into(),
        to_id: to.into(),
        attributes: Attributes::new(),
    }
}

fn metric(name: &str, ts: i64, value: f64, attributes: Value) -> Row {
    Row::Metric { name: name.into(), ts, value, attributes: attrs(attributes) }
}

fn distribution(name: &str, ts: i64, count: i64) -> Row {
    Row::Distribution {
        name: name.into(),
        ts,
        kind: DistributionKind::Histogram,
        points: json!([{"le": 1, "count": 2}, {"le": 10, "count": count}]),
        count,
        sum: 12.5,
        attributes: attrs(json!({"region": "eu"})),
    }
}

fn page(instance: &str, run_id: &str, resource: &str, now: i64, rows: Vec<Row>) -> PageWrite {
    PageWrite { instance: instance.into(), run_id: run_id.into(), resource: resource.into(), now, rows, state: None }
}

fn with_state(mut page: PageWrite, cursor: &str, resume: Option<Value>) -> PageWrite {
    page.state = Some(SyncState { cursor: Some(cursor.into()), cursor_ms: Some(page.now), resume });
    page
}

/// Every row of a shape type as (key text, attributes), in the store's order.
fn rows(store: &Store, instance: &str, shape: Shape, name: &str) -> Vec<(String, Attributes)> {
    let mut out = Vec::new();
    store
        .for_each_row(instance, shape, name, |row| {
            let key = match &row.fields {
                Fields::Entity { id, .. } => id.to_string(),
                Fields::Event { key, .. } => key.to_string(),
                Fields::Metric { ts, .. } | Fields::Distribution { ts, .. } => ts.to_string(),
                Fields::Edge { from_id, to_id, .. } => format!("{from_id}->{to_id}"),
            };
            out.push((key, row.attributes));
            Ok::<_, StoreError>(())
        })
        .unwrap();
    out
}

fn ids(store: &Store, instance: &str, shape: Shape, name: &str) -> Vec<String> {
    rows(store, instance, shape, name).into_iter().map(|(k, _)| k).collect()
}

fn entity_updated_at(store: &Store, instance: &str, kind: &str, id: &str) -> i64 {
    let mut found = None;
    store
        .for_each_row(instance, Shape::Entity, kind, |row| {
            if row.field("id") == Some(json!(id)) {
                found = Some(row.time());
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
    found.expect("the entity is stored")
}

#[test]
fn opening_creates_the_documented_schema_in_wal_mode() {
    let temp = Temp::new("schema");
    drop(temp.open());
    let raw = temp.raw();
    let version: i64 = raw.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let page_size: i64 = raw.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    assert_eq!(page_size, 8192);
    let mut tables: Vec<String> = raw
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    tables.sort();
    assert_eq!(
        tables,
        ["distributions", "edges", "entities", "events", "kris", "metrics", "run_resources", "runs", "sync_state"]
    );
    let indexes: Vec<String> = raw
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(indexes, ["edges_by_kind", "entities_key", "events_by_start", "events_key", "runs_by_instance"]);
    // The plan for a KRI's event window uses the index rather than scanning the table.
    let plan: String = raw
        .query_row(
            "EXPLAIN QUERY PLAN SELECT key FROM events WHERE instance = 'a' AND name = 'n' AND start_ts >= 5",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("events_by_start"), "{plan}");
    // Finding an event by its key (what an upsert does) uses the key index, whose first column is the key.
    let plan: String = raw
        .query_row(
            "EXPLAIN QUERY PLAN SELECT start_ts FROM events WHERE instance = 'a' AND name = 'n' AND key = 'k'",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("events_key") && plan.contains("key=?"), "{plan}");
    // Listing an entity type reads the key index in id order: no scan, no sort.
    let plan: Vec<String> = raw
        .prepare("EXPLAIN QUERY PLAN SELECT id FROM entities WHERE instance = 'a' AND type = 'user' ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(plan.len() == 1 && plan[0].contains("entities_key"), "{plan:?}");
    drop(raw);
    // Opening again finds the schema in place.
    drop(temp.open());
    assert!(schema_sql().contains("CREATE TABLE kris"));
}

#[test]
fn a_newer_schema_version_is_refused_with_a_clear_error() {
    let temp = Temp::new("newer");
    drop(temp.open());
    temp.raw().pragma_update(None, "user_version", 99).unwrap();
    let err = Store::open(&temp.path).unwrap_err();
    assert!(matches!(err, StoreError::NewerSchema { found: 99, supported: SCHEMA_VERSION, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&temp.path.display().to_string()), "{message}");
    assert!(message.contains("schema version 99") && message.contains("newer engine"), "{message}");
}

#[test]
fn another_programs_database_or_a_non_database_is_refused() {
    let temp = Temp::new("foreign");
    temp.raw().execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');").unwrap();
    let err = Store::open(&temp.path).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
    let kept: String = temp.raw().query_row("SELECT body FROM notes", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, "keep me");

    let text = Temp::new("text");
    std::fs::write(&text.path, "this is not a database, just some text that is long enough to have a header").unwrap();
    let err = Store::open(&text.path).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains(&text.path.display().to_string()));
}

#[test]
fn a_page_with_a_bad_row_leaves_neither_rows_nor_cursor() {
    let temp = Temp::new("atomic");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();

    // An empty id breaks a CHECK constraint at the last row, after the good rows were written.
    let bad = with_state(
        page(
            "acme",
            &run,
            "users",
            1_000,
            vec![
                entity("user", "u1", json!({"a": 1})),
                event("login", "e1", 5, None, json!({})),
                entity("user", "", json!({})),
            ],
        ),
        "c1",
        Some(json!({"next": "https://api.example.com/users?page=2"})),
    );
    let err = store.write_page(&bad).unwrap_err();
    assert!(matches!(err, StoreError::Row { index: 2, .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("row 2") && message.contains("entity `user` id ``") && message.contains("nothing"),
        "{message}"
    );
    assert!(ids(&store, "acme", Shape::Entity, "user").is_empty());
    assert!(ids(&store, "acme", Shape::Event, "login").is_empty());
    assert_eq!(store.sync_state("acme", "users").unwrap(), None);

    // A number SQLite cannot keep is refused the same way.
    let nan = with_state(
        page("acme", &run, "usage", 1_000, vec![metric("m", 1, 1.0, json!({})), metric("m", 2, f64::NAN, json!({}))]),
        "c1",
        None,
    );
    let err = store.write_page(&nan).unwrap_err();
    assert!(err.to_string().contains("not a finite number"), "{err}");
    assert!(ids(&store, "acme", Shape::Metric, "m").is_empty());
    assert_eq!(store.sync_state("acme", "usage").unwrap(), None);

    // The same page without the bad row commits rows and cursor together.
    let mut good = bad.clone();
    good.rows.pop();
    assert_eq!(store.write_page(&good).unwrap(), PageOutcome { written: 2, unchanged: 0 });
    assert_eq!(ids(&store, "acme", Shape::Entity, "user"), ["u1"]);
    let saved = store.sync_state("acme", "users").unwrap().unwrap();
    assert_eq!(saved.state.cursor.as_deref(), Some("c1"));
    assert_eq!(saved.state.resume, Some(json!({"next": "https://api.example.com/users?page=2"})));
    assert_eq!((saved.run_id.as_str(), saved.updated_at), (run.as_str(), 1_000));
}

#[test]
fn pages_share_a_transaction_until_the_batch_is_full_flushed_or_closed() {
    let temp = Temp::new("batch");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let raw = temp.raw();
    let committed = || -> i64 { raw.query_row("SELECT count(*) FROM entities", [], |r| r.get(0)).unwrap() };
    let user = |i: u32| {
        with_state(
            page("acme", &run, "users", 1_000, vec![entity("user", &format!("u{i:03}"), json!({}))]),
            &format!("c{i}"),
            None,
        )
    };

    // Written, readable on the writing connection, committed only on flush.
    store.write_page(&user(0)).unwrap();
    assert_eq!(ids(&store, "acme", Shape::Entity, "user").len(), 1);
    assert_eq!(committed(), 0);
    store.flush().unwrap();
    assert_eq!(committed(), 1);

    // A full batch commits by itself, cursor with its rows.
    for i in 1..=BATCH_PAGES {
        assert_eq!(committed(), 1, "page {i} waits for the batch");
        store.write_page(&user(i)).unwrap();
    }
    assert_eq!(committed(), 1 + i64::from(BATCH_PAGES));
    let cursor: String =
        raw.query_row("SELECT cursor FROM sync_state WHERE resource = 'users'", [], |r| r.get(0)).unwrap();
    assert_eq!(cursor, format!("c{BATCH_PAGES}"));

    // A refused page, or one under a wrong run, leaves the batch as it was; closing the store commits it.
    store.write_page(&user(100)).unwrap();
    let mut bad = user(101);
    bad.rows.push(entity("user", "", json!({})));
    assert!(store.write_page(&bad).is_err());
    let mut stray = user(102);
    stray.run_id = "no-such-run".into();
    assert!(matches!(store.write_page(&stray), Err(StoreError::UnknownRun { .. })));
    drop(store);
    assert_eq!(committed(), 2 + i64::from(BATCH_PAGES));
    let cursor: String =
        raw.query_row("SELECT cursor FROM sync_state WHERE resource = 'users'", [], |r| r.get(0)).unwrap();
    assert_eq!(cursor, "c100");
}

#[test]
fn a_killed_run_resumes_from_the_last_committed_page() {
    let temp = Temp::new("resume");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let first = with_state(
        page("acme", &run, "users", 1_000, vec![entity("user", "u1", json!({}))]),
        "c0",
        Some(json!({"page_token": "p2"})),
    );
    store.write_page(&first).unwrap();
    drop(store); // the process dies here

    let mut store = temp.open();
    let saved = store.sync_state("acme", "users").unwrap().unwrap();
    assert_eq!(saved.state.resume, Some(json!({"page_token": "p2"})));
    let next = store.begin_run("demo", "acme", 2_000).unwrap();
    assert_eq!(store.run(&run).unwrap().unwrap().status, RunStatus::Interrupted);
    let last = with_state(page("acme", &next, "users", 2_000, vec![entity("user", "u2", json!({}))]), "c1", None);
    store.write_page(&last).unwrap();
    let saved = store.sync_state("acme", "users").unwrap().unwrap();
    assert_eq!((saved.state.cursor.as_deref(), saved.state.resume), (Some("c1"), None));
    assert_eq!(ids(&store, "acme", Shape::Entity, "user"), ["u1", "u2"]);
    assert!(store.reset_sync_state("acme", "users").unwrap());
    assert_eq!(store.sync_state("acme", "users").unwrap(), None);
}

fn every_shape(attribute: i64) -> Vec<Row> {
    vec![
        entity("user", "u1", json!({"name": "Ann", "n": attribute})),
        entity("user", "u2", json!({"name": "Bob", "tags": ["x", "y"]})),
        event("login", "e1", 10, Some(20), json!({"ok": true})),
        metric("seats", 100, 5.0, json!({"sku": "basic", "region": "eu"})),
        edge("u1", "member_of", "g1"),
        distribution("latency", 100, 7),
    ]
}

#[test]
fn writing_the_same_rows_again_changes_nothing() {
    let temp = Temp::new("idempotent");
    let mut store = temp.open();
    let r1 = store.begin_run("demo", "acme", 1_000).unwrap();
    assert_eq!(store.write_page(&page("acme", &r1, "all", 1_000, every_shape(1))).unwrap().written, 6);
    store.finish_run(&r1, RunStatus::Ok, 1_500, &json!({})).unwrap();

    let r2 = store.begin_run("demo", "acme", 2_000).unwrap();
    // Same attributes listed in another key order are the same attributes.
    let mut again = every_shape(1);
    again[3] = metric("seats", 100, 5.0, json!({"region": "eu", "sku": "basic"}));
    assert_eq!(
        store.write_page(&page("acme", &r2, "all", 2_000, again)).unwrap(),
        PageOutcome { written: 0, unchanged: 6 }
    );
    assert_eq!(entity_updated_at(&store, "acme", "user", "u1"), 1_000);
    // ...but they were seen by the second run, so its sweep keeps them.
    assert_eq!(store.finish_full_sync("acme", "all", &r2).unwrap(), Swept { entities: 0, edges: 0 });
    let seen: String =
        temp.raw().query_row("SELECT last_seen_run FROM entities WHERE id = 'u1'", [], |r| r.get(0)).unwrap();
    assert_eq!(seen, r2);

    // One changed attribute is one write, and moves that entity's updated_at to the run's clock.
    let r3 = store.begin_run("demo", "acme", 3_000).unwrap();
    let outcome = store.write_page(&page("acme", &r3, "all", 3_000, every_shape(2))).unwrap();
    assert_eq!(outcome, PageOutcome { written: 1, unchanged: 5 });
    assert_eq!(entity_updated_at(&store, "acme", "user", "u1"), 3_000);
    assert_eq!(entity_updated_at(&store, "acme", "user", "u2"), 1_000);
    assert_eq!(store.entity_attributes("acme", "user", "u1").unwrap().unwrap()["n"], json!(2));

    // A changed metric value or distribution is a write too.
    let r4 = store.begin_run("demo", "acme", 4_000).unwrap();
    let changed =
        vec![metric("seats", 100, 6.0, json!({"sku": "basic", "region": "eu"})), distribution("latency", 100, 8)];
    assert_eq!(store.write_page(&page("acme", &r4, "all", 4_000, changed)).unwrap().written, 2);
}

#[test]
fn events_are_deduplicated_by_key_and_updated_in_place() {
    let temp = Temp::new("events");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let open = event("alert", "a1", 100, None, json!({"severity": "high"}));
    // The same event twice in a page and again in the next page (overlapping incremental windows).
    let outcome = store.write_page(&page("acme", &run, "alerts", 1_000, vec![open.clone(), open.clone()])).unwrap();
    assert_eq!(outcome, PageOutcome { written: 1, unchanged: 1 });
    assert_eq!(store.write_page(&page("acme", &run, "alerts", 1_000, vec![open])).unwrap().unchanged, 1);

    let closed = event("alert", "a1", 100, Some(200), json!({"severity": "high"}));
    assert_eq!(store.write_page(&page("acme", &run, "alerts", 1_100, vec![closed])).unwrap().written, 1);
    let mut seen = Vec::new();
    store
        .for_each_row("acme", Shape::Event, "alert", |row| {
            seen.push((row.field("key"), row.field("start"), row.field("end")));
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(seen, [(Some(json!("a1")), Some(json!(100)), Some(json!(200)))]);
}

#[test]
fn a_full_sync_removes_only_vanished_rows_of_its_resource_and_instance_when_told() {
    let temp = Temp::new("sweep");
    let mut store = temp.open();
    let a1 = store.begin_run("demo", "a", 1_000).unwrap();
    let users =
        || vec![entity("user", "u1", json!({})), entity("user", "u2", json!({})), entity("user", "u3", json!({}))];
    store.write_page(&page("a", &a1, "users", 1_000, users())).unwrap();
    store
        .write_page(&page(
            "a",
            &a1,
            "members",
            1_000,
            vec![edge("u1", "member_of", "g1"), edge("u2", "member_of", "g1")],
        ))
        .unwrap();
    store.write_page(&page("a", &a1, "admins", 1_000, vec![entity("admin", "x", json!({}))])).unwrap();
    let b1 = store.begin_run("demo", "b", 1_000).unwrap();
    store.write_page(&page("b", &b1, "users", 1_000, users())).unwrap();

    // The second run of `a` sees u1 and u3 (in two pages) and only the first edge; `admins` is not synced.
    let a2 = store.begin_run("demo", "a", 2_000).unwrap();
    store.write_page(&page("a", &a2, "users", 2_000, vec![entity("user", "u1", json!({}))])).unwrap();
    store.write_page(&page("a", &a2, "users", 2_000, vec![entity("user", "u3", json!({}))])).unwrap();
    store.write_page(&page("a", &a2, "members", 2_000, vec![edge("u1", "member_of", "g1")])).unwrap();
    // Nothing vanishes before the runner says the enumeration is complete.
    assert_eq!(ids(&store, "a", Shape::Entity, "user"), ["u1", "u2", "u3"]);

    assert_eq!(store.finish_full_sync("a", "users", &a2).unwrap(), Swept { entities: 1, edges: 0 });
    assert_eq!(ids(&store, "a", Shape::Entity, "user"), ["u1", "u3"]);
    assert_eq!(ids(&store, "a", Shape::Edge, "member_of"), ["u1->g1", "u2->g1"]);
    assert_eq!(store.finish_full_sync("a", "members", &a2).unwrap().total(), 1);
    assert_eq!(ids(&store, "a", Shape::Edge, "member_of"), ["u1->g1"]);
    // Another resource of the same instance, and the same resource of another instance, are untouched.
    assert_eq!(ids(&store, "a", Shape::Entity, "admin"), ["x"]);
    assert_eq!(ids(&store, "b", Shape::Entity, "user"), ["u1", "u2", "u3"]);

    // A sweep under a run of another instance is refused rather than deleting everything.
    let err = store.finish_full_sync("a", "admins", &b1).unwrap_err();
    assert!(matches!(err, StoreError::RunMismatch { .. }), "{err:?}");
    assert_eq!(ids(&store, "a", Shape::Entity, "admin"), ["x"]);
    let err = store.finish_full_sync("a", "admins", "r-0-0000").unwrap_err();
    assert!(matches!(err, StoreError::UnknownRun { .. }), "{err:?}");
}

#[test]
fn instances_are_isolated() {
    let temp = Temp::new("instances");
    let mut store = temp.open();
    let ra = store.begin_run("demo", "a", 1_000).unwrap();
    let rb = store.begin_run("demo", "b", 1_000).unwrap();
    store
        .write_page(&with_state(
            page("a", &ra, "users", 1_000, vec![entity("user", "u1", json!({"who": "a"}))]),
            "ca",
            None,
        ))
        .unwrap();
    store
        .write_page(&with_state(
            page("b", &rb, "users", 1_000, vec![entity("user", "u1", json!({"who": "b"}))]),
            "cb",
            None,
        ))
        .unwrap();
    assert_eq!(store.entity_attributes("a", "user", "u1").unwrap().unwrap()["who"], json!("a"));
    assert_eq!(store.entity_attributes("b", "user", "u1").unwrap().unwrap()["who"], json!("b"));
    assert_eq!(store.entity_attributes("c", "user", "u1").unwrap(), None);
    assert_eq!(store.sync_state("a", "users").unwrap().unwrap().state.cursor.as_deref(), Some("ca"));
    assert_eq!(store.sync_state("b", "users").unwrap().unwrap().state.cursor.as_deref(), Some("cb"));
    assert_eq!(store.list_instances().unwrap(), ["a", "b"]);
    // A page cannot be written into one instance under another's run.
    let err = store.write_page(&page("a", &rb, "users", 1_000, vec![entity("user", "u9", json!({}))])).unwrap_err();
    assert!(err.to_string().contains("belongs to instance `b`"), "{err}");
    assert_eq!(store.entity_attributes("a", "user", "u9").unwrap(), None);
}

#[test]
fn a_run_left_running_is_marked_interrupted_by_the_next_run_of_its_instance() {
    let temp = Temp::new("runs");
    let mut store = temp.open();
    let killed = store.begin_run("demo", "a", 1_000).unwrap();
    let other = store.begin_run("demo", "b", 1_000).unwrap();
    assert!(killed.starts_with("r-1000-") && killed.len() == "r-1000-".len() + 4, "{killed}");
    let next = store.begin_run("demo", "a", 2_000).unwrap();
    assert_ne!(killed, next);

    let record = store.run(&killed).unwrap().unwrap();
    assert_eq!((record.status, record.ended_at), (RunStatus::Interrupted, None));
    assert_eq!(store.run(&other).unwrap().unwrap().status, RunStatus::Running);
    // The killed run's process, were it still alive, can no longer write.
    let err = store.write_page(&page("a", &killed, "users", 1_500, vec![])).unwrap_err();
    assert!(err.to_string().contains("no longer running"), "{err}");

    let report = ResourceReport {
        resource: "users".into(),
        pages: 3,
        records: 250,
        written: 12,
        skipped: 1,
        status: ResourceStatus::Degraded,
        warnings: vec!["a field was missing".into()],
    };
    store.record_resource(&next, &report).unwrap();
    store
        .record_resource(
            &next,
            &ResourceReport {
                resource: "groups".into(),
                status: ResourceStatus::Ok,
                warnings: vec![],
                ..report.clone()
            },
        )
        .unwrap();
    store.finish_run(&next, RunStatus::Degraded, 2_500, &json!({"kris": 4})).unwrap();
    let last = store.last_run("a").unwrap().unwrap();
    assert_eq!((last.run_id.as_str(), last.status, last.ended_at), (next.as_str(), RunStatus::Degraded, Some(2_500)));
    assert_eq!(last.report, Some(json!({"kris": 4})));
    assert_eq!(last.resources.len(), 2);
    assert_eq!(last.resources[0], report);
    assert_eq!(store.last_run("nobody").unwrap(), None);
    assert!(matches!(store.finish_run("r-9-9999", RunStatus::Ok, 1, &json!(null)), Err(StoreError::UnknownRun { .. })));
}

#[test]
fn a_streaming_read_yields_every_row_and_stops_on_the_callers_error() {
    let temp = Temp::new("stream");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    for chunk in 0..5 {
        let rows = (0..500)
            .flat_map(|i| {
                let n = chunk * 500 + i;
                [
                    entity("user", &format!("u{n:05}"), json!({"n": n})),
                    event("login", &format!("e{n}"), n, None, json!({"n": n})),
                ]
            })
            .collect();
        store.write_page(&page("acme", &run, "users", 1_000, rows)).unwrap();
    }
    let mut count = 0;
    let mut previous = String::new();
    let seen = store
        .for_each_row("acme", Shape::Entity, "user", |row| {
            let Fields::Entity { id, .. } = row.fields else { panic!("an entity") };
            assert!(id > previous.as_str(), "entities come by id");
            previous = id.to_owned();
            assert_eq!(row.resource, "users");
            count += 1;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!((seen, count), (2_500, 2_500));

    // A window on the time field reads only recent events, in time order.
    let mut starts = Vec::new();
    let n = store
        .for_each_row_since("acme", Shape::Event, "login", 2_490, |row| {
            starts.push(row.time());
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!((n, starts), (10, (2_490..2_500).collect::<Vec<_>>()));

    #[derive(Debug)]
    enum Stop {
        Enough,
        Store(#[allow(dead_code)] StoreError),
    }
    impl From<StoreError> for Stop {
        fn from(e: StoreError) -> Self {
            Stop::Store(e)
        }
    }
    let mut calls = 0;
    let result = store.for_each_row("acme", Shape::Entity, "user", |_| {
        calls += 1;
        if calls == 3 { Err(Stop::Enough) } else { Ok(()) }
    });
    assert!(matches!(result, Err(Stop::Enough)) && calls == 3);
}

#[test]
fn row_fields_are_readable_by_the_names_expressions_use() {
    let temp = Temp::new("fields");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    store.write_page(&page("acme", &run, "all", 1_000, every_shape(1))).unwrap();
    for (shape, name) in [
        (Shape::Entity, "user"),
        (Shape::Event, "login"),
        (Shape::Metric, "seats"),
        (Shape::Edge, "member_of"),
        (Shape::Distribution, "latency"),
    ] {
        store
            .for_each_row("acme", shape, name, |row| {
                assert_eq!(row.shape(), shape);
                for field in shape.row_fields() {
                    assert!(row.field(field).is_some(), "{} has `{field}`", shape.as_str());
                }
                assert_eq!(row.field(shape.time_field()), Some(json!(row.time())));
                assert_eq!(row.field("no_such_field"), None);
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }
    let mut points = None;
    store
        .for_each_row("acme", Shape::Distribution, "latency", |row| {
            points = row.field("points");
            assert_eq!(row.field("kind"), Some(json!("histogram")));
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(points, Some(json!([{"count": 2, "le": 1}, {"count": 7, "le": 10}])));
    let metric_attributes = rows(&store, "acme", Shape::Metric, "seats").remove(0).1;
    assert_eq!(metric_attributes.keys().collect::<Vec<_>>(), ["region", "sku"]);
}

#[test]
fn kri_history_is_kept_across_runs() {
    let temp = Temp::new("kris");
    let mut store = temp.open();
    let kri = |slug: &str, ts: i64, value: Option<f64>, run: &str| KriRecord {
        slug: slug.into(),
        ts,
        value,
        status: if value.is_some() { KriStatus::Ok } else { KriStatus::NotApplicable },
        band: value.map(|v| if v > 10.0 { Band::Red } else { Band::Green }),
        reason: value.is_none().then(|| "the licence does not include sign-in logs".to_owned()),
        evidence: vec!["u1".into(), "u2".into()],
        evidence_count: 17,
        run_id: Some(run.into()),
    };
    let r1 = store.begin_run("demo", "acme", 1_000).unwrap();
    store.write_kris("acme", &[kri("stale_users", 1_000, Some(5.0), &r1), kri("no_mfa", 1_000, None, &r1)]).unwrap();
    let r2 = store.begin_run("demo", "acme", 2_000).unwrap();
    store.write_kris("acme", &[kri("stale_users", 2_000, Some(12.0), &r2)]).unwrap();
    store.write_kri("other", &kri("stale_users", 3_000, Some(1.0), "r-x")).unwrap();

    let history = store.kri_history("acme", "stale_users").unwrap();
    assert_eq!(
        history.iter().map(|k| (k.ts, k.value, k.band)).collect::<Vec<_>>(),
        [(1_000, Some(5.0), Some(Band::Green)), (2_000, Some(12.0), Some(Band::Red))]
    );
    let latest = store.latest_kris("acme").unwrap();
    assert_eq!(
        latest.iter().map(|k| (k.slug.as_str(), k.ts)).collect::<Vec<_>>(),
        [("no_mfa", 1_000), ("stale_users", 2_000)]
    );
    assert_eq!(latest[0], kri("no_mfa", 1_000, None, &r1));

    // Re-evaluating at the same instant replaces that result; it does not add one.
    store.write_kri("acme", &kri("stale_users", 2_000, Some(11.0), &r2)).unwrap();
    assert_eq!(store.kri_history("acme", "stale_users").unwrap().len(), 2);
    assert!(store.write_kri("acme", &kri("stale_users", 4_000, Some(f64::INFINITY), &r2)).is_err());
    assert_eq!(store.list_instances().unwrap(), ["acme", "other"]);
}

#[test]
fn twenty_thousand_rows_in_pages_are_all_counted() {
    let temp = Temp::new("bulk");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let mut total = PageOutcome::default();
    for p in 0..20 {
        let rows = (0..1_000)
            .map(|i| {
                let n = p * 1_000 + i;
                if n % 2 == 0 {
                    entity("user", &format!("u{n}"), json!({"n": n, "active": n % 3 == 0}))
                } else {
                    event("login", &format!("e{n}"), n, None, json!({"user": format!("u{}", n - 1)}))
                }
            })
            .collect();
        let outcome =
            store.write_page(&with_state(page("acme", &run, "mixed", 1_000, rows), &format!("c{p}"), None)).unwrap();
        total.written += outcome.written;
        total.unchanged += outcome.unchanged;
    }
    assert_eq!(total, PageOutcome { written: 20_000, unchanged: 0 });
    let count = |shape, name| store.for_each_row("acme", shape, name, |_| Ok::<_, StoreError>(())).unwrap();
    assert_eq!((count(Shape::Entity, "user"), count(Shape::Event, "login")), (10_000, 10_000));
    assert_eq!(store.sync_state("acme", "mixed").unwrap().unwrap().state.cursor.as_deref(), Some("c19"));
}

/// Write throughput of the release build: 300,000 entities of four attributes in pages of 1,000, each page
/// with its cursor, batched as `write_page` batches them, then the same again as an unchanged re-run, then
/// a streaming read. On the project's 2-core machine it printed 611,000-615,000 rows/s for the first sync,
/// 327,000-337,000 rows/s for the re-run and 0.22 s for the read (8 KiB pages, batches of 64). Ignored because a timing depends on
/// the machine; run it with `cargo test --release --lib store::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check: run with --release --ignored --nocapture"]
fn throughput() {
    let temp = Temp::new("throughput");
    let mut store = temp.open();
    let rows_per_page = 1_000;
    let page_count = 300;
    let make = |p: usize| -> Vec<Row> {
        (0..rows_per_page)
            .map(|i| {
                let n = p * rows_per_page + i;
                entity(
                    "user",
                    &format!("user-{n:08}"),
                    json!({"displayName": format!("User {n}"), "enabled": !n.is_multiple_of(7), "lastSignIn": 1_700_000_000_000i64 + n as i64, "department": "Sales"}),
                )
            })
            .collect()
    };
    // Build the rows first so the figure is the store's cost, not the test's.
    let batches: Vec<Vec<Row>> = (0..page_count).map(make).collect();
    for (label, started_at) in [("first sync (inserts)", 1_000), ("re-run (unchanged)", 2_000)] {
        let run = store.begin_run("bench", "acme", started_at).unwrap();
        let pages: Vec<PageWrite> = batches
            .iter()
            .enumerate()
            .map(|(p, rows)| PageWrite {
                instance: "acme".into(),
                run_id: run.clone(),
                resource: "users".into(),
                now: started_at,
                rows: rows.clone(),
                state: Some(SyncState { cursor: Some(format!("page-{p}")), cursor_ms: None, resume: None }),
            })
            .collect();
        let start = std::time::Instant::now();
        let mut outcome = PageOutcome::default();
        for page in &pages {
            let o = store.write_page(page).unwrap();
            outcome.written += o.written;
            outcome.unchanged += o.unchanged;
        }
        let swept = store.finish_full_sync("acme", "users", &run).unwrap();
        let elapsed = start.elapsed();
        let rows = (rows_per_page * page_count) as f64;
        println!(
            "{label}: {} rows in {:.2?} = {:.0} rows/s (written {}, unchanged {}, swept {})",
            rows,
            elapsed,
            rows / elapsed.as_secs_f64(),
            outcome.written,
            outcome.unchanged,
            swept.total()
        );
    }
    let start = std::time::Instant::now();
    let n = store.for_each_row("acme", Shape::Entity, "user", |_| Ok::<_, StoreError>(())).unwrap();
    println!("streaming read: {n} rows in {:.2?}", start.elapsed());
}

#[test]
fn a_narrowed_scan_decodes_only_the_attributes_asked_for() {
    let temp = Temp::new("narrow");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let rows = vec![
        entity("user", "u1", json!({"a": 1, "b": {"deep": [1, 2]}, "c\u{e9}": "x", "d": null})),
        event("login", "e1", 5, None, json!({"a": 2, "b": "y"})),
        event("login", "e2", 50, None, json!({"a": 3, "b": "z"})),
    ];
    store.write_page(&page("acme", &run, "users", 1_000, rows)).unwrap();
    let only = ["a".to_string(), "c\u{e9}".to_string(), "missing".to_string()];
    let mut seen = Vec::new();
    store
        .scan("acme", Shape::Entity, "user", &Scan { only: Some(&only), ..Scan::default() }, |row| {
            assert!(row.attributes.is_empty(), "picked, not all decoded");
            assert_eq!(
                (row.attribute("a"), row.attribute("b"), row.attribute("missing")),
                (Some(&json!(1)), None, None)
            );
            let picked: Vec<(String, Value)> = row.picked.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
            seen.push(picked);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(seen, vec![vec![("a".to_string(), json!(1)), ("c\u{e9}".to_string(), json!("x"))]]);
    let mut seen = Vec::new();
    store
        .scan("acme", Shape::Event, "login", &Scan { since: Some(10), only: Some(&[]), ..Scan::default() }, |row| {
            seen.push((row.time(), row.picked.len(), row.attributes.len()));
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(seen, vec![(50, 0, 0)]);

    // Text only: nothing decoded, the stored text handed over, and a damaged text still an error.
    let mut texts = Vec::new();
    let text_only = Scan { text_only: true, ..Scan::default() };
    store
        .scan("acme", Shape::Entity, "user", &text_only, |row| {
            assert!(row.attributes.is_empty());
            texts.push(row.attributes_text.to_string());
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(texts, vec!["{\"a\":1,\"b\":{\"deep\":[1,2]},\"c\u{e9}\":\"x\",\"d\":null}".to_string()]);
    store.conn.execute("UPDATE entities SET attributes = '{\"a\":' WHERE id = 'u1'", []).unwrap();
    let damaged = store.scan("acme", Shape::Entity, "user", &text_only, |_| Ok::<_, StoreError>(()));
    let message = damaged.unwrap_err().to_string();
    assert!(message.contains("entities.attributes"), "{message}");
    // Unchecked, the damaged text is handed over, for the caller's own check to refuse.
    let unchecked = Scan { unchecked: true, ..text_only };
    let mut texts = Vec::new();
    store
        .scan("acme", Shape::Entity, "user", &unchecked, |row| {
            texts.push(row.attributes_text.to_string());
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(texts, vec!["{\"a\":".to_string()]);
    let message = check_attributes_text(store.path(), Shape::Entity, texts[0].as_bytes()).unwrap_err().to_string();
    assert!(message.contains("entities.attributes"), "{message}");
    assert!(check_attributes_text(store.path(), Shape::Entity, b"{\"a\":1}").is_ok());
}

#[test]
fn within_a_page_the_last_row_of_a_key_wins_whatever_the_write_order() {
    let temp = Temp::new("last-wins");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let written = vec![
        entity("user", "u9", json!({"n": 1})),
        entity("user", "u1", json!({"n": 2})),
        entity("user", "u9", json!({"n": 3})),
        event("login", "e2", 1, None, json!({"n": 4})),
        event("login", "e1", 2, None, json!({"n": 5})),
        event("login", "e2", 3, None, json!({"n": 6})),
    ];
    store.write_page(&page("acme", &run, "users", 1_000, written)).unwrap();
    let users = rows(&store, "acme", Shape::Entity, "user");
    assert_eq!(users, vec![("u1".to_string(), attrs(json!({"n": 2}))), ("u9".to_string(), attrs(json!({"n": 3})))]);
    let logins = rows(&store, "acme", Shape::Event, "login");
    assert_eq!(logins.len(), 2);
    assert!(logins.contains(&("e2".to_string(), attrs(json!({"n": 6})))), "{logins:?}");
}

/// Rows are written grouped by table and type, in id order, the page's order kept among equal ids; ids
/// that share their first eight bytes, or are shorter, sort as whole texts.
#[test]
fn a_page_is_written_in_key_order() {
    let ids = ["abcdefgh2", "b", "abcdefgh10", "abcdefgh", "", "abc\u{0}", "abc", "b", "zz", "abcdefgh2"];
    let mut rows: Vec<Row> = ids.iter().map(|id| entity("user", id, json!({}))).collect();
    rows.insert(3, event("login", "k2", 1, None, json!({})));
    rows.insert(1, event("login", "k1", 1, None, json!({})));
    rows.push(entity("group", "a", json!({})));
    let order = super::write::write_order(&rows);
    let mut expected: Vec<usize> = (0..rows.len()).collect();
    let group = |row: &Row| match row {
        Row::Entity { entity_type, .. } if entity_type == "user" => 0,
        Row::Event { .. } => 1,
        _ => 2,
    };
    let id = |row: &Row| match row {
        Row::Entity { id, .. } => id.clone(),
        Row::Event { key, .. } => key.clone(),
        _ => unreachable!(),
    };
    // A stable sort: equal keys keep their order in the page.
    expected.sort_by_key(|&i| (group(&rows[i]), id(&rows[i])));
    assert_eq!(order, expected);
}

/// Cutting a type into slices and scanning each yields every row once, in scan order; events that share
/// a start time never straddle two slices; other shapes come whole.
#[test]
fn slices_cover_every_row_once_and_keep_equal_times_together() {
    let temp = Temp::new("slices");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let mut written: Vec<Row> = (0..10).map(|i| entity("user", &format!("u{i:02}"), json!({"n": i}))).collect();
    // Times 1, 5, 5, 5, 5, 9, 9, 12: four equal times overflow a slice of three.
    for (i, t) in [1, 5, 5, 5, 5, 9, 9, 12].into_iter().enumerate() {
        written.push(event("login", &format!("e{i}"), t, None, json!({})));
    }
    written.push(edge("g1", "has_member", "u01"));
    store.write_page(&page("acme", &run, "users", 1_000, written)).unwrap();

    let cut = |shape: Shape, name: &str, since: Option<i64>| {
        let mut slices: Vec<Vec<(String, i64)>> = Vec::new();
        let mut previous: Option<Slice> = None;
        while let Some(slice) = store.next_slice("acme", shape, name, since, previous.as_ref(), 3).unwrap() {
            let mut seen = Vec::new();
            store
                .scan("acme", shape, name, &Scan { since, only: Some(&[]), slice: &slice, ..Scan::default() }, |row| {
                    let id = match row.fields {
                        Fields::Entity { id, .. } => id.to_string(),
                        Fields::Event { key, .. } => key.to_string(),
                        Fields::Edge { to_id, .. } => to_id.to_string(),
                        _ => unreachable!(),
                    };
                    seen.push((id, row.time()));
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            slices.push(seen);
            previous = Some(slice);
            assert!(slices.len() < 20, "cutting ends");
        }
        slices
    };
    let users = cut(Shape::Entity, "user", None);
    assert_eq!(users.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 3, 1]);
    let ids: Vec<String> = users.concat().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, (0..10).map(|i| format!("u{i:02}")).collect::<Vec<_>>());

    let times = |slices: Vec<Vec<(String, i64)>>| -> Vec<Vec<i64>> {
        slices.into_iter().map(|s| s.into_iter().map(|(_, t)| t).collect()).collect()
    };
    assert_eq!(times(cut(Shape::Event, "login", None)), vec![vec![1], vec![5, 5, 5, 5], vec![9, 9, 12]]);
    assert_eq!(times(cut(Shape::Event, "login", Some(6))), vec![vec![9, 9, 12]]);
    assert_eq!(times(cut(Shape::Event, "login", Some(100))), vec![Vec::<i64>::new()]);
    assert_eq!(cut(Shape::Edge, "has_member", None).concat().len(), 1);
    assert_eq!(cut(Shape::Entity, "nobody", None), vec![Vec::new()]);
}

#[tokio::test]
async fn the_background_writer_writes_in_order_reports_each_page_and_gives_the_store_back() {
    let temp = Temp::new("background");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let user = |i: u32, name: &str| {
        with_state(
            page("acme", &run, "users", 1_000, vec![entity("user", &format!("u{i}"), json!({ "name": name }))]),
            &format!("c{i}"),
            None,
        )
    };
    // A table already holding rows keeps its key index, so a page finds the rows of earlier pages.
    store.write_page(&page("acme", &run, "users", 1_000, vec![entity("user", "u0", json!({}))])).unwrap();
    // With room for two queued pages, each call once the queue is full returns the outcome of the oldest
    // queued page, and `finish` adds up the outcomes of the rest.
    let mut writer = store.background_queueing(2).unwrap();
    assert_eq!(writer.write_page(user(1, "ada")).await.unwrap(), None);
    assert_eq!(writer.write_page(user(2, "bob")).await.unwrap(), None);
    // The same key again, changed: written after the pages before it, so the later value wins.
    assert_eq!(writer.write_page(user(1, "ada2")).await.unwrap(), Some(PageOutcome { written: 1, unchanged: 0 }));
    assert_eq!(writer.write_page(user(2, "bob")).await.unwrap(), Some(PageOutcome { written: 1, unchanged: 0 }));
    assert_eq!(writer.finish().await.unwrap(), Some(PageOutcome { written: 1, unchanged: 1 }));

    // The store is back, the batch still open on it; what was written reads back in full.
    let rows = rows(&store, "acme", Shape::Entity, "user");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].1["name"], json!("ada2"));
    assert_eq!(store.sync_state("acme", "users").unwrap().unwrap().state.cursor.as_deref(), Some("c2"));
    let committed = || -> i64 { temp.raw().query_row("SELECT count(*) FROM entities", [], |r| r.get(0)).unwrap() };
    assert_eq!(committed(), 0, "pages wait in the open batch");
    store.flush().unwrap();
    assert_eq!(committed(), 3);
}

#[tokio::test]
async fn the_background_writer_refuses_bad_pages_reports_write_errors_and_flushes_on_request() {
    // Room for two queued pages, so that a page can be queued behind one that fails.
    let temp = Temp::new("background-errors");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let raw = temp.raw();
    let committed = || -> i64 { raw.query_row("SELECT count(*) FROM entities", [], |r| r.get(0)).unwrap() };
    let mut writer = store.background_queueing(2).unwrap();
    writer.write_page(page("acme", &run, "users", 1_000, vec![entity("user", "u1", json!({}))])).await.unwrap();

    // A row that cannot be stored is refused before it is queued; the page before it is unaffected.
    let bad = page("acme", &run, "users", 1_000, vec![entity("user", "", json!({}))]);
    assert!(matches!(writer.write_page(bad).await, Err(StoreError::Row { index: 0, .. })));
    assert_eq!(writer.flush().await.unwrap(), Some(PageOutcome { written: 1, unchanged: 0 }));
    assert_eq!(committed(), 1);

    // A failure only SQLite sees (a run that is not running) comes back with the page's outcome, and the
    // page queued behind it is not written.
    let stray = page("acme", "no-such-run", "users", 1_000, vec![entity("user", "u2", json!({}))]);
    assert_eq!(writer.write_page(stray).await.unwrap(), None);
    assert_eq!(
        writer.write_page(page("acme", &run, "users", 1_000, vec![entity("user", "u4", json!({}))])).await.unwrap(),
        None
    );
    assert!(matches!(writer.settle().await, Err(StoreError::UnknownRun { .. })));

    // The same when the failure comes back from a full queue.
    let stray = page("acme", "no-such-run", "users", 1_000, vec![entity("user", "u5", json!({}))]);
    assert_eq!(writer.write_page(stray).await.unwrap(), None);
    assert_eq!(
        writer.write_page(page("acme", &run, "users", 1_000, vec![entity("user", "u6", json!({}))])).await.unwrap(),
        None
    );
    let third = page("acme", &run, "users", 1_000, vec![entity("user", "u7", json!({}))]);
    assert!(matches!(writer.write_page(third).await, Err(StoreError::UnknownRun { .. })));

    // Dropped without `finish`, the writer still gives the store back, which keeps working.
    writer.write_page(page("acme", &run, "users", 1_000, vec![entity("user", "u3", json!({}))])).await.unwrap();
    drop(writer);
    store.flush().unwrap();
    assert_eq!(ids(&store, "acme", Shape::Entity, "user"), ["u1", "u3"]);
    assert_eq!(committed(), 2);
}

/// Commits `count` transactions of one 4 KB row each on `store`'s own connection, as a writer thread does.
fn commit_blobs(store: &Store, count: usize) {
    store.conn.execute_batch("CREATE TABLE IF NOT EXISTS scratch (data BLOB NOT NULL)").unwrap();
    for _ in 0..count {
        store.conn.execute("INSERT INTO scratch (data) VALUES (randomblob(4000))", []).unwrap();
    }
}

fn file_len(path: &std::path::Path, suffix: &str) -> u64 {
    let mut p = path.to_path_buf().into_os_string();
    p.push(suffix);
    std::fs::metadata(p).map_or(0, |m| m.len())
}

#[test]
fn the_checkpoint_thread_copies_the_log_into_the_database_while_the_writer_commits() {
    let temp = Temp::new("checkpoint-thread");
    let mut store = temp.open();
    let before = file_len(&temp.path, "");
    // A limit never reached: whatever reaches the database file before the store closes was copied by
    // the thread (the hook replaces SQLite's automatic checkpoint).
    let checkpointer = checkpoint::Checkpointer::with_frames(&temp.path, &mut store.conn, 64, i32::MAX).unwrap();
    commit_blobs(&store, 600);
    // The thread may not have run yet on a busy machine; a wake-up is pending then.
    let waited = std::time::Instant::now();
    while file_len(&temp.path, "") <= before + 1_000_000 && waited.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(file_len(&temp.path, "") > before + 1_000_000, "the database file did not grow before closing");
    drop(checkpointer);
    // Stopped, the thread leaves the store working.
    commit_blobs(&store, 1);
    let rows: i64 = temp.raw().query_row("SELECT count(*) FROM scratch", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 601);
}

#[test]
fn past_the_limit_the_writer_checkpoints_and_the_log_starts_over() {
    let temp = Temp::new("checkpoint-limit");
    let mut store = temp.open();
    let checkpointer = checkpoint::Checkpointer::with_frames(&temp.path, &mut store.conn, 32, 128).unwrap();
    // At least 600 frames in all; without starting over the log file would hold them all. A start-over
    // can miss its moment while the thread checkpoints, hence the slack.
    commit_blobs(&store, 600);
    let log = file_len(&temp.path, "-wal");
    drop(checkpointer);
    let page_size: i64 = store.conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let frame = u64::try_from(page_size).unwrap() + 24;
    assert!(log > 0 && log <= 32 + 2 * 128 * frame, "the log grew to {log} bytes");
    let rows: i64 = temp.raw().query_row("SELECT count(*) FROM scratch", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 600);
}

#[test]
fn a_store_written_with_other_pages_keeps_them_and_checkpoints_by_bytes() {
    let temp = Temp::new("page-size");
    {
        // A store file as an engine that used SQLite's 4 KiB pages wrote it.
        let raw = temp.raw();
        raw.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;").unwrap();
        raw.execute_batch(&format!(
            "BEGIN; {} PRAGMA application_id = {}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;",
            schema_sql(),
            schema::APPLICATION_ID
        ))
        .unwrap();
    }
    let store = temp.open();
    let page_size: i64 = store.conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    assert_eq!(page_size, 4096);
    let autocheckpoint: i64 = store.conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)).unwrap();
    assert_eq!(autocheckpoint * 4096, 64 << 20);
}

/// Whether the file has the index named `index` (`entities_key`, `events_key`).
fn has_index(raw: &rusqlite::Connection, index: &str) -> bool {
    raw.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?1").unwrap().exists([index]).unwrap()
}

#[tokio::test]
async fn a_first_load_leaves_the_key_indexes_out_and_builds_them_when_the_writer_ends() {
    let temp = Temp::new("load");
    let mut store = temp.open();
    let raw = temp.raw();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let mut writer = store.background().unwrap();
    // A key repeated within a page counts as upserts count it: changed is written, the same is unchanged.
    let first = vec![
        entity("user", "u2", json!({"n": 1})),
        entity("user", "u1", json!({"n": 2})),
        entity("user", "u2", json!({"n": 3})),
        event("login", "e1", 5, None, json!({"n": 4})),
        event("login", "e1", 5, None, json!({"n": 4})),
    ];
    writer.write_page(page("acme", &run, "all", 1_000, first)).await.unwrap();
    assert_eq!(writer.flush().await.unwrap(), Some(PageOutcome { written: 4, unchanged: 1 }));
    assert!(!has_index(&raw, "entities_key") && !has_index(&raw, "events_key"), "left out while loading");
    // A key repeated on a later page of the load cannot be looked up: it is written again.
    let second = vec![entity("user", "u1", json!({"n": 5})), entity("user", "u3", json!({"n": 6}))];
    writer.write_page(page("acme", &run, "all", 1_000, second)).await.unwrap();
    assert_eq!(writer.finish().await.unwrap(), Some(PageOutcome { written: 2, unchanged: 0 }));
    store.flush().unwrap();

    // The indexes are back, with the row written last of each key.
    assert!(has_index(&raw, "entities_key") && has_index(&raw, "events_key"));
    let users = rows(&store, "acme", Shape::Entity, "user");
    let expected = [("u1", json!({"n": 5})), ("u2", json!({"n": 3})), ("u3", json!({"n": 6}))];
    assert_eq!(users, expected.map(|(id, a)| (id.to_string(), attrs(a))).to_vec());
    assert_eq!(rows(&store, "acme", Shape::Event, "login").len(), 1);

    // The next load finds rows, keeps the indexes and upserts: the same rows change nothing.
    let run = store.begin_run("demo", "acme", 2_000).unwrap();
    let mut writer = store.background().unwrap();
    let again = vec![entity("user", "u1", json!({"n": 5})), event("login", "e1", 5, None, json!({"n": 4}))];
    writer.write_page(page("acme", &run, "all", 2_000, again)).await.unwrap();
    assert_eq!(writer.finish().await.unwrap(), Some(PageOutcome { written: 0, unchanged: 2 }));
    store.flush().unwrap();
    assert!(has_index(&raw, "entities_key") && has_index(&raw, "events_key"));
}

#[test]
fn a_key_index_left_out_by_a_killed_load_is_built_when_the_store_is_opened() {
    let temp = Temp::new("killed-load");
    drop(temp.open());
    // What a load killed before its end leaves: no index, and a key stored twice.
    let raw = temp.raw();
    raw.execute_batch(
        "DROP INDEX entities_key;
         INSERT INTO entities (instance, type, id, attributes, updated_at, resource, last_seen_run) VALUES
             ('acme', 'user', 'u1', '{\"n\":1}', 1, 'users', 'r'),
             ('acme', 'user', 'u2', '{\"n\":2}', 1, 'users', 'r'),
             ('acme', 'user', 'u1', '{\"n\":3}', 1, 'users', 'r');",
    )
    .unwrap();
    let store = temp.open();
    assert!(has_index(&raw, "entities_key"));
    let users = rows(&store, "acme", Shape::Entity, "user");
    assert_eq!(users, vec![("u1".to_string(), attrs(json!({"n": 3}))), ("u2".to_string(), attrs(json!({"n": 2})))]);
}

#[tokio::test]
async fn a_loader_whose_index_another_process_built_goes_on_with_upserts() {
    let temp = Temp::new("load-shared");
    let mut store = temp.open();
    let raw = temp.raw();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let mut writer = store.background().unwrap();
    writer.write_page(page("acme", &run, "users", 1_000, vec![entity("user", "u1", json!({"n": 1}))])).await.unwrap();
    writer.flush().await.unwrap();
    assert!(!has_index(&raw, "entities_key"));
    // Another process opens the file meanwhile (a reader, or a sync of another instance): it builds the
    // index before reading.
    drop(temp.open());
    assert!(has_index(&raw, "entities_key"));
    // The loader's next batch sees the index back: the repeated key is found and nothing is doubled.
    let outcome = writer.write_page(page("acme", &run, "users", 1_000, vec![entity("user", "u1", json!({"n": 1}))]));
    outcome.await.unwrap();
    assert_eq!(writer.finish().await.unwrap(), Some(PageOutcome { written: 0, unchanged: 1 }));
    store.flush().unwrap();
    assert_eq!(rows(&store, "acme", Shape::Entity, "user").len(), 1);
}

#[test]
fn a_store_of_the_first_schema_is_migrated_with_its_rows() {
    let temp = Temp::new("migrate-v1");
    {
        let raw = temp.raw();
        let v1 = schema_sql();
        let v1 = &v1[..v1.find("CREATE TABLE entities_v2").expect("the second migration")];
        let app = schema::APPLICATION_ID;
        raw.execute_batch(&format!("BEGIN; {v1} PRAGMA application_id = {app}; PRAGMA user_version = 1; COMMIT;"))
            .unwrap();
        raw.execute_batch(
            "INSERT INTO entities (instance, type, id, attributes, updated_at, resource, last_seen_run)
                 VALUES ('acme', 'user', 'u1', '{\"n\":1}', 1, 'users', 'r');
             INSERT INTO events (instance, name, key, start_ts, end_ts, attributes, resource)
                 VALUES ('acme', 'login', 'e1', 5, NULL, '{}', 'signins');",
        )
        .unwrap();
    }
    let store = temp.open();
    let raw = temp.raw();
    let version: i64 = raw.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert!(has_index(&raw, "entities_key") && has_index(&raw, "events_key") && has_index(&raw, "events_by_start"));
    assert_eq!(rows(&store, "acme", Shape::Entity, "user"), vec![("u1".to_string(), attrs(json!({"n": 1})))]);
    assert_eq!(rows(&store, "acme", Shape::Event, "login").len(), 1);
}

#[tokio::test]
async fn with_one_queued_page_each_write_returns_the_outcome_of_the_page_before() {
    assert_eq!(QUEUED_PAGES, 1, "what this test describes");
    let temp = Temp::new("background-one");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    let user = |id: &str| page("acme", &run, "users", 1_000, vec![entity("user", id, json!({}))]);
    // Not a first load (see `keys.rs`): the repeated page below is found unchanged.
    store.write_page(&user("u0")).unwrap();
    let mut writer = store.background().unwrap();
    assert_eq!(writer.write_page(user("u1")).await.unwrap(), None);
    assert_eq!(writer.write_page(user("u1")).await.unwrap(), Some(PageOutcome { written: 1, unchanged: 0 }));
    // A failure comes back from the next call, and the page of that call is not queued.
    let stray = page("acme", "no-such-run", "users", 1_000, vec![entity("user", "u2", json!({}))]);
    assert_eq!(writer.write_page(stray).await.unwrap(), Some(PageOutcome { written: 0, unchanged: 1 }));
    assert!(matches!(writer.write_page(user("u3")).await, Err(StoreError::UnknownRun { .. })));
    assert_eq!(writer.finish().await.unwrap(), None);
    store.flush().unwrap();
    assert_eq!(ids(&store, "acme", Shape::Entity, "user"), ["u0", "u1"]);
}

#[tokio::test]
async fn finishing_a_run_has_the_checkpoint_thread_copy_the_log_at_once() {
    let temp = Temp::new("checkpoint-finish");
    let mut store = temp.open();
    let run = store.begin_run("demo", "acme", 1_000).unwrap();
    // Far below the 64 MiB that wake the thread while writing.
    let users = (0..200).map(|i| entity("user", &format!("u{i}"), json!({ "pad": "x".repeat(4000) }))).collect();
    let mut writer = store.background().unwrap();
    writer.write_page(page("acme", &run, "users", 1_000, users)).await.unwrap();
    writer.finish().await.unwrap();
    store.flush().unwrap();
    let before = file_len(&temp.path, "");
    assert!(before < 800_000, "the rows are still in the log: {before} bytes");
    store.finish_run(&run, RunStatus::Ok, 2_000, &json!({})).unwrap();
    // The thread may not have run yet on a busy machine; the wake-up is pending then.
    let waited = std::time::Instant::now();
    while file_len(&temp.path, "") < 800_000 && waited.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(file_len(&temp.path, "") >= 800_000, "the database file did not grow before closing");
}

#[tokio::test]
async fn a_full_sync_after_a_first_load_sweeps_only_in_later_runs() {
    let temp = Temp::new("first-load-sweep");
    let mut store = temp.open();
    async fn load(store: &mut Store, run: &str, ids: &[&str]) {
        let users = ids.iter().map(|id| entity("user", id, json!({}))).collect();
        let mut writer = store.background().unwrap();
        writer.write_page(page("acme", run, "users", 1_000, users)).await.unwrap();
        writer.finish().await.unwrap();
    }
    let first = store.begin_run("demo", "acme", 1_000).unwrap();
    load(&mut store, &first, &["u1", "u2", "u3"]).await;
    assert_eq!(store.finish_full_sync("acme", "users", &first).unwrap().total(), 0);
    assert_eq!(ids(&store, "acme", Shape::Entity, "user"), ["u1", "u2", "u3"]);
    store.finish_run(&first, RunStatus::Ok, 2_000, &json!({})).unwrap();

    // The next run finds rows: what it did not see goes.
    let second = store.begin_run("demo", "acme", 3_000).unwrap();
    load(&mut store, &second, &["u2"]).await;
    assert_eq!(store.finish_full_sync("acme", "users", &second).unwrap().entities, 2);
    assert_eq!(ids(&store, "acme", Shape::Entity, "user"), ["u2"]);
}
