//! A direct walk of the operator tree that gives exactly evalexpr's result whenever evaluation
//! succeeds, without building an evalexpr context per evaluation (resolving every variable up front,
//! cloning constants, allocating an argument list per node). It is what makes a predicate over a
//! million rows affordable.
//!
//! It answers `None` for anything it does not reproduce exactly, and for every evaluation that would
//! fail: the caller then evaluates through evalexpr, which produces the one true result or error
//! message. Re-evaluating is safe because evaluation has no side effects (functions read their
//! arguments, the pinned clock and a store that does not change during an evaluation). Like evalexpr,
//! it evaluates every operand: nothing short-circuits, so an operand that fails fails the expression.

use super::{Scope, functions};
use evalexpr::{Node, Operator, Value};
use std::borrow::Cow;

/// Deepest tree walked here; deeper (long operator chains) is left to evalexpr, whose frames are smaller.
const MAX_DEPTH: usize = 48;

/// The value of `node`, or `None` to say "ask evalexpr".
pub(super) fn eval<'n>(node: &'n Node, scope: &dyn Scope) -> Option<Cow<'n, Value>> {
    walk(node, scope, 0)
}

fn walk<'n>(node: &'n Node, scope: &dyn Scope, depth: usize) -> Option<Cow<'n, Value>> {
    use Operator as O;
    if depth > MAX_DEPTH {
        return None;
    }
    let eval = |child: &'n Node| walk(child, scope, depth + 1);
    let children = node.children();
    match node.operator() {
        O::Const { value } if children.is_empty() => Some(Cow::Borrowed(value)),
        O::VariableIdentifierRead { identifier } if children.is_empty() => scope.variable(identifier).map(Cow::Owned),
        O::RootNode => {
            // Every child is evaluated (its failure fails the whole); the first is the value.
            let mut first = None;
            for child in children {
                let value = eval(child)?;
                first.get_or_insert(value);
            }
            Some(first.unwrap_or(Cow::Owned(Value::Empty)))
        }
        O::Eq | O::Neq | O::Gt | O::Lt | O::Geq | O::Leq | O::And | O::Or => {
            let [left, right] = children else { return None };
            let (a, b) = (eval(left)?, eval(right)?);
            binary(node.operator(), &a, &b).map(Cow::Owned)
        }
        O::Add | O::Sub | O::Mul | O::Div | O::Mod => {
            let [left, right] = children else { return None };
            let (a, b) = (eval(left)?, eval(right)?);
            arithmetic(node.operator(), &a, &b).map(Cow::Owned)
        }
        O::Not => match children {
            [only] => match eval(only)?.as_ref() {
                Value::Boolean(b) => Some(Cow::Owned(Value::Boolean(!b))),
                _ => None,
            },
            _ => None,
        },
        O::Neg => match children {
            [only] => match eval(only)?.as_ref() {
                Value::Int(i) => i.checked_neg().map(|n| Cow::Owned(Value::Int(n))),
                Value::Float(f) => Some(Cow::Owned(Value::Float(-f))),
                _ => None,
            },
            _ => None,
        },
        O::Tuple => {
            let values = children.iter().map(|c| eval(c).map(Cow::into_owned)).collect::<Option<Vec<_>>>()?;
            Some(Cow::Owned(Value::Tuple(values)))
        }
        O::FunctionIdentifier { identifier } => match children {
            [argument] => {
                let argument = eval(argument)?;
                functions::call(identifier, &argument, scope).ok().map(Cow::Owned)
            }
            _ => None,
        },
        // Exponentiation, chaining, assignment and malformed nodes: evalexpr decides.
        _ => None,
    }
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
