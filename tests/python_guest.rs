//! The example Python guest (`examples/guests/datadog-python`), a
//! DataDog-style JSON log guest: built with componentize-py against the one
//! WIT file and run through `cwpub test` with its own cases, exactly as its
//! README tells a guest author to. componentize-py comes from
//! `CWPUB_COMPONENTIZE_PY` or `.venv` (`scripts/test.sh` installs it); a
//! missing one fails the test with the fix.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{self, Ran};
use crate::support::test_guests::workspace_root;

const VERSION: &str = "0.25.1";

/// The componentize-py the tests use, checked to be the pinned version.
fn componentize_py() -> PathBuf {
    let path = std::env::var_os("CWPUB_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/componentize-py"));
    let fix = format!(
        "run ./scripts/test.sh (it installs componentize-py {VERSION} into .venv), or \
         `.venv/bin/pip install componentize-py=={VERSION}`, or set CWPUB_COMPONENTIZE_PY"
    );
    let output = Command::new(&path)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "componentize-py not found at {}: {e}; {fix}",
                path.display()
            )
        });
    let version = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        version.trim(),
        format!("componentize-py {VERSION}"),
        "wrong componentize-py at {}; {fix}",
        path.display()
    );
    path
}

#[test]
fn the_datadog_python_example_passes_its_cases() {
    let tool = componentize_py();
    let example = workspace_root().join("examples/guests/datadog-python");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(tool.parent().expect("a directory").to_path_buf())
            .chain(std::env::split_paths(&path)),
    )
    .expect("PATH");
    // What the README says: `cwpub test` in the example's directory builds, then tests.
    let ran: Ran = cli::cwpub()
        .arg("test")
        .current_dir(&example)
        .env("PATH", path)
        .output()
        .expect("run cwpub test")
        .into();
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    assert!(
        ran.stderr
            .contains("building: componentize-py -d ../../../wit -w guest componentize app"),
        "{}",
        ran.both()
    );
    assert!(
        ran.stdout.contains("result: 7 passed, 0 failed"),
        "{}",
        ran.both()
    );
    // The first compile of an 18 MB guest says what is happening, and how long it took.
    assert!(
        ran.stderr.contains("compiling guest ./datadog.wasm (18."),
        "{}",
        ran.both()
    );
    assert!(
        ran.stderr.contains("compiled guest ./datadog.wasm (18.")
            && ran.stderr.contains("cached in"),
        "{}",
        ran.both()
    );
}

/// The example is built against `wit/publisher.wit` itself: no copy of the
/// WIT (which could go stale) and no generated bindings live beside it.
#[test]
fn the_python_example_has_no_copy_of_the_wit() {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "wit")
                || path.file_name().is_some_and(|n| n == "wit_world")
            {
                found.push(path);
            }
        }
    }
    let example = workspace_root().join("examples/guests/datadog-python");
    let mut found = Vec::new();
    walk(&example, &mut found);
    assert!(found.is_empty(), "stale WIT or bindings: {found:?}");
    let cases = std::fs::read_to_string(example.join("cwpub-test.toml")).expect("cases");
    assert!(
        cases.contains(r#""-d", "../../../wit""#)
            && workspace_root().join("wit/publisher.wit").is_file(),
        "the build reads the repository's wit/"
    );
}
