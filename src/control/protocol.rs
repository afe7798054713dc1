//! LoadDensity's control socket wire protocol: reading one request (legacy: one
//! read of up to 8 KiB; framed: a 4-byte big-endian length then the payload, at
//! most 1 MiB), the token envelope, and writing replies.
//!
//! Before a request is authorised it costs the server little: the first bytes must
//! come within [`PREAUTH_TIMEOUT`], and with a token no more than [`PREAUTH_READ`]
//! bytes of a frame are read until the envelope's token has been checked.

use std::time::Duration;

use serde::de::{Deserializer as _, Error as _, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest framed payload (LoadDensity's 1 MiB).
pub const MAX_FRAME: usize = 1 << 20;
/// The size of the one read of legacy mode (LoadDensity's `recv(8192)`).
pub const LEGACY_READ: usize = 8192;
/// What ends every reply.
pub const TERMINATOR: &[u8] = b"Return_Data_Over_JE\n";
/// How long a client may take to send its request, and each reply write.
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take, once connected, to complete the TLS handshake and to
/// send the start of its request (legacy: the request; framed: the length and the
/// first [`PREAUTH_READ`] bytes).
pub(super) const PREAUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// With a token, the most bytes of a frame read before the token is checked: a
/// longer frame carries `"token"` among the envelope's keys within its first
/// `PREAUTH_READ` bytes (put it before `"command"`), or it is refused unread.
pub const PREAUTH_READ: usize = 8192;
/// The reply to a long frame whose start carries no token.
const TOKEN_FIRST: &[u8] =
    b"Error: token required within the first 8192 bytes of a longer frame: put \"token\" before \"command\"\n";

/// What one read of a request gave.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Request {
    /// The payload, whitespace-trimmed.
    Payload(Vec<u8>),
    /// The client closed, sent nothing in time, or sent an empty frame: drop it.
    Nothing,
    /// A frame announced more than [`MAX_FRAME`] bytes.
    TooLarge(u32),
    /// A frame over [`PREAUTH_READ`] bytes whose start does not carry the token:
    /// reply with this line, unread.
    Refused(&'static [u8]),
}

/// Reads one request in the given mode. With a `token`, a frame longer than
/// [`PREAUTH_READ`] is read on only when its start carries that token.
pub(super) async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    framed: bool,
    token: Option<&SocketToken>,
) -> std::io::Result<Request> {
    let start = async {
        if !framed {
            let mut buffer = vec![0; LEGACY_READ];
            let n = stream.read(&mut buffer).await?;
            buffer.truncate(n);
            return Ok(Err(payload(buffer)));
        }
        let mut header = [0u8; 4];
        match stream.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(Err(Request::Nothing));
            }
            Err(e) => return Err(e),
        }
        let length = u32::from_be_bytes(header);
        if length == 0 {
            return Ok(Err(Request::Nothing));
        }
        if length as usize > MAX_FRAME {
            return Ok(Err(Request::TooLarge(length)));
        }
        let length = length as usize;
        let mut buffer = vec![0; length.min(PREAUTH_READ)];
        match stream.read_exact(&mut buffer).await {
            Ok(_) => Ok(Ok((buffer, length))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(Err(Request::Nothing)),
            Err(e) => Err(e),
        }
    };
    // The start of the request, in a few seconds: an idle client is dropped soon.
    let (mut buffer, length) = match tokio::time::timeout(PREAUTH_TIMEOUT, start).await {
        Ok(Ok(Ok(started))) => started,
        Ok(Ok(Err(request))) => return Ok(request),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(Request::Nothing),
    };
    if buffer.len() == length {
        return Ok(payload(buffer));
    }
    if let Some(token) = token {
        match token_in_prefix(&buffer) {
            Some(supplied) if token.matches(&supplied) => {}
            Some(_) => return Ok(Request::Refused(b"Error: unauthorised\n")),
            None => return Ok(Request::Refused(TOKEN_FIRST)),
        }
    }
    // The rest grows the buffer as it arrives, not as announced.
    let rest = (length - buffer.len()) as u64;
    let mut rest_of_frame = (&mut *stream).take(rest);
    let read = rest_of_frame.read_to_end(&mut buffer);
    match tokio::time::timeout(IO_TIMEOUT, read).await {
        Ok(Ok(_)) if buffer.len() == length => Ok(payload(buffer)),
        Ok(Ok(_)) | Err(_) => Ok(Request::Nothing),
        Ok(Err(e)) => Err(e),
    }
}

/// The envelope's `"token"` when it is a string among the top-level keys that fit
/// in `prefix` (the start of a frame; the rest is not read yet).
fn token_in_prefix(prefix: &[u8]) -> Option<String> {
    struct FindToken<'a>(&'a mut Option<String>);

    impl<'de> Visitor<'de> for FindToken<'_> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an envelope object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == "token" {
                    *self.0 = Some(map.next_value::<String>()?);
                    // Found: stop before the (unread) end of the frame.
                    return Err(A::Error::custom("token found"));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(prefix);
    // The prefix ends mid-document: an error is expected; only `found` matters.
    let _ = deserializer.deserialize_map(FindToken(&mut found));
    found
}

fn payload(mut bytes: Vec<u8>) -> Request {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    bytes.truncate(end);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes.drain(..start);
    if bytes.is_empty() {
        Request::Nothing
    } else {
        Request::Payload(bytes)
    }
}

/// Writes one reply piece: raw in legacy mode, as one frame in framed mode.
pub(super) async fn write_piece<S: AsyncWrite + Unpin>(
    stream: &mut S,
    framed: bool,
    piece: &[u8],
) -> std::io::Result<()> {
    let write = async {
        if framed {
            let length = u32::try_from(piece.len()).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "reply piece over 4 GiB")
            })?;
            stream.write_all(&length.to_be_bytes()).await?;
        }
        stream.write_all(piece).await?;
        stream.flush().await
    };
    tokio::time::timeout(IO_TIMEOUT, write)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "reply write timed out"))?
}

/// A shared secret, compared in constant time and never printed.
#[derive(Clone)]
pub struct SocketToken(String);

impl SocketToken {
    /// A token; `None` when `text` is empty.
    pub fn new(text: impl Into<String>) -> Option<Self> {
        let text = text.into();
        (!text.is_empty()).then_some(Self(text))
    }

    /// True when `supplied` is this token (constant time in the token's content).
    pub fn matches(&self, supplied: &str) -> bool {
        self.0.as_bytes().ct_eq(supplied.as_bytes()).into()
    }
}

impl std::fmt::Debug for SocketToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SocketToken(***)")
    }
}

/// What a request asks for, once decoded and authorised.
#[derive(Debug, PartialEq)]
pub(super) enum Decision {
    /// Stop the server; reply with this line.
    Quit(&'static [u8]),
    /// Reply with this line only (no terminator): refused.
    Refuse(&'static [u8]),
    /// Reply with this error line, then the terminator.
    Error(String),
    /// Run this action document (`null`: nothing to run, just the terminator).
    Run(Value),
}

/// The `quit_server`/JSON/envelope rules of LoadDensity's server.
pub(super) fn decide(payload: &[u8], token: Option<&SocketToken>) -> Decision {
    let Ok(text) = std::str::from_utf8(payload) else {
        return Decision::Error("Error: the payload is not valid UTF-8\n".into());
    };
    if text == "quit_server" {
        return if token.is_some() {
            Decision::Refuse(b"Error: token required\n")
        } else {
            Decision::Quit(b"Server shutting down\n")
        };
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => return Decision::Error(format!("Error: {e}\n")),
    };
    match value {
        Value::Object(mut envelope)
            if envelope.contains_key("token") || envelope.contains_key("command") =>
        {
            if let Some(token) = token {
                let supplied = envelope.get("token").and_then(Value::as_str);
                if !supplied.is_some_and(|s| token.matches(s)) {
                    return Decision::Refuse(b"Error: unauthorised\n");
                }
            }
            if envelope.get("op").and_then(Value::as_str) == Some("quit") {
                return Decision::Quit(b"Server shutting down\n");
            }
            Decision::Run(envelope.remove("command").unwrap_or(Value::Null))
        }
        _ if token.is_some() => Decision::Refuse(b"Error: token required\n"),
        document => Decision::Run(document),
    }
}

#[cfg(test)]
mod tests {
    use super::{
        Decision, MAX_FRAME, PREAUTH_READ, Request, SocketToken, decide, read_request,
        token_in_prefix,
    };
    use serde_json::json;

    fn read(bytes: &[u8], framed: bool) -> Request {
        read_with(bytes, framed, None)
    }

    fn read_with(bytes: &[u8], framed: bool, token: Option<&SocketToken>) -> Request {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut stream = bytes;
        runtime
            .block_on(read_request(&mut stream, framed, token))
            .expect("read")
    }

    /// A frame of `payload` (its length announced in full).
    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut wire = u32::try_from(payload.len())
            .expect("small")
            .to_be_bytes()
            .to_vec();
        wire.extend_from_slice(payload);
        wire
    }

    #[test]
    fn a_long_frame_needs_its_token_first() {
        let token = SocketToken::new("s3cret").expect("token");
        let pad = "x".repeat(PREAUTH_READ);
        let first = json!({"token": "s3cret", "command": null, "pad": pad}).to_string();
        assert!(matches!(
            read_with(&frame(first.as_bytes()), true, Some(&token)),
            Request::Payload(p) if p == first.as_bytes()
        ));
        let last = json!({"command": null, "pad": pad, "token": "s3cret"}).to_string();
        assert!(matches!(
            read_with(&frame(last.as_bytes()), true, Some(&token)),
            Request::Refused(line) if line.starts_with(b"Error: token required within")
        ));
        let wrong = json!({"token": "s3cret!", "pad": pad}).to_string();
        assert_eq!(
            read_with(&frame(wrong.as_bytes()), true, Some(&token)),
            Request::Refused(b"Error: unauthorised\n")
        );
        // Without a token, or short: read whole, and judged by `decide`.
        assert!(matches!(
            read(&frame(last.as_bytes()), true),
            Request::Payload(_)
        ));
        let short = json!({"command": null, "token": "nope"}).to_string();
        assert!(matches!(
            read_with(&frame(short.as_bytes()), true, Some(&token)),
            Request::Payload(_)
        ));
        // An announced length with fewer bytes behind it: nothing.
        let mut cut = frame(first.as_bytes());
        cut.truncate(cut.len() - 1);
        assert_eq!(read_with(&cut, true, Some(&token)), Request::Nothing);
        assert_eq!(
            token_in_prefix(b" {\"a\": [1, {\"token\": 2}], \"token\": \"t\""),
            Some("t".into())
        );
        assert_eq!(token_in_prefix(b"{\"token\": 5"), None);
        assert_eq!(token_in_prefix(b"[\"token\""), None);
    }

    #[test]
    fn frames() {
        assert_eq!(
            read(b"\x00\x00\x00\x04 {} ", true),
            Request::Payload(b"{}".to_vec())
        );
        assert_eq!(read(b"\x00\x00\x00\x00", true), Request::Nothing);
        assert_eq!(read(b"\x00\x00", true), Request::Nothing);
        assert_eq!(read(b"\x00\x00\x00\x09short", true), Request::Nothing);
        let over = u32::try_from(MAX_FRAME + 1).expect("fits");
        assert_eq!(read(&over.to_be_bytes(), true), Request::TooLarge(over));
        assert_eq!(
            read(b"  quit_server\n", false),
            Request::Payload(b"quit_server".to_vec())
        );
        assert_eq!(read(b"", false), Request::Nothing);
        let long = vec![b'x'; 10_000];
        assert_eq!(read(&long, false), Request::Payload(vec![b'x'; 8192]));
    }

    #[test]
    fn envelope_rules() {
        let token = SocketToken::new("s3cret").expect("token");
        assert!(SocketToken::new("").is_none());
        assert_eq!(format!("{token:?}"), "SocketToken(***)");
        assert!(matches!(decide(b"quit_server", None), Decision::Quit(_)));
        assert_eq!(
            decide(b"quit_server", Some(&token)),
            Decision::Refuse(b"Error: token required\n")
        );
        let doc = json!({"load_density": [["LD_summary"]]});
        assert_eq!(
            decide(doc.to_string().as_bytes(), None),
            Decision::Run(doc.clone())
        );
        assert_eq!(
            decide(doc.to_string().as_bytes(), Some(&token)),
            Decision::Refuse(b"Error: token required\n")
        );
        let good = json!({"token": "s3cret", "command": doc});
        assert_eq!(
            decide(good.to_string().as_bytes(), Some(&token)),
            Decision::Run(doc.clone())
        );
        let bad = json!({"token": "s3cret!", "command": doc});
        assert_eq!(
            decide(bad.to_string().as_bytes(), Some(&token)),
            Decision::Refuse(b"Error: unauthorised\n")
        );
        let quit = json!({"token": "s3cret", "op": "quit"});
        assert!(matches!(
            decide(quit.to_string().as_bytes(), Some(&token)),
            Decision::Quit(_)
        ));
        let no_command = json!({"token": "s3cret"});
        assert_eq!(
            decide(no_command.to_string().as_bytes(), Some(&token)),
            Decision::Run(serde_json::Value::Null)
        );
        assert!(matches!(decide(b"{nope", None), Decision::Error(e) if e.starts_with("Error: ")));
        assert!(matches!(decide(b"\xff\xfe", None), Decision::Error(e) if e.contains("UTF-8")));
    }

    /// Property tests over arbitrary bytes (a fixed seed, a bounded case count): the
    /// frame reader and the envelope rules never panic, a well-formed frame gives back
    /// its trimmed payload, and with a token nothing runs without it.
    mod properties {
        use super::super::LEGACY_READ;
        use super::{Decision, MAX_FRAME, Request, SocketToken, decide, read};
        use proptest::prelude::*;
        use proptest::test_runner::{
            Config, FileFailurePersistence, RngAlgorithm, TestRng, TestRunner,
        };
        use serde_json::{Value, json};

        fn runner(cases: u32) -> TestRunner {
            let config = Config {
                cases,
                failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
                ..Config::default()
            };
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[16; 32]))
        }

        fn trimmed(bytes: &[u8]) -> &[u8] {
            let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
            let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace());
            match (start, end) {
                (Some(start), Some(end)) => &bytes[start..=end],
                _ => &[],
            }
        }

        #[test]
        fn any_bytes_read_as_a_request_or_nothing() {
            let bytes = prop::collection::vec(any::<u8>(), 0..64);
            runner(500)
                .run(&(bytes, any::<bool>()), |(bytes, framed)| {
                    match read(&bytes, framed) {
                        Request::Payload(payload) => {
                            prop_assert!(!payload.is_empty());
                            let limit = if framed { MAX_FRAME } else { LEGACY_READ };
                            prop_assert!(payload.len() <= limit);
                        }
                        Request::TooLarge(length) => {
                            prop_assert!(framed && length as usize > MAX_FRAME);
                        }
                        Request::Nothing => {}
                        Request::Refused(_) => prop_assert!(false, "refused without a token"),
                    }
                    Ok(())
                })
                .expect("property");
        }

        #[test]
        fn a_well_formed_frame_gives_back_its_trimmed_payload() {
            let payload = prop::collection::vec(any::<u8>(), 1..256);
            let trailing = prop::collection::vec(any::<u8>(), 0..16);
            runner(300)
                .run(&(payload, trailing), |(payload, trailing)| {
                    let length = u32::try_from(payload.len()).expect("small");
                    let mut wire = length.to_be_bytes().to_vec();
                    wire.extend_from_slice(&payload);
                    // Bytes of a next frame must not leak into this one.
                    wire.extend_from_slice(&trailing);
                    let expected = trimmed(&payload);
                    match read(&wire, true) {
                        Request::Payload(got) => prop_assert_eq!(&got[..], expected),
                        Request::Nothing => prop_assert!(expected.is_empty()),
                        Request::TooLarge(_) | Request::Refused(_) => {
                            prop_assert!(false, "too large or refused")
                        }
                    }
                    Ok(())
                })
                .expect("property");
        }

        /// Issue #26: frames longer than `PREAUTH_READ` before authentication. With
        /// a token, only the first `PREAUTH_READ` bytes of one without the token at
        /// its start are read (the rest is never supplied here: a read of it would
        /// end in `Nothing`), and one with the token first is read whole.
        #[test]
        fn long_unauthenticated_frames_are_refused_after_a_small_read() {
            use super::{PREAUTH_READ, read_with};
            let token = SocketToken::new("s3cret").expect("token");
            let length = (PREAUTH_READ as u32 + 1)..=(MAX_FRAME as u32);
            let supplied = prop_oneof![
                Just(None),
                Just(Some("s3cret".to_string())),
                ".{0,12}".prop_map(Some),
            ];
            let filler = prop::collection::vec(any::<u8>(), 0..64);
            runner(200)
                .run(&(length, supplied, filler), |(length, supplied, filler)| {
                    let mut start = match &supplied {
                        Some(t) => json!({"token": t}).to_string().into_bytes(),
                        None => filler.clone(),
                    };
                    // An envelope left open: `"token"` (if any) comes first.
                    start.pop();
                    start.push(b',');
                    start.extend_from_slice(&filler);
                    start.resize(PREAUTH_READ, b' ');
                    let mut wire = length.to_be_bytes().to_vec();
                    wire.extend_from_slice(&start);
                    let got = read_with(&wire, true, Some(&token));
                    if supplied.as_deref() == Some("s3cret") {
                        // Authorised: read on, and the rest is missing.
                        prop_assert_eq!(got, Request::Nothing);
                    } else {
                        prop_assert!(matches!(got, Request::Refused(_)), "{:?}", got);
                    }
                    Ok(())
                })
                .expect("property");
        }

        #[test]
        fn with_a_token_nothing_runs_without_it() {
            let token = SocketToken::new("s3cret").expect("token");
            let supplied = prop_oneof![
                Just(Value::String("s3cret".into())),
                ".{0,8}".prop_map(Value::String),
                any::<i64>().prop_map(|n| json!(n)),
                Just(Value::Null),
            ];
            let payload = prop_oneof![
                prop::collection::vec(any::<u8>(), 0..48),
                (supplied, prop::option::of("quit|run|.{0,4}"), any::<bool>()).prop_map(
                    |(supplied, op, with_token)| {
                        let mut envelope = json!({"command": {"load_density": []}});
                        if with_token {
                            envelope["token"] = supplied;
                        }
                        if let Some(op) = op {
                            envelope["op"] = Value::String(op);
                        }
                        envelope.to_string().into_bytes()
                    }
                ),
            ];
            runner(500)
                .run(&payload, |payload| {
                    let authorised = serde_json::from_slice::<Value>(&payload)
                        .ok()
                        .and_then(|v| v.get("token").cloned())
                        == Some(Value::String("s3cret".into()));
                    match decide(&payload, Some(&token)) {
                        Decision::Run(_) | Decision::Quit(_) => prop_assert!(authorised),
                        Decision::Refuse(_) | Decision::Error(_) => {}
                    }
                    // Without a token, the same bytes never panic either.
                    let _ = decide(&payload, None);
                    Ok(())
                })
                .expect("property");
        }
    }
}
