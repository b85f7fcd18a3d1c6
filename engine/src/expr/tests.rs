//! Behavioural tests of the expression module: the language facts inherited from evalexpr, the
//! safety limits, every builtin with its edge cases, host dispatch, JSON conversion and
//! templates. They exercise only the public API, as the rest of the engine will.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::*;

/// A scope with variables, a pinned clock and a few host functions that record their calls.
struct TestScope {
    vars: HashMap<String, Value>,
    now: i64,
    host_calls: RefCell<Vec<(String, Vec<Value>)>>,
}

impl TestScope {
    fn new() -> Self {
        TestScope { vars: HashMap::new(), now: 1_700_000_000_000, host_calls: RefCell::new(Vec::new()) }
    }

    fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.vars.insert(name.to_string(), value.into());
        self
    }
}

impl Scope for TestScope {
    fn variable(&self, name: &str) -> Option<Value> {
        self.vars.get(name).cloned()
    }

    fn now_ms(&self) -> i64 {
        self.now
    }

    fn call_host(&self, name: &str, args: &[&Value]) -> Option<Result<Value, EvalError>> {
        self.host_calls.borrow_mut().push((name.to_string(), args.iter().map(|a| (*a).clone()).collect()));
        match name {
            "lookup" => Some(match (args[0], args[1], args[2]) {
                (Value::String(t), Value::String(id), Value::String(attr))
                    if t == "user" && id == "u1" && attr == "name" =>
                {
                    Ok(Value::from("Ada"))
                }
                (Value::String(t), _, _) if t == "broken" => Err(EvalError::new("store is unavailable")),
                _ => Ok(Value::Empty),
            }),
            "exists" => Some(Ok(Value::Boolean(*args[1] == Value::from("u1")))),
            _ => None,
        }
    }
}

fn eval_in(source: &str, scope: &dyn Scope) -> Result<Value, EvalError> {
    compile(source).unwrap_or_else(|e| panic!("`{source}` should compile: {e}")).eval(scope)
}

fn eval(source: &str) -> Value {
    eval_in(source, &TestScope::new()).unwrap_or_else(|e| panic!("`{source}` failed: {e}"))
}

fn eval_err(source: &str) -> String {
    match eval_in(source, &TestScope::new()) {
        Ok(value) => panic!("`{source}` should fail, got {value:?}"),
        Err(error) => error.message,
    }
}

fn compile_err(source: &str) -> ExprError {
    match compile(source) {
        Ok(_) => panic!("`{source}` should not compile"),
        Err(error) => error,
    }
}

fn float(source: &str) -> f64 {
    match eval(source) {
        Value::Float(f) => f,
        other => panic!("`{source}` should be a float, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Compilation and the language facts inherited from evalexpr.

#[test]
fn compile_lists_sorted_unique_variables_and_functions() {
    let expr = compile("percent(b.count, a, 1) + ratio(a, b.count) + if(c, 1, 2)").unwrap();
    assert_eq!(expr.variables(), ["a", "b.count", "c"]);
    assert_eq!(expr.functions(), ["if", "percent", "ratio"]);
    assert_eq!(expr.source(), "percent(b.count, a, 1) + ratio(a, b.count) + if(c, 1, 2)");
    assert_eq!(expr.to_string(), expr.source());
}

#[test]
fn dotted_identifiers_are_single_variables() {
    let scope = TestScope::new().with("user.count", 4);
    assert_eq!(eval_in("user.count * 2", &scope), Ok(Value::Int(8)));
}

#[test]
fn integer_division_truncates_and_division_by_zero_is_an_error() {
    assert_eq!(eval("7 / 2"), Value::Int(3));
    assert_eq!(eval("7.0 / 2"), Value::Float(3.5));
    assert!(eval_err("1 / 0").contains("division by zero"));
    assert_eq!(eval("1.0 / 0"), Value::Float(f64::INFINITY));
}

#[test]
fn equality_is_type_strict() {
    assert_eq!(eval("1 == 1.0"), Value::Boolean(false));
    assert_eq!(eval("1 == 1"), Value::Boolean(true));
    assert_eq!(eval("\"1\" == 1"), Value::Boolean(false));
    // Ordering comparisons do mix ints and floats.
    assert_eq!(eval("1 < 1.5"), Value::Boolean(true));
}

#[test]
fn some_words_are_literals_not_variables() {
    assert_eq!(eval("inf > 1"), Value::Boolean(true));
    assert_eq!(eval("math::is_nan(NaN)"), Value::Boolean(true));
    assert_eq!(eval("true && !false"), Value::Boolean(true));
    assert!(compile("inf").unwrap().variables().is_empty());
}

#[test]
fn single_ampersand_is_explained() {
    assert!(compile_err("a & b").message.contains("use `&&`"));
}

#[test]
fn empty_value_has_no_arithmetic() {
    let message = eval_err("() + 1");
    assert!(message.contains("empty"), "{message}");
}

#[test]
fn unbound_variable_error_names_it() {
    let expr = compile("a + missing.value").unwrap();
    let scope = TestScope::new().with("a", 1);
    assert_eq!(expr.eval(&scope).unwrap_err().message, "unknown variable `missing.value`");
}

#[test]
fn nothing_short_circuits() {
    // `false && x` still reads x, so an unbound x is an error even though the result is known.
    let expr = compile("false && x").unwrap();
    assert!(expr.eval(&TestScope::new()).is_err());
    assert_eq!(expr.eval(&TestScope::new().with("x", true)), Ok(Value::Boolean(false)));
    // `if` evaluates both branches before choosing, so a failing branch fails the whole call.
    assert!(eval_err("if(true, 1, 1 / 0)").contains("division by zero"));
    assert_eq!(eval("if(true, 1, 2)"), Value::Int(1));
    assert_eq!(eval("if(false, 1, 2)"), Value::Int(2));
    assert!(eval_err("if(1, 2, 3)").contains("true or false"));
}

#[test]
fn eval_bool_requires_a_boolean() {
    let scope = TestScope::new().with("n", 3);
    assert_eq!(compile("n > 2").unwrap().eval_bool(&scope), Ok(true));
    let error = compile("n + 1").unwrap().eval_bool(&scope).unwrap_err();
    assert!(error.message.contains("true or false"), "{}", error.message);
}

#[test]
fn one_compiled_expression_evaluates_against_many_scopes() {
    let expr = compile("x * 2").unwrap();
    for i in 0..100 {
        let scope = MapScope::new(0).with("x", i);
        assert_eq!(expr.eval(&scope), Ok(Value::Int(i * 2)));
    }
}

#[test]
fn expressions_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expr>();
    assert_send_sync::<Template>();
}

#[test]
fn empty_source_is_rejected() {
    assert_eq!(compile_err("").message, "expression is empty");
    assert_eq!(compile_err("  /* nothing */ ").message, "expression is empty");
}

#[test]
fn assignment_and_chaining_are_rejected_with_offsets() {
    let error = compile_err("x = 5");
    assert_eq!(error.offset, Some(2));
    assert!(error.message.contains("assignment"));
    assert_eq!(compile_err("a += 1").offset, Some(2));
    assert_eq!(compile_err("a && b &&= c").offset, Some(7));
    let error = compile_err("a; b");
    assert_eq!(error.offset, Some(1));
    assert!(error.message.contains(';'));
    // Comparison operators that contain `=` are fine, and so is `=` inside a string.
    assert!(compile("a == b && a != c && a <= b && a >= b && s == \"x=y;\"").is_ok());
}

#[test]
fn syntax_errors_are_reported() {
    assert_eq!(compile_err("1 +").message, "incomplete expression: `+` is missing an operand");
    assert!(compile_err("!").message.contains("missing an operand"));
    assert!(compile_err("1 2").message.starts_with("syntax error"));
    let error = compile_err("(1 + 2");
    assert_eq!((error.message.as_str(), error.offset), ("unclosed `(`", Some(0)));
    let error = compile_err("1 + 2)");
    assert_eq!((error.message.as_str(), error.offset), ("unmatched `)`", Some(5)));
    let error = compile_err("x == \"abc");
    assert_eq!(error.message, "unterminated string literal");
    assert_eq!(error.offset, Some(5));
}

#[test]
fn unknown_function_is_rejected_with_suggestion_and_offset() {
    let error = compile_err("1 + lenn(x)");
    assert_eq!(error.message, "unknown function `lenn`; did you mean `len`?");
    assert_eq!(error.offset, Some(4));
    // The offset points at the call, not at an earlier variable of the same name, and it is a
    // byte offset that respects multi-byte characters before it.
    let error = compile_err("\"é\" + frobnicate + frobnicate(1)");
    assert_eq!(error.message, "unknown function `frobnicate`");
    assert_eq!(error.offset, Some(20));
}

#[test]
fn evalexpr_builtins_outside_the_registry_are_unreachable() {
    // `str::substring` panics on non-character boundaries and `shl` overflows; neither may run.
    assert!(compile_err("str::substring(\"héllo\", 0, 2)").message.starts_with("unknown function `str::substring`"));
    assert!(compile_err("shl(1, 64)").message.starts_with("unknown function"));
    assert!(compile_err("random()").message.starts_with("unknown function"));
}

#[test]
fn arity_is_checked_at_compile_time() {
    let error = compile_err("ratio(1)");
    assert_eq!(error.message, "`ratio` takes 2 arguments, got 1");
    assert_eq!(error.offset, Some(0));
    assert_eq!(compile_err("now(1)").message, "`now` takes 0 arguments, got 1");
    assert_eq!(compile_err("len()").message, "`len` takes 1 argument, got 0");
    assert!(compile_err("coalesce()").message.contains("at least 1"));
    assert!(compile_err("switch(1, 2, 3)").message.contains("even number"));
    assert!(compile_err("switch(1, 2, 3, 4, 5)").message.contains("got 5"));
    // The second call is the bad one, and the offset says so.
    assert_eq!(compile_err("ratio(1, 2) + ratio(3)").offset, Some(14));
}

#[test]
fn every_registry_function_compiles_with_its_minimum_arity() {
    for info in functions() {
        let count = if info.name == "switch" { 4 } else { info.min_args };
        let args = vec!["1"; count].join(", ");
        let source = format!("{}({args})", info.name);
        assert!(compile(&source).is_ok(), "{source}");
    }
}

// ---------------------------------------------------------------------------------------------
// Safety limits.

#[test]
fn overlong_formula_is_rejected() {
    let source = format!("1{}", " + 1".repeat(750));
    assert!(source.len() > 3000 - 10);
    let error = compile_err(&source);
    assert!(error.message.contains("2048 bytes"), "{}", error.message);
}

#[test]
fn hundred_thousand_parentheses_fail_fast_without_overflow() {
    let started = Instant::now();
    let source = "(".repeat(100_000);
    assert!(compile(&source).is_err());
    // Also within the length limit, so that the depth check itself is exercised.
    let source = format!("{}1{}", "(".repeat(1000), ")".repeat(1000));
    let error = compile_err(&source);
    assert!(error.message.contains("nested"), "{}", error.message);
    assert_eq!(error.offset, Some(32));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn parenthesis_depth_limit_is_exact() {
    let ok = format!("{}1{}", "(".repeat(32), ")".repeat(32));
    assert_eq!(eval(&ok), Value::Int(1));
    let too_deep = format!("{}1{}", "(".repeat(33), ")".repeat(33));
    assert!(compile_err(&too_deep).message.contains("nested"));
    let calls = format!("{}1{}", "math::abs(".repeat(32), ")".repeat(32));
    assert_eq!(eval(&calls), Value::Int(1));
}

#[test]
fn parentheses_in_strings_and_comments_do_not_count() {
    let source = format!("\"{}\" == s /* {} */", "(".repeat(40), ")".repeat(40));
    let scope = TestScope::new().with("s", "(".repeat(40));
    assert_eq!(eval_in(&source, &scope), Ok(Value::Boolean(true)));
}

#[test]
fn long_unary_and_exponent_chains_are_rejected_before_parsing() {
    // About 2,000 prefix operators overflow evalexpr's parser on a 2 MiB stack; these must be
    // refused by the pre-scan instead.
    for source in [
        format!("{}1", "-".repeat(2000)),
        format!("{}true", "!".repeat(2000)),
        format!("{}1", "f ".repeat(900)),
        format!("{}2", "2^".repeat(900)),
    ] {
        let error = compile_err(&source);
        assert!(error.message.contains("nested"), "{}", error.message);
    }
    assert_eq!(eval(&format!("{}1", "-".repeat(64))), Value::Int(1));
    assert_eq!(eval("2 - -1"), Value::Int(3));
}

#[test]
fn longest_left_deep_chain_compiles_and_evaluates() {
    // Binary chains are left-deep and do not recurse while parsing; the evaluator recurses about
    // a thousand levels, which the default 2 MiB test thread must survive.
    let source = format!("1{}", "+1".repeat(1023));
    assert!(source.len() <= MAX_SOURCE_BYTES);
    assert_eq!(eval(&source), Value::Int(1024));
}

// ---------------------------------------------------------------------------------------------
// Time functions.

#[test]
fn now_is_the_pinned_clock() {
    assert_eq!(eval("now()"), Value::Int(1_700_000_000_000));
    assert_eq!(eval_in("now() - days(1)", &MapScope::new(86_400_000)), Ok(Value::Int(0)));
}

#[test]
fn durations_in_milliseconds() {
    assert_eq!(eval("days(2)"), Value::Int(172_800_000));
    assert_eq!(eval("hours(1)"), Value::Int(3_600_000));
    assert_eq!(eval("minutes(3)"), Value::Int(180_000));
    assert_eq!(eval("seconds(5)"), Value::Int(5_000));
    assert_eq!(eval("days(1.5)"), Value::Int(129_600_000));
    // Fractions are truncated towards zero.
    assert_eq!(eval("seconds(0.0019)"), Value::Int(1));
    assert_eq!(eval("seconds(-0.0019)"), Value::Int(-1));
    assert!(eval_err("days(9223372036854775807)").contains("too large"));
    assert!(eval_err("days(\"1\")").contains("must be a number"));
}

#[test]
fn unix_ms_parses_and_floors() {
    assert_eq!(eval("unix_ms(\"2020-03-13T19:15:41.6195833Z\")"), Value::Int(1_584_126_941_619));
    assert_eq!(eval("unix_ms(\"2019-02-07T21:16:33Z\")"), Value::Int(1_549_574_193_000));
    assert_eq!(eval("unix_ms(\"2019-02-07T23:16:33+02:00\")"), Value::Int(1_549_574_193_000));
    assert_eq!(eval("unix_ms(\"2019-02-07 21:16:33Z\")"), Value::Int(1_549_574_193_000));
    assert_eq!(eval("unix_ms(\"2019-02-07T21:16:33\")"), Value::Int(1_549_574_193_000));
    assert_eq!(eval("unix_ms(\"2024-05-01\")"), Value::Int(1_714_521_600_000));
    // Before 1970, flooring moves towards the past: 0.1 ms before the epoch is -1 ms, not 0.
    assert_eq!(eval("unix_ms(\"1969-12-31T23:59:59.9999Z\")"), Value::Int(-1));
    assert_eq!(eval("unix_ms(())"), Value::Empty);
    assert!(eval_err("unix_ms(\"yesterday\")").contains("not a valid timestamp"));
    assert!(eval_err("unix_ms(5)").contains("timestamp string"));
}

#[test]
fn parse_timestamp_ms_is_strict_about_offsets() {
    assert_eq!(parse_timestamp_ms(" 1970-01-01T00:00:00.001Z "), Ok(1));
    assert_eq!(parse_timestamp_ms("1970-01-01T00:00:00.0009999Z"), Ok(0));
    assert_eq!(parse_timestamp_ms("1969-12-31T23:59:59.999999999Z"), Ok(-1));
    assert_eq!(parse_timestamp_ms("1970-01-01T01:00:00+0100"), Ok(0));
    // An invalid offset must not fall back to reading the text as UTC.
    assert!(parse_timestamp_ms("2019-02-07T21:16:33[UTC]").is_err());
    assert!(parse_timestamp_ms("2019-02-07T21:16:33+26:00").is_err());
    assert!(parse_timestamp_ms("2019-02-07T21:16:33.1234567891Z").is_err());
    assert!(parse_timestamp_ms("2024-02-30").is_err());
    assert!(parse_timestamp_ms("").is_err());
}

#[test]
fn iso_formats_utc_with_optional_milliseconds() {
    assert_eq!(eval("iso(0)"), Value::from("1970-01-01T00:00:00Z"));
    assert_eq!(eval("iso(1700000000123)"), Value::from("2023-11-14T22:13:20.123Z"));
    assert_eq!(eval("iso(-1)"), Value::from("1969-12-31T23:59:59.999Z"));
    assert_eq!(eval("iso(())"), Value::Empty);
    assert_eq!(eval("unix_ms(iso(1584126941619))"), Value::Int(1_584_126_941_619));
    assert!(eval_err("iso(1.5)").contains("integer"));
    assert!(eval_err("iso(9223372036854775807)").contains("not a representable instant"));
}

// ---------------------------------------------------------------------------------------------
// Numbers.

#[test]
fn ratio_is_a_float_and_zero_for_a_zero_denominator() {
    assert_eq!(float("ratio(1, 4)"), 0.25);
    assert_eq!(float("ratio(1, 0)"), 0.0);
    assert_eq!(float("ratio(1.5, 0.0)"), 0.0);
    assert_eq!(float("ratio(3, 1.5)"), 2.0);
    assert!(eval_err("ratio(\"1\", 2)").contains("argument 1 must be a number"));
}

#[test]
fn percent_is_exact_for_integers() {
    assert_eq!(float("percent(1, 16, 1)"), 6.3);
    assert_eq!(float("percent(1, 8, 1)"), 12.5);
    assert_eq!(float("percent(2, 3, 1)"), 66.7);
    assert_eq!(float("percent(1, 3, 2)"), 33.33);
    assert_eq!(float("percent(2, 3, 0)"), 67.0);
    assert_eq!(float("percent(5, 0, 1)"), 0.0);
    assert_eq!(float("percent(-1, 16, 1)"), -6.3);
    assert_eq!(float("percent(1, -16, 1)"), -6.3);
    assert_eq!(float("percent(0, -16, 1)"), 0.0);
    assert_eq!(float("percent(1, 200000, 1)"), 0.0);
    assert_eq!(float("percent(9223372036854775807, 9223372036854775807, 12)"), 100.0);
    assert_eq!(float("percent(1.0, 16, 1)"), 6.3);
    assert_eq!(float("percent(1, 0.0, 1)"), 0.0);
    assert!(eval_err("percent(1, 2, -1)").contains("digits"));
    assert!(eval_err("percent(1, 2, 13)").contains("digits"));
    assert_eq!(percent(Number::Int(1), Number::Int(16), 1), 6.3);
}

#[test]
fn round_half_away_uses_the_printed_decimal() {
    assert_eq!(float("round_half_away(0.285, 2)"), 0.29);
    assert_eq!(float("round_half_away(6.25, 1)"), 6.3);
    assert_eq!(float("round_half_away(-2.5, 0)"), -3.0);
    assert_eq!(float("round_half_away(2.675, 2)"), 2.68);
    assert_eq!(float("round_half_away(1.005, 2)"), 1.01);
    assert_eq!(float("round_half_away(9.995, 2)"), 10.0);
    assert_eq!(float("round_half_away(0.1234, 6)"), 0.1234);
    assert_eq!(float("round_half_away(12, 1)"), 12.0);
    let tiny = float("round_half_away(-0.004, 2)");
    assert!(tiny == 0.0 && tiny.is_sign_positive());
    assert_eq!(round_half_away(1e300, 2), 1e300);
    assert!(round_half_away(f64::NAN, 2).is_nan());
    assert!(eval_err("round_half_away(1.5, 1.0)").contains("digits"));
}

#[test]
fn min_max_and_rounding_builtins() {
    assert_eq!(eval("min(3, 1, 2)"), Value::Int(1));
    assert_eq!(eval("max(3, 1, 2)"), Value::Int(3));
    assert_eq!(eval("min(1, 0.5)"), Value::Float(0.5));
    assert_eq!(eval("max(1, 0.5)"), Value::Float(1.0));
    assert_eq!(eval("min(7)"), Value::Int(7));
    let scope = TestScope::new().with("xs", Value::Tuple(vec![4.into(), 9.into()]));
    assert_eq!(eval_in("max(xs)", &scope), Ok(Value::Int(9)));
    assert!(eval_err("min(1, ())").contains("argument 2 must be a number"));
    assert_eq!(eval("floor(2.7)"), Value::Float(2.0));
    assert_eq!(eval("ceil(2.1)"), Value::Float(3.0));
    assert_eq!(eval("round(2.5)"), Value::Float(3.0));
    assert_eq!(eval("round(3)"), Value::Float(3.0));
    assert_eq!(eval("math::abs(-3)"), Value::Int(3));
    assert_eq!(eval("math::abs(-3.5)"), Value::Float(3.5));
    assert!(eval_err("math::abs(-9223372036854775807 - 1)").contains("overflow"));
    assert_eq!(eval("math::pow(2, 10)"), Value::Float(1024.0));
    assert_eq!(eval("math::sqrt(16)"), Value::Float(4.0));
    assert_eq!(eval("math::log(8, 2)"), Value::Float(3.0));
    assert_eq!(eval("math::log10(1000)"), Value::Float(3.0));
    assert_eq!(eval("math::is_nan(0.0 / 0)"), Value::Boolean(true));
    assert_eq!(eval("math::is_finite(1.0 / 0)"), Value::Boolean(false));
    assert_eq!(eval("math::is_infinite(1.0 / 0)"), Value::Boolean(true));
    assert_eq!(eval("typeof(1.5)"), Value::from("float"));
    assert_eq!(eval("typeof(())"), Value::from("empty"));
}

// ---------------------------------------------------------------------------------------------
// Values and text.

#[test]
fn coalesce_returns_the_first_non_empty_argument() {
    let scope = TestScope::new().with("a", Value::Empty).with("b", "x");
    assert_eq!(eval_in("coalesce(a, b, 3)", &scope), Ok(Value::from("x")));
    assert_eq!(eval_in("coalesce(a, ())", &scope), Ok(Value::Empty));
    assert_eq!(eval_in("coalesce(a, 0)", &scope), Ok(Value::Int(0)));
}

#[test]
fn is_empty_covers_empty_values_only() {
    let scope =
        TestScope::new().with("list", from_json(&serde_json::json!([]))).with("obj", from_json(&serde_json::json!({})));
    for (source, expected) in [
        ("is_empty(())", true),
        ("is_empty(\"\")", true),
        ("is_empty(list)", true),
        ("is_empty(\" \")", false),
        ("is_empty(0)", false),
        ("is_empty(false)", false),
        ("is_empty(obj)", false),
    ] {
        assert_eq!(eval_in(source, &scope), Ok(Value::Boolean(expected)), "{source}");
    }
}

#[test]
fn contains_on_tuples_strings_and_empty() {
    assert_eq!(eval("contains((1, 2, 3), 2)"), Value::Boolean(true));
    assert_eq!(eval("contains((1, 2, 3), 2.0)"), Value::Boolean(false));
    assert_eq!(eval("contains(\"administrator\", \"min\")"), Value::Boolean(true));
    assert_eq!(eval("contains((), 1)"), Value::Boolean(false));
    assert!(eval_err("contains(5, 1)").contains("argument 1"));
    assert!(eval_err("contains(\"abc\", 1)").contains("only contain a string"));
    assert_eq!(eval("contains_any((\"a\", \"b\"), (\"x\", \"b\"))"), Value::Boolean(true));
    assert_eq!(eval("contains_any((), (\"x\", \"b\"))"), Value::Boolean(false));
    assert_eq!(eval("contains_any(\"hello\", \"ell\")"), Value::Boolean(true));
}

#[test]
fn len_counts_characters_and_elements() {
    // Unlike evalexpr's own `len`, which counts UTF-8 bytes (6 here).
    assert_eq!(eval("len(\"héllo\")"), Value::Int(5));
    assert_eq!(eval("len((1, 2, 3))"), Value::Int(3));
    assert_eq!(eval("len(())"), Value::Int(0));
    assert!(eval_err("len(5)").contains("string or a tuple"));
    assert_eq!(eval("count_of((1, 2))"), Value::Int(2));
    assert_eq!(eval("count_of(())"), Value::Int(0));
    assert_eq!(eval("count_of(\"abc\")"), Value::Int(1));
    // A tuple-valued variable passed alone stays one argument.
    let scope = TestScope::new().with("xs", Value::Tuple(vec![1.into(), 2.into()]));
    assert_eq!(eval_in("len(xs)", &scope), Ok(Value::Int(2)));
}

#[test]
fn string_functions() {
    assert_eq!(eval("lower(\"ÀBC\")"), Value::from("àbc"));
    assert_eq!(eval("upper(\"abc\")"), Value::from("ABC"));
    assert_eq!(eval("trim(\"  a b \")"), Value::from("a b"));
    assert_eq!(eval("lower(())"), Value::Empty);
    assert_eq!(eval("upper(())"), Value::Empty);
    assert_eq!(eval("trim(())"), Value::Empty);
    assert!(eval_err("lower(1)").contains("expects a string"));
    assert_eq!(eval("starts_with(\"abc\", \"ab\")"), Value::Boolean(true));
    assert_eq!(eval("ends_with(\"abc\", \"bc\")"), Value::Boolean(true));
    assert_eq!(eval("ends_with(\"abc\", \"ab\")"), Value::Boolean(false));
    assert_eq!(eval("starts_with((), \"ab\")"), Value::Boolean(false));
    assert_eq!(eval("ends_with((), \"ab\")"), Value::Boolean(false));
    assert!(eval_err("starts_with(\"abc\", 1)").contains("argument 2"));
}

#[test]
fn origin_of_urls() {
    assert_eq!(
        eval("origin(\"https://Login.Example.test:8443/a/b?c=d#e\")"),
        Value::from("https://login.example.test:8443")
    );
    assert_eq!(eval("origin(\"https://api.example.test:443/v1\")"), Value::from("https://api.example.test"));
    assert_eq!(eval("origin(\"http://[::1]:8080/x\")"), Value::from("http://[::1]:8080"));
    assert_eq!(eval("origin(())"), Value::Empty);
    assert!(eval_err("origin(\"/relative/path\")").contains("not an absolute URL"));
    assert!(eval_err("origin(\"mailto:someone@example.test\")").contains("no host"));
}

#[test]
fn switch_picks_the_matching_result_or_the_default() {
    let scope = TestScope::new().with("level", "high");
    let source = "switch(level, \"low\", 1, \"high\", 3, 0)";
    assert_eq!(eval_in(source, &scope), Ok(Value::Int(3)));
    let scope = TestScope::new().with("level", "unknown");
    assert_eq!(eval_in(source, &scope), Ok(Value::Int(0)));
    // Keys compare type-strictly.
    assert_eq!(eval("switch(1, \"1\", \"text\", 1.0, \"float\", \"none\")"), Value::from("none"));
}

#[test]
fn conversions() {
    assert_eq!(eval("to_int(\"42\")"), Value::Int(42));
    assert_eq!(eval("to_int(\" 4.7 \")"), Value::Int(4));
    assert_eq!(eval("to_int(-3.9)"), Value::Int(-3));
    assert_eq!(eval("to_int(true)"), Value::Int(1));
    assert_eq!(eval("to_int(())"), Value::Empty);
    assert!(eval_err("to_int(\"x\")").contains("not a number"));
    assert!(eval_err("to_int(1.0 / 0)").contains("does not fit"));
    assert_eq!(eval("to_float(\"1e3\")"), Value::Float(1000.0));
    assert_eq!(eval("to_float(2)"), Value::Float(2.0));
    assert_eq!(eval("to_float(())"), Value::Empty);
    assert!(eval_err("to_float(\"inf\")").contains("finite"));
    assert_eq!(eval("to_string(2.0)"), Value::from("2"));
    assert_eq!(eval("to_string(1.5)"), Value::from("1.5"));
    assert_eq!(eval("to_string(12)"), Value::from("12"));
    assert_eq!(eval("to_string((1, \"a\"))"), Value::from("1,a"));
    assert_eq!(eval("to_string(())"), Value::Empty);
    assert_eq!(eval("str::from(())"), Value::from("()"));
}

// ---------------------------------------------------------------------------------------------
// Host functions and the registry.

#[test]
fn host_functions_are_dispatched_to_the_scope() {
    let scope = TestScope::new().with("id", "u1");
    assert_eq!(eval_in("lookup(\"user\", id, \"name\")", &scope), Ok(Value::from("Ada")));
    assert_eq!(eval_in("lookup(\"user\", \"u2\", \"name\")", &scope), Ok(Value::Empty));
    assert_eq!(eval_in("exists(\"user\", id)", &scope), Ok(Value::Boolean(true)));
    assert_eq!(
        scope.host_calls.borrow()[0],
        ("lookup".to_string(), vec![Value::from("user"), Value::from("u1"), Value::from("name")])
    );
    assert_eq!(eval_in("lookup(\"broken\", 1, 2)", &scope).unwrap_err().message, "store is unavailable");
    // This host does not provide has_edge, and MapScope provides no host functions at all.
    assert_eq!(
        eval_in("has_edge(\"a\", 1, \"k\", \"b\", 2)", &scope).unwrap_err().message,
        "function `has_edge` is not available here"
    );
    assert_eq!(
        eval_in("exists(\"user\", \"u1\")", &MapScope::new(0)).unwrap_err().message,
        "function `exists` is not available here"
    );
}

#[test]
fn registry_is_consistent() {
    let mut names: Vec<&str> = functions().iter().map(|f| f.name).collect();
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "duplicate function names");
    for info in functions() {
        assert!(
            info.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':'),
            "{}",
            info.name
        );
        assert!(info.signature.starts_with(info.name), "{}", info.name);
        assert!(!info.summary.is_empty());
        assert_eq!(info.host, matches!(info.name, "lookup" | "exists" | "has_edge"), "{}", info.name);
    }
    for name in ["if", "min", "max", "floor", "round", "ceil", "len", "math::abs", "str::from"] {
        assert!(is_known_function(name), "{name}");
    }
    assert!(!is_known_function("str::substring"));
}

#[test]
fn suggestions_use_edit_distance() {
    assert_eq!(suggest_function("lenn"), Some("len"));
    assert_eq!(suggest_function("ratoi"), Some("ratio"));
    assert_eq!(suggest_function("pecent"), Some("percent"));
    assert_eq!(suggest_function("LOWER"), Some("lower"));
    assert_eq!(suggest_function("coalese"), Some("coalesce"));
    assert_eq!(suggest_function("xyzzy_plugh"), None);
}

// ---------------------------------------------------------------------------------------------
// JSON conversion.

#[test]
fn json_to_values_and_back() {
    use serde_json::json;
    assert_eq!(from_json(&json!(null)), Value::Empty);
    assert_eq!(from_json(&json!(true)), Value::Boolean(true));
    assert_eq!(from_json(&json!(7)), Value::Int(7));
    assert_eq!(from_json(&json!(1.5)), Value::Float(1.5));
    assert_eq!(from_json(&json!(u64::MAX)), Value::Float(u64::MAX as f64));
    assert_eq!(
        from_json(&json!([1, "a", [null]])),
        Value::Tuple(vec![Value::Int(1), Value::from("a"), Value::Tuple(vec![Value::Empty])])
    );
    assert_eq!(from_json(&json!({"b": 1, "a": [2]})), Value::from("{\"b\":1,\"a\":[2]}"));

    assert_eq!(to_json(&Value::Empty), json!(null));
    assert_eq!(to_json(&Value::Float(f64::NAN)), json!(null));
    assert_eq!(to_json(&Value::Float(f64::INFINITY)), json!(null));
    let round_trip = json!([1, 2.5, "x", true, null, [3]]);
    assert_eq!(to_json(&from_json(&round_trip)), round_trip);
}

// ---------------------------------------------------------------------------------------------
// Templates.

#[test]
fn template_renders_holes_through_the_encoder() {
    let template = compile_template("{config.login_base_url}/{config.tenant_id}/oauth2/v2.0/token").unwrap();
    assert_eq!(template.variables(), ["config.login_base_url", "config.tenant_id"]);
    assert!(template.functions().is_empty());
    assert!(!template.is_literal());
    assert_eq!(template.literal_prefix(), "");
    assert_eq!(template.parts().len(), 4);
    let scope =
        TestScope::new().with("config.login_base_url", "https://login.example.test").with("config.tenant_id", "a/b?c");
    assert_eq!(template.render(&scope, &encode_none).unwrap(), "https://login.example.test/a/b?c/oauth2/v2.0/token");
    let path = compile_template("https://api.example.test/users/{id}/groups").unwrap();
    assert_eq!(path.literal_prefix(), "https://api.example.test/users/");
    let scope = TestScope::new().with("id", "a/b?c#d@e:f");
    assert_eq!(
        path.render(&scope, &encode_path_segment).unwrap(),
        "https://api.example.test/users/a%2Fb%3Fc%23d%40e%3Af/groups"
    );
}

#[test]
fn template_value_text() {
    let template = compile_template("n={n}&f={f}&b={b}&t={t}&s={upper(s)}").unwrap();
    assert_eq!(template.functions(), ["upper"]);
    let scope = TestScope::new()
        .with("n", 42)
        .with("f", 2.5)
        .with("b", true)
        .with("t", Value::Tuple(vec!["id".into(), "name".into()]))
        .with("s", "x");
    assert_eq!(template.render(&scope, &encode_none).unwrap(), "n=42&f=2.5&b=true&t=id,name&s=X");
}

#[test]
fn template_empty_hole_value_is_an_error() {
    let template = compile_template("/users/{ user.id }").unwrap();
    let scope = TestScope::new().with("user.id", Value::Empty);
    assert_eq!(
        template.render(&scope, &encode_path_segment).unwrap_err().message,
        "template hole `user.id` has no value"
    );
    let scope = TestScope::new().with("user.id", f64::NAN);
    assert!(template.render(&scope, &encode_path_segment).unwrap_err().message.contains("not a finite number"));
}

#[test]
fn template_literal_braces() {
    let template = compile_template("{{\"a\": {x}}} and }}{{").unwrap();
    let scope = TestScope::new().with("x", 1);
    assert_eq!(template.render(&scope, &encode_none).unwrap(), "{\"a\": 1} and }{");
    let literal = compile_template("plain {{text}}").unwrap();
    assert!(literal.is_literal());
    assert_eq!(literal.literal_prefix(), "plain {text}");
    assert_eq!(literal.source(), "plain {{text}}");
    assert_eq!(literal.render(&TestScope::new(), &encode_none).unwrap(), "plain {text}");
    assert!(compile_template("").unwrap().is_literal());
}

#[test]
fn template_braces_inside_string_literals_do_not_close_holes() {
    let template = compile_template("a{coalesce(x, \"}{\\\"\")}b").unwrap();
    let scope = TestScope::new().with("x", Value::Empty);
    assert_eq!(template.render(&scope, &encode_none).unwrap(), "a}{\"b");
}

#[test]
fn template_errors_carry_offsets() {
    let error = compile_template("ab{x").unwrap_err();
    assert_eq!((error.message.as_str(), error.offset), ("unclosed `{` in template", Some(2)));
    let error = compile_template("é}x").unwrap_err();
    assert_eq!(error.offset, Some(2));
    assert!(error.message.contains("stray `}`"));
    let error = compile_template("x{ }").unwrap_err();
    assert_eq!(error.offset, Some(1));
    assert!(error.message.contains("empty template hole"));
    let error = compile_template("/a/{lenn(x)}").unwrap_err();
    assert_eq!(error.offset, Some(4));
    assert!(error.message.contains("did you mean `len`"), "{}", error.message);
    let error = compile_template("/a/{x = 1}").unwrap_err();
    assert_eq!(error.offset, Some(6));
    let error = compile_template("/a/{x {y}}").unwrap_err();
    assert_eq!(error.offset, Some(6));
    // A syntax error without a position of its own points at the start of the hole's text.
    let error = compile_template("/a/{x +}").unwrap_err();
    assert_eq!(error.offset, Some(4));
}

#[test]
fn path_segment_encoding() {
    assert_eq!(encode_path_segment("a/b?c#d@e:f"), "a%2Fb%3Fc%23d%40e%3Af");
    assert_eq!(encode_path_segment("Az09-._~"), "Az09-._~");
    assert_eq!(encode_path_segment("a b%é"), "a%20b%25%C3%A9");
    assert_eq!(encode_path_segment(".."), "..");
    assert_eq!(encode_path_segment_strict("x.y"), Ok("x.y".to_string()));
    assert!(encode_path_segment_strict("..").is_err());
    assert!(encode_path_segment_strict(".").is_err());
    assert!(encode_path_segment_strict("").is_err());
    assert_eq!(encode_none("a/b"), "a/b");

    let template = compile_template("/users/{id}").unwrap();
    let scope = TestScope::new().with("id", "..");
    let error = template.render_with(&scope, &encode_path_segment_strict).unwrap_err();
    assert!(error.message.starts_with("template hole `id`:"), "{}", error.message);
}

// ---------------------------------------------------------------------------------------------
// Robustness.

#[test]
fn random_token_soup_never_panics() {
    // A deterministic linear congruential generator keeps the test reproducible without a
    // dependency; the alphabet covers every token class of the language.
    const TOKENS: &[&str] = &[
        "(", ")", "(", ")", ",", "+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">=", "&&", "||", "!", "1",
        "2.5", "0", "\"s\"", "\"\"", "true", "x", "t", "e", "()", "len", "if", "min", "coalesce", "switch", "percent",
        "lookup", "now", "contains", " ", "=", ";", "\"(\"", "/*c*/", "1e", "inf",
    ];
    let scope =
        TestScope::new().with("x", 3).with("t", Value::Tuple(vec![1.into(), "a".into()])).with("e", Value::Empty);
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    let mut compiled = 0;
    for _ in 0..20_000 {
        let length = 1 + next() % 12;
        let source: String = (0..length).map(|_| TOKENS[next() % TOKENS.len()]).collect();
        if let Ok(expr) = compile(&source) {
            compiled += 1;
            let _ = expr.eval(&scope);
            let _ = compile_template(&format!("a{{{source}}}b"));
        }
    }
    assert!(compiled > 100, "only {compiled} random expressions compiled");
}

/// The direct evaluator agrees with evalexpr on every expression it answers, over operands of every
/// type: the cases where evalexpr fails must be the ones it leaves to evalexpr.
#[test]
fn the_fast_path_gives_evalexprs_result_or_defers() {
    let sources = [
        "a == b",
        "a != b",
        "a < b",
        "a <= b",
        "a > b",
        "a >= b",
        "a && b",
        "a || b",
        "!a",
        "-a",
        "a + b",
        "a - b",
        "a * b",
        "a / b",
        "a % b",
        "(a, b) == (a, b)",
        "(a, b)",
        "a == true && b != \"Guest\"",
        "coalesce(a, 0) < now() - days(90)",
        "contains(a, \"All\") && count_of(b) == 0",
        "!is_empty(a) || b",
        "if(a, 1, 2)",
        "a ^ b",
        "percent(a, b, 1)",
        "switch(a, 1, \"x\", \"y\")",
        "lower(a)",
        "typeof(a) == \"int\"",
        "a == 1.0",
        "7 / 2",
        "1 / 0",
        "1.0 / 0",
        "9223372036854775807 + 1",
        "-(-9223372036854775807 - 1)",
        "\"a\" + \"b\"",
        "\"a\" + 1",
        "a == ()",
        "() == ()",
        "nan > 1",
        "nan == nan",
        "()",
    ];
    let values = [
        Value::Int(0),
        Value::Int(3),
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::Float(2.5),
        Value::Float(3.0),
        Value::Float(f64::NAN),
        Value::String("Guest".into()),
        Value::String("All".into()),
        Value::Boolean(true),
        Value::Boolean(false),
        Value::Empty,
        Value::Tuple(vec![Value::String("All".into()), Value::Int(1)]),
    ];
    let same = |x: &Value, y: &Value| format!("{x:?}") == format!("{y:?}");
    let mut answered = 0;
    for source in sources {
        let expr = compile(source).unwrap_or_else(|e| panic!("{source}: {e:?}"));
        for a in &values {
            for b in &values {
                let scope = TestScope::new().with("a", a.clone()).with("b", b.clone());
                let slow = expr.eval_slow(&scope);
                if let Some(fast) = expr.program.eval(&scope) {
                    answered += 1;
                    match &slow {
                        Ok(slow) => assert!(same(&fast, slow), "{source} with a={a:?} b={b:?}: {fast:?} != {slow:?}"),
                        Err(e) => panic!("{source} with a={a:?} b={b:?}: fast gave {fast:?}, evalexpr failed: {e:?}"),
                    }
                }
                assert_eq!(format!("{:?}", expr.eval(&scope)), format!("{slow:?}"), "{source} a={a:?} b={b:?}");
                let pinned = expr.pinned(scope.now);
                assert_eq!(
                    format!("{:?}", pinned.eval(&scope)),
                    format!("{slow:?}"),
                    "pinned {source} a={a:?} b={b:?}"
                );
            }
        }
    }
    assert!(answered > 3_000, "the fast path answered only {answered} evaluations");
}

/// Constant subtrees are computed once: at compile time without the clock, when pinned with it; a
/// constant subtree that fails is left for evaluation to report.
#[test]
fn constant_subtrees_are_computed_once() {
    let scope = TestScope::new();
    let clock_only = compile("now() - days(90)").unwrap();
    assert!(!clock_only.program.is_constant());
    let pinned = clock_only.pinned(scope.now);
    assert!(pinned.program.is_constant());
    assert_eq!(pinned.eval(&scope), Ok(Value::Int(scope.now - 90 * 86_400_000)));
    assert!(compile("days(90) * 2").unwrap().program.is_constant());
    assert!(!compile("lookup(\"user\", \"u1\", \"name\")").unwrap().pinned(0).program.is_constant());
    let failing = compile("1 / 0").unwrap();
    assert!(!failing.program.is_constant());
    assert_eq!(failing.eval(&scope).unwrap_err().message, "division by zero in 1 / 0");
    let partly = compile("a < now() - days(1)").unwrap().pinned(scope.now);
    assert_eq!(partly.eval(&TestScope::new().with("a", 0)), Ok(Value::Boolean(true)));
}
