//! Weather for delivery tests: a switchable throttling storm (a percentage
//! of PutLogEvents answered 400 ThrottlingException) and an outage (every
//! connection dropped unanswered), shared by the strict fake and by
//! [`ChaosProxy`], a forwarding proxy that puts the same weather in front of
//! moto. Both run on a runtime of their own thread (see [`background`]), so
//! blocking tests that drive the real `cwpub` binary can use them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// The weather; cheap to share and to change while requests run.
#[derive(Debug, Default)]
pub struct Chaos {
    throttle_percent: AtomicU32,
    /// PutLogEvents requests seen, to spread the throttled share evenly.
    puts: AtomicU64,
    down: AtomicBool,
    throttled: AtomicU64,
    refused: AtomicU64,
}

/// What the weather does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weather {
    /// Handle it normally.
    Fair,
    /// Answer 400 ThrottlingException.
    Throttle,
    /// Drop the connection unanswered.
    Down,
}

impl Chaos {
    /// Throttles this share (0–100) of PutLogEvents requests from now on,
    /// spread evenly (60: three of every five) rather than drawn at random,
    /// so that a short storm throttles as much as it says.
    pub fn set_throttle_percent(&self, p: u32) {
        self.throttle_percent.store(p.min(100), Ordering::SeqCst);
    }

    /// Takes the endpoint down (every request's connection is dropped) or up.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// PutLogEvents requests throttled so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::SeqCst)
    }

    /// Requests dropped while down.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// Decides the weather for a request of operation `op`.
    pub fn weather(&self, op: &str) -> Weather {
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Weather::Down;
        }
        if op != "PutLogEvents" {
            return Weather::Fair;
        }
        let p = u64::from(self.throttle_percent.load(Ordering::SeqCst));
        let n = self.puts.fetch_add(1, Ordering::SeqCst);
        // The n-th request is throttled when it carries the count of
        // throttled requests, `⌊n·p/100⌋`, one further.
        if (n + 1) * p / 100 > n * p / 100 {
            self.throttled.fetch_add(1, Ordering::SeqCst);
            return Weather::Throttle;
        }
        Weather::Fair
    }
}

/// The 400 ThrottlingException answer CloudWatch gives.
pub fn throttle_response() -> Response<Full<Bytes>> {
    Response::builder()
        .status(400)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", "chaos")
        .body(Full::new(Bytes::from_static(
            br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        )))
        .expect("valid response")
}

/// An error that makes hyper drop the connection unanswered.
#[derive(Debug)]
pub struct Hangup;
impl std::fmt::Display for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("chaos: endpoint down")
    }
}
impl std::error::Error for Hangup {}

/// A multi-threaded runtime on its own threads for servers used by blocking tests.
pub fn background() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("test runtime")
}

/// A forwarding proxy to an upstream endpoint (moto) under [`Chaos`].
pub struct ChaosProxy {
    pub addr: SocketAddr,
    pub chaos: Arc<Chaos>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ChaosProxy {
    /// Starts on a free loopback port, forwarding to `upstream` (on the current runtime).
    pub async fn start(upstream: SocketAddr) -> ChaosProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let chaos = Arc::new(Chaos::default());
        let c = chaos.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let c = c.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req| forward(c.clone(), upstream, req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        ChaosProxy { addr, chaos, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn forward(
    chaos: Arc<Chaos>,
    upstream: SocketAddr,
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
        Weather::Throttle => return Ok(throttle_response()),
        Weather::Fair => {}
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Hangup)?.to_bytes();
    let stream = TcpStream::connect(upstream).await.map_err(|_| Hangup)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Hangup)?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(|_| Hangup)?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|_| Hangup)?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}
