//! A minimal OTLP/gRPC metrics and traces receiver, built on the official protobuf
//! definitions (`opentelemetry-proto`'s tonic `MetricsService` and `TraceService`): it
//! accepts every export and counts exports, data points and spans. For benchmarks
//! (bench/compare.sh) and for trying `--otlp` and `--otlp-traces` without a collector.
//!
//! ```text
//! cargo run --release --example otlp_receiver -- 127.0.0.1:4317
//! loaddensity bench http://127.0.0.1:8080/ --otlp http://127.0.0.1:4317
//! ```
//!
//! Prints one line per export on stderr when `-v` follows the address; stops on
//! Ctrl-C or SIGTERM, printing the totals.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

#[derive(Default)]
struct Counts {
    exports: AtomicU64,
    points: AtomicU64,
    spans: AtomicU64,
    verbose: bool,
}

#[derive(Clone)]
struct Receiver(Arc<Counts>);

fn points(request: &ExportMetricsServiceRequest) -> u64 {
    let count = request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        })
        .sum::<usize>();
    u64::try_from(count).unwrap_or(u64::MAX)
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let points = points(request.get_ref());
        let exports = self.0.exports.fetch_add(1, Ordering::Relaxed) + 1;
        self.0.points.fetch_add(points, Ordering::Relaxed);
        if self.0.verbose {
            eprintln!("export {exports}: {points} data points");
        }
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        let spans = u64::try_from(spans).unwrap_or(u64::MAX);
        let exports = self.0.exports.fetch_add(1, Ordering::Relaxed) + 1;
        self.0.spans.fetch_add(spans, Ordering::Relaxed);
        if self.0.verbose {
            eprintln!("export {exports}: {spans} spans");
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:4317".into())
        .parse()?;
    let verbose = args.next().as_deref() == Some("-v");
    let counts = Arc::new(Counts {
        verbose,
        ..Counts::default()
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!(
        "otlp receiver listening on http://{}",
        listener.local_addr()?
    );
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| eprintln!("cannot watch SIGTERM: {e}"))
            .ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    tonic::transport::Server::builder()
        .add_service(MetricsServiceServer::new(Receiver(counts.clone())))
        .add_service(TraceServiceServer::new(Receiver(counts.clone())))
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), stop)
        .await?;
    eprintln!(
        "otlp receiver: {} exports, {} data points, {} spans",
        counts.exports.load(Ordering::Relaxed),
        counts.points.load(Ordering::Relaxed),
        counts.spans.load(Ordering::Relaxed)
    );
    Ok(())
}
