//! `scripts/install-deps.sh`, the one install step of the test command and
//! CI, run against stand-ins for every program it calls (rustup, apt-get,
//! sudo, id, python3 and the programs it looks for), on a `PATH` holding
//! nothing else: it installs what is missing with apt-get as root and sudo
//! apt-get otherwise, stops at once with the command to run when it cannot,
//! and says nothing when nothing is missing. The real machine is never
//! touched.

use crate::support::test_guests::workspace_root;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What the stand-in machine has.
struct Machine {
    /// `id -u`.
    uid: u32,
    sudo: bool,
    apt: Apt,
    /// Rust targets installed (MUSL: `<arch>-unknown-linux-musl`).
    targets: &'static [&'static str],
    /// Rust components installed.
    components: &'static [&'static str],
    /// Programs installed, of those the script looks for (MUSL_GCC:
    /// `<arch>-linux-musl-gcc`).
    programs: &'static [&'static str],
    /// Whether Python's ensurepip is there (python3-venv).
    venv: bool,
}

/// The machine's apt-get.
#[derive(Clone, Copy, PartialEq)]
enum Apt {
    Missing,
    Works,
    Fails,
}

/// A machine with everything the script wants.
const FULL: Machine = Machine {
    uid: 0,
    sudo: false,
    apt: Apt::Works,
    targets: &["wasm32-wasip2", "MUSL"],
    components: &["rustfmt", "clippy"],
    programs: &["cc", "MUSL_GCC", "podman", "runc", "systemd-analyze"],
    venv: true,
};

/// Runs the script on `machine`; returns its output and the stand-ins' log
/// (one line per call of rustup, apt-get or sudo).
fn run(machine: &Machine) -> (Output, String) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let log = tmp.path().join("calls.log");
    let arch = std::env::consts::ARCH;
    let name = |n: &str| {
        n.replace("MUSL_GCC", &format!("{arch}-linux-musl-gcc"))
            .replace("MUSL", &format!("{arch}-unknown-linux-musl"))
    };
    // The real tools a shell script needs, and nothing else.
    for tool in ["basename", "bash", "dirname", "env", "grep", "uname"] {
        let real = which(tool);
        std::os::unix::fs::symlink(&real, bin.join(tool)).expect("symlink");
    }
    let logged = format!("echo \"$(basename \"$0\") $*\" >> '{}'", log.display());
    let host = format!("{arch}-unknown-linux-gnu");
    let targets: Vec<String> = machine.targets.iter().map(|t| name(t)).collect();
    let components: Vec<String> = machine
        .components
        .iter()
        .map(|c| format!("{c}-{host}"))
        .collect();
    stub(
        &bin,
        "rustup",
        &format!(
            "{logged}\ncase \"$*\" in\n  'target list --installed') printf '%s\\n' {host} {targets} ;;\n  'component list --installed') printf '%s\\n' rustc-{host} {components} ;;\nesac",
            targets = targets.join(" "),
            components = components.join(" "),
        ),
    );
    stub(&bin, "id", &format!("echo {}", machine.uid));
    stub(
        &bin,
        "python3",
        if machine.venv { "exit 0" } else { "exit 1" },
    );
    match machine.apt {
        Apt::Missing => {}
        Apt::Works => stub(&bin, "apt-get", &logged),
        Apt::Fails => stub(&bin, "apt-get", &format!("{logged}\nexit 100")),
    }
    if machine.sudo {
        stub(&bin, "sudo", &format!("{logged}\nexec \"$@\""));
    }
    for program in machine.programs {
        stub(&bin, &name(program), "exit 0");
    }
    let out = Command::new(workspace_root().join("scripts/install-deps.sh"))
        .env_clear()
        .env("PATH", &bin)
        .output()
        .expect("run scripts/install-deps.sh");
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    (out, calls)
}

fn stub(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write stub");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn which(tool: &str) -> PathBuf {
    ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} is not installed"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn nothing_missing_is_silent() {
    let (out, calls) = run(&FULL);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "no output when nothing is missing");
    assert_eq!(text(&out.stderr), "");
    assert!(
        !calls.contains("apt-get") && !calls.contains(" add "),
        "{calls}"
    );
}

#[test]
fn root_installs_the_missing_targets_and_packages_with_apt_get() {
    let (out, calls) = run(&Machine {
        targets: &[],
        components: &["rustfmt"],
        programs: &["cc", "runc", "systemd-analyze"],
        venv: false,
        ..FULL
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    let arch = std::env::consts::ARCH;
    assert!(
        calls.contains(&format!(
            "rustup --quiet target add wasm32-wasip2 {arch}-unknown-linux-musl"
        )) && calls.contains("rustup --quiet component add clippy\n"),
        "{calls}"
    );
    assert!(
        calls.contains("apt-get update -qq\n")
            && calls.contains("apt-get install -y -qq musl-tools podman python3-venv\n"),
        "{calls}"
    );
    assert!(!calls.contains("sudo"), "root needs no sudo: {calls}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("installing musl-tools podman python3-venv (apt-get)"),
        "{stdout}"
    );
}

#[test]
fn a_user_with_sudo_installs_with_sudo() {
    let (out, calls) = run(&Machine {
        uid: 1000,
        sudo: true,
        programs: &["MUSL_GCC", "podman", "runc", "systemd-analyze"],
        ..FULL
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        calls.contains("sudo apt-get update -qq\n")
            && calls
                .contains("sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc\n"),
        "{calls}"
    );
}

#[test]
fn without_root_or_sudo_it_stops_with_the_command_to_run() {
    let (out, calls) = run(&Machine {
        uid: 1000,
        programs: &["cc", "MUSL_GCC", "runc", "systemd-analyze"],
        ..FULL
    });
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr,
        "error: missing podman; as root, run: apt-get update && apt-get install -y podman\n"
    );
    assert!(!calls.contains("apt-get"), "{calls}");
}

#[test]
fn without_apt_it_stops_naming_what_is_missing() {
    let (out, _) = run(&Machine {
        apt: Apt::Missing,
        programs: &["cc", "MUSL_GCC", "podman", "runc"],
        ..FULL
    });
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: missing systemd (Debian package names) and there is no apt-get here"
        ) && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn a_failed_install_names_the_command_to_run() {
    let (out, calls) = run(&Machine {
        uid: 1000,
        sudo: true,
        apt: Apt::Fails,
        programs: &["MUSL_GCC", "podman", "runc", "systemd-analyze"],
        ..FULL
    });
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr),
        "error: could not install gcc; run: sudo apt-get update && sudo apt-get install -y gcc\n"
    );
    assert!(calls.contains("sudo apt-get update -qq"), "{calls}");
}
