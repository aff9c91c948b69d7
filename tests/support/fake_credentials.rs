//! A fake ECS container-credentials endpoint on a loopback port: the
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` protocol as the AWS SDK speaks it. A
//! GET whose `Authorization` header carries the expected token gets fresh
//! credentials with a unique access key id and a short lifetime; anything
//! else gets 401. Every fetch is recorded, so a test can tell which
//! credentials a process used and that it came back for new ones.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Credentials the endpoint handed out.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub at: SystemTime,
    pub expires: SystemTime,
}

#[derive(Debug, Default)]
struct State {
    issued: Vec<Issued>,
    refused: usize,
}

/// A running endpoint; stops when dropped.
pub struct FakeCredentials {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for FakeCredentials {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The path the endpoint serves (any path works; this one looks like ECS's).
pub const PATH: &str = "/v2/credentials/cwpub-test";

impl FakeCredentials {
    /// Listens on 127.0.0.1; hands out credentials valid for `lifetime`,
    /// with access key ids `<prefix>` + a 6-digit serial, to requests
    /// authorized with exactly `token`.
    pub async fn start(token: &str, prefix: &str, lifetime: Duration) -> FakeCredentials {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let (token, prefix) = (Arc::<str>::from(token), Arc::<str>::from(prefix));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (state, token, prefix) = (shared.clone(), token.clone(), prefix.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let answer = answer(&req, &state, &token, &prefix, lifetime);
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeCredentials { addr, state, task }
    }

    /// The full URI for `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub fn uri(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every set of credentials handed out, oldest first.
    pub fn issued(&self) -> Vec<Issued> {
        self.state.lock().expect("state").issued.clone()
    }

    /// Requests refused for a missing or wrong `Authorization` header.
    pub fn refused(&self) -> usize {
        self.state.lock().expect("state").refused
    }
}

fn answer(
    req: &Request<Incoming>,
    state: &Mutex<State>,
    token: &str,
    prefix: &str,
    lifetime: Duration,
) -> Response<Full<Bytes>> {
    let authorized = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == token.as_bytes());
    let mut state = state.lock().expect("state");
    if !authorized || req.method() != hyper::Method::GET {
        state.refused += 1;
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"Code": "AccessDenied", "Message": "wrong or missing authorization token"}),
        );
    }
    let serial = state.issued.len() + 1;
    let at = SystemTime::now();
    // Whole seconds, as the answer states it: the SDK cannot know better.
    let expires = whole_seconds(at + lifetime);
    let issued = Issued {
        access_key_id: format!("{prefix}{serial:06}"),
        secret_access_key: format!("fake-secret-{prefix}-{serial}-{}", std::process::id()),
        session_token: format!("fake-session-token-{prefix}-{serial}"),
        at,
        expires,
    };
    let body = json!({
        "Code": "Success",
        "Type": "AWS-HMAC",
        "AccessKeyId": issued.access_key_id,
        "SecretAccessKey": issued.secret_access_key,
        "Token": issued.session_token,
        "Expiration": humantime::format_rfc3339_seconds(issued.expires).to_string(),
        "LastUpdated": humantime::format_rfc3339_seconds(at).to_string(),
    });
    state.issued.push(issued);
    json_response(StatusCode::OK, body)
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let since = t.duration_since(UNIX_EPOCH).expect("after 1970");
    UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
