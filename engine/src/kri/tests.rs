//! Unit tests of the pieces that need no store: bands, last-run outcomes, evidence bounds.

use super::*;
use crate::model::{Comparison, Threshold};

#[test]
fn bands_fall_through_green_amber_red() {
    let bands = Bands {
        green: Threshold { op: Comparison::Ge, value: 95.0 },
        amber: Some(Threshold { op: Comparison::Ge, value: 80.0 }),
    };
    assert_eq!(band(&bands, 95.0), Band::Green);
    assert_eq!(band(&bands, 94.9), Band::Amber);
    assert_eq!(band(&bands, 80.0), Band::Amber);
    assert_eq!(band(&bands, 79.9), Band::Red);
    let green_only = Bands { green: Threshold { op: Comparison::Le, value: 0.0 }, amber: None };
    assert_eq!(band(&green_only, 0.0), Band::Green);
    assert_eq!(band(&green_only, 1.0), Band::Red);
}

#[test]
fn resources_a_run_never_reached_follow_the_run() {
    let run = |status| LastRun {
        run_id: "r".into(),
        status,
        resources: vec![("a".into(), ResourceStatus::Ok), ("b".into(), ResourceStatus::NotApplicable)],
    };
    assert_eq!(run(RunStatus::Ok).outcome("a"), None);
    assert_eq!(run(RunStatus::Ok).outcome("b"), Some(ResourceOutcome::NotApplicable));
    assert_eq!(run(RunStatus::Ok).outcome("c"), None);
    assert_eq!(run(RunStatus::Degraded).outcome("c"), None);
    assert_eq!(run(RunStatus::Failed).outcome("c"), Some(ResourceOutcome::Failed));
    assert_eq!(run(RunStatus::Interrupted).outcome("c"), Some(ResourceOutcome::Skipped));
}

#[test]
fn values_print_as_written() {
    assert_eq!(KriValue::Int(3).to_string(), "3");
    assert_eq!(KriValue::Float(6.3).to_string(), "6.3");
    assert_eq!(serde_json::to_string(&KriValue::Int(3)).unwrap(), "3");
    assert_eq!(serde_json::to_string(&KriValue::Float(0.0)).unwrap(), "0.0");
}

mod lookups {
    /// Host functions borrow their arguments.
    fn refs(values: &[Value]) -> Vec<&Value> {
        values.iter().collect()
    }

    /// `lookup("t_item", id, "n")`, which must not fail.
    fn lookup_n(host: &Host<'_>, id: &str) -> Value {
        let args = [Value::from("t_item"), Value::from(id), Value::from("n")];
        host.call("lookup", &refs(&args)).expect("a host function").expect("no error")
    }

    use super::super::host::{AUTO_QUERIES, Host};
    use super::super::{KriOptions, LookupStrategy};
    use crate::expr::Value;
    use crate::source::Source;
    use crate::store::{PageWrite, Row, Store};

    const SPEC: &str = r#"
spec_version: 1
id: t
title: T
http: { base_url: "https://api.example.com" }
resources:
  items:
    request: { path: /items }
    records: "$.items[*]"
    emit:
      - entity: { type: t_item, id: $.id, attributes: { n: $.n } }
"#;

    fn store(name: &str, rows: usize) -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("engine-kri-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut store = Store::open(dir.join("s.db")).expect("store");
        let run_id = store.begin_run("t", "i", 0).expect("run");
        let rows = (0..rows)
            .map(|i| Row::Entity {
                entity_type: "t_item".into(),
                id: format!("e{i}"),
                attributes: serde_json::json!({ "n": i }).as_object().cloned().expect("object"),
            })
            .collect();
        let page = PageWrite { instance: "i".into(), run_id, resource: "items".into(), now: 0, rows, state: None };
        store.write_page(&page).expect("page");
        (store, dir)
    }

    #[test]
    fn auto_queries_by_key_then_builds_one_index() {
        let spec = crate::validate::validate(&Source::new("t.yaml", SPEC)).spec.expect("valid");
        let (store, dir) = store("auto", 10);
        let options = KriOptions { lookups: LookupStrategy::Auto, ..KriOptions::new("i", 0) };
        let host = Host::new(&spec, &store, &options);
        let call = |id: &str| lookup_n(&host, id);
        // Ids out of order: an index, not a read-ahead window.
        for n in 0..AUTO_QUERIES {
            let i = 3 - n % 2;
            assert_eq!(call(&format!("e{i}")), Value::Int(i64::from(i)));
        }
        assert!(!host.indexed("t_item", "n"), "still querying by key");
        assert_eq!(call("e4"), Value::Int(4));
        assert!(host.indexed("t_item", "n"), "indexed after the first calls");
        assert_eq!(call("e9"), Value::Int(9));
        assert_eq!(call("nobody"), Value::Empty);
        let empty_id = [Value::from("t_item"), Value::Empty, Value::from("n")];
        assert_eq!(host.call("lookup", &refs(&empty_id)).expect("host").expect("ok"), Value::Empty);
        let exists = [Value::from("t_item"), Value::from("e1")];
        assert_eq!(host.call("exists", &refs(&exists)).expect("host").expect("ok"), Value::Boolean(true));
        assert!(host.call("nothing", &[]).is_none(), "not a host function");
        let wrong = [Value::from("t_item"), Value::Boolean(true), Value::from("n")];
        let error = host.call("lookup", &refs(&wrong)).expect("host").expect_err("a boolean id");
        assert!(error.message.contains("argument 2 should be text"), "{}", error.message);
        drop(host);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn ids_in_order_are_read_ahead_and_ids_behind_go_by_key() {
        use super::super::host::BEHIND_LIMIT;
        let spec = crate::validate::validate(&Source::new("t.yaml", SPEC)).spec.expect("valid");
        let (store, dir) = store("ahead", 5_000);
        let options = KriOptions { lookups: LookupStrategy::Auto, ..KriOptions::new("i", 0) };
        let host = Host::new(&spec, &store, &options);
        let call = |id: &str| lookup_n(&host, id);
        let exists = |id: &str| {
            let args = [Value::from("t_item"), Value::from(id)];
            host.call("exists", &refs(&args)).expect("a host function").expect("no error") == Value::Boolean(true)
        };
        // Text order, with an absent id after each present one.
        let mut ids: Vec<usize> = (0..5_000).collect();
        ids.sort_by_key(|i| format!("e{i}"));
        for &i in &ids {
            assert_eq!(call(&format!("e{i}")), Value::Int(i as i64), "e{i}");
            assert_eq!(call(&format!("e{i}-")), Value::Empty, "e{i}- is not stored");
            assert!(exists(&format!("e{i}")) && !exists(&format!("e{i}-")), "e{i}");
        }
        assert!(host.ahead("t_item", "n"), "read ahead once the ids came in order");
        // Behind the window: still right, by key, until there are too many of them.
        for _ in 0..BEHIND_LIMIT {
            assert_eq!(call("e0"), Value::Int(0));
        }
        assert!(host.ahead("t_item", "n"));
        assert_eq!(call("e1"), Value::Int(1));
        assert!(host.indexed("t_item", "n"), "indexed once too many calls fell behind");
        assert_eq!(call("e4999"), Value::Int(4999));
        drop(host);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}
