//! `loaddensity serve`: the control socket server (LoadDensity's `serve`), running
//! the action JSON that clients send over TCP.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use loaddensity::ExecutorOptions;
use loaddensity::control::{ControlServer, ServerOptions, SocketToken, TlsFiles};

use crate::execute::executor;
use crate::flags::ServeArgs;

/// `serve`: binds, then runs received documents until a client quits the server
/// or Ctrl-C.
pub(crate) fn serve(args: &ServeArgs, options: ExecutorOptions) -> Result<ExitCode> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let server_options = ServerOptions {
        host: args.host.clone(),
        port: args.port,
        framed: args.framed,
        token: args.token.clone().and_then(SocketToken::new),
        tls,
    }
    .with_env_token();
    let mode = format!(
        "{}{}{}",
        if args.framed { "framed" } else { "legacy" },
        if server_options.tls.is_some() {
            ", TLS"
        } else {
            ""
        },
        if server_options.token.is_some() {
            ", token required"
        } else {
            ""
        }
    );
    let server = ControlServer::start(server_options)?;
    let mut executor = executor(options)?;
    let interrupt = executor.interrupt_token();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "Server started on {} ({mode})", server.addr())?;
    let report = server.serve(&mut executor, &interrupt);
    writeln!(
        stdout,
        "Server shutdown complete ({} documents run)",
        report.documents
    )?;
    Ok(ExitCode::SUCCESS)
}
