//! The `memcached_user` task schema (LoadDensity's `memcached_user_template.py`):
//! the key-value schema ([`crate::protocol::key_value`]) with `set` as its write and
//! port 11211.

use serde_json::{Map, Value};

use crate::protocol::key_value::{self, KeyValueTask, Store};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::task::TaskError;

pub use crate::protocol::key_value::{DEFAULT_TIMEOUT, FIELDS};

/// The steps LoadDensity's template has.
pub const METHODS: &[&str] = &["connect", "set", "get", "delete", "close"];

/// memcached's port.
pub const DEFAULT_PORT: u16 = 11211;

/// One memcached step of a scenario.
pub type MemcachedTask = KeyValueTask;

const STORE: Store = Store {
    request_type: "MEMCACHED",
    methods: METHODS,
    default_port: DEFAULT_PORT,
};

/// Parses the memcached fields of one task object.
pub(crate) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<MemcachedTask>, TaskError> {
    key_value::parse(&STORE, object, method_key, path, ctx)
}
