//! The settings of the StatsD sink, their defaults (LoadDensity 0.0.79's where it has
//! one) and their checks, done before anything is bound or sent.

use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

/// Default host, as in LoadDensity.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default port (StatsD's and the Datadog agent's DogStatsD port), as in LoadDensity.
pub const DEFAULT_PORT: u16 = 8125;
/// Default metric prefix, as in LoadDensity.
pub const DEFAULT_PREFIX: &str = "loaddensity";
/// Default largest datagram payload: fits a 1500-byte Ethernet MTU (1500 - 20 IP - 8
/// UDP - 40 for IPv6/options headroom), the figure DogStatsD clients use.
pub const DEFAULT_MAX_PACKET_BYTES: usize = 1432;
/// Largest UDP payload over IPv4.
pub const MAX_UDP_PAYLOAD: usize = 65_507;
/// Default time between two flushes of partial packets and summed counters, in ms.
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 100;
/// Default bound of the queue, in requests (each is three metrics).
pub const DEFAULT_MAX_QUEUED_REQUESTS: usize = 100_000;
/// Bytes a packet must leave for the method and name tag values at least.
pub(crate) const MIN_TAG_VALUE_BYTES: usize = 64;

/// How tags are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// DogStatsD: `name:value|type|#method:M,name:N,outcome:O` (Datadog agent,
    /// StatsD 0.9+, Telegraf, statsd_exporter). The default, as LoadDensity sends.
    DogStatsd,
    /// Plain StatsD, for servers without tag support: the tag values folded into the
    /// metric name, `{prefix}.{metric}.{method}.{name}.{outcome}:value|type`.
    Statsd,
}

impl Dialect {
    /// `dogstatsd` or `statsd`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Dialect::DogStatsd => "dogstatsd",
            Dialect::Statsd => "statsd",
        }
    }
}

impl FromStr for Dialect {
    type Err = StatsdError;

    /// `dogstatsd` or `statsd`, in any case.
    fn from_str(text: &str) -> Result<Self, StatsdError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "dogstatsd" => Ok(Dialect::DogStatsd),
            "statsd" => Ok(Dialect::Statsd),
            _ => Err(StatsdError::UnknownDialect(text.to_string())),
        }
    }
}

/// Settings of [`super::start_statsd_sink`].
#[derive(Debug, Clone, PartialEq)]
pub struct StatsdOptions {
    /// Host name or IP address of the StatsD server or agent. Default `127.0.0.1`.
    pub host: String,
    /// Its UDP port. Default 8125.
    pub port: u16,
    /// Prefix of every metric name; trailing dots are removed, as LoadDensity does.
    /// Default `loaddensity`. Empty: no prefix (`requests:1|c`).
    pub prefix: String,
    /// DogStatsD tags (default) or plain StatsD names.
    pub dialect: Dialect,
    /// The largest datagram payload. Default 1432.
    pub max_packet_bytes: usize,
    /// Sum the request counter per flush and tag set (`N|c`) instead of one `1|c` per
    /// request. Default false.
    pub aggregate_counters: bool,
    /// Partial packets and summed counters are sent at least this often. Default 100 ms.
    pub flush_interval: Duration,
    /// Requests held at most before they are sent; beyond it they are dropped and
    /// counted. Default 100,000.
    pub max_queued_requests: usize,
}

impl Default for StatsdOptions {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_string(),
            port: DEFAULT_PORT,
            prefix: DEFAULT_PREFIX.to_string(),
            dialect: Dialect::DogStatsd,
            max_packet_bytes: DEFAULT_MAX_PACKET_BYTES,
            aggregate_counters: false,
            flush_interval: Duration::from_millis(DEFAULT_FLUSH_INTERVAL_MS),
            max_queued_requests: DEFAULT_MAX_QUEUED_REQUESTS,
        }
    }
}

/// Why the sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum StatsdError {
    /// `dialect` is neither `dogstatsd` nor `statsd`.
    #[error("unknown dialect `{0}`: expected `dogstatsd` or `statsd`")]
    UnknownDialect(String),
    /// The host cannot be resolved.
    #[error("cannot resolve `{host}:{port}`: {reason}")]
    UnknownHost {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// Why.
        reason: String,
    },
    /// A setting is out of range.
    #[error("{name}: {message}")]
    InvalidSetting {
        /// The setting's name, as in the action.
        name: &'static str,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The socket or thread could not be set up.
    #[error("cannot start the statsd sink: {0}")]
    Start(#[source] std::io::Error),
}

impl StatsdError {
    fn invalid(name: &'static str, message: impl Into<String>) -> Self {
        StatsdError::InvalidSetting {
            name,
            message: message.into(),
        }
    }
}

/// The prefix as used: without trailing dots (as LoadDensity's `rstrip(".")`).
pub(crate) fn effective_prefix(prefix: &str) -> &str {
    prefix.trim_end_matches('.')
}

/// Checks options without side effects (no socket, nothing sent); the host is not
/// resolved here. The packet size is checked by [`super::encoder::Encoder::new`],
/// which knows how long the longest line can be.
pub fn check_options(options: &StatsdOptions) -> Result<(), StatsdError> {
    let prefix = effective_prefix(&options.prefix);
    if let Some(bad) = prefix
        .chars()
        .find(|c| matches!(c, ':' | '|' | '#' | '@') || c.is_whitespace() || c.is_control())
    {
        return Err(StatsdError::invalid(
            "prefix",
            format!(
                "must not contain {bad:?} (`:`, `|`, `#`, `@`, spaces and control characters \
                 break StatsD lines), got {:?}",
                options.prefix
            ),
        ));
    }
    if options.port == 0 {
        return Err(StatsdError::invalid(
            "port",
            "expected a port number 1..=65535, got 0",
        ));
    }
    if options.max_packet_bytes > MAX_UDP_PAYLOAD {
        return Err(StatsdError::invalid(
            "max_packet_bytes",
            format!(
                "expected at most {MAX_UDP_PAYLOAD} (the largest UDP payload), got {}",
                options.max_packet_bytes
            ),
        ));
    }
    if options.max_queued_requests == 0 {
        return Err(StatsdError::invalid(
            "max_queued_requests",
            "expected at least 1, got 0",
        ));
    }
    if options.flush_interval.is_zero() {
        return Err(StatsdError::invalid(
            "flush_interval_ms",
            "expected at least 1, got 0",
        ));
    }
    super::encoder::Encoder::new(prefix, options.dialect, options.max_packet_bytes)?;
    Ok(())
}

/// Resolves `host:port`, preferring IPv4 (a `localhost` StatsD usually listens there).
pub(crate) fn resolve(options: &StatsdOptions) -> Result<SocketAddr, StatsdError> {
    let unknown = |reason: String| StatsdError::UnknownHost {
        host: options.host.clone(),
        port: options.port,
        reason,
    };
    let host = options.host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(StatsdError::invalid("host", "must not be empty"));
    }
    let addrs: Vec<SocketAddr> = (host, options.port)
        .to_socket_addrs()
        .map_err(|e| unknown(e.to_string()))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| unknown("no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects() {
        assert_eq!(
            " DogStatsD ".parse::<Dialect>().ok(),
            Some(Dialect::DogStatsd)
        );
        assert_eq!("statsd".parse::<Dialect>().ok(), Some(Dialect::Statsd));
        let error = "graphite".parse::<Dialect>().err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("unknown dialect `graphite`: expected `dogstatsd` or `statsd`")
        );
    }

    #[test]
    fn settings() {
        assert!(check_options(&StatsdOptions::default()).is_ok());
        let empty = StatsdOptions {
            prefix: "...".into(),
            ..StatsdOptions::default()
        };
        assert!(check_options(&empty).is_ok());
        for (options, field) in [
            (
                StatsdOptions {
                    prefix: "a:b".into(),
                    ..StatsdOptions::default()
                },
                "prefix",
            ),
            (
                StatsdOptions {
                    max_packet_bytes: 100,
                    ..StatsdOptions::default()
                },
                "max_packet_bytes",
            ),
            (
                StatsdOptions {
                    max_packet_bytes: 70_000,
                    ..StatsdOptions::default()
                },
                "max_packet_bytes",
            ),
            (
                StatsdOptions {
                    max_queued_requests: 0,
                    ..StatsdOptions::default()
                },
                "max_queued_requests",
            ),
        ] {
            match check_options(&options) {
                Err(StatsdError::InvalidSetting { name, .. }) => assert_eq!(name, field),
                other => panic!("{options:?}: {other:?}"),
            }
        }
    }
}
