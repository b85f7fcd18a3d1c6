//! Behavioural tests of record mapping, each from a small inline spec compiled by the real validator, so
//! the emits are exactly what a runner would hold. The ignored `throughput` test times a sign-in-like
//! event in the release build.

use super::*;
use crate::expr::MapScope;
use crate::model::DistributionKind;
use crate::source::Source;
use serde_json::json;

const NOW: i64 = 1_700_000_000_000;

/// The emits of the fan-out resource `items` (parent alias `role`) of a spec whose `emit:` list is
/// `emit` (YAML indented by six spaces, as under `emit:`).
fn spec_emits(emit: &str) -> Vec<Emit> {
    let text = format!(
        r#"spec_version: 1
id: t
title: T
config:
  api_base_url: {{ type: url, default: "https://api.example.com" }}
  tenant: {{ type: string, default: "acme" }}
http:
  base_url: "{{config.api_base_url}}"
resources:
  roles:
    request: {{ path: /roles }}
    records: "$.items[*]"
    emit:
      - entity: {{ type: t_role, id: $.id }}
  items:
    for_each: {{ resource: roles, as: role }}
    request: {{ path: "/roles/{{role.id}}/items" }}
    records: "$.items[*]"
    emit:
{emit}
"#
    );
    let validated = crate::validate::validate(&Source::new("t.yaml", text));
    let errors: Vec<String> =
        validated.diagnostics.iter().filter(|d| d.is_error()).map(|d| format!("{}: {}", d.code, d.message)).collect();
    let mut spec = validated.spec.unwrap_or_else(|| panic!("the test spec should validate: {errors:#?}"));
    let index = spec.resources.iter().position(|r| r.name == "items").expect("resource `items`");
    std::mem::take(&mut spec.resources[index].emit)
}

fn config() -> MapScope {
    MapScope::new(NOW).with("config.tenant", "acme")
}

/// Maps through [`map_record`], and checks that the runner's path ([`map_record_text_into`]) gives the same
/// rows, skips and warnings, with the stored text of the same attributes.
fn map_with(emits: &[Emit], record: &Value, parent: Option<(&str, &Value)>) -> Result<Mapped, MapError> {
    let config = config();
    let cx = MapContext { now_ms: NOW, config: &config, parent };
    let mapped = map_record(emits, record, &cx);
    let mut text = MappedText::default();
    let text_result = map_record_text_into(emits, &Doc::from_value(record), &cx, &mut text);
    match &mapped {
        Ok(mapped) => {
            text_result.expect("the text path maps what the map path maps");
            assert_eq!((text.skipped, &text.warnings), (mapped.skipped, &mapped.warnings));
            assert_eq!(text.rows.len(), mapped.rows.len());
            for ((text_row, stored), row) in text.rows.iter().zip(&text.texts).zip(&mapped.rows) {
                let mut keys_only = row.clone();
                *keys_only.attributes_mut() = Map::new();
                assert_eq!(text_row, &keys_only);
                assert_eq!(stored, &crate::store::json::canonical(row.attributes()).unwrap());
            }
        }
        Err(error) => assert_eq!(text_result.unwrap_err(), *error),
    }
    mapped
}

fn map(emits: &[Emit], record: Value) -> Mapped {
    map_with(emits, &record, None).expect("no `missing: error` field is missing")
}

/// The attributes of the only row.
fn attrs(mapped: &Mapped) -> Value {
    assert_eq!(mapped.rows.len(), 1, "{mapped:#?}");
    Value::Object(mapped.rows[0].attributes().clone())
}

/// An entity emit with id `$.id` and the given attributes (YAML lines indented by 14 spaces).
fn entity(attributes: &str) -> Vec<Emit> {
    spec_emits(&format!(
        "      - entity:\n          type: t_item\n          id: $.id\n          attributes:\n{attributes}"
    ))
}

#[test]
fn sources_path_template_expr_value() {
    let emits = entity(
        r#"            name: $.profile.name
            label: { template: "{config.tenant}/{name}" }
            shout: { expr: 'name + "!"' }
            kind: { value: 7 }
            nothing: $.absent
"#,
    );
    let mapped = map(&emits, json!({"id": "a1", "profile": {"name": "Ada"}}));
    assert_eq!(mapped.skipped, 0);
    assert!(mapped.warnings.is_empty());
    assert_eq!(
        mapped.rows,
        vec![Row::Entity {
            entity_type: "t_item".into(),
            id: "a1".into(),
            attributes: json!({"name": "Ada", "label": "acme/Ada", "shout": "Ada!", "kind": 7, "nothing": null})
                .as_object()
                .unwrap()
                .clone(),
        }]
    );
    // Attribute order is the spec's, whatever the record's.
    let names: Vec<&String> = mapped.rows[0].attributes().keys().collect();
    assert_eq!(names, ["name", "label", "shout", "kind", "nothing"]);
}

#[test]
fn list_valued_paths_give_json_arrays() {
    let emits = entity(
        r#"            targetIds: $.targets[*].id
            none: $.nothing[*].id
            firstTarget: { path: "$.targets[*].id", transform: first }
            count: { path: "$.targets", transform: length }
"#,
    );
    let mapped = map(&emits, json!({"id": "x", "targets": [{"id": "t1"}, {"id": 2}, {"other": 1}]}));
    assert_eq!(attrs(&mapped), json!({"targetIds": ["t1", 2], "none": [], "firstTarget": "t1", "count": 3}));
}

#[test]
fn transforms_apply_in_order() {
    let emits = entity(
        r#"            email: { path: $.email, transform: [trim, lowercase] }
            code: { path: $.code, transform: [trim, uppercase] }
            n: { path: $.n, transform: integer }
            ntext: { path: $.ntext, transform: integer }
            num: { path: $.numtext, transform: number }
            numint: { path: $.inttext, transform: number }
            flag: { path: $.flag, transform: boolean }
            asText: { path: $.n, transform: string }
            boolText: { path: $.yes, transform: string }
            len: { path: $.email, transform: [trim, length] }
            first: { path: $.list, transform: first }
            # `first` keeps a value that is not a list.
            scalarFirst: { path: $.code, transform: first }
            blank: { path: $.blank, transform: [empty_as_missing, uppercase], default: "none" }
            emptyList: { path: $.emptyList, transform: [empty_as_missing, first] }
            firstOfEmpty: { path: $.emptyList, transform: first }
            nullStaysMissing: { path: $.nothing, transform: [trim, integer] }
"#,
    );
    let mapped = map(
        &emits,
        json!({
            "id": "x", "email": "  Ada@Example.COM ", "code": " ab ", "n": 3.99, "ntext": "-12.7",
            "numtext": " 2.5 ", "inttext": "42", "flag": "TRUE", "yes": true, "list": ["a", "b"], "blank": "",
            "emptyList": [], "nothing": null,
        }),
    );
    assert!(mapped.warnings.is_empty(), "{:?}", mapped.warnings);
    assert_eq!(
        attrs(&mapped),
        json!({
            "email": "ada@example.com", "code": "AB", "n": 3, "ntext": -12, "num": 2.5, "numint": 42,
            "flag": true, "asText": "3.99", "boolText": "true", "len": 15, "first": "a", "scalarFirst": " ab ",
            "blank": "none", "emptyList": null, "firstOfEmpty": null, "nullStaysMissing": null,
        })
    );
}

#[test]
fn timestamps_are_floored_milliseconds() {
    let emits = entity(
        r#"            seven: { path: $.seven, transform: unix_ms }
            before1970: { path: $.before, transform: unix_ms }
            seconds: { path: $.seven, transform: unix_s }
            secondsBefore: { path: $.before, transform: unix_s }
            offset: { path: $.offset, transform: unix_ms }
            number: { path: $.number, transform: unix_ms }
            missing: { path: $.missing, transform: unix_ms }
"#,
    );
    let mapped = map(
        &emits,
        json!({
            "id": "x", "seven": "2020-03-13T19:15:41.6195833Z", "before": "1969-12-31T23:59:59.9995Z",
            "offset": "2024-05-01T02:00:00+02:00", "number": 1234,
        }),
    );
    assert_eq!(
        attrs(&mapped),
        json!({
            "seven": 1_584_126_941_619_i64, "before1970": -1, "seconds": 1_584_126_941, "secondsBefore": -1,
            "offset": 1_714_521_600_000_i64, "number": 1234, "missing": null,
        })
    );
}

#[test]
fn an_unparsable_timestamp_skips_the_record_without_quoting_it() {
    let emits = spec_emits(
        r#"      - entity:
          type: t_item
          id: $.id
          attributes:
            createdAt: { path: $.createdAt, transform: unix_ms }
      - entity:
          type: t_other
          id: $.id
"#,
    );
    let secret = "not a date, and possibly someone's personal text that must not end up in a log";
    let mapped = map(&emits, json!({"id": "x", "createdAt": secret}));
    // The other emit still maps the record.
    assert_eq!(mapped.rows.len(), 1);
    assert_eq!(mapped.rows[0].shape(), crate::model::Shape::Entity);
    assert_eq!(mapped.skipped, 1);
    assert_eq!(
        mapped.warnings,
        ["entity.t_item: record skipped: attribute `createdAt`: `unix_ms` cannot convert text that is not an \
          ISO-8601 timestamp"]
    );
    let mapped = map(&emits, json!({"id": "x", "createdAt": [1, 2]}));
    assert_eq!(
        mapped.warnings,
        ["entity.t_item: record skipped: attribute `createdAt`: `unix_ms` cannot convert a list"]
    );
}

#[test]
fn conversion_failures_skip_with_the_value_kind() {
    let emits = entity("            n: { path: $.n, transform: integer }\n");
    let mapped = map(&emits, json!({"id": "x", "n": "twelve"}));
    assert_eq!(mapped.skipped, 1);
    assert_eq!(
        mapped.warnings,
        ["entity.t_item: record skipped: attribute `n`: `integer` cannot convert text that is not a number"]
    );
    let emits = entity("            n: { path: $.n, transform: trim }\n");
    let mapped = map(&emits, json!({"id": "x", "n": 5}));
    assert_eq!(mapped.warnings, ["entity.t_item: record skipped: attribute `n`: `trim` cannot convert an integer"]);
}

#[test]
fn default_and_missing_policies() {
    let emits = entity(
        r#"            withDefault: { path: $.a, default: "fallback" }
            nullDefault: { path: $.nullValue, default: 0 }
            asNull: { path: $.a }
            omitted: { path: $.a, missing: omit }
            present: { path: $.b, missing: omit, default: "unused" }
"#,
    );
    let mapped = map(&emits, json!({"id": "x", "nullValue": null, "b": false}));
    assert_eq!(attrs(&mapped), json!({"withDefault": "fallback", "nullDefault": 0, "asNull": null, "present": false}));
    assert!(!mapped.rows[0].attributes().contains_key("omitted"));

    // skip_record: no row and counted, but deliberate, so no warning.
    let emits = entity("            a: { path: $.a, missing: skip_record }\n");
    let mapped = map(&emits, json!({"id": "x", "a": null}));
    assert_eq!((mapped.rows.len(), mapped.skipped, mapped.warnings.len()), (0, 1, 0));
    assert_eq!(map(&emits, json!({"id": "x", "a": 1})).rows.len(), 1);

    // A default satisfies skip_record and error.
    let emits = entity("            a: { path: $.a, missing: error, default: 1 }\n");
    assert_eq!(attrs(&map(&emits, json!({"id": "x"}))), json!({"a": 1}));

    // error: the whole record fails, naming the emit, the field and its JSONPath.
    let emits = entity("            a: { path: $.deep.a, missing: error }\n");
    let error = map_with(&emits, &json!({"id": "x"}), None).unwrap_err();
    assert_eq!(error, MapError { emit: "entity.t_item".into(), field: "a".into(), reads: "`$.deep.a`".into() });
    assert_eq!(
        error.to_string(),
        "entity.t_item: `a` is missing or null, and its mapping says `missing: error` (it reads `$.deep.a`)"
    );
}

#[test]
fn expression_order_is_checked_by_the_validator() {
    // A derived attribute may only read attributes written before it, so a runner never meets a forward
    // reference; the validator refuses this spec.
    let text = r#"spec_version: 1
id: t
title: T
config:
  api_base_url: { type: url, default: "https://api.example.com" }
http:
  base_url: "{config.api_base_url}"
resources:
  items:
    request: { path: /items }
    records: "$.items[*]"
    emit:
      - entity:
          type: t_item
          id: $.id
          attributes:
            later: { expr: "x + 1" }
            x: $.x
"#;
    assert!(crate::validate::validate(&Source::new("t.yaml", text)).spec.is_none());
}

#[test]
fn missing_values_are_the_empty_value_in_expressions() {
    let emits = spec_emits(
        r#"      - event:
          name: t_signin
          key: $.id
          start: { path: $.createdDateTime, transform: unix_ms }
          attributes:
            errorCode: $.status.errorCode
            naive: { expr: 'if(errorCode == 0, "success", "failure")' }
            status: { expr: 'if(typeof(errorCode) == "int", if(errorCode == 0, "success", "failure"), ())' }
            omitted: { path: $.nope, missing: omit }
            omittedIsEmpty: { expr: 'typeof(omitted)' }
            startMs: { path: $.createdDateTime, transform: unix_ms }
            ageMs: { expr: now() - startMs }
            tenant: { expr: config.tenant }
"#,
    );
    let at = "2023-11-14T22:13:19Z"; // NOW - 1,000 ms
    let ok = map(&emits, json!({"id": "e1", "createdDateTime": at, "status": {"errorCode": 0}}));
    let failed = map(&emits, json!({"id": "e2", "createdDateTime": at, "status": {"errorCode": 50126}}));
    let unknown = map(&emits, json!({"id": "e3", "createdDateTime": at, "status": {}}));
    let common = |naive: &str, status: Value, code: Value| {
        json!({"errorCode": code, "naive": naive, "status": status, "omittedIsEmpty": "empty",
               "startMs": NOW - 1000, "ageMs": 1000, "tenant": "acme"})
    };
    assert_eq!(attrs(&ok), common("success", json!("success"), json!(0)));
    assert_eq!(attrs(&failed), common("failure", json!("failure"), json!(50126)));
    // Type-strict equality: `() == 0` is false, so the naive form calls an unknown status a failure; the
    // `typeof` idiom gives null.
    assert_eq!(attrs(&unknown), common("failure", Value::Null, Value::Null));
    match &ok.rows[0] {
        Row::Event { name, key, start, end, .. } => {
            assert_eq!((name.as_str(), key.as_str(), *start, *end), ("t_signin", "e1", NOW - 1000, None));
        }
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn an_expression_error_skips_the_emit_with_a_warning() {
    let emits = entity(
        r#"            amount: $.amount
            double: { expr: amount * 2 }
"#,
    );
    assert_eq!(attrs(&map(&emits, json!({"id": "x", "amount": 4}))), json!({"amount": 4, "double": 8}));
    let mapped = map(&emits, json!({"id": "x", "amount": "four"}));
    assert_eq!((mapped.rows.len(), mapped.skipped), (0, 1));
    assert_eq!(mapped.warnings.len(), 1);
    let warning = &mapped.warnings[0];
    assert!(warning.starts_with("entity.t_item: record skipped: attribute `double`: expression failed: "), "{warning}");
    // A template hole that fails is reported the same way.
    let emits = entity("            amount: $.amount\n            label: { template: \"n={amount * 2}\" }\n");
    let mapped = map(&emits, json!({"id": "x", "amount": "four"}));
    assert_eq!(mapped.skipped, 1);
    let warning = &mapped.warnings[0];
    assert!(
        warning.starts_with("entity.t_item: record skipped: attribute `label`: template hole `amount * 2` failed: "),
        "{warning}"
    );
}

#[test]
fn templates_with_an_empty_hole_are_missing() {
    let emits = entity(
        r#"            first: $.first
            full: { template: "{first} {config.tenant}", default: "anonymous" }
            tuple: { expr: '(1, 2)' }
            joined: { template: "[{tuple}]" }
"#,
    );
    let mapped = map(&emits, json!({"id": "x", "first": "Ada"}));
    assert_eq!(attrs(&mapped), json!({"first": "Ada", "full": "Ada acme", "tuple": [1, 2], "joined": "[1,2]"}));
    let mapped = map(&emits, json!({"id": "x"}));
    assert_eq!(attrs(&mapped)["full"], json!("anonymous"));
}

#[test]
fn edges_read_the_parent_in_templates_and_expressions() {
    let emits = spec_emits(
        r#"      - edge:
          from: { type: t_role, id: { template: "{role.id}" } }
          kind: has_member
          to: { type: t_object, id: $.id }
          attributes:
            roleName: { expr: role.displayName }
            ownerId: { expr: role.owner.id }
            label: { template: "{role.displayName}: {config.tenant}" }
            missingParentField: { expr: role.nothing }
"#,
    );
    let parent = json!({"id": 42, "displayName": "Admins", "owner": {"id": "o1"}});
    let mapped = map_with(&emits, &json!({"id": "m1"}), Some(("role", &parent))).unwrap();
    assert_eq!(
        mapped.rows,
        vec![Row::Edge {
            from_type: "t_role".into(),
            from_id: "42".into(),
            kind: "has_member".into(),
            to_type: "t_object".into(),
            to_id: "m1".into(),
            attributes: json!({"roleName": "Admins", "ownerId": "o1", "label": "Admins: acme",
                               "missingParentField": null})
            .as_object()
            .unwrap()
            .clone(),
        }]
    );
    // A parent without an id: the template hole is empty, so the edge has no from id.
    let mapped = map_with(&emits, &json!({"id": "m1"}), Some(("role", &json!({})))).unwrap();
    assert_eq!(mapped.skipped, 1);
    assert_eq!(mapped.warnings, ["edge.has_member: record without from id skipped (`{role.id}` is missing or null)"]);
}

#[test]
fn when_filters_without_counting() {
    let emits = spec_emits(
        r#"      - entity:
          type: t_item
          id: $.id
          when: 'kind == "user" && !is_empty(name)'
          attributes:
            kind: $.kind
            name: $.name
      - entity:
          type: t_bad
          id: $.id
          when: 'kind'
          attributes:
            kind: $.kind
"#,
    );
    let user = map(&emits, json!({"id": "u", "kind": "user", "name": "Ada"}));
    assert_eq!(user.rows.len(), 1);
    assert_eq!(user.skipped, 1, "`when: kind` is not a boolean");
    assert_eq!(user.warnings.len(), 1);
    assert!(user.warnings[0].starts_with("entity.t_bad: record skipped: `when` failed: "), "{:?}", user.warnings);
    // Filtered out: no row, not skipped, and no complaint about the missing id.
    let group = map(&emits, json!({"kind": "group", "name": "G"}));
    assert_eq!((group.rows.len(), group.skipped), (0, 1));
    assert!(group.warnings.iter().all(|w| w.starts_with("entity.t_bad")), "{:?}", group.warnings);
}

#[test]
fn ids_must_be_text_or_integers() {
    let emits = entity("");
    let row = |record: Value| map(&emits, record);
    assert_eq!(
        row(json!({"id": 12345678901_i64})).rows,
        vec![Row::Entity { entity_type: "t_item".into(), id: "12345678901".into(), attributes: Map::new() }]
    );
    assert_eq!(row(json!({"id": u64::MAX})).rows.len(), 1);
    let missing = row(json!({"name": "no id"}));
    assert_eq!((missing.rows.len(), missing.skipped), (0, 1));
    assert_eq!(missing.warnings, ["entity.t_item: record without id skipped (`$.id` is missing or null)"]);
    assert_eq!(row(json!({"id": null})).warnings, missing.warnings);
    assert_eq!(
        row(json!({"id": 1.5})).warnings,
        ["entity.t_item: record skipped: id `$.id` is a floating-point number, not text or an integer"]
    );
    assert_eq!(
        row(json!({"id": {"a": 1}})).warnings,
        ["entity.t_item: record skipped: id `$.id` is a mapping, not text or an integer"]
    );
    // Key fields honour `missing: error` and `default`.
    let emits = spec_emits("      - entity: { type: t_item, id: { path: $.id, missing: error } }\n");
    assert_eq!(map_with(&emits, &json!({}), None).unwrap_err().field, "id");
    let emits = spec_emits("      - entity: { type: t_item, id: { path: $.id, default: singleton } }\n");
    assert!(matches!(&map(&emits, json!({})).rows[..], [Row::Entity { id, .. }] if id == "singleton"));
    let emits = spec_emits("      - entity: { type: t_item, id: { path: $.id, missing: skip_record } }\n");
    let mapped = map(&emits, json!({}));
    assert_eq!((mapped.rows.len(), mapped.skipped, mapped.warnings.len()), (0, 1, 0));
}

#[test]
fn event_times() {
    let emits = spec_emits(
        r#"      - event:
          name: t_run
          key: { template: "{config.tenant}-{job}" }
          start: { path: $.startedAt, transform: unix_ms, missing: error }
          end: { path: $.endedAt, transform: unix_ms }
          attributes:
            job: $.job
"#,
    );
    let mapped =
        map(&emits, json!({"job": 7, "startedAt": "1970-01-01T00:00:01.5Z", "endedAt": "1970-01-01T00:00:02Z"}));
    assert_eq!(
        mapped.rows,
        vec![Row::Event {
            name: "t_run".into(),
            key: "acme-7".into(),
            start: 1500,
            end: Some(2000),
            attributes: json!({"job": 7}).as_object().unwrap().clone(),
        }]
    );
    let error = map_with(&emits, &json!({"job": 7}), None).unwrap_err();
    assert_eq!(
        (error.emit.as_str(), error.field.as_str(), error.reads.as_str()),
        ("event.t_run", "start", "`$.startedAt`")
    );

    // Without a transform, text is not a time; a float is floored.
    let emits = spec_emits(
        r#"      - event: { name: t_run, key: $.id, start: $.at }
"#,
    );
    let mapped = map(&emits, json!({"id": "r", "at": "2024-01-01T00:00:00Z"}));
    assert_eq!(
        mapped.warnings,
        ["event.t_run: record skipped: start `$.at` is text, not milliseconds (add `transform: unix_ms`)"]
    );
    let mapped = map(&emits, json!({"id": "r", "at": -1.5}));
    assert!(matches!(mapped.rows[..], [Row::Event { start: -2, .. }]), "{mapped:?}");
    let mapped = map(&emits, json!({"id": "r"}));
    assert_eq!(mapped.warnings, ["event.t_run: record without start skipped (`$.at` is missing or null)"]);
}

#[test]
fn metrics_and_distributions() {
    let emits = spec_emits(
        r#"      - metric:
          name: t_queue_depth
          value: $.depth
          attributes:
            queue: $.queue
      - metric:
          name: t_latency
          ts: { path: $.at, transform: unix_ms }
          value: { path: $.latency, transform: number }
      - distribution:
          name: t_sizes
          kind: histogram
          points: $.buckets
          count: $.count
          sum: $.sum
"#,
    );
    let record = json!({"queue": "q1", "depth": 3, "at": "2024-01-01T00:00:00Z", "latency": "12.5",
                        "buckets": [{"le": 1, "count": 2}], "count": 2, "sum": 1.5});
    let mapped = map(&emits, record);
    assert!(mapped.warnings.is_empty(), "{:?}", mapped.warnings);
    assert_eq!(
        mapped.rows,
        vec![
            Row::Metric {
                name: "t_queue_depth".into(),
                ts: NOW,
                value: 3.0,
                attributes: json!({"queue": "q1"}).as_object().unwrap().clone(),
            },
            Row::Metric { name: "t_latency".into(), ts: 1_704_067_200_000, value: 12.5, attributes: Map::new() },
            Row::Distribution {
                name: "t_sizes".into(),
                ts: NOW,
                kind: DistributionKind::Histogram,
                points: json!([{"le": 1, "count": 2}]),
                count: 2,
                sum: 1.5,
                attributes: Map::new(),
            },
        ]
    );
    // A missing ts is the run's clock; a value that is not a number skips the record.
    let mapped = map(&emits, json!({"depth": "deep", "latency": 1, "buckets": [], "count": 2.5, "sum": 0}));
    assert_eq!(mapped.skipped, 2);
    assert!(matches!(mapped.rows[..], [Row::Metric { ts: NOW, .. }]), "{mapped:?}");
    assert_eq!(
        mapped.warnings,
        [
            "metric.t_queue_depth: record skipped: value `$.depth` is text, not a number",
            "distribution.t_sizes: record skipped: count `$.count` is a floating-point number, not an integer",
        ]
    );
}

#[test]
fn map_record_into_appends() {
    let emits = entity("");
    let config = config();
    let cx = MapContext { now_ms: NOW, config: &config, parent: None };
    let mut page = Mapped::default();
    for record in [json!({"id": 1}), json!({}), json!({"id": "b"})] {
        map_record_into(&emits, &Doc::from_value(&record), &cx, &mut page).unwrap();
    }
    assert_eq!((page.rows.len(), page.skipped, page.warnings.len()), (2, 1, 1));
}

/// The runner's rows carry their attributes as stored text: names sorted, nested keys sorted, text read
/// from the page copied or escaped as the store's serializer escapes it, whatever the source of a value.
#[test]
fn stored_text_is_the_canonical_text_of_the_attributes() {
    let emits = entity(
        r#"            zeta: $.text
            alpha: $.nested
            escaped: $.escaped
            list: $.items[*].n
            count: { path: $.items, transform: length }
            ratio: $.ratio
            flag: $.flag
            gone: { path: $.absent, missing: omit }
            none: $.absent
            fallback: { path: $.absent, default: { b: 1, a: [2] } }
            label: { template: "{zeta}-{config.tenant}" }
            derived: { expr: 'ratio * 2' }
            Upper: { value: "const \"quoted\"" }
"#,
    );
    let page = r#"{"id": "i1", "text": "plain é 日本", "nested": {"y": [{"b": 1, "a": "x"}], "x": null},
        "escaped": "tab\there \"q\" \\ \u0001 \u00e9", "items": [{"n": 1}, {"n": "two"}], "ratio": 0.25,
        "flag": true}"#;
    let record = Doc::parse(page.as_bytes()).unwrap();
    let config = config();
    let cx = MapContext { now_ms: NOW, config: &config, parent: None };
    let mut mapped = Mapped::default();
    map_record_into(&emits, &record, &cx, &mut mapped).unwrap();
    let mut text = MappedText::default();
    map_record_text_into(&emits, &record, &cx, &mut text).unwrap();
    assert_eq!(text.texts.len(), 1);
    assert_eq!(text.texts[0], crate::store::json::canonical(mapped.rows[0].attributes()).unwrap());
    assert_eq!(
        text.texts[0],
        r#"{"Upper":"const \"quoted\"","alpha":{"x":null,"y":[{"a":"x","b":1}]},"count":2,"derived":0.5,"#.to_string()
            + r#""escaped":"tab\there \"q\" \\ \u0001 é","fallback":{"a":[2],"b":1},"flag":true,"#
            + r#""label":"plain é 日本-acme","list":[1,"two"],"none":null,"ratio":0.25,"zeta":"plain é 日本"}"#
    );
    assert!(text.rows[0].attributes().is_empty());
}

/// Times mapping of a sign-in-like event: 12 attributes (one an expression over an earlier one, nested
/// paths among them) plus a key and a `unix_ms` start. Run with
/// `cargo test --release --lib map::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let emits = spec_emits(
        r#"      - event:
          name: t_signin
          key: $.id
          start: { path: $.createdDateTime, transform: unix_ms, missing: error }
          attributes:
            errorCode: $.status.errorCode
            status: { expr: 'if(typeof(errorCode) == "int", if(errorCode == 0, "success", "failure"), ())' }
            failureReason: $.status.failureReason
            userId: $.userId
            userPrincipalName: $.userPrincipalName
            appId: $.appId
            appDisplayName: $.appDisplayName
            ipAddress: $.ipAddress
            countryOrRegion: $.location.countryOrRegion
            city: $.location.city
            riskLevel: $.riskLevelAggregated
            clientAppUsed: $.clientAppUsed
"#,
    );
    const N: usize = 200_000;
    let records: Vec<Value> = (0..N)
        .map(|i| {
            json!({
                "id": format!("66ea54eb-6301-4ee5-be62-{i:012}"),
                "createdDateTime": format!("2024-05-{:02}T{:02}:{:02}:{:02}.{:07}Z", 1 + i % 28, i % 24, i % 60, (i / 60) % 60, i % 10_000_000),
                "userId": format!("d4957e55-{i:08}"),
                "userPrincipalName": format!("user{i}@example.com"),
                "appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
                "appDisplayName": "Portal",
                "ipAddress": format!("10.0.{}.{}", i % 256, (i / 256) % 256),
                "clientAppUsed": "Browser",
                "riskLevelAggregated": "none",
                "status": {"errorCode": if i % 10 == 0 { 50126 } else { 0 }, "failureReason": "Other."},
                "location": {"city": "Paris", "state": "Paris", "countryOrRegion": "FR"},
                "deviceDetail": {"deviceId": "", "operatingSystem": "Windows10", "browser": "Edge 124"},
            })
        })
        .collect();
    // Records as a runner maps them: parsed into a `Doc` from the page's text.
    let texts: Vec<String> = records.iter().map(Value::to_string).collect();
    let docs: Vec<Doc> = texts.iter().map(|text| Doc::parse(text.as_bytes()).unwrap()).collect();
    let config = config();
    let cx = MapContext { now_ms: NOW, config: &config, parent: None };
    // Both paths, each returning the rows it made: attribute maps (hosts) and stored text (the runner).
    let map = |record: &Doc| {
        let mut mapped = Mapped::default();
        map_record_into(&emits, std::hint::black_box(record), &cx, &mut mapped).unwrap();
        std::hint::black_box(mapped).rows.len()
    };
    let text = |record: &Doc| {
        let mut mapped = MappedText::default();
        map_record_text_into(&emits, std::hint::black_box(record), &cx, &mut mapped).unwrap();
        std::hint::black_box(mapped).rows.len()
    };
    for (name, path) in [("maps", &map as &dyn Fn(&Doc) -> usize), ("text", &text)] {
        // Warm up the allocator and caches so the timed loops measure steady state.
        for record in docs.iter().take(1000) {
            path(record);
        }
        let started = std::time::Instant::now();
        let rows: usize = docs.iter().map(path).sum();
        let cold = started.elapsed().as_nanos() as f64 / N as f64;
        assert_eq!(rows, N);
        // A runner maps each page right after parsing it, so the page is still in cache: measure that too.
        let page = &docs[..1000];
        let started = std::time::Instant::now();
        for i in 0..N {
            path(&page[i % page.len()]);
        }
        let hot = started.elapsed().as_nanos() as f64 / N as f64;
        println!(
            "map ({name}): {N} distinct sign-in records: {cold:.0} ns/record ({:.0} ns per mapped field of 14); \
             the same count from one page of 1,000 in cache: {hot:.0} ns/record",
            cold / 14.0
        );
    }
}
