//! The `etcd_user` task schema (LoadDensity's `etcd_user_template.py`): the
//! key-value schema ([`crate::protocol::key_value`]) with `put` as its write and
//! port 2379.

use serde_json::{Map, Value};

use crate::protocol::key_value::{self, KeyValueTask, Store};
use crate::protocol::{ParseContext, ParsedSpec};
use crate::task::TaskError;

pub use crate::protocol::key_value::{DEFAULT_TIMEOUT, FIELDS};

/// The steps LoadDensity's template has.
pub const METHODS: &[&str] = &["connect", "put", "get", "delete", "close"];

/// etcd's port.
pub const DEFAULT_PORT: u16 = 2379;

/// One etcd step of a scenario.
pub type EtcdTask = KeyValueTask;

const STORE: Store = Store {
    request_type: "ETCD",
    methods: METHODS,
    default_port: DEFAULT_PORT,
};

/// Parses the etcd fields of one task object.
pub(crate) fn parse(
    object: &Map<String, Value>,
    method_key: Option<&str>,
    path: &str,
    ctx: &ParseContext<'_>,
) -> Result<ParsedSpec<EtcdTask>, TaskError> {
    key_value::parse(&STORE, object, method_key, path, ctx)
}
