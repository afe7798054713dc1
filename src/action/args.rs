//! An action's arguments and their strict parsing into typed structs, and the
//! helper that makes a command from such a struct ([`typed`]).

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{ActionError, ArgumentSpec, Command, Executor};
use crate::scenario::ParameterResolver;

/// The arguments of one action: none, keyword arguments, or positional ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Args {
    /// `["NAME"]`.
    #[default]
    None,
    /// `["NAME", {kwargs}]`.
    Named(Map<String, Value>),
    /// `["NAME", [args]]`.
    Positional(Vec<Value>),
}

impl Args {
    /// Parses into `T`, mapping positional arguments onto `params` in order. Unknown
    /// names, wrong types and missing fields are errors naming the field (when `T`
    /// denies unknown fields).
    pub fn parse<T: DeserializeOwned>(&self, params: &[&str]) -> Result<T, ActionError> {
        let map = self.named(params)?;
        serde_path_to_error::deserialize(Value::Object(map)).map_err(|error| {
            ActionError::argument(error.path().to_string(), error.inner().to_string())
        })
    }

    /// The arguments as keyword arguments, positional ones named by `params` in order.
    pub fn named(&self, params: &[&str]) -> Result<Map<String, Value>, ActionError> {
        Ok(match self {
            Args::None => Map::new(),
            Args::Named(map) => map.clone(),
            Args::Positional(values) => {
                if values.len() > params.len() {
                    return Err(ActionError::argument(
                        "",
                        format!(
                            "takes at most {} positional arguments ({}), got {}",
                            params.len(),
                            params.join(", "),
                            values.len()
                        ),
                    ));
                }
                params
                    .iter()
                    .zip(values)
                    .map(|(name, value)| (name.to_string(), value.clone()))
                    .collect()
            }
        })
    }
}

/// Argument structs that can check themselves beyond their types.
pub(super) trait CheckArgs {
    /// Checks what the types cannot say (ranges, files that must exist, ...).
    fn check(&self) -> Result<(), ActionError> {
        Ok(())
    }
}

/// A command whose arguments parse into `A`, with `params` naming positional ones.
pub(super) struct Typed<A, F> {
    params: &'static [&'static str],
    run: F,
    _args: PhantomData<fn() -> A>,
}

impl<A, F> Command for Typed<A, F>
where
    A: DeserializeOwned + CheckArgs,
    F: Fn(&mut Executor, A) -> Result<Value, ActionError> + Send + Sync,
{
    fn validate(&self, args: &Args, _: &ParameterResolver) -> Result<(), ActionError> {
        args.parse::<A>(self.params)?.check()
    }

    fn run(&self, executor: &mut Executor, args: Args) -> Result<Value, ActionError> {
        let args = args.parse::<A>(self.params)?;
        args.check()?;
        (self.run)(executor, args)
    }

    fn arguments(&self) -> ArgumentSpec {
        ArgumentSpec::of::<A>(self.params)
    }
}

/// A command of `run`, whose arguments are parsed into `A` (positional ones named by
/// `params`) and checked before it runs.
pub(super) fn typed<A, F>(params: &'static [&'static str], run: F) -> Typed<A, F>
where
    A: DeserializeOwned + CheckArgs,
    F: Fn(&mut Executor, A) -> Result<Value, ActionError> + Send + Sync,
{
    Typed {
        params,
        run,
        _args: PhantomData,
    }
}

/// No arguments at all.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoArgs {}
impl CheckArgs for NoArgs {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Sleep {
        seconds: f64,
        #[serde(default)]
        note: Option<String>,
    }

    #[test]
    fn named_positional_and_errors() {
        let named = Args::Named(
            json!({"seconds": 1.5})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert_eq!(
            named.parse::<Sleep>(&["seconds"]).ok(),
            Some(Sleep {
                seconds: 1.5,
                note: None
            })
        );
        let positional = Args::Positional(vec![json!(2), json!("x")]);
        assert_eq!(
            positional.parse::<Sleep>(&["seconds", "note"]).ok(),
            Some(Sleep {
                seconds: 2.0,
                note: Some("x".into())
            })
        );
        let wrong = Args::Named(
            json!({"seconds": "a"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let e = wrong.parse::<Sleep>(&["seconds"]).expect_err("type");
        assert!(
            e.to_string().starts_with("field `seconds`: invalid type"),
            "{e}"
        );
        let unknown = Args::Named(json!({"secs": 1}).as_object().cloned().unwrap_or_default());
        let e = unknown.parse::<Sleep>(&["seconds"]).expect_err("unknown");
        assert!(e.to_string().contains("unknown field `secs`"), "{e}");
        let e = Args::None
            .parse::<Sleep>(&["seconds"])
            .expect_err("missing");
        assert!(e.to_string().contains("missing field `seconds`"), "{e}");
        let e = Args::Positional(vec![json!(1), json!(2), json!(3)])
            .parse::<Sleep>(&["seconds", "note"])
            .expect_err("too many");
        assert!(e.to_string().contains("at most 2"), "{e}");
    }
}
