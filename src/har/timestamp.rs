//! HAR's `startedDateTime` (ISO 8601 with a `Z` or `±HH:MM` offset) as
//! milliseconds since the Unix epoch, for the recorded think time.

use std::time::UNIX_EPOCH;

/// Milliseconds since the epoch, or `None` when `text` is not such a date-time.
pub(super) fn parse_millis(text: &str) -> Option<f64> {
    let text = text.trim();
    let (local, offset_minutes) = split_offset(text)?;
    let time = humantime::parse_rfc3339_weak(local).ok()?;
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    Some(since.as_secs_f64() * 1000.0 - f64::from(offset_minutes) * 60_000.0)
}

/// `2024-05-01T10:00:00.5+02:00` → (`2024-05-01T10:00:00.5`, 120).
fn split_offset(text: &str) -> Option<(&str, i32)> {
    if let Some(local) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        return Some((local, 0));
    }
    let bytes = text.as_bytes();
    if bytes.len() >= 19 + 6 {
        let sign_at = bytes.len() - 6;
        let sign = match bytes[sign_at] {
            b'+' => 1,
            b'-' => -1,
            _ => return Some((text, 0)),
        };
        if bytes[sign_at + 3] != b':' {
            return None;
        }
        let hours: i32 = text.get(sign_at + 1..sign_at + 3)?.parse().ok()?;
        let minutes: i32 = text.get(sign_at + 4..)?.parse().ok()?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        return Some((&text[..sign_at], sign * (hours * 60 + minutes)));
    }
    Some((text, 0))
}

#[cfg(test)]
mod tests {
    use super::parse_millis;

    #[test]
    fn offsets_and_fractions() {
        let utc = parse_millis("2024-05-01T10:00:00.250Z").expect("utc");
        assert_eq!(parse_millis("2024-05-01T12:00:00.250+02:00"), Some(utc));
        assert_eq!(parse_millis("2024-05-01T09:30:00.250-00:30"), Some(utc));
        let later = parse_millis("2024-05-01T10:00:01.750Z").expect("later");
        assert!((later - utc - 1500.0).abs() < 1e-6);
        assert_eq!(
            parse_millis("2024-05-01T11:00:00+01:00"),
            parse_millis("2024-05-01T10:00:00Z")
        );
        assert_eq!(parse_millis("yesterday"), None);
        assert_eq!(parse_millis("2024-05-01T10:00:00.250+2:00"), None);
    }
}
