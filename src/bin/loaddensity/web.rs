//! `loaddensity run --web [ADDR:]PORT`: the web UI for the whole script, kept up
//! after it until Ctrl-C so that a person can read the final numbers.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use loaddensity::Executor;
use loaddensity::live::{BasicAuth, LiveOptions};
use serde_json::{Value, json};

use crate::flags::PrometheusFlag;

/// Where credentials come from when `--web-auth` is not given.
const AUTH_ENV: &str = "LOADDENSITY_WEB_AUTH";

/// Starts the web UI for `--web`; returns its address.
pub(crate) fn start(
    executor: &Executor,
    flag: Option<&PrometheusFlag>,
    auth: Option<&str>,
) -> Result<Option<SocketAddr>> {
    let Some(flag) = flag else {
        return Ok(None);
    };
    let from_env = std::env::var(AUTH_ENV).ok().filter(|a| !a.is_empty());
    let auth = match auth.map(str::to_string).or(from_env) {
        None => None,
        Some(text) => match BasicAuth::parse(&text) {
            Some(auth) => Some(auth),
            None => bail!("--web-auth: expected USER:PASSWORD with neither empty"),
        },
    };
    let options = LiveOptions {
        host: flag.addr.clone(),
        port: flag.port,
        auth,
        ..LiveOptions::web_ui()
    };
    let addr = executor
        .context()
        .live()
        .start_web_ui(executor.stats(), options, false)
        .with_context(|| format!("--web {}:{}", flag.addr, flag.port))?;
    eprintln!("web UI: http://{addr}/");
    Ok(Some(addr))
}

/// Keeps the web UI up after the script until Ctrl-C (or SIGTERM), then stops it.
/// Meanwhile the UI's `/swarm` starts the script's last test again with the posted
/// user count and spawn rate, its statistics reset first as Locust's are.
pub(crate) fn serve_until_interrupted(executor: &mut Executor, addr: SocketAddr) {
    let interrupt = executor.interrupt_token();
    let live = executor.context().live().run().clone();
    if !interrupt.is_cancelled() {
        live.reruns().accept(true);
        eprintln!("the script has ended; the web UI stays on http://{addr}/ until Ctrl-C");
    }
    while !interrupt.is_cancelled() {
        let next = executor.runtime().block_on(async {
            tokio::select! {
                () = interrupt.cancelled() => None,
                args = live.reruns().next() => Some(args),
            }
        });
        let Some(args) = next else { break };
        eprintln!(
            "web UI: starting the last test again with {} users",
            args.get("user_count").unwrap_or(&Value::Null)
        );
        executor.stats().reset_counts();
        let document = json!({"load_density": [["LD_start_test", Value::Object(args)]]});
        // A failure is reported on stderr; the exit code stays the script's.
        executor.execute_document(&document, "web UI /swarm");
    }
    live.reruns().accept(false);
    executor.context().live().stop_web_ui();
}
