//! A direct evaluator that gives exactly evalexpr's result whenever evaluation succeeds, without
//! building an evalexpr context per evaluation (resolving every variable up front, cloning constants,
//! allocating an argument list per node). It is what makes a predicate over a million rows affordable.
//!
//! The operator tree is translated once into a [`Program`]: function names resolved to their registry
//! entries, subtrees made only of constants and pure functions computed once (and, when the clock is
//! pinned with [`Program::pinned`], subtrees that read the clock too, such as `now() - days(90)`).
//!
//! It answers `None` for anything it does not reproduce exactly, and for every evaluation that would
//! fail: the caller then evaluates through evalexpr, which produces the one true result or error
//! message. Re-evaluating is safe because evaluation has no side effects (functions read their
//! arguments, the pinned clock and a store that does not change during an evaluation). Like evalexpr,
//! it evaluates every operand: nothing short-circuits, so an operand that fails fails the expression.

use super::Scope;
use super::functions::{self, FunctionInfo};
use evalexpr::{Node, Operator, Value};
use std::borrow::Cow;

/// Deepest tree translated here; deeper (long operator chains) is left to evalexpr, whose frames are
/// smaller.
const MAX_DEPTH: usize = 48;

/// Most arguments a call gets without allocating a list for them.
const INLINE_ARGS: usize = 6;

static EMPTY: Value = Value::Empty;

/// An expression ready for direct evaluation.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Program {
    root: Op,
}

#[derive(Clone, Debug, PartialEq)]
enum Op {
    Const(Value),
    Var(String),
    /// Every child is evaluated (its failure fails the whole); the first is the value.
    Root(Vec<Op>),
    /// Comparison, logic and arithmetic.
    Binary(Operator, Box<(Op, Op)>),
    Not(Box<Op>),
    Neg(Box<Op>),
    Tuple(Vec<Op>),
    /// `f()` or `f(a, b, ...)`: the arguments as written.
    Call(Function, Vec<Op>),
    /// `f(x)`: one argument, which is unpacked at run time when it is a tuple (evalexpr cannot tell
    /// `f(t)` from `f(t1, t2)` when `t` holds a tuple).
    CallPacked(Function, Box<Op>),
    /// Exponentiation, chaining, assignment, malformed or too deep: evalexpr decides.
    Opaque,
}

/// A registry entry, compared by name.
#[derive(Clone, Copy)]
struct Function(&'static FunctionInfo);

impl PartialEq for Function {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl Program {
    /// Translates an operator tree, computing its constant subtrees.
    pub fn new(node: &Node) -> Program {
        let mut root = translate(node, 0);
        fold(&mut root, None);
        Program { root }
    }

    /// The same program with every subtree that reads nothing but constants and the clock computed
    /// once for a clock pinned at `now_ms`.
    pub fn pinned(&self, now_ms: i64) -> Program {
        let mut root = self.root.clone();
        fold(&mut root, Some(now_ms));
        Program { root }
    }

    /// Whether the whole program was computed ahead.
    #[cfg(test)]
    pub fn is_constant(&self) -> bool {
        matches!(self.root, Op::Const(_))
    }

    /// The value, or `None` to say "ask evalexpr".
    pub fn eval<'a>(&'a self, scope: &'a dyn Scope) -> Option<Cow<'a, Value>> {
        walk(&self.root, scope)
    }
}

fn translate(node: &Node, depth: usize) -> Op {
    use Operator as O;
    if depth > MAX_DEPTH {
        return Op::Opaque;
    }
    let each = |children: &[Node]| children.iter().map(|c| translate(c, depth + 1)).collect::<Vec<_>>();
    let children = node.children();
    match (node.operator(), children) {
        (O::Const { value }, []) => Op::Const(value.clone()),
        (O::VariableIdentifierRead { identifier }, []) => Op::Var(identifier.clone()),
        (O::RootNode, _) => Op::Root(each(children)),
        (
            operator @ (O::Eq
            | O::Neq
            | O::Gt
            | O::Lt
            | O::Geq
            | O::Leq
            | O::And
            | O::Or
            | O::Add
            | O::Sub
            | O::Mul
            | O::Div
            | O::Mod),
            [left, right],
        ) => Op::Binary(operator.clone(), Box::new((translate(left, depth + 1), translate(right, depth + 1)))),
        (O::Not, [only]) => Op::Not(Box::new(translate(only, depth + 1))),
        (O::Neg, [only]) => Op::Neg(Box::new(translate(only, depth + 1))),
        (O::Tuple, _) => Op::Tuple(each(children)),
        (O::FunctionIdentifier { identifier }, [argument]) => {
            let Some(info) = functions::info(identifier) else { return Op::Opaque };
            let function = Function(info);
            // The call's parentheses are a root node holding nothing, the argument, or a tuple of the
            // arguments; `f x` without parentheses has the argument itself.
            match (argument.operator(), argument.children()) {
                (O::RootNode, []) => Op::Call(function, Vec::new()),
                (O::RootNode, [tuple]) if matches!(tuple.operator(), O::Tuple) && !info.takes_one_whole() => {
                    Op::Call(function, each(tuple.children()))
                }
                _ => Op::CallPacked(function, Box::new(translate(argument, depth + 1))),
            }
        }
        _ => Op::Opaque,
    }
}

/// Replaces each largest subtree that reads no variable and calls no host function (nor `now`, unless
/// the clock is given) by its value, when the direct evaluation of it succeeds.
fn fold(op: &mut Op, clock: Option<i64>) {
    if matches!(op, Op::Const(_)) {
        return;
    }
    if constant(op, clock.is_some()) {
        let value = walk(op, &Clock(clock.unwrap_or_default())).map(Cow::into_owned);
        if let Some(value) = value {
            *op = Op::Const(value);
        }
        return;
    }
    match op {
        Op::Root(children) | Op::Tuple(children) | Op::Call(_, children) => {
            children.iter_mut().for_each(|c| fold(c, clock));
        }
        Op::Binary(_, pair) => {
            fold(&mut pair.0, clock);
            fold(&mut pair.1, clock);
        }
        Op::Not(only) | Op::Neg(only) | Op::CallPacked(_, only) => fold(only, clock),
        Op::Const(_) | Op::Var(_) | Op::Opaque => {}
    }
}

fn constant(op: &Op, with_clock: bool) -> bool {
    let pure = |f: &Function| !f.0.host && (with_clock || f.0.name != "now");
    match op {
        Op::Const(_) => true,
        Op::Var(_) | Op::Opaque => false,
        Op::Root(children) | Op::Tuple(children) => children.iter().all(|c| constant(c, with_clock)),
        Op::Call(f, children) => pure(f) && children.iter().all(|c| constant(c, with_clock)),
        Op::Binary(_, pair) => constant(&pair.0, with_clock) && constant(&pair.1, with_clock),
        Op::Not(only) | Op::Neg(only) => constant(only, with_clock),
        Op::CallPacked(f, only) => pure(f) && constant(only, with_clock),
    }
}

/// The scope of folding: a clock and nothing else.
struct Clock(i64);

impl Scope for Clock {
    fn variable(&self, _: &str) -> Option<Value> {
        None
    }

    fn now_ms(&self) -> i64 {
        self.0
    }
}

fn walk<'a>(op: &'a Op, scope: &'a dyn Scope) -> Option<Cow<'a, Value>> {
    match op {
        Op::Const(value) => Some(Cow::Borrowed(value)),
        Op::Var(name) => scope.variable_ref(name),
        Op::Root(children) => {
            let mut first = None;
            for child in children {
                let value = walk(child, scope)?;
                first.get_or_insert(value);
            }
            Some(first.unwrap_or(Cow::Owned(Value::Empty)))
        }
        Op::Binary(operator, pair) => {
            let (a, b) = (walk(&pair.0, scope)?, walk(&pair.1, scope)?);
            match operator {
                Operator::Add | Operator::Sub | Operator::Mul | Operator::Div | Operator::Mod => {
                    arithmetic(operator, &a, &b)
                }
                _ => binary(operator, &a, &b),
            }
            .map(Cow::Owned)
        }
        Op::Not(only) => match walk(only, scope)?.as_ref() {
            Value::Boolean(b) => Some(Cow::Owned(Value::Boolean(!b))),
            _ => None,
        },
        Op::Neg(only) => match walk(only, scope)?.as_ref() {
            Value::Int(i) => i.checked_neg().map(|n| Cow::Owned(Value::Int(n))),
            Value::Float(f) => Some(Cow::Owned(Value::Float(-f))),
            _ => None,
        },
        Op::Tuple(children) => {
            let values = children.iter().map(|c| walk(c, scope).map(Cow::into_owned)).collect::<Option<Vec<_>>>()?;
            Some(Cow::Owned(Value::Tuple(values)))
        }
        Op::Call(Function(info), arguments) if info.host && arguments.len() <= INLINE_ARGS => {
            call_host(info, arguments, scope).map(Cow::Owned)
        }
        Op::Call(Function(info), arguments) => call(info, arguments, scope).map(Cow::Owned),
        Op::CallPacked(Function(info), argument) => {
            let argument = walk(argument, scope)?;
            functions::call_info(info, &argument, scope).ok().map(Cow::Owned)
        }
        Op::Opaque => None,
    }
}

/// A host function call. Host functions borrow their arguments: nothing is copied on the way to a
/// lookup. Kept out of `walk` (as is `call`) so that the argument arrays do not enlarge every frame of
/// the recursion.
#[inline(never)]
fn call_host<'a>(info: &FunctionInfo, arguments: &'a [Op], scope: &'a dyn Scope) -> Option<Value> {
    let mut values: [Option<Cow<'a, Value>>; INLINE_ARGS] = Default::default();
    for (slot, argument) in values.iter_mut().zip(arguments) {
        *slot = Some(walk(argument, scope)?);
    }
    let mut refs: [&Value; INLINE_ARGS] = [&EMPTY; INLINE_ARGS];
    for (slot, value) in refs.iter_mut().zip(values.iter().flatten()) {
        *slot = value.as_ref();
    }
    functions::call_host(info, &refs[..arguments.len()], scope).ok()
}

/// A builtin call, with its arguments evaluated into owned values.
#[inline(never)]
fn call(info: &FunctionInfo, arguments: &[Op], scope: &dyn Scope) -> Option<Value> {
    let result = if arguments.len() <= INLINE_ARGS {
        let mut values = [const { Value::Empty }; INLINE_ARGS];
        for (slot, argument) in values.iter_mut().zip(arguments) {
            *slot = walk(argument, scope)?.into_owned();
        }
        functions::call_args(info, &values[..arguments.len()], scope)
    } else {
        let values = arguments.iter().map(|a| walk(a, scope).map(Cow::into_owned)).collect::<Option<Vec<_>>>()?;
        functions::call_args(info, &values, scope)
    };
    result.ok()
}

/// Comparison and logic, as evalexpr's operators compute them: two strings compare as text, two
/// integers as integers, any other pair of numbers as floats (so NaN compares false); anything else is
/// evalexpr's error.
fn binary(operator: &Operator, a: &Value, b: &Value) -> Option<Value> {
    use Operator as O;
    fn order<T: PartialOrd + ?Sized>(operator: &Operator, x: &T, y: &T) -> bool {
        match operator {
            O::Gt => x > y,
            O::Lt => x < y,
            O::Geq => x >= y,
            _ => x <= y,
        }
    }
    Some(Value::Boolean(match (operator, a, b) {
        (O::Eq, _, _) => a == b,
        (O::Neq, _, _) => a != b,
        (O::And, Value::Boolean(x), Value::Boolean(y)) => *x && *y,
        (O::Or, Value::Boolean(x), Value::Boolean(y)) => *x || *y,
        (O::Gt | O::Lt | O::Geq | O::Leq, Value::String(x), Value::String(y)) => order(operator, x, y),
        (O::Gt | O::Lt | O::Geq | O::Leq, Value::Int(x), Value::Int(y)) => order(operator, x, y),
        (O::Gt | O::Lt | O::Geq | O::Leq, _, _) => order(operator, &number(a)?, &number(b)?),
        _ => return None,
    }))
}

/// `+ - * / %` on numbers (and `+` on two strings), as evalexpr computes them; overflow and
/// division by zero are left to evalexpr's error.
fn arithmetic(operator: &Operator, a: &Value, b: &Value) -> Option<Value> {
    use Operator as O;
    if let (O::Add, Value::String(x), Value::String(y)) = (operator, a, b) {
        return Some(Value::String(format!("{x}{y}")));
    }
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        return match operator {
            O::Add => x.checked_add(*y),
            O::Sub => x.checked_sub(*y),
            O::Mul => x.checked_mul(*y),
            O::Div => x.checked_div(*y),
            _ => x.checked_rem(*y),
        }
        .map(Value::Int);
    }
    let (x, y) = (number(a)?, number(b)?);
    Some(Value::Float(match operator {
        O::Add => x + y,
        O::Sub => x - y,
        O::Mul => x * y,
        O::Div => x / y,
        _ => x % y,
    }))
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}
