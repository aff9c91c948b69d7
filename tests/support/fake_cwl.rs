//! A strict, scripted fake of the CloudWatch Logs JSON 1.1 protocol on a
//! loopback port, for delivery tests. It enforces every real PutLogEvents
//! limit (count, Σ bytes + 26, per-event size, empty message, chronological
//! order, 24 h span) with `InvalidParameterException`, keeps groups and
//! streams, records every accepted event, and injects faults on cue:
//! throttling, 500s, connection resets, slow answers, auth errors, deleted
//! streams, partial rejections and poisoned messages; and weather
//! ([`Chaos`]): a throttling storm of some percentage, or an outage.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::chaos::{Chaos, Weather, throttle_response};

const MAX_EVENTS: usize = 10_000;
const MAX_BYTES: usize = 1_048_576;
const OVERHEAD: usize = 26;
const DAY_MS: i64 = 86_400_000;

/// A fault applied to the next PutLogEvents request(s).
#[derive(Debug, Clone)]
pub enum Fault {
    /// 400 ThrottlingException.
    Throttle,
    /// 500 ServiceUnavailableException.
    Unavailable,
    /// Close the connection without an answer.
    Reset,
    /// Wait this long, then close without an answer (the request is lost).
    Slow(Duration),
    /// 400 with this auth error code (UnrecognizedClientException, ExpiredTokenException, AccessDeniedException).
    Auth(&'static str),
    /// Delete the target stream before handling the request (ResourceNotFound follows).
    DeleteStream,
    /// Accept, but reject the first `n` events as too old (server clock view).
    RejectTooOld(usize),
    /// Accept, but reject the events from index `n` on as too new.
    RejectTooNewFrom(usize),
    /// Accept, but reject the first `n` events as expired (retention).
    RejectExpired(usize),
}

/// Retention days, tags and KMS key of a group.
pub type GroupSettings = (Option<i64>, BTreeMap<String, String>, Option<String>);

/// One accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub timestamp: i64,
    pub message: String,
    pub emf_header: bool,
}

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When the fake had read the whole request, before it answered.
    pub at: Instant,
    pub op: String,
    /// The HTTP status answered; 0 when the connection was dropped unanswered.
    pub status: u16,
    /// Events in a PutLogEvents request (0 for other calls, and for requests
    /// dropped unanswered or throttled by the weather).
    pub events: usize,
    /// Whether it came with the `x-amzn-logs-format: json/emf` header.
    pub emf_header: bool,
}

#[derive(Debug, Default)]
pub struct Group {
    pub streams: BTreeMap<String, Vec<Stored>>,
    pub retention: Option<i64>,
    pub tags: BTreeMap<String, String>,
    pub kms_key_id: Option<String>,
}

#[derive(Default)]
struct State {
    groups: BTreeMap<String, Group>,
    faults: VecDeque<Fault>,
    create_faults: VecDeque<Fault>,
    seen: Vec<Seen>,
    poison: Option<String>,
    limit_violations: Vec<String>,
}

/// The running fake; stops when dropped.
pub struct FakeCwl {
    pub addr: SocketAddr,
    /// Storms and outages, switchable while requests run.
    pub chaos: Arc<Chaos>,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCwl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl FakeCwl {
    /// Starts on a free loopback port.
    pub async fn start() -> FakeCwl {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let chaos = Arc::new(Chaos::default());
        let (st, ch) = (state.clone(), chaos.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (st, ch) = (st.clone(), ch.clone());
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req| handle(st.clone(), ch.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeCwl {
            addr,
            chaos,
            state,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The AWS configuration of a CloudWatch sink that talks to this fake
    /// only, with static test credentials.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        test_sdk_config(&self.endpoint(), "AKIDTEST", "secret")
    }

    /// A client with static test credentials talking to this fake only.
    pub fn client(&self, timeout: Duration) -> aws_sdk_cloudwatchlogs::Client {
        let conf = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "static"))
            .endpoint_url(self.endpoint())
            .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_cloudwatchlogs::config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(timeout)
                    .build(),
            )
            .build();
        aws_sdk_cloudwatchlogs::Client::from_conf(conf)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a group and stream up front.
    pub fn create(&self, group: &str, stream: &str) {
        let mut s = self.lock();
        s.groups
            .entry(group.to_string())
            .or_default()
            .streams
            .entry(stream.to_string())
            .or_default();
    }

    /// Queues faults for the next PutLogEvents requests, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// Queues faults (Throttle, Unavailable, Auth) for the next
    /// CreateLogGroup/CreateLogStream requests, in order.
    pub fn push_create_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().create_faults.extend(faults);
    }

    /// Faults not consumed yet.
    pub fn faults_left(&self) -> usize {
        self.lock().faults.len()
    }

    /// Any PutLogEvents request containing this substring fails with InvalidParameterException.
    pub fn poison(&self, marker: &str) {
        self.lock().poison = Some(marker.to_string());
    }

    /// Every accepted message of every stream of `group`, in storage order per stream.
    pub fn messages(&self, group: &str) -> Vec<String> {
        let s = self.lock();
        s.groups
            .get(group)
            .map(|g| {
                g.streams
                    .values()
                    .flat_map(|evs| evs.iter().map(|e| e.message.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Accepted events of one stream, in storage order.
    pub fn events(&self, group: &str, stream: &str) -> Vec<Stored> {
        let s = self.lock();
        s.groups
            .get(group)
            .and_then(|g| g.streams.get(stream))
            .cloned()
            .unwrap_or_default()
    }

    /// Retention, tags and KMS key of a group, if it exists.
    pub fn group_settings(&self, group: &str) -> Option<GroupSettings> {
        let s = self.lock();
        s.groups
            .get(group)
            .map(|g| (g.retention, g.tags.clone(), g.kms_key_id.clone()))
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Requests refused because they broke a PutLogEvents limit (poison excluded).
    pub fn limit_violations(&self) -> Vec<String> {
        self.lock().limit_violations.clone()
    }
}

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", "fake-request")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

fn error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    reply(status, json!({"__type": code, "message": message}))
}

/// Errors of the whole connection: returning one makes hyper drop it unanswered.
#[derive(Debug)]
struct Hangup;
impl std::fmt::Display for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scripted connection reset")
    }
}
impl std::error::Error for Hangup {}

async fn handle(
    state: Arc<Mutex<State>>,
    chaos: Arc<Chaos>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Hangup> {
    let op = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_start_matches("Logs_20140328.")
        .to_string();
    match chaos.weather(&op) {
        Weather::Down => return Err(Hangup),
        Weather::Throttle => {
            record(&state, &op, 400, false);
            return Ok(throttle_response());
        }
        Weather::Fair => {}
    }
    let emf_header = req
        .headers()
        .get("x-amzn-logs-format")
        .and_then(|v| v.to_str().ok())
        == Some("json/emf");
    let json_ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        == Some("application/x-amz-json-1.1");
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Hangup),
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return Ok(error(400, "SerializationException", "body is not JSON"));
    };
    if !json_ct {
        return Ok(error(400, "SerializationException", "wrong content type"));
    }
    let fault = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        match op.as_str() {
            "PutLogEvents" => st.faults.pop_front(),
            "CreateLogGroup" | "CreateLogStream" => st.create_faults.pop_front(),
            _ => None,
        }
    };
    match &fault {
        Some(Fault::Reset) => {
            record(&state, &op, 0, emf_header);
            return Err(Hangup);
        }
        Some(Fault::Slow(d)) => {
            record(&state, &op, 0, emf_header);
            tokio::time::sleep(*d).await;
            return Err(Hangup);
        }
        _ => {}
    }
    let resp = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        let (resp, events) = respond(&mut st, &op, &v, fault, emf_header);
        st.seen.push(Seen {
            at: Instant::now(),
            op: op.clone(),
            status: resp.status().as_u16(),
            events,
            emf_header,
        });
        resp
    };
    Ok(resp)
}

/// Records a request that got no regular answer (throttled by the weather,
/// or dropped unanswered).
fn record(state: &Arc<Mutex<State>>, op: &str, status: u16, emf_header: bool) {
    state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .seen
        .push(Seen {
            at: Instant::now(),
            op: op.to_string(),
            status,
            events: 0,
            emf_header,
        });
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn respond(
    st: &mut State,
    op: &str,
    v: &Value,
    fault: Option<Fault>,
    emf_header: bool,
) -> (Response<Full<Bytes>>, usize) {
    let group = str_field(v, "logGroupName").unwrap_or("").to_string();
    let stream = str_field(v, "logStreamName").unwrap_or("").to_string();
    if op != "PutLogEvents" {
        match fault {
            Some(Fault::Throttle) => {
                return (error(400, "ThrottlingException", "Rate exceeded"), 0);
            }
            Some(Fault::Unavailable) => {
                return (error(500, "ServiceUnavailableException", "try again"), 0);
            }
            Some(Fault::Auth(code)) => return (error(400, code, "not authorized"), 0),
            _ => {}
        }
    }
    match op {
        "CreateLogGroup" => {
            if st.groups.contains_key(&group) {
                return (
                    error(
                        400,
                        "ResourceAlreadyExistsException",
                        "The specified log group already exists",
                    ),
                    0,
                );
            }
            let mut g = Group::default();
            if let Some(tags) = v.get("tags").and_then(Value::as_object) {
                for (k, val) in tags {
                    g.tags
                        .insert(k.clone(), val.as_str().unwrap_or("").to_string());
                }
            }
            g.kms_key_id = str_field(v, "kmsKeyId").map(str::to_string);
            st.groups.insert(group, g);
            (reply(200, json!({})), 0)
        }
        "CreateLogStream" => match st.groups.get_mut(&group) {
            None => (
                error(
                    400,
                    "ResourceNotFoundException",
                    "The specified log group does not exist.",
                ),
                0,
            ),
            Some(g) if g.streams.contains_key(&stream) => (
                error(
                    400,
                    "ResourceAlreadyExistsException",
                    "The specified log stream already exists",
                ),
                0,
            ),
            Some(g) => {
                g.streams.insert(stream, Vec::new());
                (reply(200, json!({})), 0)
            }
        },
        "PutRetentionPolicy" => match st.groups.get_mut(&group) {
            None => (
                error(
                    400,
                    "ResourceNotFoundException",
                    "The specified log group does not exist.",
                ),
                0,
            ),
            Some(g) => {
                g.retention = v.get("retentionInDays").and_then(Value::as_i64);
                (reply(200, json!({})), 0)
            }
        },
        "PutLogEvents" => put(st, &group, &stream, v, fault, emf_header),
        other => (
            error(
                400,
                "UnknownOperationException",
                &format!("fake does not implement {other}"),
            ),
            0,
        ),
    }
}

fn put(
    st: &mut State,
    group: &str,
    stream: &str,
    v: &Value,
    fault: Option<Fault>,
    emf_header: bool,
) -> (Response<Full<Bytes>>, usize) {
    let Some(events) = v.get("logEvents").and_then(Value::as_array) else {
        st.limit_violations.push("logEvents missing".into());
        return (
            error(400, "InvalidParameterException", "logEvents missing"),
            0,
        );
    };
    let n = events.len();
    match fault {
        Some(Fault::Throttle) => {
            return (
                error(
                    400,
                    "ThrottlingException",
                    "Rate exceeded for logStreamName",
                ),
                n,
            );
        }
        Some(Fault::Unavailable) => {
            return (
                error(
                    500,
                    "ServiceUnavailableException",
                    "The service cannot complete the request.",
                ),
                n,
            );
        }
        Some(Fault::Auth(code)) => {
            return (
                error(
                    400,
                    code,
                    "The security token included in the request is invalid.",
                ),
                n,
            );
        }
        Some(Fault::DeleteStream) => {
            if let Some(g) = st.groups.get_mut(group) {
                g.streams.remove(stream);
            }
        }
        _ => {}
    }
    // Strict validation of every real limit.
    let mut parsed = Vec::with_capacity(n);
    let mut violation = None;
    let mut bytes = 0usize;
    for (i, e) in events.iter().enumerate() {
        let ts = e.get("timestamp").and_then(Value::as_i64);
        let msg = e.get("message").and_then(Value::as_str);
        let (Some(ts), Some(msg)) = (ts, msg) else {
            violation = Some(format!("event {i} lacks timestamp or message"));
            break;
        };
        if msg.is_empty() {
            violation = Some(format!("event {i}: empty message"));
        } else if msg.len() + OVERHEAD > MAX_BYTES {
            violation = Some(format!(
                "Log event too large: {} bytes exceeds limit",
                msg.len()
            ));
        }
        bytes += msg.len() + OVERHEAD;
        parsed.push((ts, msg.to_string()));
    }
    if violation.is_none() {
        if n == 0 || n > MAX_EVENTS {
            violation = Some(format!("{n} events: must be 1..=10000"));
        } else if bytes > MAX_BYTES {
            violation = Some(format!("batch of {bytes} bytes exceeds 1048576"));
        } else if !parsed.is_sorted_by_key(|(t, _)| *t) {
            violation = Some(
                "Log events in a single PutLogEvents request must be in chronological order."
                    .into(),
            );
        } else if parsed[n - 1].0 - parsed[0].0 >= DAY_MS {
            violation = Some("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.".into());
        }
    }
    if let Some(why) = violation {
        st.limit_violations.push(why.clone());
        return (error(400, "InvalidParameterException", &why), n);
    }
    if let Some(marker) = &st.poison
        && parsed.iter().any(|(_, m)| m.contains(marker.as_str()))
    {
        return (
            error(400, "InvalidParameterException", "scripted: poisoned event"),
            n,
        );
    }
    let Some(g) = st.groups.get_mut(group) else {
        return (
            error(
                400,
                "ResourceNotFoundException",
                "The specified log group does not exist.",
            ),
            n,
        );
    };
    let Some(s) = g.streams.get_mut(stream) else {
        return (
            error(
                400,
                "ResourceNotFoundException",
                "The specified log stream does not exist.",
            ),
            n,
        );
    };
    // Real clock rules, then scripted ones (AWS index semantics).
    let now = now_ms();
    let mut too_old_end = parsed
        .iter()
        .take_while(|(t, _)| *t < now - 14 * DAY_MS)
        .count();
    let mut too_new_start = parsed
        .iter()
        .position(|(t, _)| *t > now + 2 * 3_600_000)
        .unwrap_or(n);
    let mut expired_end = 0;
    match fault {
        Some(Fault::RejectTooOld(k)) => too_old_end = too_old_end.max(k.min(n)),
        Some(Fault::RejectTooNewFrom(k)) => too_new_start = too_new_start.min(k),
        Some(Fault::RejectExpired(k)) => expired_end = k.min(n),
        _ => {}
    }
    let lo = too_old_end.max(expired_end);
    for (ts, msg) in parsed.iter().take(too_new_start).skip(lo) {
        s.push(Stored {
            timestamp: *ts,
            message: msg.clone(),
            emf_header,
        });
    }
    let mut rejected = serde_json::Map::new();
    if too_old_end > 0 {
        rejected.insert("tooOldLogEventEndIndex".into(), json!(too_old_end));
    }
    if too_new_start < n {
        rejected.insert("tooNewLogEventStartIndex".into(), json!(too_new_start));
    }
    if expired_end > 0 {
        rejected.insert("expiredLogEventEndIndex".into(), json!(expired_end));
    }
    let mut body =
        json!({"nextSequenceToken": "49600000000000000000000000000000000000000000000000000000"});
    if !rejected.is_empty() {
        body["rejectedLogEventsInfo"] = Value::Object(rejected);
    }
    (reply(200, body), n)
}

/// An AWS configuration for `endpoint` in us-east-1 with static credentials.
pub fn test_sdk_config(endpoint: &str, key: &str, secret: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                key, secret, None, None, "static",
            )),
        )
        .endpoint_url(endpoint)
        .build()
}
