//! Snapshot tests per spec: every scenario directory `tests/fixtures/<spec-id>/<scenario>/` (a sandbox
//! directory, usually extending another) is replayed through the sandbox server, run by run as its
//! `runs:` list says, into a fresh store. Four snapshots per scenario, kept in its `snapshots/` folder:
//! the stored rows, the KRI observations, the run reports and the request log.
//!
//! A new spec with fixtures gets its tests from this file without a change to it. Review new or changed
//! snapshots with `cargo insta review` (or move the `.snap.new` files over the `.snap` ones).

use engine::model::Spec;
use engine::run::{RunOptions, RunReport, run};
use engine::sandbox::{Sandbox, SandboxData, SandboxOptions};
use engine::source::Source;
use engine::store::{Fields, Store};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[test]
fn every_scenario_of_every_spec_matches_its_snapshots() {
    let mut specs: Vec<PathBuf> = std::fs::read_dir(crate::repo_path("specs"))
        .expect("specs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    specs.sort();
    let mut scenarios = Vec::new();
    for path in &specs {
        let spec = engine::validate::validate(&Source::read(path).expect("spec readable")).spec.expect("spec valid");
        let dir = crate::repo_path("tests/fixtures").join(&spec.id);
        let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|_| panic!("{} has no scenarios under {}", spec.id, dir.display()))
            .map(|e| e.expect("entry").path())
            .filter(|p| p.join("sandbox.yaml").is_file())
            .collect();
        found.sort();
        assert!(!found.is_empty(), "{} has no scenarios under {}", spec.id, dir.display());
        let spec = std::sync::Arc::new(spec);
        scenarios.extend(found.into_iter().map(|dir| (spec.clone(), dir)));
    }
    // Two at a time: most of a replay is waiting (rate budgets, Retry-After).
    let failed = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some((spec, dir)) = scenarios.get(next.fetch_add(1, std::sync::atomic::Ordering::SeqCst)) {
                    let name = format!("{}/{}", spec.id, dir.file_name().unwrap().to_string_lossy());
                    let replayed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| replay(spec, dir)));
                    if replayed.is_err() {
                        failed.lock().unwrap().push(name);
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    assert!(failed.is_empty(), "scenarios that do not match their snapshots (diffs above): {failed:?}");
}

/// Replays one scenario and compares its four snapshots; panics on the first mismatch.
fn replay(spec: &Spec, dir: &Path) {
    let data = SandboxData::load(dir).unwrap_or_else(|e| panic!("{e}"));
    let replayed = replay_runs(spec, &data);
    if let Some(other) = &data.same_store_as {
        let other_data = SandboxData::load(other).unwrap_or_else(|e| panic!("{e}"));
        let expected = replay_runs(spec, &other_data);
        assert!(
            replayed.rows == expected.rows,
            "{}: the stored rows differ from those of {}",
            dir.display(),
            other.display()
        );
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(dir.join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(format!("{} scenario {}", spec.id, dir.file_name().unwrap().to_string_lossy()));
    settings.bind(|| {
        insta::assert_snapshot!("store", replayed.rows);
        insta::assert_snapshot!("kris", replayed.kris);
        insta::assert_snapshot!("reports", replayed.reports);
        insta::assert_snapshot!("requests", replayed.requests);
    });
}

/// What a replay produced, as the snapshots show it.
struct Replayed {
    rows: String,
    kris: String,
    reports: String,
    requests: String,
}

fn replay_runs(spec: &Spec, data: &SandboxData) -> Replayed {
    static REPLAYS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let replay = REPLAYS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let scratch = std::env::temp_dir().join(format!("engine-scenario-{}-{replay}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let mut store = Store::open(scratch.join("store.db")).expect("store");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (mut reports, mut requests) = (String::new(), String::new());
    let mut last: Option<RunReport> = None;
    let mut instance = String::new();
    for (index, plan) in data.runs.iter().enumerate() {
        let now_ms = match &plan.now {
            Some(text) => text.parse::<jiff::Timestamp>().expect("run `now` is RFC 3339").as_millisecond(),
            None => data.anchor_ms.expect("a scenario run needs `now` or the sandbox's `anchor`"),
        };
        let report = runtime.block_on(async {
            let options = SandboxOptions { now_ms, ..SandboxOptions::default() };
            let (sandbox, config) = Sandbox::start(spec, data, options).await.unwrap_or_else(|e| panic!("{e}"));
            instance = config.instance.clone();
            let options = RunOptions { now_ms, full: plan.full, only: plan.resources.clone(), ..RunOptions::default() };
            let report = run(spec, &config, &mut store, options).await.expect("run starts");
            let _ = writeln!(requests, "# run {}", index + 1);
            for request in sandbox.requests() {
                let _ = writeln!(requests, "{request}");
            }
            sandbox.stop().await;
            report
        });
        let _ = writeln!(reports, "# run {} at {}", index + 1, plan.now.as_deref().unwrap_or("the anchor"));
        reports.push_str(&describe_report(&report));
        last = Some(report);
    }
    let kris = describe_kris(last.as_ref().expect("at least one run"));
    let rows = dump_store(spec, &store, &instance);
    drop(store);
    let _ = std::fs::remove_dir_all(&scratch);
    Replayed { rows, kris, reports, requests }
}

/// The run report without what changes from one replay to the next (run id, wall-clock times).
fn describe_report(report: &RunReport) -> String {
    let mut text = format!("status: {}\n", report.status.as_str());
    for r in &report.resources {
        let _ = writeln!(
            text,
            "{}: {} | pages {} | records {} | written {} | skipped {}",
            r.resource,
            r.status.as_str(),
            r.pages,
            r.records,
            r.written,
            r.skipped
        );
        for warning in &r.warnings {
            let _ = writeln!(text, "  warning: {warning}");
        }
    }
    for warning in &report.warnings {
        let _ = writeln!(text, "warning: {warning}");
    }
    let _ = writeln!(text, "requests: {}, token requests: {}", report.http_requests, report.token_requests);
    text
}

fn describe_kris(report: &RunReport) -> String {
    let mut text = String::new();
    for k in &report.kris {
        let value = k.value.map_or_else(|| "-".to_string(), |v| v.as_f64().to_string());
        let band = k.band.map_or("-", |b| b.as_str());
        let _ = writeln!(text, "{}: {value} | {} | band {band}", k.slug, k.status.as_str());
        if let Some(reason) = &k.reason {
            let _ = writeln!(text, "  reason: {reason}");
        }
        let _ = writeln!(text, "  evidence ({}): {}", k.evidence_count, k.evidence.join(", "));
    }
    text
}

/// Every stored row of every shape type the spec emits, one JSON line each, sorted.
fn dump_store(spec: &Spec, store: &Store, instance: &str) -> String {
    let mut text = String::new();
    for shape_type in spec.shapes.values() {
        let mut lines = Vec::new();
        store
            .for_each_row::<engine::store::StoreError, _>(instance, shape_type.shape, &shape_type.name, |row| {
                let key = match &row.fields {
                    Fields::Entity { id, .. } => serde_json::json!({ "id": id }),
                    Fields::Event { key, start, end, .. } => {
                        serde_json::json!({ "key": key, "start": start, "end": end })
                    }
                    Fields::Metric { ts, value, .. } => serde_json::json!({ "ts": ts, "value": value }),
                    Fields::Edge { from_id, to_type, to_id, .. } => {
                        serde_json::json!({ "from": from_id, "to_type": to_type, "to": to_id })
                    }
                    Fields::Distribution { ts, count, sum, points, .. } => {
                        serde_json::json!({ "ts": ts, "count": count, "sum": sum, "points": points })
                    }
                };
                lines.push(format!("{} {}", key, serde_json::Value::Object(row.attributes)));
                Ok(())
            })
            .expect("store readable");
        lines.sort();
        let _ = writeln!(text, "## {}.{} ({} rows)", shape_type.shape.as_str(), shape_type.name, lines.len());
        for line in lines {
            let _ = writeln!(text, "{line}");
        }
    }
    text
}
