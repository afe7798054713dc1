//! Server reflection (`reflection: true`): the service's file descriptors are
//! asked of the server at start (`grpc.reflection.v1.ServerReflection`, falling
//! back to `v1alpha`), with the files they import, instead of compiling a
//! `.proto` file. The few reflection messages needed are declared here with
//! prost's derive.

use std::collections::HashSet;
use std::marker::PhantomData;
use std::time::Duration;

use http::uri::PathAndQuery;
use prost::Message;
use prost_reflect::DescriptorPool;
use prost_reflect::prost_types::FileDescriptorProto;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Endpoint;
use tonic::{Code, Status};

/// At most this many rounds of asking for missing imports.
const MAX_ROUNDS: usize = 16;

const PATHS: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

#[derive(Clone, PartialEq, Message)]
struct ReflectionRequest {
    #[prost(string, tag = "1")]
    host: String,
    #[prost(oneof = "RequestKind", tags = "3, 4")]
    kind: Option<RequestKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum RequestKind {
    #[prost(string, tag = "3")]
    FileByFilename(String),
    #[prost(string, tag = "4")]
    FileContainingSymbol(String),
}

#[derive(Clone, PartialEq, Message)]
struct ReflectionResponse {
    #[prost(oneof = "ResponseKind", tags = "4, 7")]
    kind: Option<ResponseKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum ResponseKind {
    #[prost(message, tag = "4")]
    Files(FileDescriptorResponse),
    #[prost(message, tag = "7")]
    Error(ErrorResponse),
}

#[derive(Clone, PartialEq, Message)]
struct FileDescriptorResponse {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file_descriptor_proto: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct ErrorResponse {
    #[prost(int32, tag = "1")]
    error_code: i32,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// Asks the server at `endpoint` (named `label` in errors) for the files
/// defining `service` and their imports. Runs on a thread of its own (task
/// parsing is synchronous).
pub(super) fn fetch(
    endpoint: &Endpoint,
    label: &str,
    service: &str,
    timeout: Duration,
) -> Result<DescriptorPool, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start a runtime: {e}"))?;
                runtime.block_on(async {
                    match tokio::time::timeout(timeout, fetch_files(endpoint, label, service)).await
                    {
                        Ok(result) => result,
                        Err(_) => Err(format!(
                            "server reflection at {label}: timed out after {timeout:?}"
                        )),
                    }
                })
            })
            .join()
            .unwrap_or_else(|_| Err("server reflection failed".to_string()))
    })
}

async fn fetch_files(
    endpoint: &Endpoint,
    label: &str,
    service: &str,
) -> Result<DescriptorPool, String> {
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("server reflection: connect {label}: {}", super::chain(&e)))?;
    let mut files: Vec<FileDescriptorProto> = Vec::new();
    let mut wanted = vec![RequestKind::FileContainingSymbol(service.to_string())];
    let mut path_index = 0;
    for _ in 0..MAX_ROUNDS {
        let replies = loop {
            match ask(channel.clone(), PATHS[path_index], &wanted).await {
                Err(status)
                    if status.code() == Code::Unimplemented && path_index + 1 < PATHS.len() =>
                {
                    path_index += 1;
                }
                Err(status) => {
                    return Err(format!(
                        "server reflection at {label}: {}",
                        super::describe_status(&status)
                    ));
                }
                Ok(replies) => break replies,
            }
        };
        for reply in replies {
            match reply.kind {
                Some(ResponseKind::Files(found)) => {
                    for bytes in found.file_descriptor_proto {
                        let file = FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| {
                            format!("server reflection at {label}: bad descriptor: {e}")
                        })?;
                        if !files.iter().any(|f| f.name == file.name) {
                            files.push(file);
                        }
                    }
                }
                Some(ResponseKind::Error(error)) => {
                    let what = match wanted.first() {
                        Some(RequestKind::FileContainingSymbol(symbol)) => {
                            format!("service `{symbol}`")
                        }
                        Some(RequestKind::FileByFilename(name)) => format!("file `{name}`"),
                        None => "a file".to_string(),
                    };
                    return Err(format!(
                        "server reflection at {label} does not know {what}: {} (code {})",
                        error.error_message, error.error_code
                    ));
                }
                None => {}
            }
        }
        let known: HashSet<&str> = files.iter().map(|f| f.name()).collect();
        let missing: Vec<String> = files
            .iter()
            .flat_map(|f| f.dependency.iter())
            .filter(|d| !known.contains(d.as_str()))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            let mut pool = DescriptorPool::new();
            pool.add_file_descriptor_protos(files)
                .map_err(|e| format!("server reflection at {label}: {e}"))?;
            return Ok(pool);
        }
        wanted = missing
            .into_iter()
            .map(RequestKind::FileByFilename)
            .collect();
    }
    Err(format!(
        "server reflection at {label}: imports still missing after {MAX_ROUNDS} rounds"
    ))
}

/// One reflection stream: sends `wanted`, reads every reply.
async fn ask(
    channel: tonic::transport::Channel,
    path: &'static str,
    wanted: &[RequestKind],
) -> Result<Vec<ReflectionResponse>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(super::chain(&e)))?;
    let requests: Vec<ReflectionRequest> = wanted
        .iter()
        .map(|kind| ReflectionRequest {
            host: String::new(),
            kind: Some(kind.clone()),
        })
        .collect();
    let count = requests.len();
    let mut stream = grpc
        .streaming(
            tonic::Request::new(futures_util::stream::iter(requests)),
            PathAndQuery::from_static(path),
            ProstCodec::<ReflectionRequest, ReflectionResponse>::default(),
        )
        .await?
        .into_inner();
    let mut replies = Vec::with_capacity(count);
    while let Some(reply) = stream.message().await? {
        replies.push(reply);
        if replies.len() == count {
            break;
        }
    }
    Ok(replies)
}

/// A codec for the prost messages above.
struct ProstCodec<E, D>(PhantomData<fn() -> (E, D)>);

impl<E, D> Default for ProstCodec<E, D> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<E, D> Codec for ProstCodec<E, D>
where
    E: Message + Send + 'static,
    D: Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = ProstEncoder<E>;
    type Decoder = ProstDecoder<D>;

    fn encoder(&mut self) -> ProstEncoder<E> {
        ProstEncoder(PhantomData)
    }

    fn decoder(&mut self) -> ProstDecoder<D> {
        ProstDecoder(PhantomData)
    }
}

struct ProstEncoder<E>(PhantomData<fn() -> E>);

impl<E: Message> Encoder for ProstEncoder<E> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.encoded_len());
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encode: {e}")))
    }
}

struct ProstDecoder<D>(PhantomData<fn() -> D>);

impl<D: Message + Default> Decoder for ProstDecoder<D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        D::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("decode: {e}")))
    }
}
