//! `${...}` placeholders, parsed once when a test starts and rendered per request.
//!
//! Kinds: `${var.NAME}` (or `${NAME}`), `${session.NAME}`, `${env.NAME}`, `${csv.SOURCE.COLUMN}`,
//! `${db.SOURCE.COLUMN}` (a database source's row, handed out as CSV rows are),
//! `${uuid()}`, `${now()}`, `${randint(min, max)}` and `${faker.METHOD}`. A
//! placeholder of any other kind, or a variable that is not set, stays in the text as
//! written (LoadDensity's rule, so that missing data is visible). A placeholder that
//! is malformed (`${randint(9, 1)}`, an unknown CSV column or faker method) is an
//! error when the test starts, not on every request.

use std::borrow::Cow;

use rand::Rng;
use serde_json::{Map, Value};

use super::fake::FakeKind;
use super::resolver::{CsvTables, RenderContext, SourceError, SourceKind};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(Box<str>),
    /// A variable: the user's extracted ones first, then the registered ones. `raw`
    /// is the placeholder as written, kept when the variable is not set.
    Var {
        name: Box<str>,
        raw: Box<str>,
    },
    /// A session variable (`${session.NAME}`): the user's own only. `key` is its
    /// key in the user's map ([`super::resolver::session_key`]).
    Session {
        key: Box<str>,
        raw: Box<str>,
    },
    Csv {
        source: usize,
        column: usize,
    },
    Uuid,
    Now,
    RandInt(i64, i64),
    Faker(FakeKind),
}

/// A string with placeholders, ready to render.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    segments: Vec<Segment>,
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A malformed placeholder (`${randint(9, 1)}`, an unknown faker method), or
    /// another problem with the value that holds the template.
    #[error("{0}")]
    Invalid(String),
    /// A placeholder whose CSV or database source cannot be reached: not
    /// registered, or without the column.
    #[error("`{raw}`: {error}")]
    Source {
        /// The placeholder as written.
        raw: String,
        /// What is missing.
        error: Box<SourceError>,
    },
}

impl TemplateError {
    /// True when a placeholder names a source (or column) that cannot be reached.
    pub fn is_source(&self) -> bool {
        matches!(self, Self::Source { .. })
    }
}

impl From<String> for TemplateError {
    fn from(message: String) -> Self {
        Self::Invalid(message)
    }
}

impl From<&str> for TemplateError {
    fn from(message: &str) -> Self {
        Self::Invalid(message.to_string())
    }
}

/// Where the CSV and database sources a template names are looked up while parsing.
pub(crate) trait CsvLookup {
    /// `(source index, column index)`, or what is missing.
    fn column(&self, source: &str, column: &str) -> Result<(usize, usize), SourceError>;

    /// The same for `${db.SOURCE.COLUMN}`.
    fn db_column(&self, source: &str, column: &str) -> Result<(usize, usize), SourceError>;
}

impl CsvLookup for CsvTables {
    fn column(&self, source: &str, column: &str) -> Result<(usize, usize), SourceError> {
        self.lookup(SourceKind::Csv, source, column)
    }

    fn db_column(&self, source: &str, column: &str) -> Result<(usize, usize), SourceError> {
        self.lookup(SourceKind::Db, source, column)
    }
}

impl Template {
    /// Parses `text`; `csv` resolves `${csv.SOURCE.COLUMN}` to a source and column.
    pub(crate) fn parse(text: &str, csv: &dyn CsvLookup) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find("${") {
            let Some(close) = rest[open + 2..].find('}') else {
                break;
            };
            literal.push_str(&rest[..open]);
            let raw = &rest[open..open + 2 + close + 1];
            let token = rest[open + 2..open + 2 + close].trim();
            rest = &rest[open + 2 + close + 1..];
            match parse_token(token, raw, csv)? {
                Some(segment) => {
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal).into()));
                    }
                    segments.push(segment);
                }
                None => literal.push_str(raw),
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal.into()));
        }
        Ok(Self { segments })
    }

    /// True when the text has no placeholder to expand.
    pub fn is_static(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// The text of a static template (placeholders that stay as written included).
    pub fn static_text(&self) -> Option<String> {
        self.is_static().then(|| {
            self.segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(text) => &**text,
                    _ => "",
                })
                .collect()
        })
    }

    /// The literal text before the first placeholder.
    pub fn literal_prefix(&self) -> &str {
        match self.segments.first() {
            Some(Segment::Literal(text)) => text,
            _ => "",
        }
    }

    /// The template without the first `len` bytes of its literal prefix.
    pub(crate) fn without_prefix(&self, len: usize) -> Self {
        let mut segments = self.segments.clone();
        if let Some(Segment::Literal(text)) = segments.first_mut()
            && let Some(rest) = text.get(len..)
        {
            if rest.is_empty() {
                segments.remove(0);
            } else {
                *text = rest.into();
            }
        }
        Self { segments }
    }

    /// About how long a rendering is (exact for literals, UUIDs and integers), so
    /// that it is written into one allocation.
    fn rendered_len_hint(&self) -> usize {
        self.segments
            .iter()
            .map(|segment| match segment {
                Segment::Literal(text) => text.len(),
                Segment::Uuid => uuid::fmt::Hyphenated::LENGTH,
                Segment::RandInt(..) => 20,
                Segment::Var { .. }
                | Segment::Session { .. }
                | Segment::Csv { .. }
                | Segment::Now
                | Segment::Faker(_) => 32,
            })
            .sum()
    }

    /// Expands the placeholders into `out`.
    pub(crate) fn render_into(&self, out: &mut String, ctx: &mut RenderContext<'_>) {
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Var { name, raw } => match ctx.variable(name) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(raw),
                },
                Segment::Session { key, raw } => out.push_str(ctx.session(key).unwrap_or(raw)),
                Segment::Csv { source, column } => out.push_str(ctx.csv(*source, *column)),
                Segment::Uuid => out.push_str(
                    uuid::Uuid::new_v4()
                        .hyphenated()
                        .encode_lower(&mut uuid::Uuid::encode_buffer()),
                ),
                Segment::Now => out.push_str(
                    &humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                ),
                Segment::RandInt(low, high) => {
                    out.push_str(itoa::Buffer::new().format(ctx.rng.gen_range(*low..=*high)));
                }
                Segment::Faker(kind) => out.push_str(&kind.generate()),
            }
        }
    }

    /// Expands the placeholders, borrowing the text when the template is one literal
    /// or one variable (a `run_if` condition, checked every iteration, allocates nothing).
    pub(crate) fn render_cow<'r, 'a: 'r>(&'r self, ctx: &mut RenderContext<'a>) -> Cow<'r, str> {
        match &self.segments[..] {
            [] => Cow::Borrowed(""),
            [Segment::Literal(text)] => Cow::Borrowed(text),
            [Segment::Var { name, raw }] => Cow::Borrowed(ctx.variable(name).unwrap_or(raw)),
            [Segment::Session { key, raw }] => Cow::Borrowed(ctx.session(key).unwrap_or(raw)),
            _ => Cow::Owned(self.render(ctx)),
        }
    }

    /// Expands the placeholders.
    pub(crate) fn render(&self, ctx: &mut RenderContext<'_>) -> String {
        let mut out = String::with_capacity(self.rendered_len_hint());
        self.render_into(&mut out, ctx);
        out
    }

    /// The CSV sources this template reads.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        for segment in &self.segments {
            if let Segment::Csv { source, .. } = segment
                && !into.contains(source)
            {
                into.push(*source);
            }
        }
    }

    /// The CSV sources the present ones of `templates` read (a task's optional
    /// fields: `None` reads none).
    pub(crate) fn csv_sources_of<'t>(
        templates: impl IntoIterator<Item = Option<&'t Template>>,
        into: &mut Vec<usize>,
    ) {
        for template in templates.into_iter().flatten() {
            template.csv_sources(into);
        }
    }
}

/// Parses the inside of one `${...}`. `None`: not a placeholder kind we know; it
/// stays as written.
fn parse_token(
    token: &str,
    raw: &str,
    csv: &dyn CsvLookup,
) -> Result<Option<Segment>, TemplateError> {
    if token.is_empty() {
        return Ok(None);
    }
    if let Some(open) = token.find('(')
        && token.ends_with(')')
    {
        let name = token[..open].trim().to_ascii_lowercase();
        let args = token[open + 1..token.len() - 1].trim();
        return match name.as_str() {
            "uuid" => Ok(Some(Segment::Uuid)),
            "now" => Ok(Some(Segment::Now)),
            "randint" => {
                let parts: Vec<&str> = args.split(',').map(str::trim).collect();
                let bounds = match parts.as_slice() {
                    [a, b] => a.parse::<i64>().ok().zip(b.parse::<i64>().ok()),
                    _ => None,
                };
                match bounds {
                    Some((low, high)) if low <= high => Ok(Some(Segment::RandInt(low, high))),
                    Some(_) => Err(format!("`{raw}`: randint needs min <= max").into()),
                    None => Err(format!("`{raw}`: randint takes two integers, min and max").into()),
                }
            }
            _ => Ok(None),
        };
    }
    let Some((prefix, rest)) = token.split_once('.') else {
        return Ok(Some(Segment::Var {
            name: token.into(),
            raw: raw.into(),
        }));
    };
    match prefix.to_ascii_lowercase().as_str() {
        "var" if !rest.is_empty() => Ok(Some(Segment::Var {
            name: rest.into(),
            raw: raw.into(),
        })),
        "session" if !rest.is_empty() => Ok(Some(Segment::Session {
            key: super::resolver::session_key(rest).into(),
            raw: raw.into(),
        })),
        "env" => Ok(std::env::var(rest)
            .ok()
            .map(|value| Segment::Literal(value.into()))),
        "csv" => {
            let (source, column) = rest
                .split_once('.')
                .ok_or_else(|| format!("`{raw}`: expected ${{csv.SOURCE.COLUMN}}"))?;
            let (source, column) =
                csv.column(source, column)
                    .map_err(|error| TemplateError::Source {
                        raw: raw.to_string(),
                        error: Box::new(error),
                    })?;
            Ok(Some(Segment::Csv { source, column }))
        }
        "db" => {
            let (source, column) = rest
                .split_once('.')
                .ok_or_else(|| format!("`{raw}`: expected ${{db.SOURCE.COLUMN}}"))?;
            let (source, column) =
                csv.db_column(source, column)
                    .map_err(|error| TemplateError::Source {
                        raw: raw.to_string(),
                        error: Box::new(error),
                    })?;
            Ok(Some(Segment::Csv { source, column }))
        }
        "faker" => FakeKind::from_name(rest)
            .map(|kind| Some(Segment::Faker(kind)))
            .ok_or_else(|| {
                TemplateError::Invalid(format!(
                    "`{raw}`: faker method `{rest}` is not supported; supported: {}",
                    FakeKind::NAMES.join(", ")
                ))
            }),
        _ => Ok(None),
    }
}

/// A JSON value whose strings may hold placeholders (a task's `json` body, an
/// assertion's expected value, a condition's operands).
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateValue {
    /// No placeholder anywhere below.
    Static(Value),
    /// A string with placeholders.
    String(Template),
    /// A list with placeholders somewhere.
    Array(Vec<TemplateValue>),
    /// An object with placeholders somewhere (keys are never expanded).
    Object(Vec<(String, TemplateValue)>),
}

impl TemplateValue {
    /// Parses every string of `value`.
    pub(crate) fn parse(value: &Value, csv: &dyn CsvLookup) -> Result<Self, TemplateError> {
        let parsed = match value {
            Value::String(text) => {
                let template = Template::parse(text, csv)?;
                match template.static_text() {
                    Some(text) => Self::Static(Value::String(text)),
                    None => Self::String(template),
                }
            }
            Value::Array(items) => {
                let items = items
                    .iter()
                    .map(|v| Self::parse(v, csv))
                    .collect::<Result<Vec<_>, _>>()?;
                if items.iter().all(Self::is_static) {
                    Self::Static(Value::Array(
                        items.into_iter().map(Self::into_static).collect(),
                    ))
                } else {
                    Self::Array(items)
                }
            }
            Value::Object(map) => {
                let fields = map
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), Self::parse(v, csv)?)))
                    .collect::<Result<Vec<_>, TemplateError>>()?;
                if fields.iter().all(|(_, v)| v.is_static()) {
                    Self::Static(Value::Object(
                        fields
                            .into_iter()
                            .map(|(k, v)| (k, v.into_static()))
                            .collect::<Map<_, _>>(),
                    ))
                } else {
                    Self::Object(fields)
                }
            }
            other => Self::Static(other.clone()),
        };
        Ok(parsed)
    }

    /// True when nothing below needs expanding.
    pub fn is_static(&self) -> bool {
        matches!(self, Self::Static(_))
    }

    fn into_static(self) -> Value {
        match self {
            Self::Static(value) => value,
            _ => Value::Null,
        }
    }

    /// Expands every placeholder below.
    pub(crate) fn render(&self, ctx: &mut RenderContext<'_>) -> Value {
        match self {
            Self::Static(value) => value.clone(),
            Self::String(template) => Value::String(template.render(ctx)),
            Self::Array(items) => Value::Array(items.iter().map(|v| v.render(ctx)).collect()),
            Self::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.render(ctx)))
                    .collect(),
            ),
        }
    }

    /// The CSV sources read anywhere below.
    pub(crate) fn csv_sources(&self, into: &mut Vec<usize>) {
        match self {
            Self::Static(_) => {}
            Self::String(template) => template.csv_sources(into),
            Self::Array(items) => items.iter().for_each(|v| v.csv_sources(into)),
            Self::Object(fields) => fields.iter().for_each(|(_, v)| v.csv_sources(into)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::resolver::{CsvTables, SharedVariables};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use std::collections::HashMap;

    fn render(text: &str, user: &HashMap<String, String>) -> String {
        let tables = CsvTables::default();
        let template = Template::parse(text, &tables).expect("parses");
        let shared = SharedVariables::from([("host".to_string(), "example".to_string())]);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut ctx = RenderContext::new(user, &shared, &mut rng);
        template.render(&mut ctx)
    }

    #[test]
    fn variables_user_first_then_shared_then_left_in_place() {
        let user = HashMap::from([("token".to_string(), "t-1".to_string())]);
        assert_eq!(
            render(
                "Bearer ${var.token} @${host} ${var.nope} ${unknown.kind} ${}",
                &user
            ),
            "Bearer t-1 @example ${var.nope} ${unknown.kind} ${}"
        );
        assert_eq!(render("no placeholders", &user), "no placeholders");
        assert_eq!(
            render("unclosed ${var.token", &user),
            "unclosed ${var.token"
        );
    }

    #[test]
    fn functions_and_env() {
        let user = HashMap::new();
        let id = render("${uuid()}", &user);
        assert_eq!(
            uuid::Uuid::parse_str(&id).map(|u| u.get_version_num()),
            Ok(4)
        );
        let n: i64 = render("${randint(3, 5)}", &user).parse().expect("integer");
        assert!((3..=5).contains(&n));
        assert!(render("${now()}", &user).ends_with('Z'));
        // PATH is set in every test environment.
        assert_eq!(
            render("${env.PATH}", &user),
            std::env::var("PATH").expect("PATH")
        );
        assert_eq!(
            render("${env.LOADDENSITY_SURELY_UNSET}", &user),
            "${env.LOADDENSITY_SURELY_UNSET}"
        );
        assert!(!render("${faker.email}", &user).is_empty());
    }

    #[test]
    fn malformed_placeholders_are_errors() {
        let tables = CsvTables::default();
        for (text, needle, source) in [
            ("${randint(9, 1)}", "min <= max", false),
            ("${randint(a, 1)}", "two integers", false),
            ("${faker.no_such_method}", "not supported", false),
            ("${csv.users}", "SOURCE.COLUMN", false),
            ("${csv.users.name}", "users", true),
            (
                "${db.users.name}",
                "DB source `users` is not registered",
                true,
            ),
        ] {
            let e = Template::parse(text, &tables).expect_err(text);
            assert!(e.to_string().contains(needle), "{text}: {e}");
            assert_eq!(e.is_source(), source, "{text}: {e}");
        }
    }

    #[test]
    fn json_values_stay_static_without_placeholders() {
        let tables = CsvTables::default();
        let v = serde_json::json!({"a": [1, "x"], "b": {"c": "${var.t}"}});
        let parsed = TemplateValue::parse(&v, &tables).expect("parses");
        assert!(!parsed.is_static());
        let user = HashMap::from([("t".to_string(), "7".to_string())]);
        let shared = SharedVariables::new();
        let mut rng = SmallRng::seed_from_u64(1);
        let mut ctx = RenderContext::new(&user, &shared, &mut rng);
        assert_eq!(
            parsed.render(&mut ctx),
            serde_json::json!({"a": [1, "x"], "b": {"c": "7"}})
        );
        let plain = serde_json::json!({"a": [1, "x"]});
        assert!(
            TemplateValue::parse(&plain, &tables)
                .expect("parses")
                .is_static()
        );
    }
}
