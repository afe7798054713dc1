//! deploy/kubernetes/: the manifests pass the Kubernetes schemas (the
//! `kubernetes-validate` package, which bundles them and works offline), and the
//! Indexed Job's exact pod command, run N times here with `JOB_COMPLETION_INDEX` set
//! as Kubernetes would, produces N results whose segments add up to the script.
//!
//! Needs python3 with `kubernetes-validate` (scripts/test installs it).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::{Target, Workdir, bin, closed_port, read_json, stderr};
use serde_json::Value;

fn manifests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// A YAML file as JSON, read by Python's yaml module (installed with
/// kubernetes-validate).
fn yaml(path: &Path) -> Value {
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "cannot read {} with python3's yaml (pip install kubernetes-validate): {}",
        path.display(),
        stderr(&output)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[test]
fn manifests_pass_the_kubernetes_schemas() {
    let files = manifests();
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        let output = Command::new("kubernetes-validate")
            .arg("--strict")
            .arg(file)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("kubernetes-validate: {e} (scripts/test installs it with pip)")
            });
        let text = format!("{}{}", stderr(&output), common::stdout(&output));
        assert!(
            output.status.success() && text.contains("passed"),
            "{}: {text}",
            file.display()
        );
    }
    // The validator does fail a broken manifest.
    let work = Workdir::new();
    let job = std::fs::read_to_string(
        files
            .iter()
            .find(|f| f.ends_with("job.yaml"))
            .expect("job.yaml"),
    )
    .expect("read");
    let broken = work.write(
        "job.yaml",
        &job.replace("completionMode: Indexed", "completionMode: 7"),
    );
    let output = Command::new("kubernetes-validate")
        .arg("--strict")
        .arg(&broken)
        .output()
        .expect("kubernetes-validate");
    assert!(!output.status.success());
}

/// Replaces `$(NAME)` as Kubernetes does in a container's args.
fn expand(arg: &str, env: &[(&str, String)]) -> String {
    let mut out = arg.to_string();
    for (name, value) in env {
        out = out.replace(&format!("$({name})"), value);
    }
    out
}

#[test]
fn the_indexed_job_runs_here_and_its_segments_add_up() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let job = yaml(&root.join("job.yaml"));
    let config_map = yaml(&root.join("configmap.yaml"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().expect("completions");
    assert_eq!(spec["parallelism"].as_u64(), Some(n));
    let container = &spec["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect();
    assert!(
        args.iter()
            .any(|a| a == &format!("$(JOB_COMPLETION_INDEX)/{n}")),
        "{args:?}"
    );

    // The script of the ConfigMap, pointed at a target here and shortened.
    let target = Target::start();
    let work = Workdir::new();
    let script_text = config_map["data"]["s.json"].as_str().expect("s.json");
    let mut script: Value = serde_json::from_str(script_text).expect("the script is JSON");
    let start = &mut script["load_density"][0][1];
    let whole_users = start["user_count"].as_u64().expect("user_count");
    start["test_time"] = 1.into();
    start["tasks"][0]["url"] = target.url("/").into();
    std::fs::create_dir_all(work.path("scripts")).expect("mkdir");
    std::fs::create_dir_all(work.path("results")).expect("mkdir");
    work.write("scripts/s.json", &script.to_string());
    let local = |arg: String| {
        arg.replace("/scripts/", &format!("{}/", work.path("scripts").display()))
            .replace("/results/", &format!("{}/", work.path("results").display()))
            .replace(
                "http://prometheus.monitoring.svc.cluster.local:9090",
                &format!("http://127.0.0.1:{}", closed_port()),
            )
    };
    let start_at =
        humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(3)).to_string();
    let children: Vec<_> = (0..n)
        .map(|index| {
            let env = [
                ("JOB_COMPLETION_INDEX", index.to_string()),
                ("START_AT", start_at.clone()),
                ("POD_NAME", format!("loaddensity-{index}-abcde")),
            ];
            let args: Vec<String> = args.iter().map(|a| local(expand(a, &env))).collect();
            bin()
                .args(&args)
                .env("JOB_COMPLETION_INDEX", index.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a pod's command")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("wait");
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let mut requests = 0;
    for index in 0..n {
        let result = read_json(&work.path(&format!("results/result-{index}.json")));
        let count = result["totals"]["requests"].as_u64().expect("requests");
        assert!(count > 0, "segment {index} sent nothing");
        requests += count;
        // Remote write to a backend that is down: counted, not fatal.
        assert!(
            result["sinks"]["prometheus_remote_write"]["failed_pushes"].as_u64() >= Some(1),
            "{}",
            result["sinks"]
        );
    }
    assert!(requests > 0);
    // Every user of the script ran in exactly one pod.
    let output = bin()
        .args([
            "validate",
            &work.path("scripts/s.json").display().to_string(),
        ])
        .args(["--segment", &format!("0/{n}")])
        .output()
        .expect("validate");
    assert!(output.status.success(), "{}", stderr(&output));
    let users: u64 = (0..n)
        .map(|i| {
            let output = bin()
                .args([
                    "validate",
                    &work.path("scripts/s.json").display().to_string(),
                ])
                .args(["--segment", &format!("{i}/{n}")])
                .output()
                .expect("validate");
            let text = stderr(&output);
            text.split("closed model: ")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .and_then(|u| u.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no slice in {text}"))
        })
        .sum();
    assert_eq!(users, whole_users);
}
