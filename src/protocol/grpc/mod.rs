//! gRPC (`grpc_user`, request type `GRPC`): each task makes one call, unary or
//! server-streaming, described by a `.proto` file compiled at start (no
//! generated code: requests and replies are [`prost_reflect::DynamicMessage`]s,
//! carried by [`DynamicCodec`]).
//!
//! Each virtual user opens its own [`tonic::transport::Channel`] (one HTTP/2
//! connection) to a target on its first call there, and keeps it: like real
//! clients, the users load the server with as many connections as there are
//! users, and a refused connection fails the user's own calls only. A channel
//! reconnects by itself after its connection drops.
//!
//! A call is timed to its reply (a streaming call to its last message); the
//! response length is the encoded size of the reply messages. A non-OK status
//! is a failure naming the code and the server's message
//! (`status NOT_FOUND: no such key`).

mod codec;
mod reflection;
mod schema;
mod task;

pub use codec::{BytesEncoder, DynamicCodec, DynamicDecoder};
pub use task::{DEFAULT_TARGET, DEFAULT_TIMEOUT, FIELDS, GrpcTask, RpcKind};

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use prost::Message;
use serde_json::{Map, Value};
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::protocol::fields::render_optional;
use crate::protocol::{
    Failure, FailureKind, ParseContext, ParsedSpec, Protocol, StepContext, StepOutcome,
};
use crate::scenario::RenderContext;
use crate::task::{Task, TaskError};
use task::{MetadataValue, Payload, Target};

/// The `grpc_user` protocol.
#[derive(Debug, Clone)]
pub struct Grpc;

/// One virtual user's channels, one per target it has called.
#[derive(Default)]
pub struct GrpcClient {
    channels: Vec<(Arc<Target>, Channel)>,
}

impl GrpcClient {
    /// The channel to `target`, connected when needed.
    async fn channel(&mut self, target: &Arc<Target>) -> Result<Channel, String> {
        if let Some((_, channel)) = self
            .channels
            .iter()
            .find(|(open, _)| Arc::ptr_eq(open, target) || open.same_as(target))
        {
            return Ok(channel.clone());
        }
        let timeout = target
            .endpoint
            .get_connect_timeout()
            .unwrap_or(DEFAULT_TIMEOUT);
        let channel = match tokio::time::timeout(timeout, target.endpoint.connect()).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(e)) => return Err(format!("connect {}: {}", target.label, chain(&e))),
            Err(_) => {
                return Err(format!(
                    "connect {}: timed out after {timeout:?}",
                    target.label
                ));
            }
        };
        self.channels.push((target.clone(), channel.clone()));
        Ok(channel)
    }
}

impl Protocol for Grpc {
    type Spec = GrpcTask;
    type Shared = ();
    type Client = GrpcClient;

    const FIELDS: &'static [&'static str] = FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<GrpcTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &GrpcTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(_shared: &Arc<()>) -> GrpcClient {
        GrpcClient::default()
    }

    async fn step(
        client: &mut GrpcClient,
        task: &Task<GrpcTask>,
        ctx: &mut StepContext<'_>,
    ) -> StepOutcome {
        let (name, request) = {
            let mut render = ctx.render();
            let name = render_optional(task.name.as_ref(), &mut render);
            let body = if task.kind.client_streams() {
                task.messages
                    .iter()
                    .map(|payload| encode(payload, &mut render))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Body::Stream)
            } else {
                encode(&task.payload, &mut render).map(Body::One)
            };
            let request = body.and_then(|body| {
                let mut request = tonic::Request::new(body);
                for (key, value) in &task.metadata {
                    let value = match value {
                        MetadataValue::Static(value) => value.clone(),
                        MetadataValue::Template(template) => AsciiMetadataValue::try_from(
                            template.render(&mut render),
                        )
                        .map_err(|_| format!("metadata `{key}`: the value is not valid ASCII"))?,
                    };
                    request.metadata_mut().insert(key.clone(), value);
                }
                request.set_timeout(task.timeout);
                Ok(request)
            });
            (name, request)
        };
        let request = match request {
            Ok(request) => request,
            Err(failure) => {
                return StepOutcome {
                    name,
                    ..StepOutcome::failed(failure)
                };
            }
        };
        if let Some(url) = ctx.log_url() {
            url.clear();
            url.push_str(&task.target.label);
            url.push_str(task.path.as_str());
        }
        let channel = match client.channel(&task.target).await {
            Ok(channel) => channel,
            Err(failure) => {
                return StepOutcome {
                    name,
                    ..StepOutcome::failed(Failure::connect(failure))
                };
            }
        };
        let result = tokio::time::timeout(task.timeout, call(channel, task, request)).await;
        let end = Instant::now();
        let result = match result {
            Ok(Ok(length)) => Ok(length),
            // The channel lost its connection and could not open a new one.
            Ok(Err(status)) if caused_by::<tonic::ConnectError>(&status) => {
                Err(Failure::connect(describe_status(&status)))
            }
            Ok(Err(status)) if !caused_by::<tonic::TimeoutExpired>(&status) => {
                let kind = if status.code() == tonic::Code::Unavailable {
                    FailureKind::Network
                } else {
                    FailureKind::Other
                };
                Err(Failure::new(kind, describe_status(&status)))
            }
            // The deadline sent as `grpc-timeout` is also enforced by the channel.
            Ok(Err(_)) | Err(_) => Err(Failure::timeout(format!(
                "{} timed out after {:?}",
                task.method, task.timeout
            ))),
        };
        StepOutcome::finished(end, name, result)
    }
}

/// What a call sends: one message, or a stream of them.
enum Body {
    One(Bytes),
    Stream(Vec<Bytes>),
}

impl Body {
    fn one(self) -> Bytes {
        match self {
            Self::One(bytes) => bytes,
            Self::Stream(messages) => messages.into_iter().next().unwrap_or_default(),
        }
    }

    fn stream(self) -> futures_util::stream::Iter<std::vec::IntoIter<Bytes>> {
        futures_util::stream::iter(match self {
            Self::One(bytes) => vec![bytes],
            Self::Stream(messages) => messages,
        })
    }
}

/// A request message, encoded (rendered first when it has placeholders).
fn encode(payload: &Payload, render: &mut RenderContext<'_>) -> Result<Bytes, String> {
    match payload {
        Payload::Static(bytes) => Ok(bytes.clone()),
        Payload::Template { template, message } => {
            schema::encode_payload(&template.render(render), message)
                .map_err(|e| format!("payload: {e}"))
        }
    }
}

/// Makes the call; the encoded size of the reply (of all its messages for a
/// server-streaming or bidirectional call, which is timed to its last message).
async fn call(
    channel: Channel,
    task: &GrpcTask,
    request: tonic::Request<Body>,
) -> Result<u64, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("connection not ready: {}", chain(&e))))?;
    let (path, codec) = (task.path.clone(), task.codec.clone());
    let mut stream = match task.kind {
        RpcKind::Unary => {
            let reply = grpc.unary(request.map(Body::one), path, codec).await?;
            return Ok(reply.get_ref().encoded_len() as u64);
        }
        RpcKind::ClientStream => {
            let reply = grpc
                .client_streaming(request.map(Body::stream), path, codec)
                .await?;
            return Ok(reply.get_ref().encoded_len() as u64);
        }
        RpcKind::ServerStream => grpc
            .server_streaming(request.map(Body::one), path, codec)
            .await?
            .into_inner(),
        RpcKind::Bidi => grpc
            .streaming(request.map(Body::stream), path, codec)
            .await?
            .into_inner(),
    };
    let mut length = 0;
    while let Some(message) = stream.message().await? {
        length += message.encoded_len() as u64;
    }
    Ok(length)
}

/// True when `E` is among the causes of `status`.
fn caused_by<E: StdError + 'static>(status: &Status) -> bool {
    let mut source = status.source();
    let mut depth = 0;
    while let Some(cause) = source {
        if cause.is::<E>() {
            return true;
        }
        source = cause.source();
        depth += 1;
        if depth > 8 {
            break;
        }
    }
    false
}

/// `status NOT_FOUND: no such key`.
fn describe_status(status: &Status) -> String {
    let code = code_name(status.code());
    let mut text = if status.message().is_empty() {
        format!("status {code}")
    } else {
        format!("status {code}: {}", status.message())
    };
    if let Some(source) = status.source() {
        let detail = chain(source);
        if !text.contains(&detail) {
            text.push_str(" (");
            text.push_str(&detail);
            text.push(')');
        }
    }
    text
}

/// The name gRPC gives a status code.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// An error and its causes, `: `-separated (tonic's own messages say little:
/// `transport error`).
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    let mut depth = 0;
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
        depth += 1;
        if depth > 8 {
            break;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_name_their_code_and_message() {
        assert_eq!(
            describe_status(&Status::not_found("no such key")),
            "status NOT_FOUND: no such key"
        );
        assert_eq!(
            describe_status(&Status::new(Code::Unavailable, "")),
            "status UNAVAILABLE"
        );
    }
}
