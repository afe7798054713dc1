//! The shape of a command's arguments (names, types, which are required, whether
//! unknown names are refused), read from the argument struct's own `Deserialize`
//! implementation. `LD_export_schema` turns it into a JSON Schema and the linter
//! checks every argument against it, so neither can drift from what a command
//! really parses.
//!
//! How: a deserializer that answers every request with a sample value and records
//! what was asked for (`deserialize_u32` is an integer ≥ 0, `deserialize_struct`
//! names the fields, `deserialize_option` is nullable...). Which fields are required
//! is learned by leaving them out (serde then reports `missing_field`), and whether
//! unknown fields are refused by offering one. A sample a custom parser refuses only
//! hides what is below that field, which is then "any value".

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde_json::{Map, Value, json};

/// What one value of the arguments may be.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Anything (a `serde_json::Value`, or a type that reads itself).
    Any,
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// An integer; `unsigned` when it must be ≥ 0.
    Integer {
        /// Must be ≥ 0.
        unsigned: bool,
    },
    /// Any number.
    Number,
    /// A string.
    String,
    /// One of these strings.
    Enum(Vec<String>),
    /// The inner shape, or `null`.
    Optional(Box<Shape>),
    /// A list of one shape.
    Array(Box<Shape>),
    /// A list of exactly these shapes.
    Tuple(Vec<Shape>),
    /// An object whose values have one shape.
    Map(Box<Shape>),
    /// An object with named fields.
    Struct(StructShape),
}

/// An object with named fields.
#[derive(Debug, Clone, PartialEq)]
pub struct StructShape {
    /// Each field, in declaration order, with its shape.
    pub fields: Vec<(String, Shape)>,
    /// The fields that must be given.
    pub required: BTreeSet<String>,
    /// True when other names are refused (`deny_unknown_fields`).
    pub deny_unknown: bool,
}

/// The arguments of one command: their shape, and the names positional arguments
/// are given in (`["LD_sleep", [1]]` is `seconds: 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct ArgumentSpec {
    /// The keyword arguments (a [`Shape::Struct`] for typed commands).
    pub shape: Shape,
    /// The names of positional arguments, in order.
    pub params: Vec<String>,
}

impl ArgumentSpec {
    /// The spec of arguments parsed into `T`, positional ones named by `params`.
    pub fn of<T: DeserializeOwned>(params: &[&str]) -> Self {
        Self {
            shape: trace::<T>(),
            params: params.iter().map(|p| (*p).to_string()).collect(),
        }
    }

    /// Arguments whose shape is unknown: any object or list.
    pub fn any() -> Self {
        Self {
            shape: Shape::Any,
            params: Vec::new(),
        }
    }
}

/// How many times `T` is deserialized at most while tracing.
const MAX_RUNS: usize = 512;
/// How deep tracing goes (recursive types stop here, as "any value").
const MAX_DEPTH: usize = 24;
/// The field offered to learn whether unknown fields are refused.
const PROBE_FIELD: &str = "\u{1}loaddensity-probe";

/// Traces `T`'s `Deserialize` implementation into a [`Shape`].
pub fn trace<T: DeserializeOwned>() -> Shape {
    let state = State::default();
    let run = |state: &State| -> bool {
        state.failed.replace(None);
        T::deserialize(Tracer {
            state,
            path: String::new(),
            depth: 0,
        })
        .is_ok()
    };
    let mut runs = 0;
    // 1. Shapes: offer every field; skip those whose sample a parser refuses.
    while runs < MAX_RUNS {
        runs += 1;
        if run(&state) {
            break;
        }
        let Some(failed) = state.failed.take() else {
            break;
        };
        if !state.skip.borrow_mut().insert(failed) {
            break;
        }
    }
    // 2. Required fields: leave every field of a struct out, then give back each
    //    one serde reports missing, until it reports none.
    let structs: Vec<(String, Vec<String>)> = state
        .nodes
        .borrow()
        .iter()
        .filter_map(|(path, node)| match node {
            Node::Struct(fields) => Some((path.clone(), fields.clone())),
            _ => None,
        })
        .collect();
    for (path, fields) in &structs {
        state
            .omit
            .borrow_mut()
            .insert(path.clone(), fields.iter().cloned().collect());
        for _ in 0..=fields.len() {
            if runs >= MAX_RUNS {
                break;
            }
            runs += 1;
            let before = state.required_at(path).len();
            run(&state);
            let required = state.required_at(path);
            if required.len() == before {
                break;
            }
            if let Some(omitted) = state.omit.borrow_mut().get_mut(path) {
                omitted.retain(|f| !required.contains(f));
            }
        }
        state.omit.borrow_mut().remove(path);
    }
    // 3. Unknown fields: offer one more.
    for (path, _) in &structs {
        if runs >= MAX_RUNS {
            break;
        }
        runs += 1;
        state.probe.replace(Some(path.clone()));
        run(&state);
    }
    state.probe.replace(None);
    state.build("")
}

/// What was recorded at one path.
#[derive(Debug, Clone)]
enum Node {
    Any,
    Null,
    Bool,
    Integer(bool),
    Number,
    String,
    Enum(Vec<String>),
    /// Inner at `path?`.
    Optional,
    /// Element at `path[]`.
    Seq,
    /// Elements at `path[i]`.
    Tuple(usize),
    /// Values at `path{}`.
    Map,
    /// Fields at `path.NAME`.
    Struct(Vec<String>),
}

#[derive(Default)]
struct State {
    nodes: RefCell<HashMap<String, Node>>,
    /// Paths not offered (their sample was refused).
    skip: RefCell<HashSet<String>>,
    /// Per struct path, fields left out this run.
    omit: RefCell<HashMap<String, BTreeSet<String>>>,
    /// The struct path offered an unknown field this run.
    probe: RefCell<Option<String>>,
    required: RefCell<HashMap<String, BTreeSet<String>>>,
    deny: RefCell<HashSet<String>>,
    /// The innermost path whose deserialization failed this run.
    failed: RefCell<Option<String>>,
}

impl State {
    fn record(&self, path: &str, node: Node) {
        self.nodes.borrow_mut().insert(path.to_string(), node);
    }

    fn required_at(&self, path: &str) -> BTreeSet<String> {
        self.required
            .borrow()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    fn fail(&self, path: &str) {
        let mut failed = self.failed.borrow_mut();
        if failed.is_none() {
            *failed = Some(path.to_string());
        }
    }

    fn build(&self, path: &str) -> Shape {
        let node = self.nodes.borrow().get(path).cloned();
        match node {
            None | Some(Node::Any) => Shape::Any,
            Some(Node::Null) => Shape::Null,
            Some(Node::Bool) => Shape::Bool,
            Some(Node::Integer(unsigned)) => Shape::Integer { unsigned },
            Some(Node::Number) => Shape::Number,
            Some(Node::String) => Shape::String,
            Some(Node::Enum(variants)) => Shape::Enum(variants),
            Some(Node::Optional) => match self.build(&format!("{path}?")) {
                Shape::Any => Shape::Any,
                inner => Shape::Optional(Box::new(inner)),
            },
            Some(Node::Seq) => Shape::Array(Box::new(self.build(&format!("{path}[]")))),
            Some(Node::Tuple(n)) => Shape::Tuple(
                (0..n)
                    .map(|i| self.build(&format!("{path}[{i}]")))
                    .collect(),
            ),
            Some(Node::Map) => Shape::Map(Box::new(self.build(&format!("{path}{{}}")))),
            Some(Node::Struct(fields)) => Shape::Struct(StructShape {
                fields: fields
                    .iter()
                    .map(|f| (f.clone(), self.build(&field_path(path, f))))
                    .collect(),
                required: self.required_at(path),
                deny_unknown: self.deny.borrow().contains(path),
            }),
        }
    }
}

fn field_path(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// The tracer's error: what serde reported, kept apart for missing and unknown fields.
#[derive(Debug)]
enum TraceError {
    Missing(String),
    Unknown,
    Other,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for TraceError {}

impl de::Error for TraceError {
    fn custom<T: fmt::Display>(_: T) -> Self {
        TraceError::Other
    }

    fn missing_field(field: &'static str) -> Self {
        TraceError::Missing(field.to_string())
    }

    fn unknown_field(_: &str, _: &'static [&'static str]) -> Self {
        TraceError::Unknown
    }
}

struct Tracer<'s> {
    state: &'s State,
    path: String,
    depth: usize,
}

impl<'s> Tracer<'s> {
    fn child(&self, path: String) -> Tracer<'s> {
        Tracer {
            state: self.state,
            path,
            depth: self.depth + 1,
        }
    }

    fn too_deep(&self) -> bool {
        if self.depth > MAX_DEPTH {
            self.state.record(&self.path, Node::Any);
            return true;
        }
        false
    }
}

macro_rules! scalar {
    ($($method:ident => $node:expr, $visit:ident($($value:expr)?);)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
            self.state.record(&self.path, $node);
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Tracer<'_> {
    type Error = TraceError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.state.record(&self.path, Node::Any);
        visitor.visit_unit()
    }

    scalar! {
        deserialize_bool => Node::Bool, visit_bool(false);
        deserialize_i8 => Node::Integer(false), visit_i64(0);
        deserialize_i16 => Node::Integer(false), visit_i64(0);
        deserialize_i32 => Node::Integer(false), visit_i64(0);
        deserialize_i64 => Node::Integer(false), visit_i64(0);
        deserialize_u8 => Node::Integer(true), visit_u64(0);
        deserialize_u16 => Node::Integer(true), visit_u64(0);
        deserialize_u32 => Node::Integer(true), visit_u64(0);
        deserialize_u64 => Node::Integer(true), visit_u64(0);
        deserialize_f32 => Node::Number, visit_f64(0.0);
        deserialize_f64 => Node::Number, visit_f64(0.0);
        deserialize_char => Node::String, visit_char('a');
        deserialize_str => Node::String, visit_str("");
        deserialize_string => Node::String, visit_str("");
        deserialize_bytes => Node::String, visit_str("");
        deserialize_byte_buf => Node::String, visit_str("");
        deserialize_unit => Node::Null, visit_unit();
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.state.record(&self.path, Node::Optional);
        let inner = format!("{}?", self.path);
        if self.too_deep() || self.state.skip.borrow().contains(&inner) {
            return visitor.visit_none();
        }
        let child = self.child(inner.clone());
        visitor
            .visit_some(child)
            .inspect_err(|_| self.state.fail(&inner))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.state.record(&self.path, Node::Seq);
        let element = format!("{}[]", self.path);
        let offer = !self.too_deep() && !self.state.skip.borrow().contains(&element);
        let elements = if offer { vec![element] } else { Vec::new() };
        visitor.visit_seq(Elements {
            tracer: &self,
            paths: elements.into_iter(),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.state.record(&self.path, Node::Tuple(len));
        let paths: Vec<String> = (0..len).map(|i| format!("{}[{i}]", self.path)).collect();
        visitor.visit_seq(Elements {
            tracer: &self,
            paths: paths.into_iter(),
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.state.record(&self.path, Node::Map);
        let value = format!("{}{{}}", self.path);
        let offer = !self.too_deep() && !self.state.skip.borrow().contains(&value);
        let entries = if offer {
            vec![("key".to_string(), value)]
        } else {
            Vec::new()
        };
        visitor.visit_map(Entries {
            tracer: &self,
            entries: entries.into_iter(),
            value_path: None,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        if self.too_deep() {
            return Err(TraceError::Other);
        }
        let names: Vec<String> = fields.iter().map(|f| (*f).to_string()).collect();
        self.state.record(&self.path, Node::Struct(names.clone()));
        let probing = self.state.probe.borrow().as_deref() == Some(self.path.as_str());
        let omitted = self
            .state
            .omit
            .borrow()
            .get(&self.path)
            .cloned()
            .unwrap_or_default();
        let mut entries: Vec<(String, String)> = Vec::new();
        if probing {
            entries.push((PROBE_FIELD.to_string(), field_path(&self.path, PROBE_FIELD)));
        }
        for name in names {
            let path = field_path(&self.path, &name);
            if !omitted.contains(&name) && !self.state.skip.borrow().contains(&path) {
                entries.push((name, path));
            }
        }
        let result = visitor.visit_map(Entries {
            tracer: &self,
            entries: entries.into_iter(),
            value_path: None,
        });
        match &result {
            // Only a field of this struct that this run left out: a nested struct's
            // missing field comes up through here too.
            Err(TraceError::Missing(field))
                if fields.contains(&field.as_str())
                    && (omitted.contains(field)
                        || self
                            .state
                            .skip
                            .borrow()
                            .contains(&field_path(&self.path, field))) =>
            {
                self.state
                    .required
                    .borrow_mut()
                    .entry(self.path.clone())
                    .or_default()
                    .insert(field.clone());
            }
            Err(TraceError::Unknown) if probing => {
                self.state.deny.borrow_mut().insert(self.path.clone());
            }
            _ => {}
        }
        result
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TraceError> {
        self.state.record(
            &self.path,
            Node::Enum(variants.iter().map(|v| (*v).to_string()).collect()),
        );
        let first = variants.first().copied().unwrap_or_default();
        visitor.visit_enum(first.into_deserializer())
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TraceError> {
        visitor.visit_unit()
    }
}

/// The elements a traced list offers: one (or, for a tuple, each), at their paths.
struct Elements<'t, 's> {
    tracer: &'t Tracer<'s>,
    paths: std::vec::IntoIter<String>,
}

impl<'de> de::SeqAccess<'de> for Elements<'_, '_> {
    type Error = TraceError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TraceError> {
        let Some(path) = self.paths.next() else {
            return Ok(None);
        };
        let child = self.tracer.child(path.clone());
        seed.deserialize(child)
            .map(Some)
            .inspect_err(|_| self.tracer.state.fail(&path))
    }
}

/// The entries a traced struct or map offers: `(key, value path)`.
struct Entries<'t, 's> {
    tracer: &'t Tracer<'s>,
    entries: std::vec::IntoIter<(String, String)>,
    value_path: Option<String>,
}

impl<'de> de::MapAccess<'de> for Entries<'_, '_> {
    type Error = TraceError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TraceError> {
        let Some((key, path)) = self.entries.next() else {
            return Ok(None);
        };
        self.value_path = Some(path);
        let key: de::value::StringDeserializer<TraceError> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, TraceError> {
        let path = self.value_path.take().unwrap_or_default();
        let child = self.tracer.child(path.clone());
        seed.deserialize(child)
            .inspect_err(|_| self.tracer.state.fail(&path))
    }
}

impl Shape {
    /// The JSON Schema (draft 2020-12) of values of this shape.
    pub fn json_schema(&self) -> Value {
        match self {
            Shape::Any => json!({}),
            Shape::Null => json!({"type": "null"}),
            Shape::Bool => json!({"type": "boolean"}),
            Shape::Integer { unsigned: true } => json!({"type": "integer", "minimum": 0}),
            Shape::Integer { unsigned: false } => json!({"type": "integer"}),
            Shape::Number => json!({"type": "number"}),
            Shape::String => json!({"type": "string"}),
            Shape::Enum(variants) => json!({"enum": variants}),
            Shape::Optional(inner) => json!({"anyOf": [inner.json_schema(), {"type": "null"}]}),
            Shape::Array(element) => json!({"type": "array", "items": element.json_schema()}),
            Shape::Tuple(elements) => json!({
                "type": "array",
                "prefixItems": elements.iter().map(Shape::json_schema).collect::<Vec<_>>(),
                "minItems": elements.len(),
                "maxItems": elements.len(),
            }),
            Shape::Map(value) => {
                json!({"type": "object", "additionalProperties": value.json_schema()})
            }
            Shape::Struct(shape) => shape.json_schema(),
        }
    }

    /// What a value of this shape is, for messages: `an integer >= 0`, `a string`...
    pub fn expected(&self) -> String {
        match self {
            Shape::Any => "any value".into(),
            Shape::Null => "null".into(),
            Shape::Bool => "true or false".into(),
            Shape::Integer { unsigned: true } => "an integer >= 0".into(),
            Shape::Integer { unsigned: false } => "an integer".into(),
            Shape::Number => "a number".into(),
            Shape::String => "a string".into(),
            Shape::Enum(variants) => format!("one of: {}", variants.join(", ")),
            Shape::Optional(inner) => format!("{} or null", inner.expected()),
            Shape::Array(_) | Shape::Tuple(_) => "a list".into(),
            Shape::Map(_) | Shape::Struct(_) => "an object".into(),
        }
    }
}

impl StructShape {
    /// The JSON Schema of an object with these fields.
    pub fn json_schema(&self) -> Value {
        let properties: Map<String, Value> = self
            .fields
            .iter()
            .map(|(name, shape)| (name.clone(), shape.json_schema()))
            .collect();
        let mut schema = json!({"type": "object", "properties": properties});
        if !self.required.is_empty() {
            schema["required"] = json!(self.required);
        }
        if self.deny_unknown {
            schema["additionalProperties"] = json!(false);
        }
        schema
    }

    /// The shape of field `name`, if the struct has it.
    pub fn field(&self, name: &str) -> Option<&Shape> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }
}

/// One place where a value does not fit its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `unknown-field`, `missing-field` or `wrong-type`.
    pub rule: &'static str,
    /// Where, below the checked value: `tasks[0].timeout`; empty for the value itself.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Every place where `value` does not fit `shape` (all of them, not the first).
pub fn check(shape: &Shape, value: &Value, path: &str, out: &mut Vec<Mismatch>) {
    let mut wrong = |expected: String| {
        out.push(Mismatch {
            rule: "wrong-type",
            path: path.to_string(),
            message: format!("expected {expected}, got {}", describe(value)),
        });
    };
    match (shape, value) {
        (Shape::Any, _)
        | (Shape::Null, Value::Null)
        | (Shape::Bool, Value::Bool(_))
        | (Shape::Number, Value::Number(_))
        | (Shape::String, Value::String(_)) => {}
        (Shape::Integer { unsigned }, Value::Number(n)) => {
            let fits = if *unsigned {
                n.is_u64()
            } else {
                n.is_i64() || n.is_u64()
            };
            if !fits {
                wrong(shape.expected());
            }
        }
        (Shape::Enum(variants), Value::String(s)) => {
            if !variants.iter().any(|v| v == s) {
                wrong(shape.expected());
            }
        }
        (Shape::Optional(_), Value::Null) => {}
        (Shape::Optional(inner), _) => check(inner, value, path, out),
        (Shape::Array(element), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check(element, item, &format!("{path}[{i}]"), out);
            }
        }
        (Shape::Tuple(elements), Value::Array(items)) => {
            if elements.len() != items.len() {
                wrong(format!("a list of {} items", elements.len()));
            } else {
                for (i, (element, item)) in elements.iter().zip(items).enumerate() {
                    check(element, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        (Shape::Map(inner), Value::Object(map)) => {
            for (key, item) in map {
                check(inner, item, &field_path(path, key), out);
            }
        }
        (Shape::Struct(shape), Value::Object(map)) => check_struct(shape, map, path, out),
        _ => wrong(shape.expected()),
    }
}

/// Every unknown, missing or mistyped field of an object.
pub fn check_struct(
    shape: &StructShape,
    map: &Map<String, Value>,
    path: &str,
    out: &mut Vec<Mismatch>,
) {
    for (key, item) in map {
        match shape.field(key) {
            Some(field) => check(field, item, &field_path(path, key), out),
            None if shape.deny_unknown && shape.fields.is_empty() => out.push(Mismatch {
                rule: "unknown-field",
                path: field_path(path, key),
                message: format!("unknown field `{key}`; this takes no arguments"),
            }),
            None if shape.deny_unknown => out.push(Mismatch {
                rule: "unknown-field",
                path: field_path(path, key),
                message: format!(
                    "unknown field `{key}`{}; expected one of: {}",
                    suggestion(key, shape.fields.iter().map(|(n, _)| n.as_str())),
                    shape
                        .fields
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            None => {}
        }
    }
    for name in &shape.required {
        if !map.contains_key(name) {
            out.push(Mismatch {
                rule: "missing-field",
                path: field_path(path, name),
                message: format!(
                    "missing field `{name}` ({})",
                    shape
                        .field(name)
                        .map_or_else(|| "any value".into(), Shape::expected)
                ),
            });
        }
    }
}

/// ` (did you mean `x`?)` when a known name is one or two edits from `given`.
pub fn suggestion<'a>(given: &str, known: impl Iterator<Item = &'a str>) -> String {
    let best = known
        .map(|k| (edit_distance(given, k), k))
        .filter(|(d, _)| *d <= 2.max(given.len() / 4))
        .min_by_key(|(d, _)| *d);
    best.map_or_else(String::new, |(_, k)| format!(" (did you mean `{k}`?)"))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// A short description of a JSON value for messages.
pub fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}...", text.chars().take(37).collect::<String>())
    } else {
        text
    }
}

/// The field names of a struct shape, with their shapes, as a map (for lookups).
pub fn fields_by_name(shape: &StructShape) -> BTreeMap<&str, &Shape> {
    shape.fields.iter().map(|(n, s)| (n.as_str(), s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        url: String,
        #[serde(default)]
        retries: Option<u32>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Mode {
        Fast,
        Slow,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        name: String,
        #[serde(default)]
        count: u32,
        rate: f64,
        #[serde(default)]
        mode: Option<Mode>,
        inner: Option<Inner>,
        list: Vec<Inner>,
        #[serde(default)]
        extra: Value,
        #[serde(default, deserialize_with = "refuse")]
        picky: u8,
    }

    fn refuse<'de, D: de::Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
        let v = u8::deserialize(d)?;
        if v == 0 {
            Err(de::Error::custom("zero"))
        } else {
            Ok(v)
        }
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Loose {
        a: bool,
    }

    #[test]
    fn traces_types_required_fields_and_strictness() {
        let Shape::Struct(args) = trace::<Args>() else {
            panic!("a struct");
        };
        assert!(args.deny_unknown);
        assert_eq!(
            args.required.iter().map(String::as_str).collect::<Vec<_>>(),
            ["list", "name", "rate"]
        );
        assert_eq!(
            args.field("count"),
            Some(&Shape::Integer { unsigned: true })
        );
        assert_eq!(args.field("rate"), Some(&Shape::Number));
        assert_eq!(args.field("extra"), Some(&Shape::Any));
        assert_eq!(
            args.field("mode"),
            Some(&Shape::Optional(Box::new(Shape::Enum(vec![
                "fast".into(),
                "slow".into()
            ]))))
        );
        assert_eq!(
            args.field("picky"),
            Some(&Shape::Integer { unsigned: true })
        );
        let Some(Shape::Array(element)) = args.field("list") else {
            panic!("a list");
        };
        let Shape::Struct(inner) = &**element else {
            panic!("of structs");
        };
        assert!(
            inner.deny_unknown
                && inner.required.contains("url")
                && !inner.required.contains("retries")
        );
        let Shape::Struct(loose) = trace::<Loose>() else {
            panic!("a struct");
        };
        assert!(!loose.deny_unknown && loose.required.contains("a"));
    }

    #[test]
    fn checks_report_every_problem_with_its_path() {
        let shape = trace::<Args>();
        let value = json!({"nme": "x", "count": -1, "rate": "fast", "mode": "medium",
                           "list": [{"url": "u"}, {"retries": 1.5}]});
        let mut found = Vec::new();
        check(&shape, &value, "", &mut found);
        let seen: Vec<(&str, &str)> = found.iter().map(|m| (m.rule, m.path.as_str())).collect();
        assert!(seen.contains(&("unknown-field", "nme")), "{found:?}");
        assert!(
            found
                .iter()
                .any(|m| m.message.contains("did you mean `name`")),
            "{found:?}"
        );
        assert!(seen.contains(&("missing-field", "name")), "{found:?}");
        assert!(seen.contains(&("wrong-type", "count")), "{found:?}");
        assert!(seen.contains(&("wrong-type", "rate")), "{found:?}");
        assert!(seen.contains(&("wrong-type", "mode")), "{found:?}");
        assert!(
            seen.contains(&("missing-field", "list[1].url")),
            "{found:?}"
        );
        assert!(
            seen.contains(&("wrong-type", "list[1].retries")),
            "{found:?}"
        );
        assert_eq!(found.len(), 7, "{found:?}");
    }
}
