//! The JSON Schema of tasks, per user type, for `LD_export_schema` and
//! `loaddensity schema`: which fields a task of each user type has, with the types
//! of those every protocol parses alike (`weight`, `run_if`, `retry`, `throttle`,
//! `think_time`, `cert`, ...) and of the HTTP users' own fields. A field whose type
//! depends on the protocol in ways a schema cannot say well is named but untyped;
//! `lint` and `run` check it.

use serde_json::{Map, Value, json};

use crate::protocol::{Protocol, USER_TYPES, UserTypeVisitor, visit_user_type};
use crate::task::COMMON_FIELDS;

/// The user types whose tasks are parsed as HTTP requests (their fields typed here).
const HTTP_USERS: &[&str] = &["fast_http_user", "http_user", "async_http_user"];

/// The user type of a test without `user_detail_dict.user` (LoadDensity's default).
pub(super) const DEFAULT_USER: &str = "fast_http_user";

/// The name under `$defs` of a user type's task schema.
pub(super) fn task_def(user: &str) -> String {
    format!("task.{user}")
}

/// The field names of one protocol's tasks.
struct TaskFields;

impl UserTypeVisitor for TaskFields {
    type Output = &'static [&'static str];

    fn visit<P: Protocol>(self) -> Self::Output {
        P::FIELDS
    }
}

/// The task fields of `user` (its protocol's and the common ones), in order.
fn fields_of(user: &str) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = visit_user_type(user, TaskFields)
        .unwrap_or_default()
        .to_vec();
    for &common in COMMON_FIELDS {
        if !names.contains(&common) {
            names.push(common);
        }
    }
    names
}

/// `{"type": T}`, or null too (a null field is as if absent).
fn nullable(schema: Value) -> Value {
    json!({"anyOf": [schema, {"type": "null"}]})
}

/// A number from 0 to `max` (seconds, or a factor).
fn seconds(max: f64) -> Value {
    json!({"type": "number", "minimum": 0, "maximum": max})
}

/// The schema of a field every protocol parses alike, if `name` is one.
fn common_field(name: &str) -> Option<Value> {
    let retries = json!({"type": "integer", "minimum": 0, "maximum": 1000});
    let condition = json!({
        "description": "true/false, an integer, \"${var.x}\" or a predicate object ({\"equals\": [a, b]}, not_equals, in, truthy)",
        "type": ["boolean", "integer", "string", "object"],
    });
    let schema = match name {
        "weight" => {
            json!({"type": "integer", "minimum": 1, "description": "relative weight in a weighted scenario"})
        }
        "run_if" | "skip_if" => condition,
        "wait" => seconds(3600.0),
        "retry" => json!({
            "description": "LoadDensity's AdaptiveRetryPolicy: retries per error class and the backoff between attempts",
            "type": "object",
            "properties": {
                "transient": retries,
                "flaky": retries,
                "permanent": retries,
                "base_delay": seconds(3600.0),
                "max_delay": seconds(3600.0),
                "backoff_factor": seconds(1000.0),
                "jitter": seconds(100.0),
            },
            "additionalProperties": false,
        }),
        "throttle" => json!({
            "description": "a token bucket shared by the tasks with the same key",
            "type": "object",
            "properties": {
                "rps": {"type": "number", "exclusiveMinimum": 0},
                "key": {"type": "string", "minLength": 1},
                "burst": {"type": "integer", "minimum": 1},
            },
            "required": ["rps"],
            "additionalProperties": false,
        }),
        "think_time" => json!({
            "description": "seconds slept after the task, or a range {min, max}",
            "anyOf": [
                seconds(3600.0),
                {
                    "type": "object",
                    "properties": {"min": seconds(3600.0), "max": seconds(3600.0)},
                    "additionalProperties": false,
                },
            ],
        }),
        "cert" | "client_cert" => json!({
            "description": "a client certificate for mutual TLS: a PEM file holding certificate and key, or [cert, key]",
            "anyOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "array",
                    "prefixItems": [{"type": "string", "minLength": 1}, {"type": "string", "minLength": 1}],
                    "minItems": 2,
                    "maxItems": 2,
                },
            ],
        }),
        _ => return None,
    };
    Some(nullable(schema))
}

/// The schema of an HTTP task's own field, if `name` is one.
fn http_field(name: &str) -> Option<Value> {
    let scalar = json!({"type": ["string", "number", "boolean"]});
    let schema = match name {
        "method" => json!({
            "description": "the HTTP method (any case): get, post, put, patch, delete, head, options",
            "type": "string",
        }),
        "request_url" | "url" => {
            json!({"type": "string", "description": "an absolute URL, or a path below `host`"})
        }
        "name" => json!({"type": "string", "description": "what the request is reported as"}),
        "headers" | "cookies" => json!({"type": "object", "additionalProperties": scalar}),
        "params" => json!({"anyOf": [
            {"type": "object", "additionalProperties": {"anyOf": [scalar, {"type": "null"}, {"type": "array", "items": scalar}]}},
            {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2}},
        ]}),
        "json" => json!({"description": "a JSON body (any JSON value)"}),
        "data" => {
            json!({"type": ["string", "object", "array"], "description": "a raw body, or a form"})
        }
        "timeout" => json!({"type": "number", "minimum": 0, "description": "seconds"}),
        "allow_redirects" | "verify" | "follow_redirects" | "http2" => json!({"type": "boolean"}),
        "auth" => json!({
            "type": "object",
            "properties": {
                "type": {"enum": ["basic", "bearer", "Basic", "Bearer", "BASIC", "BEARER"]},
                "username": {"type": "string"},
                "password": {"type": "string"},
                "token": {"type": "string"},
            },
            "required": ["type"],
            "additionalProperties": false,
        }),
        "files" => json!({"type": "object", "description": "form field name to file path"}),
        "assertions" => json!({"type": "array", "items": {"type": "object", "required": ["type"]}}),
        "extract" => json!({"anyOf": [
            {"type": "array", "items": {"type": "object", "required": ["var"]}},
            {"type": "object", "required": ["var"]},
        ]}),
        "expect_status" => json!({"anyOf": [
            {"type": "integer", "minimum": 100, "maximum": 999},
            {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 999}},
        ]}),
        "ca_file" => json!({"type": "string"}),
        _ => return None,
    };
    Some(nullable(schema))
}

/// The schema of a task of user type `user`: its fields (no others), typed where
/// the type is the same for every task of that user type.
pub(super) fn task_schema_for(user: &str) -> Value {
    let http = HTTP_USERS.contains(&user);
    let properties: Map<String, Value> = fields_of(user)
        .into_iter()
        .map(|name| {
            let typed = common_field(name).or_else(|| http.then(|| http_field(name)).flatten());
            (name.to_string(), typed.unwrap_or_else(|| json!({})))
        })
        .collect();
    json!({
        "description": format!("A task of {user}"),
        "type": "object",
        "properties": properties,
        "additionalProperties": false,
    })
}

/// A task of any user type: an object whose field names are those some protocol
/// knows, the common ones typed (which of them applies depends on
/// `user_detail_dict`; the per-user-type schemas say that).
pub(super) fn any_task_schema() -> Value {
    let mut names: Vec<&str> = Vec::new();
    for user in USER_TYPES {
        for name in fields_of(user) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names.sort_unstable();
    let properties: Map<String, Value> = COMMON_FIELDS
        .iter()
        .chain(["cert", "client_cert"].iter())
        .filter_map(|name| common_field(name).map(|s| (name.to_string(), s)))
        .collect();
    json!({
        "description": "A task; its fields depend on the user type",
        "type": "object",
        "properties": properties,
        "propertyNames": {"enum": names},
    })
}

/// `tasks` whose tasks are `$defs/{task}`: a list, LoadDensity's legacy map of
/// method to task, or a scenario mode.
pub(super) fn tasks_schema(task: &str) -> Value {
    let task = json!({"$ref": format!("#/$defs/{task}")});
    json!({"anyOf": [
        {"type": "array", "items": task},
        {
            "type": "object",
            "properties": {
                "mode": {"type": "string", "description": "sequence, weighted or conditional"},
                "tasks": {"type": "array", "items": task},
            },
            "required": ["tasks"],
            "additionalProperties": false,
        },
        {"type": "object", "not": {"required": ["tasks"]}, "additionalProperties": task},
    ]})
}

/// For `LD_start_test`'s arguments: one rule per user type, saying that when
/// `user_detail_dict.user` names it (or names none, for the default), the tasks are
/// that user type's.
pub(super) fn per_user_rules() -> Vec<Value> {
    let names_user = |user: &str| {
        json!({
            "properties": {"user_detail_dict": {"properties": {"user": {"const": user}}, "required": ["user"]}},
            "required": ["user_detail_dict"],
        })
    };
    USER_TYPES
        .iter()
        .map(|user| {
            let condition = if *user == DEFAULT_USER {
                json!({"anyOf": [
                    names_user(user),
                    {"not": {
                        "properties": {"user_detail_dict": {"required": ["user"]}},
                        "required": ["user_detail_dict"],
                    }},
                ]})
            } else {
                names_user(user)
            };
            json!({
                "if": condition,
                "then": {"properties": {"tasks": tasks_schema(&task_def(user))}},
            })
        })
        .collect()
}
