//! What KRI expressions read besides their own row: `config.*`, the pinned clock, and the host
//! functions `lookup(type, id, attribute)`, `exists(type, id)` and `has_edge(from_type, from_id, kind,
//! to_type, to_id)`.
//!
//! Host functions are called once per row, so a call must not scan. Under the default strategy the first
//! [`AUTO_QUERIES`] calls for an entity type and attribute are primary-key queries. If their ids came in
//! order (a scan of users by id looking up each user's own registration), later calls read the type
//! ahead in id order, [`WINDOW_ROWS`] rows per seek: a merge join that holds one window of rows, and
//! whose reads follow the scan's slice. Otherwise (or once [`BEHIND_LIMIT`] calls fell behind the
//! window) the type is streamed once into a hash map from id to value (only non-empty values are kept:
//! a missing entity and a null attribute both read as empty), and every later call is a hash probe.
//! `exists` works the same way on a type's ids; `has_edge` collects an edge kind on its first call.
//! Nothing is read for an indicator that is not selected, and an index serves every indicator of one
//! scan's thread.
//!
//! A store failure while building an index cannot travel through the expression evaluator as such: it
//! is kept here, the call fails, and the scan that made the call hands the kept error back to the caller
//! of the evaluation ([`Host::take_failure`]).

use super::{KriOptions, LookupStrategy};
use crate::expr::{self, EvalError, Scope, Value};
use crate::model::{ConfigType, Shape, Spec};
use crate::store::{RowRef, Scan, Store, StoreError};
use foldhash::{HashMap as FastMap, HashMapExt, HashSet as FastSet, HashSetExt};
use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

type AttrIndex = Rc<FastMap<String, Value>>;
type KeySet = Rc<FastSet<String>>;

/// Primary-key queries a type and attribute get under [`LookupStrategy::Auto`] before it is indexed.
/// A query costs about what indexing one row costs, so a few thousand calls are cheap either way,
/// while a call per row of a large table is not.
pub(super) const AUTO_QUERIES: u32 = 2048;

/// Rows a window reads ahead at a time.
const WINDOW_ROWS: usize = 1024;

/// Calls behind a window (by key) before the type is indexed after all.
pub(super) const BEHIND_LIMIT: u32 = 256;

/// How one entity type and attribute is being reached.
enum Access {
    /// Primary-key queries so far: how many, the last id asked, and whether ids came in order.
    Queries {
        calls: u32,
        last: Option<String>,
        ascending: bool,
    },
    Indexed(AttrIndex),
    /// Ids come in order (a scan of entities by id looking up its own id elsewhere): rows are read
    /// ahead in id order, a merge join that holds a window of rows instead of the whole type.
    Ahead(Window),
    /// Always by key.
    Keys,
}

/// Where the next call goes.
enum Route {
    Key,
    Index(AttrIndex),
    Window,
    BuildIndex,
}

impl Access {
    fn new(strategy: LookupStrategy) -> Access {
        let queries = |calls| Access::Queries { calls, last: None, ascending: strategy == LookupStrategy::Auto };
        match strategy {
            LookupStrategy::Index => queries(AUTO_QUERIES),
            LookupStrategy::Auto => queries(0),
            LookupStrategy::PrimaryKey => Access::Keys,
        }
    }

    fn route(&mut self, id: &str) -> Route {
        match self {
            Access::Keys => Route::Key,
            Access::Indexed(index) => Route::Index(index.clone()),
            Access::Ahead(window) if window.behind >= BEHIND_LIMIT => Route::BuildIndex,
            Access::Ahead(_) => Route::Window,
            Access::Queries { calls, ascending: true, .. } if *calls >= AUTO_QUERIES => {
                *self = Access::Ahead(Window::default());
                Route::Window
            }
            Access::Queries { calls, .. } if *calls >= AUTO_QUERIES => Route::BuildIndex,
            Access::Queries { calls, last, ascending } => {
                *calls += 1;
                *ascending &= last.as_deref().is_none_or(|last| last <= id);
                *last = Some(id.to_string());
                Route::Key
            }
        }
    }
}

/// The rows of a type from one id on, in id order.
#[derive(Default)]
struct Window {
    /// (id, value): the attribute's value (empty when it is), or true for `exists`.
    rows: Vec<(String, Value)>,
    /// The first id the rows were read from; `None` before the first read.
    from: Option<String>,
    /// Whether `rows` runs to the end of the type.
    to_end: bool,
    /// Where the last call found its id.
    at: usize,
    /// Calls for ids before the window, answered by key.
    behind: u32,
}

impl Window {
    /// The value for `id`: `Some(None)` when no row has it, `None` when it lies before the window.
    fn get(
        &mut self,
        id: &str,
        read: impl FnOnce(&str) -> Result<Vec<(String, Value)>, EvalError>,
    ) -> Result<Option<Option<Value>>, EvalError> {
        if self.from.as_deref().is_some_and(|from| id < from) {
            self.behind += 1;
            return Ok(None);
        }
        let covered =
            self.from.is_some() && (self.to_end || self.rows.last().is_some_and(|(last, _)| id <= last.as_str()));
        if !covered {
            self.rows = read(id)?;
            self.from = Some(id.to_string());
            self.to_end = self.rows.len() < WINDOW_ROWS;
            self.at = 0;
        }
        if self.rows.get(self.at).is_some_and(|(at, _)| at.as_str() > id) {
            self.at = 0;
        }
        // In a merge the id sought is at or just past the last one found: step before searching.
        let mut steps = 0;
        while steps < 4 && self.rows.get(self.at).is_some_and(|(row, _)| row.as_str() < id) {
            self.at += 1;
            steps += 1;
        }
        if steps == 4 {
            self.at += self.rows[self.at..].partition_point(|(row, _)| row.as_str() < id);
        }
        Ok(Some(self.rows.get(self.at).filter(|(row, _)| row == id).map(|(_, value)| value.clone())))
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
    attributes: RefCell<Vec<(usize, String, String, Access)>>,
    /// Entity ids by type, for `exists` (the values are unused).
    ids: RefCell<Vec<(usize, String, Access)>>,
    /// The scan making calls: each scan's calls have their own order, so access is decided per scan,
    /// while indexes, once built, serve every scan.
    scan: Cell<usize>,
    /// Built indexes: (entity type, attribute or `None` for ids, index).
    indexes: RefCell<Vec<(String, Option<String>, AttrIndex)>>,
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
            scan: Cell::new(0),
            indexes: RefCell::default(),
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
            .any(|(_, t, a, access)| t == entity_type && a == attribute && matches!(access, Access::Indexed(_)))
    }

    /// Whether lookups of this type and attribute read rows ahead in id order.
    #[cfg(test)]
    pub fn ahead(&self, entity_type: &str, attribute: &str) -> bool {
        self.attributes
            .borrow()
            .iter()
            .any(|(_, t, a, access)| t == entity_type && a == attribute && matches!(access, Access::Ahead(_)))
    }

    /// Says which scan the next calls come from (any number that tells scans apart).
    pub fn enter_scan(&self, scan: usize) {
        self.scan.set(scan);
    }

    /// An index built before, by any scan.
    fn built(&self, entity_type: &str, attribute: Option<&str>) -> Option<AttrIndex> {
        let indexes = self.indexes.borrow();
        let found = indexes.iter().find(|(t, a, _)| t == entity_type && a.as_deref() == attribute);
        found.map(|(_, _, index)| index.clone())
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
        let scan = self.scan.get();
        let mut attributes = self.attributes.borrow_mut();
        let position = match attributes.iter().position(|(s, t, a, _)| *s == scan && t == entity_type && a == attribute)
        {
            Some(position) => position,
            None => {
                let access = Access::new(self.strategy);
                attributes.push((scan, entity_type.to_string(), attribute.to_string(), access));
                attributes.len() - 1
            }
        };
        let access = &mut attributes[position].3;
        match access.route(id) {
            Route::Key => {}
            Route::Index(index) => return Ok(index.get(id).cloned().unwrap_or(Value::Empty)),
            Route::Window => {
                let Access::Ahead(window) = access else { unreachable!("routed to its window") };
                let only = [attribute.to_string()];
                let read = |from: &str| {
                    let mut rows = Vec::with_capacity(WINDOW_ROWS);
                    self.store
                        .entities_from(self.instance, entity_type, from, WINDOW_ROWS, &only, |row| {
                            let value = row.field(attribute).or_else(|| row.attribute(attribute).cloned());
                            if let crate::store::Fields::Entity { id, .. } = row.fields {
                                rows.push((id.to_string(), value.map_or(Value::Empty, |v| expr::from_json(&v))));
                            }
                            Ok::<(), StoreError>(())
                        })
                        .map_err(|e| self.fail(e))?;
                    Ok(rows)
                };
                if let Some(found) = window.get(id, read)? {
                    return Ok(found.unwrap_or(Value::Empty));
                }
            }
            Route::BuildIndex => {
                // Built outside the borrow, so the cache is free while the store streams.
                drop(attributes);
                let index = match self.built(entity_type, Some(attribute)) {
                    Some(index) => index,
                    None => {
                        let index = Rc::new(self.attribute_index(entity_type, attribute)?);
                        let key = (entity_type.to_string(), Some(attribute.to_string()), index.clone());
                        self.indexes.borrow_mut().push(key);
                        index
                    }
                };
                self.attributes.borrow_mut()[position].3 = Access::Indexed(index.clone());
                return Ok(index.get(id).cloned().unwrap_or(Value::Empty));
            }
        }
        self.lookup_by_key(entity_type, id, attribute)
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
    fn attribute_index(&self, entity_type: &str, attribute: &str) -> Result<FastMap<String, Value>, EvalError> {
        let mut map = FastMap::new();
        let only = [attribute.to_string()];
        self.store
            .scan(self.instance, Shape::Entity, entity_type, &Scan { only: Some(&only), ..Scan::default() }, |row| {
                let value = row.field(attribute).or_else(|| row.attribute(attribute).cloned());
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
        let scan = self.scan.get();
        let mut ids = self.ids.borrow_mut();
        let position = match ids.iter().position(|(s, t, _)| *s == scan && t == entity_type) {
            Some(position) => position,
            None => {
                ids.push((scan, entity_type.to_string(), Access::new(self.strategy)));
                ids.len() - 1
            }
        };
        let access = &mut ids[position].2;
        match access.route(id) {
            Route::Key => {}
            Route::Index(set) => return Ok(set.contains_key(id)),
            Route::Window => {
                let Access::Ahead(window) = access else { unreachable!("routed to its window") };
                let read = |from: &str| {
                    let mut rows = Vec::with_capacity(WINDOW_ROWS);
                    self.store
                        .entities_from(self.instance, entity_type, from, WINDOW_ROWS, &[], |row| {
                            if let crate::store::Fields::Entity { id, .. } = row.fields {
                                rows.push((id.to_string(), Value::Boolean(true)));
                            }
                            Ok::<(), StoreError>(())
                        })
                        .map_err(|e| self.fail(e))?;
                    Ok(rows)
                };
                if let Some(found) = window.get(id, read)? {
                    return Ok(found.is_some());
                }
            }
            Route::BuildIndex => {
                drop(ids);
                let set = match self.built(entity_type, None) {
                    Some(set) => set,
                    None => {
                        let mut set = FastMap::new();
                        let scan = Scan { only: Some(&[]), ..Scan::default() };
                        self.store
                            .scan(self.instance, Shape::Entity, entity_type, &scan, |row| {
                                if let crate::store::Fields::Entity { id, .. } = row.fields {
                                    set.insert(id.to_string(), Value::Boolean(true));
                                }
                                Ok::<(), StoreError>(())
                            })
                            .map_err(|e| self.fail(e))?;
                        let set = Rc::new(set);
                        self.indexes.borrow_mut().push((entity_type.to_string(), None, set.clone()));
                        set
                    }
                };
                self.ids.borrow_mut()[position].2 = Access::Indexed(set.clone());
                return Ok(set.contains_key(id));
            }
        }
        let found = self.store.entity_attributes(self.instance, entity_type, id).map_err(|e| self.fail(e))?;
        Ok(found.is_some())
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
        let mut set = FastSet::new();
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
    pub fn call(&self, name: &str, args: &[&Value]) -> Option<Result<Value, EvalError>> {
        let text = |position: usize| text_arg(name, position + 1, args[position]);
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
        } else if let Some(value) = self.row.attribute(name) {
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

    fn call_host(&self, name: &str, args: &[&Value]) -> Option<Result<Value, EvalError>> {
        self.host.call(name, args)
    }
}

impl RowScope<'_> {
    fn value(&self, name: &str) -> Option<Value> {
        if let Some(value) = self.row.field(name) {
            return Some(expr::from_json(&value));
        }
        if let Some(value) = self.row.attribute(name) {
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
