//! `deploy/systemd/cwpub.service`, checked where PID 1 is not systemd (so the
//! unit itself cannot be started): `systemd-analyze verify` accepts it,
//! `systemd-analyze security --offline` scores it as docs/install.md says
//! and every exposure it reports is explained there, its stop timeout
//! outlasts the guests' grace plus the drain of the config it ships with,
//! and its command line, with its environment and under its system call
//! filter (applied by `support/systemd_sandbox.py` with seccomp, as systemd
//! does), starts, prints events, answers `/healthz`, caches the compiled
//! guests in its cache directory and stops on SIGTERM with exit 0. The same
//! command under `MemoryDenyWriteExecute=` fails to load any guest, which is
//! why the unit leaves it out. `systemd-analyze` comes from
//! scripts/install-deps.sh; missing, the tests fail.

use crate::support::daemon::{collect_until, http_get, line_reader, signal};
use crate::support::test_guests::workspace_root;

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const UNIT: &str = "deploy/systemd/cwpub.service";
const UNIT_CONFIG: &str = "deploy/systemd/cwpub.toml";
const DOC: &str = "docs/install.md";
/// Where the unit expects the binary.
const INSTALLED_AT: &str = "/usr/local/bin/cwpub";

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path))
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Every value of `key=` in the unit, in order.
fn values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
        .collect()
}

/// The one value of `key=` in the unit.
fn value(unit: &str, key: &str) -> String {
    let mut all = values(unit, key);
    assert_eq!(all.len(), 1, "{UNIT} sets {key}= once");
    all.remove(0)
}

/// The unit with its executable replaced by the cwpub under test (so
/// `systemd-analyze verify` finds it), as `<dir>/cwpub.service`.
fn unit_with_test_binary(dir: &Path) -> PathBuf {
    let unit = read(UNIT);
    assert!(unit.contains(INSTALLED_AT), "{UNIT} runs {INSTALLED_AT}");
    let path = dir.join("cwpub.service");
    std::fs::write(
        &path,
        unit.replace(INSTALLED_AT, env!("CARGO_BIN_EXE_cwpub")),
    )
    .expect("write unit");
    path
}

fn systemd_analyze(args: &[&str], unit: &Path) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run systemd-analyze ({e}); run scripts/install-deps.sh (Debian package systemd)")
        })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let unit = unit_with_test_binary(tmp.path());
    let out = systemd_analyze(&["verify", "--man=no"], &unit);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    // The check is real: an unknown key is reported.
    let broken = tmp.path().join("broken.service");
    let unit = std::fs::read_to_string(&unit).expect("unit");
    std::fs::write(
        &broken,
        unit.replace("[Service]\n", "[Service]\nNoSuchKey=1\n"),
    )
    .expect("write");
    let out = systemd_analyze(&["verify", "--man=no"], &broken);
    assert!(
        text(&out.stderr).contains("NoSuchKey"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_security_exposure_is_the_one_documented_and_each_exposure_is_explained() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let unit = unit_with_test_binary(tmp.path());
    let out = systemd_analyze(&["security", "--offline=true", "--no-pager"], &unit);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}{}", text(&out.stderr));
    let (score, rating) = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for cwpub.service: "))
        .and_then(|(_, rest)| {
            let mut words = rest.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{report}"));
    // The docs give the score of one systemd version; other versions weigh
    // the settings differently, and must still rate the unit "OK".
    let version = text(
        &Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .expect("systemd-analyze --version")
            .stdout,
    )
    .split_whitespace()
    .nth(1)
    .unwrap_or_default()
    .to_owned();
    let doc = read(DOC);
    if doc.contains(&format!("with systemd {version},")) {
        assert!(
            doc.contains(&format!("exposure level of **{score}**")),
            "{DOC} states the exposure level systemd-analyze {version} reports ({score})"
        );
    } else {
        assert_eq!(rating, "OK", "systemd {version}: {report}");
    }
    // Every setting the report marks as exposed is named in the docs' list of
    // what cwpub cannot take (e.g. `MemoryDenyWriteExecute=`).
    let exposed: Vec<&str> = report
        .lines()
        .filter_map(|l| l.strip_prefix("✗ "))
        .filter_map(|l| l.split('=').next())
        .collect();
    assert!(
        exposed.contains(&"MemoryDenyWriteExecute"),
        "the JIT's exception is reported: {report}"
    );
    for setting in exposed {
        assert!(
            doc.contains(&format!("`{setting}=")),
            "{DOC} explains why the unit does not set {setting}=:\n{report}"
        );
    }
}

#[test]
fn the_stop_timeout_outlasts_the_guests_grace_and_the_drain() {
    let unit = read(UNIT);
    let stop = humantime::parse_duration(&value(&unit, "TimeoutStopSec")).expect("TimeoutStopSec");
    let config: toml::Table = read(UNIT_CONFIG).parse().expect("the unit's config");
    let drain = humantime::parse_duration(
        config["shutdown"]["drain_deadline"]
            .as_str()
            .expect("[shutdown] drain_deadline"),
    )
    .expect("drain_deadline");
    // Guests get at most drain_deadline to finish, then delivery drains for
    // drain_deadline: SIGKILL must come later, with room to exit.
    assert!(
        stop >= drain * 2 + Duration::from_secs(10),
        "TimeoutStopSec ({stop:?}) must exceed twice drain_deadline ({drain:?}) with room to spare"
    );
    assert_eq!(value(&unit, "Restart"), "on-failure");
    // The shipped config is valid (its region comes from the environment file).
    let out = Command::new(env!("CARGO_BIN_EXE_cwpub"))
        .args(["check", UNIT_CONFIG])
        .current_dir(workspace_root())
        .env("CWPUB_REGION", "us-east-1")
        .env("CWPUB_CACHE_DIR", "off")
        .output()
        .expect("cwpub check");
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `python3 support/systemd_sandbox.py` with the unit's SystemCallFilter=
/// lines and `mdwe` (`--mdwe` or `--mdwe-seccomp`), before the command.
fn sandboxed(unit: &str, mdwe: Option<&str>) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(workspace_root().join("tests/support/systemd_sandbox.py"));
    for filter in values(unit, "SystemCallFilter") {
        cmd.arg("--syscall-filter").arg(filter);
    }
    cmd.args(mdwe).arg("--");
    cmd
}

/// The unit's ExecStart= and Environment=, with its directories under
/// `root` (`%E` → `root/etc`, `%C` → `root/cache`, `%S` → `root/state`) and
/// the binary under test, run under the unit's system call filter and, with
/// `mdwe`, under MemoryDenyWriteExecute= (`--mdwe` or `--mdwe-seccomp`).
fn unit_command(root: &Path, mdwe: Option<&str>) -> Command {
    let unit = read(UNIT);
    let specifiers = |text: &str| {
        let out = text
            .replace("%E", &root.join("etc").display().to_string())
            .replace("%C", &root.join("cache").display().to_string())
            .replace("%S", &root.join("state").display().to_string());
        assert!(
            !out.contains('%'),
            "a specifier this test does not know: {text}"
        );
        out
    };
    let exec = specifiers(&value(&unit, "ExecStart"));
    let mut argv: Vec<String> = exec.split_whitespace().map(str::to_owned).collect();
    assert_eq!(argv[0], INSTALLED_AT);
    argv[0] = env!("CARGO_BIN_EXE_cwpub").to_owned();

    let mut cmd = sandboxed(&unit, mdwe);
    cmd.args(&argv);
    // A service starts with an almost empty environment: no HOME, no
    // CWPUB_* unless the unit sets them.
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for assignment in values(&unit, "Environment") {
        let (key, val) = assignment.split_once('=').expect("VAR=value");
        cmd.env(key, specifiers(val));
    }
    cmd
}

/// A root for [`unit_command`] with a config at `etc/cwpub/cwpub.toml`:
/// the stdout sink, a heartbeat every second, `/healthz` on a free port.
fn unit_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    for dir in ["etc/cwpub", "cache/cwpub", "state/cwpub"] {
        std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
    }
    std::fs::write(
        root.path().join("etc/cwpub/cwpub.toml"),
        r#"[sink]
kind = "stdout"
[observe]
listen = "127.0.0.1:0"
[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "@every 1s"
run_at_start = true
log_group = "/cwpub/heartbeat"
"#,
    )
    .expect("write config");
    root
}

#[test]
fn the_units_command_line_runs_under_its_syscall_filter_and_stops_cleanly() {
    let root = unit_root();
    let mut child = unit_command(root.path(), None)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the unit's command line");
    let events = line_reader(child.stdout.take().expect("stdout"));
    let logs = line_reader(child.stderr.take().expect("stderr"));
    let mut stderr = String::new();
    let mut stdout = String::new();
    let started = collect_until(
        &logs,
        &mut stderr,
        "cwpub started",
        Duration::from_secs(120),
    );
    let event =
        started && collect_until(&events, &mut stdout, "heartbeat", Duration::from_secs(60));
    let health = stderr
        .lines()
        .find_map(|l| l.split_once("address=127.0.0.1:"))
        .and_then(|(_, port)| port.trim().parse::<u16>().ok())
        .map(|port| http_get(port, "/healthz"));
    signal(&child, "-TERM");
    let status = child.wait().expect("wait");
    collect_until(&logs, &mut stderr, "cwpub stopped", Duration::from_secs(60));
    assert!(
        started && event,
        "no event from the unit's command line ({status}); stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let event: serde_json::Value =
        serde_json::from_str(stdout.lines().next().unwrap_or_default()).expect("a JSON event");
    assert_eq!(event["event"], "heartbeat", "{event}");
    assert_eq!(
        health.map(|(code, _)| code),
        Some(200),
        "/healthz; stderr:\n{stderr}"
    );
    assert_eq!(
        status.signal(),
        None,
        "killed by a signal (31 is SIGSYS: a system call outside the unit's filter); stderr:\n{stderr}"
    );
    assert!(
        status.success(),
        "exit 0 on SIGTERM ({status}); stderr:\n{stderr}"
    );
    let cached = std::fs::read_dir(root.path().join("cache/cwpub"))
        .expect("cache dir")
        .count();
    assert!(
        cached > 0,
        "the compiled guest is in the unit's CacheDirectory"
    );
}

#[test]
fn the_sandbox_enforces_the_units_syscall_filter() {
    // chroot(2) is outside @system-service: the process is killed with SIGSYS
    // (as root, it would succeed without the filter; as a user, fail with EPERM).
    let unit = read(UNIT);
    let python = |code: &str| {
        sandboxed(&unit, None)
            .args(["python3", "-c", code])
            .output()
            .expect("run the sandbox")
    };
    let out = python("import os; print('started')");
    assert!(
        out.status.success() && text(&out.stdout) == "started\n",
        "python runs under the filter: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = python("import os; print('started', flush=True); os.chroot('/')");
    assert_eq!(text(&out.stdout), "started\n");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSYS),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn memory_deny_write_execute_stops_every_guest_from_loading() {
    let unit = read(UNIT);
    assert!(
        values(&unit, "MemoryDenyWriteExecute").is_empty(),
        "{UNIT} must not set MemoryDenyWriteExecute= (cwpub compiles guests to machine code)"
    );
    // Both ways systemd applies it: the kernel's prctl (Linux 6.3+; on older
    // kernels `--mdwe` falls back to seccomp) and its seccomp rules.
    for mdwe in ["--mdwe", "--mdwe-seccomp"] {
        let root = unit_root();
        let out = unit_command(root.path(), Some(mdwe))
            .output()
            .expect("run the unit's command line");
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success()
                && stderr.contains("forbids executable memory")
                && stderr.contains("MemoryDenyWriteExecute=yes"),
            "{mdwe}: {}\n{stderr}",
            out.status
        );
    }
}
