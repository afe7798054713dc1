//! `run_if` and `skip_if`: conditions on variables, parsed when the test starts.

use serde_json::Value;

use super::resolver::{RenderContext, value_text};
use super::template::{CsvLookup, TemplateError, TemplateValue};

/// The predicates a condition object may use.
pub const PREDICATES: &[&str] = &["equals", "not_equals", "in", "truthy"];

/// A condition, evaluated before each run of a task.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `true`, `false` or an integer.
    Const(bool),
    /// `"${var.x}"` or `{"truthy": v}`: the expanded value is truthy.
    Truthy(TemplateValue),
    /// `{"equals": [a, b]}`.
    Equals(TemplateValue, TemplateValue),
    /// `{"not_equals": [a, b]}`.
    NotEquals(TemplateValue, TemplateValue),
    /// `{"in": [needle, haystack]}`: haystack is a list, a string or an object.
    In(TemplateValue, TemplateValue),
}

impl Condition {
    /// Parses a condition; errors say what was expected.
    pub(crate) fn parse(value: &Value, csv: &dyn CsvLookup) -> Result<Self, TemplateError> {
        match value {
            Value::Bool(b) => Ok(Self::Const(*b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(Self::Const(i != 0)),
                None => Err(format!("expected an integer, got {n}").into()),
            },
            Value::String(_) => Ok(Self::Truthy(TemplateValue::parse(value, csv)?)),
            Value::Object(map) => {
                let mut entries = map.iter();
                let (Some((op, args)), None) = (entries.next(), entries.next()) else {
                    return Err(format!(
                        "expected an object with exactly one predicate ({}), got {value}",
                        PREDICATES.join(", ")
                    )
                    .into());
                };
                let pair = || -> Result<(TemplateValue, TemplateValue), TemplateError> {
                    match args.as_array().map(Vec::as_slice) {
                        Some([a, b]) => {
                            Ok((TemplateValue::parse(a, csv)?, TemplateValue::parse(b, csv)?))
                        }
                        _ => Err(format!("`{op}` expects a list of two values, got {args}").into()),
                    }
                };
                match op.to_ascii_lowercase().as_str() {
                    "equals" => pair().map(|(a, b)| Self::Equals(a, b)),
                    "not_equals" => pair().map(|(a, b)| Self::NotEquals(a, b)),
                    "in" => pair().map(|(a, b)| Self::In(a, b)),
                    "truthy" => Ok(Self::Truthy(TemplateValue::parse(args, csv)?)),
                    _ => Err(format!(
                        "unknown predicate `{op}`; expected one of: {}",
                        PREDICATES.join(", ")
                    )
                    .into()),
                }
            }
            other => Err(format!(
                "expected true/false, an integer, \"${{var.x}}\" or a predicate object, got {other}"
            )
            .into()),
        }
    }

    /// Evaluates the condition for one user.
    pub(crate) fn holds(&self, ctx: &mut RenderContext<'_>) -> bool {
        match self {
            Self::Const(b) => *b,
            Self::Truthy(TemplateValue::String(text)) => truthy_text(&text.render_cow(ctx)),
            Self::Truthy(v) => truthy(&v.render(ctx)),
            Self::Equals(a, b) => loose_eq(&a.render(ctx), &b.render(ctx)),
            Self::NotEquals(a, b) => !loose_eq(&a.render(ctx), &b.render(ctx)),
            Self::In(needle, haystack) => contains(&haystack.render(ctx), &needle.render(ctx)),
        }
    }
}

/// LoadDensity's truthiness of a resolved value: blank, `false`, `0`, `no`, `none`,
/// `null` and a placeholder left unexpanded are false.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => truthy_text(s),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
    }
}

/// [`truthy`] of a string.
fn truthy_text(text: &str) -> bool {
    let text = text.trim();
    if text.starts_with("${") && text.ends_with('}') {
        return false;
    }
    !["", "false", "0", "no", "none", "null"]
        .iter()
        .any(|falsy| text.eq_ignore_ascii_case(falsy))
}

/// Equality where a string equals a number or boolean with the same text (variables
/// are text: `"${var.status}"` equals `200`).
pub fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(s), other @ (Value::Number(_) | Value::Bool(_)))
        | (other @ (Value::Number(_) | Value::Bool(_)), Value::String(s)) => {
            *s == value_text(other)
        }
        _ => a == b,
    }
}

fn contains(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::Array(items) => items.iter().any(|item| loose_eq(item, needle)),
        Value::String(text) => text.contains(&value_text(needle)),
        Value::Object(map) => map.contains_key(&value_text(needle)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::resolver::{CsvTables, SharedVariables};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;
    use serde_json::json;
    use std::collections::HashMap;

    fn holds(condition: Value) -> bool {
        let tables = CsvTables::default();
        let c = Condition::parse(&condition, &tables).expect("parses");
        let user = HashMap::from([
            ("role".to_string(), "admin".to_string()),
            ("status".to_string(), "200".to_string()),
            ("off".to_string(), "False".to_string()),
        ]);
        let shared = SharedVariables::new();
        let mut rng = SmallRng::seed_from_u64(1);
        c.holds(&mut RenderContext::new(&user, &shared, &mut rng))
    }

    #[test]
    fn predicates() {
        assert!(holds(json!(true)) && !holds(json!(false)));
        assert!(holds(json!(1)) && !holds(json!(0)));
        assert!(holds(json!("${var.role}")));
        assert!(!holds(json!("${var.off}")));
        assert!(!holds(json!("${var.unset}")));
        assert!(holds(json!({"equals": ["${var.role}", "admin"]})));
        assert!(holds(json!({"equals": ["${var.status}", 200]})));
        assert!(holds(json!({"not_equals": ["${var.role}", "guest"]})));
        assert!(holds(json!({"in": ["${var.role}", ["admin", "root"]]})));
        assert!(!holds(json!({"in": ["${var.role}", ["guest"]]})));
        assert!(holds(json!({"in": ["dm", "${var.role}"]})));
        assert!(holds(json!({"truthy": "${var.role}"})));
    }

    #[test]
    fn falsy_words_in_any_case_and_padding_are_false() {
        for text in [
            "", "  ", "false", "FALSE", " No ", "none", "NULL", "0", "${var.x}",
        ] {
            assert!(!truthy(&json!(text)), "`{text}` must be false");
        }
        for text in ["yes", "true", "1", "nope", "nullable", "00", "token-abc"] {
            assert!(truthy(&json!(text)), "`{text}` must be true");
        }
    }

    #[test]
    fn bad_conditions_say_what_was_expected() {
        let tables = CsvTables::default();
        for (value, needle) in [
            (
                json!({"matches": ["a", "b"]}),
                "unknown predicate `matches`",
            ),
            (json!({"equals": ["a"]}), "list of two"),
            (json!({"equals": [1, 1], "in": [1, [1]]}), "exactly one"),
            (json!(1.5), "integer"),
            (json!(null), "expected"),
        ] {
            let e = Condition::parse(&value, &tables)
                .expect_err("must fail")
                .to_string();
            assert!(e.contains(needle), "{value}: {e}");
        }
    }
}
