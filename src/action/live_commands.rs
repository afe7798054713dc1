//! `LD_start_dashboard` / `LD_stop_dashboard` (LoadDensity's live dashboard, see
//! [`crate::live`]) and `LD_start_test`'s `web_ui_dict`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::args::{CheckArgs, NoArgs, typed};
use super::{ActionError, Executor};
use crate::live::{BasicAuth, DASHBOARD_PORT, DEFAULT_HOST, LiveOptions, WEB_UI_PORT};

/// Registers the commands of this module.
pub(super) fn register_live_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_start_dashboard",
        typed(
            &["host", "port", "refresh_seconds", "window_seconds"],
            start_dashboard,
        ),
    );
    executor.add_command(
        "LD_stop_dashboard",
        typed(&[], |ex, _: NoArgs| {
            let stopped = ex.context().live().stop_dashboard();
            Ok(json!({"stopped": stopped.map(|a| a.to_string())}))
        }),
    );
}

/// `LD_start_dashboard`'s arguments, with LoadDensity's names and defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartDashboard {
    #[serde(default = "default_host")]
    host: String,
    #[serde(default = "default_dashboard_port")]
    port: u16,
    #[serde(default = "one")]
    refresh_seconds: f64,
    #[serde(default = "ten")]
    window_seconds: f64,
}

fn default_host() -> String {
    DEFAULT_HOST.into()
}
fn default_dashboard_port() -> u16 {
    DASHBOARD_PORT
}
fn one() -> f64 {
    1.0
}
fn ten() -> f64 {
    10.0
}

impl StartDashboard {
    fn options(&self) -> LiveOptions {
        LiveOptions {
            host: self.host.clone(),
            port: self.port,
            refresh_seconds: self.refresh_seconds,
            window_seconds: self.window_seconds,
            ..LiveOptions::dashboard()
        }
    }
}

impl CheckArgs for StartDashboard {
    fn check(&self) -> Result<(), ActionError> {
        self.options().check().map(|_| ()).map_err(live_error)
    }
}

/// A live server's error as an action error naming its field.
fn live_error(error: crate::live::LiveError) -> ActionError {
    use crate::live::LiveError;
    match &error {
        LiveError::InvalidSeconds { field, value } => ActionError::argument(
            *field,
            format!("expected a finite positive number of seconds, got {value}"),
        ),
        LiveError::InvalidHost(host) => ActionError::argument(
            "host",
            format!("`{host}` is not an IP address (expected e.g. 127.0.0.1, 0.0.0.0 or ::1)"),
        ),
        _ => ActionError::Failed(error.to_string()),
    }
}

fn start_dashboard(executor: &mut Executor, args: StartDashboard) -> Result<Value, ActionError> {
    let addr = executor
        .context()
        .live()
        .start_dashboard(executor.stats(), args.options())
        .map_err(live_error)?;
    Ok(json!({"addr": addr.to_string(), "url": format!("http://{addr}/")}))
}

/// `LD_start_test`'s `web_ui_dict`: `host` and `port` as in LoadDensity (`{}`: the
/// defaults, 127.0.0.1:8089), and `auth` (`user:password`), which any address but
/// loopback needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WebUiDict {
    #[serde(default = "default_host")]
    host: String,
    #[serde(default = "default_web_port")]
    port: u16,
    #[serde(default)]
    auth: Option<String>,
}

fn default_web_port() -> u16 {
    WEB_UI_PORT
}

impl WebUiDict {
    /// The web UI's options, checked.
    pub(super) fn options(&self) -> Result<LiveOptions, ActionError> {
        let auth = match &self.auth {
            None => None,
            Some(text) => Some(BasicAuth::parse(text).ok_or_else(|| {
                ActionError::argument(
                    "web_ui_dict.auth",
                    "expected USER:PASSWORD with neither empty",
                )
            })?),
        };
        let options = LiveOptions {
            host: self.host.clone(),
            port: self.port,
            auth,
            ..LiveOptions::web_ui()
        };
        options.check().map_err(|e| match e {
            crate::live::LiveError::InvalidHost(host) => ActionError::argument(
                "web_ui_dict.host",
                format!("`{host}` is not an IP address (expected e.g. 127.0.0.1 or ::1)"),
            ),
            other => ActionError::argument("web_ui_dict", other.to_string()),
        })?;
        Ok(options)
    }
}
