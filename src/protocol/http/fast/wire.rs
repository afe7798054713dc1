//! Request bytes on the wire: a static request serialized once per task, and any
//! other request rendered into a connection's reused buffer.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, COOKIE};
use http::{HeaderMap, Method};

use crate::protocol::http::{PreparedRequest, Target};

/// A whole HTTP/1.1 request (head and body) serialized once, shared read-only by
/// every user that sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRequest(Bytes);

impl WireRequest {
    /// Serializes a request whose every part is known.
    pub fn new(request: &PreparedRequest) -> Self {
        let mut out = Vec::with_capacity(128 + request.body.len());
        render(
            &mut out,
            &request.method,
            &request.target,
            &request.headers,
            &request.body,
            None,
        );
        Self(Bytes::from(out))
    }

    /// The request bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Writes a request into `out` (cleared first). `cookies` (`a=1; b=2`, from the user's jar) are appended to the
/// request's own `Cookie` header, or sent as one.
pub(crate) fn render(
    out: &mut Vec<u8>,
    method: &Method,
    target: &Target,
    headers: &HeaderMap,
    body: &[u8],
    cookies: Option<&str>,
) {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    let path = target
        .origin_form
        .path_and_query()
        .map_or("/", |p| p.as_str());
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(target.host_header.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut cookies = cookies.filter(|c| !c.is_empty());
    let mut has_length = false;
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        if name == COOKIE
            && let Some(jar) = cookies.take()
        {
            out.extend_from_slice(b"; ");
            out.extend_from_slice(jar.as_bytes());
        }
        has_length |= name == CONTENT_LENGTH;
        out.extend_from_slice(b"\r\n");
    }
    if let Some(jar) = cookies {
        out.extend_from_slice(b"cookie: ");
        out.extend_from_slice(jar.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // As hyper does: a length for any body, and for an empty one where a body is
    // expected.
    if !has_length
        && (!body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH))
    {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn request(method: Method, body: &'static [u8]) -> PreparedRequest {
        let url = url::Url::parse("http://127.0.0.1:8080/a/b?c=d").expect("url");
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", HeaderValue::from_static("ld"));
        headers.insert(COOKIE, HeaderValue::from_static("own=1"));
        PreparedRequest {
            method,
            target: Target::from_url(&url).expect("target"),
            headers,
            body: Bytes::from_static(body),
            timeout: std::time::Duration::from_secs(1),
            allow_redirects: true,
            verify: true,
            client_cert: None,
            capture: Default::default(),
            wire: None,
        }
    }

    #[test]
    fn a_get_has_no_length_and_a_post_has_one() {
        let get = WireRequest::new(&request(Method::GET, b""));
        assert_eq!(
            std::str::from_utf8(get.bytes()).expect("utf-8"),
            "GET /a/b?c=d HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nuser-agent: ld\r\ncookie: own=1\r\n\r\n"
        );
        let post = WireRequest::new(&request(Method::POST, b"xyz"));
        assert!(
            post.bytes()
                .ends_with(b"cookie: own=1\r\ncontent-length: 3\r\n\r\nxyz")
        );
        let empty_post = WireRequest::new(&request(Method::POST, b""));
        assert!(empty_post.bytes().ends_with(b"content-length: 0\r\n\r\n"));
    }

    #[test]
    fn jar_cookies_join_the_request_own_cookie_header() {
        let req = request(Method::GET, b"");
        let mut out = Vec::new();
        render(
            &mut out,
            &req.method,
            &req.target,
            &req.headers,
            &req.body,
            Some("s=2"),
        );
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.contains("cookie: own=1; s=2\r\n"), "{text}");
        let mut without = req.clone();
        without.headers.remove(COOKIE);
        let mut out = Vec::new();
        render(
            &mut out,
            &without.method,
            &without.target,
            &without.headers,
            &without.body,
            Some("s=2"),
        );
        assert!(out.ends_with(b"cookie: s=2\r\n\r\n"));
    }
}
