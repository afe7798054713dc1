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

use crate::flags::ScaleFlags;

/// The environment variable `--segment` falls back to.
pub(crate) const SEGMENT_ENV: &str = "LOADDENSITY_SEGMENT";

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

/// `--start-at`: waits until `at` with a status line. Returns false when the wait was
/// interrupted.
pub(crate) fn wait_until(executor: &Executor, at: SystemTime, status_line: bool) -> bool {
    let Ok(wait) = at.duration_since(SystemTime::now()) else {
        let late = SystemTime::now().duration_since(at).unwrap_or_default();
        tracing::warn!(
            "--start-at {} was {:.1} s ago: starting now",
            rfc3339(at),
            late.as_secs_f64()
        );
        return true;
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
    started
}

/// A wall-clock time as RFC 3339 UTC with milliseconds.
fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
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
