//! Response heads, parsed with `httparse` straight from the connection's buffer:
//! status, how the body is framed, whether the connection stays open, and only
//! what the caller needs besides (a redirect's `Location`, `Set-Cookie` lines, all
//! headers when an assertion or extractor reads them).

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// Most header lines a response may have.
const MAX_HEADERS: usize = 96;

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A final (non-1xx) response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    /// Bytes the head took in the buffer.
    pub(crate) len: usize,
    pub(crate) framing: Framing,
    /// The connection may carry another request after this response.
    pub(crate) keep_alive: bool,
    /// A 3xx response's `Location`.
    pub(crate) location: Option<String>,
    /// The `Set-Cookie` values (empty, so not allocated, when there are none).
    pub(crate) set_cookies: Vec<String>,
    /// All headers, when asked for.
    pub(crate) headers: HeaderMap,
}

/// What the start of the buffer holds.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A 1xx head of this many bytes, to skip.
    Informational(usize),
    /// The final head.
    Final(Head),
}

/// Parses the head at the start of `buf`. `head_request`: the request was a HEAD
/// (the response has no body whatever its headers say).
pub(crate) fn parse(
    buf: &[u8],
    head_request: bool,
    capture_headers: bool,
) -> Result<Parsed, String> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(format!("invalid response head: {e}")),
    };
    let code = response.code.unwrap_or(0);
    if code == 101 {
        return Err("101 Switching Protocols is not supported".into());
    }
    if (100..200).contains(&code) {
        return Ok(Parsed::Informational(len));
    }
    let status = StatusCode::from_u16(code).map_err(|_| format!("invalid status {code}"))?;
    let http11 = response.version == Some(1);
    let mut close = false;
    let mut keep_alive_token = false;
    let mut length: Option<u64> = None;
    let mut transfer_encoding: Option<bool> = None;
    let mut location = None;
    let mut set_cookies = Vec::new();
    let mut headers = HeaderMap::new();
    for header in response.headers.iter() {
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or("invalid Content-Length")?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length headers".into());
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            transfer_encoding = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("location") && status.is_redirection() {
            location = std::str::from_utf8(value).ok().map(str::to_string);
        } else if name.eq_ignore_ascii_case("set-cookie")
            && let Ok(text) = std::str::from_utf8(value)
        {
            set_cookies.push(text.to_string());
        }
        if capture_headers
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            )
        {
            headers.append(name, value);
        }
    }
    let no_body =
        head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = match (no_body, transfer_encoding, length) {
        (true, _, _) => Framing::Empty,
        (false, Some(true), _) => Framing::Chunked,
        // A transfer coding other than chunked: the body ends with the connection.
        (false, Some(false), _) => Framing::UntilClose,
        (false, None, Some(n)) => Framing::Length(n),
        (false, None, None) => Framing::UntilClose,
    };
    let keep_alive = framing != Framing::UntilClose && !close && (http11 || keep_alive_token);
    Ok(Parsed::Final(Head {
        status,
        len,
        framing,
        keep_alive,
        location,
        set_cookies,
        headers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str, head_request: bool) -> Head {
        match parse(text.as_bytes(), head_request, true).expect("valid") {
            Parsed::Final(head) => head,
            other => panic!("expected a final head, got {other:?}"),
        }
    }

    #[test]
    fn framing_and_keep_alive_follow_the_headers() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false);
        assert_eq!(
            (h.framing, h.keep_alive, h.len),
            (Framing::Length(2), true, 38)
        );
        let h = head(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n",
            false,
        );
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(2), false));
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", false);
        assert!(!h.keep_alive);
        let h = head(
            "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\n",
            false,
        );
        assert!(h.keep_alive);
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", true);
        assert_eq!((h.framing, h.keep_alive), (Framing::Empty, true));
        let h = head(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, Framing::Empty);
    }

    #[test]
    fn informational_partial_and_bad_heads() {
        assert!(matches!(
            parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200", false, false),
            Ok(Parsed::Informational(25))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nA: b", false, false),
            Ok(Parsed::Partial)
        ));
        let bad = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            false,
            false,
        );
        assert_eq!(bad.expect_err("invalid"), "invalid Content-Length");
        assert!(parse(b"HTTP/1.1 101 Switching\r\n\r\n", false, false).is_err());
        assert!(parse(b"garbage\r\n\r\n", false, false).is_err());
    }

    #[test]
    fn location_cookies_and_headers_are_kept() {
        let h = head(
            "HTTP/1.1 302 Found\r\nLocation: /next\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
            false,
        );
        assert_eq!(h.location.as_deref(), Some("/next"));
        assert_eq!(h.set_cookies, ["a=1", "b=2"]);
        assert_eq!(h.headers.get_all("set-cookie").iter().count(), 2);
    }
}
