//! A recording reverse proxy in front of moto on a loopback port. Every
//! request is forwarded unchanged and noted: the API it called, the access
//! key id that signed it (from the SigV4 `Authorization` header), when, and
//! the answer's status. STS `AssumeRoleWithWebIdentity` calls are noted with
//! the web identity token sent and the access key id issued, and their
//! credentials can be made short-lived (the answer's `Expiration` rewritten)
//! so a test can watch them rotate. moto checks no signatures; this is how
//! a test proves which credentials a process delivered with.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request the proxy forwarded.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When the request arrived.
    pub at: SystemTime,
    /// The API operation, e.g. `PutLogEvents`, `AssumeRoleWithWebIdentity`.
    pub action: String,
    /// The access key id in the SigV4 credential scope (None: unsigned).
    pub access_key_id: Option<String>,
    /// The upstream's status code (502 when it could not be reached).
    pub status: u16,
    /// `AssumeRoleWithWebIdentity`: the token sent.
    pub web_identity_token: Option<String>,
    /// `AssumeRoleWithWebIdentity`: the access key id issued, and until when.
    pub issued: Option<(String, SystemTime)>,
}

/// A running proxy; stops when dropped.
pub struct RecordingProxy {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
    task: JoinHandle<()>,
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RecordingProxy {
    /// Forwards to `upstream`; with `sts_lifetime`, credentials STS issues
    /// through the proxy expire that long after they were issued.
    pub async fn start(upstream: SocketAddr, sts_lifetime: Option<Duration>) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = log.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let log = shared.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let log = log.clone();
                        async move {
                            let (record, response) = forward(req, upstream, sts_lifetime).await;
                            log.lock().expect("log").push(record);
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        RecordingProxy { addr, log, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().expect("log").clone()
    }
}

async fn forward(
    req: Request<Incoming>,
    upstream: SocketAddr,
    sts_lifetime: Option<Duration>,
) -> (Recorded, Response<Full<Bytes>>) {
    let at = SystemTime::now();
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let form = if parts.headers.contains_key("x-amz-target") {
        Vec::new()
    } else {
        parse_form(&body)
    };
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let action = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned())
        .or_else(|| field("Action"))
        .unwrap_or_default();
    let mut record = Recorded {
        at,
        access_key_id: parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(signing_key_id),
        web_identity_token: field("WebIdentityToken"),
        action,
        status: 502,
        issued: None,
    };

    let mut upstream_req = Request::from_parts(parts, Full::new(body));
    upstream_req.headers_mut().remove(header::CONNECTION);
    let answer = async {
        let stream = TcpStream::connect(upstream).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(conn);
        let response = sender.send_request(upstream_req).await.ok()?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.ok()?.to_bytes();
        Some((parts, body))
    }
    .await;
    let Some((mut parts, mut body)) = answer else {
        let mut r = Response::new(Full::new(Bytes::from_static(b"upstream unreachable")));
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        return (record, r);
    };
    record.status = parts.status.as_u16();
    if record.action == "AssumeRoleWithWebIdentity" && parts.status.is_success() {
        let text = String::from_utf8_lossy(&body).into_owned();
        let mut expires = xml_field(&text, "Expiration").and_then(|e| parse_rfc3339(&e));
        let mut text = text;
        if let (Some(lifetime), Some(old)) = (sts_lifetime, xml_field(&text, "Expiration")) {
            let new = whole_seconds(SystemTime::now() + lifetime);
            text = text.replace(
                &format!("<Expiration>{old}</Expiration>"),
                &format!(
                    "<Expiration>{}</Expiration>",
                    humantime::format_rfc3339_seconds(new)
                ),
            );
            expires = Some(new);
            body = Bytes::from(text.clone());
        }
        record.issued = xml_field(&text, "AccessKeyId").zip(expires);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::TRANSFER_ENCODING);
    (record, Response::from_parts(parts, Full::new(body)))
}

/// The access key id of `AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, …`.
fn signing_key_id(authorization: &str) -> Option<String> {
    let rest = authorization.split("Credential=").nth(1)?;
    Some(rest.split('/').next()?.to_owned())
}

/// The text of the first `<name>…</name>` element.
fn xml_field(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..end].trim().to_owned())
}

fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(SystemTime::from)
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let since = t.duration_since(UNIX_EPOCH).expect("after 1970");
    UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

/// `application/x-www-form-urlencoded` pairs (the AWS query protocol's request body).
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((percent_decode(k), percent_decode(v)))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
