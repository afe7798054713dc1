//! The client of the user types that keep one long-lived connection per user,
//! opened to a URL by one step and used by later ones (`websocket_user`,
//! `graphql_ws_user`, `sse_user`): the run's TLS connectors, the open connection,
//! and the URL it went to, which the request log shows.

use std::sync::Arc;

use crate::protocol::StepContext;
use crate::protocol::http::TlsConnectors;
use crate::redact::redact_url_credentials;

/// One user's long-lived connection (`C`: a WebSocket, an event stream).
pub(crate) struct UserConnection<C> {
    /// The TLS connectors the users of the run share (for `wss://`, `https://`).
    pub(crate) tls: Arc<TlsConnectors>,
    /// The open connection (boxed: most of a user's life is spent waiting).
    pub(crate) connection: Option<Box<C>>,
    /// The URL of the open connection, or of the last one tried.
    pub(crate) url: Option<String>,
}

impl<C> UserConnection<C> {
    /// A user's client before its first connection.
    pub(crate) fn new(tls: &Arc<TlsConnectors>) -> Self {
        Self {
            tls: tls.clone(),
            connection: None,
            url: None,
        }
    }

    /// Writes the URL of the connection (or of the last one tried), its credentials
    /// masked, into the request log when one is attached.
    pub(crate) fn log_url(&self, ctx: &mut StepContext<'_>) {
        if let Some(log) = ctx.log_url() {
            log.clear();
            log.push_str(&redact_url_credentials(self.url.as_deref().unwrap_or("")));
        }
    }
}
