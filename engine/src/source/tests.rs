use super::*;

fn value<'a>(node: &'a Node, key: &str) -> &'a Node {
    match &node.kind {
        NodeKind::Map(entries) => &entries.iter().find(|(k, _)| k.scalar_text().as_deref() == Some(key)).expect(key).1,
        _ => panic!("not a mapping"),
    }
}

#[test]
fn scalars_know_their_exact_span() {
    let text = "a: hello\nb: 'quoted'\nc: 42\n";
    let root = parse(text).unwrap();
    let a = value(&root, "a");
    assert_eq!(&text[a.span.start..a.span.start + a.span.len], "hello");
    assert_eq!(a.text_offset, Some(0));
    let b = value(&root, "b");
    assert_eq!(&text[b.span.start..b.span.start + b.span.len], "'quoted'");
    assert_eq!(b.text_offset, Some(1), "the value starts after the quote");
    assert_eq!(value(&root, "c").kind, NodeKind::Int(42));
}

#[test]
fn yaml_1_1_booleans_and_octals_stay_text() {
    let root = parse("country: NO\nanswer: y\nmode: 0755\nflag: true\n").unwrap();
    assert_eq!(value(&root, "country").kind, NodeKind::Str("NO".into()));
    assert_eq!(value(&root, "answer").kind, NodeKind::Str("y".into()));
    assert_eq!(value(&root, "mode").kind, NodeKind::Str("0755".into()));
    assert_eq!(value(&root, "flag").kind, NodeKind::Bool(true));
}

#[test]
fn containers_point_at_their_key() {
    let text = "outer:\n  inner: 1\n";
    let root = parse(text).unwrap();
    let outer = value(&root, "outer");
    assert_eq!(&text[outer.anchor().start..outer.anchor().start + outer.anchor().len], "outer");
}

#[test]
fn syntax_errors_are_diagnostics_with_a_place() {
    let diagnostic = parse("a: [1, 2\nb: 3\n").unwrap_err();
    assert_eq!(diagnostic.code, Code::Unreadable);
    assert!(diagnostic.span.is_some());
}

#[test]
fn duplicate_keys_are_refused() {
    let diagnostic = parse("a: 1\na: 2\n").unwrap_err();
    assert!(diagnostic.message.to_lowercase().contains("duplicate"), "{}", diagnostic.message);
}

#[test]
fn alias_bombs_are_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let diagnostic = parse(&text).unwrap_err();
    assert_eq!(diagnostic.code, Code::Limits, "{}", diagnostic.message);
}

#[test]
fn deep_nesting_is_refused() {
    let text = "[".repeat(200) + &"]".repeat(200);
    let diagnostic = parse(&text).unwrap_err();
    assert!(matches!(diagnostic.code, Code::Limits | Code::Unreadable), "{:?}", diagnostic);
}

#[test]
fn huge_text_is_refused_before_parsing() {
    let text = "a: ".to_string() + &"x".repeat(MAX_SPEC_BYTES);
    assert_eq!(parse(&text).unwrap_err().code, Code::Limits);
}

#[test]
fn empty_document_is_null() {
    assert_eq!(parse("").unwrap().kind, NodeKind::Null);
}

#[test]
fn to_json_keeps_structure() {
    let root = parse("a: [1, 'b', null]\nc: { d: 1.5 }\n").unwrap();
    assert_eq!(root.to_json(), serde_json::json!({"a": [1, "b", null], "c": {"d": 1.5}}));
}
