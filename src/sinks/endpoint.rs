//! A sink's HTTP endpoint: the scheme, host and port of its URL, read once for the
//! sinks that post (InfluxDB, Prometheus remote write, Datadog), and the refusal of a
//! URL that cannot be one, worded with its credentials masked.

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

/// Why a sink refuses the URL of its HTTP endpoint, worded for the user, any
/// credentials and query in the URL masked. Each sink wraps it in its own error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not `http://` or `https://`: the scheme as written, or the URL's beginning when
    /// it has none.
    UnsupportedScheme(String),
    /// Why the URL cannot be used.
    InvalidUrl(String),
}

/// Reads `url` (trimmed by the caller) as an HTTP endpoint that carries no user name
/// or password; `instead` ends the refusal of credentials (e.g. `": pass a token"`).
pub(crate) fn credential_free_endpoint(url: &str, instead: &str) -> Result<Endpoint, Refusal> {
    let endpoint = http_endpoint(url).map_err(|e| match e {
        EndpointError::Scheme(scheme) => Refusal::UnsupportedScheme(
            scheme.unwrap_or_else(|| shown_url(url).chars().take(40).collect()),
        ),
        EndpointError::Invalid(e) => Refusal::InvalidUrl(format!("`{}`: {e}", shown_url(url))),
        EndpointError::NoHost => Refusal::InvalidUrl(format!("`{}` has no host", shown_url(url))),
    })?;
    if endpoint.has_credentials() {
        return Err(Refusal::InvalidUrl(format!(
            "credentials in the URL are not supported{instead}"
        )));
    }
    Ok(endpoint)
}

/// A URL up to its query, for messages.
pub(crate) fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// A URL as error messages show it: no query, no password.
pub(crate) fn shown_url(url: &str) -> String {
    let text = without_query(url);
    if text.contains("://") {
        crate::redact::redact_url_credentials(text).into_owned()
    } else {
        // No scheme: whatever precedes an `@` may be credentials.
        match text.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => text.to_string(),
        }
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

    #[test]
    fn a_refusal_never_shows_credentials_or_the_query() {
        let refused = |url| credential_free_endpoint(url, ": pass a token").expect_err("refused");
        assert_eq!(
            refused("http://u:pw@h:1/x"),
            Refusal::InvalidUrl("credentials in the URL are not supported: pass a token".into())
        );
        let Refusal::InvalidUrl(message) = refused("http://u:secret@[bad/?token=t0k") else {
            panic!("an invalid URL");
        };
        assert!(message.starts_with("`http://u:***@[bad/`"), "{message}");
        assert!(
            !message.contains("secret") && !message.contains("t0k"),
            "{message}"
        );
        assert_eq!(
            refused("u:secret@host:8086"),
            Refusal::UnsupportedScheme("***@host:8086".into())
        );
        assert_eq!(
            refused("udp://u:secret@host:1"),
            Refusal::UnsupportedScheme("udp://".into())
        );
        assert!(credential_free_endpoint("https://h/api/", "").is_ok());
    }
}
