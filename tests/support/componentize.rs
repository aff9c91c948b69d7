//! Finds the pinned componentize-py (which builds Python guests) for the
//! tests: `CWPUB_COMPONENTIZE_PY` (set by scripts/test.sh), else
//! `<repo>/.venv/bin/componentize-py`, else `PATH`. A missing tool or
//! another version is a test failure with the fix, never a skip.

use std::path::PathBuf;
use std::process::Command;

use crate::support::test_guests::workspace_root;

/// The componentize-py version the templates and the example are built with.
pub const VERSION: &str = "0.25.1";

/// The componentize-py the tests use, checked to be [`VERSION`].
pub fn componentize_py() -> PathBuf {
    let fix = format!(
        "run ./scripts/test.sh (it installs componentize-py {VERSION} into .venv), or \
         `.venv/bin/pip install componentize-py=={VERSION}`, or set \
         CWPUB_COMPONENTIZE_PY=/path/to/componentize-py"
    );
    let path = std::env::var_os("CWPUB_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .or_else(|| {
            let venv = workspace_root().join(".venv/bin/componentize-py");
            venv.is_file().then_some(venv)
        })
        .or_else(|| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("componentize-py"))
                    .find(|p| p.is_file())
            })
        })
        .unwrap_or_else(|| panic!("componentize-py not found; {fix}"));
    let output = Command::new(&path)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {fix}", path.display()));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("componentize-py {VERSION}"),
        "wrong componentize-py at {}; {fix}",
        path.display()
    );
    path
}
