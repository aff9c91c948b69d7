//! Builds the reference guests (`guest-heartbeat`, `guest-emf`) for
//! `wasm32-wasip2` so the host binary can embed them as `builtin:*` guests,
//! and lists the guest SDK's sources for `cwpub new` to carry (see
//! `src/cli/new/sdk.rs`).
//!
//! The guests are compiled by a nested `cargo build` into `target/guests`
//! (shared by debug, release and clippy builds of the host), then copied into
//! `OUT_DIR` for `include_bytes!`. Set `CWPUB_PREBUILT_GUESTS=<dir>` to embed
//! already-built `guest_heartbeat.wasm` and `guest_emf.wasm` from `<dir>`
//! instead (for packagers that build guests separately).
//!
//! A missing `wasm32-wasip2` target is added with rustup (`rustup target
//! add`, which is what `rust-toolchain.toml` asks for but rustup does only
//! when it installs a toolchain). Every failure ends in one `cargo::error`
//! line that names the fix, never a panic.
//!
//! Cargo shows a build script's output only when it fails, so on a first
//! build the nested one (a few minutes on a small machine) would look stuck.
//! Its progress goes to the terminal instead (`/dev/tty`, which cargo neither
//! captures nor replays on later builds); without a terminal (CI, editors)
//! what the user must know becomes a `cargo::warning`.

use std::env;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const GUESTS: [&str; 2] = ["guest-heartbeat", "guest-emf"];
const TARGET: &str = "wasm32-wasip2";

/// What `cwpub new` writes beside a Rust project, relative to the workspace
/// root: the SDK, the crate it depends on, the WIT contract and the licence.
/// The workspace's `Cargo.toml` comes along to resolve `workspace = true`.
const SDK_DIRS: [&str; 3] = ["sdk/src", "emf/src", "wit"];
const SDK_FILES: [&str; 4] = ["sdk/Cargo.toml", "emf/Cargo.toml", "LICENSE", "Cargo.toml"];

fn main() {
    let manifest_dir = PathBuf::from(required_env("CARGO_MANIFEST_DIR"));
    let Some(root) = manifest_dir.parent().map(Path::to_path_buf) else {
        fail("host/ must live inside the cwpub workspace");
    };
    let out_dir = PathBuf::from(required_env("OUT_DIR"));
    let mut tty = Terminal::open();

    list_sdk_sources(&root, &out_dir);

    println!("cargo:rerun-if-env-changed=CWPUB_PREBUILT_GUESTS");
    let prebuilt = env::var_os("CWPUB_PREBUILT_GUESTS").is_some();
    let built = match env::var_os("CWPUB_PREBUILT_GUESTS") {
        Some(dir) => PathBuf::from(dir),
        None => {
            for dir in ["guest-heartbeat", "guest-emf"] {
                println!("cargo:rerun-if-changed={}", root.join(dir).display());
            }
            // Cargo.toml holds the `guest` profile the guests are built with.
            for file in ["Cargo.lock", "Cargo.toml"] {
                println!("cargo:rerun-if-changed={}", root.join(file).display());
            }
            ensure_target_installed(&root, &mut tty);
            build_guests(&root, &mut tty)
        }
    };

    for guest in GUESTS {
        let file = format!("{}.wasm", guest.replace('-', "_"));
        let from = built.join(&file);
        if prebuilt {
            println!("cargo:rerun-if-changed={}", from.display());
        }
        if let Err(e) = std::fs::copy(&from, out_dir.join(&file)) {
            fail(&format!(
                "cannot copy the built guest {}: {e}; check CWPUB_PREBUILT_GUESTS or unset it",
                from.display()
            ));
        }
    }
}

/// Writes `OUT_DIR/sdk_sources.rs`: every file `cwpub new` writes beside a
/// Rust project, as `(path from the workspace root, include_str!(…))`, so
/// rustc rebuilds the host when one of them changes.
fn list_sdk_sources(root: &Path, out_dir: &Path) {
    let mut files: Vec<String> = SDK_FILES.iter().map(|f| (*f).to_owned()).collect();
    for dir in SDK_DIRS {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
        collect_files(root, Path::new(dir), &mut files);
    }
    for file in SDK_FILES {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    files.sort();
    let mut code = String::from(
        "/// The guest SDK's sources, `(path from the workspace root, text)`.\n\
         pub const SDK_SOURCES: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        let absolute = root.join(file);
        let _ = writeln!(
            code,
            "    ({file:?}, include_str!({:?})),",
            absolute.display().to_string()
        );
    }
    code.push_str("];\n");
    if let Err(e) = std::fs::write(out_dir.join("sdk_sources.rs"), code) {
        fail(&format!(
            "cannot write {}: {e}; check that the target directory is writable",
            out_dir.join("sdk_sources.rs").display()
        ));
    }
}

/// Adds every file under `root/dir` to `files`, as paths from `root`.
fn collect_files(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let entries = std::fs::read_dir(root.join(dir)).unwrap_or_else(|e| {
        fail(&format!(
            "cannot read {}: {e}; the cwpub checkout is incomplete",
            root.join(dir).display()
        ))
    });
    for entry in entries.flatten() {
        let path = dir.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_files(root, &path, files);
        } else if let Some(path) = path.to_str() {
            files.push(path.replace('\\', "/"));
        }
    }
}

/// Runs the nested cargo build and returns the directory holding the `.wasm` files.
fn build_guests(root: &Path, tty: &mut Terminal) -> PathBuf {
    let target_dir = root.join("target").join("guests");
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
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
    if tty.is_some() {
        cmd.arg("--color=always");
    }
    let started = Instant::now();
    tty.line(&format!(
        "cwpub: building the reference guests for {TARGET} (into {})",
        target_dir.display()
    ));
    run_or_fail(
        &mut cmd,
        "cwpub guests",
        tty,
        &format!("the build of the reference guests for {TARGET}"),
        "fix what it names, then build again",
    );
    tty.line(&format!(
        "cwpub: reference guests ready ({:.0?})",
        started.elapsed()
    ));
    target_dir.join(TARGET).join("guest")
}

/// Adds the wasm32-wasip2 standard library with rustup when the compiler in
/// use lacks it; fails with the fix when that is not possible.
fn ensure_target_installed(root: &Path, tty: &mut Terminal) {
    let Some(sysroot) = sysroot() else {
        // Without a sysroot to look at, the guest build names what is missing.
        return;
    };
    let installed = || sysroot.join("lib/rustlib").join(TARGET).is_dir();
    if installed() {
        return;
    }
    match Command::new("rustup").arg("--version").output() {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(&format!(
            "the Rust target {TARGET} is not installed and rustup is not on PATH to add it; install the {TARGET} standard library for this compiler (with rustup: `rustup target add {TARGET}`), or build the guests elsewhere and set CWPUB_PREBUILT_GUESTS"
        )),
        Err(e) => fail(&format!(
            "the Rust target {TARGET} is not installed and rustup cannot run ({e}); run `rustup target add {TARGET}` yourself"
        )),
    }
    let toolchain = env::var("RUSTUP_TOOLCHAIN")
        .map(|t| format!(" to toolchain {t}"))
        .unwrap_or_default();
    tty.line(&format!(
        "cwpub: the Rust target {TARGET} is not installed and the built-in guests need it: running `rustup target add {TARGET}`"
    ));
    // The rustup proxies set RUSTUP_TOOLCHAIN, so the target goes to the
    // toolchain this build uses, whatever the directory's override says.
    let mut cmd = Command::new("rustup");
    cmd.current_dir(root).args(["target", "add", TARGET]);
    // A failing rustup prints a stack backtrace when these ask for one.
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    run_or_fail(
        &mut cmd,
        "cwpub rustup",
        tty,
        &format!("`rustup target add {TARGET}`"),
        "run it yourself, then build again",
    );
    if !installed() {
        fail(&format!(
            "rustup added {TARGET}, but the compiler in use (sysroot {}) is not rustup's; install the {TARGET} standard library for it",
            sysroot.display()
        ));
    }
    // Cargo replays a warning on every later build, so it says what was done.
    let added = format!(
        "added the Rust target {TARGET}{toolchain} with `rustup target add {TARGET}` (the built-in guests need it)"
    );
    if tty.is_some() {
        tty.line(&format!("cwpub: {added}"));
    } else {
        println!("cargo::warning={added}");
    }
}

/// The sysroot of the compiler cargo builds with.
fn sysroot() -> Option<PathBuf> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
}

/// Runs `what` (`cmd`), copying its stderr to the terminal line by line
/// (prefixed with `prefix`); when it cannot start or fails, ends the build
/// with one line naming `fix`, after the command's own diagnostics.
fn run_or_fail(cmd: &mut Command, prefix: &str, tty: &mut Terminal, what: &str, fix: &str) {
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot run {what}: {e}; {fix}")));
    let mut log = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            tty.line(&format!("{prefix}: {line}"));
            log.push(line);
        }
    }
    let status = child
        .wait()
        .unwrap_or_else(|e| fail(&format!("cannot wait for {what}: {e}; {fix}")));
    if !status.success() {
        show_failure_output(&log, tty);
        fail(&format!(
            "{what} failed ({status}; its output is above); {fix}"
        ));
    }
}

/// Makes a failed command's output visible: the terminal already shows it;
/// without one, its diagnostics (from the first `error`/`warning` line on,
/// or all of it when there is none) become cargo warnings, printed before
/// the error line.
fn show_failure_output(log: &[String], tty: &Terminal) {
    if tty.is_some() {
        return;
    }
    let first = log
        .iter()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with("error") || l.starts_with("warning")
        })
        .unwrap_or(0);
    for line in &log[first..] {
        println!("cargo::warning={line}");
    }
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

/// A variable cargo sets for every build script.
fn required_env(name: &str) -> std::ffi::OsString {
    env::var_os(name).unwrap_or_else(|| {
        fail(&format!(
            "{name} is not set; build cwpub with cargo (`cargo build`)"
        ))
    })
}

/// Ends the build with one error line naming the fix (cargo prints it as
/// `error: cwpub@<version>: <message>`), without a panic or a backtrace.
fn fail(message: &str) -> ! {
    println!("cargo::error={}", message.replace('\n', " "));
    std::process::exit(0)
}
