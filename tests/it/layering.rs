//! The library's layering (issue #23): no two top-level modules import each other,
//! directly or through others, as `scripts/module_deps.py` checks.

use std::path::Path;
use std::process::Command;

#[test]
fn no_import_circle_between_top_level_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .arg(root.join("scripts/module_deps.py"))
        .arg(root.join("src"))
        .output()
        .expect("python3 (scripts/test installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "import circles:\n{text}");
    // The checker saw the modules (a wrong path would find none and pass).
    for module in ["action ", "engine ", "protocol ", "context ", "sinks "] {
        assert!(text.contains(module), "{module}missing from:\n{text}");
    }
    assert!(text.contains("engine       -> "), "{text}");
}

#[test]
fn the_checker_finds_a_circle() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("b")).expect("mkdir");
    std::fs::write(dir.path().join("a.rs"), "use crate::b::B;\n").expect("write");
    std::fs::write(dir.path().join("b/mod.rs"), "use crate::c::C;\n").expect("write");
    std::fs::write(
        dir.path().join("c.rs"),
        "// crate::a in a comment\nuse crate::a::A;\n#[cfg(test)]\nuse crate::b::X;\n",
    )
    .expect("write");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .arg(root.join("scripts/module_deps.py"))
        .arg(dir.path())
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("circle: a <-> b"), "{text}");
    assert!(text.contains("c            -> a\n"), "{text}");
}
