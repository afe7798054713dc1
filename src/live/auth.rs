//! HTTP basic auth for the web UI: the credentials (never printed) and their check,
//! in constant time.

use base64::Engine as _;
use subtle::ConstantTimeEq;

/// A user name and password (`user:password`). `Debug` shows the user only.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    user: String,
    /// What the `Authorization` header carries: `Basic base64(user:password)`.
    expected: Vec<u8>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl BasicAuth {
    /// Parses `user:password`; `None` when there is no colon, or the user or the
    /// password is empty.
    pub fn parse(text: &str) -> Option<Self> {
        let (user, password) = text.split_once(':')?;
        if user.is_empty() || password.is_empty() {
            return None;
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
        Some(Self {
            user: user.to_string(),
            expected: format!("Basic {encoded}").into_bytes(),
        })
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// True when an `Authorization` header value carries these credentials
    /// (compared in constant time).
    pub fn accepts(&self, header: Option<&[u8]>) -> bool {
        let Some(header) = header else {
            return false;
        };
        // The scheme is case-insensitive: compare it apart, then the rest exactly.
        if header.len() < 6 || !header[..6].eq_ignore_ascii_case(b"basic ") {
            return false;
        }
        let supplied = header[6..].trim_ascii();
        let expected = &self.expected[6..];
        supplied.ct_eq(expected).into()
    }
}

#[cfg(test)]
mod tests {
    use super::BasicAuth;

    #[test]
    fn parses_checks_and_hides_the_password() {
        assert!(BasicAuth::parse("nocolon").is_none());
        assert!(BasicAuth::parse(":pw").is_none());
        assert!(BasicAuth::parse("user:").is_none());
        let auth = BasicAuth::parse("ann:s3cret:x").expect("valid");
        assert_eq!(auth.user(), "ann");
        // base64("ann:s3cret:x")
        assert!(auth.accepts(Some(b"Basic YW5uOnMzY3JldDp4")));
        assert!(auth.accepts(Some(b"basic YW5uOnMzY3JldDp4 ")));
        assert!(!auth.accepts(Some(b"Basic YW5uOnMzY3JldA==")));
        assert!(!auth.accepts(Some(b"Bearer YW5uOnMzY3JldDp4")));
        assert!(!auth.accepts(None));
        let debug = format!("{auth:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("YW5u"),
            "{debug}"
        );
    }
}
