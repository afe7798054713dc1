//! The lean HTTP/1.1 client of `fast_http_user` (Locust's FastHttpUser is its
//! model): what a load generator needs and nothing more, so that a request costs
//! about what it costs wrk.
//!
//! Per request, in the steady state: one `write` of bytes serialized once per task
//! (templated requests are rendered into the connection's reused buffer), one
//! `read` into the connection's reused buffer, a head parsed in place by
//! `httparse`, a body counted and dropped unless an assertion, extractor or sample
//! needs it, and no allocation, no lock, no atomic shared with another thread. The
//! request deadline is one timer per user, re-armed only when it fires, instead of
//! a timer per request. Keep-alive and `Connection: close`, HTTP/1.0, chunked
//! bodies, 1xx, HEAD, redirects, cookies and TLS (rustls, HTTP/1.1 by ALPN) work as
//! in [`crate::protocol::http::Session`], the general client `http_user` keeps.

mod chunked;
mod conn;
mod head;
mod wire;

pub use wire::WireRequest;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use cookie_store::CookieStore;
use http::Method;

use crate::protocol::client_cert::{ClientCert, cert_id};
use crate::protocol::http::redirect::{Exchanged, SendHop, follow_redirects};
use crate::protocol::http::{
    Origin, PreparedRequest, RequestError, Response, Target, TlsConnectors,
};
use crate::protocol::step_timer::StepTimer;
use conn::{Conn, Failure, Outgoing, Received};

/// One virtual user's lean HTTP/1.1 client: a keep-alive connection per origin and
/// a cookie jar, as [`crate::protocol::http::Session`] keeps.
pub struct FastSession {
    tls: Arc<TlsConnectors>,
    connections: Vec<Conn>,
    /// Created on the first `Set-Cookie`.
    cookies: Option<Box<CookieStore>>,
    /// The requests' deadline.
    timer: StepTimer,
}

impl std::fmt::Debug for FastSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastSession")
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl FastSession {
    /// A session with no connection yet.
    pub fn new(tls: Arc<TlsConnectors>) -> Self {
        Self {
            tls,
            connections: Vec::new(),
            cookies: None,
            timer: StepTimer::new(),
        }
    }

    /// The `name=value` pairs the jar would send to `url`.
    pub fn cookies_for(&self, url: &url::Url) -> Vec<(String, String)> {
        self.cookies.as_ref().map_or_else(Vec::new, |jar| {
            jar.get_request_values(url)
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        })
    }

    /// Sends a request, following redirects if it allows, and reads the whole
    /// response (counting the body; keeping it only when the request captures it).
    /// Bounded by the request's timeout.
    pub async fn execute(&mut self, request: &PreparedRequest) -> Result<Response, RequestError> {
        self.execute_from(request, std::time::Instant::now()).await
    }

    /// [`FastSession::execute`], with the timeout counted from `began`.
    pub async fn execute_from(
        &mut self,
        request: &PreparedRequest,
        began: std::time::Instant,
    ) -> Result<Response, RequestError> {
        let mut timer = std::mem::take(&mut self.timer);
        let result = timer
            .within(began + request.timeout, pin!(self.exchange(request)))
            .await;
        self.timer = timer;
        result.unwrap_or_else(|| {
            // The connection is in an unknown state: drop it.
            self.connections
                .retain(|c| c.origin != request.target.origin);
            Err(RequestError::Timeout(request.timeout))
        })
    }

    async fn exchange(&mut self, request: &PreparedRequest) -> Result<Response, RequestError> {
        let response = self
            .send(
                &request.target,
                &request.method,
                &request.body,
                request,
                request.wire.as_ref(),
            )
            .await?;
        if !request.allow_redirects || !response.status.is_redirection() {
            return Ok(response.into_response());
        }
        // Boxed: rare, and it would double the size of every user's task.
        Box::pin(follow_redirects(self, request, response)).await
    }

    /// One request/response on the origin's connection; `wire` is the request
    /// serialized in advance, when it was. A request that finds its kept-alive
    /// connection closed by the server is sent once more on a new one.
    async fn send(
        &mut self,
        target: &Target,
        method: &Method,
        body: &Bytes,
        prepared: &PreparedRequest,
        wire: Option<&WireRequest>,
    ) -> Result<Exchanged, RequestError> {
        let cookies = self.cookie_header(target);
        let head_request = method == Method::HEAD;
        let mut retried = false;
        let received = loop {
            let index = self
                .connection(
                    &target.origin,
                    prepared.verify,
                    prepared.client_cert.as_ref(),
                )
                .await?;
            let conn = &mut self.connections[index];
            let outgoing = match (wire, &cookies) {
                (Some(wire), None) => Outgoing::Shared(wire.bytes()),
                _ => {
                    wire::render(
                        &mut conn.out,
                        method,
                        target,
                        &prepared.headers,
                        body,
                        cookies.as_deref(),
                    );
                    Outgoing::Rendered
                }
            };
            match conn
                .round_trip(outgoing, head_request, prepared.capture)
                .await
            {
                Ok(received) => {
                    if !received.head.keep_alive {
                        self.connections.swap_remove(index);
                    }
                    break received;
                }
                Err(failure) => {
                    self.connections.swap_remove(index);
                    match failure {
                        Failure::Stale if !retried => retried = true,
                        Failure::Stale => {
                            return Err(RequestError::Http(
                                "connection closed before the response".into(),
                            ));
                        }
                        Failure::Error(error) => return Err(error),
                    }
                }
            }
        };
        let Received {
            head,
            body_len,
            body,
        } = received;
        if !head.set_cookies.is_empty()
            && let Ok(url) = target.url()
        {
            let jar = self.cookies.get_or_insert_with(Default::default);
            for text in &head.set_cookies {
                // A cookie the jar refuses (bad domain, bad syntax) is skipped, as a
                // browser would.
                let _ = jar.parse(text, &url);
            }
        }
        Ok(Exchanged {
            status: head.status,
            body_len,
            location: head.location,
            headers: head.headers,
            body,
        })
    }

    /// The jar's cookies for `target` as one `Cookie` value; `None` when it has none.
    fn cookie_header(&self, target: &Target) -> Option<String> {
        let jar = self.cookies.as_ref()?;
        let url = target.url().ok()?;
        let mut line = String::new();
        for (name, value) in jar.get_request_values(&url) {
            if !line.is_empty() {
                line.push_str("; ");
            }
            line.push_str(name);
            line.push('=');
            line.push_str(value);
        }
        (!line.is_empty()).then_some(line)
    }

    /// The index of the origin's open connection, connecting when there is none.
    async fn connection(
        &mut self,
        origin: &Origin,
        verify: bool,
        cert: Option<&Arc<ClientCert>>,
    ) -> Result<usize, RequestError> {
        let id = cert_id(cert);
        let found = self.connections.iter().position(|c| {
            &c.origin == origin && (!origin.https || (c.verify == verify && c.cert == id))
        });
        if let Some(index) = found {
            return Ok(index);
        }
        let connectors = cert.map_or(&*self.tls, |c| &c.connectors);
        // Boxed: the TCP and TLS handshakes are large and rare; keep them off every
        // user's task.
        let mut conn = Box::pin(Conn::open(connectors, origin, verify)).await?;
        conn.cert = id;
        self.connections.push(conn);
        Ok(self.connections.len() - 1)
    }
}

impl SendHop for FastSession {
    fn send_hop(
        &mut self,
        target: &Target,
        method: &Method,
        body: &Bytes,
        request: &PreparedRequest,
    ) -> impl Future<Output = Result<Exchanged, RequestError>> + Send {
        self.send(target, method, body, request, None)
    }
}

impl super::HttpClient for FastSession {
    fn new(tls: Arc<TlsConnectors>) -> Self {
        FastSession::new(tls)
    }

    fn execute(
        &mut self,
        request: &PreparedRequest,
        began: std::time::Instant,
    ) -> impl Future<Output = Result<Response, RequestError>> + Send {
        FastSession::execute_from(self, request, began)
    }
}
