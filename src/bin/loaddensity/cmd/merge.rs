//! `loaddensity merge a.json b.json ... -o merged.json [--sla rules.json] [--force]`:
//! one exact result from the results of several instances.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use loaddensity::stats::{ResultDocument, SlaGateResult, merge_results};

use crate::flags::MergeArgs;
use crate::outputs::refuse_inputs;

/// Runs `loaddensity merge`.
pub(crate) fn merge(args: &MergeArgs) -> Result<ExitCode> {
    let mut inputs: Vec<PathBuf> = args.results.iter().map(PathBuf::from).collect();
    inputs.extend(args.sla.clone());
    refuse_inputs(&[("--output", Some(args.output.as_path()))], &inputs)?;
    let mut documents = Vec::new();
    for source in &args.results {
        if source == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            let stream = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
            for (i, value) in stream.enumerate() {
                let name = format!("<stdin #{}>", i + 1);
                let value = value.with_context(|| format!("{name}: malformed JSON"))?;
                let document = ResultDocument::from_json_text(&value.to_string())
                    .map_err(|e| e.in_file(&name))?;
                documents.push((name, document));
            }
        } else {
            let document = ResultDocument::read(std::path::Path::new(source))?;
            documents.push((source.clone(), document));
        }
    }
    if documents.is_empty() {
        bail!("no result documents to merge");
    }
    let mut merged = merge_results(&documents, args.force)?;
    let mut failed = false;
    if let Some(path) = &args.sla {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: malformed JSON", path.display()))?;
        let rules = value.get("rules").unwrap_or(&value);
        let rules = loaddensity::sla::parse_rules(rules)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let results = loaddensity::sla::evaluate(&rules, &merged);
        for result in &results {
            eprintln!(
                "sla {}: {}",
                if result.passed { "pass" } else { "FAIL" },
                result.reason
            );
        }
        failed = results.iter().any(|r| !r.passed);
        merged.run.sla = Some(results.iter().map(SlaGateResult::from).collect());
    }
    merged
        .write(&args.output)
        .with_context(|| "--output".to_string())?;
    let t = &merged.totals;
    eprintln!(
        "merged {} results: {} requests, {} failures, {:.0} req/s, p99 {} ms -> {}",
        documents.len(),
        t.requests,
        t.failures,
        t.rps,
        merged.latency_overall.p99_ms,
        args.output.display()
    );
    Ok(if failed {
        ExitCode::from(99)
    } else {
        ExitCode::SUCCESS
    })
}
