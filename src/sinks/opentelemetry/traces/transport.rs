//! Sending encoded export requests ([`super::encode`]) to the collector: OTLP/gRPC over
//! tonic's channel (TLS by rustls with the system's roots for `https`), or OTLP/HTTP
//! with a protobuf body through the metrics exporter's HTTP client. The user's headers
//! go with every request (as gRPC metadata on gRPC); a collector's partial success
//! (spans it rejected) is counted.

use bytes::{Buf, BufMut, Bytes};
use http::header::CONTENT_TYPE;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Method, Request};
use opentelemetry_http::HttpClient as _;
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::super::OtelError;
use super::super::config::OtlpProtocol;
use super::super::export::RuntimeHttpClient;
use super::ResolvedTracingOptions;

/// The gRPC method of trace exports.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// `ExportTraceServiceResponse`: only its partial success is read.
#[derive(Clone, PartialEq, Message)]
struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

/// `ExportTracePartialSuccess`.
#[derive(Clone, PartialEq, Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected_spans: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// Where and how export requests go.
pub(super) enum Transport {
    /// OTLP/gRPC.
    Grpc {
        grpc: tonic::client::Grpc<Channel>,
        metadata: MetadataMap,
    },
    /// OTLP/HTTP with protobuf bodies.
    Http {
        client: RuntimeHttpClient,
        endpoint: String,
    },
}

impl std::fmt::Debug for Transport {
    // Headers and metadata are secrets: not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Grpc { .. } => f.write_str("Transport::Grpc"),
            Self::Http { endpoint, .. } => write!(f, "Transport::Http({endpoint})"),
        }
    }
}

impl Transport {
    /// The transport `options` ask for; must be called inside `runtime`'s context (the
    /// gRPC channel connects lazily on it).
    pub(super) fn new(
        options: &ResolvedTracingOptions,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Self, OtelError> {
        let https = options.endpoint.starts_with("https:");
        match options.protocol {
            OtlpProtocol::Grpc => {
                let mut endpoint = Endpoint::from_shared(options.endpoint.clone())
                    .map_err(|e| OtelError::Build(format!("endpoint: {e}")))?
                    .connect_timeout(options.timeout)
                    .tcp_nodelay(true);
                if https {
                    endpoint = endpoint
                        .tls_config(ClientTlsConfig::new().with_native_roots())
                        .map_err(|e| OtelError::Build(format!("TLS: {e}")))?;
                }
                let headers: HeaderMap = options.headers.iter().cloned().collect();
                Ok(Self::Grpc {
                    grpc: tonic::client::Grpc::new(endpoint.connect_lazy()),
                    metadata: MetadataMap::from_headers(headers),
                })
            }
            OtlpProtocol::HttpProtobuf => Ok(Self::Http {
                client: RuntimeHttpClient::new(
                    runtime,
                    &options.endpoint,
                    options.timeout,
                    &options.headers,
                )?,
                endpoint: options.endpoint.clone(),
            }),
        }
    }

    /// Sends one export request. Returns the number of spans the collector said it
    /// rejected (a partial success), or why the export failed.
    pub(super) async fn export(&mut self, body: Bytes) -> Result<u64, String> {
        match self {
            Self::Grpc { grpc, metadata } => {
                grpc.ready()
                    .await
                    .map_err(|e| format!("connection not ready: {e}"))?;
                let mut request = tonic::Request::new(body);
                *request.metadata_mut() = metadata.clone();
                let response = grpc
                    .unary(request, PathAndQuery::from_static(EXPORT_PATH), RawCodec)
                    .await
                    .map_err(|status| format!("{}: {}", status.code(), status.message()))?;
                Ok(rejected(response.get_ref()))
            }
            Self::Http { client, endpoint } => {
                let request = Request::builder()
                    .method(Method::POST)
                    .uri(endpoint.as_str())
                    .header(
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/x-protobuf"),
                    )
                    .body(body)
                    .map_err(|e| e.to_string())?;
                let response = client
                    .send_bytes(request)
                    .await
                    .map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    let excerpt =
                        String::from_utf8_lossy(&response.body()[..response.body().len().min(256)])
                            .trim()
                            .to_string();
                    return Err(format!("HTTP {}: {excerpt}", response.status()));
                }
                Ok(ExportResponse::decode(response.into_body())
                    .map(|r| rejected(&r))
                    .unwrap_or(0))
            }
        }
    }
}

/// Spans rejected by a partial success.
fn rejected(response: &ExportResponse) -> u64 {
    response
        .partial_success
        .as_ref()
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
}

/// Sends an encoded request as it is; decodes the response.
#[derive(Debug, Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ExportResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<ExportResponse>, Status> {
        let response = ExportResponse::decode(src.copy_to_bytes(src.remaining()))
            .map_err(|e| Status::internal(format!("cannot decode the collector's answer: {e}")))?;
        Ok(Some(response))
    }
}
