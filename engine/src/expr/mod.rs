//! The one expression language of the engine.
//!
//! Expressions appear in request templates, derived fields, `where` predicates over stored rows
//! and KRI formulas. This module compiles expression text once into an [`Expr`] (a wrapped
//! `evalexpr` operator tree plus the sorted lists of variables and functions it uses) and
//! evaluates it many times against a [`Scope`] that supplies variable values, the pinned clock
//! and host functions.
//!
//! It deliberately knows nothing about spec files, HTTP, storage or any particular vendor, and it
//! performs no I/O: everything outside the pure function library reaches it through [`Scope`].
//!
//! Language facts that callers and authors must know (all inherited from `evalexpr` 11.3.1):
//! - `7 / 2` is `3`: division of two integers is integer division, and `1 / 0` is an error, while
//!   `1.0 / 0` is infinity.
//! - Equality is type-strict: `1 == 1.0` is false.
//! - There is no null, only the empty value `()`; arithmetic on it is an error. JSON `null`
//!   becomes `()` (see [`from_json`]).
//! - Nothing short-circuits: `false && f(x)` and `if(c, a, b)` evaluate every operand, so each
//!   operand must be valid on its own.
//! - Identifiers may contain dots (`config.tenant_id` is one variable), and `true`, `false`,
//!   `inf`, `nan` and `infinity` (any case) are literals, never variables.
//! - A function call with several arguments receives them as one tuple, so `f(x)` where `x` holds
//!   a tuple looks exactly like `f(x1, x2, ...)` to a variadic function such as `coalesce`.
//! - Assignment (`=`, `+=`, ...) and chaining (`;`) are rejected at compile time; `//` and
//!   `/* */` comments are allowed.
//! - String literals use double quotes, and the only escapes are `\"` and `\\`.
//!
//! Every function an author may call is listed by [`functions()`]; all of them are implemented in
//! this module (evalexpr's own builtin table is never consulted), which keeps error messages
//! uniform and keeps evalexpr builtins that can panic (`str::substring` on a non-character
//! boundary, `shl` with a large shift) out of reach.

mod fast;
mod functions;
mod numeric;
mod scan;
mod template;
mod time;
mod value;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

use evalexpr::{Context, EvalexprError, EvalexprResult, Node, Operator};

pub use evalexpr::Value;
pub use functions::{FunctionInfo, functions, is_known_function, suggest_function};
pub use numeric::{MAX_DIGITS, Number, percent, round_half_away};
pub use template::{Part, Template, compile_template, encode_none, encode_path_segment, encode_path_segment_strict};
pub use time::{format_iso_ms, parse_timestamp_ms};
pub use value::{describe, from_json, to_json, to_text};

/// Longest expression source accepted, in bytes. Longer text is rejected before evalexpr sees it,
/// because evalexpr's parser and evaluator recurse and a large enough input aborts the process.
pub const MAX_SOURCE_BYTES: usize = 2048;

/// Deepest parenthesis nesting accepted (counted outside string literals and comments).
pub const MAX_PAREN_DEPTH: usize = 32;

/// Largest number of operators that make evalexpr's parser recurse once per occurrence: unary
/// `!`, prefix `-`, `^` and function application without parentheses (`f x`). Measured: a chain
/// of about 2,000 prefix minus signs overflows a 2 MiB stack while the tree is being built.
pub const MAX_CHAINED_OPERATORS: usize = 64;

/// A compile-time error: the text is not a valid expression of this language.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// Human-readable description of the problem.
    pub message: String,
    /// Byte offset into the source where the problem is, when it is known. It always lies on a
    /// character boundary, so callers may slice the source at it.
    pub offset: Option<usize>,
}

impl ExprError {
    pub(crate) fn new(message: impl Into<String>, offset: Option<usize>) -> Self {
        ExprError { message: message.into(), offset }
    }
}

/// A run-time error: the expression is valid but could not be evaluated against a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// Human-readable description of the problem.
    pub message: String,
}

impl EvalError {
    /// Builds an error from a message; host functions use this to report their own failures.
    pub fn new(message: impl Into<String>) -> Self {
        EvalError { message: message.into() }
    }
}

/// Everything an expression may read from the outside world while it is evaluated.
pub trait Scope {
    /// Value of a variable, None when unbound (unbound is an eval error naming the variable).
    fn variable(&self, name: &str) -> Option<Value>;

    /// [`Scope::variable`] without a copy, for scopes that hold their values as [`Value`]s already:
    /// predicates over a million rows mostly compare, and copying text only to compare it adds up.
    fn variable_ref(&self, name: &str) -> Option<std::borrow::Cow<'_, Value>> {
        self.variable(name).map(std::borrow::Cow::Owned)
    }

    /// The pinned clock in unix milliseconds (for now()).
    fn now_ms(&self) -> i64;

    /// Host functions such as lookup/exists that need data the expression module does not own.
    /// Return None when the host has no function of that name.
    /// The arguments are borrowed: a host function runs once per row, and its arguments are mostly
    /// constants and row values that need no copy.
    fn call_host(&self, _name: &str, _args: &[&Value]) -> Option<Result<Value, EvalError>> {
        None
    }
}

/// A simple [`Scope`] backed by a map, with a pinned clock and no host functions. It is handy for
/// configuration templates and for tests; hosts with richer needs implement [`Scope`] themselves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapScope {
    variables: HashMap<String, Value>,
    now_ms: i64,
}

impl MapScope {
    /// An empty scope whose clock is pinned at `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        MapScope { variables: HashMap::new(), now_ms }
    }

    /// Binds (or rebinds) a variable and returns the scope, for builder-style construction.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set(name, value);
        self
    }

    /// Binds (or rebinds) a variable.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.variables.insert(name.into(), value.into());
    }
}

impl Scope for MapScope {
    fn variable(&self, name: &str) -> Option<Value> {
        self.variables.get(name).cloned()
    }

    fn now_ms(&self) -> i64 {
        self.now_ms
    }
}

/// A compiled expression: parse once with [`compile`], evaluate many times with [`Expr::eval`].
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    node: Node,
    program: fast::Program,
    variables: Vec<String>,
    functions: Vec<String>,
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Compiles expression text, checking the safety limits, the syntax, that no assignment or
/// chaining is used, and that every called function exists and gets an acceptable number of
/// arguments.
pub fn compile(source: &str) -> Result<Expr, ExprError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(ExprError::new(
            format!("expression is {} bytes long; the limit is {MAX_SOURCE_BYTES} bytes", source.len()),
            None,
        ));
    }
    // The lexical scan enforces the nesting limits before evalexpr's recursive parser runs, and
    // it remembers where identifiers are so that later errors can point at them.
    let scanned = scan::scan(source)?;
    if !scanned.has_tokens {
        return Err(ExprError::new("expression is empty", Some(0)));
    }
    if let Some(offset) = scanned.assignment {
        return Err(ExprError::new("assignment is not allowed in an expression; use `==` to compare", Some(offset)));
    }
    if let Some(offset) = scanned.semicolon {
        return Err(ExprError::new("`;` (chaining several expressions) is not allowed", Some(offset)));
    }

    let node = evalexpr::build_operator_tree(source).map_err(|error| ExprError::new(describe_error(&error), None))?;

    let mut variables = Vec::new();
    let mut calls: Vec<(&str, usize)> = Vec::new();
    // `Node::iter` walks the tree with an explicit stack, so this loop cannot overflow.
    for child in node.iter() {
        if let Some(required) = required_operands(child.operator())
            && child.children().len() != required
        {
            return Err(ExprError::new(
                format!("incomplete expression: `{}` is missing an operand", operator_symbol(child.operator())),
                None,
            ));
        }
        match child.operator() {
            Operator::VariableIdentifierRead { identifier } => variables.push(identifier.clone()),
            Operator::FunctionIdentifier { identifier } => {
                calls.push((identifier.as_str(), syntactic_argument_count(child)));
            }
            Operator::Assign
            | Operator::AddAssign
            | Operator::SubAssign
            | Operator::MulAssign
            | Operator::DivAssign
            | Operator::ModAssign
            | Operator::ExpAssign
            | Operator::AndAssign
            | Operator::OrAssign
            | Operator::VariableIdentifierWrite { .. } => {
                return Err(ExprError::new("assignment is not allowed in an expression", None));
            }
            Operator::Chain => {
                return Err(ExprError::new("`;` (chaining several expressions) is not allowed", None));
            }
            _ => {}
        }
    }

    // Pre-order traversal visits function identifiers in source order, so the n-th call of a
    // name in the tree is the n-th call of that name found by the scan.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (name, count) in &calls {
        let occurrence = seen.entry(name).or_insert(0);
        let offset = scanned.call_offset(name, *occurrence);
        *occurrence += 1;
        let Some(info) = functions::info(name) else {
            let mut message = format!("unknown function `{name}`");
            if let Some(suggestion) = suggest_function(name) {
                message.push_str(&format!("; did you mean `{suggestion}`?"));
            }
            return Err(ExprError::new(message, offset));
        };
        if let Some(problem) = info.arity_problem(*count) {
            return Err(ExprError::new(problem, offset));
        }
    }

    let mut functions: Vec<String> = calls.iter().map(|(name, _)| name.to_string()).collect();
    variables.sort();
    variables.dedup();
    functions.sort();
    functions.dedup();
    let program = fast::Program::new(&node);
    Ok(Expr { source: source.to_string(), node, program, variables, functions })
}

/// Counts the arguments a call site passes, as written: `f()` has 0, `f(a)` has 1 and
/// `f(a, b)` has 2. A single argument that evaluates to a tuple is still counted as one here,
/// although at run time it is indistinguishable from several arguments.
fn syntactic_argument_count(call: &Node) -> usize {
    let Some(argument) = call.children().first() else {
        return 0;
    };
    // The call's parentheses become a `RootNode` holding nothing (`f()`), the one argument
    // (`f(a)`, also `f(())` and `f((a, b))`, whose argument is itself parenthesised) or a tuple
    // of the arguments (`f(a, b)`). A call without parentheses (`f a`) has one argument.
    if !matches!(argument.operator(), Operator::RootNode) {
        return 1;
    }
    match argument.children().first() {
        None => 0,
        Some(inner) if matches!(inner.operator(), Operator::Tuple) => inner.children().len(),
        Some(_) => 1,
    }
}

/// The operand count an operator node must have, for operators evalexpr lets through the parser
/// with operands missing (`1 +` parses and only fails when evaluated).
fn required_operands(operator: &Operator) -> Option<usize> {
    use Operator as O;
    match operator {
        O::Add | O::Sub | O::Mul | O::Div | O::Mod | O::Exp => Some(2),
        O::Eq | O::Neq | O::Gt | O::Lt | O::Geq | O::Leq | O::And | O::Or => Some(2),
        O::Neg | O::Not | O::FunctionIdentifier { .. } => Some(1),
        _ => None,
    }
}

impl Expr {
    /// The text this expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every variable identifier the expression reads, sorted and without duplicates.
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// Every function the expression calls, host functions included, sorted and without
    /// duplicates.
    pub fn functions(&self) -> &[String] {
        &self.functions
    }

    /// Evaluates the expression: directly when `fast` can, otherwise (and for every error) through
    /// evalexpr, where every variable is resolved from the scope before evaluation starts, which costs
    /// nothing extra because evaluation never short-circuits anyway.
    pub fn eval(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        if let Some(value) = self.program.eval(scope) {
            return Ok(value.into_owned());
        }
        self.eval_slow(scope)
    }

    /// The same expression for a clock pinned at `now_ms`: subtrees that read nothing but constants and
    /// the clock (`now() - days(90)`) are computed here once instead of at every evaluation. Evaluating
    /// it against a scope whose clock reads anything else gives wrong results.
    pub fn pinned(&self, now_ms: i64) -> Expr {
        Expr { program: self.program.pinned(now_ms), ..self.clone() }
    }

    /// Evaluation through evalexpr alone.
    fn eval_slow(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        let mut values = Vec::with_capacity(self.variables.len());
        for name in &self.variables {
            match scope.variable(name) {
                Some(value) => values.push(value),
                None => return Err(EvalError::new(format!("unknown variable `{name}`"))),
            }
        }
        let context = Adapter { names: &self.variables, values, scope };
        self.node.eval_with_context(&context).map_err(|error| EvalError::new(describe_error(&error)))
    }

    /// Evaluates the expression and requires a boolean result, as `where` predicates do.
    pub fn eval_bool(&self, scope: &dyn Scope) -> Result<bool, EvalError> {
        match self.eval(scope)? {
            Value::Boolean(result) => Ok(result),
            other => Err(EvalError::new(format!(
                "expected the expression `{}` to be true or false, got {}",
                self.source,
                describe(&other)
            ))),
        }
    }
}

/// The evalexpr context used for one evaluation. It owns the variable values because
/// `Context::get_value` hands out references.
struct Adapter<'a> {
    names: &'a [String],
    values: Vec<Value>,
    scope: &'a dyn Scope,
}

impl Context for Adapter<'_> {
    fn get_value(&self, identifier: &str) -> Option<&Value> {
        let index = self.names.binary_search_by(|name| name.as_str().cmp(identifier)).ok()?;
        self.values.get(index)
    }

    fn call_function(&self, identifier: &str, argument: &Value) -> EvalexprResult<Value> {
        // Every outcome is returned as a custom message, never as `FunctionIdentifierNotFound`:
        // that variant is what makes evalexpr fall back to its own builtin table.
        functions::call(identifier, argument, self.scope).map_err(|error| EvalexprError::CustomMessage(error.message))
    }

    /// Builtins are reported as disabled because this module implements every function itself;
    /// see the module documentation.
    fn are_builtin_functions_disabled(&self) -> bool {
        true
    }

    fn set_builtin_functions_disabled(&mut self, disabled: bool) -> EvalexprResult<()> {
        if disabled { Ok(()) } else { Err(EvalexprError::BuiltinFunctionsCannotBeEnabled) }
    }
}

/// Turns an evalexpr error into a sentence for a spec author, avoiding Rust debug syntax such as
/// `Value::Int(1)` where a plainer wording exists.
fn describe_error(error: &EvalexprError) -> String {
    use EvalexprError as E;
    match error {
        E::CustomMessage(message) => message.clone(),
        E::VariableIdentifierNotFound(name) => format!("unknown variable `{name}`"),
        E::FunctionIdentifierNotFound(name) => format!("unknown function `{name}`"),
        E::ExpectedString { actual } => format!("expected a string, got {}", describe(actual)),
        E::ExpectedInt { actual } => format!("expected an integer, got {}", describe(actual)),
        E::ExpectedFloat { actual } => format!("expected a float, got {}", describe(actual)),
        E::ExpectedNumber { actual } => format!("expected a number, got {}", describe(actual)),
        E::ExpectedNumberOrString { actual } => {
            format!("expected a number or a string, got {}", describe(actual))
        }
        E::ExpectedBoolean { actual } => {
            format!("expected true or false, got {}", describe(actual))
        }
        E::ExpectedTuple { actual } => format!("expected a tuple, got {}", describe(actual)),
        E::ExpectedEmpty { actual } => format!("expected (), got {}", describe(actual)),
        E::WrongTypeCombination { operator, actual } => {
            let types: Vec<String> = actual.iter().map(|kind| format!("{kind:?}").to_lowercase()).collect();
            format!("operator `{}` cannot be applied to {}", operator_symbol(operator), types.join(" and "))
        }
        E::AdditionError { augend, addend } => {
            format!("integer overflow in {augend} + {addend}")
        }
        E::SubtractionError { minuend, subtrahend } => format!("integer overflow in {minuend} - {subtrahend}"),
        E::NegationError { argument } => format!("integer overflow in -{argument}"),
        E::MultiplicationError { multiplicand, multiplier } => {
            format!("integer overflow in {multiplicand} * {multiplier}")
        }
        E::DivisionError { dividend, divisor } => {
            if matches!(divisor, Value::Int(0)) {
                format!("division by zero in {dividend} / {divisor}")
            } else {
                format!("integer overflow in {dividend} / {divisor}")
            }
        }
        E::ModulationError { dividend, divisor } => {
            if matches!(divisor, Value::Int(0)) {
                format!("division by zero in {dividend} % {divisor}")
            } else {
                format!("integer overflow in {dividend} % {divisor}")
            }
        }
        E::ContextNotMutable => "assignment is not allowed in an expression".to_string(),
        E::UnmatchedLBrace => "unclosed `(`".to_string(),
        E::UnmatchedRBrace => "unmatched `)`".to_string(),
        E::UnmatchedDoubleQuote => "unterminated string literal".to_string(),
        E::IllegalEscapeSequence(sequence) => {
            format!("illegal escape sequence `{sequence}` in a string literal; only \\\" and \\\\ exist")
        }
        E::AppendedToLeafNode => {
            "syntax error: two values follow each other without an operator between them".to_string()
        }
        E::MissingOperatorOutsideOfBrace => "syntax error: a parenthesised group is preceded or \
                                             followed by a value instead of an operator"
            .to_string(),
        E::UnmatchedPartialToken { .. } => {
            "syntax error: a single `&` or `|` is not an operator; use `&&` or `||`".to_string()
        }
        E::PrecedenceViolation => format!("syntax error: {error}"),
        other => other.to_string(),
    }
}

/// The source symbol of an operator, for error messages.
fn operator_symbol(operator: &Operator) -> String {
    let symbol = match operator {
        Operator::Add => "+",
        Operator::Sub => "-",
        Operator::Neg => "-",
        Operator::Mul => "*",
        Operator::Div => "/",
        Operator::Mod => "%",
        Operator::Exp => "^",
        Operator::Eq => "==",
        Operator::Neq => "!=",
        Operator::Gt => ">",
        Operator::Lt => "<",
        Operator::Geq => ">=",
        Operator::Leq => "<=",
        Operator::And => "&&",
        Operator::Or => "||",
        Operator::Not => "!",
        Operator::FunctionIdentifier { identifier } => return identifier.clone(),
        other => return format!("{other:?}"),
    };
    symbol.to_string()
}
