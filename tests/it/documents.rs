//! Action documents in YAML and TOML (run, validate, directories, LD_execute_files,
//! the read/write commands), the linter, the formatter and the JSON Schema, through
//! the binary and the library. The schema is checked with Python's `jsonschema` (the
//! reference validator, draft 2020-12) against the repository's example scripts.

use std::collections::BTreeSet;
use std::process::Command;

use crate::common::{self, Target, Workdir, executor, ok, run, stderr, stdout};
use serde_json::{Value, json};

fn yaml_script(target: &Target) -> String {
    format!(
        "# A YAML script: comments, anchors and block style all work.\n\
         load_density:\n  \
           - - LD_start_test\n    \
             - user_count: 2\n      \
               spawn_rate: 50\n      \
               test_time: 0.6\n      \
               wait_time: {{constant: 0.02}}\n      \
               tasks:\n        \
                 - method: get\n          \
                   request_url: {}\n          \
                   name: yaml-get\n",
        target.url("/")
    )
}

fn toml_script(target: &Target) -> String {
    format!(
        "load_density = [\n  [\"LD_start_test\", {{user_count = 2, spawn_rate = 50, test_time = 0.6, wait_time = {{constant = 0.02}}, tasks = [{{method = \"get\", request_url = \"{}\", name = \"toml-get\"}}]}}],\n]\n",
        target.url("/")
    )
}

#[test]
fn yaml_and_toml_scripts_run_and_validate() {
    let target = Target::start();
    let work = Workdir::new();
    for (file, text, name) in [
        ("s.yaml", yaml_script(&target), "yaml-get"),
        ("s.toml", toml_script(&target), "toml-get"),
    ] {
        let path = work.write(file, &text);
        let validated = run(&["validate", path.to_str().expect("utf8")], None);
        assert!(validated.status.success(), "{file}: {}", stderr(&validated));
        let (_, summary) = common::run_ok_with_summary(&path, &work);
        let count = summary["per_name"][name]["count"].as_u64().unwrap_or(0);
        assert!(count > 0, "{file}: no request named {name}: {summary}");
    }
    // A directory runs its .json, .yaml, .yml and .toml scripts, in sorted order.
    let dir = work.path("scripts");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("a.yml"), yaml_script(&target)).expect("write");
    std::fs::write(dir.join("b.toml"), toml_script(&target)).expect("write");
    std::fs::write(dir.join("notes.txt"), "not a script").expect("write");
    let summary = work.path("dir-summary.json");
    let output = run(
        &[
            "run",
            dir.to_str().expect("utf8"),
            "--summary-json",
            summary.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = common::read_json(&summary);
    assert!(
        summary["per_name"]["yaml-get"]["count"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{summary}"
    );
    assert!(
        summary["per_name"]["toml-get"]["count"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{summary}"
    );
}

#[test]
fn syntax_errors_name_the_file_line_and_column() {
    let work = Workdir::new();
    let yaml = work.write(
        "bad.yaml",
        "load_density:\n  - [LD_sleep, {seconds: 1}\n  - [LD_summary]\n",
    );
    let output = run(&["validate", yaml.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains(&format!("{}: line ", yaml.display())),
        "{text}"
    );
    assert!(text.contains("malformed YAML"), "{text}");
    let toml = work.write(
        "bad.toml",
        "load_density = [\n  [\"LD_sleep\" {seconds = 1}],\n]\n",
    );
    let output = run(&["run", toml.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains(&format!(
            "{}: line 2, column 15: malformed TOML",
            toml.display()
        )),
        "{text}"
    );
    // A TOML argument of the wrong type is located like a JSON one.
    let typed = work.write(
        "typed.toml",
        "load_density = [[\"LD_sleep\", {seconds = \"x\"}]]\n",
    );
    let output = run(&["validate", typed.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("action[0] (LD_sleep): field `seconds`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn read_and_write_commands_round_trip() {
    let work = Workdir::new();
    let document = json!({"load_density": [["LD_sleep", {"seconds": 0.01}], ["LD_summary"]]});
    let mut executor = executor();
    let yaml = work.path("w.yaml");
    let toml = work.path("w.toml");
    let records = executor.execute_document(
        &json!([
            ["LD_write_action_yaml", {"yaml_save_path": yaml, "action_doc": document}],
            ["LD_write_action_toml", [toml, document]],
            ["LD_read_action_yaml", {"yaml_file_path": yaml}],
            ["LD_read_action_toml", [toml]],
            ["LD_execute_files", {"execute_files_list": [yaml, toml]}],
            ["LD_write_action_toml", {"toml_save_path": work.path("null.toml"), "action_doc": {"load_density": [["LD_summary", null]]}}],
        ]),
        "t",
    );
    assert_eq!(ok(&records[0]), &Value::Null);
    assert_eq!(ok(&records[2]), &document);
    assert_eq!(ok(&records[3]), &document);
    let files = ok(&records[4]).as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 2);
    for file in &files {
        assert_eq!(file[0]["command"], "LD_sleep", "{file}");
        assert!(file[0].get("result").is_some(), "{file}");
    }
    let e = common::error(&records[5]).to_string();
    assert!(
        e.contains("TOML has no null") && e.contains("load_density[0][1]"),
        "{e}"
    );
    assert!(!work.path("null.toml").exists());
}

fn lint_json(path: &str) -> (Option<i32>, Vec<Value>) {
    let output = run(&["lint", "--json", path], None);
    let findings: Value = serde_json::from_str(&stdout(&output))
        .unwrap_or_else(|e| panic!("lint --json: {e}: {}", stdout(&output)));
    (
        output.status.code(),
        findings.as_array().cloned().unwrap_or_default(),
    )
}

#[test]
fn lint_reports_every_problem_with_its_path() {
    let work = Workdir::new();
    let csv = work.write("users.csv", "name,pass\nann,1\n");
    let bad = work.write(
        "bad.yaml",
        &format!(
            "load_density:\n\
             - [LD_start_tset, {{}}]\n\
             - [LD_register_csv_source, {{name: users, file_path: {csv}}}]\n\
             - - LD_start_test\n  \
               - user_count: \"5\"\n    \
                 spawn_rat: 1\n    \
                 host: http://127.0.0.1:1\n    \
                 tasks:\n    \
                 - {{method: get, request_url: '/a/${{csv.users.name}}'}}\n    \
                 - {{method: get, request_url: '/b/${{csv.users.email}}'}}\n    \
                 - {{method: get, request_url: /c, timeout: \"5\"}}\n    \
                 - {{method: get, request_url: '/d/${{csv.orders.id}}'}}\n    \
                 - {{method: get, request_url: /e, extract: [{{var: t, scope: global}}]}}\n\
             - [LD_sleep, [x]]\n\
             - [LD_summary, {{x: 1}}]\n\
             - [LD_sleep]\n",
            csv = csv.display()
        ),
    );
    let (code, findings) = lint_json(bad.to_str().expect("utf8"));
    assert_eq!(code, Some(1), "{findings:?}");
    let seen: BTreeSet<(String, String)> = findings
        .iter()
        .map(|f| {
            (
                f["location"].as_str().unwrap_or("?").to_string(),
                f["rule"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    for (location, rule) in [
        ("actions[0]", "unknown-command"),
        ("actions[2].user_count", "wrong-type"),
        ("actions[2].spawn_rat", "unknown-field"),
        ("actions[2].tasks[1].request_url", "unreachable-source"),
        ("actions[2].tasks[2].timeout", "invalid-argument"),
        ("actions[2].tasks[3].request_url", "unreachable-source"),
        ("actions[2].tasks[4].extract[0].scope", "invalid-argument"),
        ("actions[3].seconds", "wrong-type"),
        ("actions[4].x", "unknown-field"),
        ("actions[5].seconds", "missing-field"),
    ] {
        assert!(
            seen.contains(&(location.to_string(), rule.to_string())),
            "no {rule} at {location}: {findings:#?}"
        );
    }
    // The source registered by an earlier action is reachable: task 0 is fine.
    assert!(
        !seen
            .iter()
            .any(|(l, _)| l.starts_with("actions[2].tasks[0]")),
        "{findings:#?}"
    );
    for finding in &findings {
        assert_eq!(finding["file"], bad.display().to_string());
        assert!(
            !finding["message"].as_str().unwrap_or("").is_empty(),
            "{finding}"
        );
        assert!(["error", "warning"].contains(&finding["severity"].as_str().unwrap_or("")));
    }
    let misspelt = findings
        .iter()
        .find(|f| f["rule"] == "unknown-command")
        .and_then(|f| f["message"].as_str())
        .unwrap_or("");
    assert!(
        misspelt.contains("did you mean `LD_start_test`"),
        "{misspelt}"
    );
    // The plain output: one line per finding, file first.
    let output = run(&["lint", bad.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "{}: actions[2].spawn_rat: [ERROR] unknown-field",
            bad.display()
        )),
        "{}",
        stderr(&output)
    );
}

#[test]
fn lint_passes_the_examples_and_keeps_loaddensitys_warnings() {
    let repo = env!("CARGO_MANIFEST_DIR");
    let output = Command::new(env!("CARGO_BIN_EXE_loaddensity"))
        .current_dir(repo)
        .args(["lint", "examples/"])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A warning alone does not fail: LoadDensity's `hardcoded-url`.
    let executor = executor();
    let findings = executor.lint_document(
        &json!([["LD_start_test", {"test_time": 1, "tasks": [{"method": "get", "request_url": "http://127.0.0.1:1/"}]}]]),
        None,
    );
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].rule, "hardcoded-url");
    assert_eq!(findings[0].location, "actions[0].tasks[0].request_url");
    assert!(!loaddensity::action::lint::has_errors(&findings));
    // LD_lint_action with LoadDensity's `known_commands`.
    let mut executor = executor;
    let records = executor.execute_document(
        &json!([["LD_lint_action", {"actions": {"load_density": [["LD_typo"], ["LD_summary"]]}, "known_commands": ["LD_summary"]}]]),
        "t",
    );
    let findings = ok(&records[0]).as_array().cloned().unwrap_or_default();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["rule"], "unknown-command");
    assert_eq!(findings[0]["severity"], "error");
    assert_eq!(findings[0]["location"], "actions[0]");
}

#[test]
fn fmt_rewrites_checks_and_keeps_comments_safe() {
    let work = Workdir::new();
    let messy = r#"{"load_density":[["LD_start_test",{"tasks":[{"headers":{"A":"é"},"name":"n","method":"get","request_url":"http://h/"}],"test_time":1}],["LD_summary"]]}"#;
    let file = work.write("s.json", messy);
    let path = file.to_str().expect("utf8");
    let check = run(&["fmt", "--check", path], None);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        stdout(&check).contains("s.json: would reformat"),
        "{}",
        stdout(&check)
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        messy,
        "--check changed the file"
    );
    let fmt = run(&["fmt", path], None);
    assert!(fmt.status.success(), "{}", stderr(&fmt));
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains("\"method\": \"get\",\n            \"request_url\": \"http://h/\",\n            \"name\": \"n\",\n            \"headers\""), "{text}");
    assert!(text.contains("\"A\": \"é\""), "{text}");
    assert!(run(&["fmt", "--check", path], None).status.success());
    // Stable: formatting again changes nothing.
    assert!(run(&["fmt", path], None).status.success());
    assert_eq!(std::fs::read_to_string(&file).expect("read"), text);
    // YAML is written back as YAML; a file with comments is left alone.
    let yaml = work.write("s.yaml", "load_density:\n- [LD_summary]\n");
    assert!(
        run(&["fmt", yaml.to_str().expect("utf8")], None)
            .status
            .success()
    );
    let commented = work.write("c.yaml", "# keep me\nload_density: [[LD_summary]]\n");
    let output = run(&["fmt", commented.to_str().expect("utf8")], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("line 1 is a comment"),
        "{}",
        stderr(&output)
    );
    assert!(
        std::fs::read_to_string(&commented)
            .expect("read")
            .starts_with("# keep me")
    );
    // The library commands, with LoadDensity's names.
    let mut executor = executor();
    let records = executor.execute_document(
        &json!([["LD_format_action_string", {"text": messy, "indent": 4}],
                ["LD_format_action_document", [serde_json::from_str::<Value>(messy).expect("json")]]]),
        "t",
    );
    assert!(
        ok(&records[0])
            .as_str()
            .unwrap_or("")
            .starts_with("{\n    \"load_density\": [\n")
    );
    let keys: Vec<String> = ok(&records[1])["load_density"][0][1]["tasks"][0]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["method", "request_url", "name", "headers"]);
}

/// Python's `jsonschema`, or `None` (skipped outside CI) when it is not installed.
fn python_jsonschema() -> Option<()> {
    let found = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "Python's jsonschema is not installed, and CI must run this test: scripts/test installs it"
        );
        eprintln!("SKIPPED: Python's jsonschema is not installed (scripts/test installs it)");
        return None;
    }
    Some(())
}

/// Runs a Python `script` with `args` (`sys.argv[1:]`); asserts it succeeds and
/// returns what it printed.
fn python(script: &str, args: &[&str]) -> String {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

#[test]
fn the_schema_is_valid_and_accepts_the_examples() {
    if python_jsonschema().is_none() {
        return;
    }
    let work = Workdir::new();
    let schema = work.path("schema/action.json");
    let output = run(&["schema", "-o", schema.to_str().expect("utf8")], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = run(&["schema"], None);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&printed)).expect("json"),
        common::read_json(&schema)
    );
    let repo = env!("CARGO_MANIFEST_DIR");
    let bad = work.write("bad.json", r#"{"load_density": [["LD_sleep", {"seconds": "x"}], ["LD_summary", {"x": 1}], ["LD_nope"]]}"#);
    let script = r#"
import glob, json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
validator = Draft202012Validator(schema)
good = sorted(glob.glob(sys.argv[2] + "/examples/*.json"))
assert good, "no examples"
for path in good:
    errors = list(validator.iter_errors(json.load(open(path))))
    assert not errors, (path, [e.message for e in errors])
bad = json.load(open(sys.argv[3]))
for i, action in enumerate(bad["load_density"]):
    errors = list(validator.iter_errors([action]))
    assert errors, ("accepted", action)
for doc in ([["LD_sleep", [1.5]]], [["LD_summary"]], {"load_density": [["LD_start_test", {"tasks": []}]]},
            [["LD_start_test", {"tasks": {"mode": "weighted", "tasks": [{"method": "get", "url": "/", "weight": 2}]}}]],
            [["LD_start_test", {"tasks": {"get": {"request_url": "/"}}}]]):
    errors = list(validator.iter_errors(doc))
    assert not errors, (doc, [e.message for e in errors])
for doc in ([["LD_sleep"]], [["LD_start_test", {"user_count": -1, "tasks": []}]], [["LD_start_test", {}]], {"load_density": []},
            [["LD_start_test", {"tasks": [{"method": "get", "reqest_url": "/"}]}]]):
    assert list(validator.iter_errors(doc)), ("accepted", doc)
print("checked", len(good), "examples")
"#;
    let printed = python(
        script,
        &[
            schema.to_str().expect("utf8"),
            repo,
            bad.to_str().expect("utf8"),
        ],
    );
    assert!(printed.contains("checked"), "{printed}");
    // LD_export_schema returns the absolute path it wrote.
    let mut executor = executor();
    let target = work.path("exported.json");
    let records = executor.execute_document(&json!([["LD_export_schema", [target]]]), "t");
    assert_eq!(ok(&records[0]), &json!(target.display().to_string()));
    let exported = common::read_json(&target);
    let commands = exported["$defs"]["action"]["prefixItems"][0]["enum"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for name in executor.command_names() {
        assert!(
            commands.contains(&json!(name)),
            "{name} missing from the schema"
        );
    }
}

/// The schema types the task fields, per user type: a real validator (Python's
/// `jsonschema`) accepts good tasks and flags each mistyped field at its path.
#[test]
fn the_schema_types_task_fields_per_user_type() {
    if python_jsonschema().is_none() {
        return;
    }
    let work = Workdir::new();
    let schema = work.path("schema.json");
    let output = run(&["schema", "-o", schema.to_str().expect("utf8")], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let start = |user: Option<&str>, task: Value| {
        let mut args = json!({"host": "http://127.0.0.1:1", "tasks": [task]});
        if let Some(user) = user {
            args["user_detail_dict"] = json!({"user": user});
        }
        json!({"load_density": [["LD_start_test", args]]})
    };
    let good = json!([
        start(
            None,
            json!({"method": "get", "url": "/", "think_time": 0, "client_cert": "/both.pem",
            "retry": {"transient": 5, "flaky": 2, "permanent": 0, "base_delay": 0.1,
                      "max_delay": 5, "backoff_factor": 2, "jitter": 0.25},
            "throttle": {"rps": 50, "key": "api", "burst": 10}})
        ),
        start(
            Some("http_user"),
            json!({"method": "post", "url": "/", "json": {"a": 1},
            "think_time": {"min": 0.5, "max": 2}, "cert": ["/c.pem", "/k.pem"], "timeout": 5})
        ),
        start(
            Some("async_http_user"),
            json!({"method": "get", "url": "/", "throttle": {"rps": 5},
            "expect_status": 200, "http2": true})
        ),
        start(
            Some("mqtt_user"),
            json!({"method": "publish", "topic": "t", "payload": "x",
            "think_time": 1, "retry": {"transient": 1}})
        ),
    ]);
    // Each bad document, and the path (in the document) a finding must name.
    let bad = json!([
        [
            start(
                None,
                json!({"method": "get", "url": "/", "retry": {"transient": "5"}})
            ),
            ["load_density", 0, 1, "tasks", 0, "retry", "transient"]
        ],
        [
            start(
                None,
                json!({"method": "get", "url": "/", "retry": {"tries": 3}})
            ),
            ["load_density", 0, 1, "tasks", 0, "retry"]
        ],
        [
            start(
                Some("http_user"),
                json!({"method": "get", "url": "/", "throttle": {"rps": "10"}})
            ),
            ["load_density", 0, 1, "tasks", 0, "throttle", "rps"]
        ],
        [
            start(
                Some("http_user"),
                json!({"method": "get", "url": "/", "think_time": "fast"})
            ),
            ["load_density", 0, 1, "tasks", 0, "think_time"]
        ],
        [
            start(
                Some("http_user"),
                json!({"method": "get", "url": "/", "cert": ["/only-one.pem"]})
            ),
            ["load_density", 0, 1, "tasks", 0, "cert"]
        ],
        [
            start(None, json!({"method": "get", "url": "/", "timeout": "5"})),
            ["load_density", 0, 1, "tasks", 0, "timeout"]
        ],
        // A field of another user type: `topic` is mqtt_user's.
        [
            start(
                Some("http_user"),
                json!({"method": "get", "url": "/", "topic": "t"})
            ),
            ["load_density", 0, 1, "tasks", 0]
        ],
        [
            start(
                Some("mqtt_user"),
                json!({"method": "publish", "topic": "t", "think_time": [1]})
            ),
            ["load_density", 0, 1, "tasks", 0, "think_time"]
        ],
        // async_http_user has no client certificate field.
        [
            start(
                Some("async_http_user"),
                json!({"method": "get", "url": "/", "cert": "/c.pem"})
            ),
            ["load_density", 0, 1, "tasks", 0]
        ],
    ]);
    let good_file = work.write("good.json", &good.to_string());
    let bad_file = work.write("bad.json", &bad.to_string());
    let script = r#"
import json, sys
from jsonschema import Draft202012Validator
validator = Draft202012Validator(json.load(open(sys.argv[1])))
def paths(errors):
    for e in errors:
        yield list(e.absolute_path)
        yield from paths(e.context or [])
for doc in json.load(open(sys.argv[2])):
    errors = list(validator.iter_errors(doc))
    assert not errors, (doc, [e.message for e in errors])
for doc, path in json.load(open(sys.argv[3])):
    found = list(paths(validator.iter_errors(doc)))
    assert path in found, ("not flagged at", path, doc, found)
print("flagged", len(json.load(open(sys.argv[3]))))
"#;
    let printed = python(
        script,
        &[
            schema.to_str().expect("utf8"),
            good_file.to_str().expect("utf8"),
            bad_file.to_str().expect("utf8"),
        ],
    );
    assert!(printed.contains("flagged 9"), "{printed}");
}
