//! The one HTTPS client of the sinks that are not AWS SDK clients (DataDog):
//! hyper 1 through hyper-util's pooled client, TLS by rustls with the
//! aws-lc-rs provider and the platform's root certificates — the same stack
//! and the same root store the AWS SDK uses (`rustls-native-certs`, which
//! reads `SSL_CERT_FILE` / `SSL_CERT_DIR` first, then the system bundle), so
//! one CA setting serves every destination.
//!
//! What it guarantees to a sink:
//!
//! * [`check_url`] is the rule for every URL it sends to: `https://`, or plain
//!   `http://` only to a loopback host (a local fake or a proxy beside the
//!   daemon), so an API key never crosses a network unencrypted.
//! * Connections are pooled and reused; connecting has its own timeout, and
//!   the whole exchange (connect, send, read the answer) has the request
//!   timeout.
//! * The answer's body is read up to a cap ([`HttpConfig::max_response_bytes`]):
//!   an endpoint cannot make the host buffer more, whatever it sends or claims.
//! * Failures are typed ([`HttpError`]) with messages that name the fix;
//!   request headers (and so credentials) never appear in them.

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;

/// Timeouts, pool and body cap of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Longest wait for a TCP connection.
    pub connect_timeout: Duration,
    /// Longest wait for the whole exchange, answer body included.
    pub request_timeout: Duration,
    /// Largest answer body read; a larger one is [`HttpError::BodyTooLarge`].
    pub max_response_bytes: usize,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host.
    pub pool_max_idle_per_host: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_response_bytes: 64 << 10,
            pool_idle_timeout: Duration::from_secs(60),
            pool_max_idle_per_host: 8,
        }
    }
}

/// Why an exchange failed. Messages carry no request header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The URL breaks [`check_url`].
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong, with the fix.
        reason: String,
    },
    /// TLS could not be set up (the crypto provider refused its defaults).
    #[error("TLS could not be set up: {0}")]
    Tls(String),
    /// The request could not be built (a header value that is not valid HTTP).
    #[error("the request could not be built: {0}")]
    Request(String),
    /// No complete answer within the request timeout.
    #[error("no answer within {} ms (the request timeout)", .0.as_millis())]
    Timeout(Duration),
    /// No connection: refused, unreachable, DNS, TLS handshake.
    #[error("could not connect to {host}: {message}")]
    Connect {
        /// The host (and port) connected to.
        host: String,
        /// The cause, with a hint where one helps.
        message: String,
    },
    /// The connection failed after it was made (reset, closed, bad HTTP).
    #[error("the connection to {host} failed: {message}")]
    Io {
        /// The host (and port).
        host: String,
        /// The cause.
        message: String,
    },
    /// The answer's body is larger than the cap; its status is kept so the
    /// caller can still classify the answer.
    #[error("HTTP {status} answer with a body over {limit} bytes; the rest was not read")]
    BodyTooLarge {
        /// The answer's status code.
        status: u16,
        /// The cap that was hit.
        limit: usize,
    },
}

/// A complete answer.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, at most [`HttpConfig::max_response_bytes`] long.
    pub body: Bytes,
}

/// A pooled HTTP(S) client; cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    config: HttpConfig,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The platform's root certificates, read once per process (reading them can
/// take a noticeable time on some systems, and they do not change).
static NATIVE_ROOTS: LazyLock<Arc<rustls::RootCertStore>> = LazyLock::new(|| {
    let loaded = rustls_native_certs::load_native_certs();
    if !loaded.errors.is_empty() {
        tracing::warn!(
            errors = loaded.errors.len(),
            first = %loaded.errors[0],
            "some CA certificates could not be read; HTTPS destinations may fail (set SSL_CERT_FILE to a CA bundle)"
        );
    }
    let mut roots = rustls::RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = loaded.certs;
    roots.add_parsable_certificates(certs);
    Arc::new(roots)
});

impl HttpClient {
    /// A client with `config`. The first client of a process reads the
    /// platform's CA certificates (blocking file reads): build clients at
    /// start-up, not per request.
    pub fn new(config: HttpConfig) -> Result<HttpClient, HttpError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpError::Tls(e.to_string()))?
            .with_root_certificates(NATIVE_ROOTS.clone())
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .build(https);
        Ok(HttpClient { inner, config })
    }

    /// The client's configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Sends `request` (whose URI passed [`check_url`]) and reads the whole
    /// answer, within the request timeout and the body cap. Redirects are
    /// not followed.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<HttpResponse, HttpError> {
        if let Err(reason) = allowed(request.uri()) {
            return Err(HttpError::InvalidUrl {
                url: request.uri().to_string(),
                reason,
            });
        }
        let host = authority(request.uri());
        let https = request.uri().scheme_str() == Some("https");
        let exchange = async {
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| transport_error(&e, &host, https))?;
            let (parts, body) = response.into_parts();
            let status = parts.status;
            let limit = self.config.max_response_bytes;
            if let Some(len) = parts
                .headers
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                && len > limit as u64
            {
                return Err(HttpError::BodyTooLarge {
                    status: status.as_u16(),
                    limit,
                });
            }
            let body = Limited::new(body, limit)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        HttpError::BodyTooLarge {
                            status: status.as_u16(),
                            limit,
                        }
                    } else {
                        HttpError::Io {
                            host: host.clone(),
                            message: format!("reading the answer: {}", chain(&*e)),
                        }
                    }
                })?
                .to_bytes();
            Ok(HttpResponse {
                status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.config.request_timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout(self.config.request_timeout)),
        }
    }
}

/// The rule for every URL a sink sends to: `https://host[:port][/path]`, or
/// `http://` to a loopback host only (`localhost`, `127.0.0.0/8`, `::1`):
/// plain HTTP anywhere else would carry credentials in the clear. No query,
/// fragment or user info. `Err` is the reason with the fix.
pub fn check_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|_| {
        "not a URL; expected https://host[:port][/path], e.g. \"https://proxy.internal:8443\""
            .to_string()
    })?;
    let Some(authority) = uri.authority() else {
        return Err("no host; expected https://host[:port][/path]".into());
    };
    if authority.as_str().contains('@') {
        return Err("user info (user@host) is not supported; credentials go in headers".into());
    }
    if authority.host().is_empty() {
        return Err("no host; expected https://host[:port][/path]".into());
    }
    if uri.query().is_some() || url.contains('#') {
        return Err("a query or fragment is not supported; give a base URL only".into());
    }
    allowed(&uri).map(|()| uri)
}

/// The scheme rule of [`check_url`], which [`HttpClient::send`] applies to
/// every request too.
fn allowed(uri: &Uri) -> Result<(), String> {
    let Some(authority) = uri.authority() else {
        return Err("no host; expected https://host[:port][/path]".into());
    };
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if is_loopback(authority.host()) => Ok(()),
        Some("http") => Err(format!(
            "plain http:// is accepted only for a loopback host (localhost, 127.0.0.1, [::1]) because \
             the API key would cross the network unencrypted; use https://{authority}"
        )),
        _ => Err("the scheme must be https:// (or http:// for a loopback host)".into()),
    }
}

/// True for `localhost` and loopback addresses (`[::1]` included).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host[:port]` of `uri`, for messages.
fn authority(uri: &Uri) -> String {
    uri.authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or_default()
}

/// A hyper-util client error as an [`HttpError`].
fn transport_error(
    error: &hyper_util::client::legacy::Error,
    host: &str,
    https: bool,
) -> HttpError {
    let mut message = chain(error);
    if error.is_connect() {
        if https && NATIVE_ROOTS.is_empty() {
            message.push_str(
                " (no CA certificates were found: set SSL_CERT_FILE to a CA bundle, \
                 e.g. /etc/ssl/certs/ca-certificates.crt)",
            );
        } else if message.contains("certificate") {
            message.push_str(
                " (the server's certificate is not trusted: check the host name, or set \
                 SSL_CERT_FILE to a bundle with its CA)",
            );
        }
        HttpError::Connect {
            host: host.to_string(),
            message,
        }
    } else {
        HttpError::Io {
            host: host.to_string(),
            message,
        }
    }
}

/// An error and its sources, `a: b: c`, without repeats (hyper repeats causes).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn urls_must_be_https_or_loopback_http() {
        for ok in [
            "https://http-intake.logs.datadoghq.com",
            "https://proxy.internal:8443/datadog",
            "http://127.0.0.1:8126",
            "http://127.9.9.9",
            "http://localhost:9000/base",
            "http://[::1]:8080",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}: {:?}", check_url(ok));
        }
        for (bad, says) in [
            ("http://proxy.internal:8080", "loopback"),
            ("http://10.0.0.1", "loopback"),
            ("ftp://example.com", "scheme"),
            ("datadoghq.com", "scheme"),
            ("https://", "not a URL"),
            ("https://user:pw@example.com", "user info"),
            ("https://example.com/?a=b", "query"),
            ("https://example.com/#x", "fragment"),
            ("not a url at all", "not a URL"),
        ] {
            let err = check_url(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
        let err = check_url("http://proxy.internal:8080").unwrap_err();
        assert!(err.contains("https://proxy.internal:8080"), "{err}");
    }

    /// A one-connection server that answers every request with `answer`.
    async fn server(answer: Vec<u8>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    // Read the request head (the tests send small requests).
                    let _ = stream.read(&mut buf).await;
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        addr
    }

    fn post(addr: SocketAddr) -> Request<Full<Bytes>> {
        Request::post(format!("http://{addr}/api/v2/logs"))
            .body(Full::new(Bytes::from_static(b"[]")))
            .unwrap()
    }

    fn client(max: usize, timeout_ms: u64) -> HttpClient {
        HttpClient::new(HttpConfig {
            max_response_bytes: max,
            request_timeout: Duration::from_millis(timeout_ms),
            ..HttpConfig::default()
        })
        .expect("client")
    }

    #[tokio::test]
    async fn a_body_within_the_cap_is_read_whole() {
        let addr = server(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 20\r\nconnection: close\r\n\r\n{\"errors\":[\"bad!\"]}\n"
                .to_vec(),
        )
        .await;
        let response = client(20, 5_000).send(post(addr)).await.unwrap();
        assert_eq!(response.status, 400);
        assert_eq!(&response.body[..], b"{\"errors\":[\"bad!\"]}\n");
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_not_buffered() {
        // Announced too large.
        let addr = server(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 21\r\nconnection: close\r\n\r\n{\"errors\":[\"bad!!\"]}\n"
                .to_vec(),
        )
        .await;
        let err = client(20, 5_000).send(post(addr)).await.unwrap_err();
        assert_eq!(
            err,
            HttpError::BodyTooLarge {
                status: 400,
                limit: 20
            }
        );
        // Not announced (close-delimited), 1 MiB long.
        let mut answer =
            b"HTTP/1.1 500 Internal Server Error\r\nconnection: close\r\n\r\n".to_vec();
        answer.extend(std::iter::repeat_n(b'x', 1 << 20));
        let addr = server(answer).await;
        let err = client(1024, 5_000).send(post(addr)).await.unwrap_err();
        assert_eq!(
            err,
            HttpError::BodyTooLarge {
                status: 500,
                limit: 1024
            }
        );
        assert!(err.to_string().contains("HTTP 500"), "{err}");
    }

    #[tokio::test]
    async fn refused_connections_and_silent_servers_are_typed() {
        // Bind, learn the port, close: nothing listens there any more.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = client(1024, 5_000).send(post(addr)).await.unwrap_err();
        assert!(
            matches!(&err, HttpError::Connect { host, .. } if *host == addr.to_string()),
            "{err:?}"
        );

        // Accepts and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(stream);
        });
        let err = client(1024, 200).send(post(addr)).await.unwrap_err();
        assert_eq!(err, HttpError::Timeout(Duration::from_millis(200)));
        held.abort();

        // Closes without an answer.
        let addr = server(Vec::new()).await;
        let err = client(1024, 5_000).send(post(addr)).await.unwrap_err();
        assert!(matches!(err, HttpError::Io { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn plain_http_to_another_host_is_never_sent() {
        let request = Request::post("http://198.51.100.7:9/api/v2/logs")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let err = client(1024, 5_000).send(request).await.unwrap_err();
        assert!(
            matches!(&err, HttpError::InvalidUrl { reason, .. } if reason.contains("loopback")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn https_goes_through_tls() {
        // A plain HTTP server where TLS is expected: the handshake fails and
        // says so, typed as a connection failure.
        let addr = server(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec()).await;
        let request = Request::post(format!("https://{addr}/"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let err = client(1024, 5_000).send(request).await.unwrap_err();
        assert!(
            matches!(&err, HttpError::Connect { message, .. } if message.contains("corrupt message")),
            "{err:?}"
        );
    }

    #[test]
    fn error_chains_drop_repeats() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "outer: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer: inner");
    }
}
