//! Deserializes a [`Node`] into any serde type, pointing every error at the exact node.
//!
//! Two things set it apart from a plain value deserializer:
//! - Unknown keys in a struct are all reported (with a "did you mean") into a shared sink, and skipped,
//!   so one pass finds every misspelt key of an item instead of stopping at the first.
//! - [`Sp<T>`] captures the span of the value it wraps, so later checks can point at a JSONPath or an
//!   expression without a separate path-to-span index.

use super::{Node, NodeKind};
use crate::diag::{Code, Diagnostic, Span, did_you_mean};
use serde::de::{self, DeserializeSeed, Deserializer, Error as _, IntoDeserializer, Visitor};
use std::cell::RefCell;
use std::fmt;

/// Deserializes `node` as `T`. Unknown keys go to `sink` and do not stop the item; the first real
/// error (wrong type, missing key) ends the item and is returned.
pub fn from_node<'a, T: de::Deserialize<'a>>(node: &'a Node, sink: &RefCell<Vec<Diagnostic>>) -> Result<T, Diagnostic> {
    T::deserialize(NodeDeserializer { node, sink }).map_err(|e| e.into_diagnostic(node.anchor()))
}

/// A value together with the span of its YAML text. Equality, ordering and hashing look at the value only.
#[derive(Clone, Debug)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
    /// See [`Node::text_offset`].
    pub text_offset: Option<usize>,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Self {
        Sp { value, span, text_offset: None }
    }

    /// The span of bytes `offset..offset+len` of the value's text, when the text maps one to one;
    /// otherwise the whole value.
    pub fn sub_span(&self, offset: usize, len: usize) -> Span {
        match self.text_offset {
            Some(shift) => Span::new(self.span.start + shift + offset, len.max(1)),
            None => self.span,
        }
    }
}

impl<T: PartialEq> PartialEq for Sp<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<T: Eq> Eq for Sp<T> {}
impl<T: std::hash::Hash> std::hash::Hash for Sp<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}
impl<T: PartialOrd> PartialOrd for Sp<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}
impl<T: Ord> Ord for Sp<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}
impl<T> std::ops::Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

const SPANNED: &str = "$engine::Sp";
const SPANNED_START: &str = "$engine::Sp::start";
const SPANNED_LEN: &str = "$engine::Sp::len";
const SPANNED_SHIFT: &str = "$engine::Sp::shift";
const SPANNED_VALUE: &str = "$engine::Sp::value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_LEN, SPANNED_SHIFT, SPANNED_VALUE];

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: de::Deserialize<'de>> Visitor<'de> for SpVisitor<T> {
            type Value = Sp<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a spanned value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Sp<T>, A::Error> {
                let (mut start, mut len, mut shift, mut value) = (0usize, 0usize, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        SPANNED_START => start = map.next_value()?,
                        SPANNED_LEN => len = map.next_value()?,
                        SPANNED_SHIFT => shift = usize::try_from(map.next_value::<i64>()?).ok(),
                        _ => value = Some(map.next_value()?),
                    }
                }
                let value = value.ok_or_else(|| de::Error::custom("spanned value without a value"))?;
                Ok(Sp { value, span: Span::new(start, len), text_offset: shift })
            }
        }
        deserializer.deserialize_struct(SPANNED, SPANNED_FIELDS, SpVisitor(std::marker::PhantomData))
    }
}

/// Error while deserializing one node. The span is filled in by the innermost node that sees it.
#[derive(Debug)]
pub struct DeError {
    code: Code,
    message: String,
    span: Option<Span>,
    help: Option<String>,
}

impl DeError {
    fn at(mut self, span: Span) -> Self {
        self.span.get_or_insert(span);
        self
    }

    fn into_diagnostic(self, fallback: Span) -> Diagnostic {
        let label = match self.code {
            Code::MissingKey => "in this item",
            Code::UnknownKey => "unknown key",
            _ => "here",
        };
        let mut d = Diagnostic::error(self.code, self.span.unwrap_or(fallback), self.message).with_label(label);
        d.help = self.help;
        d
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError { code: Code::WrongType, message: msg.to_string(), span: None, help: None }
    }

    fn invalid_type(unexpected: de::Unexpected, expected: &dyn de::Expected) -> Self {
        let found = match unexpected {
            de::Unexpected::Map => "a mapping".to_string(),
            de::Unexpected::Seq => "a list".to_string(),
            de::Unexpected::Unit => "null".to_string(),
            other => other.to_string(),
        };
        DeError::custom(format!("expected {expected}, found {found}"))
    }

    fn missing_field(field: &'static str) -> Self {
        DeError { code: Code::MissingKey, message: format!("missing key `{field}`"), span: None, help: None }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let help = match did_you_mean(field, expected.iter().copied()) {
            Some(close) => format!("did you mean `{close}`? Accepted here: {}", expected.join(", ")),
            None => format!("accepted here: {}", expected.join(", ")),
        };
        DeError { code: Code::UnknownKey, message: format!("unknown key `{field}`"), span: None, help: Some(help) }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let help = did_you_mean(variant, expected.iter().copied()).map(|s| format!("did you mean `{s}`?"));
        DeError {
            code: Code::WrongType,
            message: format!("unknown kind `{variant}`, expected one of: {}", expected.join(", ")),
            span: None,
            help,
        }
    }
}

#[derive(Clone, Copy)]
struct NodeDeserializer<'a, 's> {
    node: &'a Node,
    sink: &'s RefCell<Vec<Diagnostic>>,
}

impl<'a, 's> NodeDeserializer<'a, 's> {
    fn child(&self, node: &'a Node) -> Self {
        NodeDeserializer { node, sink: self.sink }
    }

    fn wrong(&self, expected: &str) -> DeError {
        DeError::custom(format!("expected {expected}, found {}", self.node.kind_name())).at(self.node.anchor())
    }
}

macro_rules! forward_number {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
            let span = self.node.span;
            match self.node.kind {
                NodeKind::Int(i) => visitor.visit_i64(i),
                NodeKind::Float(f) => visitor.visit_f64(f),
                _ => return Err(self.wrong("a number")),
            }
              .map_err(|e: DeError| e.at(span))
        }
    )*};
}

impl<'a> Deserializer<'a> for NodeDeserializer<'a, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.anchor();
        match &self.node.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Bool(b) => visitor.visit_bool(*b),
            NodeKind::Int(i) => visitor.visit_i64(*i),
            NodeKind::Float(f) => visitor.visit_f64(*f),
            NodeKind::Str(s) => visitor.visit_str(s),
            NodeKind::Seq(items) => visitor.visit_seq(SeqAccess { de: self, items: items.iter() }),
            NodeKind::Map(entries) => visitor.visit_map(MapAccess {
                de: self,
                entries: entries.iter().collect::<Vec<_>>().into_iter(),
                value: None,
            }),
        }
        .map_err(|e: DeError| e.at(span))
    }

    forward_number!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64);

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Bool(b) => visitor.visit_bool(b).map_err(|e: DeError| e.at(self.node.span)),
            _ => Err(self.wrong("`true` or `false`")),
        }
    }

    fn deserialize_char<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    /// Scalars of any kind are accepted where text is expected, since YAML authors write `top: 999`.
    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Str(s) => visitor.visit_str(s),
            NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) => {
                visitor.visit_string(self.node.scalar_text().unwrap_or_default())
            }
            _ => return Err(self.wrong("text")),
        }
        .map_err(|e: DeError| e.at(self.node.span))
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Null => visitor.visit_unit(),
            _ => Err(self.wrong("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Seq(items) => visitor
                .visit_seq(SeqAccess { de: self, items: items.iter() })
                .map_err(|e: DeError| e.at(self.node.anchor())),
            _ => Err(self.wrong("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Map(entries) => visitor
                .visit_map(MapAccess { de: self, entries: entries.iter().collect::<Vec<_>>().into_iter(), value: None })
                .map_err(|e: DeError| e.at(self.node.anchor())),
            // An empty value (`query:` with nothing after it) reads as an empty mapping.
            NodeKind::Null => visitor.visit_map(MapAccess { de: self, entries: Vec::new().into_iter(), value: None }),
            _ => Err(self.wrong("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED {
            return visitor.visit_map(SpannedAccess { de: self, step: 0 });
        }
        let entries = match &self.node.kind {
            NodeKind::Map(entries) => entries,
            _ => return Err(self.wrong("a mapping")),
        };
        // Report every unknown key now, then hand only the known ones to the struct.
        let mut known = Vec::with_capacity(entries.len());
        for entry in entries {
            let key = entry.0.scalar_text().unwrap_or_default();
            if fields.contains(&key.as_str()) {
                known.push(entry);
            } else {
                let mut d = Diagnostic::error(Code::UnknownKey, entry.0.span, format!("unknown key `{key}`"))
                    .with_label("unknown key");
                d.help = Some(match did_you_mean(&key, fields.iter().copied()) {
                    Some(close) => format!("did you mean `{close}`? Accepted here: {}", fields.join(", ")),
                    None => format!("accepted here: {}", fields.join(", ")),
                });
                self.sink.borrow_mut().push(d);
            }
        }
        visitor
            .visit_map(MapAccess { de: self, entries: known.into_iter(), value: None })
            .map_err(|e: DeError| e.at(self.node.anchor()))
    }

    /// Enums are written externally tagged: `kind` alone, or `kind: { settings }` as the only key.
    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Str(_) => visitor.visit_enum(EnumAccess { de: self, tag: self.node, content: None }),
            // A variant named `null` may be written as YAML null (`missing: null`), as authors expect.
            NodeKind::Null if variants.contains(&"null") => visitor.visit_enum(NullVariant),
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (tag, content) = &entries[0];
                visitor.visit_enum(EnumAccess { de: self, tag, content: Some(content) })
            }
            _ => Err(DeError {
                code: Code::Conflict,
                message: format!("expected exactly one of: {}", variants.join(", ")),
                span: Some(self.node.anchor()),
                help: Some("write the kind as the only key, for example `kind: { ...settings }`".into()),
            }),
        }
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqAccess<'a, 's> {
    de: NodeDeserializer<'a, 's>,
    items: std::slice::Iter<'a, Node>,
}

impl<'a> de::SeqAccess<'a> for SeqAccess<'a, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'a>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed.deserialize(self.de.child(node)).map(Some).map_err(|e: DeError| e.at(node.anchor())),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'a, 's> {
    de: NodeDeserializer<'a, 's>,
    entries: std::vec::IntoIter<&'a (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'a> de::MapAccess<'a> for MapAccess<'a, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'a>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(self.de.child(key)).map(Some).map_err(|e: DeError| e.at(key.span))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self.value.take().expect("next_value called before next_key");
        seed.deserialize(self.de.child(node)).map_err(|e: DeError| e.at(node.anchor()))
    }
}

struct EnumAccess<'a, 's> {
    de: NodeDeserializer<'a, 's>,
    tag: &'a Node,
    content: Option<&'a Node>,
}

impl<'a, 's> de::EnumAccess<'a> for EnumAccess<'a, 's> {
    type Error = DeError;
    type Variant = VariantAccess<'a, 's>;
    fn variant_seed<V: DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, Self::Variant), DeError> {
        let tag = seed.deserialize(self.de.child(self.tag)).map_err(|e: DeError| e.at(self.tag.span))?;
        Ok((tag, VariantAccess { de: self.de, tag: self.tag, content: self.content }))
    }
}

struct VariantAccess<'a, 's> {
    de: NodeDeserializer<'a, 's>,
    tag: &'a Node,
    content: Option<&'a Node>,
}

impl<'a> de::VariantAccess<'a> for VariantAccess<'a, '_> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        match self.content {
            None => Ok(()),
            Some(node) if matches!(node.kind, NodeKind::Null) => Ok(()),
            Some(node) => {
                Err(DeError::custom(format!("`{}` takes no settings", self.tag.scalar_text().unwrap_or_default()))
                    .at(node.anchor()))
            }
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, DeError> {
        // `kind:` with no settings reads as `kind: {}` so that all-default variants need no braces.
        static EMPTY: Node = Node {
            span: Span { start: 0, len: 0 },
            key_span: None,
            text_offset: None,
            kind: NodeKind::Map(Vec::new()),
        };
        let node = match self.content {
            Some(node) if !matches!(node.kind, NodeKind::Null) => node,
            _ => &EMPTY,
        };
        seed.deserialize(self.de.child(node)).map_err(|e: DeError| e.at(self.tag.span))
    }
    fn tuple_variant<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.content {
            Some(node) => self.de.child(node).deserialize_seq(visitor),
            None => Err(DeError::custom("expected a list").at(self.tag.span)),
        }
    }
    fn struct_variant<V: Visitor<'a>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, DeError> {
        match self.content {
            Some(node) => self.de.child(node).deserialize_struct("", fields, visitor),
            None => Err(DeError::custom("expected settings").at(self.tag.span)),
        }
    }
}

/// The `null` variant of an enum, written as YAML null.
struct NullVariant;

impl<'a> de::EnumAccess<'a> for NullVariant {
    type Error = DeError;
    type Variant = NullVariant;
    fn variant_seed<V: DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, Self::Variant), DeError> {
        Ok((seed.deserialize("null".into_deserializer())?, NullVariant))
    }
}

impl<'a> de::VariantAccess<'a> for NullVariant {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, _seed: T) -> Result<T::Value, DeError> {
        Err(DeError::custom("`null` takes no settings"))
    }
    fn tuple_variant<V: Visitor<'a>>(self, _len: usize, _visitor: V) -> Result<V::Value, DeError> {
        Err(DeError::custom("`null` takes no settings"))
    }
    fn struct_variant<V: Visitor<'a>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DeError> {
        Err(DeError::custom("`null` takes no settings"))
    }
}

/// Feeds [`Sp`] its span and then the value.
struct SpannedAccess<'a, 's> {
    de: NodeDeserializer<'a, 's>,
    step: usize,
}

impl<'a> de::MapAccess<'a> for SpannedAccess<'a, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'a>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(key) = SPANNED_FIELDS.get(self.step) else {
            return Ok(None);
        };
        seed.deserialize((*key).into_deserializer()).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'a>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self.de.node;
        let span = node.anchor();
        self.step += 1;
        match self.step {
            1 => seed.deserialize((span.start as u64).into_deserializer()),
            2 => seed.deserialize((span.len as u64).into_deserializer()),
            // -1 stands for "no verbatim text" so the value stays a plain integer.
            3 => seed.deserialize(node.text_offset.map_or(-1i64, |s| s as i64).into_deserializer()),
            _ => seed.deserialize(self.de),
        }
    }
}

#[cfg(test)]
mod tests;
