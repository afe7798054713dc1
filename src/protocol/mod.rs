//! The protocol seam: what a LoadDensity user type (`http_user`, `websocket_user`,
//! `socket_user`, ...) brings to the protocol-neutral engine.
//!
//! A [`Protocol`] owns its task schema (parsed strictly, errors naming the field),
//! its per-user client state and one async [`Protocol::step`] that runs a task once
//! and says what its request event carries ([`StepOutcome`]). The engine (its plan:
//! modes, weights, wait times; its users) is generic over it, and hands each step the
//! scenario machinery ([`crate::scenario`]: conditions, placeholders, variables, CSV
//! rows): each protocol is compiled into its own copy of the user loop, with no
//! dynamic call per request.
//!
//! Adding a protocol: one folder here with a type implementing [`Protocol`], and
//! one line in the `user_types!` registry below.

pub mod amqp;
pub mod async_http;
pub mod client_cert;
pub mod etcd;
pub mod failure;
pub(crate) mod fields;
pub mod graphql_ws;
pub mod grpc;
pub mod http;
pub mod http3;
pub mod key_value;
pub mod memcached;
pub mod mqtt;
pub mod nats;
pub mod payload;
pub mod redis;
pub mod socket;
pub mod sql;
pub mod sse;
pub(crate) mod step_timer;
pub(crate) mod user_connection;
pub mod websocket;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use serde_json::{Map, Value};
use url::Url;

use crate::event::{Endpoint, TraceIds};
use crate::scenario::{CsvLookup, RenderContext, ResolverSnapshot};
use crate::task::throttle::ThrottleRegistry;
pub use failure::{Failure, FailureKind};

use crate::task::{ErrorClass, Task, TaskError};

/// A way of sending requests: a user type's task schema, client and step.
pub trait Protocol: Debug + Clone + Send + Sync + 'static {
    /// The protocol's part of a parsed task (everything but the common fields).
    type Spec: Debug + Send + Sync + 'static;
    /// What the users of one run share (TLS configuration, ...), made once per run.
    type Shared: Default + Send + Sync + 'static;
    /// One virtual user's client state (connections, cookie jar, ...).
    type Client: Send + 'static;

    /// The task fields this protocol reads, besides the common `weight`, `run_if`
    /// and `skip_if` (listed in errors about unknown fields).
    const FIELDS: &'static [&'static str];

    /// Parses the protocol's fields of one task object (unknown fields have already
    /// been refused). `method_key` is the method given by a legacy map's key; `path`
    /// names the task in errors (`tasks[0]`).
    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<Self::Spec>, TaskError>;

    /// Adds the CSV sources the task's placeholders read to `into`.
    fn csv_sources(spec: &Self::Spec, into: &mut Vec<usize>) {
        let _ = (spec, into);
    }

    /// A new virtual user's client.
    fn client(shared: &Arc<Self::Shared>) -> Self::Client;

    /// Runs `task` once for one user: one request event. Never panics on bad
    /// input or peers: every problem is a failure in the outcome.
    fn step(
        client: &mut Self::Client,
        task: &Task<Self::Spec>,
        ctx: &mut StepContext<'_>,
    ) -> impl Future<Output = StepOutcome> + Send;
}

/// What a protocol's task parser may read besides the task itself.
pub struct ParseContext<'a> {
    /// LoadDensity's `host` argument when it is a URL: the base of relative URLs.
    pub host: Option<&'a Url>,
    /// LoadDensity's `host` argument as written (`host:port` for raw sockets).
    pub host_text: Option<&'a str>,
    /// What LD_start_test says besides `host`: `connection` (less its `url`: default
    /// fields merged under each task, as LoadDensity's `with_connection_defaults`) and
    /// `connection_string`.
    pub defaults: ConnectionDefaults<'a>,
    pub(crate) csv: &'a dyn CsvLookup,
    /// The test's throttle buckets, by key (tasks with one key share a bucket).
    pub(crate) throttles: RefCell<ThrottleRegistry>,
}

/// LD_start_test's arguments that tell a user type where its server is, besides
/// `host`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionDefaults<'a> {
    /// `connection`: default step fields (LoadDensity's `with_connection_defaults`:
    /// a step's own keys win).
    pub connection: Option<&'a Map<String, Value>>,
    /// `connection_string` (`sql_user`: a SQLAlchemy URL).
    pub connection_string: Option<&'a str>,
}

impl ConnectionDefaults<'_> {
    /// A task object with the `connection` keys it lacks added (`fields`: the keys a
    /// protocol reads; any other key of `connection` is an error naming it).
    pub(crate) fn merged(
        &self,
        object: &Map<String, Value>,
        fields: &[&str],
    ) -> Result<Map<String, Value>, TaskError> {
        let mut merged = object.clone();
        for (key, value) in self.connection.into_iter().flatten() {
            if !fields.contains(&key.as_str()) {
                return Err(crate::task::err(
                    format!("connection.{key}"),
                    format!("unknown field; expected one of: {}", fields.join(", ")),
                ));
            }
            if !merged.contains_key(key) {
                merged.insert(key.clone(), value.clone());
            }
        }
        Ok(merged)
    }
}

impl<'a> ParseContext<'a> {
    pub(crate) fn new(
        host: Option<&'a Url>,
        host_text: Option<&'a str>,
        csv: &'a dyn CsvLookup,
    ) -> Self {
        Self {
            host,
            host_text,
            defaults: ConnectionDefaults::default(),
            csv,
            throttles: RefCell::default(),
        }
    }

    /// With LD_start_test's `connection` and `connection_string`.
    pub(crate) fn with_defaults(mut self, defaults: ConnectionDefaults<'a>) -> Self {
        self.defaults = defaults;
        self
    }
}

/// A protocol's part of a task, with the endpoint its events are reported under.
#[derive(Debug)]
pub struct ParsedSpec<S> {
    /// Name and request type (for HTTP the method; `WS`, `TCP`, `UDP` ...).
    pub endpoint: Arc<Endpoint>,
    /// The protocol's own fields.
    pub spec: S,
}

/// What one user's step may read and change besides its client: the user's
/// variables, the registered ones and this iteration's CSV rows.
pub struct StepContext<'a> {
    variables: &'a mut HashMap<String, String>,
    resolver: &'a ResolverSnapshot,
    csv_rows: &'a [usize],
    rng: &'a mut SmallRng,
    extra: &'a mut Vec<ExtraEvent>,
    /// When the step began: the base of the request's timeout, so that a step need
    /// not read the clock again. (Its response time counts from the same reading, or
    /// from the open model's scheduled start for an iteration's first request.)
    pub began: Instant,
    /// The request log's URL buffer (reused per user); see [`StepContext::log_url`].
    url: Option<&'a mut String>,
    /// True when the request log wants this step's response as a sample.
    pub sample: bool,
    /// The trace context chosen for this request, when a listener claims it
    /// ([`crate::event::EventDetail::want_trace`]): an HTTP step sends it as a W3C
    /// `traceparent` header. `None` otherwise.
    pub trace: Option<TraceIds>,
}

impl<'a> StepContext<'a> {
    pub(crate) fn new(
        variables: &'a mut HashMap<String, String>,
        resolver: &'a ResolverSnapshot,
        csv_rows: &'a [usize],
        rng: &'a mut SmallRng,
        extra: &'a mut Vec<ExtraEvent>,
        began: Instant,
    ) -> Self {
        Self {
            variables,
            resolver,
            csv_rows,
            rng,
            extra,
            began,
            url: None,
            sample: false,
            trace: None,
        }
    }

    /// Attaches the request log: when `logging`, the step writes its URL into `url`
    /// ([`StepContext::log_url`]); when `sample`, it returns its response in
    /// [`StepOutcome::sample`].
    pub(crate) fn with_log(mut self, url: &'a mut String, logging: bool, sample: bool) -> Self {
        self.url = logging.then_some(url);
        self.sample = sample;
        self
    }

    /// Attaches the trace context chosen for this request ([`StepContext::trace`]).
    pub(crate) fn with_trace(mut self, trace: Option<TraceIds>) -> Self {
        self.trace = trace;
        self
    }

    /// The buffer to write the request's URL into, when a request log is attached
    /// (`None` otherwise: nothing to do).
    pub fn log_url(&mut self) -> Option<&mut String> {
        self.url.as_deref_mut()
    }

    /// What placeholders and assertions resolve against.
    pub(crate) fn render(&mut self) -> RenderContext<'_> {
        RenderContext::new(self.variables, &self.resolver.variables, self.rng)
            .with_csv(&self.resolver.tables, self.csv_rows)
    }

    /// Reports a request event besides the step's own (fired after it).
    pub fn report(&mut self, event: ExtraEvent) {
        self.extra.push(event);
    }

    /// Sets one of this user's variables (an extractor's result).
    pub fn set_variable(&mut self, name: String, value: String) {
        self.variables.insert(name, value);
    }
}

/// A request event a step reports besides its own: a message received on an MQTT
/// subscription, ...
#[derive(Debug)]
pub struct ExtraEvent {
    /// What it is reported as.
    pub endpoint: Arc<Endpoint>,
    /// When its time starts.
    pub start: Instant,
    /// Its response time.
    pub response_time: Duration,
    /// Bytes counted as its response's length.
    pub response_length: u64,
    /// `None` for a success, else why it failed.
    pub failure: Option<String>,
}

/// What one step reports in its request event.
#[derive(Debug)]
pub struct StepOutcome {
    /// When the timed part ended (the response time counts from the request's start
    /// to here).
    pub end: Instant,
    /// For a templated `name`: the name to report under (else the task's endpoint).
    pub name: Option<String>,
    /// Protocol status code (HTTP status), when there is one.
    pub status: Option<u16>,
    /// Bytes counted as the response's length.
    pub response_length: u64,
    /// `None` for a success, else why it failed.
    pub failure: Option<String>,
    /// True when the step failed because it could not connect (counted so that a
    /// run whose every connection was refused says so).
    pub connect_failure: bool,
    /// How a failure is retried (`retry`): its [`FailureKind::class`] (built by
    /// [`StepOutcome::failed`] and [`StepOutcome::finished`]); a 5xx or 429 status is
    /// flaky whatever this says. Not read for a success.
    pub class: ErrorClass,
    /// The response, when the context asked for a sample ([`StepContext::sample`]).
    pub sample: Option<Box<ResponseSample>>,
}

/// A response kept for the request log's samples: headers and the start of the body.
#[derive(Debug, Default)]
pub struct ResponseSample {
    /// The response headers.
    pub headers: ::http::HeaderMap,
    /// The first bytes of the body ([`crate::event::SAMPLE_BODY`] at most).
    pub body: Vec<u8>,
}

/// Code generic over the protocol, run for the protocol a user type names (see
/// [`visit_user_type`]).
pub trait UserTypeVisitor {
    /// What the visit returns.
    type Output;
    /// Runs with the user type's protocol.
    fn visit<P: Protocol>(self) -> Self::Output;
}

/// The registry: LoadDensity user type names to protocols, one line each.
macro_rules! user_types {
    ($($name:literal => $protocol:ty,)*) => {
        /// The LoadDensity user types this engine runs (`user_detail_dict.user`).
        pub const USER_TYPES: &[&str] = &[$($name),*];

        /// Runs `visitor` with the protocol of user type `name`; `None` for a user
        /// type this engine does not run.
        pub fn visit_user_type<V: UserTypeVisitor>(name: &str, visitor: V) -> Option<V::Output> {
            match name {
                $($name => Some(visitor.visit::<$protocol>()),)*
                _ => None,
            }
        }
    };
}

user_types! {
    "fast_http_user" => http::Http<http::FastSession>,
    "http_user" => http::Http,
    "websocket_user" => websocket::WebSocket,
    "socket_user" => socket::Socket,
    "mqtt_user" => mqtt::Mqtt,
    "redis_user" => redis::Redis,
    "grpc_user" => grpc::Grpc,
    "sse_user" => sse::Sse,
    "graphql_ws_user" => graphql_ws::GraphqlWs,
    "async_http_user" => async_http::AsyncHttp,
    "http3_user" => http3::Http3,
    "sql_user" => sql::Sql,
    "memcached_user" => memcached::Memcached,
    "etcd_user" => etcd::Etcd,
    "amqp_user" => amqp::Amqp,
    "nats_user" => nats::Nats,
}

/// LoadDensity user types this engine does not run yet.
pub const PLANNED_USER_TYPES: &[&str] = &[];
