//! The function library: the registry of every function an author may call, the pure
//! implementations of the builtins, and dispatch of host functions to [`Scope::call_host`].
//!
//! All functions are implemented here, including the ones whose names come from evalexpr's own
//! builtin table (`if`, `min`, `floor`, `math::abs`, ...), so evalexpr's table is never consulted.
//! That keeps error messages uniform, lets `len(())` and `contains` handle the empty value, and
//! keeps out evalexpr builtins that can panic. Builtins are pure: they read nothing but their
//! arguments and, for `now()`, the scope's pinned clock. Anything that needs stored data is a
//! host function and lives behind the [`Scope`] trait.

use evalexpr::Value;

use super::numeric::{self, MAX_DIGITS, Number};
use super::time::{format_iso_ms, parse_timestamp_ms};
use super::value::{describe, to_text};
use super::{EvalError, Scope};

/// The implementation of a builtin: it receives the arguments already split and counted.
type Native = fn(&[Value], &dyn Scope) -> Result<Value, String>;

#[derive(Clone, Copy)]
enum Kind {
    Native(Native),
    Host,
}

/// One entry of the function registry.
#[derive(Clone, Copy)]
pub struct FunctionInfo {
    /// The name authors write, e.g. `percent` or `math::abs`.
    pub name: &'static str,
    /// A call template with argument names, e.g. `percent(part, whole, digits)`.
    pub signature: &'static str,
    /// One sentence on what the function returns.
    pub summary: &'static str,
    /// True when the function is provided by [`Scope::call_host`] rather than by this module.
    pub host: bool,
    /// Fewest arguments accepted.
    pub min_args: usize,
    /// Most arguments accepted, None when unbounded.
    pub max_args: Option<usize>,
    kind: Kind,
}

impl std::fmt::Debug for FunctionInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionInfo")
            .field("name", &self.name)
            .field("signature", &self.signature)
            .field("summary", &self.summary)
            .field("host", &self.host)
            .field("min_args", &self.min_args)
            .field("max_args", &self.max_args)
            .finish()
    }
}

impl FunctionInfo {
    /// Why `count` arguments are not acceptable, or None when they are.
    pub fn arity_problem(&self, count: usize) -> Option<String> {
        let name = self.name;
        if name == "switch" && (count < 4 || !count.is_multiple_of(2)) {
            return Some(format!(
                "`switch` takes a value, one or more key/result pairs and a default, as in \
                 switch(value, k1, r1, k2, r2, default), so an even number of at least 4 \
                 arguments; got {count}"
            ));
        }
        let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
        match self.max_args {
            Some(max) if max == self.min_args && count != max => {
                Some(format!("`{name}` takes {max} {}, got {count}", plural(max)))
            }
            Some(max) if count < self.min_args || count > max => {
                Some(format!("`{name}` takes {} to {max} arguments, got {count}", self.min_args))
            }
            None if count < self.min_args => {
                Some(format!("`{name}` takes at least {} {}, got {count}", self.min_args, plural(self.min_args)))
            }
            _ => None,
        }
    }

    /// True when the one argument is passed whole, so that a tuple stays a single argument.
    pub(crate) fn takes_one_whole(&self) -> bool {
        self.min_args == 1 && self.max_args == Some(1)
    }
}

const fn native(
    name: &'static str,
    signature: &'static str,
    summary: &'static str,
    min_args: usize,
    max_args: Option<usize>,
    f: Native,
) -> FunctionInfo {
    FunctionInfo { name, signature, summary, host: false, min_args, max_args, kind: Kind::Native(f) }
}

const fn host(name: &'static str, signature: &'static str, summary: &'static str, args: usize) -> FunctionInfo {
    FunctionInfo { name, signature, summary, host: true, min_args: args, max_args: Some(args), kind: Kind::Host }
}

static FUNCTIONS: &[FunctionInfo] = &[
    // Control and values.
    native(
        "if",
        "if(condition, then, else)",
        "`then` when the condition is true, else `else`; both branches are always evaluated.",
        3,
        Some(3),
        fn_if,
    ),
    native(
        "switch",
        "switch(value, k1, r1, k2, r2, ..., default)",
        "The result paired with the first key equal to the value (type-strict), else the default.",
        4,
        None,
        fn_switch,
    ),
    native(
        "coalesce",
        "coalesce(a, b, ...)",
        "The first argument that is not empty, or empty when all are.",
        1,
        None,
        fn_coalesce,
    ),
    native(
        "is_empty",
        "is_empty(x)",
        "True for the empty value, the empty string and the empty tuple.",
        1,
        Some(1),
        fn_is_empty,
    ),
    native("typeof", "typeof(x)", "The type name: string, int, float, boolean, tuple or empty.", 1, Some(1), fn_typeof),
    native(
        "len",
        "len(x)",
        "Number of characters of a string or elements of a tuple; 0 for empty.",
        1,
        Some(1),
        fn_len,
    ),
    native(
        "count_of",
        "count_of(x)",
        "Number of elements of a tuple, 0 for empty and 1 for any other single value.",
        1,
        Some(1),
        fn_count_of,
    ),
    native(
        "contains",
        "contains(haystack, needle)",
        "Whether a tuple holds the value (type-strict) or a string holds the substring; false for empty.",
        2,
        Some(2),
        fn_contains,
    ),
    native(
        "contains_any",
        "contains_any(haystack, needles)",
        "Whether `contains(haystack, n)` holds for any element n of the needles tuple.",
        2,
        Some(2),
        fn_contains_any,
    ),
    // Time.
    native("now", "now()", "The pinned evaluation clock, in unix milliseconds.", 0, Some(0), fn_now),
    native("days", "days(n)", "n days in milliseconds (fractions truncated towards zero).", 1, Some(1), fn_days),
    native("hours", "hours(n)", "n hours in milliseconds (fractions truncated towards zero).", 1, Some(1), fn_hours),
    native(
        "minutes",
        "minutes(n)",
        "n minutes in milliseconds (fractions truncated towards zero).",
        1,
        Some(1),
        fn_minutes,
    ),
    native(
        "seconds",
        "seconds(n)",
        "n seconds in milliseconds (fractions truncated towards zero).",
        1,
        Some(1),
        fn_seconds,
    ),
    native(
        "unix_ms",
        "unix_ms(timestamp)",
        "An ISO 8601 / RFC 3339 timestamp as unix milliseconds (floored; no offset means UTC); empty stays empty.",
        1,
        Some(1),
        fn_unix_ms,
    ),
    native(
        "iso",
        "iso(ms)",
        "Unix milliseconds as RFC 3339 UTC text ending in Z, with 3 fractional digits unless whole seconds.",
        1,
        Some(1),
        fn_iso,
    ),
    // Numbers.
    native("ratio", "ratio(a, b)", "a / b as a float, and 0.0 when b is zero.", 2, Some(2), fn_ratio),
    native(
        "percent",
        "percent(part, whole, digits)",
        "part / whole * 100 rounded half away from zero to `digits` decimals (exact for integers); 0.0 when whole is zero.",
        3,
        Some(3),
        fn_percent,
    ),
    native(
        "round_half_away",
        "round_half_away(x, digits)",
        "x rounded to `digits` decimals, half away from zero, judged on its printed decimal form.",
        2,
        Some(2),
        fn_round_half_away,
    ),
    native(
        "min",
        "min(a, b, ...)",
        "The smallest number; an int when all arguments are ints, else a float.",
        1,
        None,
        fn_min,
    ),
    native(
        "max",
        "max(a, b, ...)",
        "The largest number; an int when all arguments are ints, else a float.",
        1,
        None,
        fn_max,
    ),
    native("floor", "floor(x)", "x rounded down, as a float.", 1, Some(1), fn_floor),
    native(
        "round",
        "round(x)",
        "x rounded to the nearest integer (half away from zero on the binary value), as a float.",
        1,
        Some(1),
        fn_round,
    ),
    native("ceil", "ceil(x)", "x rounded up, as a float.", 1, Some(1), fn_ceil),
    native("math::abs", "math::abs(x)", "The absolute value, keeping ints as ints.", 1, Some(1), fn_abs),
    native("math::sqrt", "math::sqrt(x)", "The square root, as a float.", 1, Some(1), fn_sqrt),
    native("math::pow", "math::pow(x, y)", "x raised to the power y, as a float.", 2, Some(2), fn_pow),
    native("math::ln", "math::ln(x)", "The natural logarithm, as a float.", 1, Some(1), fn_ln),
    native("math::log", "math::log(x, base)", "The logarithm of x in the given base, as a float.", 2, Some(2), fn_log),
    native("math::log10", "math::log10(x)", "The base-10 logarithm, as a float.", 1, Some(1), fn_log10),
    native("math::exp", "math::exp(x)", "e raised to the power x, as a float.", 1, Some(1), fn_exp),
    native("math::is_nan", "math::is_nan(x)", "Whether x is not a number.", 1, Some(1), fn_is_nan),
    native("math::is_finite", "math::is_finite(x)", "Whether x is neither infinite nor NaN.", 1, Some(1), fn_is_finite),
    native(
        "math::is_infinite",
        "math::is_infinite(x)",
        "Whether x is positive or negative infinity.",
        1,
        Some(1),
        fn_is_infinite,
    ),
    // Text.
    native("lower", "lower(s)", "The string in lower case; empty stays empty.", 1, Some(1), fn_lower),
    native("upper", "upper(s)", "The string in upper case; empty stays empty.", 1, Some(1), fn_upper),
    native(
        "trim",
        "trim(s)",
        "The string without leading and trailing whitespace; empty stays empty.",
        1,
        Some(1),
        fn_trim,
    ),
    native(
        "starts_with",
        "starts_with(s, prefix)",
        "Whether the string starts with the prefix; false for empty.",
        2,
        Some(2),
        fn_starts_with,
    ),
    native(
        "ends_with",
        "ends_with(s, suffix)",
        "Whether the string ends with the suffix; false for empty.",
        2,
        Some(2),
        fn_ends_with,
    ),
    native(
        "origin",
        "origin(url)",
        "scheme://host[:port] of an absolute URL; empty stays empty.",
        1,
        Some(1),
        fn_origin,
    ),
    // Conversions.
    native(
        "to_int",
        "to_int(x)",
        "x as an int: floats truncated towards zero, strings parsed, booleans 1/0; empty stays empty.",
        1,
        Some(1),
        fn_to_int,
    ),
    native(
        "to_float",
        "to_float(x)",
        "x as a float: strings parsed, booleans 1.0/0.0; empty stays empty.",
        1,
        Some(1),
        fn_to_float,
    ),
    native(
        "to_string",
        "to_string(x)",
        "x as text, exactly as a template would write it; empty stays empty.",
        1,
        Some(1),
        fn_to_string,
    ),
    native(
        "str::from",
        "str::from(x)",
        "x as text in evalexpr's notation: () for empty, (1, 2) for tuples.",
        1,
        Some(1),
        fn_str_from,
    ),
    // Host functions.
    host(
        "lookup",
        "lookup(type, id, attribute)",
        "The attribute of a stored entity, or empty when the entity or attribute is missing.",
        3,
    ),
    host("exists", "exists(type, id)", "Whether a stored entity of that type and id exists.", 2),
    host(
        "has_edge",
        "has_edge(from_type, from_id, kind, to_type, to_id)",
        "Whether a stored edge of that kind links the two entities.",
        5,
    ),
];

/// The registry of every function an author may call.
pub fn functions() -> &'static [FunctionInfo] {
    FUNCTIONS
}

/// The registry entry of a function, if it exists.
pub(crate) fn info(name: &str) -> Option<&'static FunctionInfo> {
    FUNCTIONS.iter().find(|info| info.name == name)
}

/// Whether `name` is a function an author may call.
pub fn is_known_function(name: &str) -> bool {
    info(name).is_some()
}

/// The known function name closest to `name` by edit distance, if one is at most 2 edits away
/// (compared case-insensitively). Ties go to the function listed first in the registry.
pub fn suggest_function(name: &str) -> Option<&'static str> {
    let wanted: Vec<char> = name.to_lowercase().chars().collect();
    FUNCTIONS
        .iter()
        .map(|info| {
            let candidate: Vec<char> = info.name.chars().collect();
            (levenshtein(&wanted, &candidate), info.name)
        })
        .filter(|&(distance, _)| distance <= 2)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, name)| name)
}

/// Classic two-row Levenshtein distance over characters.
fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Calls a registered function with evalexpr's packed argument (empty for `f()`, the value itself
/// for `f(x)`, a tuple for `f(x, y)`).
pub(crate) fn call(name: &str, argument: &Value, scope: &dyn Scope) -> Result<Value, EvalError> {
    let Some(info) = info(name) else {
        return Err(EvalError::new(format!("unknown function `{name}`")));
    };
    call_info(info, argument, scope)
}

/// [`call`] of a registry entry found beforehand.
pub(crate) fn call_info(info: &FunctionInfo, argument: &Value, scope: &dyn Scope) -> Result<Value, EvalError> {
    let args: &[Value] = if info.takes_one_whole() {
        std::slice::from_ref(argument)
    } else {
        match argument {
            Value::Empty => &[],
            Value::Tuple(items) => items,
            other => std::slice::from_ref(other),
        }
    };
    call_args(info, args, scope)
}

/// Calls a registry entry with its arguments already unpacked.
pub(crate) fn call_args(info: &FunctionInfo, args: &[Value], scope: &dyn Scope) -> Result<Value, EvalError> {
    let name = info.name;
    if let Some(problem) = info.arity_problem(args.len()) {
        return Err(EvalError::new(problem));
    }
    match info.kind {
        Kind::Native(f) => f(args, scope).map_err(|message| EvalError::new(format!("`{name}`: {message}"))),
        Kind::Host => call_host(info, &args.iter().collect::<Vec<_>>(), scope),
    }
}

/// Calls a host function's registry entry with borrowed arguments, already unpacked.
pub(crate) fn call_host(info: &FunctionInfo, args: &[&Value], scope: &dyn Scope) -> Result<Value, EvalError> {
    let name = info.name;
    if let Some(problem) = info.arity_problem(args.len()) {
        return Err(EvalError::new(problem));
    }
    scope
        .call_host(name, args)
        .unwrap_or_else(|| Err(EvalError::new(format!("function `{name}` is not available here"))))
}

// ---------------------------------------------------------------------------------------------
// Argument helpers. Messages omit the function name; `call` prefixes it.

fn number(value: &Value, position: usize) -> Result<Number, String> {
    match value {
        Value::Int(i) => Ok(Number::Int(*i)),
        Value::Float(f) => Ok(Number::Float(*f)),
        other => Err(format!("argument {position} must be a number, got {}", describe(other))),
    }
}

fn float(value: &Value, position: usize) -> Result<f64, String> {
    Ok(match number(value, position)? {
        Number::Int(i) => i as f64,
        Number::Float(f) => f,
    })
}

fn digits(value: &Value, position: usize) -> Result<u32, String> {
    match value {
        Value::Int(d) if (0..=i64::from(MAX_DIGITS)).contains(d) => Ok(*d as u32),
        other => Err(format!(
            "argument {position} (digits) must be an integer from 0 to {MAX_DIGITS}, got {}",
            describe(other)
        )),
    }
}

fn string(value: &Value, position: usize) -> Result<&str, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(format!("argument {position} must be a string, got {}", describe(other))),
    }
}

/// Converts a float to i64 when it is finite and in range, truncating towards zero.
fn float_to_int(f: f64) -> Result<i64, String> {
    // 2^63 is exactly representable; i64 covers [-2^63, 2^63).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    let truncated = f.trunc();
    if truncated.is_finite() && (-LIMIT..LIMIT).contains(&truncated) {
        Ok(truncated as i64)
    } else {
        Err(format!("{f} does not fit in an integer"))
    }
}

// ---------------------------------------------------------------------------------------------
// Control and values.

fn fn_if(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    match &args[0] {
        Value::Boolean(condition) => Ok(if *condition { args[1].clone() } else { args[2].clone() }),
        other => Err(format!("the condition must be true or false, got {}", describe(other))),
    }
}

fn fn_switch(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    let (value, rest) = args.split_first().ok_or("missing value")?;
    let (default, pairs) = rest.split_last().ok_or("missing default")?;
    Ok(pairs.chunks_exact(2).find(|pair| pair[0] == *value).map_or_else(|| default.clone(), |pair| pair[1].clone()))
}

fn fn_coalesce(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(args.iter().find(|value| !matches!(value, Value::Empty)).cloned().unwrap_or(Value::Empty))
}

fn fn_is_empty(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Boolean(match &args[0] {
        Value::Empty => true,
        Value::String(s) => s.is_empty(),
        Value::Tuple(items) => items.is_empty(),
        _ => false,
    }))
}

fn fn_typeof(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    let name = match &args[0] {
        Value::String(_) => "string",
        Value::Float(_) => "float",
        Value::Int(_) => "int",
        Value::Boolean(_) => "boolean",
        Value::Tuple(_) => "tuple",
        Value::Empty => "empty",
    };
    Ok(Value::String(name.to_string()))
}

fn fn_len(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    let length = match &args[0] {
        Value::String(s) => s.chars().count(),
        Value::Tuple(items) => items.len(),
        Value::Empty => 0,
        other => {
            return Err(format!("expects a string or a tuple, got {}", describe(other)));
        }
    };
    Ok(Value::Int(length as i64))
}

fn fn_count_of(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Int(match &args[0] {
        Value::Tuple(items) => items.len() as i64,
        Value::Empty => 0,
        _ => 1,
    }))
}

/// Shared by `contains` and `contains_any`.
fn holds(haystack: &Value, needle: &Value) -> Result<bool, String> {
    match haystack {
        Value::Empty => Ok(false),
        Value::Tuple(items) => Ok(items.contains(needle)),
        Value::String(text) => match needle {
            Value::String(part) => Ok(text.contains(part.as_str())),
            other => Err(format!("a string can only contain a string, got {}", describe(other))),
        },
        other => Err(format!("argument 1 must be a tuple, a string or empty, got {}", describe(other))),
    }
}

fn fn_contains(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    holds(&args[0], &args[1]).map(Value::Boolean)
}

fn fn_contains_any(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    let needles: &[Value] = match &args[1] {
        Value::Tuple(items) => items,
        Value::Empty => &[],
        other => std::slice::from_ref(other),
    };
    for needle in needles {
        if holds(&args[0], needle)? {
            return Ok(Value::Boolean(true));
        }
    }
    Ok(Value::Boolean(false))
}

// ---------------------------------------------------------------------------------------------
// Time.

fn fn_now(_: &[Value], scope: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Int(scope.now_ms()))
}

fn duration(value: &Value, unit_ms: i64) -> Result<Value, String> {
    match number(value, 1)? {
        Number::Int(n) => n.checked_mul(unit_ms).map(Value::Int).ok_or_else(|| format!("{n} is too large")),
        Number::Float(f) => float_to_int(f * unit_ms as f64).map(Value::Int),
    }
}

fn fn_days(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    duration(&args[0], 86_400_000)
}

fn fn_hours(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    duration(&args[0], 3_600_000)
}

fn fn_minutes(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    duration(&args[0], 60_000)
}

fn fn_seconds(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    duration(&args[0], 1_000)
}

fn fn_unix_ms(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    match &args[0] {
        Value::Empty => Ok(Value::Empty),
        Value::String(text) => parse_timestamp_ms(text).map(Value::Int),
        other => Err(format!("expects a timestamp string, got {}", describe(other))),
    }
}

fn fn_iso(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    match &args[0] {
        Value::Empty => Ok(Value::Empty),
        Value::Int(ms) => format_iso_ms(*ms).map(Value::String),
        other => Err(format!("expects integer unix milliseconds, got {}", describe(other))),
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers.

fn fn_ratio(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    let a = float(&args[0], 1)?;
    let b = float(&args[1], 2)?;
    Ok(Value::Float(if b == 0.0 { 0.0 } else { a / b }))
}

fn fn_percent(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    let part = number(&args[0], 1)?;
    let whole = number(&args[1], 2)?;
    let digits = digits(&args[2], 3)?;
    Ok(Value::Float(numeric::percent(part, whole, digits)))
}

fn fn_round_half_away(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    let x = float(&args[0], 1)?;
    let digits = digits(&args[1], 2)?;
    Ok(Value::Float(numeric::round_half_away(x, digits)))
}

fn extreme(args: &[Value], smallest: bool) -> Result<Value, String> {
    let mut numbers = Vec::with_capacity(args.len());
    for (index, value) in args.iter().enumerate() {
        numbers.push(number(value, index + 1)?);
    }
    if numbers.iter().all(|n| matches!(n, Number::Int(_))) {
        let ints = numbers.iter().filter_map(|n| match n {
            Number::Int(i) => Some(*i),
            Number::Float(_) => None,
        });
        let result = if smallest { ints.min() } else { ints.max() };
        return result.map(Value::Int).ok_or_else(|| "no arguments".into());
    }
    let floats = numbers.iter().map(|n| match n {
        Number::Int(i) => *i as f64,
        Number::Float(f) => *f,
    });
    let result = if smallest { floats.fold(f64::INFINITY, f64::min) } else { floats.fold(f64::NEG_INFINITY, f64::max) };
    Ok(Value::Float(result))
}

fn fn_min(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    extreme(args, true)
}

fn fn_max(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    extreme(args, false)
}

fn fn_floor(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Float(float(&args[0], 1)?.floor()))
}

fn fn_round(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Float(float(&args[0], 1)?.round()))
}

fn fn_ceil(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Float(float(&args[0], 1)?.ceil()))
}

fn fn_abs(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    match number(&args[0], 1)? {
        Number::Int(i) => {
            i.checked_abs().map(Value::Int).ok_or_else(|| format!("integer overflow in the absolute value of {i}"))
        }
        Number::Float(f) => Ok(Value::Float(f.abs())),
    }
}

fn fn_sqrt(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Float(float(&args[0], 1)?.sqrt()))
}

fn fn_pow(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Float(float(&args[0], 1)?.powf(float(&args[1], 2)?)))
}

fn fn_ln(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Float(float(&args[0], 1)?.ln()))
}

fn fn_log(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Float(float(&args[0], 1)?.log(float(&args[1], 2)?)))
}

fn fn_log10(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Float(float(&args[0], 1)?.log10()))
}

fn fn_exp(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Float(float(&args[0], 1)?.exp()))
}

fn fn_is_nan(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Boolean(float(&args[0], 1)?.is_nan()))
}

fn fn_is_finite(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Boolean(float(&args[0], 1)?.is_finite()))
}

fn fn_is_infinite(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::Boolean(float(&args[0], 1)?.is_infinite()))
}

// ---------------------------------------------------------------------------------------------
// Text.

fn map_text(value: &Value, f: impl Fn(&str) -> String) -> Result<Value, String> {
    match value {
        Value::Empty => Ok(Value::Empty),
        Value::String(s) => Ok(Value::String(f(s))),
        other => Err(format!("expects a string, got {}", describe(other))),
    }
}

fn fn_lower(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    map_text(&args[0], str::to_lowercase)
}

fn fn_upper(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    map_text(&args[0], str::to_uppercase)
}

fn fn_trim(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    map_text(&args[0], |s| s.trim().to_string())
}

fn affix(args: &[Value], test: fn(&str, &str) -> bool) -> Result<Value, String> {
    if matches!(args[0], Value::Empty) {
        return Ok(Value::Boolean(false));
    }
    let text = string(&args[0], 1)?;
    let part = string(&args[1], 2)?;
    Ok(Value::Boolean(test(text, part)))
}

fn fn_starts_with(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    affix(args, |text, part| text.starts_with(part))
}

fn fn_ends_with(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    affix(args, |text, part| text.ends_with(part))
}

fn fn_origin(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    let text = match &args[0] {
        Value::Empty => return Ok(Value::Empty),
        other => string(other, 1)?,
    };
    let url = url::Url::parse(text).map_err(|error| format!("{text:?} is not an absolute URL: {error}"))?;
    let host = url.host_str().ok_or_else(|| format!("{text:?} has no host"))?;
    // `port()` is None when the URL uses its scheme's default port, which is then left out.
    Ok(Value::String(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }))
}

// ---------------------------------------------------------------------------------------------
// Conversions.

fn fn_to_int(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    match &args[0] {
        Value::Empty => Ok(Value::Empty),
        Value::Int(i) => Ok(Value::Int(*i)),
        Value::Float(f) => float_to_int(*f).map(Value::Int),
        Value::Boolean(b) => Ok(Value::Int(i64::from(*b))),
        Value::String(s) => {
            let text = s.trim();
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Int(i));
            }
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => float_to_int(f).map(Value::Int),
                _ => Err(format!("{s:?} is not a number")),
            }
        }
        other => Err(format!("cannot convert {} to an int", describe(other))),
    }
}

fn fn_to_float(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    match &args[0] {
        Value::Empty => Ok(Value::Empty),
        Value::Int(i) => Ok(Value::Float(*i as f64)),
        Value::Float(f) => Ok(Value::Float(*f)),
        Value::Boolean(b) => Ok(Value::Float(if *b { 1.0 } else { 0.0 })),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(format!("{s:?} is not a finite number")),
        },
        other => Err(format!("cannot convert {} to a float", describe(other))),
    }
}

fn fn_to_string(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    match &args[0] {
        Value::Empty => Ok(Value::Empty),
        other => to_text(other).map(Value::String),
    }
}

fn fn_str_from(args: &[Value], _: &dyn Scope) -> Result<Value, String> {
    Ok(Value::String(args[0].str_from()))
}
