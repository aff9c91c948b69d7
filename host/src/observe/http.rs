//! The self-observability HTTP endpoint (hyper, HTTP/1.1): `/healthz`
//! (liveness), `/readyz` (readiness from an injected check) and `/metrics`
//! (the ledger's metrics registry, rendered as Prometheus text). Loopback by
//! default; stops on a cancellation token.

use std::convert::Infallible;
use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ledger::{self, Collector, DescriptorEncoder, Metrics, encode_gauges};

/// Most connections served at once; further ones are closed straight away.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Content type of `/metrics` (Prometheus text format 0.0.4).
pub const METRICS_CONTENT_TYPE: &str = ledger::CONTENT_TYPE;

/// Whether the host is ready, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readiness {
    /// Reasons the host is not ready (empty = ready).
    pub reasons: Vec<String>,
    /// Lines shown after the verdict that do not change it (the last reload).
    pub notes: Vec<String>,
}

impl Readiness {
    /// Ready.
    pub fn ready() -> Self {
        Readiness::default()
    }

    /// Not ready, for `reason`.
    pub fn not_ready(reason: impl Into<String>) -> Self {
        Readiness {
            reasons: vec![reason.into()],
            notes: Vec::new(),
        }
    }

    /// True when there is no reason not to be ready.
    pub fn is_ready(&self) -> bool {
        self.reasons.is_empty()
    }
}

type ReadinessFn = dyn Fn() -> Readiness + Send + Sync;
type SharedReadiness = Arc<RwLock<Arc<ReadinessFn>>>;

/// What the endpoint reports: a metrics registry and a readiness check.
#[derive(Clone)]
pub struct ObserveState {
    metrics: Metrics,
    readiness: SharedReadiness,
}

impl std::fmt::Debug for ObserveState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserveState").finish_non_exhaustive()
    }
}

impl ObserveState {
    /// State rendering `metrics`, always ready until [`ObserveState::with_readiness`].
    /// Registers the host's own gauges in `metrics` (`cwpub_build_info`,
    /// `cwpub_start_time_seconds`, `cwpub_ready`): create one state per registry.
    pub fn new(metrics: Metrics) -> Self {
        let readiness: SharedReadiness = Arc::new(RwLock::new(Arc::new(Readiness::ready)));
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        metrics.collector(HostGauges {
            started: i64::try_from(started).unwrap_or(0),
            readiness: readiness.clone(),
        });
        ObserveState { metrics, readiness }
    }

    /// Uses `check` for `/readyz` and `cwpub_ready` (e.g. "guests loaded and no open circuit").
    pub fn with_readiness(self, check: impl Fn() -> Readiness + Send + Sync + 'static) -> Self {
        *self
            .readiness
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(check);
        self
    }

    /// The metrics registry `/metrics` renders.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Runs the readiness check.
    pub fn readiness(&self) -> Readiness {
        check(&self.readiness)
    }

    /// The full `/metrics` body.
    pub fn render_metrics(&self) -> String {
        self.metrics.render()
    }
}

fn check(readiness: &SharedReadiness) -> Readiness {
    let f = readiness
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    f()
}

/// The host's own gauges: build, start time and readiness.
struct HostGauges {
    started: i64,
    readiness: SharedReadiness,
}

impl std::fmt::Debug for HostGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostGauges").finish_non_exhaustive()
    }
}

impl Collector for HostGauges {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        const NONE: [(&str, &str); 0] = [];
        encode_gauges(
            &mut e,
            "cwpub_build_info",
            "Always 1; the version label names the cwpub build.",
            [([("version", env!("CARGO_PKG_VERSION"))], 1)],
        )?;
        encode_gauges(
            &mut e,
            "cwpub_start_time_seconds",
            "When the host started (Unix seconds).",
            [(NONE, self.started)],
        )?;
        let ready = i64::from(check(&self.readiness).is_ready());
        encode_gauges(
            &mut e,
            "cwpub_ready",
            "1 when /readyz reports ready.",
            [(NONE, ready)],
        )
    }
}

/// Why the endpoint (or logging) could not start.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The listen address could not be bound.
    #[error("observe: cannot listen on {addr}: {reason}; set [observe] listen or enabled = false")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why, in words ("address in use", …).
        reason: String,
    },
    /// The log subscriber could not be installed.
    #[error("log: {0}")]
    Logging(String),
}

/// A running endpoint.
#[derive(Debug)]
pub struct ObserveServer {
    local_addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl ObserveServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets open connections finish briefly, and waits for the server task.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Waits until the server task ends (after `shutdown` is cancelled).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves the endpoint until `shutdown` is cancelled.
pub async fn serve(
    addr: SocketAddr,
    state: ObserveState,
    shutdown: CancellationToken,
) -> Result<ObserveServer, ObserveError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ObserveError::Bind {
            addr,
            reason: bind_reason(&e),
        })?;
    let local_addr = listener.local_addr().map_err(|e| ObserveError::Bind {
        addr,
        reason: e.to_string(),
    })?;
    let stop = shutdown.child_token();
    let task = tokio::spawn(accept_loop(listener, state, stop.clone()));
    tracing::debug!(%local_addr, "observe endpoint listening (/healthz, /readyz, /metrics)");
    Ok(ObserveServer {
        local_addr,
        stop,
        task,
    })
}

fn bind_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::AddrInUse => "address in use".to_string(),
        K::PermissionDenied => "permission denied (ports below 1024 need privileges)".to_string(),
        K::AddrNotAvailable => "address not available on this host".to_string(),
        _ => e.to_string(),
    }
}

async fn accept_loop(listener: TcpListener, state: ObserveState, stop: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, _peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Usually EMFILE or a reset before accept; back off a little.
                tracing::warn!(error = %e, "observe: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let state = state.clone();
        let stop = stop.clone();
        conns.spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, &req)) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                }
            }
        });
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}

fn route(state: &ObserveState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let known = matches!(path, "/healthz" | "/readyz" | "/metrics");
    if !known {
        return text(
            StatusCode::NOT_FOUND,
            "not found; try /healthz, /readyz or /metrics\n".to_string(),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed; use GET\n".to_string(),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n".to_string()),
        "/readyz" => {
            let r = state.readiness();
            let (status, mut body) = if r.is_ready() {
                (StatusCode::OK, String::from("ready\n"))
            } else {
                let mut body = String::from("not ready\n");
                for reason in &r.reasons {
                    let _ = writeln!(body, "- {reason}");
                }
                (StatusCode::SERVICE_UNAVAILABLE, body)
            };
            for note in &r.notes {
                let _ = writeln!(body, "{note}");
            }
            text(status, body)
        }
        _ => {
            let mut r = text(StatusCode::OK, state.render_metrics());
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
            r
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
