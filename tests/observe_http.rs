//! The observability endpoint over real loopback HTTP: `/healthz`, `/readyz`
//! (ready and not ready), `/metrics` contents, unknown paths and methods, a
//! clear bind error, and a clean stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cwpub::ledger::{DropReason, Ledger, Metrics, Share};
use cwpub::observe::{self, JobMetrics, ObserveState, Readiness};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(20);

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

/// One HTTP/1.1 request over a fresh connection (closed by the client's `Connection: close`).
async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> Reply {
    let io = async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("send");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        raw
    };
    let raw = tokio::time::timeout(LIMIT, io)
        .await
        .expect("reply in time");
    let text = String::from_utf8(raw).expect("utf-8 reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

async fn start(state: ObserveState) -> (observe::ObserveServer, CancellationToken) {
    let token = CancellationToken::new();
    let server = observe::serve("127.0.0.1:0".parse().unwrap(), state, token.clone())
        .await
        .expect("serve");
    assert!(server.local_addr().ip().is_loopback());
    assert_ne!(server.local_addr().port(), 0);
    (server, token)
}

#[tokio::test]
async fn healthz_and_readyz() {
    let ready = Arc::new(AtomicBool::new(false));
    let flag = ready.clone();
    let state = ObserveState::new(Metrics::new()).with_readiness(move || {
        if flag.load(Ordering::SeqCst) {
            Readiness::ready()
        } else {
            Readiness {
                reasons: vec![
                    "guests not loaded yet".into(),
                    "circuit open for /cwpub/hb:web-1-hb after 5 failures".into(),
                ],
            }
        }
    });
    let (server, _token) = start(state).await;
    let addr = server.local_addr();

    let r = request(addr, "GET", "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));

    let r = request(addr, "GET", "/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        "not ready\n- guests not loaded yet\n- circuit open for /cwpub/hb:web-1-hb after 5 failures\n"
    );

    ready.store(true, Ordering::SeqCst);
    let r = request(addr, "GET", "/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));
    // Liveness does not depend on readiness.
    assert_eq!(request(addr, "GET", "/healthz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn metrics_report_jobs_failures_ledger_counters_and_stage_gauges() {
    let ledger = Ledger::default();
    let jobs = JobMetrics::new();
    ledger.metrics().collector(jobs.clone());
    let hb = jobs.register("heartbeat");
    hb.record_success(Duration::from_millis(4));
    hb.record_success(Duration::from_millis(7));
    hb.record_failure("deadline", Duration::from_secs(2));
    let emf = jobs.register("emf");
    emf.record_failure("guest_fatal", Duration::from_millis(1));
    let target = cwpub::sinks::cloudwatch::target("cloudwatch", "/cwpub/hb", "web-1-hb");
    ledger.delivered(
        &target,
        &[Share {
            job: "heartbeat",
            events: 42,
            bytes: 4200,
        }],
    );
    ledger.dropped("heartbeat", &target, DropReason::TooOld, 3);
    // A stage's own live gauge, registered in the same registry.
    ledger
        .metrics()
        .gauge("cwpub_delivery_buffered_events", "Events buffered.")
        .set(7);
    let state = ObserveState::new(ledger.metrics().clone())
        .with_readiness(|| Readiness::not_ready("circuit open"));
    let (server, _token) = start(state).await;
    let r = request(server.local_addr(), "GET", "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{}",
        r.headers
    );
    let body = r.body;
    for line in [
        "# TYPE cwpub_job_runs_total counter",
        "cwpub_job_runs_total{job=\"heartbeat\",outcome=\"success\"} 2",
        "cwpub_job_runs_total{job=\"heartbeat\",outcome=\"failure\"} 1",
        "cwpub_job_runs_total{job=\"emf\",outcome=\"failure\"} 1",
        "cwpub_job_failures_total{job=\"heartbeat\",kind=\"deadline\"} 1",
        "cwpub_job_failures_total{job=\"emf\",kind=\"guest_fatal\"} 1",
        "cwpub_job_ticks_skipped_total{job=\"heartbeat\"} 0",
        "cwpub_job_ticks_missed_total{job=\"emf\"} 0",
        "# TYPE cwpub_job_run_duration_seconds histogram",
        "cwpub_job_run_duration_seconds_bucket{job=\"heartbeat\",le=\"0.005\"} 1",
        "cwpub_job_run_duration_seconds_bucket{job=\"heartbeat\",le=\"0.01\"} 2",
        "cwpub_job_run_duration_seconds_bucket{job=\"heartbeat\",le=\"+Inf\"} 3",
        "cwpub_job_run_duration_seconds_count{job=\"heartbeat\"} 3",
        "cwpub_ready 0",
        "# HELP cwpub_target_events_sent_total Events the sink accepted, by target.",
        "cwpub_target_events_sent_total{sink=\"cloudwatch\",log_group=\"/cwpub/hb\",log_stream=\"web-1-hb\"} 42",
        "cwpub_target_events_dropped_total{sink=\"cloudwatch\",log_group=\"/cwpub/hb\",log_stream=\"web-1-hb\",reason=\"too_old\"} 3",
        "cwpub_job_delivery_bytes_sent_total{job=\"heartbeat\"} 4200",
        "# HELP cwpub_delivery_buffered_events Events buffered.",
        "cwpub_delivery_buffered_events 7",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in:\n{body}"
        );
    }
    assert!(
        body.lines()
            .any(|l| l.starts_with("cwpub_build_info{version=\""))
    );
    // Every family is announced once, and every non-comment line is "name[{labels}] value".
    let types: Vec<&str> = body.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let mut unique = types.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(types.len(), unique.len(), "a family announced twice");
    for l in body.lines().filter(|l| !l.starts_with('#')) {
        let value = l.rsplit(' ').next().unwrap_or("");
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf",
            "bad sample line {l:?}"
        );
    }
    // Counters move between scrapes.
    hb.record_failure("deadline", Duration::from_secs(2));
    ledger.dropped("heartbeat", &target, DropReason::TooOld, 1);
    let body = request(server.local_addr(), "GET", "/metrics").await.body;
    assert!(body.contains("cwpub_job_failures_total{job=\"heartbeat\",kind=\"deadline\"} 2\n"));
    assert!(body.contains(
        "cwpub_job_delivery_events_dropped_total{job=\"heartbeat\",reason=\"too_old\"} 4\n"
    ));
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let (server, _token) = start(ObserveState::new(Metrics::new())).await;
    let addr = server.local_addr();
    let r = request(addr, "GET", "/nope").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "not found; try /healthz, /readyz or /metrics\n")
    );
    let r = request(addr, "POST", "/metrics").await;
    assert_eq!(r.status, 405);
    assert!(r.headers.contains("allow: get, head"), "{}", r.headers);
    let r = request(addr, "HEAD", "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let r = request(addr, "GET", "/healthz?verbose=1").await;
    assert_eq!(r.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn bind_conflict_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port to clash with");
    let addr = taken.local_addr().unwrap();
    let err = observe::serve(
        addr,
        ObserveState::new(Metrics::new()),
        CancellationToken::new(),
    )
    .await
    .expect_err("the port is taken");
    assert_eq!(
        err.to_string(),
        format!(
            "observe: cannot listen on {addr}: address in use; set [observe] listen or enabled = false"
        )
    );
}

#[tokio::test]
async fn cancelling_the_token_stops_the_server() {
    let (server, token) = start(ObserveState::new(Metrics::new())).await;
    let addr = server.local_addr();
    assert_eq!(request(addr, "GET", "/healthz").await.status, 200);
    token.cancel();
    tokio::time::timeout(LIMIT, server.join())
        .await
        .expect("server stops in time");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener must be closed"
    );
}
