//! A new plugin author's first ten minutes, end to end, outside the
//! repository: `cwpub new` writes a project into an empty temporary
//! directory, the author edits the function that composes the payload, builds
//! with the project's one command (the Rust template's unit tests also run
//! natively with `cargo test`), `cwpub test` first catches the change and
//! then passes once the expectation is updated, and `cwpub run` with the
//! stdout sink prints the events. Covered for Rust and Python, JSON and EMF
//! (the Rust EMF project uses the SDK's `MetricsLogger` from outside the
//! workspace).
//!
//! Cost control: the Rust projects share one cargo build directory under
//! `target/new-project/` (dependencies compile once per checkout, not once per
//! project), and every `cwpub` started here shares one compiled-guest cache
//! (`CWPUB_CACHE_DIR`), so each Python component is compiled once per run.
//! componentize-py comes from `CWPUB_COMPONENTIZE_PY` (set by
//! scripts/test.sh), `<repo>/.venv/bin` or `PATH`; missing, the test fails.

use crate::support::test_guests::workspace_root;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const INSTALL_COMPONENTIZE: &str = "componentize-py not found: run ./scripts/test.sh (it installs \
     componentize-py 0.25.1 into .venv), or `.venv/bin/pip install componentize-py==0.25.1`, \
     or set CWPUB_COMPONENTIZE_PY=/path/to/componentize-py";

/// Where these tests keep what may be shared between projects and runs.
fn shared_dir(name: &str) -> PathBuf {
    workspace_root()
        .join("target")
        .join("new-project")
        .join(name)
}

/// The `cwpub` binary under test, with the shared guest cache and a clean
/// build environment for the project builds it starts (`cwpub test` runs the
/// case file's `build` command).
fn cwpub(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cwpub"));
    cmd.current_dir(dir)
        .env("CWPUB_CACHE_DIR", shared_dir("cwpub-cache"))
        .env_remove("CWPUB_SINK_KIND")
        .env_remove("CWPUB_LOG_LEVEL")
        .env_remove("RUST_LOG");
    clean_build_env(&mut cmd);
    cmd
}

/// The environment a project's own build needs: no flags meant for the host
/// build, and the shared build directory so dependencies compile once.
fn clean_build_env(cmd: &mut Command) {
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_BUILD_BUILD_DIR", shared_dir("cargo-build"))
        .env("COMPONENTIZE_PY", componentize_py());
}

/// componentize-py, found as the module docs say, or a failed test.
fn componentize_py() -> PathBuf {
    if let Some(p) = std::env::var_os("CWPUB_COMPONENTIZE_PY") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "CWPUB_COMPONENTIZE_PY={} is not a file; {INSTALL_COMPONENTIZE}",
            p.display()
        );
        return p;
    }
    let venv = workspace_root().join(".venv/bin/componentize-py");
    if venv.is_file() {
        return venv;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("componentize-py"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{INSTALL_COMPONENTIZE}"))
}

/// Runs `cmd` to completion, with its output shown when `ok` is not what it did.
fn run(cmd: &mut Command, what: &str, ok: bool) -> Output {
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(
        out.status.success(),
        ok,
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Replaces `from` by `to` in the project's file `path`, which must contain it.
fn edit(project: &Path, path: &str, from: &str, to: &str) {
    let path = project.join(path);
    let text = std::fs::read_to_string(&path).expect("read project file");
    assert!(
        text.contains(from),
        "{} has no {from:?}:\n{text}",
        path.display()
    );
    std::fs::write(&path, text.replace(from, to)).expect("write project file");
}

/// `cwpub new <name> <args>` in a fresh temporary directory; returns the
/// directory (kept alive by the caller) and the project's path.
fn new_project(name: &str, args: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    assert!(
        !tmp.path().starts_with(workspace_root()),
        "the project must live outside the repository"
    );
    let out = run(
        cwpub(tmp.path()).arg("new").arg(name).args(args),
        &format!("cwpub new {name} {}", args.join(" ")),
        true,
    );
    assert!(
        stdout(&out).contains(&format!("guest `{name}`")),
        "{}",
        stdout(&out)
    );
    let project = tmp.path().join(name);
    for file in ["README.md", "cwpub-test.toml", "cwpub.toml", ".gitignore"] {
        assert!(project.join(file).is_file(), "{file} was written");
    }
    (tmp, project)
}

/// `cwpub test` must fail on the edited guest and name the new text, then
/// pass once the case file expects it: the harness really compares.
fn test_fails_then_passes(project: &Path, old: &str, new: &str) {
    let out = run(
        cwpub(project).arg("test"),
        "cwpub test (stale expectation)",
        false,
    );
    let report = stdout(&out);
    assert!(
        report.contains("FAILED") && report.contains(new),
        "the failure shows what the guest returned:\n{report}"
    );
    edit(project, "cwpub-test.toml", old, new);
    let out = run(cwpub(project).arg("test"), "cwpub test", true);
    let report = stdout(&out);
    assert!(report.contains(" 0 failed"), "{report}");
}

/// `cwpub run cwpub.toml` until its first event appears on stdout; then
/// SIGTERM, and the daemon must stop cleanly having lost nothing.
fn first_event_of_run(project: &Path) -> Value {
    let mut child: Child = cwpub(project)
        .args(["run", "cwpub.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cwpub run");
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = lines.recv_timeout(Duration::from_secs(120));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let output = child.wait_with_output().expect("wait for cwpub run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = line.unwrap_or_else(|e| panic!("no event from cwpub run ({e}); stderr:\n{stderr}"));
    assert!(killed.success(), "sending SIGTERM");
    assert!(
        output.status.success(),
        "cwpub run stops cleanly ({}); stderr:\n{stderr}",
        output.status
    );
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn rust_guest_from_new_to_run() {
    let (_tmp, project) = new_project("hello", &["--lang", "rust"]);
    edit(
        project.as_path(),
        "src/lib.rs",
        "\"{}, world!\"",
        "\"{}, cwpub!\"",
    );
    run(
        Command::new("cargo")
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(&project)
            .tap(clean_build_env),
        "cargo build --release --target wasm32-wasip2",
        true,
    );
    assert!(
        project
            .join("target/wasm32-wasip2/release/hello.wasm")
            .is_file()
    );
    run(
        Command::new("cargo")
            .args(["fmt", "--check"])
            .current_dir(&project),
        "cargo fmt --check (the template is formatted)",
        true,
    );
    run(
        Command::new("cargo")
            .args(["test", "--quiet"])
            .current_dir(&project)
            .tap(clean_build_env),
        "cargo test (the template's unit tests, natively)",
        true,
    );
    test_fails_then_passes(&project, "world!", "cwpub!");
    let event = first_event_of_run(&project);
    assert_eq!(event["message"], "Hello, cwpub!", "{event}");
    assert_eq!(event["job"], "hello", "{event}");
}

#[test]
fn rust_emf_guest_uses_the_metrics_logger_from_outside_the_workspace() {
    let (_tmp, project) = new_project("metrics", &["--kind", "emf"]);
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        manifest.contains(r#"features = ["emf"]"#) && !manifest.contains("workspace = true"),
        "{manifest}"
    );
    edit(
        &project,
        "src/lib.rs",
        r#"metrics.put_metric("Heartbeat", 1.0, Unit::Count)?;"#,
        r#"metrics.put_metric("Heartbeat", 1.0, Unit::Count)?;
    metrics.put_metric("QueueDepth", 42.0, Unit::Count)?;"#,
    );
    // `cwpub test` builds through the case file's `build` command, then checks
    // every document with the daemon's EMF validator.
    let out = run(cwpub(&project).arg("test"), "cwpub test", true);
    assert!(stdout(&out).contains(" 0 failed"), "{}", stdout(&out));
    let document = first_event_of_run(&project);
    assert_eq!(document["QueueDepth"], 42, "{document}");
    assert_eq!(document["Service"], "metrics", "{document}");
    let metrics = &document["_aws"]["CloudWatchMetrics"][0]["Metrics"];
    assert!(
        metrics
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["Name"] == "QueueDepth")),
        "{document}"
    );
}

#[test]
fn python_guest_from_new_to_run() {
    let (_tmp, project) = new_project("hello", &["--lang", "python"]);
    assert_eq!(
        std::fs::read_to_string(project.join("wit/publisher.wit")).expect("WIT"),
        std::fs::read_to_string(workspace_root().join("wit/publisher.wit")).expect("WIT"),
        "the project's WIT is the repository's"
    );
    edit(&project, "app.py", ", world!\"", ", cwpub!\"");
    run(
        Command::new("sh")
            .arg("build.sh")
            .current_dir(&project)
            .tap(clean_build_env),
        "sh build.sh (componentize-py)",
        true,
    );
    assert!(project.join("hello.wasm").is_file());
    test_fails_then_passes(&project, "world!", "cwpub!");
    let event = first_event_of_run(&project);
    assert_eq!(event["message"], "Hello, cwpub!", "{event}");
    assert_eq!(event["job"], "hello", "{event}");
}

#[test]
fn python_emf_guest_passes_its_own_tests() {
    let (_tmp, project) = new_project("metrics", &["--lang", "python", "--kind", "emf"]);
    let out = run(cwpub(&project).arg("test"), "cwpub test", true);
    assert!(stdout(&out).contains(" 0 failed"), "{}", stdout(&out));
}

#[test]
fn new_refuses_bad_names_and_non_empty_directories() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = run(
        cwpub(tmp.path()).args(["new", "Hello World"]),
        "cwpub new with a bad name",
        false,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lowercase ASCII letters") && stderr.contains("`hello-world`"),
        "{stderr}"
    );
    std::fs::create_dir(tmp.path().join("taken")).expect("mkdir");
    std::fs::write(tmp.path().join("taken/notes.txt"), "mine").expect("write");
    let out = run(
        cwpub(tmp.path()).args(["new", "taken"]),
        "cwpub new into a non-empty directory",
        false,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already exists and is not empty"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(tmp.path().join("taken"))
            .expect("read")
            .count(),
        1,
        "nothing was written"
    );
    let out = run(
        cwpub(tmp.path()).args(["new", "py", "--lang", "python", "--sdk-path", "."]),
        "cwpub new --lang python --sdk-path",
        false,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("apply to Rust projects"));
}

/// `Command` builder chaining for a helper that takes `&mut Command`.
trait Tap {
    fn tap(&mut self, f: impl FnOnce(&mut Self)) -> &mut Self;
}

impl Tap for Command {
    fn tap(&mut self, f: impl FnOnce(&mut Self)) -> &mut Self {
        f(self);
        self
    }
}
