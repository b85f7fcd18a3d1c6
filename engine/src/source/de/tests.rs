use super::*;
use crate::source::parse;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    name: Sp<String>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    kind: Option<Kind>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Kind {
    Plain,
    Settings { size: u32 },
}

fn read(text: &str) -> (Result<Item, Diagnostic>, Vec<Diagnostic>) {
    let node = parse(text).unwrap();
    let sink = RefCell::new(Vec::new());
    let result = from_node::<Item>(&node, &sink);
    (result, sink.into_inner())
}

#[test]
fn spanned_values_carry_their_span() {
    let text = "name: users\n";
    let (item, unknown) = read(text);
    let item = item.unwrap();
    assert!(unknown.is_empty());
    assert_eq!(&text[item.name.span.start..item.name.span.start + item.name.span.len], "users");
    assert_eq!(item.name.sub_span(1, 2), Span::new(7, 2));
}

#[test]
fn every_unknown_key_is_reported_and_skipped() {
    let (item, unknown) = read("name: a\ncont: 1\nkidn: plain\n");
    let item = item.expect("unknown keys do not fail the item");
    assert_eq!((item.count, item.kind), (None, None), "unknown keys are skipped, not guessed");
    let messages: Vec<_> =
        unknown.iter().map(|d| (d.code, d.message.as_str(), d.help.clone().unwrap_or_default())).collect();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].1, "unknown key `cont`");
    assert!(messages[0].2.starts_with("did you mean `count`?"));
    assert_eq!(messages[1].1, "unknown key `kidn`");
    assert!(messages[1].2.starts_with("did you mean `kind`?"));
}

#[test]
fn wrong_types_point_at_the_value() {
    let text = "name: a\ncount: many\n";
    let (item, _) = read(text);
    let d = item.unwrap_err();
    assert_eq!(d.code, Code::WrongType);
    let span = d.span.unwrap();
    assert_eq!(&text[span.start..span.start + span.len], "many");
}

#[test]
fn missing_keys_point_at_the_item() {
    let (item, _) = read("count: 1\n");
    let d = item.unwrap_err();
    assert_eq!(d.code, Code::MissingKey);
    assert_eq!(d.message, "missing key `name`");
}

#[test]
fn enums_are_externally_tagged() {
    let (item, _) = read("name: a\nkind: plain\n");
    assert_eq!(item.unwrap().kind, Some(Kind::Plain));
    let (item, _) = read("name: a\nkind: { settings: { size: 3 } }\n");
    assert_eq!(item.unwrap().kind, Some(Kind::Settings { size: 3 }));
    let (item, _) = read("name: a\nkind: { plain: ~, settings: { size: 3 } }\n");
    assert_eq!(item.unwrap_err().code, Code::Conflict);
    let (item, _) = read("name: a\nkind: plane\n");
    let d = item.unwrap_err();
    assert_eq!(d.help.as_deref(), Some("did you mean `plain`?"));
}

#[test]
fn numbers_read_as_text_where_text_is_expected() {
    let (item, _) = read("name: 999\n");
    assert_eq!(item.unwrap().name.value, "999");
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Policy {
    Omit,
    Null,
}

#[test]
fn yaml_null_selects_a_variant_named_null() {
    let node = parse("null").unwrap();
    let sink = RefCell::new(Vec::new());
    assert_eq!(from_node::<Policy>(&node, &sink).unwrap(), Policy::Null);
    let node = parse("omit").unwrap();
    assert_eq!(from_node::<Policy>(&node, &sink).unwrap(), Policy::Omit);
}
