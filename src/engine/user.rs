//! One virtual user: a task that loops over the scenario with its own client
//! (connections, cookie jar ...) and variables, whatever the protocol.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;

use super::{RunShared, Scenario};
use crate::event::{
    Endpoint, EndpointId, Outcome, RequestEvent, ResponseParts, TraceIds, intern_endpoint,
};
use crate::listener::ListenerCache;
use crate::protocol::{ExtraEvent, Protocol, StepContext};
use crate::scenario::RenderContext;
use crate::task::retry::RetryBudget;

/// How long a user pauses after an iteration in which no task was eligible.
const IDLE_PAUSE: Duration = Duration::from_millis(10);

/// What one virtual user keeps between iterations.
pub(crate) struct VirtualUser<P: Protocol> {
    /// Its protocol client (connections, cookie jar ...).
    pub(crate) client: P::Client,
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
    /// Events a step reported besides its own (reused).
    extra: Vec<ExtraEvent>,
    /// The run's listeners, as this user last saw them.
    listeners: ListenerCache,
    /// The retries the current task has used (`retry`); kept here rather than in the
    /// iteration's future, which every user holds.
    retries: RetryBudget,
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

impl<P: Protocol> VirtualUser<P> {
    pub(crate) fn new(shared: &RunShared<P>) -> Self {
        Self {
            client: P::client(&shared.protocol),
            variables: HashMap::new(),
            csv_rows: Vec::new(),
            rng: SmallRng::from_entropy(),
            eligible: Vec::new(),
            names: NameCache::default(),
            url: String::new(),
            extra: Vec::new(),
            listeners: shared.listeners.cache(),
            retries: RetryBudget::default(),
        }
    }

    /// What this user's placeholders and conditions read: its variables, the
    /// registered ones, and this iteration's CSV rows.
    fn context<'a>(&'a mut self, scenario: &'a Scenario<P>) -> RenderContext<'a> {
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

/// How a user learns that it must stop. Checked before every task, so without a
/// lock: the run's `stopping` flag, or the user's own `retired` flag (a load shape
/// ramping down). The token wakes it from a pause.
#[derive(Clone)]
pub(super) struct UserStop {
    token: CancellationToken,
    retired: Option<Arc<AtomicBool>>,
}

impl UserStop {
    /// A user that stops with the run only (the open model's iterations).
    pub(super) fn with_run(token: CancellationToken) -> Self {
        Self {
            token,
            retired: None,
        }
    }

    /// A user that a shape may also retire on its own (`token`: a child of the run's).
    pub(super) fn retirable(token: CancellationToken) -> Self {
        Self {
            token,
            retired: Some(Arc::new(AtomicBool::new(false))),
        }
    }

    /// Stops this user after its in-flight request.
    pub(super) fn retire(&self) {
        if let Some(retired) = &self.retired {
            retired.store(true, Ordering::Relaxed);
        }
        self.token.cancel();
    }

    fn is_set<P: Protocol>(&self, shared: &RunShared<P>) -> bool {
        shared.stopping.load(Ordering::Relaxed)
            || self
                .retired
                .as_ref()
                .is_some_and(|r| r.load(Ordering::Relaxed))
    }
}

/// Runs one user (closed model) until `stop` is set or its data runs out. A
/// request in flight when the stop comes is finished and reported.
pub(super) async fn run_user<P: Protocol>(shared: Arc<RunShared<P>>, stop: UserStop) {
    shared.active_users.fetch_add(1, Ordering::Relaxed);
    let mut user = VirtualUser::new(&shared);
    while !stop.is_set(&shared) {
        // Timed only when the pause depends on it: a clock read costs ~1% of a request.
        let iteration_start = shared.plan.wait.paces().then(Instant::now);
        let floor = match run_iteration(&shared, &mut user, None, &stop).await {
            IterationEnd::Completed => Duration::ZERO,
            // Nothing was eligible to run: do not spin.
            IterationEnd::Idle => IDLE_PAUSE,
            IterationEnd::Stopped | IterationEnd::OutOfData => break,
        };
        let pause = shared
            .plan
            .wait
            .delay(
                &mut user.rng,
                iteration_start.map_or(Duration::ZERO, |start| start.elapsed()),
            )
            .max(floor);
        if pause.is_zero() {
            // An iteration that never waited (a step that fails at once) must still
            // let the runtime's timers, and so the stop, run.
            tokio::task::coop::consume_budget().await;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.token.cancelled() => break,
            }
        }
    }
    shared.active_users.fetch_sub(1, Ordering::Relaxed);
}

/// Runs the scenario once and fires one event per request. The first request's
/// latency counts from `scheduled` when given (the open model's scheduled start), so
/// a stalled target shows in the percentiles.
pub(super) async fn run_iteration<P: Protocol>(
    shared: &RunShared<P>,
    user: &mut VirtualUser<P>,
    scheduled: Option<Instant>,
    stop: &UserStop,
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
        if picked.is_empty() {
            let skipped = eligible.iter().filter(|ok| !**ok).count() as u64;
            shared
                .idle_causes
                .tasks_skipped
                .fetch_add(skipped, Ordering::Relaxed);
        }
        user.eligible = eligible;
        picked
    } else {
        scenario.pick(&mut user.rng)
    };
    let mut ran = false;
    for task in tasks {
        if stop.is_set(shared) {
            return IterationEnd::Stopped;
        }
        let mut ctx = user.context(scenario);
        if !task.should_run(&mut ctx) {
            shared
                .idle_causes
                .tasks_skipped
                .fetch_add(1, Ordering::Relaxed);
            continue;
        }
        ran = true;
        if let Some(wait) = task.wait {
            // A recorded think time: not part of the request's latency.
            scheduled = None;
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.token.cancelled() => return IterationEnd::Stopped,
            }
        }
        // `retry`: every attempt is a request event; `throttle`: each waits for a
        // token first. Neither costs anything for a task without them.
        user.retries = RetryBudget::default();
        loop {
            if let Some(throttle) = &task.throttle
                && let Some(due) = throttle.reserve()
            {
                // Waiting for a token is not part of the request's latency.
                scheduled = None;
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = stop.token.cancelled() => return IterationEnd::Stopped,
                }
            }
            // The attempt, its events, and the pause before a retry (`None`: no retry);
            // in a block, so that nothing of it is held across the pause.
            let retry_after = {
                // The request log: the URL, and the response itself for a few samples.
                let detail = shared.listeners.detail();
                let logging = detail.urls_wanted();
                let sampled = logging && detail.take_sample();
                // Trace context (`propagate`): chosen before the request, so that the step can
                // send it and the traces exporter's span carries the same ids.
                let trace = detail
                    .trace_ratio()
                    .map(|ratio| TraceIds::draw(&mut user.rng, ratio));
                user.url.clear();
                let mut ctx = StepContext::new(
                    &mut user.variables,
                    &scenario.resolver,
                    &user.csv_rows,
                    &mut user.rng,
                    &mut user.extra,
                    Instant::now(),
                )
                .with_log(&mut user.url, logging, sampled)
                .with_trace(trace);
                let outcome = P::step(&mut user.client, task, &mut ctx).await;
                // One clock read before the request: its start (unless scheduled) and the base
                // of its timeout.
                let start = scheduled.take().unwrap_or(ctx.began);
                let response_time = outcome.end.saturating_duration_since(start);
                let endpoint = match outcome.name {
                    None => Cow::Borrowed(&task.endpoint),
                    Some(name) => Cow::Owned(user.names.endpoint(&task.endpoint, name)),
                };
                if outcome.connect_failure {
                    shared
                        .idle_causes
                        .connect_failures
                        .fetch_add(1, Ordering::Relaxed);
                }
                let result = match &outcome.failure {
                    None => Outcome::Success,
                    Some(failure) => Outcome::Failure(failure),
                };
                let event = RequestEvent {
                    endpoint: &endpoint,
                    start_time: shared.wall_clock_at(start),
                    response_time,
                    response_length: outcome.response_length,
                    status: outcome.status,
                    outcome: result,
                    url: logging.then_some(user.url.as_str()),
                    response: outcome.sample.as_deref().map(|sample| ResponseParts {
                        headers: &sample.headers,
                        body: &sample.body,
                    }),
                    retry: user.retries.retrying(),
                };
                user.listeners.fire_traced(&event, trace);
                for extra in user.extra.drain(..) {
                    let result = match &extra.failure {
                        None => Outcome::Success,
                        Some(failure) => Outcome::Failure(failure),
                    };
                    user.listeners.fire(&RequestEvent {
                        endpoint: &extra.endpoint,
                        start_time: shared.wall_clock_at(extra.start),
                        response_time: extra.response_time,
                        response_length: extra.response_length,
                        status: None,
                        outcome: result,
                        url: None,
                        response: None,
                        retry: false,
                    });
                }
                match (&task.retry, &outcome.failure) {
                    (Some(policy), Some(_)) => {
                        let class = outcome.class.with_status(outcome.status);
                        policy.delay(&mut user.retries, class, &mut user.rng)
                    }
                    _ => None,
                }
            };
            let Some(delay) = retry_after else { break };
            if stop.is_set(shared) {
                return IterationEnd::Stopped;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.token.cancelled() => return IterationEnd::Stopped,
            }
        }
        if let Some(think) = &task.think_time {
            // LoadDensity's `think_time`: a pause after the task, whatever its outcome.
            let pause = think.draw(&mut user.rng);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.token.cancelled() => return IterationEnd::Stopped,
            }
        }
    }
    if ran {
        IterationEnd::Completed
    } else {
        IterationEnd::Idle
    }
}

#[cfg(test)]
mod tests {
    /// Every user's task holds this future: keep it small (an idle user must cost at
    /// most 10 KiB; bench/memory.sh measures ~4 KiB). Rare, large futures (connect,
    /// redirects) are boxed.
    #[test]
    fn user_future_stays_small() {
        let scenario = crate::engine::parse_tasks(
            &serde_json::json!([{"method": "get", "url": "http://127.0.0.1:1/"}]),
            None,
        )
        .expect("a valid task");
        let shared = std::sync::Arc::new(super::RunShared::for_tests(scenario));
        let fut = super::run_user(shared, super::UserStop::with_run(Default::default()));
        let size = std::mem::size_of_val(&fut);
        assert!(size <= 2176, "run_user future is {size} bytes");
    }

    /// The other protocols' users stay small too.
    #[test]
    fn websocket_and_socket_user_futures_stay_small() {
        use crate::engine::Scenario;
        use crate::protocol::{Protocol, socket::Socket, websocket::WebSocket};
        use crate::scenario::ResolverSnapshot;
        fn size<P: Protocol>(tasks: serde_json::Value) -> usize {
            let scenario = Scenario::<P>::parse(&tasks, None, ResolverSnapshot::default())
                .expect("valid tasks");
            let shared = std::sync::Arc::new(super::RunShared::for_tests(scenario));
            let fut = super::run_user(shared, super::UserStop::with_run(Default::default()));
            std::mem::size_of_val(&fut)
        }
        let ws = size::<WebSocket>(
            serde_json::json!([{"method": "sendrecv", "url": "ws://127.0.0.1:1/"}]),
        );
        assert!(ws <= 2048, "websocket_user future is {ws} bytes");
        let socket =
            size::<Socket>(serde_json::json!([{"protocol": "tcp", "target": "127.0.0.1:1"}]));
        assert!(socket <= 2048, "socket_user future is {socket} bytes");
        // nats_user boxes its connect, close, subscribe and request (async-nats's
        // connect future alone is large): every publish moves its step future around.
        let nats = size::<crate::protocol::nats::Nats>(
            serde_json::json!([{"method": "publish", "subject": "a", "url": "nats://127.0.0.1:1"}]),
        );
        assert!(nats <= 2560, "nats_user future is {nats} bytes");
    }
}
