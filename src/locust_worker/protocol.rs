//! Locust's master/worker messages: one msgpack array `[type, data, node_id]` per
//! ZeroMQ frame (`locust/rpc/protocol.py`), and what the master's messages mean to a
//! worker. Decoding never panics: a frame that is not such an array, or whose fields
//! have the wrong types, is a [`ProtocolError`]; unknown message types and extra
//! fields are kept, so that a newer master's additions do not break the worker.

use rmpv::Value;

/// The Locust version this worker speaks, sent in `client_ready`. A master of
/// another minor version logs a warning and still accepts the worker.
pub const LOCUST_VERSION: &str = "2.47.0";

/// How deep a decoded value may nest (Locust's messages nest three or four levels).
const MAX_DEPTH: usize = 64;

/// A frame that is not a Locust message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not valid msgpack.
    #[error("not a msgpack value: {0}")]
    Msgpack(String),
    /// Bytes left after the message.
    #[error("{0} bytes after the message")]
    Trailing(usize),
    /// Valid msgpack, but not `[type, data, node_id]`.
    #[error("not a Locust message [type, data, node_id]: {0}")]
    Shape(String),
    /// A known message whose data lacks a field or has one of the wrong type.
    #[error("`{kind}` message: {problem}")]
    Field {
        /// The message type.
        kind: String,
        /// What is wrong.
        problem: String,
    },
}

/// One message, as Locust's `Message(type, data, node_id)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The message type, e.g. `spawn`.
    pub kind: String,
    /// Its data: `nil`, a map, or a string (`client_ready`'s version).
    pub data: Value,
    /// The worker's id (the ZeroMQ routing identity), in both directions.
    pub node_id: String,
}

impl Message {
    /// A message of `kind` with `data` from or to worker `node_id`.
    pub fn new(kind: &str, data: Value, node_id: &str) -> Self {
        Self {
            kind: kind.to_string(),
            data,
            node_id: node_id.to_string(),
        }
    }

    /// The msgpack bytes of `[type, data, node_id]`.
    pub fn encode(&self) -> Vec<u8> {
        let value = Value::Array(vec![
            Value::from(self.kind.as_str()),
            self.data.clone(),
            Value::from(self.node_id.as_str()),
        ]);
        let mut out = Vec::with_capacity(64);
        // Writing into a Vec cannot fail.
        let _ = rmpv::encode::write_value(&mut out, &value);
        out
    }

    /// Reads one message from a frame.
    pub fn decode(frame: &[u8]) -> Result<Self, ProtocolError> {
        let mut rest = frame;
        let value = rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH)
            .map_err(|e| ProtocolError::Msgpack(e.to_string()))?;
        if !rest.is_empty() {
            return Err(ProtocolError::Trailing(rest.len()));
        }
        let Value::Array(mut items) = value else {
            return Err(ProtocolError::Shape(format!("a {}", kind_of(&value))));
        };
        if items.len() != 3 {
            return Err(ProtocolError::Shape(format!(
                "an array of {} items",
                items.len()
            )));
        }
        let node_id = items.pop().unwrap_or(Value::Nil);
        let data = items.pop().unwrap_or(Value::Nil);
        let kind = items.pop().unwrap_or(Value::Nil);
        let (Value::String(kind), node_id) = (kind, node_id) else {
            return Err(ProtocolError::Shape("the type is not a string".into()));
        };
        let Some(kind) = kind.into_str() else {
            return Err(ProtocolError::Shape("the type is not UTF-8".into()));
        };
        let node_id = match node_id {
            Value::String(s) => s.into_str().unwrap_or_default(),
            Value::Nil => String::new(),
            other => {
                return Err(ProtocolError::Shape(format!(
                    "the node id is a {}",
                    kind_of(&other)
                )));
            }
        };
        Ok(Self {
            kind,
            data,
            node_id,
        })
    }
}

/// What a master's message asks of a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `ack`: the master accepted `client_ready`; its index for this worker (masters
    /// before 2.10.2 send none).
    Ack {
        /// The worker's 0-based index.
        index: Option<i64>,
    },
    /// `spawn`: run this many users of each class (the whole count, not a change).
    Spawn(Spawn),
    /// `spawning_complete`: the whole test has its users.
    SpawningComplete {
        /// Users over all workers.
        user_count: Option<i64>,
    },
    /// `stop`: stop every user, then report ready again.
    Stop,
    /// `quit`: stop every user, send the last statistics, and exit.
    Quit,
    /// `reconnect`: the master could not read a frame; open a new connection.
    Reconnect,
    /// `heartbeat`: the master is alive.
    Heartbeat,
    /// Any other type (`update_user_class`, custom messages): ignored.
    Other(String),
}

/// A `spawn` message's data.
#[derive(Debug, Clone, PartialEq)]
pub struct Spawn {
    /// The master's `time.time()` when it sent this; older or equal ones are dropped.
    pub timestamp: f64,
    /// Users per class name, for this worker.
    pub user_classes_count: Vec<(String, u64)>,
    /// The master's `--host`, if any.
    pub host: Option<String>,
    /// The master's `--stop-timeout` in seconds, if any.
    pub stop_timeout: Option<f64>,
}

impl Command {
    /// What `message` asks; an error names what a known message lacks.
    pub fn from_message(message: &Message) -> Result<Self, ProtocolError> {
        let field = |problem: String| ProtocolError::Field {
            kind: message.kind.clone(),
            problem,
        };
        Ok(match message.kind.as_str() {
            "ack" => Command::Ack {
                index: get(&message.data, "index").and_then(Value::as_i64),
            },
            "spawn" => {
                let data = &message.data;
                let timestamp = get(data, "timestamp")
                    .and_then(as_f64)
                    .ok_or_else(|| field("no number `timestamp`".into()))?;
                let Some(Value::Map(classes)) = get(data, "user_classes_count") else {
                    return Err(field("no map `user_classes_count`".into()));
                };
                let mut user_classes_count = Vec::with_capacity(classes.len());
                for (name, count) in classes {
                    let name = name
                        .as_str()
                        .ok_or_else(|| field("a user class name is not a string".into()))?;
                    let count = count.as_u64().ok_or_else(|| {
                        field(format!("the count of `{name}` is not a whole number >= 0"))
                    })?;
                    user_classes_count.push((name.to_string(), count));
                }
                Spawn {
                    timestamp,
                    user_classes_count,
                    host: get(data, "host").and_then(Value::as_str).map(String::from),
                    stop_timeout: get(data, "stop_timeout").and_then(as_f64),
                }
                .into()
            }
            "spawning_complete" => Command::SpawningComplete {
                user_count: get(&message.data, "user_count").and_then(Value::as_i64),
            },
            "stop" => Command::Stop,
            "quit" => Command::Quit,
            "reconnect" => Command::Reconnect,
            "heartbeat" => Command::Heartbeat,
            other => Command::Other(other.to_string()),
        })
    }
}

impl From<Spawn> for Command {
    fn from(spawn: Spawn) -> Self {
        Command::Spawn(spawn)
    }
}

/// The value of `key` in a msgpack map.
pub fn get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    match map {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

/// A number as `f64` (Python sends floats and ints alike).
fn as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::F64(f) => Some(*f),
        Value::F32(f) => Some(f64::from(*f)),
        Value::Integer(i) => i.as_f64(),
        _ => None,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) => "integer",
        Value::F32(_) | Value::F64(_) => "float",
        Value::String(_) => "string",
        Value::Binary(_) => "binary",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Ext(..) => "ext",
    }
}

/// A msgpack map from string keys.
pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// The `client_ready` message: this worker's Locust version.
pub fn client_ready(node_id: &str) -> Message {
    Message::new("client_ready", Value::from(LOCUST_VERSION), node_id)
}

/// The `heartbeat` message: the worker's state (`ready`, `spawning`, `running`) and
/// its CPU use in percent.
pub fn heartbeat(node_id: &str, state: &str, cpu_percent: f64, memory_bytes: u64) -> Message {
    Message::new(
        "heartbeat",
        map([
            ("state", Value::from(state)),
            ("current_cpu_usage", Value::F64(cpu_percent)),
            ("current_memory_usage", Value::from(memory_bytes)),
        ]),
        node_id,
    )
}

/// The `{class: users}` map of `spawning_complete` and `stats`.
pub fn user_classes_count(class: &str, users: u32) -> Value {
    Value::Map(vec![(Value::from(class), Value::from(users))])
}

/// The `spawning_complete` message: the users this worker now runs.
pub fn spawning_complete(node_id: &str, class: &str, users: u32) -> Message {
    Message::new(
        "spawning_complete",
        map([
            ("user_classes_count", user_classes_count(class, users)),
            ("user_count", Value::from(users)),
        ]),
        node_id,
    )
}

/// The `exception` message: an error the master shows in its Exceptions tab.
pub fn exception(node_id: &str, text: &str) -> Message {
    Message::new(
        "exception",
        map([("msg", Value::from(text)), ("traceback", Value::from(""))]),
        node_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_spawn_reads_its_fields() {
        let spawn = Message::new(
            "spawn",
            map([
                ("timestamp", Value::F64(1.5)),
                (
                    "user_classes_count",
                    map([("WebUser", Value::from(3)), ("Other", Value::from(0))]),
                ),
                ("host", Value::from("http://127.0.0.1:8080")),
                ("stop_timeout", Value::Nil),
                ("parsed_options", map([("num_users", Value::from(20))])),
            ]),
            "host_abc",
        );
        let decoded = Message::decode(&spawn.encode()).expect("decodes");
        assert_eq!(decoded, spawn);
        let Command::Spawn(s) = Command::from_message(&decoded).expect("a spawn") else {
            panic!("not a spawn");
        };
        assert_eq!(s.timestamp, 1.5);
        assert_eq!(
            s.user_classes_count,
            vec![("WebUser".to_string(), 3), ("Other".to_string(), 0)]
        );
        assert_eq!(s.host.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(s.stop_timeout, None);
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert!(matches!(
            // An array of three whose first string is cut short.
            Message::decode(&[0x93, 0xa4, b'a']),
            Err(ProtocolError::Msgpack(_))
        ));
        let one = Value::from(1);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &one).expect("encodes");
        assert!(matches!(
            Message::decode(&bytes),
            Err(ProtocolError::Shape(_))
        ));
        assert!(Message::decode(&[]).is_err());
        let mut two = client_ready("x").encode();
        two.push(0);
        assert_eq!(Message::decode(&two), Err(ProtocolError::Trailing(1)));
        let bad_spawn = Message::new("spawn", map([("timestamp", Value::from(1))]), "x");
        assert!(matches!(
            Command::from_message(&bad_spawn),
            Err(ProtocolError::Field { .. })
        ));
        let unknown = Message::new("update_user_class", Value::Nil, "x");
        assert_eq!(
            Command::from_message(&unknown),
            Ok(Command::Other("update_user_class".into()))
        );
    }
}
