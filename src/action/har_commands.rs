//! `LD_load_har`, `LD_har_to_tasks` and `LD_har_to_action_json`: HAR import as
//! actions (see [`crate::har`]). Each returns its result as the action's value.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::ActionError;
use super::Executor;
use super::args::{CheckArgs, typed};
use crate::har::{Conversion, HarFilter, TestSettings, har_to_tasks, load_har};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadHar {
    file_path: PathBuf,
}
impl CheckArgs for LoadHar {}

/// The recording and the filter, shared by both conversions.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToTasks {
    /// A HAR document, or the path of a HAR file.
    har: Value,
    #[serde(default)]
    include: Option<Vec<String>>,
    #[serde(default)]
    exclude: Option<Vec<String>>,
    #[serde(default)]
    keep_think_time: bool,
}

impl ToTasks {
    fn filter(&self) -> Result<HarFilter, ActionError> {
        HarFilter::new(
            self.include.as_deref().unwrap_or_default(),
            self.exclude.as_deref().unwrap_or_default(),
            self.keep_think_time,
        )
        .map_err(|e| ActionError::argument("", e.to_string()))
    }

    fn convert(&self) -> Result<Conversion, ActionError> {
        let filter = self.filter()?;
        let loaded;
        let har = match &self.har {
            Value::String(path) => {
                loaded = load_har(path.as_ref())
                    .map_err(|e| ActionError::argument("har", e.to_string()))?;
                &loaded
            }
            Value::Object(_) => &self.har,
            other => {
                return Err(ActionError::argument(
                    "har",
                    format!("expected a HAR document (an object) or a file path, got {other}"),
                ));
            }
        };
        let conversion =
            har_to_tasks(har, &filter).map_err(|e| ActionError::argument("har", e.to_string()))?;
        for warning in &conversion.warnings {
            tracing::warn!("{warning}");
        }
        for skipped in &conversion.skipped {
            tracing::info!("HAR entry {} skipped: {}", skipped.entry, skipped.reason);
        }
        Ok(conversion)
    }
}

impl CheckArgs for ToTasks {
    fn check(&self) -> Result<(), ActionError> {
        self.filter().map(|_| ())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToActionJson {
    har: Value,
    #[serde(default)]
    include: Option<Vec<String>>,
    #[serde(default)]
    exclude: Option<Vec<String>>,
    #[serde(default)]
    keep_think_time: bool,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    user_count: Option<u32>,
    #[serde(default)]
    spawn_rate: Option<f64>,
    #[serde(default)]
    test_time: Option<f64>,
}

impl ToActionJson {
    fn split(self) -> (ToTasks, TestSettings) {
        let defaults = TestSettings::default();
        let settings = TestSettings {
            user: self.user.unwrap_or(defaults.user),
            user_count: self.user_count.unwrap_or(defaults.user_count),
            spawn_rate: self.spawn_rate.unwrap_or(defaults.spawn_rate),
            test_time: self.test_time.unwrap_or(defaults.test_time),
        };
        let tasks = ToTasks {
            har: self.har,
            include: self.include,
            exclude: self.exclude,
            keep_think_time: self.keep_think_time,
        };
        (tasks, settings)
    }

    fn check_settings(&self) -> Result<(), ActionError> {
        if self.user_count == Some(0) {
            return Err(ActionError::argument(
                "user_count",
                "expected at least 1 user",
            ));
        }
        if let Some(rate) = self.spawn_rate.filter(|r| !(*r > 0.0 && r.is_finite())) {
            return Err(ActionError::argument(
                "spawn_rate",
                format!("expected a positive number of users per second, got {rate}"),
            ));
        }
        if let Some(time) = self.test_time.filter(|t| !(*t > 0.0 && t.is_finite())) {
            return Err(ActionError::argument(
                "test_time",
                format!("expected a positive number of seconds, got {time}"),
            ));
        }
        Ok(())
    }
}

impl CheckArgs for ToActionJson {
    fn check(&self) -> Result<(), ActionError> {
        self.check_settings()?;
        HarFilter::new(
            self.include.as_deref().unwrap_or_default(),
            self.exclude.as_deref().unwrap_or_default(),
            false,
        )
        .map(|_| ())
        .map_err(|e| ActionError::argument("", e.to_string()))
    }
}

const TO_TASKS_PARAMS: &[&str] = &["har", "include", "exclude"];
const TO_ACTION_PARAMS: &[&str] = &[
    "har",
    "user",
    "user_count",
    "spawn_rate",
    "test_time",
    "include",
    "exclude",
];

pub(super) fn register_har_commands(executor: &mut Executor) {
    executor.add_command(
        "LD_load_har",
        typed(&["file_path"], |_: &mut Executor, args: LoadHar| {
            load_har(&args.file_path).map_err(|e| ActionError::argument("file_path", e.to_string()))
        }),
    );
    executor.add_command(
        "LD_har_to_tasks",
        typed(TO_TASKS_PARAMS, |_: &mut Executor, args: ToTasks| {
            Ok(Value::Array(args.convert()?.tasks))
        }),
    );
    executor.add_command(
        "LD_har_to_action_json",
        typed(TO_ACTION_PARAMS, |_: &mut Executor, args: ToActionJson| {
            let (tasks, settings) = args.split();
            tasks
                .convert()?
                .action_json(&settings)
                .map_err(|e| ActionError::argument("har", e.to_string()))
        }),
    );
}
