//! Exact merge of result documents from instances of one test (`loaddensity merge`):
//! counts add, the HDR histograms add (so merged percentiles are those of one
//! histogram of every request, not an average of percentiles), errors add, timelines
//! align on wall-clock seconds, and the `run` block spans the earliest start to the
//! latest end and lists the instances.
//!
//! A merged timeline second adds requests, failures and users; its percentiles are
//! the highest of the instances' for that second (an upper bound: per-second
//! histograms are not kept). The overall and per-name percentiles are exact.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::document::{ResultError, encode_histogram, rfc3339_millis};
use super::recorder::new_histogram;
use super::summary::{ErrorCount, LatencyOverall, NameStats, Summary, Totals, ms, percentile_ms};
use super::timeline::TimelineEntry;

/// Why documents cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no result documents to merge")]
    Empty,
    /// The documents come from different scripts.
    #[error(
        "{first} ran script `{first_script}` but {other} ran `{other_script}`: merging results of different scripts is not meaningful"
    )]
    DifferentScripts {
        /// The first document.
        first: String,
        /// Its script.
        first_script: String,
        /// The document that differs.
        other: String,
        /// Its script.
        other_script: String,
    },
    /// The documents ran different numbers of tests.
    #[error(
        "{first} holds {first_tests} test(s) but {other} holds {other_tests}: not the same script"
    )]
    DifferentTests {
        /// The first document.
        first: String,
        /// Its number of `LD_start_test`.
        first_tests: usize,
        /// The document that differs.
        other: String,
        /// Its number of tests.
        other_tests: usize,
    },
    /// One segment (or the whole load) appears twice.
    #[error(
        "{first} and {other} both ran {segment}: merging them would count those requests twice (--force merges anyway)"
    )]
    SameSegment {
        /// The first document of the pair.
        first: String,
        /// The second.
        other: String,
        /// `segment I/N`, or `the whole load`.
        segment: String,
    },
    /// A document's histogram or time cannot be read.
    #[error(transparent)]
    Document(#[from] ResultError),
}

/// Merges `documents` (each with the name it is reported under, e.g. its file).
/// With `force`, a segment seen twice is merged anyway (self-merge doubles every count
/// and leaves every percentile unchanged).
pub fn merge_results(documents: &[(String, Summary)], force: bool) -> Result<Summary, MergeError> {
    let (_, first) = documents.first().ok_or(MergeError::Empty)?;
    check_compatible(documents, force)?;

    // Wall-clock span.
    let starts: Vec<Option<SystemTime>> = documents
        .iter()
        .map(|(_, d)| parse_time(d.run.started_at.as_deref()))
        .collect();
    let earliest = starts.iter().flatten().min().copied();
    let latest = documents
        .iter()
        .filter_map(|(_, d)| parse_time(d.run.ended_at.as_deref()))
        .max();
    let duration_s = match (earliest, latest) {
        (Some(start), Some(end)) => end.duration_since(start).unwrap_or_default().as_secs_f64(),
        _ => documents
            .iter()
            .map(|(_, d)| d.totals.duration_s)
            .fold(0.0, f64::max),
    };

    // Histograms.
    let mut overall = new_histogram();
    let mut per_name: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for (name, document) in documents {
        let histogram = document.overall_histogram().map_err(|e| e.in_file(name))?;
        add(&mut overall, &histogram);
        for (key, histogram) in document.name_histograms().map_err(|e| e.in_file(name))? {
            match per_name.get_mut(&key) {
                Some(merged) => add(merged, &histogram),
                None => {
                    per_name.insert(key, histogram);
                }
            }
        }
    }

    // Counts.
    let mut totals = Totals {
        requests: 0,
        successes: 0,
        failures: 0,
        failure_rate: 0.0,
        duration_s,
        rps: 0.0,
        dropped_iterations: 0,
    };
    let mut names: BTreeMap<String, (u64, u64, u64, u64)> = BTreeMap::new();
    let mut errors: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for (_, document) in documents {
        let t = &document.totals;
        totals.requests += t.requests;
        totals.successes += t.successes;
        totals.failures += t.failures;
        totals.dropped_iterations += t.dropped_iterations;
        for (name, stats) in &document.per_name {
            let entry = names.entry(name.clone()).or_default();
            entry.0 += stats.count;
            entry.1 += stats.failures;
            entry.2 += stats.response_bytes;
            entry.3 += stats.retries;
        }
        for e in &document.errors {
            *errors
                .entry((e.request_type.clone(), e.name.clone(), e.error.clone()))
                .or_default() += e.occurrences;
        }
    }
    totals.failure_rate = ratio(totals.failures, totals.requests);
    totals.rps = per_second(totals.requests, duration_s);
    let mut errors: Vec<ErrorCount> = errors
        .into_iter()
        .map(|((request_type, name, error), occurrences)| ErrorCount {
            request_type,
            name,
            error,
            occurrences,
        })
        .collect();
    errors.sort_by_key(|e| std::cmp::Reverse(e.occurrences));

    let per_name_stats = names
        .iter()
        .map(|(name, &(count, failures, response_bytes, retries))| {
            let empty = new_histogram();
            let h = per_name.get(name).unwrap_or(&empty);
            let mut stats = name_stats(h, count, failures, duration_s);
            stats.response_bytes = response_bytes;
            stats.retries = retries;
            (name.clone(), stats)
        })
        .collect();

    let mut merged = first.clone();
    merged.totals = totals;
    merged.latency_overall = LatencyOverall {
        count: overall.len(),
        p50_ms: percentile_ms(&overall, 50.0),
        p90_ms: percentile_ms(&overall, 90.0),
        p95_ms: percentile_ms(&overall, 95.0),
        p99_ms: percentile_ms(&overall, 99.0),
        max_ms: if overall.is_empty() {
            0.0
        } else {
            ms(overall.max())
        },
    };
    merged.per_name = per_name_stats;
    merged.errors = errors;
    merged.timeline = merge_timelines(documents, &starts, earliest);
    merged.sinks = BTreeMap::new();
    merged.samples = documents
        .iter()
        .flat_map(|(_, d)| d.samples.iter().cloned())
        .collect();
    merged.histograms.overall = encode_histogram(&overall);
    merged.histograms.per_name = per_name
        .iter()
        .map(|(name, h)| (name.clone(), encode_histogram(h)))
        .collect();
    // Each test's load: the instances ran slices of it, which add up to the script's.
    for (index, load) in merged.run.load.iter_mut().enumerate() {
        for (_, document) in documents.iter().skip(1) {
            let Some(part) = document.run.load.get(index) else {
                continue;
            };
            load.users += part.users;
            load.spawn_rate += part.spawn_rate;
            load.users_started += part.users_started;
            load.duration_s = load.duration_s.max(part.duration_s);
            load.interrupted |= part.interrupted;
            // RFC 3339 UTC with milliseconds: text order is time order.
            if part.started_at < load.started_at {
                load.started_at.clone_from(&part.started_at);
            }
            if part.ended_at > load.ended_at {
                load.ended_at.clone_from(&part.ended_at);
            }
        }
    }
    merged.run.started_at = earliest.map(rfc3339_millis);
    merged.run.ended_at = latest.map(rfc3339_millis);
    merged.run.sla = None;
    merged.run.segment = None;
    merged.run.instances = Some(Value::Array(
        documents
            .iter()
            .flat_map(|(file, d)| instances_of(file, d))
            .collect(),
    ));
    Ok(merged)
}

/// The instances a document stands for: its own `run.instances` (a merged document),
/// or one entry for the instance that wrote it.
fn instances_of(file: &str, document: &Summary) -> Vec<Value> {
    if let Some(Value::Array(instances)) = &document.run.instances
        && document.run.segment.is_none()
        && instances.iter().any(|i| i.get("result").is_some())
    {
        return instances.clone();
    }
    let mut entry = match &document.run.instances {
        Some(Value::Array(list)) if list.len() == 1 => list[0].clone(),
        _ => json!({}),
    };
    if let Value::Object(map) = &mut entry {
        map.insert("result".into(), file.into());
        map.insert(
            "segment".into(),
            document.run.segment.clone().unwrap_or(Value::Null),
        );
        map.insert("started_at".into(), json!(document.run.started_at));
        map.insert("ended_at".into(), json!(document.run.ended_at));
        map.insert("requests".into(), json!(document.totals.requests));
    }
    vec![entry]
}

fn check_compatible(documents: &[(String, Summary)], force: bool) -> Result<(), MergeError> {
    let (first_name, first) = &documents[0];
    for (name, document) in &documents[1..] {
        if document.run.script != first.run.script {
            return Err(MergeError::DifferentScripts {
                first: first_name.clone(),
                first_script: first.run.script.clone().unwrap_or_default(),
                other: name.clone(),
                other_script: document.run.script.clone().unwrap_or_default(),
            });
        }
        if document.run.load.len() != first.run.load.len() {
            return Err(MergeError::DifferentTests {
                first: first_name.clone(),
                first_tests: first.run.load.len(),
                other: name.clone(),
                other_tests: document.run.load.len(),
            });
        }
    }
    if force {
        return Ok(());
    }
    // Each segment once; a document of the whole load (no segment) only alone.
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, document) in documents {
        for segment in segments_of(document) {
            if let Some(first) = seen.insert(segment.clone(), name) {
                return Err(MergeError::SameSegment {
                    first: first.to_string(),
                    other: name.clone(),
                    segment,
                });
            }
        }
    }
    Ok(())
}

/// The segments a document holds: `segment I/N`, those of its instances when it is a
/// merged document, or `the whole load`.
fn segments_of(document: &Summary) -> Vec<String> {
    if let Some(Value::String(segment)) = &document.run.segment {
        return vec![format!("segment {segment}")];
    }
    if let Some(Value::Array(instances)) = &document.run.instances {
        let segments: Vec<String> = instances
            .iter()
            .filter_map(|i| i.get("segment").and_then(Value::as_str))
            .map(|s| format!("segment {s}"))
            .collect();
        if !segments.is_empty() {
            return segments;
        }
    }
    vec!["the whole load".to_string()]
}

fn merge_timelines(
    documents: &[(String, Summary)],
    starts: &[Option<SystemTime>],
    earliest: Option<SystemTime>,
) -> Vec<TimelineEntry> {
    let mut seconds: BTreeMap<u64, TimelineEntry> = BTreeMap::new();
    for ((_, document), start) in documents.iter().zip(starts) {
        // Entry `t` is `t` seconds after the document's start: shift it onto the
        // earliest start's seconds.
        let offset = match (start, earliest) {
            (Some(start), Some(earliest)) => start
                .duration_since(earliest)
                .unwrap_or(Duration::ZERO)
                .as_secs_f64()
                .round() as u64,
            _ => 0,
        };
        for entry in &document.timeline {
            let t = entry.t + offset;
            match seconds.get_mut(&t) {
                Some(merged) => {
                    merged.users += entry.users;
                    merged.requests += entry.requests;
                    merged.failures += entry.failures;
                    merged.p50_ms = merged.p50_ms.max(entry.p50_ms);
                    merged.p95_ms = merged.p95_ms.max(entry.p95_ms);
                    merged.p99_ms = merged.p99_ms.max(entry.p99_ms);
                }
                None => {
                    let mut entry = entry.clone();
                    entry.t = t;
                    seconds.insert(t, entry);
                }
            }
        }
    }
    seconds.into_values().collect()
}

fn name_stats(h: &Histogram<u64>, count: u64, failures: u64, seconds: f64) -> NameStats {
    let empty = h.is_empty();
    NameStats {
        count,
        failures,
        rps: per_second(count, seconds),
        min_ms: if empty { 0.0 } else { ms(h.min()) },
        max_ms: if empty { 0.0 } else { ms(h.max()) },
        mean_ms: if empty { 0.0 } else { h.mean() / 1000.0 },
        p50_ms: percentile_ms(h, 50.0),
        p90_ms: percentile_ms(h, 90.0),
        p95_ms: percentile_ms(h, 95.0),
        p99_ms: percentile_ms(h, 99.0),
        response_bytes: 0,
        retries: 0,
    }
}

/// Adds `other` into `into`; the histograms auto-resize, so this cannot overflow their
/// range.
fn add(into: &mut Histogram<u64>, other: &Histogram<u64>) {
    into.auto(true);
    let _ = into.add(other);
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

fn parse_time(text: Option<&str>) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text?).ok()
}
