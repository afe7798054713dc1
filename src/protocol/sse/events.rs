//! Reading a `text/event-stream` body into events, as the Server-Sent Events
//! specification does: lines end with LF, CRLF or CR; a blank line dispatches the
//! event; `data` lines are joined with LF; lines starting with `:` are comments.

use bytes::{Buf, BytesMut};

/// Longest line accepted (a stream that sends more without a line break is refused
/// instead of filling memory).
const MAX_LINE: usize = 1 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Event {
    /// Its `data` lines, joined with LF.
    pub(super) data: String,
    /// Bytes of its field values (`data`, `event`, `id`, `retry`): what a step counts,
    /// as LoadDensity counts the lengths of an event's values.
    pub(super) length: u64,
}

/// Bytes of a stream not yet read into events, and the event being read.
#[derive(Debug, Default)]
pub(super) struct EventReader {
    buf: BytesMut,
    data: Vec<u8>,
    has_data: bool,
    length: u64,
    /// The last line ended with CR: an LF right after it belongs to it.
    skip_lf: bool,
}

impl EventReader {
    /// Adds bytes received.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, if the bytes received hold one.
    pub(super) fn next_event(&mut self) -> Result<Option<Event>, String> {
        loop {
            if self.skip_lf {
                match self.buf.first() {
                    None => return Ok(None),
                    Some(b'\n') => self.buf.advance(1),
                    Some(_) => {}
                }
                self.skip_lf = false;
            }
            let Some(end) = memchr::memchr2(b'\n', b'\r', &self.buf) else {
                if self.buf.len() > MAX_LINE {
                    return Err(format!("an event stream line longer than {MAX_LINE} bytes"));
                }
                return Ok(None);
            };
            let line = self.buf.split_to(end);
            self.skip_lf = self.buf[0] == b'\r';
            self.buf.advance(1);
            if line.is_empty() {
                if let Some(event) = self.dispatch() {
                    return Ok(Some(event));
                }
                continue;
            }
            if line[0] == b':' {
                continue;
            }
            let (field, value) = match memchr::memchr(b':', &line) {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (&line[..], &b""[..]),
            };
            match field {
                b"data" => {
                    if self.has_data {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(value);
                    self.has_data = true;
                }
                b"event" | b"id" | b"retry" => {}
                // Other fields are ignored, as the specification says.
                _ => continue,
            }
            self.length += value.len() as u64;
        }
    }

    /// Ends the event being read: it is dispatched when it has data.
    fn dispatch(&mut self) -> Option<Event> {
        let length = std::mem::take(&mut self.length);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        let data = String::from_utf8_lossy(&self.data).into_owned();
        self.data.clear();
        Some(Event { data, length })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<Event> {
        let mut reader = EventReader::default();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.push(chunk);
            while let Some(event) = reader.next_event().expect("valid") {
                out.push(event);
            }
        }
        out
    }

    #[test]
    fn line_endings_comments_and_multi_line_data() {
        let got = events(&[
            b": heartbeat\n\nevent: tick\ndata: one\r\ndata:two\r",
            b"\n\r\nid: 7\ndata",
            b"\n\nretry: 5\n\n",
        ]);
        assert_eq!(
            got,
            vec![
                Event {
                    data: "one\ntwo".into(),
                    length: 4 + 3 + 3,
                },
                Event {
                    data: String::new(),
                    length: 1,
                },
            ]
        );
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut reader = EventReader::default();
        reader.push(&vec![b'x'; MAX_LINE + 1]);
        assert!(reader.next_event().is_err());
    }
}
