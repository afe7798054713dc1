//! `loaddensity target`: serves the built-in target until Ctrl-C or SIGTERM.

use std::process::ExitCode;

use anyhow::{Context, Result};
use loaddensity::ExecutorOptions;

use crate::execute::executor;

/// `target --addr IP:PORT`.
pub(crate) fn serve_target(addr: &str, options: ExecutorOptions) -> Result<ExitCode> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .with_context(|| format!("--addr `{addr}`: expected IP:PORT"))?;
    let executor = executor(options)?;
    let interrupt = executor.interrupt_token();
    executor.runtime().block_on(async {
        let server = loaddensity::target::TargetServer::start(addr)
            .await
            .with_context(|| format!("cannot bind {addr}"))?;
        eprintln!("target listening on http://{}", server.addr());
        interrupt.cancelled().await;
        server.stop().await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
