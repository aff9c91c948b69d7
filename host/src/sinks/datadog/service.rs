//! Sends one encoded [`Payload`] to its DataDog intake and says what the
//! answer means ([`Outcome`], classified by [`super::retry`]).
//!
//! Every request carries `DD-API-KEY` (marked sensitive), `Content-Type:
//! application/json` and `Content-Encoding: gzip`. When DataDog refuses the
//! key (401/403) and the key comes from a file, the file is re-read at once,
//! so a rotated secret is used by the next attempt ([`Outcome::key_reloaded`]).
//! Remote text reaches [`Outcome`] with the key scrubbed out, escaped and
//! capped; no message contains the key.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::Request;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};

use super::encode::Payload;
use super::key::{ApiKeyStore, KeySource};
use super::retry::{self, Class};
use super::site::Endpoints;
use crate::http::{HttpClient, HttpError};

/// The header that carries the API key.
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("dd-api-key");

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What it means for the batch.
    pub class: Class,
    /// The answer's status, when there was an answer.
    pub status: Option<u16>,
    /// The intake's reason (from the body) or the transport failure, escaped
    /// and capped: short and stable enough to count refusals by.
    pub reason: String,
    /// One line for the log and `/readyz`: what happened and what to do.
    pub message: String,
    /// How long the intake asked to wait (429), capped.
    pub retry_after: Option<Duration>,
    /// After a refused key: the key file was re-read and holds a new key.
    pub key_reloaded: bool,
}

/// The DataDog intakes of one sink, with its client and key.
#[derive(Debug, Clone)]
pub struct DatadogService {
    http: HttpClient,
    endpoints: Endpoints,
    key: Arc<ApiKeyStore>,
}

impl DatadogService {
    /// A service sending to `endpoints` with `http`, authenticated by `key`.
    pub fn new(http: HttpClient, endpoints: Endpoints, key: Arc<ApiKeyStore>) -> Self {
        DatadogService {
            http,
            endpoints,
            key,
        }
    }

    /// Where requests go.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The key store (to re-read or redact outside a request).
    pub fn key(&self) -> &ApiKeyStore {
        &self.key
    }

    /// POSTs `payload` to its intake and classifies the answer.
    pub async fn send(&self, payload: &Payload) -> Outcome {
        let url = self.endpoints.url(payload.intake);
        let intake = format!(
            "DataDog {} intake ({})",
            payload.intake,
            self.endpoints.origin()
        );
        let request = Request::post(url.clone())
            .header(API_KEY_HEADER, self.key.current().header_value())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(CONTENT_ENCODING, HeaderValue::from_static("gzip"))
            .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
            .body(Full::new(payload.body.clone()));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                return self
                    .failed(&intake, HttpError::Request(e.to_string()))
                    .await;
            }
        };
        match self.http.send(request).await {
            Ok(response) => {
                let status = response.status.as_u16();
                let class = retry::classify_status(status);
                let reason = if class == Class::Accepted {
                    String::new()
                } else {
                    retry::reason(
                        self.key
                            .redact(&String::from_utf8_lossy(&response.body))
                            .as_bytes(),
                    )
                };
                let retry_after = (class == Class::Throttled)
                    .then(|| retry::retry_after(&response.headers))
                    .flatten();
                self.outcome(&intake, class, Some(status), reason, retry_after)
                    .await
            }
            Err(error) => self.failed(&intake, error).await,
        }
    }

    async fn failed(&self, intake: &str, error: HttpError) -> Outcome {
        let class = retry::classify_error(&error);
        let status = match error {
            HttpError::BodyTooLarge { status, .. } => Some(status),
            _ => None,
        };
        let reason = crate::untrusted::escape(
            &self.key.redact(&error.to_string()),
            retry::MAX_REASON_BYTES,
        );
        self.outcome(intake, class, status, reason, None).await
    }

    async fn outcome(
        &self,
        intake: &str,
        class: Class,
        status: Option<u16>,
        reason: String,
        retry_after: Option<Duration>,
    ) -> Outcome {
        let mut key_reloaded = false;
        let answered = match status {
            Some(s) => format!("{intake} answered {s}"),
            None => format!("{intake} could not be reached"),
        };
        let because = if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        };
        let message = match class {
            Class::Accepted => format!("{answered}: accepted"),
            Class::Credentials => {
                let source = self.key.source();
                let mut m = format!(
                    "{answered}{because}; the API key from {source} was refused: check that it is an API \
                     key (not an application key) of this DataDog site, and that it is not revoked"
                );
                if let KeySource::File(_) = source {
                    match self.key.reload().await {
                        Ok(true) => {
                            key_reloaded = true;
                            m.push_str(
                                "; the key file holds a new key, which the next attempt uses",
                            );
                        }
                        Ok(false) => m.push_str("; the key file still holds the same key"),
                        Err(e) => m.push_str(&format!("; re-reading it failed: {e}")),
                    }
                }
                m
            }
            Class::Throttled => format!("{answered}{because}; DataDog asks for a lower rate"),
            Class::Transient => format!("{answered}{because}; retrying"),
            Class::TooLarge => {
                format!("{answered}{because}; the batch is split and sent in halves")
            }
            Class::BadRequest => format!("{answered}{because}; DataDog refused the payload"),
            Class::Permanent => format!(
                "{answered}{because}; check endpoint_url (DataDog's intakes answer 2xx, 400, 401, 403, \
                 408, 413, 429 or 5xx)"
            ),
        };
        Outcome {
            class,
            status,
            reason,
            message,
            retry_after,
            key_reloaded,
        }
    }
}

/// `cwpub/<version>`.
const USER_AGENT_VALUE: &str = concat!("cwpub/", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    use crate::env::from_pairs;
    use crate::event::LogEvent;
    use crate::http::HttpConfig;
    use crate::sinks::datadog::encode::{LogLimits, encode_logs};
    use crate::sinks::datadog::logs::LogDefaults;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    /// A server that answers one request with `answer` and hands back the
    /// request's head.
    async fn once(answer: String) -> (SocketAddr, oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
        (addr, rx)
    }

    fn service(addr: SocketAddr, source: KeySource, env: &crate::env::Env) -> DatadogService {
        DatadogService::new(
            HttpClient::new(HttpConfig::default()).unwrap(),
            Endpoints::for_base_url(&format!("http://{addr}")).unwrap(),
            Arc::new(ApiKeyStore::load(source, env).unwrap()),
        )
    }

    fn payload() -> Payload {
        let events = [LogEvent {
            timestamp_ms: 1,
            message: "hello".into(),
        }];
        encode_logs(&events, &LogDefaults::default(), 1, LogLimits::DATADOG)
            .payloads
            .remove(0)
    }

    #[tokio::test]
    async fn requests_carry_the_key_and_the_encoding() {
        let (addr, head) = once(
            "HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".into(),
        )
        .await;
        let env = from_pairs(&[("DD_API_KEY", KEY)]);
        let svc = service(addr, KeySource::Env("DD_API_KEY".into()), &env);
        let outcome = svc.send(&payload()).await;
        assert_eq!(outcome.class, Class::Accepted, "{outcome:?}");
        assert_eq!(outcome.status, Some(202));
        let head = head.await.unwrap().to_ascii_lowercase();
        assert!(head.starts_with("post /api/v2/logs http/1.1\r\n"), "{head}");
        for header in [
            format!("dd-api-key: {KEY}"),
            "content-type: application/json".into(),
            "content-encoding: gzip".into(),
            "user-agent: cwpub/".into(),
        ] {
            assert!(head.contains(&header), "{header} missing in {head}");
        }
    }

    #[tokio::test]
    async fn a_refused_key_is_never_echoed_and_a_key_file_is_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("{KEY}\n")).unwrap();
        // The endpoint echoes the key back in its error.
        let body = format!("{{\"errors\":[\"Forbidden: key {KEY} is invalid\"]}}");
        let (addr, _head) = once(format!(
            "HTTP/1.1 403 Forbidden\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ))
        .await;
        let svc = service(addr, KeySource::File(path.clone()), &crate::env::Env::new());
        std::fs::write(&path, "rotated-key").unwrap();
        let outcome = svc.send(&payload()).await;
        assert_eq!(outcome.class, Class::Credentials);
        assert!(outcome.key_reloaded, "{outcome:?}");
        let shown = format!("{outcome:?}");
        assert!(!shown.contains(KEY), "{shown}");
        assert_eq!(outcome.reason, "Forbidden: key [redacted] is invalid");
        assert!(
            outcome.message.contains("api_key_file"),
            "{}",
            outcome.message
        );
        assert!(outcome.message.contains("new key"), "{}", outcome.message);
        assert_eq!(svc.key().current().header_value(), "rotated-key");
    }

    #[tokio::test]
    async fn throttling_carries_the_wait_and_a_dead_endpoint_is_transient() {
        let (addr, _head) = once(
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                .into(),
        )
        .await;
        let env = from_pairs(&[("DD_API_KEY", KEY)]);
        let outcome = service(addr, KeySource::Env("DD_API_KEY".into()), &env)
            .send(&payload())
            .await;
        assert_eq!(outcome.class, Class::Throttled);
        assert_eq!(outcome.retry_after, Some(Duration::from_secs(2)));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let outcome = service(addr, KeySource::Env("DD_API_KEY".into()), &env)
            .send(&payload())
            .await;
        assert_eq!(outcome.class, Class::Transient);
        assert_eq!(outcome.status, None);
        assert!(
            outcome.message.contains("could not be reached"),
            "{}",
            outcome.message
        );
    }
}
