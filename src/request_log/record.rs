//! One request as the log stores it: a compact binary record appended to a per-thread
//! buffer on the request path (no allocation), and decoded back into a
//! [`RequestRecord`] when a report reads the log.
//!
//! Layout, little-endian: start time (µs since the epoch, u64), response time (µs,
//! u64), response length (u64), status (u16, 0 = none), endpoint id (u32), flags (u8:
//! bit 0 success, bit 1 sampled), sample index (u32), URL (u16 length + bytes), error
//! (u16 length + bytes).

use std::collections::HashMap;
use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::event::{Outcome, RequestEvent};

/// Longest URL kept, in bytes.
const MAX_URL: usize = 2048;
/// Longest error text kept, in bytes.
const MAX_ERROR: usize = 1024;
/// Fixed part of a record.
const FIXED: usize = 8 + 8 + 8 + 2 + 4 + 1 + 4;
/// The largest a record can be.
pub(crate) const MAX_RECORD: usize = FIXED + 2 + MAX_URL + 2 + MAX_ERROR;

const SUCCESS: u8 = 1;
const SAMPLED: u8 = 2;

/// One recorded request, read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// When the request started.
    pub start_time: SystemTime,
    /// Request type (the HTTP method).
    pub request_type: Arc<str>,
    /// Request name.
    pub name: Arc<str>,
    /// The URL requested (empty when unknown).
    pub url: String,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// Response time.
    pub response_time: Duration,
    /// Response body length, bytes.
    pub response_length: u64,
    /// The failure text; `None` for a success.
    pub error: Option<String>,
    /// Index of this request's response sample, when it was sampled.
    pub sample: Option<u32>,
}

impl RequestRecord {
    /// True for a successful request.
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }

    /// Response time in milliseconds.
    pub fn response_time_ms(&self) -> f64 {
        self.response_time.as_secs_f64() * 1000.0
    }
}

/// The longest prefix of `text` of at most `max` bytes ending on a char boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn push_text(buf: &mut Vec<u8>, text: &str) {
    // `truncate` bounds the length well under u16::MAX.
    buf.extend_from_slice(&(text.len() as u16).to_le_bytes());
    buf.extend_from_slice(text.as_bytes());
}

/// Appends one event to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, event: &RequestEvent<'_>, sample: Option<u32>) {
    let start_us = event
        .start_time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let response_us = u64::try_from(event.response_time.as_micros()).unwrap_or(u64::MAX);
    buf.extend_from_slice(&start_us.to_le_bytes());
    buf.extend_from_slice(&response_us.to_le_bytes());
    buf.extend_from_slice(&event.response_length.to_le_bytes());
    buf.extend_from_slice(&event.status.unwrap_or(0).to_le_bytes());
    buf.extend_from_slice(&event.endpoint.id.0.to_le_bytes());
    let mut flags = 0;
    if event.outcome.is_success() {
        flags |= SUCCESS;
    }
    if sample.is_some() {
        flags |= SAMPLED;
    }
    buf.push(flags);
    buf.extend_from_slice(&sample.unwrap_or(0).to_le_bytes());
    push_text(buf, truncate(event.url.unwrap_or(""), MAX_URL));
    let error = match event.outcome {
        Outcome::Success => "",
        Outcome::Failure(text) => truncate(text, MAX_ERROR),
    };
    push_text(buf, error);
}

/// Endpoint id -> (request type, name), for decoding.
pub(crate) type EndpointNames = HashMap<u32, (Arc<str>, Arc<str>)>;

/// Reads the records of a log file in order.
pub struct RecordReader {
    input: io::BufReader<std::fs::File>,
    names: EndpointNames,
    unknown: Arc<str>,
}

impl RecordReader {
    pub(crate) fn new(file: std::fs::File, names: EndpointNames) -> Self {
        Self {
            input: io::BufReader::with_capacity(64 * 1024, file),
            names,
            unknown: "?".into(),
        }
    }

    fn read_text(&mut self) -> io::Result<String> {
        let mut len = [0u8; 2];
        self.input.read_exact(&mut len)?;
        let mut bytes = vec![0u8; usize::from(u16::from_le_bytes(len))];
        self.input.read_exact(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn read_one(&mut self) -> io::Result<Option<RequestRecord>> {
        if self.input.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let mut fixed = [0u8; FIXED];
        self.input.read_exact(&mut fixed)?;
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&fixed[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let status = u16::from_le_bytes([fixed[24], fixed[25]]);
        let id = u32::from_le_bytes([fixed[26], fixed[27], fixed[28], fixed[29]]);
        let flags = fixed[30];
        let sample = u32::from_le_bytes([fixed[31], fixed[32], fixed[33], fixed[34]]);
        let url = self.read_text()?;
        let error = self.read_text()?;
        let (request_type, name) = self
            .names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| (self.unknown.clone(), self.unknown.clone()));
        Ok(Some(RequestRecord {
            start_time: UNIX_EPOCH + Duration::from_micros(u64_at(0)),
            request_type,
            name,
            url,
            status: (status != 0).then_some(status),
            response_time: Duration::from_micros(u64_at(8)),
            response_length: u64_at(16),
            error: (flags & SUCCESS == 0).then_some(error),
            sample: (flags & SAMPLED != 0).then_some(sample),
        }))
    }
}

impl Iterator for RecordReader {
    type Item = io::Result<RequestRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.read_one().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EndpointInterner;
    use std::io::{Seek, Write};

    #[test]
    fn records_round_trip() {
        let interner = EndpointInterner::default();
        let endpoint = interner.intern("POST", "login");
        let long_url = format!("http://127.0.0.1/{}", "é".repeat(2000));
        let start = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let mut buf = Vec::new();
        for (outcome, url, sample) in [
            (Outcome::Success, "http://127.0.0.1/a", Some(2)),
            (
                Outcome::Failure("HTTP 500 Internal Server Error"),
                long_url.as_str(),
                None,
            ),
        ] {
            encode(
                &mut buf,
                &RequestEvent {
                    endpoint: &endpoint,
                    start_time: start,
                    response_time: Duration::from_micros(1234),
                    response_length: 42,
                    status: Some(200),
                    outcome,
                    url: Some(url),
                    response: None,
                    retry: false,
                },
                sample,
            );
        }
        assert!(buf.len() <= 2 * MAX_RECORD);
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(&buf).expect("write");
        file.rewind().expect("rewind");
        let names = EndpointNames::from([(endpoint.id.0, ("POST".into(), "login".into()))]);
        let records: Vec<RequestRecord> = RecordReader::new(file, names)
            .collect::<io::Result<_>>()
            .expect("decode");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].url, "http://127.0.0.1/a");
        assert_eq!(records[0].sample, Some(2));
        assert!(records[0].is_success());
        assert_eq!(records[0].start_time, start);
        assert_eq!(&*records[1].name, "login");
        assert_eq!(
            records[1].error.as_deref(),
            Some("HTTP 500 Internal Server Error")
        );
        assert!(records[1].url.len() <= MAX_URL && records[1].url.starts_with("http://"));
        assert_eq!(records[1].response_time_ms(), 1.234);
    }
}
