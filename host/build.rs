//! Builds the reference guests (`guest-heartbeat`, `guest-emf`) for
//! `wasm32-wasip2` so the host binary can embed them as `builtin:*` guests.
//!
//! The guests are compiled by a nested `cargo build` into `target/guests`
//! (shared by debug, release and clippy builds of the host), then copied into
//! `OUT_DIR` for `include_bytes!`. Set `CWPUB_PREBUILT_GUESTS=<dir>` to embed
//! already-built `guest_heartbeat.wasm` and `guest_emf.wasm` from `<dir>`
//! instead (for packagers that build guests separately).
//!
//! Cargo shows a build script's output only when it fails, so on a first
//! build the nested one (a few minutes on a small machine) would look stuck.
//! Its progress goes to the terminal instead (`/dev/tty`, which cargo neither
//! captures nor replays on later builds); without a terminal (CI, editors) it
//! is kept for the failure message.

use std::env;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const GUESTS: [&str; 2] = ["guest-heartbeat", "guest-emf"];
const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ lives inside the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    println!("cargo:rerun-if-env-changed=CWPUB_PREBUILT_GUESTS");
    let prebuilt = env::var_os("CWPUB_PREBUILT_GUESTS").is_some();
    let built = match env::var_os("CWPUB_PREBUILT_GUESTS") {
        Some(dir) => PathBuf::from(dir),
        None => {
            for dir in ["wit", "emf", "sdk", "guest-heartbeat", "guest-emf"] {
                println!("cargo:rerun-if-changed={}", root.join(dir).display());
            }
            // Cargo.toml holds the `guest` profile the guests are built with.
            for file in ["Cargo.lock", "Cargo.toml"] {
                println!("cargo:rerun-if-changed={}", root.join(file).display());
            }
            build_guests(&root)
        }
    };

    for guest in GUESTS {
        let file = format!("{}.wasm", guest.replace('-', "_"));
        let from = built.join(&file);
        if prebuilt {
            println!("cargo:rerun-if-changed={}", from.display());
        }
        std::fs::copy(&from, out_dir.join(&file)).unwrap_or_else(|e| {
            fail(&format!("cannot copy built guest {}: {e}", from.display()));
        });
    }
}

/// Runs the nested cargo build and returns the directory holding the `.wasm` files.
fn build_guests(root: &Path) -> PathBuf {
    check_target_installed();
    let target_dir = root.join("target").join("guests");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--target",
            TARGET,
            "--profile",
            "guest",
            "--target-dir",
        ])
        .arg(&target_dir)
        // An outer `build.build-dir` (config or CARGO_BUILD_BUILD_DIR) is locked
        // by the outer build while this script runs: the nested build must not
        // share it, or it would wait for that lock forever.
        .arg("--config")
        .arg(format!("build.build-dir={}", toml_string(&target_dir)));
    for guest in GUESTS {
        cmd.args(["-p", guest]);
    }
    // The outer build's flags and wrappers are for the host, not for wasm.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_PROFILE_RELEASE_LTO",
    ] {
        cmd.env_remove(var);
    }
    let mut tty = Terminal::open();
    if tty.is_some() {
        cmd.arg("--color=always");
    }
    let started = Instant::now();
    tty.line(&format!(
        "cwpub: building the reference guests for {TARGET} (into {})",
        target_dir.display()
    ));
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo to build the guests: {e}")));
    let mut log = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            tty.line(&format!("cwpub guests: {}", line.trim_start()));
            log.push(line);
        }
    }
    let status = child
        .wait()
        .unwrap_or_else(|e| fail(&format!("cannot wait for the guest build: {e}")));
    if !status.success() {
        for line in &log {
            eprintln!("{line}");
        }
        fail("building the reference guests for wasm32-wasip2 failed (see the cargo output above)");
    }
    tty.line(&format!(
        "cwpub: reference guests ready ({:.0?})",
        started.elapsed()
    ));
    target_dir.join(TARGET).join("guest")
}

/// The terminal the build runs in, if any (`/dev/tty` on Unix).
struct Terminal(Option<std::fs::File>);

impl Terminal {
    fn open() -> Self {
        let file = if cfg!(unix) {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/tty")
                .ok()
        } else {
            None
        };
        Terminal(file)
    }

    fn is_some(&self) -> bool {
        self.0.is_some()
    }

    /// Writes one line over cargo's progress bar (cleared first).
    fn line(&mut self, text: &str) {
        if let Some(tty) = &mut self.0
            && writeln!(tty, "\r\x1b[2K{text}").is_err()
        {
            self.0 = None;
        }
    }
}

/// Quotes a path as a TOML basic string for `cargo --config key=value`.
fn toml_string(path: &Path) -> String {
    let escaped = path
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// Fails with the fix when the wasm32-wasip2 standard library is missing.
fn check_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(sysroot) = sysroot
        && !sysroot.join("lib/rustlib").join(TARGET).is_dir()
    {
        fail(&format!(
            "the Rust target {TARGET} is not installed; the built-in guests need it.\n\
             Fix: rustup target add {TARGET}"
        ));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    panic!("{message}");
}
