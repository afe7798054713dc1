//! A sink's HTTP endpoint: the scheme, host and port of its URL, read once for the
//! sinks that post (InfluxDB, Prometheus remote write, Datadog). Each sink words its
//! own errors.

/// Why a URL is not an HTTP endpoint.
#[derive(Debug)]
pub(crate) enum EndpointError {
    /// Not `http://` or `https://`: the scheme as written (`udp://`), `None` when the
    /// text has none.
    Scheme(Option<String>),
    /// Not a URL.
    Invalid(url::ParseError),
    /// A URL without a host.
    NoHost,
}

/// An `http://` or `https://` URL and its parts.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// The parsed URL.
    pub(crate) url: url::Url,
    /// The host (an IPv6 address without brackets).
    pub(crate) host: String,
    /// The port, the scheme's when the URL names none.
    pub(crate) port: u16,
    /// True for `https://`.
    pub(crate) https: bool,
}

impl Endpoint {
    /// True when the URL carries a user name or a password.
    pub(crate) fn has_credentials(&self) -> bool {
        !self.url.username().is_empty() || self.url.password().is_some()
    }
}

/// Reads `text` (trimmed by the caller) as an HTTP endpoint.
pub(crate) fn http_endpoint(text: &str) -> Result<Endpoint, EndpointError> {
    let lower = text.to_ascii_lowercase();
    let https = lower.starts_with("https://");
    if !https && !lower.starts_with("http://") {
        return Err(EndpointError::Scheme(
            text.split_once("://")
                .map(|(scheme, _)| format!("{scheme}://")),
        ));
    }
    let url = url::Url::parse(text).map_err(EndpointError::Invalid)?;
    let host = match url.host() {
        Some(url::Host::Domain(name)) => name.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(EndpointError::NoHost),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    Ok(Endpoint {
        url,
        host,
        port,
        https,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scheme_host_and_port() {
        let e = http_endpoint("HTTPS://[::1]/api").expect("valid");
        assert_eq!((e.host.as_str(), e.port, e.https), ("::1", 443, true));
        let e = http_endpoint("http://user:pw@example.com:8086/write").expect("valid");
        assert_eq!(
            (e.host.as_str(), e.port, e.https),
            ("example.com", 8086, false)
        );
        assert!(e.has_credentials());
        assert!(matches!(
            http_endpoint("udp://h:1"),
            Err(EndpointError::Scheme(Some(s))) if s == "udp://"
        ));
        assert!(matches!(
            http_endpoint("localhost"),
            Err(EndpointError::Scheme(None))
        ));
        assert!(matches!(
            http_endpoint("http://[bad"),
            Err(EndpointError::Invalid(_))
        ));
    }
}
