//! Think time between iterations: `{"constant": s}`, `{"between": [min, max]}`,
//! `{"constant_pacing": s}`. LoadDensity's default is `between(0.1, 0.2)`.

use std::time::Duration;

use rand::Rng;
use serde_json::Value;

/// How long a user waits after each pass over its tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaitTime {
    /// Always the same pause (`{"constant": 0}` means none).
    Constant(Duration),
    /// A uniformly random pause in `[min, max]`.
    Between(Duration, Duration),
    /// Pause so that each iteration takes this long in total.
    ConstantPacing(Duration),
}

impl Default for WaitTime {
    fn default() -> Self {
        WaitTime::Between(Duration::from_millis(100), Duration::from_millis(200))
    }
}

fn seconds(value: &Value) -> Option<Duration> {
    value
        .as_f64()
        .filter(|s| *s >= 0.0 && s.is_finite() && *s < 1e9)
        .map(Duration::from_secs_f64)
}

impl WaitTime {
    /// Parses the JSON form; the error says what was expected.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        const EXPECTED: &str = "expected {\"constant\": s}, {\"between\": [min, max]} or {\"constant_pacing\": s} with seconds >= 0";
        let map = value
            .as_object()
            .filter(|m| m.len() == 1)
            .ok_or_else(|| format!("{EXPECTED}, got {value}"))?;
        let (kind, arg) = map.iter().next().ok_or(EXPECTED)?;
        let wait = match kind.as_str() {
            "constant" => WaitTime::Constant(seconds(arg).ok_or(EXPECTED)?),
            "constant_pacing" => WaitTime::ConstantPacing(seconds(arg).ok_or(EXPECTED)?),
            "between" => {
                let pair = arg.as_array().filter(|a| a.len() == 2).ok_or(EXPECTED)?;
                let (min, max) = (
                    seconds(&pair[0]).ok_or(EXPECTED)?,
                    seconds(&pair[1]).ok_or(EXPECTED)?,
                );
                if min > max {
                    return Err(format!("between: min {min:?} is greater than max {max:?}"));
                }
                WaitTime::Between(min, max)
            }
            other => return Err(format!("unknown wait time `{other}`; {EXPECTED}")),
        };
        Ok(wait)
    }

    /// True when the pause depends on how long the iteration took (`constant_pacing`):
    /// only then is the iteration timed.
    pub fn paces(&self) -> bool {
        matches!(self, WaitTime::ConstantPacing(_))
    }

    /// The pause after an iteration that took `iteration` to run.
    pub fn delay(&self, rng: &mut impl Rng, iteration: Duration) -> Duration {
        match *self {
            WaitTime::Constant(d) => d,
            WaitTime::Between(min, max) if min == max => min,
            WaitTime::Between(min, max) => rng.gen_range(min..=max),
            WaitTime::ConstantPacing(d) => d.saturating_sub(iteration),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    #[test]
    fn parses_and_delays() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let c = WaitTime::from_json(&json!({"constant": 0})).expect("ok");
        assert_eq!(c.delay(&mut rng, Duration::ZERO), Duration::ZERO);
        let b = WaitTime::from_json(&json!({"between": [0.5, 1]})).expect("ok");
        for _ in 0..100 {
            let d = b.delay(&mut rng, Duration::ZERO);
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1));
        }
        let p = WaitTime::from_json(&json!({"constant_pacing": 1})).expect("ok");
        assert_eq!(
            p.delay(&mut rng, Duration::from_millis(300)),
            Duration::from_millis(700)
        );
        assert_eq!(p.delay(&mut rng, Duration::from_secs(2)), Duration::ZERO);
        for bad in [
            json!({"between": [2, 1]}),
            json!({"constant": -1}),
            json!({"poisson": 1}),
            json!(3),
        ] {
            assert!(WaitTime::from_json(&bad).is_err(), "{bad}");
        }
    }
}
