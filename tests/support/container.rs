//! The container image under test and containers run from it with podman.
//! The image is built once per test process by `scripts/build-image.sh
//! --profile image-test` (a static musl cwpub on `scratch`, the same file tree
//! and metadata as the release image, compiled faster), unless
//! `scripts/test.sh` has just built it. A missing podman, musl C compiler or
//! a failed build fails the test with the fix; nothing is skipped.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use super::daemon::{collect_until, line_reader, logged_address};
use super::test_guests::workspace_root;

/// The tag the tests build and run.
pub const TEST_IMAGE: &str = "localhost/cwpub:test";

const INSTALL: &str = "the container tests need podman and runc (Debian/Ubuntu: \
     `apt-get install podman runc musl-tools`; .ci/run installs them)";

/// `podman` with the OCI runtime the tests use (`CWPUB_TEST_OCI_RUNTIME`, default runc).
pub fn podman() -> Command {
    let runtime = std::env::var("CWPUB_TEST_OCI_RUNTIME").unwrap_or_else(|_| "runc".into());
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", &runtime]);
    cmd
}

/// Runs `podman args…` to completion; panics with its output unless it succeeds.
pub fn podman_ok(args: &[&str]) -> String {
    let out = podman()
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running podman: {e}; {INSTALL}"));
    assert!(
        out.status.success(),
        "podman {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the test image (once per process) and returns its tag.
pub fn image() -> &'static str {
    static BUILT: OnceLock<Mutex<bool>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(|| Mutex::new(false))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if !*built && built_by_test_script() {
        *built = true;
    }
    if !*built {
        let script = workspace_root().join("scripts/build-image.sh");
        let out = Command::new(&script)
            .args(["--profile", "image-test", "--tag", TEST_IMAGE])
            .current_dir(workspace_root())
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "scripts/build-image.sh --profile image-test failed ({}); {INSTALL}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        *built = true;
    }
    TEST_IMAGE
}

/// Whether `scripts/test.sh` built the test image just before this run: it
/// exports the image id as `CWPUB_TEST_IMAGE_ID`, and the tag still names
/// that image. Spares the test process a second build (and its CPU burst
/// beside timing-sensitive tests); any other run builds the image itself.
fn built_by_test_script() -> bool {
    let Ok(expected) = std::env::var("CWPUB_TEST_IMAGE_ID") else {
        return false;
    };
    let out = podman()
        .args(["image", "inspect", "--format", "{{.Id}}", TEST_IMAGE])
        .output()
        .unwrap_or_else(|e| panic!("running podman: {e}; {INSTALL}"));
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == expected.trim()
}

/// The hardening every test container gets, as the deploy/ manifests ask for:
/// read-only root filesystem, no capabilities, no privilege escalation, the
/// image's non-root user. Host networking lets the container reach the
/// loopback fakes (the container-credentials URI must be loopback).
pub const HARDENED: &[&str] = &[
    "--network=host",
    "--read-only",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--ulimit=nofile=1024:1024",
    "--ulimit=nproc=1024:1024",
];

/// A running container whose stderr is collected line by line; removed on drop.
pub struct Container {
    pub name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    pub stderr: String,
}

impl Container {
    /// `podman run --rm --name <name> <HARDENED> <extra> <image> <command>`, attached.
    pub fn run(name: &str, extra: &[String], command: &[&str]) -> Container {
        let image = image();
        let _ = podman().args(["rm", "-f", "-i", name]).output();
        let mut child = podman()
            .args(["run", "--rm", "--name", name])
            .args(HARDENED)
            .args(extra)
            .arg(image)
            .args(command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting podman run: {e}; {INSTALL}"));
        let lines = line_reader(child.stderr.take().expect("piped stderr"));
        Container {
            name: name.to_owned(),
            child,
            lines,
            stderr: String::new(),
        }
    }

    /// Waits (up to two minutes) until stderr has a line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) {
        if collect_until(
            &self.lines,
            &mut self.stderr,
            needle,
            Duration::from_secs(120),
        ) {
            return;
        }
        panic!(
            "container {} never logged {needle:?}; stderr so far:\n{}",
            self.name, self.stderr
        );
    }

    /// Where the daemon's observability endpoint listens (the tests let it
    /// bind port 0; with host networking the test reaches it on loopback),
    /// from its log line; waits for that line if it has not come yet.
    pub fn observe_addr(&mut self) -> SocketAddr {
        if logged_address(&self.stderr).is_none() {
            self.wait_for("observability endpoint");
        }
        logged_address(&self.stderr).unwrap_or_else(|| {
            panic!(
                "container {}: no address in its observability endpoint line:\n{}",
                self.name, self.stderr
            )
        })
    }

    /// `podman exec <name> args…`: the exit status and stdout + stderr.
    pub fn exec(&self, args: &[&str]) -> (ExitStatus, String) {
        let out = podman()
            .args(["exec", &self.name])
            .args(args)
            .output()
            .expect("podman exec");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status, text)
    }

    /// Sends SIGTERM through podman and returns the container's exit status
    /// and its whole stderr; fails if the stop takes more than a minute.
    pub fn stop(self) -> (ExitStatus, String) {
        self.signal("TERM")
    }

    /// Sends `signal` (e.g. "KILL") through podman and returns the container's
    /// exit status and its whole stderr; fails if it runs on for a minute.
    pub fn signal(mut self, signal: &str) -> (ExitStatus, String) {
        podman_ok(&["kill", "--signal", signal, &self.name]);
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for podman run") {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "container {} still running a minute after SIG{signal}; stderr:\n{}",
                self.name,
                self.stderr
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
        }
        (status, std::mem::take(&mut self.stderr))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = podman().args(["rm", "-f", "-t", "0", &self.name]).output();
            let _ = self.child.wait();
        }
    }
}

/// A named podman volume, removed on drop.
pub struct Volume(pub String);

impl Volume {
    /// A fresh volume name (created by podman on first use).
    pub fn new(prefix: &str) -> Volume {
        Volume(format!(
            "{prefix}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ))
    }

    /// `--volume=<name>:<path>`.
    pub fn mount(&self, path: &str) -> String {
        format!("--volume={}:{path}", self.0)
    }

    /// The paths of the files in the volume (`podman volume export`, a tar stream).
    pub fn files(&self) -> Vec<String> {
        let export = podman()
            .args(["volume", "export", &self.0])
            .output()
            .expect("podman volume export");
        assert!(
            export.status.success(),
            "podman volume export {}: {}",
            self.0,
            String::from_utf8_lossy(&export.stderr)
        );
        tar_paths(&export.stdout)
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = podman().args(["volume", "rm", "-f", &self.0]).output();
    }
}

/// The entries of a tar stream, as `tar -tv` lists them (mode, owner, size, date, path).
pub fn tar_listing(tar: &[u8], verbose: bool) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.tar");
    std::fs::write(&path, tar).expect("write tar");
    let out = Command::new("tar")
        .arg(if verbose { "-tvf" } else { "-tf" })
        .arg(&path)
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tar_paths(tar: &[u8]) -> Vec<String> {
    tar_listing(tar, false).lines().map(str::to_owned).collect()
}

/// The files of an image, `tar -tv` style (from a created, never started container).
pub fn image_listing(image: &str) -> String {
    let name = format!(
        "cwpub-test-files-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    podman_ok(&["create", "--name", &name, image]);
    let export = podman()
        .args(["export", &name])
        .output()
        .expect("podman export");
    let _ = podman().args(["rm", "-f", &name]).output();
    assert!(
        export.status.success(),
        "podman export: {}",
        String::from_utf8_lossy(&export.stderr)
    );
    tar_listing(&export.stdout, true)
}

/// `-v host:container:ro` for a file or directory the container may only read.
pub fn mount_ro(host: &Path, container: &str) -> String {
    format!("--volume={}:{container}:ro", host.display())
}

/// `-e NAME=value`.
pub fn env(name: &str, value: &str) -> String {
    format!("--env={name}={value}")
}
