//! `loaddensity import-har`: turns a HAR recording (Chrome/Firefox DevTools,
//! mitmproxy, Charles) into an action script.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use loaddensity::har::{HarFilter, TestSettings, har_to_tasks, load_har};
use loaddensity::output::{OutputError, write_atomically, write_new};

use crate::flags::ImportHarArgs;
use crate::outputs::refuse_inputs;

/// `import-har`: writes the action script and reports what was left out.
pub(crate) fn import_har(args: &ImportHarArgs) -> Result<ExitCode> {
    refuse_inputs(
        &[("-o", args.output.as_deref())],
        std::slice::from_ref(&args.har),
    )?;
    if let Some(path) = &args.output
        && !args.force
        && path.symlink_metadata().is_ok()
    {
        bail!(
            "-o {}: already exists; give --force to replace it",
            path.display()
        );
    }
    let har = load_har(&args.har)?;
    let filter = HarFilter::new(&args.include, &args.exclude, args.keep_think_time)?;
    let conversion = har_to_tasks(&har, &filter).with_context(|| args.har.display().to_string())?;
    for skipped in &conversion.skipped {
        eprintln!("skipped entry {}: {}", skipped.entry, skipped.reason);
    }
    for warning in &conversion.warnings {
        eprintln!("warning: {warning}");
    }
    let settings = TestSettings {
        user: args.user.clone(),
        user_count: args.users,
        spawn_rate: args.spawn_rate,
        test_time: args.test_time,
    };
    let script = conversion
        .action_json(&settings)
        .with_context(|| args.har.display().to_string())?;
    let text = serde_json::to_string_pretty(&script)? + "\n";
    match &args.output {
        // Whole or not at all; without --force, never over a file that appeared since.
        Some(path) if args.force => write_atomically(path, text.as_bytes())?,
        Some(path) => write_new(path, text.as_bytes()).map_err(|e| match e {
            OutputError::Exists { .. } => {
                anyhow::anyhow!("-o {e}; give --force to replace it")
            }
            other => other.into(),
        })?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("cannot write to standard output")?,
    }
    eprintln!(
        "{} tasks{} ({} excluded by --include/--exclude, {} skipped)",
        conversion.tasks.len(),
        args.output
            .as_ref()
            .map(|p| format!(" written to {}", p.display()))
            .unwrap_or_default(),
        conversion.filtered,
        conversion.skipped.len()
    );
    Ok(ExitCode::SUCCESS)
}
