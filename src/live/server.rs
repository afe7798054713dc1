//! The live HTTP server: one thread with a current-thread runtime, serving the page,
//! LoadDensity's dashboard endpoints and Locust's web API. Stopping it closes every
//! connection (event streams included) and frees the port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::snapshot::{Rolling, Sample, live_summary, snapshot};
use super::{LiveError, LiveOptions, LiveSource, locust_api};
use crate::engine::RunControl;

/// The page, with its charts, table and controls (no CDN: everything is in it).
const PAGE: &str = include_str!("page.html");
/// The largest form body read.
const MAX_FORM: usize = 64 * 1024;
/// Event-stream messages waiting for a slow client before it misses some.
const SSE_BUFFER: usize = 4;

/// A running live server; [`LiveServer::stop`] (or dropping it) frees its port.
pub struct LiveServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for LiveServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// What every request handler shares.
struct Shared {
    source: LiveSource,
    options: LiveOptions,
    rolling: Rolling,
    window: Duration,
    /// The newest `/events` message, published once per `refresh_seconds` while
    /// anyone listens.
    events: watch::Receiver<Bytes>,
    shutdown: CancellationToken,
}

impl LiveServer {
    /// Checks the options, binds (a busy port is an error here, before anything
    /// runs), and serves on a thread of its own.
    pub fn start(options: LiveOptions, source: LiveSource) -> Result<Self, LiveError> {
        let wanted = options.check()?;
        let std_listener =
            std::net::TcpListener::bind(wanted).map_err(|source| LiveError::Bind {
                addr: wanted,
                source,
            })?;
        std_listener
            .set_nonblocking(true)
            .map_err(LiveError::Server)?;
        let addr = std_listener.local_addr().map_err(LiveError::Server)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(LiveError::Server)?;
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(std_listener).map_err(LiveError::Server)?
        };
        let window = Duration::from_secs_f64(options.window_seconds);
        let refresh = Duration::from_secs_f64(options.refresh_seconds);
        let (publish, events) = watch::channel(Bytes::new());
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            source,
            rolling: Rolling::new(window),
            window,
            events,
            shutdown: shutdown.clone(),
            options,
        });
        let thread = std::thread::Builder::new()
            .name("loaddensity-live".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let sampler = tokio::spawn(sample(shared.clone(), window));
                    let publisher = tokio::spawn(publish_events(shared.clone(), publish, refresh));
                    serve(listener, shared).await;
                    sampler.abort();
                    publisher.abort();
                });
            })
            .map_err(LiveError::Server)?;
        Ok(Self {
            addr,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and frees the port.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.shutdown.cancel();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the live server's thread panicked");
        }
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Takes the rolling samples: often enough for the window, at most 10 a second.
async fn sample(shared: Arc<Shared>, window: Duration) {
    let every = (window / 2).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        shared.rolling.push(Sample::take(&shared.source));
        shared.rolling.push_latency(&shared.source);
    }
}

/// Publishes a snapshot every `refresh`, while an event stream is open.
async fn publish_events(shared: Arc<Shared>, publish: watch::Sender<Bytes>, refresh: Duration) {
    let mut ticker = tokio::time::interval(refresh);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if publish.receiver_count() > 1 {
            publish.send_replace(event(&shared));
        }
    }
}

/// One `/events` message: `data: {snapshot}` and a blank line.
fn event(shared: &Shared) -> Bytes {
    let json = snapshot(
        &shared.source,
        &shared.rolling,
        shared.window,
        shared.options.controls,
    );
    Bytes::from(format!("data: {json}\n\n"))
}

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shared.shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((stream, _peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        connections.spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    drop(listener);
    connections.shutdown().await;
}

/// A whole body, or an event stream.
pub(crate) enum LiveBody {
    /// Sent at once.
    Full(Option<Bytes>),
    /// Sent as it comes, until the sender ends.
    Stream(mpsc::Receiver<Bytes>),
}

impl Body for LiveBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            LiveBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            LiveBody::Stream(receiver) => receiver
                .poll_recv(cx)
                .map(|next| next.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, LiveBody::Full(None))
    }
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<LiveBody> {
    let mut response = Response::new(LiveBody::Full(Some(body.into())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_response(value: &Value) -> Response<LiveBody> {
    response(StatusCode::OK, "application/json", value.to_string())
}

fn download(content_type: &'static str, name: &'static str, body: String) -> Response<LiveBody> {
    let mut response = response(StatusCode::OK, content_type, body);
    response
        .headers_mut()
        .insert(CONTENT_DISPOSITION, HeaderValue::from_static(name));
    response
}

/// A cross-site form may not drive the controls: a request whose `Origin` is not
/// this server is refused.
fn foreign_origin(request: &Request<Incoming>) -> bool {
    let Some(origin) = request.headers().get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return false;
    };
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or(origin);
    origin_host != host
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<LiveBody> {
    if let Some(auth) = &shared.options.auth {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .map(HeaderValue::as_bytes);
        if !auth.accepts(header) {
            let mut denied = response(StatusCode::UNAUTHORIZED, "text/plain", "unauthorised\n");
            denied.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"loaddensity\", charset=\"UTF-8\""),
            );
            return denied;
        }
    }
    let source = &shared.source;
    let path = request.uri().path().to_string();
    match (request.method(), path.as_str()) {
        (&Method::GET | &Method::HEAD, "/" | "/index.html") => {
            response(StatusCode::OK, "text/html; charset=utf-8", PAGE)
        }
        (&Method::GET, "/snapshot") => json_response(&snapshot(
            source,
            &shared.rolling,
            shared.window,
            shared.options.controls,
        )),
        (&Method::GET, "/events") => events(shared),
        (&Method::GET, "/stats/requests") => {
            json_response(&locust_api::stats_requests(source, &shared.rolling))
        }
        (&Method::GET, "/stats/requests/csv") => download(
            "text/csv",
            "attachment;filename=loaddensity_requests.csv",
            locust_api::requests_csv(source),
        ),
        (&Method::GET, "/stats/failures/csv") => download(
            "text/csv",
            "attachment;filename=loaddensity_failures.csv",
            locust_api::failures_csv(source),
        ),
        (&Method::GET, "/exceptions") => json_response(&locust_api::exceptions(source)),
        // What Locust's own page polls besides: no task classes, logs or workers here.
        (&Method::GET, "/tasks") => json_response(&json!({"per_class": {}, "total": {}})),
        (&Method::GET, "/logs") => json_response(&json!({"master": [], "workers": {}})),
        (&Method::GET, "/worker-count") => json_response(&json!({"worker_count": 0})),
        (&Method::GET, "/result.json") => match document(source) {
            Ok(document) => download(
                "application/json",
                "attachment;filename=loaddensity_result.json",
                document,
            ),
            Err(e) => response(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", e),
        },
        (&Method::GET, "/report.html") => {
            let mut summary = live_summary(source);
            summary.timeline = source.stats.snapshot().timeline;
            summary.run = source.run.info();
            match crate::report::render_html(&summary) {
                Ok(html) => response(StatusCode::OK, "text/html; charset=utf-8", html),
                Err(e) => response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    e.to_string(),
                ),
            }
        }
        (&Method::POST, "/swarm" | "/stop" | "/stats/reset") => {
            if !shared.options.controls {
                return response(
                    StatusCode::FORBIDDEN,
                    "text/plain",
                    "this is LoadDensity's read-only dashboard: the controls are on the web UI (web_ui_dict, --web)\n",
                );
            }
            if foreign_origin(&request) {
                return response(
                    StatusCode::FORBIDDEN,
                    "text/plain",
                    "cross-origin request refused\n",
                );
            }
            control(shared, request, &path).await
        }
        (
            _,
            "/"
            | "/index.html"
            | "/snapshot"
            | "/events"
            | "/stats/requests"
            | "/stats/requests/csv"
            | "/stats/failures/csv"
            | "/exceptions"
            | "/result.json"
            | "/report.html"
            | "/swarm"
            | "/stop"
            | "/stats/reset",
        ) => response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        ),
        _ => response(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

/// The result document so far: the summary with the run block and the timeline.
fn document(source: &LiveSource) -> Result<String, String> {
    let mut summary = live_summary(source);
    summary.timeline = source.stats.snapshot().timeline;
    summary.run = source.run.info();
    serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())
}

/// `GET /events`: a snapshot now, then one per `refresh_seconds`.
fn events(shared: &Shared) -> Response<LiveBody> {
    let (sender, receiver) = mpsc::channel(SSE_BUFFER);
    let mut updates = shared.events.clone();
    updates.borrow_and_update();
    let first = event(shared);
    let shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        if sender.send(first).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                changed = updates.changed() => if changed.is_err() { return },
                _ = shutdown.cancelled() => return,
                _ = sender.closed() => return,
            }
            let message = updates.borrow_and_update().clone();
            if sender.send(message).await.is_err() {
                return;
            }
        }
    });
    let mut response = Response::new(LiveBody::Stream(receiver));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /swarm`, `/stop`, `/stats/reset`, answered as Locust answers them.
async fn control(shared: &Shared, request: Request<Incoming>, path: &str) -> Response<LiveBody> {
    let run = &shared.source.run;
    match path {
        "/stop" => {
            let message = match run.control() {
                Some(control) => {
                    control.stop();
                    "Test stopped"
                }
                None => "No test running",
            };
            json_response(&json!({"success": true, "message": message}))
        }
        "/stats/reset" => {
            shared.source.stats.reset_counts();
            response(StatusCode::OK, "text/plain", "ok")
        }
        _ => {
            let body = match http_body_util::Limited::new(request.into_body(), MAX_FORM)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                Err(_) => {
                    return json_response(
                        &json!({"success": false, "message": "the form is too large"}),
                    );
                }
            };
            let form = match locust_api::parse_swarm(&body) {
                Ok(form) => form,
                Err(message) => {
                    return json_response(&json!({"success": false, "message": message}));
                }
            };
            let Some(control) = run.control() else {
                let rerun = run
                    .reruns()
                    .request(form.user_count, form.spawn_rate, form.run_time);
                return match rerun {
                    Ok(()) => json_response(&json!({
                        "success": true,
                        "message": "Swarming started",
                        "user_count": form.user_count,
                        "spawn_rate": form.spawn_rate,
                    })),
                    Err(e) => json_response(&json!({"success": false, "message": e.to_string()})),
                };
            };
            match control.swarm(form.user_count, form.spawn_rate) {
                Ok(()) => {
                    if let Some(run_time) = form.run_time {
                        stop_after(control, run_time);
                    }
                    json_response(&json!({
                        "success": true,
                        "message": "Swarming started",
                        "user_count": form.user_count,
                        "spawn_rate": form.spawn_rate,
                    }))
                }
                Err(e) => json_response(&json!({"success": false, "message": e.to_string()})),
            }
        }
    }
}

/// Stops the running test `run_time` from now, as Locust's `/swarm` does with a
/// `run_time`: a test stopped or replaced before then is not touched again (stopping
/// twice is harmless, and a new test has a control of its own).
fn stop_after(control: Arc<RunControl>, run_time: Duration) {
    tracing::info!(
        "web UI: the running test stops in {}",
        humantime::format_duration(run_time)
    );
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(run_time) => control.stop(),
            () = control.stopped().cancelled() => {}
        }
    });
}
