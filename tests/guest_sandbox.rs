//! Hostile guests are contained: each attack in `tests/guests/adversary` fails
//! with its own error kind within its deadline, probes of env/files/network
//! find nothing, other runs keep going, and a secret in the host's environment
//! never appears in any guest output. Failures are named from wasmtime's
//! types; the few text matches left are pinned here against real guests.

use crate::support::test_guests;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cwpub::guest::{
    FailureKind, GuestSource, HostFacts, LoadedGuest, RunError, RunLimits, RunOutput, RunRequest,
    Runtime,
};
use cwpub::untrusted::MAX_RENDERED_BYTES;
use serde_json::Value;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY-cwpub-test";

async fn adversary() -> LoadedGuest {
    let path = test_guests::test_guest("adversary");
    let runtime = Runtime::new().expect("engine");
    runtime
        .load(&GuestSource::Path(path))
        .await
        .expect("adversary loads")
}

/// A deadline for runs whose deadline is not the point: no run reaches it
/// unless something is broken, however busy the machine.
const AMPLE_MS: u64 = 60_000;

fn limits(deadline_ms: u64) -> RunLimits {
    RunLimits {
        deadline: Duration::from_millis(deadline_ms),
        ..RunLimits::default()
    }
}

async fn run_mode(
    guest: &LoadedGuest,
    mode: &str,
    limits: &RunLimits,
) -> (Result<RunOutput, RunError>, Duration) {
    let config: Arc<[(String, String)]> = vec![("mode".to_owned(), mode.to_owned())].into();
    let request = RunRequest::now(
        format!("adversary-{mode}").into(),
        1,
        config,
        HostFacts::from_process(),
    );
    let started = Instant::now();
    let result = guest.run(&request, limits).await;
    (result, started.elapsed())
}

fn expect_failure(result: Result<RunOutput, RunError>, mode: &str) -> RunError {
    match result {
        Ok(output) => panic!(
            "mode {mode}: expected a failure, got {} events",
            output.events.len()
        ),
        Err(e) => {
            assert_eq!(
                &*e.job,
                format!("adversary-{mode}"),
                "the error names the job"
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("job \"adversary-{mode}\": ")),
                "{e}"
            );
            e
        }
    }
}

/// How much later than its deadline a run may end: the deadline is checked
/// at every epoch tick, but a busy machine may not give the thread its CPU
/// back at once. A run that ignored its deadline would spin far longer.
const DEADLINE_SLACK: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_hits_the_deadline() {
    let guest = adversary().await;
    let (result, elapsed) = run_mode(&guest, "loop", &limits(300)).await;
    let e = expect_failure(result, "loop");
    assert_eq!(
        e.kind,
        FailureKind::Deadline {
            limit: Duration::from_millis(300)
        }
    );
    assert!(
        e.to_string().contains("guest exceeded its 300 ms deadline"),
        "{e}"
    );
    assert!(
        (Duration::from_millis(300)..Duration::from_millis(300) + DEADLINE_SLACK)
            .contains(&elapsed),
        "contained in {elapsed:?}"
    );
}

#[tokio::test]
async fn other_runs_continue_while_a_guest_spins() {
    let guest = adversary().await;
    // A loop with a deadline far longer than any well-behaved run takes,
    // even on a busy machine: the ok run must end while it still spins.
    let looping = {
        let guest = guest.clone();
        tokio::spawn(async move { run_mode(&guest, "loop", &limits(5_000)).await })
    };
    // On this single-threaded test runtime, one yield runs the loop's task
    // up to its first wait: it holds an instance slot and its call is on a
    // guest thread before the ok run asks for either.
    tokio::task::yield_now().await;
    let (ok, ok_elapsed) = run_mode(&guest, "ok", &limits(AMPLE_MS)).await;
    assert!(
        !looping.is_finished(),
        "the ok run ended only after the loop ({ok_elapsed:?}): it waited behind it"
    );
    assert_eq!(ok.expect("ok run").events.len(), 1);
    let (result, elapsed) = looping.await.expect("task");
    assert_eq!(expect_failure(result, "loop").kind.label(), "deadline");
    assert!(ok_elapsed < elapsed, "{ok_elapsed:?} {elapsed:?}");
}

#[tokio::test]
async fn blocking_host_wait_hits_the_deadline() {
    let guest = adversary().await;
    let (result, elapsed) = run_mode(&guest, "sleep", &limits(300)).await;
    let e = expect_failure(result, "sleep");
    assert_eq!(e.kind.label(), "deadline");
    assert!(
        (Duration::from_millis(300)..Duration::from_millis(300) + DEADLINE_SLACK)
            .contains(&elapsed),
        "contained in {elapsed:?}"
    );
}

#[tokio::test]
async fn unbounded_memory_growth_hits_the_memory_cap() {
    let guest = adversary().await;
    let limits = RunLimits {
        max_memory_bytes: 32 << 20,
        ..limits(AMPLE_MS)
    };
    let (result, _) = run_mode(&guest, "memory", &limits).await;
    let e = expect_failure(result, "memory");
    match e.kind {
        FailureKind::Memory {
            limit,
            requested,
            at_start,
        } => {
            assert_eq!(limit, 32 << 20);
            assert!(requested > limit, "requested {requested}");
            assert!(!at_start, "it ran first");
        }
        other => panic!("expected a memory failure, got {other:?}"),
    }
    assert!(
        e.stderr.to_string().contains("memory allocation of"),
        "stderr attached: {}",
        e.stderr
    );
}

#[tokio::test]
async fn panic_is_reported_with_its_message() {
    let guest = adversary().await;
    let (result, _) = run_mode(&guest, "panic", &limits(AMPLE_MS)).await;
    let e = expect_failure(result, "panic");
    let FailureKind::Panic { message } = &e.kind else {
        panic!("expected a panic, got {:?}", e.kind)
    };
    let message = message.to_string();
    assert!(
        message.starts_with("adversary panicked on purpose (at tests/guests/adversary/src/lib.rs:"),
        "{message}"
    );
    // The report on stderr became the message; it is not repeated, and its
    // advice to set RUST_BACKTRACE (which a guest cannot see) is gone.
    assert!(e.stderr.is_empty(), "{e}");
    assert!(!e.to_string().contains("RUST_BACKTRACE"), "{e}");
}

#[tokio::test]
async fn printing_100_mb_overflows_the_capture_cap() {
    let guest = adversary().await;
    let (result, elapsed) = run_mode(&guest, "print", &limits(AMPLE_MS)).await;
    let e = expect_failure(result, "print");
    assert_eq!(
        e.kind,
        FailureKind::StdioOverflow {
            stream: "stdout",
            limit: RunLimits::DEFAULT_MAX_STDIO_BYTES
        }
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "stopped at the cap, not after 100 MB: {elapsed:?}"
    );
}

#[tokio::test]
async fn a_million_events_is_output_too_large() {
    let guest = adversary().await;
    // Room for the guest to build its million events, so the output limit
    // (hostcall fuel while lifting, or the count check after) is what trips.
    let limits = RunLimits {
        max_memory_bytes: 256 << 20,
        ..limits(AMPLE_MS)
    };
    let (result, _) = run_mode(&guest, "events", &limits).await;
    let e = expect_failure(result, "events");
    let FailureKind::OutputTooLarge { detail } = &e.kind else {
        panic!("got {:?}", e.kind)
    };
    assert!(
        detail.starts_with("1000000 events (limit 10000;"),
        "names the event limit: {detail}"
    );
}

/// Every piece of wasmtime's or Rust's text the classification still relies
/// on is exercised here against a real guest, so a toolchain or wasmtime
/// upgrade that changes it fails this test instead of misnaming failures.
/// (Everything else is classified from wasmtime's types.)
#[tokio::test]
async fn every_remaining_text_match_is_pinned() {
    use cwpub::guest::classify::{PANIC_MARKER, PANIC_NOTE, PANIC_THREAD, TEXT_MATCHES};
    assert_eq!(
        TEXT_MATCHES,
        [PANIC_THREAD, PANIC_MARKER, PANIC_NOTE],
        "a new text match needs a case in this test"
    );
    let guest = adversary().await;

    // PANIC_THREAD, PANIC_MARKER and PANIC_NOTE: Rust's panic report,
    // message and location found, the `note:` line not taken for part of
    // the message.
    let (result, _) = run_mode(&guest, "panic", &limits(AMPLE_MS)).await;
    let e = expect_failure(result, "panic");
    let FailureKind::Panic { message } = &e.kind else {
        panic!("expected a panic, got {e}")
    };
    let message = message.to_string();
    assert!(
        message.starts_with("adversary panicked on purpose (at tests/guests/adversary/src/lib.rs:")
            && message.ends_with(')'),
        "{message}"
    );
    assert!(!message.contains("note:"), "{message}");
}

/// A frame larger than the guest's whole stack makes wasmtime report an
/// out-of-bounds access; the wrapped stack pointer tells it apart.
#[tokio::test]
async fn a_big_stack_frame_is_a_stack_overflow() {
    let guest = adversary().await;
    let (result, _) = run_mode(&guest, "big-frame", &limits(AMPLE_MS)).await;
    let e = expect_failure(result, "big-frame");
    let FailureKind::StackOverflow { backtrace } = &e.kind else {
        panic!("expected a stack overflow, got {e}")
    };
    assert!(
        backtrace.to_string().contains("adversary::big_frame"),
        "the backtrace names the function: {e}"
    );
    assert!(e.to_string().contains("guest overflowed its stack"), "{e}");
}

#[tokio::test]
async fn deep_recursion_is_a_stack_overflow() {
    let guest = adversary().await;
    let (result, _) = run_mode(&guest, "recurse", &limits(AMPLE_MS)).await;
    let e = expect_failure(result, "recurse");
    assert_eq!(e.kind.label(), "stack_overflow", "{e}");
    assert!(e.to_string().contains("adversary::recurse"), "{e}");
}

#[tokio::test]
async fn initial_memory_over_the_cap_is_named_in_mib() {
    let guest = adversary().await;
    let limits = RunLimits {
        max_memory_bytes: 8 << 20,
        ..limits(AMPLE_MS)
    };
    let (result, _) = run_mode(&guest, "ballast", &limits).await;
    let e = expect_failure(result, "ballast");
    let FailureKind::Memory {
        requested,
        at_start: true,
        ..
    } = e.kind
    else {
        panic!("expected a memory failure at start, got {e}")
    };
    assert!(
        requested > 12 << 20,
        "the ballast alone is 12 MiB: {requested}"
    );
    let needs = if requested.is_multiple_of(1 << 20) {
        (requested >> 20).to_string()
    } else {
        format!("{:.1}", requested as f64 / f64::from(1 << 20))
    };
    assert!(
        e.to_string().ends_with(&format!(
            "guest needs {needs} MiB at start, limit is 8 MiB; raise the job's memory_mb"
        )),
        "{e}"
    );
    // With room for it, the same guest runs.
    let (ok, _) = run_mode(&guest, "ballast", &limits_with_memory(16)).await;
    ok.expect("runs with 16 MiB");
}

fn limits_with_memory(mib: usize) -> RunLimits {
    RunLimits {
        max_memory_bytes: mib << 20,
        ..limits(AMPLE_MS)
    }
}

#[tokio::test]
async fn a_10_mib_diagnostic_is_cut_not_fatal() {
    let guest = adversary().await;
    let (result, _) = run_mode(&guest, "diag-huge", &limits(AMPLE_MS)).await;
    let output = result.unwrap_or_else(|e| panic!("one huge diagnostic fails nothing: {e}"));
    assert_eq!(output.events.len(), 1);
}

#[tokio::test]
async fn guest_words_are_kept_capped_and_shown_escaped() {
    let guest = adversary().await;
    let (result, _) = run_mode(&guest, "error-huge", &limits(AMPLE_MS)).await;
    let e = expect_failure(result, "error-huge");
    let FailureKind::Fatal(message) = &e.kind else {
        panic!("expected fatal, got {e}")
    };
    assert_eq!(message.original_len(), 8 << 20);
    let shown = message.to_string();
    assert!(
        shown.len() <= MAX_RENDERED_BYTES + 32,
        "{} bytes",
        shown.len()
    );
    assert!(
        shown.starts_with("INJECTED\\n2026-11-30T00:00:00.000000Z ERROR"),
        "{shown}"
    );
    assert!(shown.ends_with(" bytes cut]"), "{shown}");

    let (result, _) = run_mode(&guest, "trap-name", &limits(AMPLE_MS)).await;
    let e = expect_failure(result, "trap-name");
    let shown = e.to_string();
    assert_eq!(e.kind.label(), "trap", "{shown}");
    assert!(
        shown.contains(
            "FORGED\\n2026-11-30T00:00:00.000000Z ERROR cwpub::daemon: FORGED frame\\u{1b}[31m"
        ),
        "the function name from the name section is escaped: {shown}"
    );
    assert!(!shown.chars().any(char::is_control), "{shown:?}");

    let (result, _) = run_mode(&guest, "stdio-inject", &limits(AMPLE_MS)).await;
    let output = result.expect("prints and succeeds");
    for stream in [&output.stdout, &output.stderr] {
        let shown = stream.to_string();
        assert!(shown.starts_with("INJECTED\\n"), "{shown}");
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
    }
}

#[tokio::test]
async fn environment_files_and_network_are_denied() {
    let guest = adversary().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();

    let report = |mode: &str, extra: Vec<(String, String)>| {
        let guest = guest.clone();
        let mode = mode.to_owned();
        async move {
            let mut config = vec![("mode".to_owned(), mode.clone())];
            config.extend(extra);
            let request =
                RunRequest::now("probe".into(), 1, config.into(), HostFacts::from_process());
            let output = guest
                .run(&request, &limits(AMPLE_MS))
                .await
                .unwrap_or_else(|e| panic!("mode {mode}: {e}"));
            serde_json::from_str::<Value>(&output.events[0].message).expect("probe report is JSON")
        }
    };

    let env = report("env", vec![]).await;
    assert_eq!(
        env["vars"],
        serde_json::json!({}),
        "no environment variables: {env}"
    );
    assert_eq!(env["args"], serde_json::json!([]), "no arguments: {env}");
    assert_eq!(env["secret"], Value::Null);

    let files = report("files", vec![]).await;
    for (path, outcome) in files["files"].as_object().expect("files map") {
        let outcome = outcome.as_str().expect("string");
        assert!(
            outcome.starts_with("denied: "),
            "{path} was reachable: {outcome}"
        );
    }

    let net = report("socket", vec![("port".to_owned(), port.to_string())]).await;
    for probe in ["tcp", "udp", "dns"] {
        let outcome = net[probe].as_str().expect("string");
        assert!(
            outcome.starts_with("denied: "),
            "{probe} was allowed: {outcome}"
        );
    }
    assert!(
        listener.accept().is_err(),
        "no connection reached the host's listener"
    );
}

/// The real binary, with a secret in its environment and a credentials file in
/// its HOME: no guest output (events, stdout, stderr, error messages) has it.
#[test]
fn secrets_in_the_host_environment_never_reach_guest_output() {
    let adversary = test_guests::test_guest("adversary");
    let home = tempfile::tempdir().expect("temp HOME");
    std::fs::create_dir_all(home.path().join(".aws")).expect("mkdir");
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!("[default]\naws_secret_access_key = {SECRET}\n"),
    )
    .expect("credentials file");

    // Short deadlines only where the deadline is the point, so a loaded
    // machine cannot turn another failure into a deadline.
    let modes = [
        ("ok", true, "", "5000"),
        ("env", true, "", "5000"),
        ("files", true, "", "5000"),
        ("socket", true, "", "5000"),
        (
            "panic",
            false,
            "guest panicked: adversary panicked on purpose",
            "5000",
        ),
        ("loop", false, "guest exceeded its 400 ms deadline", "400"),
        ("sleep", false, "guest exceeded its 400 ms deadline", "400"),
        ("memory", false, "guest exceeded its memory limit", "5000"),
        (
            "print",
            false,
            "guest wrote more than 65536 bytes to stdout",
            "5000",
        ),
        ("fatal", false, "guest failed: adversary gives up", "5000"),
    ];
    for (mode, succeeds, message, timeout_ms) in modes {
        let output = Command::new(env!("CARGO_BIN_EXE_cwpub"))
            .args([
                "invoke",
                adversary.to_str().expect("utf-8 path"),
                "--timeout-ms",
                timeout_ms,
            ])
            .args(["--config", &format!("mode={mode}"), "--config", "port=9"])
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_ACCESS_KEY_ID", "AKIACWPUBTESTKEY")
            .env("HOME", home.path())
            .output()
            .expect("run cwpub");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.success(),
            succeeds,
            "mode {mode}: stdout={stdout} stderr={stderr}"
        );
        assert!(
            stderr.contains(message),
            "mode {mode}: stderr lacks {message:?}: {stderr}"
        );
        for leaked in [SECRET, "AKIACWPUBTESTKEY"] {
            assert!(
                !stdout.contains(leaked) && !stderr.contains(leaked),
                "mode {mode} leaked {leaked}"
            );
        }
    }
}

/// `cwpub invoke` says which events no sink would send as they are.
#[test]
fn invoke_reports_events_that_would_be_dropped() {
    let adversary = test_guests::test_guest("adversary");
    let output = Command::new(env!("CARGO_BIN_EXE_cwpub"))
        .args([
            "invoke",
            adversary.to_str().expect("utf-8 path"),
            "--config",
            "mode=framing",
        ])
        .output()
        .expect("run cwpub");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("event 1 is empty and would be dropped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("event 2 spans several lines: the stdout sink would drop it"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("event 0"),
        "the fine event is not reported: {stderr}"
    );
}
