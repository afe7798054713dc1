//! Following redirects, for both HTTP clients: where a 3xx response leads, and the
//! loop that follows a chain of them.

use std::future::Future;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use url::Url;

use super::{PreparedRequest, RequestError, Response, Target};

/// Most redirects followed for one request.
pub(crate) const MAX_REDIRECTS: usize = 10;

/// One response as read off the connection, before redirects are followed.
pub(crate) struct Exchanged {
    pub(crate) status: StatusCode,
    pub(crate) body_len: u64,
    /// The `Location` header of a 3xx response.
    pub(crate) location: Option<String>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Exchanged {
    /// The response as the request's caller sees it.
    pub(crate) fn into_response(self) -> Response {
        Response {
            status: self.status,
            body_len: self.body_len,
            headers: self.headers,
            body: self.body,
        }
    }
}

/// A client that can send one request of a redirect chain.
pub(crate) trait SendHop {
    /// Sends `method` with `body` to `target`, with the headers and settings of
    /// `request`, and reads the response (without following it).
    fn send_hop(
        &mut self,
        target: &Target,
        method: &Method,
        body: &Bytes,
        request: &PreparedRequest,
    ) -> impl Future<Output = Result<Exchanged, RequestError>> + Send;
}

/// Follows the redirects `response` (to `request`) starts, at most
/// [`MAX_REDIRECTS`] of them, and returns the final response.
pub(crate) async fn follow_redirects<C: SendHop>(
    client: &mut C,
    request: &PreparedRequest,
    mut response: Exchanged,
) -> Result<Response, RequestError> {
    let mut url = request.target.url().map_err(RequestError::Redirect)?;
    let mut method = request.method.clone();
    let mut body = request.body.clone();
    for _ in 0..MAX_REDIRECTS {
        let status = response.status;
        let Some(location) = response.location.take().filter(|_| status.is_redirection()) else {
            return Ok(response.into_response());
        };
        let target = redirect_hop(&mut url, &location, status, &mut method, &mut body)?;
        response = client.send_hop(&target, &method, &body, request).await?;
    }
    Err(RequestError::Redirect(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// Moves `url` to a redirect's `location` and returns the new target; a 303, or a
/// 301/302 answering a POST, turns the request into a GET without body (as browsers
/// do).
fn redirect_hop(
    url: &mut Url,
    location: &str,
    status: StatusCode,
    method: &mut Method,
    body: &mut Bytes,
) -> Result<Target, RequestError> {
    *url = url
        .join(location)
        .map_err(|e| RequestError::Redirect(format!("bad Location `{location}`: {e}")))?;
    let target = Target::from_url(url).map_err(RequestError::Redirect)?;
    if status == StatusCode::SEE_OTHER
        || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
            && *method == Method::POST)
    {
        *method = Method::GET;
        *body = Bytes::new();
    }
    Ok(target)
}
