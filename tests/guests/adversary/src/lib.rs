//! A hostile guest for the sandbox tests. The job config key `mode` picks the
//! attack; the probing modes (`env`, `files`, `socket`) report what they saw as
//! one JSON event so the test can assert every attempt was denied. The
//! injection modes put [`INJECTION`] (a forged log line, terminal escapes,
//! every kind of line break) into each place a guest's words reach the
//! operator, and the size modes make each of them huge. The config key
//! `validate` makes `validate-config` itself hostile (`inject`, `huge`).

use std::collections::BTreeMap;

use serde_json::json;

mod bindings {
    wit_bindgen::generate!({ world: "guest", path: "../../../wit" });
}

use bindings::cwpub::publisher::diagnostics::log;
use bindings::cwpub::publisher::types::{
    GuestError, Level, LogEvent, Output, PayloadKind, RunContext,
};
use bindings::exports::cwpub::publisher::publisher::Guest;

/// Text that would forge a host log record, recolour or rewrite the
/// operator's terminal, or break a line in any of the ways a viewer might
/// honour, if it were printed as it is. Tests look for `FORGED`.
pub const INJECTION: &str = "INJECTED\n2026-11-30T00:00:00.000000Z ERROR cwpub::daemon: FORGED kind=\"credentials\" rotated\r\x1b[2K\x1b[31mFORGED red\x1b[0m\u{85}FORGED nel\u{2028}FORGED ls\u{2029}FORGED ps\u{202e}FORGED rlo\u{9b}31mFORGED csi\x07\x08\x7f\0\tend";

/// Bytes of the huge messages (8 MiB).
const HUGE: usize = 8 << 20;

/// Zeroed memory the guest is linked with (`.bss`, so it costs nothing in
/// the component): with it, the guest needs about 13 MiB of linear memory
/// before it runs at all.
static mut BALLAST: [u8; BALLAST_BYTES] = [0; BALLAST_BYTES];
const BALLAST_BYTES: usize = 12 << 20;

struct Adversary;

impl Guest for Adversary {
    fn validate_config(_job: String, config: Vec<(String, String)>) -> Result<(), GuestError> {
        match setting(&config, "validate").as_deref() {
            Some("inject") => return Err(GuestError::InvalidConfig(INJECTION.into())),
            Some("huge") => return Err(GuestError::InvalidConfig(huge_text())),
            Some("panic") => panic!("{INJECTION}"),
            _ => {}
        }
        match setting(&config, "mode") {
            Some(_) => Ok(()),
            None => Err(GuestError::InvalidConfig(
                "config key `mode` is required".into(),
            )),
        }
    }

    fn run(ctx: RunContext) -> Result<Output, GuestError> {
        let mode = setting(&ctx.config, "mode").unwrap_or_default();
        let report = match mode.as_str() {
            "ok" => json!({"ok": true}),
            "loop" => spin_forever(),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                json!({"slept": true})
            }
            "memory" => grow_memory_forever(),
            "panic" => panic!("adversary panicked on purpose"),
            "print" => print_100_mb(),
            "events" => {
                let events = (0..1_000_000u64)
                    .map(|i| LogEvent {
                        timestamp_ms: ctx.actual_ms,
                        message: format!("e{i}"),
                    })
                    .collect();
                return Ok(Output {
                    kind: PayloadKind::JsonLog,
                    events,
                });
            }
            "env" => probe_env(),
            "files" => probe_files(setting(&ctx.config, "path")),
            "socket" => probe_socket(&setting(&ctx.config, "port").unwrap_or_else(|| "1".into())),
            "fatal" => return Err(GuestError::Fatal("adversary gives up".into())),
            "diag-inject" => {
                for level in [
                    Level::Trace,
                    Level::Debug,
                    Level::Info,
                    Level::Warn,
                    Level::Error,
                ] {
                    log(level, INJECTION);
                }
                json!({"logged": 5})
            }
            "diag-huge" => {
                log(Level::Error, &huge_text());
                json!({"logged": HUGE})
            }
            "diag-flood" => {
                let message = format!("{INJECTION}{}", "f".repeat(8 << 10));
                for _ in 0..1_000 {
                    log(Level::Warn, &message);
                }
                json!({"logged": 1_000})
            }
            "error-inject" => return Err(guest_error(&ctx.config, INJECTION.into())),
            "error-huge" => return Err(guest_error(&ctx.config, huge_text())),
            "alternate" => {
                let message = format!("{INJECTION}{}", "a".repeat(64 << 10));
                return Err(if ctx.sequence.is_multiple_of(2) {
                    GuestError::Transient(message)
                } else {
                    GuestError::Fatal(message)
                });
            }
            "panic-inject" => panic!("{INJECTION}"),
            "stdio-inject" => {
                println!("{INJECTION}");
                eprintln!("{INJECTION}");
                json!({"printed": true})
            }
            "stdio-inject-fail" => {
                eprintln!("{INJECTION}");
                return Err(GuestError::Fatal("failed after printing".into()));
            }
            "trap-name" => {
                trap_with_a_forged_name();
                json!({"trapped": false})
            }
            "big-frame" => json!({"sum": big_frame(std::hint::black_box(7))}),
            "recurse" => json!({"depth": recurse(std::hint::black_box(0))}),
            "ballast" => {
                let at = ctx.sequence as usize % BALLAST_BYTES;
                // SAFETY: `at` is in bounds, and nothing writes the ballast.
                let byte =
                    unsafe { std::ptr::read_volatile((&raw const BALLAST).cast::<u8>().add(at)) };
                json!({"ballast": byte})
            }
            "emf-mixed" => return Ok(mixed_emf(ctx.actual_ms)),
            "framing" => {
                let events = ["fine", "", "two\nlines"]
                    .into_iter()
                    .map(|m| LogEvent {
                        timestamp_ms: ctx.actual_ms,
                        message: m.to_owned(),
                    })
                    .collect();
                return Ok(Output {
                    kind: PayloadKind::JsonLog,
                    events,
                });
            }
            other => return Err(GuestError::InvalidConfig(format!("unknown mode `{other}`"))),
        };
        Ok(Output {
            kind: PayloadKind::JsonLog,
            events: vec![LogEvent {
                timestamp_ms: ctx.actual_ms,
                message: report.to_string(),
            }],
        })
    }
}

bindings::export!(Adversary with_types_in bindings);

/// Two valid EMF documents around one without a namespace (invalid).
fn mixed_emf(now_ms: u64) -> Output {
    let doc = |namespace: Option<&str>, value: u64| {
        let mut directive =
            json!({"Dimensions": [["Service"]], "Metrics": [{"Name": "Probe", "Unit": "Count"}]});
        if let Some(ns) = namespace {
            directive["Namespace"] = json!(ns);
        }
        json!({"_aws": {"Timestamp": now_ms, "CloudWatchMetrics": [directive]}, "Service": "adversary", "Probe": value})
            .to_string()
    };
    let events = [
        doc(Some("cwpub/test"), 1),
        doc(None, 2),
        doc(Some("cwpub/test"), 3),
    ]
    .into_iter()
    .map(|message| LogEvent {
        timestamp_ms: now_ms,
        message,
    })
    .collect();
    Output {
        kind: PayloadKind::Emf,
        events,
    }
}

/// An 8 MiB message that starts with [`INJECTION`].
fn huge_text() -> String {
    let mut text = String::with_capacity(HUGE);
    text.push_str(INJECTION);
    while text.len() < HUGE {
        text.push_str(" filler");
    }
    text.truncate(HUGE);
    text
}

/// The `guest-error` case the config key `case` names (default `fatal`).
fn guest_error(config: &[(String, String)], message: String) -> GuestError {
    match setting(config, "case").as_deref() {
        Some("invalid-config") => GuestError::InvalidConfig(message),
        Some("transient") => GuestError::Transient(message),
        _ => GuestError::Fatal(message),
    }
}

/// Traps with `unreachable` inside a function whose name, as the guest's
/// name section records it, is an injection.
#[inline(never)]
#[unsafe(export_name = "FORGED\n2026-11-30T00:00:00.000000Z ERROR cwpub::daemon: FORGED frame\x1b[31m")]
pub extern "C" fn trap_with_a_forged_name() {
    std::process::abort();
}

/// A function whose 4 MiB frame does not fit the guest's 1 MiB stack.
#[inline(never)]
fn big_frame(seed: u8) -> u64 {
    let mut frame = [seed; 4 << 20];
    std::hint::black_box(&mut frame);
    frame.iter().map(|&b| u64::from(b)).sum()
}

/// Recursion that never ends in practice (each frame kept alive by `black_box`).
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let local = [depth; 16];
    std::hint::black_box(&local);
    recurse(std::hint::black_box(depth + 1)) + local[0]
}

fn setting(config: &[(String, String)], key: &str) -> Option<String> {
    config
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

fn spin_forever() -> serde_json::Value {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn grow_memory_forever() -> serde_json::Value {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 8 << 20]);
        std::hint::black_box(&hoard);
    }
}

fn print_100_mb() -> serde_json::Value {
    let line = "x".repeat(1023);
    for _ in 0..(100 * 1024) {
        println!("{line}");
    }
    json!({"printed": 100})
}

fn probe_env() -> serde_json::Value {
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    json!({
        "vars": vars,
        "args": std::env::args().collect::<Vec<_>>(),
        "secret": std::env::var("AWS_SECRET_ACCESS_KEY").ok(),
        "home": std::env::var("HOME").ok(),
    })
}

/// Tries the usual credential files, plus `extra` (config key `path`, e.g. a token file).
fn probe_files(extra: Option<String>) -> serde_json::Value {
    let mut results = BTreeMap::new();
    let usual = [
        "/etc/hostname",
        "/root/.aws/credentials",
        "~/.aws/credentials",
        ".aws/credentials",
        "/",
        ".",
    ];
    for path in usual.into_iter().map(str::to_owned).chain(extra) {
        let path = path.as_str();
        let outcome = match std::fs::read(path) {
            Ok(bytes) => format!(
                "READ {} bytes: {}",
                bytes.len(),
                String::from_utf8_lossy(&bytes)
            ),
            Err(e) => match std::fs::read_dir(path) {
                Ok(entries) => format!("LISTED {} entries", entries.count()),
                Err(_) => format!("denied: {e}"),
            },
        };
        results.insert(path.to_owned(), outcome);
    }
    json!({ "files": results })
}

fn probe_socket(port: &str) -> serde_json::Value {
    let tcp = match std::net::TcpStream::connect(format!("127.0.0.1:{port}")) {
        Ok(_) => "CONNECTED".to_owned(),
        Err(e) => format!("denied: {e}"),
    };
    let udp = match std::net::UdpSocket::bind("0.0.0.0:0") {
        Ok(socket) => match socket.send_to(b"hello", format!("127.0.0.1:{port}")) {
            Ok(_) => "SENT".to_owned(),
            Err(e) => format!("denied: {e}"),
        },
        Err(e) => format!("denied: {e}"),
    };
    let dns = match std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 80)) {
        Ok(addrs) => format!("RESOLVED {}", addrs.count()),
        Err(e) => format!("denied: {e}"),
    };
    json!({ "tcp": tcp, "udp": udp, "dns": dns })
}
