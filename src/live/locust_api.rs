//! Locust's web API, in the shapes Locust 2.47 serves them: `GET /stats/requests`
//! (what its own UI, `locust_exporter` and CI scripts poll), the requests and
//! failures CSVs, `/exceptions`, and the form of `POST /swarm`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::snapshot::{CURRENT_WINDOW, Rates, Rolling, Sample};
use super::{LiveSource, number};
use crate::stats::EndpointStats;

/// Locust's `PERCENTILES_TO_REPORT`, the percentile columns of its CSV.
const CSV_PERCENTILES: [(f64, &str); 11] = [
    (0.50, "50%"),
    (0.66, "66%"),
    (0.75, "75%"),
    (0.80, "80%"),
    (0.90, "90%"),
    (0.95, "95%"),
    (0.98, "98%"),
    (0.99, "99%"),
    (0.999, "99.9%"),
    (0.9999, "99.99%"),
    (1.0, "100%"),
];

/// A latency percentile (0..=1) in ms, 0 without requests.
fn percentile(stats: &EndpointStats, quantile: f64) -> f64 {
    let h = &stats.latency_us;
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// One entry of `stats`, as Locust's `StatsEntry.to_dict`.
fn entry(stats: &EndpointStats, seconds: f64, current: Rates) -> Value {
    let h = &stats.latency_us;
    let count = stats.count();
    let (min, max, avg) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            h.min() as f64 / 1000.0,
            h.max() as f64 / 1000.0,
            h.mean() / 1000.0,
        )
    };
    json!({
        "method": &*stats.request_type,
        "name": &*stats.name,
        "num_requests": count,
        "num_failures": stats.failures,
        "min_response_time": min.round() as u64,
        "max_response_time": max.round() as u64,
        "current_rps": number(current.requests_per_s),
        "current_fail_per_sec": number(current.failures_per_s),
        "avg_response_time": number(avg),
        "median_response_time": number(percentile(stats, 0.5)),
        "total_rps": number(per_second(count, seconds)),
        "total_fail_per_sec": number(per_second(stats.failures, seconds)),
        "response_time_percentile_0.95": number(percentile(stats, 0.95)),
        "response_time_percentile_0.99": number(percentile(stats, 0.99)),
        "avg_content_length": number(if count == 0 { 0.0 } else { stats.response_bytes as f64 / count as f64 }),
    })
}

/// The endpoints and the `Aggregated` one, merged now.
fn endpoints_and_total(source: &LiveSource) -> (Vec<EndpointStats>, EndpointStats) {
    let endpoints = source.stats.endpoints();
    let snapshot = crate::stats::StatsSnapshot {
        endpoints,
        ..Default::default()
    };
    let total = snapshot.aggregated();
    (snapshot.endpoints, total)
}

/// `GET /stats/requests`.
pub(crate) fn stats_requests(source: &LiveSource, rolling: &Rolling) -> Value {
    let now = Sample::take(source);
    let seconds = source.duration().as_secs_f64();
    let current = rolling.endpoint_rates(&now, CURRENT_WINDOW);
    let total_current = rolling.total_rates(&now, CURRENT_WINDOW);
    let (endpoints, total) = endpoints_and_total(source);
    let mut stats: Vec<Value> = endpoints
        .iter()
        .take(500)
        .map(|e| {
            let key = (e.request_type.clone(), e.name.clone());
            entry(e, seconds, current.get(&key).copied().unwrap_or_default())
        })
        .collect();
    let aggregated = entry(&total, seconds, total_current);
    let errors: Vec<Value> = endpoints
        .iter()
        .flat_map(|e| {
            e.errors.iter().map(|(text, n)| {
                json!({
                    "method": &*e.request_type,
                    "name": &*e.name,
                    "error": &**text,
                    "occurrences": n,
                    "first_seen": null,
                    "last_seen": null,
                })
            })
        })
        .take(500)
        .collect();
    // Locust's current percentiles: the requests of about the last 10 s.
    let current_percentiles = rolling.current_percentiles(&total.latency_us, &[0.5, 0.95]);
    let current_percentile = |i: usize| {
        current_percentiles
            .as_ref()
            .map_or(Value::Null, |values| number(values[i]))
    };
    let mut report = Map::new();
    report.insert("current_rps".into(), aggregated["current_rps"].clone());
    report.insert(
        "current_fail_per_sec".into(),
        aggregated["current_fail_per_sec"].clone(),
    );
    report.insert("total_rps".into(), aggregated["total_rps"].clone());
    report.insert(
        "total_fail_per_sec".into(),
        aggregated["total_fail_per_sec"].clone(),
    );
    report.insert(
        "fail_ratio".into(),
        number(if total.count() == 0 {
            0.0
        } else {
            total.failures as f64 / total.count() as f64
        }),
    );
    report.insert(
        "current_response_time_percentiles".into(),
        json!({
            "response_time_percentile_0.5": current_percentile(0),
            "response_time_percentile_0.95": current_percentile(1),
        }),
    );
    stats.push(aggregated);
    report.insert("stats".into(), Value::Array(stats));
    report.insert("errors".into(), Value::Array(errors));
    report.insert("state".into(), json!(source.run.state()));
    report.insert("user_count".into(), json!(source.run.user_count()));
    Value::Object(report)
}

/// A CSV writer over a string; writing to memory cannot fail.
fn csv_text(rows: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let _ = rows(&mut writer);
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// `GET /stats/requests/csv`: Locust's requests CSV, with the `Aggregated` row last.
pub(crate) fn requests_csv(source: &LiveSource) -> String {
    let seconds = source.duration().as_secs_f64();
    let (endpoints, total) = endpoints_and_total(source);
    csv_text(|w| {
        let mut header = vec![
            "Type",
            "Name",
            "Request Count",
            "Failure Count",
            "Median Response Time",
            "Average Response Time",
            "Min Response Time",
            "Max Response Time",
            "Average Content Size",
            "Requests/s",
            "Failures/s",
        ];
        header.extend(CSV_PERCENTILES.iter().map(|(_, name)| *name));
        w.write_record(&header)?;
        for e in endpoints.iter().chain(std::iter::once(&total)) {
            let h = &e.latency_us;
            let count = e.count();
            let mut row = vec![
                e.request_type.to_string(),
                e.name.to_string(),
                count.to_string(),
                e.failures.to_string(),
                (percentile(e, 0.5).round() as u64).to_string(),
                if h.is_empty() {
                    "0".into()
                } else {
                    (h.mean() / 1000.0).to_string()
                },
                (if h.is_empty() {
                    0
                } else {
                    (h.min() as f64 / 1000.0).round() as u64
                })
                .to_string(),
                (if h.is_empty() {
                    0
                } else {
                    (h.max() as f64 / 1000.0).round() as u64
                })
                .to_string(),
                (if count == 0 {
                    0.0
                } else {
                    e.response_bytes as f64 / count as f64
                })
                .to_string(),
                per_second(count, seconds).to_string(),
                per_second(e.failures, seconds).to_string(),
            ];
            for (quantile, _) in CSV_PERCENTILES {
                row.push(if count == 0 {
                    "N/A".into()
                } else {
                    (percentile(e, quantile).round() as u64).to_string()
                });
            }
            w.write_record(&row)?;
        }
        Ok(())
    })
}

/// `GET /stats/failures/csv`: one row per distinct failure, most frequent first.
pub(crate) fn failures_csv(source: &LiveSource) -> String {
    let (endpoints, _) = endpoints_and_total(source);
    let mut rows: Vec<(Arc<str>, Arc<str>, String, u64)> = endpoints
        .iter()
        .flat_map(|e| {
            e.errors
                .iter()
                .map(|(text, n)| (e.request_type.clone(), e.name.clone(), text.to_string(), *n))
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.3));
    csv_text(|w| {
        w.write_record([
            "Method",
            "Name",
            "Error",
            "Occurrences",
            "First Seen",
            "Last Seen",
        ])?;
        for (method, name, error, n) in rows {
            w.write_record([&*method, &*name, &error, &n.to_string(), "", ""])?;
        }
        Ok(())
    })
}

/// `GET /exceptions`, in Locust's shape: requests fail with an error text here,
/// never a Python exception, so each distinct error is one row (`msg`, its `count`
/// over every request, `traceback` naming the requests it occurred on, `nodes`
/// `local` as Locust's single process), most frequent first.
pub(crate) fn exceptions(source: &LiveSource) -> Value {
    let mut grouped: BTreeMap<&str, (u64, Vec<String>)> = BTreeMap::new();
    let endpoints = source.stats.endpoints();
    for e in &endpoints {
        for (text, n) in &e.errors {
            let row = grouped.entry(text).or_default();
            row.0 += n;
            row.1.push(format!("{} {}: {n}", e.request_type, e.name));
        }
    }
    let mut rows: Vec<_> = grouped.into_iter().collect();
    rows.sort_by_key(|(_, (count, _))| std::cmp::Reverse(*count));
    let exceptions: Vec<Value> = rows
        .into_iter()
        .take(500)
        .map(|(msg, (count, requests))| {
            json!({
                "count": count,
                "msg": msg,
                "traceback": requests.join("\n"),
                "nodes": "local",
            })
        })
        .collect();
    json!({ "exceptions": exceptions })
}

/// The fields of `POST /swarm`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SwarmForm {
    pub(crate) user_count: u32,
    pub(crate) spawn_rate: f64,
    /// Locust's `run_time`: the test stops this long after the request.
    pub(crate) run_time: Option<Duration>,
}

/// Reads `user_count`, `spawn_rate` and the optional `run_time` from a form body; an
/// error names the field.
pub(crate) fn parse_swarm(body: &[u8]) -> Result<SwarmForm, String> {
    let mut user_count = None;
    let mut spawn_rate = None;
    let mut run_time = None;
    for (key, value) in form_urlencoded::parse(body) {
        match &*key {
            "run_time" if !value.trim().is_empty() => {
                run_time = Some(parse_timespan(&value).ok_or_else(|| {
                    format!(
                        "Invalid run_time value: {value:?} (a positive time span, e.g. 90, 20s, 3m or 1h30m)"
                    )
                })?);
            }
            "user_count" => {
                user_count = Some(value.trim().parse::<u32>().map_err(|_| {
                    format!("Invalid user_count value: {value:?} (must be an integer >= 0)")
                })?);
            }
            "spawn_rate" => {
                let rate = value.trim().parse::<f64>().map_err(|_| {
                    format!("Invalid spawn_rate value: {value:?} (must be a number)")
                })?;
                spawn_rate = Some(rate);
            }
            _ => {}
        }
    }
    match (user_count, spawn_rate) {
        (Some(user_count), Some(spawn_rate)) if spawn_rate > 0.0 && spawn_rate.is_finite() => {
            Ok(SwarmForm {
                user_count,
                spawn_rate,
                run_time,
            })
        }
        _ => Err("Missing or invalid user_count or spawn_rate from /swarm request".into()),
    }
}

/// Locust's time span: whole seconds (`90`), or hours, minutes and seconds with their
/// units (`20s`, `3m`, `1h30m`, `2m10s`). `None` when malformed or zero.
fn parse_timespan(text: &str) -> Option<Duration> {
    let text = text.trim();
    let seconds = match text.parse::<u64>() {
        Ok(seconds) => seconds,
        Err(_) => {
            let (mut total, mut number) = (0u64, 0u64);
            let mut digits = false;
            for c in text.chars() {
                if let Some(digit) = c.to_digit(10) {
                    number = number.checked_mul(10)?.checked_add(u64::from(digit))?;
                    digits = true;
                    continue;
                }
                let unit = match c {
                    'h' => 3600,
                    'm' => 60,
                    's' => 1,
                    _ => return None,
                };
                if !digits {
                    return None;
                }
                total = total.checked_add(number.checked_mul(unit)?)?;
                (number, digits) = (0, false);
            }
            if digits {
                return None;
            }
            total
        }
    };
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_form() {
        assert_eq!(
            parse_swarm(b"user_count=12&spawn_rate=2.5&host=x"),
            Ok(SwarmForm {
                user_count: 12,
                spawn_rate: 2.5,
                run_time: None,
            })
        );
        let timed = parse_swarm(b"user_count=1&spawn_rate=1&run_time=1h30m5s").expect("valid");
        assert_eq!(timed.run_time, Some(Duration::from_secs(5405)));
        for (text, seconds) in [("90", 90), ("20s", 20), ("3m", 180), ("2h", 7200)] {
            assert_eq!(parse_timespan(text), Some(Duration::from_secs(seconds)));
        }
        for bad in ["soon", "1x", "m", "1h30", "0", "0s", "-5"] {
            assert_eq!(parse_timespan(bad), None, "{bad}");
        }
        let e = parse_swarm(b"user_count=1&spawn_rate=1&run_time=soon").expect_err("bad");
        assert!(e.contains("run_time") && e.contains("soon"), "{e}");
        let empty = parse_swarm(b"user_count=1&spawn_rate=1&run_time=").expect("valid");
        assert_eq!(empty.run_time, None);
        let e = parse_swarm(b"user_count=ten&spawn_rate=1").expect_err("bad count");
        assert!(e.contains("user_count"), "{e}");
        assert!(parse_swarm(b"user_count=1&spawn_rate=0").is_err());
        assert!(parse_swarm(b"user_count=1").is_err());
    }
}
