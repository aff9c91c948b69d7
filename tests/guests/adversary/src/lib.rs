//! A hostile guest for the sandbox tests. The job config key `mode` picks the
//! attack; the probing modes (`env`, `files`, `socket`) report what they saw as
//! one JSON event so the test can assert every attempt was denied.

use std::collections::BTreeMap;

use serde_json::json;

mod bindings {
    wit_bindgen::generate!({ world: "guest", path: "../../../wit" });
}

use bindings::cwpub::publisher::types::{GuestError, LogEvent, Output, PayloadKind, RunContext};
use bindings::exports::cwpub::publisher::publisher::Guest;

struct Adversary;

impl Guest for Adversary {
    fn validate_config(_job: String, config: Vec<(String, String)>) -> Result<(), GuestError> {
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
