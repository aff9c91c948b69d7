//! `cargo install --locked --path host`, the install command of
//! docs/install.md, run once per test process into `target/install-test/`
//! (replaced each time). It reuses the build `cargo test` just made
//! (`--debug` and the same target directory), so it takes about a second and
//! needs no network (`--offline`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::test_guests::workspace_root;

/// The `cwpub` binary installed by `cargo install`, installing it first.
pub fn installed_cwpub() -> PathBuf {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED.get_or_init(install).clone()
}

fn install() -> PathBuf {
    let workspace = workspace_root();
    // The directory cargo built this test's cwpub in: <target>/debug/cwpub.
    let target_dir = Path::new(env!("CARGO_BIN_EXE_cwpub"))
        .ancestors()
        .nth(2)
        .expect("the cwpub binary is in <target>/debug");
    let root = workspace.join("target").join("install-test");
    match std::fs::remove_dir_all(&root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove {}: {e}", root.display()),
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "install",
            "--locked",
            "--offline",
            "--path",
            "host",
            "--debug",
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--root")
        .arg(&root)
        .output()
        .expect("run cargo install");
    assert!(
        out.status.success(),
        "cargo install --locked --path host: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = root.join("bin").join("cwpub");
    assert!(bin.is_file(), "cargo install wrote {}", bin.display());
    bin
}
