//! HTTP behind the protocol seam: the [`Http`] protocol, generic over the client
//! that sends its requests ([`HttpClient`]), and its step: render, send, judge.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use ::http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use super::task::{self, HttpTask};
use super::{Capture, PreparedRequest, Rendered, RequestError, Response, Session, TlsConnectors};
use crate::event::TraceIds;
use crate::protocol::{
    Failure, ParseContext, ParsedSpec, Protocol, ResponseSample, StepContext, StepOutcome,
};
use crate::scenario::ResponseView;
use crate::task::{ErrorClass, Task, TaskError};

/// A virtual user's HTTP client: sends prepared requests over its own connections.
pub trait HttpClient: Send + 'static {
    /// A new user's client, with the run's TLS configurations.
    fn new(tls: Arc<TlsConnectors>) -> Self;

    /// Sends one request (following redirects as it says) and reads its response,
    /// within the request's timeout counted from `began` (a clock reading the caller
    /// already has).
    fn execute(
        &mut self,
        request: &PreparedRequest,
        began: Instant,
    ) -> impl Future<Output = Result<Response, RequestError>> + Send;
}

impl HttpClient for Session {
    fn new(tls: Arc<TlsConnectors>) -> Self {
        Session::new(tls)
    }

    fn execute(
        &mut self,
        request: &PreparedRequest,
        began: Instant,
    ) -> impl Future<Output = Result<Response, RequestError>> + Send {
        Session::execute_from(self, request, began)
    }
}

/// HTTP (`http_user`, `fast_http_user`), sent by client `C`.
pub struct Http<C = Session>(PhantomData<fn() -> C>);

impl<C> fmt::Debug for Http<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Http")
    }
}

impl<C> Clone for Http<C> {
    fn clone(&self) -> Self {
        Self(PhantomData)
    }
}

impl<C: HttpClient> Protocol for Http<C> {
    type Spec = HttpTask;
    type Shared = TlsConnectors;
    type Client = C;

    const FIELDS: &'static [&'static str] = task::FIELDS;

    fn parse(
        object: &Map<String, Value>,
        method_key: Option<&str>,
        path: &str,
        ctx: &ParseContext<'_>,
    ) -> Result<ParsedSpec<HttpTask>, TaskError> {
        task::parse(object, method_key, path, ctx)
    }

    fn csv_sources(spec: &HttpTask, into: &mut Vec<usize>) {
        spec.csv_sources(into);
    }

    fn client(shared: &Arc<TlsConnectors>) -> C {
        C::new(shared.clone())
    }

    async fn step(client: &mut C, task: &Task<HttpTask>, ctx: &mut StepContext<'_>) -> StepOutcome {
        let (mut request, name) = match task.render(&mut ctx.render()) {
            Ok(rendered) => rendered,
            Err(message) => return StepOutcome::failed(format!("template: {message}")),
        };
        if let Some(url) = ctx.log_url() {
            request.target.write_url(url);
        }
        if ctx.sample || ctx.trace.is_some() {
            request = Rendered::Owned(Box::new(adapted(&request, ctx.sample, ctx.trace)));
        }
        let result = client.execute(&request, ctx.began).await;
        let end = Instant::now();
        drop(request);
        match result {
            Ok(response) => {
                let (failure, class) = match judge(task, &response, ctx) {
                    Ok(()) => (None, ErrorClass::Permanent),
                    Err(failure) => (Some(failure.message), failure.kind.class()),
                };
                let sample = ctx.sample.then(|| {
                    let kept = response.body.len().min(crate::event::SAMPLE_BODY);
                    Box::new(ResponseSample {
                        headers: response.headers.clone(),
                        body: response.body[..kept].to_vec(),
                    })
                });
                StepOutcome {
                    end,
                    name,
                    status: Some(response.status.as_u16()),
                    response_length: response.body_len,
                    failure,
                    connect_failure: false,
                    class,
                    sample,
                }
            }
            Err(error) => StepOutcome {
                end,
                name,
                ..StepOutcome::failed(error)
            },
        }
    }
}

/// The request with what this step adds to it: when `sample`, a capture of the
/// response's headers and body (for the request log); with `trace`, a W3C
/// `traceparent` header (the prepared bytes of `fast_http_user` no longer apply, so
/// they are dropped and the request is written from its headers). Rare: only a
/// sample, or a run whose traces exporter propagates, takes this copy.
#[cold]
fn adapted(request: &PreparedRequest, sample: bool, trace: Option<TraceIds>) -> PreparedRequest {
    let mut adapted = request.clone();
    if sample {
        adapted.capture = Capture {
            headers: true,
            body: true,
        };
    }
    if let Some(trace) = trace {
        // Hex digits and dashes: always a valid header value.
        if let Ok(value) = HeaderValue::try_from(trace.traceparent()) {
            adapted.headers.insert(TRACEPARENT, value);
            adapted.wire = None;
        }
    }
    adapted
}

/// The W3C trace context header.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Success or why a response fails: by the task's assertions when it has any (a
/// failed one is an expectation, flaky as LoadDensity's `AssertionError`), else by
/// status (>= 400 fails: permanent, but see [`ErrorClass::with_status`]). A success
/// runs the task's extractors.
fn judge(task: &HttpTask, response: &Response, ctx: &mut StepContext<'_>) -> Result<(), Failure> {
    let status = response.status.as_u16();
    let by_status = |r| status_verdict(r).map_err(Failure::from);
    if task.assertions.is_empty() && task.extract.is_empty() {
        return by_status(response);
    }
    let view = ResponseView::new(status, &response.headers, &response.body);
    if task.assertions.is_empty() {
        by_status(response)?;
    } else {
        let mut render = ctx.render();
        for assertion in &task.assertions {
            assertion
                .check(&view, &mut render)
                .map_err(Failure::expectation)?;
        }
    }
    for extractor in &task.extract {
        if let Some(value) = extractor.extract(&view) {
            ctx.set_variable(extractor.variable_key().to_string(), value);
        }
    }
    Ok(())
}

fn status_verdict(response: &Response) -> Result<(), String> {
    if response.status.as_u16() < 400 {
        Ok(())
    } else {
        Err(format!(
            "HTTP {} {}",
            response.status.as_u16(),
            response.status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string())
    }
}
