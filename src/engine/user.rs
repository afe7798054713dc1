//! One virtual user: a task that loops over the scenario with its own connection,
//! cookie jar and variables.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;

use super::RunShared;
use crate::event::{Endpoint, EndpointId, Outcome, RequestEvent, ResponseParts, intern_endpoint};
use crate::http::{Capture, PreparedRequest, Response, Session};
use crate::request_log;
use crate::scenario::{RenderContext, ResponseView, Scenario};
use crate::task::{Rendered, Task};

/// How long a user pauses after an iteration in which no task was eligible.
const IDLE_PAUSE: Duration = Duration::from_millis(10);

/// What one virtual user keeps between iterations.
pub(crate) struct VirtualUser {
    /// Its connections and cookie jar.
    pub(crate) session: Session,
    /// Variables it extracted from responses (looked up before the registered ones).
    variables: HashMap<String, String>,
    /// This iteration's row of each CSV source (`usize::MAX`: none).
    csv_rows: Vec<usize>,
    rng: SmallRng,
    /// Weighted mode with conditions: which tasks may run this iteration (reused).
    eligible: Vec<bool>,
    /// Endpoints of templated task names, so that the process-wide interner (a
    /// mutex) is not taken on every request.
    names: NameCache,
    /// The current request's URL, for the request log (reused buffer).
    url: String,
}

/// The endpoints one user rendered task names to, by (task endpoint, rendered name).
#[derive(Default)]
struct NameCache(HashMap<(EndpointId, String), Arc<Endpoint>>);

/// Names a user remembers; past this (names with ids in them) the cache starts over.
const NAME_CACHE_LIMIT: usize = 1024;

impl NameCache {
    fn endpoint(&mut self, task: &Endpoint, name: String) -> Arc<Endpoint> {
        let key = (task.id, name);
        if let Some(found) = self.0.get(&key) {
            return found.clone();
        }
        if self.0.len() >= NAME_CACHE_LIMIT {
            self.0.clear();
        }
        let endpoint = intern_endpoint(&task.request_type, &key.1);
        self.0.insert(key, endpoint.clone());
        endpoint
    }
}

impl VirtualUser {
    pub(crate) fn new(shared: &RunShared) -> Self {
        Self {
            session: Session::new(shared.tls.clone()),
            variables: HashMap::new(),
            csv_rows: Vec::new(),
            rng: SmallRng::from_entropy(),
            eligible: Vec::new(),
            names: NameCache::default(),
            url: String::new(),
        }
    }

    /// What this user's placeholders and conditions read: its variables, the
    /// registered ones, and this iteration's CSV rows.
    fn context<'a>(&'a mut self, scenario: &'a Scenario) -> RenderContext<'a> {
        RenderContext::new(&self.variables, &scenario.resolver.variables, &mut self.rng)
            .with_csv(&scenario.resolver.tables, &self.csv_rows)
    }
}

/// How an iteration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IterationEnd {
    /// Every picked task ran (or was skipped by its condition).
    Completed,
    /// No task was eligible to run.
    Idle,
    /// The user was stopped midway.
    Stopped,
    /// A CSV source that does not cycle has no rows left; the user stops.
    OutOfData,
}

/// Runs one user (closed model) until `stop` is cancelled or its data runs out. A
/// request in flight when the stop comes is finished and reported.
pub(super) async fn run_user(shared: Arc<RunShared>, stop: CancellationToken) {
    shared.active_users.fetch_add(1, Ordering::Relaxed);
    let mut user = VirtualUser::new(&shared);
    while !stop.is_cancelled() {
        let iteration_start = Instant::now();
        let floor = match run_iteration(&shared, &mut user, None, &stop).await {
            IterationEnd::Completed => Duration::ZERO,
            // Nothing was eligible to run: do not spin.
            IterationEnd::Idle => IDLE_PAUSE,
            IterationEnd::Stopped | IterationEnd::OutOfData => break,
        };
        let pause = shared
            .plan
            .wait
            .delay(&mut user.rng, iteration_start.elapsed())
            .max(floor);
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => break,
            }
        }
    }
    shared.active_users.fetch_sub(1, Ordering::Relaxed);
}

/// Runs the scenario once and fires one event per request. The first request's
/// latency counts from `scheduled` when given (the open model's scheduled start), so
/// a stalled target shows in the percentiles.
pub(super) async fn run_iteration(
    shared: &RunShared,
    user: &mut VirtualUser,
    scheduled: Option<Instant>,
    stop: &CancellationToken,
) -> IterationEnd {
    let scenario = &*shared.plan.scenario;
    if !scenario.csv_sources.is_empty() {
        user.csv_rows
            .resize(scenario.resolver.tables.len(), usize::MAX);
        for &source in &scenario.csv_sources {
            match scenario.resolver.tables.next_row(source) {
                Some(row) => user.csv_rows[source] = row,
                None => {
                    shared.out_of_data.cancel();
                    return IterationEnd::OutOfData;
                }
            }
        }
    }
    let mut scheduled = scheduled;
    let tasks = if scenario.conditional_weights {
        let mut eligible = std::mem::take(&mut user.eligible);
        eligible.clear();
        let mut ctx = user.context(scenario);
        eligible.extend(scenario.tasks.iter().map(|t| t.should_run(&mut ctx)));
        let picked = scenario.pick_eligible(&eligible, &mut user.rng);
        user.eligible = eligible;
        picked
    } else {
        scenario.pick(&mut user.rng)
    };
    let mut ran = false;
    for task in tasks {
        if stop.is_cancelled() {
            return IterationEnd::Stopped;
        }
        let mut ctx = user.context(scenario);
        if !task.should_run(&mut ctx) {
            continue;
        }
        ran = true;
        let start = scheduled.take().unwrap_or_else(Instant::now);
        let (mut request, name) = match task.render(&mut ctx) {
            Ok(rendered) => rendered,
            Err(message) => {
                let failure = format!("template: {message}");
                let response_time = start.elapsed();
                let outcome = Outcome::Failure(&failure);
                fire(
                    shared,
                    &task.endpoint,
                    start,
                    response_time,
                    None,
                    0,
                    outcome,
                    None,
                    None,
                );
                continue;
            }
        };
        // The request log: the URL, and the response itself for a few samples.
        let logging = request_log::is_active();
        let sampled = logging && request_log::sample_wanted();
        if logging {
            request_log::write_url(&mut user.url, &request.target);
            if sampled {
                request = Rendered::Owned(Box::new(PreparedRequest {
                    capture: Capture {
                        headers: true,
                        body: true,
                    },
                    ..(*request).clone()
                }));
            }
        }
        let result = user.session.execute(&request).await;
        let response_time = start.elapsed();
        drop(request);
        let endpoint = match name {
            None => Cow::Borrowed(&task.endpoint),
            Some(name) => Cow::Owned(user.names.endpoint(&task.endpoint, name)),
        };
        let failure_text;
        let (status, response_length, outcome) = match &result {
            Ok(response) => {
                let verdict = judge(task, response, user, scenario);
                let status = Some(response.status.as_u16());
                match verdict {
                    Ok(()) => (status, response.body_len, Outcome::Success),
                    Err(message) => {
                        failure_text = message;
                        (status, response.body_len, Outcome::Failure(&failure_text))
                    }
                }
            }
            Err(error) => {
                failure_text = error.to_string();
                (None, 0, Outcome::Failure(&failure_text))
            }
        };
        let response = match &result {
            Ok(response) if sampled => Some(ResponseParts {
                headers: &response.headers,
                body: &response.body[..response.body.len().min(request_log::SAMPLE_BODY)],
            }),
            _ => None,
        };
        fire(
            shared,
            &endpoint,
            start,
            response_time,
            status,
            response_length,
            outcome,
            logging.then_some(user.url.as_str()),
            response,
        );
    }
    if ran {
        IterationEnd::Completed
    } else {
        IterationEnd::Idle
    }
}

/// Success or the failure text of a response: by the task's assertions when it has
/// any, else by status (>= 400 fails). A success runs the task's extractors.
fn judge(
    task: &Task,
    response: &Response,
    user: &mut VirtualUser,
    scenario: &Scenario,
) -> Result<(), String> {
    let status = response.status.as_u16();
    if task.assertions.is_empty() && task.extract.is_empty() {
        return status_verdict(response);
    }
    let view = ResponseView::new(status, &response.headers, &response.body);
    if task.assertions.is_empty() {
        status_verdict(response)?;
    } else {
        let mut ctx =
            RenderContext::new(&user.variables, &scenario.resolver.variables, &mut user.rng)
                .with_csv(&scenario.resolver.tables, &user.csv_rows);
        for assertion in &task.assertions {
            assertion.check(&view, &mut ctx)?;
        }
    }
    for extractor in &task.extract {
        if let Some(value) = extractor.extract(&view) {
            user.variables.insert(extractor.var.clone(), value);
        }
    }
    Ok(())
}

fn status_verdict(response: &Response) -> Result<(), String> {
    if response.status.as_u16() < 400 {
        Ok(())
    } else {
        Err(format!(
            "HTTP {} {}",
            response.status.as_u16(),
            response.status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_string())
    }
}

#[allow(clippy::too_many_arguments)]
fn fire(
    shared: &RunShared,
    endpoint: &Arc<Endpoint>,
    start: Instant,
    response_time: std::time::Duration,
    status: Option<u16>,
    response_length: u64,
    outcome: Outcome<'_>,
    url: Option<&str>,
    response: Option<ResponseParts<'_>>,
) {
    let start_time: SystemTime = shared.wall_clock_at(start);
    shared.listeners.fire(&RequestEvent {
        endpoint,
        start_time,
        response_time,
        response_length,
        status,
        outcome,
        url,
        response,
    });
}

#[cfg(test)]
mod tests {
    /// Every user's task holds this future: keep it small (10,000 users must fit in
    /// 20 KiB each; see bench/memory.sh). Rare, large futures (connect, redirects)
    /// are boxed.
    #[test]
    fn user_future_stays_small() {
        let shared = std::sync::Arc::new(super::RunShared::for_tests());
        let fut = super::run_user(shared, tokio_util::sync::CancellationToken::new());
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 2048, "run_user future is {size} bytes");
    }
}
