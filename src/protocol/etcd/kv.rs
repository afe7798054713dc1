//! etcd's v3 KV service (`etcdserverpb.KV`): the `Put`, `Range` and `DeleteRange`
//! calls with the fields of their messages that `etcd_user` uses, as in etcd's
//! `rpc.proto` and `kv.proto` (field numbers included; fields left out are skipped
//! by the decoder). Also used by the tests to read the store's revision.

use http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::protocol::{Failure, FailureKind};
use tonic_prost::ProstCodec;

/// `etcdserverpb.ResponseHeader`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseHeader {
    /// The cluster's ID.
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    /// The member that answered.
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    /// The store's revision when the request was applied: every put and every
    /// delete that deletes something adds one.
    #[prost(int64, tag = "3")]
    pub revision: i64,
    /// The raft term.
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}

/// `etcdserverpb.PutRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutRequest {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `etcdserverpb.PutResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResponse {
    /// The header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `etcdserverpb.RangeRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeRequest {
    /// The key (the first of the range).
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The end of the range (empty: the key alone).
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    /// At most this many keys (0: no limit).
    #[prost(int64, tag = "3")]
    pub limit: i64,
}

/// `mvccpb.KeyValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The revision that created it.
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    /// The revision that last changed it.
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    /// How many times it was written since it was created.
    #[prost(int64, tag = "4")]
    pub version: i64,
    /// The value.
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
}

/// `etcdserverpb.RangeResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeResponse {
    /// The header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The keys found.
    #[prost(message, repeated, tag = "2")]
    pub kvs: Vec<KeyValue>,
    /// True when more keys are in the range.
    #[prost(bool, tag = "3")]
    pub more: bool,
    /// How many keys are in the range.
    #[prost(int64, tag = "4")]
    pub count: i64,
}

/// `etcdserverpb.DeleteRangeRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteRangeRequest {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The end of the range (empty: the key alone).
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
}

/// `etcdserverpb.DeleteRangeResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteRangeResponse {
    /// The header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// How many keys were deleted.
    #[prost(int64, tag = "2")]
    pub deleted: i64,
}

/// An error with its causes.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A gRPC status as a failure: its code and message; `Unavailable` (the connection
/// failed) is transient, the server's other answers permanent.
fn status_failure(status: &Status) -> Failure {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(source) = std::error::Error::source(status) {
        text.push_str(": ");
        text.push_str(&chain(source));
    }
    let kind = match status.code() {
        Code::Unavailable => FailureKind::Network,
        Code::DeadlineExceeded => FailureKind::Timeout,
        _ => FailureKind::Other,
    };
    Failure::new(kind, text)
}

async fn unary<Req, Resp>(
    channel: Channel,
    path: &'static str,
    request: Req,
) -> Result<Resp, Failure>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Failure::network(format!("connection not ready: {}", chain(&e))))?;
    grpc.unary(
        Request::new(request),
        PathAndQuery::from_static(path),
        ProstCodec::<Req, Resp>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
    .map_err(|status| status_failure(&status))
}

/// `Put`: sets `key` to `value`.
pub async fn put(channel: Channel, key: &str, value: &str) -> Result<PutResponse, Failure> {
    let request = PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
    };
    unary(channel, "/etcdserverpb.KV/Put", request).await
}

/// `Range` of one key: its value, `None` when it is absent.
pub async fn get(channel: Channel, key: &str) -> Result<Option<Vec<u8>>, Failure> {
    range(channel, key)
        .await
        .map(|r| r.kvs.into_iter().next().map(|kv| kv.value))
}

/// `Range` of one key, the whole answer (its header carries the revision).
pub async fn range(channel: Channel, key: &str) -> Result<RangeResponse, Failure> {
    let request = RangeRequest {
        key: key.as_bytes().to_vec(),
        range_end: Vec::new(),
        limit: 0,
    };
    unary(channel, "/etcdserverpb.KV/Range", request).await
}

/// `DeleteRange` of one key: how many keys were deleted (0 or 1).
pub async fn delete(channel: Channel, key: &str) -> Result<i64, Failure> {
    let request = DeleteRangeRequest {
        key: key.as_bytes().to_vec(),
        range_end: Vec::new(),
    };
    unary::<_, DeleteRangeResponse>(channel, "/etcdserverpb.KV/DeleteRange", request)
        .await
        .map(|r| r.deleted)
}
