//! `LD_start_socket_server` (the control socket server, see [`crate::control`]) and
//! `LD_add_package_to_executor`, which cannot exist in a Rust program.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{CheckArgs, typed};
use super::{ActionError, Args, Command, Executor};
use super::{ActionRecord, actions};
use crate::control::{
    ControlServer, DEFAULT_PORT, DocumentRunner, ServerOptions, SocketToken, TlsFiles,
};

/// LoadDensity's `start_load_density_socket_server` arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartSocketServer {
    #[serde(default = "default_host")]
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default)]
    framed: bool,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    certfile: Option<PathBuf>,
    #[serde(default)]
    keyfile: Option<PathBuf>,
}

fn default_host() -> String {
    "localhost".into()
}

fn default_port() -> u16 {
    DEFAULT_PORT
}

impl StartSocketServer {
    fn options(&self) -> Result<ServerOptions, ActionError> {
        let tls = match (&self.certfile, &self.keyfile) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ActionError::argument(
                    "keyfile",
                    "missing: TLS needs both `certfile` and `keyfile`",
                ));
            }
            (None, Some(_)) => {
                return Err(ActionError::argument(
                    "certfile",
                    "missing: TLS needs both `certfile` and `keyfile`",
                ));
            }
        };
        Ok(ServerOptions {
            host: self.host.clone(),
            port: self.port,
            framed: self.framed,
            token: self.token.clone().and_then(SocketToken::new),
            tls,
        }
        .with_env_token())
    }
}

impl CheckArgs for StartSocketServer {
    fn check(&self) -> Result<(), ActionError> {
        self.options().map(|_| ())
    }
}

fn start_socket_server(
    executor: &mut Executor,
    args: StartSocketServer,
) -> Result<Value, ActionError> {
    let options = args.options()?;
    let interrupt = executor.interrupt_token();
    if interrupt.is_cancelled() {
        return Err(ActionError::Interrupted);
    }
    let mode = match (options.framed, options.tls.is_some()) {
        (false, false) => "legacy",
        (false, true) => "legacy, TLS",
        (true, false) => "framed",
        (true, true) => "framed, TLS",
    };
    let token = if options.token.is_some() {
        ", token required"
    } else {
        ""
    };
    // A document run by a control server cannot start another: the library refuses.
    let server = ControlServer::start(options).map_err(|e| ActionError::Failed(e.to_string()))?;
    let addr = server.addr();
    executor.write_output(&format!("Server started on {addr} ({mode}{token})\n"));
    let report = server.serve(executor, &interrupt);
    executor.write_output("Server shutdown complete\n");
    Ok(json!({
        "addr": report.addr.to_string(),
        "documents": report.documents,
        "quit_by_client": report.quit_by_client,
    }))
}

/// `LD_add_package_to_executor`: importing a Python package has no meaning here.
struct AddPackage;

impl AddPackage {
    fn error() -> ActionError {
        ActionError::Failed(
            "`LD_add_package_to_executor` cannot exist in loaddensity: it imports a Python \
             package's functions as commands. Register Rust functions as commands with \
             `Executor::add_command(name, command)` in a program that uses the loaddensity library"
                .into(),
        )
    }
}

impl Command for AddPackage {
    fn validate(
        &self,
        _: &Args,
        _: &crate::scenario::ParameterResolver,
    ) -> Result<(), ActionError> {
        Err(Self::error())
    }

    fn run(&self, _: &mut Executor, _: Args) -> Result<Value, ActionError> {
        Err(Self::error())
    }
}

const START_PARAMS: &[&str] = &["host", "port", "framed", "token", "certfile", "keyfile"];

pub(super) fn register_socket_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_start_socket_server",
        typed(START_PARAMS, start_socket_server),
    );
    executor.add_command("LD_add_package_to_executor", AddPackage);
}

/// How the control server's documents are named in errors.
const SOCKET_SOURCE: &str = "<socket>";

/// The executor runs the control server's documents: one reply line per action, its
/// value (a string as is, anything else as compact JSON) or `Error: ...`.
impl DocumentRunner for Executor {
    fn runtime(&self) -> &tokio::runtime::Runtime {
        Executor::runtime(self)
    }

    fn run_document(&mut self, document: &Value) -> Vec<String> {
        if document.is_null() {
            return Vec::new();
        }
        if let Err(error) = actions(document, SOCKET_SOURCE) {
            return vec![one_line(&format!("Error: {error}"))];
        }
        self.execute_document(document, SOCKET_SOURCE)
            .iter()
            .map(record_line)
            .collect()
    }
}

fn record_line(record: &ActionRecord) -> String {
    match &record.result {
        Ok(Value::String(text)) if !text.contains('\n') => format!("{text}\n"),
        Ok(value) => format!("{value}\n"),
        Err(failure) => one_line(&format!("Error: {failure}")),
    }
}

/// `text` on one line (line breaks become spaces), ending with a newline.
fn one_line(text: &str) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    line.push('\n');
    line
}
