//! `loaddensity run` flags for running many instances of one test: the execution
//! segment, the instance name, the start barrier and Prometheus remote write.

use std::io::Write as _;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use loaddensity::Executor;
use loaddensity::Segment;
use loaddensity::instance::{host_name, set_instance_name};
use loaddensity::sinks::prometheus_remote_write::{
    RemoteWriteOptions, prometheus_remote_write_report, start_prometheus_remote_write,
};

/// The environment variable `--segment` falls back to.
pub(crate) const SEGMENT_ENV: &str = "LOADDENSITY_SEGMENT";

/// Scale-out flags of `loaddensity run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ScaleFlags {
    /// Run execution segment I of N (0-based): this instance's share of the users,
    /// 1/N of the rates, and CSV rows I, I+N, ... (also LOADDENSITY_SEGMENT=I/N).
    #[arg(long, value_name = "I/N")]
    pub(crate) segment: Option<Segment>,
    /// Parse and validate the script and open the sinks, then wait until this
    /// wall-clock time before the first test: RFC 3339 (2026-01-31T12:00:00Z) or
    /// relative (+30s, +2m).
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    pub(crate) start_at: Option<SystemTime>,
    /// This instance's name in the metric sinks (InfluxDB `instance` tag,
    /// OpenTelemetry `service.instance.id`, remote-write `instance` label). Default
    /// with --segment: the host name (the pod name on Kubernetes).
    #[arg(long, value_name = "NAME")]
    pub(crate) instance: Option<String>,
    /// Push metrics to this Prometheus remote-write URL every 5 s and at the end,
    /// e.g. http://prometheus:9090/api/v1/write.
    #[arg(long, value_name = "URL")]
    pub(crate) prometheus_remote_write: Option<String>,
}

/// Resolves the segment (flag, then environment) and the instance name, before any
/// sink starts, and applies them to the executor.
pub(crate) fn configure(executor: &mut Executor, flags: &ScaleFlags) -> Result<()> {
    let segment = match flags.segment {
        Some(segment) => Some(segment),
        None => match std::env::var(SEGMENT_ENV) {
            Ok(text) if !text.trim().is_empty() => Some(
                text.parse::<Segment>()
                    .with_context(|| SEGMENT_ENV.to_string())?,
            ),
            _ => None,
        },
    };
    let instance = match (&flags.instance, segment) {
        (Some(name), _) => Some(name.clone()),
        (None, Some(_)) => Some(host_name()),
        (None, None) => None,
    };
    if let Some(segment) = segment {
        tracing::info!(
            "segment {segment}: instance {} of {}, named `{}`",
            segment.index(),
            segment.count(),
            instance.as_deref().unwrap_or("")
        );
    }
    executor.set_segment(segment);
    set_instance_name(instance);
    if let Some(url) = &flags.prometheus_remote_write {
        start_prometheus_remote_write(
            executor.sinks(),
            &RemoteWriteOptions {
                url: url.clone(),
                ..RemoteWriteOptions::default()
            },
        )
        .with_context(|| "--prometheus-remote-write".to_string())?;
        executor.set_sink_report(
            "prometheus_remote_write",
            Some(Box::new(prometheus_remote_write_report)),
        );
    }
    Ok(())
}

/// `--start-at`: checks every document, then waits until `at` with a status line.
/// Returns false (nothing to run) when a document is invalid or the wait was
/// interrupted.
pub(crate) fn wait_for_start(
    executor: &Executor,
    documents: &[(String, serde_json::Value)],
    at: SystemTime,
    status_line: bool,
) -> Result<bool> {
    let mut problems = 0;
    for (name, document) in documents {
        match executor.validate_document(document, name) {
            Ok(failures) => {
                for failure in &failures {
                    eprintln!("error: {failure}");
                }
                problems += failures.len();
            }
            Err(error) => {
                eprintln!("error: {error}");
                problems += 1;
            }
        }
    }
    if problems > 0 {
        eprintln!("error: --start-at: the script has {problems} problem(s); not starting");
        return Ok(false);
    }
    let Ok(wait) = at.duration_since(SystemTime::now()) else {
        let late = SystemTime::now().duration_since(at).unwrap_or_default();
        tracing::warn!(
            "--start-at {} was {:.1} s ago: starting now",
            rfc3339(at),
            late.as_secs_f64()
        );
        return Ok(true);
    };
    tracing::info!(
        "waiting until {} ({:.1} s) before starting",
        rfc3339(at),
        wait.as_secs_f64()
    );
    let interrupt = executor.interrupt_token();
    let started = executor.runtime().block_on(async {
        let deadline = tokio::time::Instant::now() + wait;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break true,
                () = interrupt.cancelled() => break false,
                _ = ticker.tick(), if status_line => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let mut stderr = std::io::stderr().lock();
                    let _ = write!(stderr, "\rstarting at {} in {:>4} s ", rfc3339(at), left.as_secs());
                    let _ = stderr.flush();
                }
            }
        }
    });
    if status_line {
        eprintln!();
    }
    Ok(started)
}

/// A wall-clock time as RFC 3339 UTC with milliseconds.
fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// `--start-at`: RFC 3339 (`2026-01-31T12:00:00Z`, `...+02:00`) or `+DURATION`
/// relative to now (`+30s`, `+2m`, `+500ms`).
pub(crate) fn parse_start_at(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    if let Some(relative) = text.strip_prefix('+') {
        let delay = humantime::parse_duration(relative)
            .map_err(|e| format!("`{text}`: expected +DURATION such as +30s or +2m ({e})"))?;
        return Ok(SystemTime::now() + delay);
    }
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!(
                "`{text}`: expected an RFC 3339 time such as 2026-01-31T12:00:00Z, or +30s ({e})"
            )
        })?;
    Ok(SystemTime::from(parsed))
}

/// Prints the slice of each `LD_start_test` for `validate --segment`; returns the
/// number of tests that are invalid for that segment.
pub(crate) fn print_segment_slices(
    document: &serde_json::Value,
    name: &str,
    segment: &Segment,
) -> Result<usize> {
    let slices = loaddensity::action::segment_slices(document, name, segment)?;
    let mut problems = 0;
    if slices.is_empty() {
        eprintln!("{name}: segment {segment}: no LD_start_test");
    }
    for (index, slice) in slices {
        match slice {
            Ok(text) => eprintln!("{name}: action {index}: segment {segment}: {text}"),
            Err(error) => {
                eprintln!("error: {name}: action {index}: segment {segment}: {error}");
                problems += 1;
            }
        }
    }
    Ok(problems)
}

/// Refuses a segment given twice in different ways.
pub(crate) fn check_flags(flags: &ScaleFlags) -> Result<()> {
    if let (Some(flag), Ok(env)) = (flags.segment, std::env::var(SEGMENT_ENV))
        && !env.trim().is_empty()
        && env.trim().parse::<Segment>().ok() != Some(flag)
    {
        bail!("--segment {flag} and {SEGMENT_ENV}={env} disagree; give one");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::parse_start_at;

    #[test]
    fn start_times() {
        let at = parse_start_at("2026-01-31T12:00:00Z").expect("parses");
        assert_eq!(
            at.duration_since(SystemTime::UNIX_EPOCH).expect("after"),
            Duration::from_secs(1_769_860_800)
        );
        let offset = parse_start_at("2026-01-31T14:00:00.500+02:00").expect("parses");
        assert_eq!(
            offset.duration_since(at).expect("after"),
            Duration::from_millis(500)
        );
        let soon = parse_start_at("+30s").expect("parses");
        let left = soon.duration_since(SystemTime::now()).expect("future");
        assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30));
        for bad in ["tomorrow", "+abc", "2026-01-31 12:00", "12:00:00Z"] {
            assert!(parse_start_at(bad).is_err(), "{bad}");
        }
    }
}
