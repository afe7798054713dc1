//! StatsD lines: LoadDensity's three metrics per request, in the DogStatsD dialect
//! (tags) or the plain StatsD one (tag values folded into the name).
//!
//! Written by hand: a line is `name:value|type[|#tags]`, a few bytes of formatting,
//! and the StatsD client crates (`cadence`, `dogstatsd`) each own the socket and send
//! from the calling thread, where this sink needs lines it can pack into datagrams of
//! a bounded size on its own thread, with names and tags prepared once per endpoint.
//!
//! - `{prefix}.requests:1|c`, `{prefix}.request.latency:<ms>|ms` (whole milliseconds,
//!   truncated as LoadDensity's `int()`), `{prefix}.response.size:<bytes>|h`.
//! - DogStatsD tags `#method:M,name:N,outcome:success|failure`. A tag value has
//!   `| , : #` replaced by `_`, as LoadDensity does, and also line breaks (which would
//!   split the line). An empty method is `REQ` and an empty name `unknown`, as in
//!   LoadDensity.
//! - The StatsD dialect writes `{prefix}.{metric}.{method}.{name}.{outcome}`, each value
//!   sanitized as a tag value and with `.` also replaced by `_`, so that it is one
//!   segment of the name.
//! - Any line fits a packet: method and name are cut (at a character boundary) to what
//!   `max_packet_bytes` leaves them, the method to a quarter of it at most.

use std::borrow::Cow;

use super::options::{Dialect, MIN_TAG_VALUE_BYTES, StatsdError};

/// One of LoadDensity's three metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `{prefix}.requests`, a counter (`c`).
    Requests,
    /// `{prefix}.request.latency`, a timer in milliseconds (`ms`).
    Latency,
    /// `{prefix}.response.size`, a histogram of bytes (`h`).
    ResponseSize,
}

impl Metric {
    /// The three, in the order they are written for a request.
    pub const ALL: [Metric; 3] = [Metric::Requests, Metric::Latency, Metric::ResponseSize];

    /// The name after the prefix.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Requests => "requests",
            Metric::Latency => "request.latency",
            Metric::ResponseSize => "response.size",
        }
    }

    /// The StatsD type.
    pub fn kind(&self) -> &'static str {
        match self {
            Metric::Requests => "c",
            Metric::Latency => "ms",
            Metric::ResponseSize => "h",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A tag value as LoadDensity sanitizes it (`| , : #` become `_`), with line breaks
/// also replaced.
pub fn sanitize_tag_value(text: &str) -> Cow<'_, str> {
    replace(text, |c| matches!(c, '|' | ',' | ':' | '#' | '\n' | '\r'))
}

/// A tag value as folded into a name by the StatsD dialect: sanitized as a tag value,
/// and `.` replaced by `_`.
pub fn sanitize_name_segment(text: &str) -> Cow<'_, str> {
    replace(text, |c| {
        matches!(c, '|' | ',' | ':' | '#' | '\n' | '\r' | '.')
    })
}

fn replace(text: &str, bad: impl Fn(char) -> bool) -> Cow<'_, str> {
    if text.chars().any(&bad) {
        Cow::Owned(text.chars().map(|c| if bad(c) { '_' } else { c }).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// The outcome tag values, by index (0 success, 1 failure).
const OUTCOMES: [&str; 2] = ["success", "failure"];

/// Writes lines for one sink's prefix, dialect and packet size.
#[derive(Debug, Clone)]
pub struct Encoder {
    /// `prefix.`, or empty.
    prefix: String,
    dialect: Dialect,
    max_packet_bytes: usize,
    /// Bytes left for the method and name values together in the longest line.
    value_budget: usize,
}

impl Encoder {
    /// An encoder for `prefix` (without trailing dots; empty for none). Fails when
    /// `max_packet_bytes` leaves fewer than 64 bytes for the method and name of the
    /// longest line.
    pub fn new(
        prefix: &str,
        dialect: Dialect,
        max_packet_bytes: usize,
    ) -> Result<Self, StatsdError> {
        let mut encoder = Self {
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}.")
            },
            dialect,
            max_packet_bytes,
            value_budget: 0,
        };
        // The longest line with empty values: the largest value, failure outcome.
        let empty = encoder.parts("", "");
        let mut overhead = 0;
        let mut line = Vec::new();
        for metric in Metric::ALL {
            line.clear();
            empty.write(false, metric, u64::MAX, &mut line);
            overhead = overhead.max(line.len());
        }
        let least = overhead + MIN_TAG_VALUE_BYTES;
        if max_packet_bytes < least {
            return Err(StatsdError::InvalidSetting {
                name: "max_packet_bytes",
                message: format!(
                    "expected at least {least} with prefix {prefix:?} (a line with its name \
                     and tags must fit a packet), got {max_packet_bytes}"
                ),
            });
        }
        encoder.value_budget = max_packet_bytes - overhead;
        Ok(encoder)
    }

    /// The largest packet.
    pub fn max_packet_bytes(&self) -> usize {
        self.max_packet_bytes
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The method and name values as written: defaulted, sanitized and cut to fit.
    pub fn tag_values(&self, method: &str, name: &str) -> (String, String) {
        let method = if method.is_empty() { "REQ" } else { method };
        let name = if name.is_empty() { "unknown" } else { name };
        let sanitize = match self.dialect {
            Dialect::DogStatsd => sanitize_tag_value,
            Dialect::Statsd => sanitize_name_segment,
        };
        let method = cut(&sanitize(method), self.value_budget / 4).to_string();
        let name = cut(&sanitize(name), self.value_budget - method.len()).to_string();
        (method, name)
    }

    /// The lines of one endpoint, prepared once.
    pub fn series(&self, method: &str, name: &str) -> Series {
        let (method, name) = self.tag_values(method, name);
        self.parts(&method, &name)
    }

    fn parts(&self, method: &str, name: &str) -> Series {
        let prefix = &self.prefix;
        let lines = [0, 1].map(|outcome| {
            let outcome = OUTCOMES[outcome];
            Metric::ALL.map(|metric| {
                let (metric_name, kind) = (metric.name(), metric.kind());
                match self.dialect {
                    Dialect::DogStatsd => LineParts {
                        head: format!("{prefix}{metric_name}:").into(),
                        tail: format!("|{kind}|#method:{method},name:{name},outcome:{outcome}")
                            .into(),
                    },
                    Dialect::Statsd => LineParts {
                        head: format!("{prefix}{metric_name}.{method}.{name}.{outcome}:").into(),
                        tail: format!("|{kind}").into(),
                    },
                }
            })
        });
        Series { lines }
    }
}

/// `text` cut to at most `bytes`, at a character boundary.
fn cut(text: &str, bytes: usize) -> &str {
    if text.len() <= bytes {
        return text;
    }
    let mut end = bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A line around its value.
#[derive(Debug, Clone)]
struct LineParts {
    head: Box<str>,
    tail: Box<str>,
}

/// The three lines of one endpoint, for each outcome, without their values.
#[derive(Debug, Clone)]
pub struct Series {
    lines: [[LineParts; 3]; 2],
}

impl Series {
    /// Appends one line (no newline) to `out`.
    #[inline]
    pub fn write(&self, success: bool, metric: Metric, value: u64, out: &mut Vec<u8>) {
        let parts = &self.lines[usize::from(!success)][metric.index()];
        out.extend_from_slice(parts.head.as_bytes());
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        out.extend_from_slice(parts.tail.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(series: &Series, success: bool, metric: Metric, value: u64) -> String {
        let mut out = Vec::new();
        series.write(success, metric, value, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn loaddensity_lines() {
        let encoder = Encoder::new("loaddensity", Dialect::DogStatsd, 1432).expect("encoder");
        let series = encoder.series("GET", "/x|y,z:w#v\nq");
        assert_eq!(
            line(&series, true, Metric::Requests, 1),
            "loaddensity.requests:1|c|#method:GET,name:/x_y_z_w_v_q,outcome:success"
        );
        assert_eq!(
            line(&series, false, Metric::Latency, 42),
            "loaddensity.request.latency:42|ms|#method:GET,name:/x_y_z_w_v_q,outcome:failure"
        );
        assert_eq!(
            line(&series, true, Metric::ResponseSize, 1024),
            "loaddensity.response.size:1024|h|#method:GET,name:/x_y_z_w_v_q,outcome:success"
        );
        let series = encoder.series("", "");
        assert!(
            line(&series, true, Metric::Requests, 1)
                .ends_with("#method:REQ,name:unknown,outcome:success")
        );
    }

    #[test]
    fn folded_names() {
        let encoder = Encoder::new("ld", Dialect::Statsd, 512).expect("encoder");
        let series = encoder.series("GET", "api.v1/items:list");
        assert_eq!(
            line(&series, false, Metric::Requests, 7),
            "ld.requests.GET.api_v1/items_list.failure:7|c"
        );
        let none = Encoder::new("", Dialect::Statsd, 512).expect("encoder");
        assert_eq!(
            line(&none.series("GET", "x"), true, Metric::Latency, 3),
            "request.latency.GET.x.success:3|ms"
        );
    }

    #[test]
    fn long_names_are_cut_to_fit() {
        let encoder = Encoder::new("loaddensity", Dialect::DogStatsd, 200).expect("encoder");
        let name = "é".repeat(500);
        let series = encoder.series(&"M".repeat(300), &name);
        for metric in Metric::ALL {
            assert!(line(&series, false, metric, u64::MAX).len() <= 200);
        }
        let (method, cut_name) = encoder.tag_values(&"M".repeat(300), &name);
        assert!(method.len() >= MIN_TAG_VALUE_BYTES / 4 && name.starts_with(&cut_name));
        let error = Encoder::new("loaddensity", Dialect::DogStatsd, 120)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with("max_packet_bytes: expected at least "),
            "{error}"
        );
    }
}
