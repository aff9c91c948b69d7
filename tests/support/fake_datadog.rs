//! A strict fake of DataDog's Logs intake (`POST /api/v2/logs`) and Metrics
//! intake (`POST /api/v2/series`) on a loopback port, for DataDog sink tests.
//!
//! It checks every request the way DataDog documents its intakes, with its
//! own copy of the limits (never the sink's constants, so a wrong constant
//! in the sink cannot agree with itself):
//!
//! | check | answer | violation |
//! |---|---|---|
//! | `DD-API-KEY` missing / wrong | 401 / 403 | missing only |
//! | `Content-Encoding: gzip`, `Content-Type: application/json` | processed anyway (DataDog takes identity too) | yes |
//! | gzip that does not decode, JSON that does not parse, wrong shapes | 400 `{"errors": [...]}` | yes |
//! | logs: > 5,000,000 bytes uncompressed or > 1,000 items | 413 | yes |
//! | logs: an item over 1,000,000 bytes | 202 (DataDog truncates it) | yes |
//! | logs: `timestamp` more than 18 h old or 2 h ahead | 202 (DataDog drops it) | yes |
//! | series: > 512,000 bytes as sent, ≥ 5,242,880 decompressed | 413 | yes |
//! | series: a point more than 1 h old or 10 min ahead | 202, the point not stored | yes |
//!
//! A violation is something the cwpub sink must never cause; tests assert
//! there were none ([`FakeDatadog::assert_no_violations`]). What it accepts
//! is recorded in order ([`FakeDatadog::logs`], [`FakeDatadog::points`]);
//! everything it received can be checked once more by DataDog's own API
//! models ([`FakeDatadog::check_with_datadog_models`], Python
//! `datadog-api-client`, found through `CWPUB_DD_PYTHON`).
//!
//! Faults: the next requests' answers ([`FakeDatadog::push_faults`]), an
//! answer for every request while switched on ([`FakeDatadog::set_failing`]),
//! a share of requests throttled evenly ([`FakeDatadog::set_throttle_percent`],
//! 60 %: three of every five), and outages ([`FakeDatadog::set_down`]): every
//! connection dropped unanswered, or the port closed (connection refused).
//!
//! It runs on the runtime it is started on; blocking tests start it on
//! [`super::chaos::background`].
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use flate2::read::GzDecoder;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::chaos::Hangup;
use super::test_guests::workspace_root;

/// DataDog: "Maximum array size if sending multiple logs in an array: 1000 entries".
pub const LOGS_MAX_ITEMS: usize = 1_000;
/// DataDog: "Maximum content size per payload (uncompressed): 5MB" (decimal: the stricter reading).
pub const LOGS_MAX_BYTES: usize = 5_000_000;
/// DataDog: "Maximum size for a single log: 1MB" (decimal: the stricter reading).
pub const LOGS_MAX_ITEM_BYTES: usize = 1_000_000;
/// DataDog: logs "can be submitted up to 18 hours in the past".
pub const LOGS_MAX_AGE_MS: i64 = 18 * 3_600_000;
/// DataDog: "and two hours in the future".
pub const LOGS_MAX_AHEAD_MS: i64 = 2 * 3_600_000;
/// DataDog: "The maximum payload size is 500 kilobytes (512000 bytes)".
pub const SERIES_MAX_COMPRESSED: usize = 512_000;
/// DataDog: "a decompressed size of less than 5 megabytes (5242880 bytes)".
pub const SERIES_MAX_DECOMPRESSED: usize = 5_242_880;
/// DataDog: points "cannot be more than ten minutes in the future".
pub const SERIES_MAX_AHEAD_S: i64 = 600;
/// DataDog: "or more than one hour in the past".
pub const SERIES_MAX_AGE_S: i64 = 3_600;
/// DataDog: metric names "must not exceed 200 characters"; tags "up to 200 characters".
pub const NAME_MAX_CHARS: usize = 200;
/// DataDog's unit names of the families EMF units belong to (bytes, time, percentages).
pub const UNITS: [&str; 20] = [
    "bit",
    "byte",
    "kibibyte",
    "mebibyte",
    "gibibyte",
    "tebibyte",
    "pebibyte",
    "exbibyte",
    "nanosecond",
    "microsecond",
    "millisecond",
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "percent_nano",
    "percent",
    "apdex",
    "fraction",
];
/// Members of a `MetricSeries` (DataDog's API reference).
const SERIES_MEMBERS: [&str; 9] = [
    "metric",
    "type",
    "points",
    "tags",
    "unit",
    "resources",
    "interval",
    "metadata",
    "source_type_name",
];
/// Largest request body the fake reads (far above every limit).
const MAX_BODY: usize = 64 << 20;

/// An answer forced on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This status with DataDog's `{"errors": [...]}` body.
    Status(u16),
    /// 400 with this error text.
    BadRequest(&'static str),
    /// Close the connection unanswered.
    Reset,
    /// Never answer (until the client gives up and closes).
    Stall,
    /// 500 with a body of this many bytes.
    BigBody(usize),
}

/// An outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Connections are accepted and dropped unanswered.
    Reset,
    /// The port is closed: connections are refused (pooled ones dropped).
    Refused,
}

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `/api/v2/logs` or `/api/v2/series`.
    pub path: String,
    /// The status answered (0 when dropped unanswered).
    pub status: u16,
    /// Log items or series in the body (0 when it did not parse).
    pub items: usize,
    /// Bytes as sent.
    pub compressed: usize,
    /// Bytes after decompression.
    pub uncompressed: usize,
}

/// One accepted point, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub metric: String,
    pub tags: Vec<String>,
    pub timestamp: i64,
    pub value: f64,
    pub unit: Option<String>,
    pub host: Option<String>,
}

#[derive(Default)]
struct State {
    api_key: String,
    faults: VecDeque<Fault>,
    failing: Option<Fault>,
    throttle_percent: u64,
    outage: Option<Outage>,
    seen: Vec<Seen>,
    violations: Vec<String>,
    logs: Vec<Value>,
    series: Vec<Value>,
    points: Vec<Point>,
    /// Every body that parsed, for the model check.
    received_logs: Vec<Value>,
    received_series: Vec<Value>,
}

/// The running fake; stops when dropped.
pub struct FakeDatadog {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Requests that reached the throttle check, to spread the share evenly.
    counted: Arc<AtomicU64>,
    throttled: Arc<AtomicU64>,
    accept: Mutex<Option<JoinHandle<()>>>,
    runtime: tokio::runtime::Handle,
}

impl Drop for FakeDatadog {
    fn drop(&mut self) {
        if let Some(task) = self.accept_task().take() {
            task.abort();
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl FakeDatadog {
    /// Starts on a free loopback port, accepting `api_key`.
    pub async fn start(api_key: &str) -> FakeDatadog {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let fake = FakeDatadog {
            addr,
            state: Arc::new(Mutex::new(State {
                api_key: api_key.to_string(),
                ..State::default()
            })),
            counted: Arc::new(AtomicU64::new(0)),
            throttled: Arc::new(AtomicU64::new(0)),
            accept: Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
        };
        fake.serve(listener);
        fake
    }

    fn serve(&self, listener: TcpListener) {
        let (state, counted, throttled) = (
            self.state.clone(),
            self.counted.clone(),
            self.throttled.clone(),
        );
        let task = self.runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, counted, throttled) =
                    (state.clone(), counted.clone(), throttled.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        handle(state.clone(), counted.clone(), throttled.clone(), req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        *self.accept_task() = Some(task);
    }

    fn accept_task(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        self.accept.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `http://127.0.0.1:PORT`, the sink's `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Accepts `key` from now on (a rotation).
    pub fn set_api_key(&self, key: &str) {
        self.lock().api_key = key.to_string();
    }

    /// Answers the next requests with `faults`, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// Faults not used yet.
    pub fn faults_left(&self) -> usize {
        self.lock().faults.len()
    }

    /// Answers every request with `fault` while `Some`.
    pub fn set_failing(&self, fault: Option<Fault>) {
        self.lock().failing = fault;
    }

    /// Throttles (429) this share (0–100) of requests from now on, spread
    /// evenly: 60 throttles three of every five.
    pub fn set_throttle_percent(&self, percent: u64) {
        self.lock().throttle_percent = percent.min(100);
    }

    /// Requests throttled by the share so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::SeqCst)
    }

    /// Starts (`Some`) or ends (`None`) an outage. Ending a `Refused` outage
    /// listens on the same port again.
    pub fn set_down(&self, outage: Option<Outage>) {
        let before = std::mem::replace(&mut self.lock().outage, outage);
        let refused_before = before == Some(Outage::Refused);
        let refused_now = outage == Some(Outage::Refused);
        if refused_now && !refused_before {
            if let Some(task) = self.accept_task().take() {
                task.abort();
            }
        } else if refused_before && !refused_now {
            let listener = std::net::TcpListener::bind(self.addr).unwrap_or_else(|e| {
                panic!("the fake could not listen on {} again: {e}", self.addr)
            });
            listener.set_nonblocking(true).expect("nonblocking");
            let _guard = self.runtime.enter();
            self.serve(TcpListener::from_std(listener).expect("tokio listener"));
        }
    }

    /// Every request seen, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Accepted log items, in order.
    pub fn logs(&self) -> Vec<Value> {
        self.lock().logs.clone()
    }

    /// Accepted series, in order.
    pub fn series(&self) -> Vec<Value> {
        self.lock().series.clone()
    }

    /// Accepted points, in order.
    pub fn points(&self) -> Vec<Point> {
        self.lock().points.clone()
    }

    /// Everything the sink should never have caused, in order.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Panics with every violation, if there is any.
    pub fn assert_no_violations(&self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "the fake DataDog intake saw requests DataDog would refuse or alter:\n{}",
            violations.join("\n")
        );
    }

    /// Checks every body received (logs arrays, series payloads) with
    /// DataDog's own API models (`tests/support/datadog_models.py`), run by
    /// the Python that `CWPUB_DD_PYTHON` names. Panics with the problems, or
    /// with the fix when that Python is not set up. Blocking: call it when
    /// no request is in flight.
    pub fn check_with_datadog_models(&self) {
        let python = dd_python();
        let (logs, series) = {
            let s = self.lock();
            (s.received_logs.clone(), s.received_series.clone())
        };
        assert!(
            !logs.is_empty() || !series.is_empty(),
            "nothing was received to check"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("received.json");
        std::fs::write(
            &path,
            serde_json::to_vec(&json!({"logs": logs, "series": series})).expect("JSON"),
        )
        .expect("write received.json");
        let run = std::process::Command::new(&python)
            .arg(workspace_root().join("tests/support/datadog_models.py"))
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        match run.status.code() {
            Some(0) => {}
            Some(1) => panic!("DataDog's API models refuse what the sink sent:\n{text}"),
            _ => panic!(
                "the DataDog model check could not run ({}): {text}\n{SETUP}",
                python.display()
            ),
        }
    }
}

/// How to provide the Python of the model check.
const SETUP: &str = "set CWPUB_DD_PYTHON to a Python with datadog-api-client installed: \
    ./scripts/test.sh does it, or python3 -m venv .venv && \
    .venv/bin/pip install 'datadog-api-client>=2,<3' && export CWPUB_DD_PYTHON=$PWD/.venv/bin/python";

/// The Python named by `CWPUB_DD_PYTHON`.
fn dd_python() -> PathBuf {
    let Some(python) = std::env::var_os("CWPUB_DD_PYTHON").filter(|p| !p.is_empty()) else {
        panic!("CWPUB_DD_PYTHON is not set: {SETUP}");
    };
    let python = PathBuf::from(python);
    assert!(
        python.is_file(),
        "CWPUB_DD_PYTHON names {}, which does not exist: {SETUP}",
        python.display()
    );
    python
}

/// DataDog's error answer.
fn answer(status: u16, errors: &[&str]) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            json!({ "errors": errors }).to_string(),
        )))
        .expect("valid response")
}

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// What checking a request's payload came to.
struct Checked {
    /// The answer when nothing else decides it.
    status: u16,
    errors: Vec<String>,
    items: usize,
    uncompressed: usize,
    /// What to store when the answer is 2xx.
    store: Store,
    /// The parsed body, for the model check.
    received: Option<Received>,
}

enum Received {
    Logs(Value),
    Series(Value),
}

enum Store {
    Nothing,
    Logs(Vec<Value>),
    Series(Vec<Value>, Vec<Point>),
}

async fn handle(
    state: Arc<Mutex<State>>,
    counted: Arc<AtomicU64>,
    throttled: Arc<AtomicU64>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Hangup> {
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    if lock().outage.is_some() {
        return Err(Hangup);
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let body = http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| Hangup)?
        .to_bytes();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut violations = Vec::new();
    let checked = check(
        &parts.method,
        &path,
        header("content-encoding").as_deref(),
        header("content-type").as_deref(),
        &body,
        &mut violations,
    );
    let key = header("dd-api-key");
    if key.is_none() {
        violations.push(format!("{path}: no DD-API-KEY header"));
    }

    // The answer: an outage started meanwhile, a fault, the throttle share,
    // the key, then the payload's own verdict.
    let (fault, throttle_percent) = {
        let mut s = lock();
        if s.outage.is_some() {
            return Err(Hangup);
        }
        let fault = s.faults.pop_front().or_else(|| s.failing.clone());
        (fault, s.throttle_percent)
    };
    let fault = fault.or_else(|| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        // The n-th request is throttled when it carries the count of
        // throttled requests, ⌊n·p/100⌋, one further.
        ((n + 1) * throttle_percent / 100 > n * throttle_percent / 100).then(|| {
            throttled.fetch_add(1, Ordering::SeqCst);
            Fault::Status(429)
        })
    });
    let mut seen = Seen {
        path: path.clone(),
        status: 0,
        items: checked.items,
        compressed: body.len(),
        uncompressed: checked.uncompressed,
    };
    match checked.received {
        Some(Received::Logs(ref v)) => lock().received_logs.push(v.clone()),
        Some(Received::Series(ref v)) => lock().received_series.push(v.clone()),
        None => {}
    }
    let record = |seen: Seen, violations: Vec<String>| {
        let mut s = lock();
        s.seen.push(seen);
        s.violations.extend(violations);
    };
    let response = match fault {
        Some(Fault::Reset) => {
            record(seen, violations);
            return Err(Hangup);
        }
        Some(Fault::Stall) => {
            record(seen, violations);
            tokio::time::sleep(Duration::from_secs(120)).await;
            return Err(Hangup);
        }
        Some(Fault::BigBody(n)) => Response::builder()
            .status(500)
            .body(Full::new(Bytes::from(vec![b'x'; n])))
            .expect("valid response"),
        Some(Fault::Status(status)) => answer(status, &[status_text(status)]),
        Some(Fault::BadRequest(text)) => answer(400, &[text]),
        None => {
            let expected = lock().api_key.clone();
            match key {
                None => answer(401, &["Unauthorized"]),
                Some(k) if k != expected => answer(403, &["Forbidden"]),
                Some(_) if (200..300).contains(&checked.status) => {
                    let mut s = lock();
                    match checked.store {
                        Store::Logs(items) => s.logs.extend(items),
                        Store::Series(series, points) => {
                            s.series.extend(series);
                            s.points.extend(points);
                        }
                        Store::Nothing => {}
                    }
                    drop(s);
                    Response::builder()
                        .status(checked.status)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(b"{}")))
                        .expect("valid response")
                }
                Some(_) => {
                    let errors: Vec<&str> = checked.errors.iter().map(String::as_str).collect();
                    answer(checked.status, &errors)
                }
            }
        }
    };
    seen.status = response.status().as_u16();
    record(seen, violations);
    Ok(response)
}

/// A refusal of the whole request, recorded as a violation.
fn refused(
    path: &str,
    violations: &mut Vec<String>,
    status: u16,
    error: String,
    items: usize,
    uncompressed: usize,
) -> Checked {
    violations.push(format!("{path}: {error}"));
    Checked {
        status,
        errors: vec![error],
        items,
        uncompressed,
        store: Store::Nothing,
        received: None,
    }
}

/// 400 with `errors` (recorded as violations) if there are any, else 202
/// storing `store`.
fn verdict(
    path: &str,
    violations: &mut Vec<String>,
    errors: Vec<String>,
    items: usize,
    uncompressed: usize,
    received: Received,
    store: Store,
) -> Checked {
    violations.extend(errors.iter().map(|e| format!("{path}: {e}")));
    let (status, store) = if errors.is_empty() {
        (202, store)
    } else {
        (400, Store::Nothing)
    };
    Checked {
        status,
        errors,
        items,
        uncompressed,
        store,
        received: Some(received),
    }
}

/// Checks one request's method, path, headers and body.
fn check(
    method: &hyper::Method,
    path: &str,
    encoding: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
    violations: &mut Vec<String>,
) -> Checked {
    let refuse = |violations: &mut Vec<String>, status: u16, error: String| {
        refused(path, violations, status, error, 0, 0)
    };
    let logs = match path {
        "/api/v2/logs" => true,
        "/api/v2/series" => false,
        other => return refuse(violations, 404, format!("no intake at {other}")),
    };
    if method != hyper::Method::POST {
        return refuse(violations, 405, format!("method {method}, not POST"));
    }
    if content_type.map(|t| t.split(';').next().unwrap_or("").trim()) != Some("application/json") {
        violations.push(format!(
            "{path}: Content-Type is {content_type:?}, not application/json"
        ));
    }
    if !logs && body.len() > SERIES_MAX_COMPRESSED {
        return refuse(
            violations,
            413,
            format!(
                "the payload is {} bytes as sent; at most {SERIES_MAX_COMPRESSED} are accepted",
                body.len()
            ),
        );
    }
    let raw = match encoding {
        Some("gzip") => {
            let mut raw = Vec::new();
            let limit = (MAX_BODY + 1) as u64;
            match GzDecoder::new(body).take(limit).read_to_end(&mut raw) {
                Ok(_) => raw,
                Err(e) => {
                    return refuse(
                        violations,
                        400,
                        format!("the gzip body does not decode: {e}"),
                    );
                }
            }
        }
        other => {
            violations.push(format!("{path}: Content-Encoding is {other:?}, not gzip"));
            body.to_vec()
        }
    };
    if logs {
        check_logs(path, &raw, violations)
    } else {
        check_series(path, &raw, violations)
    }
}

fn check_logs(path: &str, raw: &[u8], violations: &mut Vec<String>) -> Checked {
    let refuse = |violations: &mut Vec<String>, status: u16, error: String, items: usize| {
        refused(path, violations, status, error, items, raw.len())
    };
    if raw.len() > LOGS_MAX_BYTES {
        return refuse(
            violations,
            413,
            format!(
                "the body is {} bytes uncompressed; at most {LOGS_MAX_BYTES} are accepted",
                raw.len()
            ),
            0,
        );
    }
    let items: Vec<Value> = match serde_json::from_slice(raw) {
        Ok(Value::Array(items)) => items,
        Ok(other) => {
            return refuse(
                violations,
                400,
                format!(
                    "the body is not a JSON array: {}",
                    short(&other.to_string())
                ),
                0,
            );
        }
        Err(e) => return refuse(violations, 400, format!("the body is not JSON: {e}"), 0),
    };
    if items.len() > LOGS_MAX_ITEMS {
        return refuse(
            violations,
            413,
            format!(
                "{} items; at most {LOGS_MAX_ITEMS} are accepted",
                items.len()
            ),
            items.len(),
        );
    }
    let sizes = array_item_sizes(raw);
    let now = now_ms();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(fields) = item else {
            errors.push(format!("item {i} is not an object"));
            continue;
        };
        match fields.get("message") {
            Some(Value::String(_)) => {}
            Some(_) => errors.push(format!("item {i}: message is not a string")),
            None => errors.push(format!("item {i} has no message")),
        }
        for field in ["ddsource", "ddtags", "hostname", "service"] {
            if fields.get(field).is_some_and(|v| !v.is_string()) {
                errors.push(format!("item {i}: {field} is not a string"));
            }
        }
        if let Some(&size) = sizes.get(i)
            && size > LOGS_MAX_ITEM_BYTES
        {
            violations.push(format!(
                "{path}: item {i} is {size} bytes; DataDog truncates items over {LOGS_MAX_ITEM_BYTES}"
            ));
        }
        if let Some(ts) = fields.get("timestamp").and_then(Value::as_i64) {
            if now - ts > LOGS_MAX_AGE_MS {
                violations.push(format!(
                    "{path}: item {i} is {} s old; DataDog drops logs over 18 h old",
                    (now - ts) / 1000
                ));
            } else if ts - now > LOGS_MAX_AHEAD_MS {
                violations.push(format!(
                    "{path}: item {i} is {} s ahead; DataDog drops logs over 2 h ahead",
                    (ts - now) / 1000
                ));
            }
        }
    }
    let count = items.len();
    verdict(
        path,
        violations,
        errors,
        count,
        raw.len(),
        Received::Logs(Value::Array(items.clone())),
        Store::Logs(items),
    )
}

fn check_series(path: &str, raw: &[u8], violations: &mut Vec<String>) -> Checked {
    let refuse = |violations: &mut Vec<String>, status: u16, error: String| {
        refused(path, violations, status, error, 0, raw.len())
    };
    if raw.len() >= SERIES_MAX_DECOMPRESSED {
        return refuse(
            violations,
            413,
            format!(
                "the payload is {} bytes decompressed; it must be less than {SERIES_MAX_DECOMPRESSED}",
                raw.len()
            ),
        );
    }
    let payload: Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(e) => return refuse(violations, 400, format!("the body is not JSON: {e}")),
    };
    let series = match &payload {
        Value::Object(root) if root.len() == 1 => match root.get("series") {
            Some(Value::Array(series)) if !series.is_empty() => series.clone(),
            _ => return refuse(violations, 400, "`series` must be a non-empty array".into()),
        },
        _ => {
            return refuse(
                violations,
                400,
                "the payload must be {\"series\": [...]}".into(),
            );
        }
    };
    let now_s = now_ms().div_euclid(1000);
    let mut errors = Vec::new();
    let mut points = Vec::new();
    let mut kept = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let before = errors.len();
        let mut err = |e: String| errors.push(format!("series {i}: {e}"));
        let Value::Object(fields) = s else {
            err("not an object".into());
            continue;
        };
        for key in fields.keys() {
            if !SERIES_MEMBERS.contains(&key.as_str()) {
                err(format!("unknown member {key:?}"));
            }
        }
        let metric = match fields.get("metric") {
            Some(Value::String(m)) => m.clone(),
            _ => {
                err("no string metric".into());
                String::new()
            }
        };
        let valid_name = metric
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && metric
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && metric.len() <= NAME_MAX_CHARS;
        if !valid_name {
            err(format!("metric {metric:?} breaks DataDog's name rules"));
        }
        match fields.get("type") {
            None => {}
            Some(Value::Number(n)) if n.as_u64().is_some_and(|t| t <= 3) => {}
            Some(other) => err(format!("type {other} is not 0, 1, 2 or 3")),
        }
        let tags: Vec<String> = match fields.get("tags") {
            None => Vec::new(),
            Some(Value::Array(tags)) => tags
                .iter()
                .filter_map(|t| match t {
                    Value::String(t) if t.chars().count() <= NAME_MAX_CHARS => Some(t.clone()),
                    Value::String(t) => {
                        err(format!("tag of {} characters", t.chars().count()));
                        None
                    }
                    other => {
                        err(format!("tag {other} is not a string"));
                        None
                    }
                })
                .collect(),
            Some(other) => {
                err(format!(
                    "tags {} is not an array",
                    short(&other.to_string())
                ));
                Vec::new()
            }
        };
        let unit = match fields.get("unit") {
            None => None,
            Some(Value::String(u)) if UNITS.contains(&u.as_str()) => Some(u.clone()),
            Some(other) => {
                err(format!("unit {other} is not a DataDog unit"));
                None
            }
        };
        let mut host = None;
        match fields.get("resources") {
            None => {}
            Some(Value::Array(resources)) => {
                for r in resources {
                    match (r.get("name"), r.get("type")) {
                        (Some(Value::String(name)), Some(Value::String(kind)))
                            if r.as_object().is_some_and(|o| o.len() == 2) =>
                        {
                            if kind == "host" {
                                host = Some(name.clone());
                            }
                        }
                        _ => err(format!("resource {r} is not {{name, type}}")),
                    }
                }
            }
            Some(other) => err(format!("resources {other} is not an array")),
        }
        let mut these = Vec::new();
        match fields.get("points") {
            Some(Value::Array(list)) if !list.is_empty() => {
                for p in list {
                    let (Some(Value::Number(ts)), Some(Value::Number(value))) =
                        (p.get("timestamp"), p.get("value"))
                    else {
                        err(format!("point {p} is not {{timestamp, value}}"));
                        continue;
                    };
                    let (Some(timestamp), Some(value)) = (ts.as_i64(), value.as_f64()) else {
                        err(format!("point {p}: the timestamp is not an integer"));
                        continue;
                    };
                    if p.as_object().is_some_and(|o| o.len() != 2) {
                        err(format!("point {p} has members besides timestamp and value"));
                    }
                    if timestamp - now_s > SERIES_MAX_AHEAD_S
                        || now_s - timestamp > SERIES_MAX_AGE_S
                    {
                        violations.push(format!(
                            "{path}: series {i}: point at {timestamp} is outside DataDog's window \
                             (now {now_s}: 1 h back, 10 min ahead)"
                        ));
                        continue;
                    }
                    these.push(Point {
                        metric: metric.clone(),
                        tags: tags.clone(),
                        timestamp,
                        value,
                        unit: unit.clone(),
                        host: host.clone(),
                    });
                }
            }
            _ => err("points must be a non-empty array".into()),
        }
        if errors.len() == before {
            points.extend(these);
            kept.push(s.clone());
        }
    }
    verdict(
        path,
        violations,
        errors,
        series.len(),
        raw.len(),
        Received::Series(payload),
        Store::Series(kept, points),
    )
}

/// The byte length of each top-level item of the JSON array `raw` (which
/// serde_json parsed), as sent.
pub fn array_item_sizes(raw: &[u8]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut start = None;
    for (i, &b) in raw.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                if depth == 1 && start.is_none() {
                    start = Some(i);
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth == 2 && start.is_none() {
                    start = Some(i);
                }
            }
            b']' | b'}' => {
                if depth == 1
                    && let Some(s) = start.take()
                {
                    sizes.push(trimmed_len(&raw[s..i]));
                }
                depth = depth.saturating_sub(1);
            }
            b',' if depth == 1 => {
                if let Some(s) = start.take() {
                    sizes.push(trimmed_len(&raw[s..i]));
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ if depth == 1 && start.is_none() => start = Some(i),
            _ => {}
        }
    }
    sizes
}

fn trimmed_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .map_or(0, |p| p + 1)
}

/// `len` random letters and digits, the same for the same `seed`: text no
/// compressor can shrink much.
pub fn noise(seed: u64, len: usize) -> String {
    use rand::{Rng, SeedableRng};
    rand::rngs::StdRng::seed_from_u64(seed)
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn short(text: &str) -> String {
    text.chars().take(120).collect()
}
