//! The client of the user types that keep one long-lived connection per user,
//! opened to a URL by one step and used by later ones (`websocket_user`,
//! `graphql_ws_user`, `sse_user`): what the run shares, the open connection, and
//! the URL it went to, which the request log shows.

use std::sync::Arc;

use crate::protocol::StepContext;
use crate::redact::redact_url_credentials;

/// One user's long-lived connection (`C`: a WebSocket, an event stream), with what
/// the users of the run share (`S`: the TLS configuration).
pub(crate) struct UserConnection<S, C> {
    /// What the users of the run share.
    pub(crate) shared: Arc<S>,
    /// The open connection (boxed: most of a user's life is spent waiting).
    pub(crate) connection: Option<Box<C>>,
    /// The URL of the open connection, or of the last one tried.
    pub(crate) url: Option<String>,
}

impl<S, C> UserConnection<S, C> {
    /// A user's client before its first connection.
    pub(crate) fn new(shared: &Arc<S>) -> Self {
        Self {
            shared: shared.clone(),
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
