//! The InfluxDB line protocol: escaping and the encoder of request points.
//!
//! One request becomes one line:
//!
//! ```text
//! <measurement>,request_type=<type>,name=<name> latency_ms=<f>,response_bytes=<n>i,success=<bool>[,error="<text>"] <ns>
//! ```
//!
//! Escaping follows the specification: commas and spaces in the measurement; commas,
//! equals signs and spaces in tag keys and values; double quotes and backslashes in
//! string field values. The protocol has no way to carry a newline inside a value, so a
//! newline is written as the two characters `\n` (and a carriage return as `\r`),
//! which keeps every point on its own line. A backslash in a tag value is doubled only
//! where it would otherwise escape the character after it (before a comma, equals
//! sign, space or backslash, and at the end of the value).
//!
//! The encoder escapes the measurement and the tags of an endpoint once
//! ([`SeriesPrefix`]) and formats numbers with integer arithmetic (`itoa`), writing into
//! a reused buffer: no allocation per line.

/// The most characters of a failure text written to the `error` field.
pub const MAX_ERROR_CHARS: usize = 512;

/// Appends `text` escaped as a measurement: comma and space.
pub fn escape_measurement(text: &str, out: &mut Vec<u8>) {
    escape_into(text, out, |b| matches!(b, b',' | b' '));
}

/// Appends `text` escaped as a tag key or tag value (also right for field keys):
/// comma, equals sign and space.
pub fn escape_tag(text: &str, out: &mut Vec<u8>) {
    escape_into(text, out, |b| matches!(b, b',' | b'=' | b' '));
}

/// Appends `text` escaped as the inside of a string field value (without the
/// surrounding quotes): double quote and backslash.
pub fn escape_field_string(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Escapes the bytes `special` picks with a backslash, newlines and carriage returns
/// as `\n` and `\r`, and a backslash where it would escape what follows it.
fn escape_into(text: &str, out: &mut Vec<u8>, special: impl Fn(u8) -> bool) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\\' => match bytes.get(i + 1) {
                Some(&next) if !matches!(next, b'\\' | b'\n' | b'\r') && !special(next) => {
                    continue;
                }
                _ => b"\\\\",
            },
            b if special(b) => {
                out.extend_from_slice(&bytes[start..i]);
                out.push(b'\\');
                start = i;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// The first [`MAX_ERROR_CHARS`] characters of a failure text.
pub fn truncate_error(text: &str) -> &str {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The escaped `measurement,request_type=..,name=.. ` that starts every line of one
/// endpoint, built once per endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesPrefix(Box<[u8]>);

impl SeriesPrefix {
    /// The prefix of the points of (`request_type`, `name`). An empty tag value is left
    /// out, as the protocol does not allow empty tag values.
    pub fn new(measurement: &str, request_type: &str, name: &str) -> Self {
        Self::with_instance(measurement, request_type, name, None)
    }

    /// The prefix with an `instance` tag too, when `instance` is given (a segment or
    /// `--instance` is set: see [`crate::instance`]).
    pub fn with_instance(
        measurement: &str,
        request_type: &str,
        name: &str,
        instance: Option<&str>,
    ) -> Self {
        let mut out = Vec::with_capacity(measurement.len() + request_type.len() + name.len() + 32);
        escape_measurement(measurement, &mut out);
        // Tags in key order, as InfluxDB recommends.
        for (key, value) in [
            ("instance", instance.unwrap_or("")),
            ("name", name),
            ("request_type", request_type),
        ] {
            if !value.is_empty() {
                out.push(b',');
                out.extend_from_slice(key.as_bytes());
                out.push(b'=');
                escape_tag(value, &mut out);
            }
        }
        out.push(b' ');
        Self(out.into_boxed_slice())
    }

    /// The escaped bytes, ending with the space before the fields.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The fields and timestamp of one request point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointFields<'a> {
    /// Response time in nanoseconds (written as the float field `latency_ms`).
    pub latency_ns: u64,
    /// Response body length in bytes.
    pub response_bytes: u64,
    /// Whether the request succeeded.
    pub success: bool,
    /// The failure text, on failure only (truncated to [`MAX_ERROR_CHARS`]).
    pub error: Option<&'a str>,
    /// Start of the request, in nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
}

/// Writes a latency in nanoseconds as milliseconds, `<ms>.<up to 6 digits>`: the exact
/// decimal of `ns / 1e6`, so that it reads back as the `f64` nearest to it, written with
/// integer arithmetic (a float formatter costs several times more).
#[inline]
fn write_latency_ms(latency_ns: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(
        itoa::Buffer::new()
            .format(latency_ns / 1_000_000)
            .as_bytes(),
    );
    out.push(b'.');
    let mut fraction = latency_ns % 1_000_000;
    if fraction == 0 {
        out.push(b'0');
        return;
    }
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (fraction % 10) as u8;
        fraction /= 10;
    }
    let end = digits.iter().rposition(|d| *d != b'0').map_or(1, |i| i + 1);
    out.extend_from_slice(&digits[..end]);
}

/// Appends one complete line (with its trailing newline) to `out`.
#[inline]
pub fn encode_line(prefix: &SeriesPrefix, fields: &PointFields<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(prefix.as_bytes());
    out.extend_from_slice(b"latency_ms=");
    write_latency_ms(fields.latency_ns, out);
    out.extend_from_slice(b",response_bytes=");
    // An integer field is a signed 64-bit integer: saturate rather than write one
    // InfluxDB rejects.
    let response_bytes = i64::try_from(fields.response_bytes).unwrap_or(i64::MAX);
    out.extend_from_slice(itoa::Buffer::new().format(response_bytes).as_bytes());
    out.extend_from_slice(if fields.success {
        b"i,success=true"
    } else {
        b"i,success=false"
    });
    if let Some(error) = fields.error {
        out.extend_from_slice(b",error=\"");
        escape_field_string(truncate_error(error), out);
        out.push(b'"');
    }
    out.push(b' ');
    out.extend_from_slice(itoa::Buffer::new().format(fields.timestamp_ns).as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(text: &str) -> String {
        let mut out = Vec::new();
        escape_measurement(text, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    fn tag(text: &str) -> String {
        let mut out = Vec::new();
        escape_tag(text, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    fn field(text: &str) -> String {
        let mut out = Vec::new();
        escape_field_string(text, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    fn latency(latency_ns: u64) -> String {
        let mut out = Vec::new();
        write_latency_ms(latency_ns, &mut out);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn latencies_are_written_as_exact_milliseconds() {
        for (ns, text) in [
            (0u64, "0.0"),
            (1, "0.000001"),
            (182_000, "0.182"),
            (182_345, "0.182345"),
            (1_000_000, "1.0"),
            (12_500_000, "12.5"),
            (999_999_999, "999.999999"),
            (86_400_000_000_000, "86400000.0"),
            (u64::MAX, "18446744073709.551615"),
        ] {
            let written = latency(ns);
            assert_eq!(written, text, "{ns} ns");
            if ns < 1 << 53 {
                // Where `ns as f64` is exact, the division is the nearest f64 too.
                assert_eq!(
                    written.parse::<f64>().expect("a float"),
                    ns as f64 / 1e6,
                    "{ns} ns"
                );
            }
        }
    }

    /// The examples of the specification's "Special characters" section.
    #[test]
    fn specification_examples() {
        // Measurement: `my\ Measurement` and `my\,Measurement`; `=` stays as is.
        assert_eq!(measurement("my Measurement"), r"my\ Measurement");
        assert_eq!(measurement("my,Measurement"), r"my\,Measurement");
        assert_eq!(measurement("my=Measurement"), "my=Measurement");
        // Tag keys and values: `tag\ Key1=tag\ Value1`, `tag\,Key2=tag\,Value2`,
        // `tag\=Key3=tag\=Value3`.
        assert_eq!(tag("tag Key1"), r"tag\ Key1");
        assert_eq!(tag("tag,Value2"), r"tag\,Value2");
        assert_eq!(tag("tag=Value3"), r"tag\=Value3");
        // Field string: `"string with \"quotes\""` and `"a\\b"`.
        assert_eq!(
            field(r#"string with "quotes""#),
            r#"string with \"quotes\""#
        );
        assert_eq!(field(r"C:\path"), r"C:\\path");
        // Characters without a special meaning stay as they are, emoji included.
        assert_eq!(tag("héllo🙂\"x\""), "héllo🙂\"x\"");
        assert_eq!(field("a,b c=d"), "a,b c=d");
    }

    #[test]
    fn newlines_never_end_a_line() {
        assert_eq!(measurement("a\nb"), r"a\nb");
        assert_eq!(tag("a\r\nb"), r"a\r\nb");
        assert_eq!(field("line1\nline2"), r"line1\nline2");
    }

    #[test]
    fn backslashes_in_tags() {
        // A backslash that escapes nothing stays single (the 1.x parser keeps it).
        assert_eq!(tag(r"C:\dir"), r"C:\dir");
        // Before a special character, or at the end, it is doubled so that it cannot
        // escape the separator that follows.
        assert_eq!(tag(r"a\"), r"a\\");
        assert_eq!(tag(r"a\ b"), r"a\\\ b");
        // Two contiguous backslashes read as one, so the first of a pair is doubled
        // and the second, before `b`, stays literal: `a\\\b` reads back as `a\\b`.
        assert_eq!(tag(r"a\\b"), r"a\\\b");
    }

    #[test]
    fn full_line() {
        let prefix = SeriesPrefix::new("loaddensity_request", "GET", r#"GET /a b,c=d "e""#);
        let mut out = Vec::new();
        encode_line(
            &prefix,
            &PointFields {
                latency_ns: 12_500_000,
                response_bytes: 1024,
                success: true,
                error: None,
                timestamp_ns: 1_700_000_000_123_456_789,
            },
            &mut out,
        );
        encode_line(
            &prefix,
            &PointFields {
                latency_ns: 250_000,
                response_bytes: 0,
                success: false,
                error: Some("HTTP 500 \"oops\"\nnext"),
                timestamp_ns: 5,
            },
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "loaddensity_request,name=GET\\ /a\\ b\\,c\\=d\\ \"e\",request_type=GET \
             latency_ms=12.5,response_bytes=1024i,success=true 1700000000123456789\n\
             loaddensity_request,name=GET\\ /a\\ b\\,c\\=d\\ \"e\",request_type=GET \
             latency_ms=0.25,response_bytes=0i,success=false,error=\"HTTP 500 \\\"oops\\\"\\nnext\" 5\n"
        );
    }

    #[test]
    fn instance_tag_comes_first() {
        let prefix = SeriesPrefix::with_instance("m", "GET", "/a", Some("pod 2"));
        assert_eq!(
            prefix.as_bytes(),
            br"m,instance=pod\ 2,name=/a,request_type=GET "
        );
        assert_eq!(
            SeriesPrefix::with_instance("m", "GET", "/a", None),
            SeriesPrefix::new("m", "GET", "/a")
        );
    }

    #[test]
    fn measurement_and_empty_tags() {
        let prefix = SeriesPrefix::new("my m,x", "", "n");
        assert_eq!(prefix.as_bytes(), br"my\ m\,x,name=n ");
    }

    #[test]
    fn error_is_truncated_on_a_character_boundary() {
        let long = "é".repeat(600);
        assert_eq!(truncate_error(&long).chars().count(), MAX_ERROR_CHARS);
        assert_eq!(truncate_error("short"), "short");
    }
}
