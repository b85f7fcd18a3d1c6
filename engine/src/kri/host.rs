//! What KRI expressions read besides their own row: `config.*`, the pinned clock, and the host
//! functions `lookup(type, id, attribute)`, `exists(type, id)` and `has_edge(from_type, from_id, kind,
//! to_type, to_id)`.
//!
//! Host functions are called once per row, so a call must not scan. Under the default strategy the first
//! [`AUTO_QUERIES`] calls for an entity type and attribute are primary-key queries; the next one streams
//! the type once into a hash map from id to value (only non-empty values are kept: a missing entity and a
//! null attribute both read as empty), and every later call is a hash probe. `exists` works the same way
//! on a type's ids; `has_edge` collects an edge kind on its first call. Nothing is read for an indicator
//! that is not selected, and an index serves every indicator of one scan's thread.
//!
//! A store failure while building an index cannot travel through the expression evaluator as such: it
//! is kept here, the call fails, and the scan that made the call hands the kept error back to the caller
//! of the evaluation ([`Host::take_failure`]).

use super::{KriOptions, LookupStrategy};
use crate::expr::{self, EvalError, Scope, Value};
use crate::model::{ConfigType, Shape, Spec};
use crate::store::{RowRef, Scan, Store, StoreError};
use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

type AttrIndex = Rc<HashMap<String, Value>>;
type KeySet = Rc<HashSet<String>>;

/// Primary-key queries a type and attribute get under [`LookupStrategy::Auto`] before it is indexed.
/// A query costs about what indexing one row costs, so a few thousand calls are cheap either way,
/// while a call per row of a large table is not.
pub(super) const AUTO_QUERIES: u32 = 2048;

/// How one entity type and attribute is being reached.
enum Access {
    /// Primary-key queries so far.
    Queries(u32),
    Indexed(AttrIndex),
    /// Always by primary key.
    Keys,
}

impl Access {
    fn new(strategy: LookupStrategy) -> Access {
        match strategy {
            LookupStrategy::Index => Access::Queries(AUTO_QUERIES),
            LookupStrategy::Auto => Access::Queries(0),
            LookupStrategy::PrimaryKey => Access::Keys,
        }
    }

    /// For the next call: `None` to query by key, the index, or `Err` when it is time to build it.
    fn next_call(&mut self) -> Option<Result<AttrIndex, ()>> {
        match self {
            Access::Keys => None,
            Access::Indexed(index) => Some(Ok(index.clone())),
            Access::Queries(n) if *n >= AUTO_QUERIES => Some(Err(())),
            Access::Queries(n) => {
                *n += 1;
                None
            }
        }
    }
}

pub(super) struct Host<'a> {
    store: &'a Store,
    instance: &'a str,
    now_ms: i64,
    strategy: LookupStrategy,
    /// `config.<name>` → value, secrets left out (they are unbound, so reading one is an error).
    config: HashMap<String, Value>,
    /// (entity type, attribute, access): a handful of entries, searched without building a key.
    attributes: RefCell<Vec<(String, String, Access)>>,
    /// Entity ids by type, for `exists` (the values are unused).
    ids: RefCell<Vec<(String, Access)>>,
    edges: RefCell<Vec<(String, KeySet)>>,
    failure: RefCell<Option<StoreError>>,
}

impl<'a> Host<'a> {
    pub fn new(spec: &Spec, store: &'a Store, options: &KriOptions<'a>) -> Host<'a> {
        let mut config = HashMap::new();
        let scope = options.config.map(|c| c.scope(options.now_ms));
        for field in spec.config.iter().filter(|f| f.kind != ConfigType::Secret) {
            let name = format!("config.{}", field.name);
            let value = match &scope {
                Some(scope) => scope.variable(&name),
                None => Some(field.default.as_ref().map_or(Value::Empty, expr::from_json)),
            };
            if let Some(value) = value {
                config.insert(name, value);
            }
        }
        Host {
            store,
            instance: options.instance,
            now_ms: options.now_ms,
            strategy: options.lookups,
            config,
            attributes: RefCell::default(),
            ids: RefCell::default(),
            edges: RefCell::default(),
            failure: RefCell::default(),
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    pub fn config_variable(&self, name: &str) -> Option<Value> {
        self.config.get(name).cloned()
    }

    /// Whether lookups of this type and attribute go through an index already.
    #[cfg(test)]
    pub fn indexed(&self, entity_type: &str, attribute: &str) -> bool {
        self.attributes
            .borrow()
            .iter()
            .any(|(t, a, access)| t == entity_type && a == attribute && matches!(access, Access::Indexed(_)))
    }

    /// The store error a host function met, if any; the evaluation must then fail with it.
    pub fn take_failure(&self) -> Option<StoreError> {
        self.failure.borrow_mut().take()
    }

    fn fail(&self, error: StoreError) -> EvalError {
        let message = format!("reading the store failed: {error}");
        self.failure.borrow_mut().get_or_insert(error);
        EvalError::new(message)
    }

    fn lookup(&self, entity_type: &str, id: &str, attribute: &str) -> Result<Value, EvalError> {
        let index = {
            let mut attributes = self.attributes.borrow_mut();
            let position = match attributes.iter().position(|(t, a, _)| t == entity_type && a == attribute) {
                Some(position) => position,
                None => {
                    attributes.push((entity_type.to_string(), attribute.to_string(), Access::new(self.strategy)));
                    attributes.len() - 1
                }
            };
            attributes[position].2.next_call()
        };
        let index = match index {
            None => return self.lookup_by_key(entity_type, id, attribute),
            Some(Ok(index)) => index,
            // Built outside the borrow, so the cache is free while the store streams.
            Some(Err(())) => {
                let index = Rc::new(self.attribute_index(entity_type, attribute)?);
                let mut attributes = self.attributes.borrow_mut();
                if let Some(entry) = attributes.iter_mut().find(|(t, a, _)| t == entity_type && a == attribute) {
                    entry.2 = Access::Indexed(index.clone());
                }
                index
            }
        };
        Ok(index.get(id).cloned().unwrap_or(Value::Empty))
    }

    /// One primary-key query.
    fn lookup_by_key(&self, entity_type: &str, id: &str, attribute: &str) -> Result<Value, EvalError> {
        let attributes = self.store.entity_attributes(self.instance, entity_type, id).map_err(|e| self.fail(e))?;
        Ok(match attributes {
            None => Value::Empty,
            Some(_) if attribute == "id" => Value::String(id.to_string()),
            Some(_) if attribute == "type" => Value::String(entity_type.to_string()),
            Some(attributes) => attributes.get(attribute).map_or(Value::Empty, expr::from_json),
        })
    }

    /// Every non-empty value of one attribute of an entity type, by id, in one streaming pass.
    fn attribute_index(&self, entity_type: &str, attribute: &str) -> Result<HashMap<String, Value>, EvalError> {
        let mut map = HashMap::new();
        let only = [attribute.to_string()];
        self.store
            .scan(self.instance, Shape::Entity, entity_type, &Scan { only: Some(&only), ..Scan::default() }, |row| {
                let value = row.field(attribute).or_else(|| row.attributes.get(attribute).cloned());
                if let Some(value) = value.filter(|v| !v.is_null())
                    && let crate::store::Fields::Entity { id, .. } = row.fields
                {
                    map.insert(id.to_string(), expr::from_json(&value));
                }
                Ok::<(), StoreError>(())
            })
            .map_err(|e| self.fail(e))?;
        Ok(map)
    }

    fn exists(&self, entity_type: &str, id: &str) -> Result<bool, EvalError> {
        let probe = {
            let mut ids = self.ids.borrow_mut();
            let position = match ids.iter().position(|(t, _)| t == entity_type) {
                Some(position) => position,
                None => {
                    ids.push((entity_type.to_string(), Access::new(self.strategy)));
                    ids.len() - 1
                }
            };
            ids[position].1.next_call()
        };
        let set = match probe {
            None => {
                let found = self.store.entity_attributes(self.instance, entity_type, id).map_err(|e| self.fail(e))?;
                return Ok(found.is_some());
            }
            Some(Ok(set)) => set,
            Some(Err(())) => {
                let mut set = HashMap::new();
                self.store
                    .scan(
                        self.instance,
                        Shape::Entity,
                        entity_type,
                        &Scan { only: Some(&[]), ..Scan::default() },
                        |row| {
                            if let crate::store::Fields::Entity { id, .. } = row.fields {
                                set.insert(id.to_string(), Value::Boolean(true));
                            }
                            Ok::<(), StoreError>(())
                        },
                    )
                    .map_err(|e| self.fail(e))?;
                let set = Rc::new(set);
                if let Some(entry) = self.ids.borrow_mut().iter_mut().find(|(t, _)| t == entity_type) {
                    entry.1 = Access::Indexed(set.clone());
                }
                set
            }
        };
        Ok(set.contains_key(id))
    }

    fn has_edge(&self, parts: [&str; 5]) -> Result<bool, EvalError> {
        let [from_type, from_id, kind, to_type, to_id] = parts;
        let set = self.key_set(&self.edges, kind, Shape::Edge, |row| match &row.fields {
            crate::store::Fields::Edge { from_type, from_id, to_type, to_id, .. } => {
                Some(edge_key(from_type, from_id, to_type, to_id))
            }
            _ => None,
        })?;
        Ok(set.contains(&edge_key(from_type, from_id, to_type, to_id)))
    }

    /// The set of keys of every row of `name`, streamed once and then kept.
    fn key_set(
        &self,
        cache: &RefCell<Vec<(String, KeySet)>>,
        name: &str,
        shape: Shape,
        key: impl Fn(&RowRef<'_>) -> Option<String>,
    ) -> Result<KeySet, EvalError> {
        if let Some((_, set)) = cache.borrow().iter().find(|(n, _)| n == name) {
            return Ok(set.clone());
        }
        let mut set = HashSet::new();
        self.store
            .scan(self.instance, shape, name, &Scan { only: Some(&[]), ..Scan::default() }, |row| {
                set.extend(key(&row));
                Ok::<(), StoreError>(())
            })
            .map_err(|e| self.fail(e))?;
        let set = Rc::new(set);
        cache.borrow_mut().push((name.to_string(), set.clone()));
        Ok(set)
    }
}

/// One key per edge; the unit separator cannot occur in the ids an API returns in practice, and a
/// collision would need one id to contain it.
fn edge_key(from_type: &str, from_id: &str, to_type: &str, to_id: &str) -> String {
    [from_type, from_id, to_type, to_id].join("\u{1f}")
}

/// A text argument of a host function; an id may also be an integer. `None` for the empty value, which
/// a missing id (a null attribute) is: looking it up finds nothing.
fn text_arg<'v>(function: &str, position: usize, value: &'v Value) -> Result<Option<Cow<'v, str>>, EvalError> {
    match value {
        Value::String(s) => Ok(Some(Cow::Borrowed(s))),
        Value::Int(i) => Ok(Some(Cow::Owned(i.to_string()))),
        Value::Empty => Ok(None),
        other => Err(EvalError::new(format!(
            "`{function}`: argument {position} should be text, got {}",
            expr::describe(other)
        ))),
    }
}

impl Host<'_> {
    /// Dispatches a host function; `None` for a name that is not one. Called once per row, so it
    /// allocates nothing on the way to the index.
    pub fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, EvalError>> {
        let text = |position: usize| text_arg(name, position + 1, &args[position]);
        let result = match (name, args.len()) {
            ("lookup", 3) => (|| {
                let (Some(kind), Some(attribute)) = (text(0)?, text(2)?) else {
                    return Err(EvalError::new("`lookup`: the type and attribute cannot be empty"));
                };
                match text(1)? {
                    Some(id) => self.lookup(&kind, &id, &attribute),
                    None => Ok(Value::Empty),
                }
            })(),
            ("exists", 2) => (|| {
                let Some(kind) = text(0)? else {
                    return Err(EvalError::new("`exists`: the type cannot be empty"));
                };
                match text(1)? {
                    Some(id) => self.exists(&kind, &id).map(Value::Boolean),
                    None => Ok(Value::Boolean(false)),
                }
            })(),
            ("has_edge", 5) => (|| {
                let parts = [text(0)?, text(1)?, text(2)?, text(3)?, text(4)?];
                match parts {
                    [Some(a), Some(b), Some(c), Some(d), Some(e)] => {
                        self.has_edge([&a, &b, &c, &d, &e]).map(Value::Boolean)
                    }
                    _ => Ok(Value::Boolean(false)),
                }
            })(),
            ("lookup" | "exists" | "has_edge", n) => Err(EvalError::new(format!("`{name}` cannot take {n} arguments"))),
            _ => return None,
        };
        Some(result)
    }
}

/// The scope of a `where` predicate: the row's fields, then its attributes (a missing attribute is the
/// empty value, as a JSON null is), `config.*`, the clock and the host functions.
pub(super) struct RowScope<'r> {
    pub row: &'r RowRef<'r>,
    pub host: &'r Host<'r>,
    pub values: &'r RowValues,
}

/// The values of one row by name, each converted on its first read: the predicates of one scan read
/// the same few names, so each is converted once per row, and not at all for rows no predicate reads.
pub(super) struct RowValues {
    names: Vec<String>,
    values: Vec<OnceCell<Option<Value>>>,
}

impl RowValues {
    pub fn new(names: &[String]) -> RowValues {
        RowValues { names: names.to_vec(), values: names.iter().map(|_| OnceCell::new()).collect() }
    }

    /// Forgets the previous row's values.
    pub fn clear(&mut self) {
        self.values.iter_mut().for_each(|v| {
            v.take();
        });
    }
}

impl RowScope<'_> {
    /// Appends to `key` a byte string that identifies what [`Scope::variable`] gives for `name`: two
    /// equal byte strings always stand for the same value. It reads the stored JSON directly, because it
    /// runs for every row, and converting values only to compare them would cost as much as evaluating.
    pub fn encode_variable(&self, name: &str, key: &mut Vec<u8>) {
        if let Some(value) = self.row.field(name) {
            key.push(b'f');
            encode_json(&value, key);
        } else if let Some(value) = self.row.attributes.get(name) {
            key.push(b'a');
            encode_json(value, key);
        } else if name.starts_with("config.") {
            // Constant during an evaluation; only its presence matters to the key.
            key.push(if self.host.config.contains_key(name) { b'c' } else { b'u' });
        } else {
            key.push(b'e');
        }
    }
}

/// A self-delimiting encoding of a JSON value: a tag, then lengths before variable-length content.
fn encode_json(value: &serde_json::Value, key: &mut Vec<u8>) {
    use serde_json::Value as J;
    match value {
        J::Null => key.push(b'n'),
        J::Bool(b) => key.push(if *b { b't' } else { b'f' }),
        J::Number(n) => match n.as_i64() {
            Some(i) => {
                key.push(b'i');
                key.extend_from_slice(&i.to_le_bytes());
            }
            None => {
                key.push(b'd');
                key.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_bits().to_le_bytes());
            }
        },
        J::String(s) => {
            key.push(b's');
            key.extend_from_slice(&(s.len() as u64).to_le_bytes());
            key.extend_from_slice(s.as_bytes());
        }
        J::Array(items) => {
            key.push(b'l');
            key.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|item| encode_json(item, key));
        }
        J::Object(_) => {
            let text = value.to_string();
            key.push(b'o');
            key.extend_from_slice(&(text.len() as u64).to_le_bytes());
            key.extend_from_slice(text.as_bytes());
        }
    }
}

impl Scope for RowScope<'_> {
    fn variable_ref(&self, name: &str) -> Option<Cow<'_, Value>> {
        match self.values.names.iter().position(|n| n == name) {
            Some(i) => self.values.values[i].get_or_init(|| self.value(name)).as_ref().map(Cow::Borrowed),
            None => self.value(name).map(Cow::Owned),
        }
    }

    fn variable(&self, name: &str) -> Option<Value> {
        self.variable_ref(name).map(Cow::into_owned)
    }

    fn now_ms(&self) -> i64 {
        self.host.now_ms
    }

    fn call_host(&self, name: &str, args: &[Value]) -> Option<Result<Value, EvalError>> {
        self.host.call(name, args)
    }
}

impl RowScope<'_> {
    fn value(&self, name: &str) -> Option<Value> {
        if let Some(value) = self.row.field(name) {
            return Some(expr::from_json(&value));
        }
        if let Some(value) = self.row.attributes.get(name) {
            return Some(expr::from_json(value));
        }
        if name.starts_with("config.") {
            // A secret is unbound: reading it is an error.
            return self.host.config_variable(name);
        }
        // Validation only lets a predicate name fields and attributes of its type, so anything else is
        // an attribute this row does not have.
        Some(Value::Empty)
    }
}
