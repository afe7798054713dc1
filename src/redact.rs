//! Credentials in URLs (`http://user:password@host/`): taken out of a URL to be
//! sent as basic auth, and masked (`http://user:***@host/`) wherever a URL may be
//! shown: endpoint names, messages, reports, logs.

use std::borrow::Cow;

/// What replaces a URL's password when it is shown.
pub const MASK: &str = "***";

/// `text` with the password of every `scheme://user:password@` in it replaced by
/// [`MASK`]: in the authority (up to the first `/`, `?`, `#` or `\` after the
/// scheme, or a space for a URL inside a longer text), whatever lies between the
/// first `:` and the last `@`.
pub fn redact_url_credentials(text: &str) -> Cow<'_, str> {
    if !text.contains('@') || !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    let mut copied = 0;
    let mut search = 0;
    // A text that is a URL (a name) may have raw spaces in its password.
    let whole_url = split_url_credentials(text).is_some();
    while let Some(found) = text[search..].find("://") {
        let start = search + found + 3;
        let in_whole_url = whole_url && search == 0;
        let token_len = text[start..]
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '\\') || (c.is_whitespace() && !in_whole_url)
            })
            .unwrap_or(text.len() - start);
        let token = &text[start..start + token_len];
        let Some(at) = token.rfind('@') else {
            search = start + token_len;
            continue;
        };
        if let Some(colon) = token[..at].find(':') {
            let (from, to) = (start + colon + 1, start + at);
            if &text[from..to] != MASK {
                out.push_str(&text[copied..from]);
                out.push_str(MASK);
                copied = to;
            }
        }
        search = start + at + 1;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Credentials found in a URL, percent-decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlCredentials {
    /// The user name (may be empty: `http://:password@host/`).
    pub user: String,
    /// The password (empty when the URL has none).
    pub password: String,
}

impl std::fmt::Debug for UrlCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UrlCredentials({}:{MASK})", self.user)
    }
}

/// Splits `scheme://user:password@host/...` into its credentials and the URL
/// without them; `None` when the URL's authority (up to the first `/`, `?` or
/// `#`) has no `@`.
pub fn split_url_credentials(text: &str) -> Option<(UrlCredentials, String)> {
    let scheme_end = text.find("://")?;
    let scheme = &text[..scheme_end];
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let start = scheme_end + 3;
    let authority_len = text[start..]
        .find(['/', '?', '#', '\\'])
        .unwrap_or(text.len() - start);
    let authority = &text[start..start + authority_len];
    let at = authority.rfind('@')?;
    let userinfo = &authority[..at];
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let clean = format!("{}{}", &text[..start], &text[start + at + 1..]);
    Some((
        UrlCredentials {
            user: percent_decode(user),
            password: percent_decode(password),
        },
        clean,
    ))
}

/// `%XX` escapes decoded (invalid ones kept as they are), then read as UTF-8.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_wherever_they_are() {
        for (text, expected) in [
            ("http://admin:secret@host/x", "http://admin:***@host/x"),
            ("http://admin@host/x", "http://admin@host/x"),
            ("http://host/x", "http://host/x"),
            (
                "GET http://a:b@h/ failed: `https://c:d@h2`",
                "GET http://a:***@h/ failed: `https://c:***@h2`",
            ),
            (
                "http://127.0.0.1:8080/users/me@example.com",
                "http://127.0.0.1:8080/users/me@example.com",
            ),
            (
                "http://a:b@h/p?next=http://c:d@e/",
                "http://a:***@h/p?next=http://c:***@e/",
            ),
            ("http://admin:***@host/x", "http://admin:***@host/x"),
            ("no url: a:b@c", "no url: a:b@c"),
            ("http://':pa ss`\"@h/x", "http://':***@h/x"),
            ("`http://u:p@h`: refused", "`http://u:***@h`: refused"),
        ] {
            assert_eq!(redact_url_credentials(text), expected, "{text}");
        }
    }

    #[test]
    fn credentials_come_out_decoded() {
        let (credentials, clean) =
            split_url_credentials("http://ad%20min:p%40ss:w@127.0.0.1:8080/x?a=b@c")
                .expect("found");
        assert_eq!(credentials.user, "ad min");
        assert_eq!(credentials.password, "p@ss:w");
        assert_eq!(clean, "http://127.0.0.1:8080/x?a=b@c");
        assert_eq!(format!("{credentials:?}"), "UrlCredentials(ad min:***)");
        assert!(split_url_credentials("http://host/x@y").is_none());
        assert!(split_url_credentials("/relative@x").is_none());
        let (credentials, clean) =
            split_url_credentials("https://${var.user}:${var.pw}@h/${var.id}").expect("found");
        assert_eq!(
            (credentials.user.as_str(), credentials.password.as_str()),
            ("${var.user}", "${var.pw}")
        );
        assert_eq!(clean, "https://h/${var.id}");
    }
}
