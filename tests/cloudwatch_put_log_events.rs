//! The lean PutLogEvents client (`cwpub::sinks::cloudwatch::put_log_events`) against moto
//! on loopback: moto checks every request's SigV4 signature against the IAM
//! access key it issued, stores what is sent (read back with the SDK in
//! exact content and order), and answers a wrong secret and a missing stream
//! with the errors the client names; credentials come from the configured
//! provider through the identity cache, once until they near expiry.

use crate::support::moto::Moto;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use cwpub::sinks::cloudwatch::put_log_events::{Client, Error, InputEvent};

const GROUP: &str = "/cwpub/lean";
const TIMEOUT: Duration = Duration::from_secs(10);

/// An SdkConfig as aws-config loads it, for `moto`, with `credentials`.
async fn sdk_config(moto: &Moto, credentials: SharedCredentialsProvider) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto.endpoint())
        .credentials_provider(credentials)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

fn static_credentials(id: &str, secret: &str) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(id, secret, None, None, "test"))
}

/// One unsigned-but-accepted IAM query call (moto checks no signature for
/// the first `INITIAL_NO_AUTH_ACTION_COUNT` requests); returns the answer.
fn iam(moto: &Moto, query: &str) -> String {
    let mut stream = TcpStream::connect(moto.addr).expect("connect to moto");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=bootstrap/20260101/us-east-1/iam/aws4_request, \
         SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{query}",
        moto.addr,
        query.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "IAM {query}: {answer}");
    answer
}

fn xml_field<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = start + xml[start..].find('<').expect("closing tag");
    &xml[start..end]
}

/// A moto that checks signatures, and an access key it issued.
fn moto_checking_signatures() -> (Moto, String, String) {
    let moto = Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    iam(&moto, "Action=CreateUser&UserName=cwpub&Version=2010-05-08");
    // {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"*"}]}
    iam(
        &moto,
        "Action=PutUserPolicy&UserName=cwpub&PolicyName=logs&Version=2010-05-08&PolicyDocument=\
         %7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22logs%3A%2A%22%2C%22Resource%22%3A%22%2A%22%7D%5D%7D",
    );
    let key = iam(
        &moto,
        "Action=CreateAccessKey&UserName=cwpub&Version=2010-05-08",
    );
    let (id, secret) = (
        xml_field(&key, "AccessKeyId").to_owned(),
        xml_field(&key, "SecretAccessKey").to_owned(),
    );
    (moto, id, secret)
}

/// Creates `GROUP` and its stream `s`.
async fn create_stream(sdk: &aws_sdk_cloudwatchlogs::Client) {
    sdk.create_log_group()
        .log_group_name(GROUP)
        .send()
        .await
        .expect("create group");
    sdk.create_log_stream()
        .log_group_name(GROUP)
        .log_stream_name("s")
        .send()
        .await
        .expect("create stream");
}

#[tokio::test]
async fn signed_events_are_stored_as_sent_and_errors_are_named() {
    let (moto, id, secret) = moto_checking_signatures();
    let config = sdk_config(&moto, static_credentials(&id, &secret)).await;
    let sdk = aws_sdk_cloudwatchlogs::Client::new(&config);
    create_stream(&sdk).await;

    let client = Client::new(&config, TIMEOUT).await.expect("client");
    assert_eq!(client.endpoint(), format!("{}/", moto.endpoint()));
    let now = chrono::Utc::now().timestamp_millis();
    let messages = [
        r#"{"event":"heartbeat","quote":"\"","tab":"\t"}"#,
        "ünïcödé and a \\ backslash",
        r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[]}}"#,
    ];
    let events: Vec<InputEvent> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| InputEvent {
            timestamp_ms: now + i as i64,
            message,
        })
        .collect();
    let output = client
        .put_log_events(GROUP, "s", &events[..2], false)
        .await
        .expect("PutLogEvents signed with the issued key");
    assert_eq!(output.rejected, None);
    client
        .put_log_events(GROUP, "s", &events[2..], true)
        .await
        .expect("an EMF batch");

    let stored = sdk
        .get_log_events()
        .log_group_name(GROUP)
        .log_stream_name("s")
        .start_from_head(true)
        .send()
        .await
        .expect("GetLogEvents");
    let stored: Vec<(i64, &str)> = stored
        .events()
        .iter()
        .map(|e| (e.timestamp().unwrap_or(-1), e.message().unwrap_or("")))
        .collect();
    let sent: Vec<(i64, &str)> = events.iter().map(|e| (e.timestamp_ms, e.message)).collect();
    assert_eq!(stored, sent);

    match client
        .put_log_events(GROUP, "missing", &events[..1], false)
        .await
    {
        Err(Error::Service {
            status: 400,
            code: Some(code),
            ..
        }) => assert_eq!(code, "ResourceNotFoundException"),
        other => panic!("a missing stream: {other:?}"),
    }

    let wrong = sdk_config(&moto, static_credentials(&id, "not-the-secret")).await;
    let forged = Client::new(&wrong, TIMEOUT).await.expect("client");
    match forged.put_log_events(GROUP, "s", &events[..1], false).await {
        Err(e @ Error::Service { status: 403, .. }) => {
            assert!(e.to_string().contains("SignatureDoesNotMatch"), "{e}");
        }
        other => panic!("a wrong secret: {other:?}"),
    }
}

/// Hands out credentials that expire after `lifetime`, counting the calls.
#[derive(Debug)]
struct Counting {
    calls: Arc<AtomicUsize>,
    lifetime: Duration,
}

impl ProvideCredentials for Counting {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let serial = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        future::ProvideCredentials::ready(Ok(Credentials::new(
            format!("AKIDCOUNTING{serial:04}"),
            "secret",
            Some(format!("token-{serial}")),
            Some(SystemTime::now() + self.lifetime),
            "counting",
        )))
    }
}

#[tokio::test]
async fn credentials_are_resolved_once_until_they_near_expiry() {
    let moto = Moto::start();
    let sdk = moto.client();
    create_stream(&sdk).await;
    let event = [InputEvent {
        timestamp_ms: chrono::Utc::now().timestamp_millis(),
        message: "x",
    }];

    // An hour's credentials: resolved by the first call, then cached.
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = Counting {
        calls: calls.clone(),
        lifetime: Duration::from_secs(3600),
    };
    let config = sdk_config(&moto, SharedCredentialsProvider::new(provider)).await;
    let client = Client::new(&config, TIMEOUT).await.expect("client");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing resolved before a call"
    );
    for _ in 0..5 {
        client
            .put_log_events(GROUP, "s", &event, false)
            .await
            .expect("put");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Credentials that expire within the cache's refresh margin are
    // resolved again for every call.
    let calls = Arc::new(AtomicUsize::new(0));
    let provider = Counting {
        calls: calls.clone(),
        lifetime: Duration::from_secs(1),
    };
    let config = sdk_config(&moto, SharedCredentialsProvider::new(provider)).await;
    let client = Client::new(&config, TIMEOUT).await.expect("client");
    for _ in 0..3 {
        client
            .put_log_events(GROUP, "s", &event, false)
            .await
            .expect("put");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn no_listener_is_a_connection_error_and_silence_a_timeout() {
    let moto_less = |endpoint: String| async move {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(static_credentials("AKID", "secret"))
            .load()
            .await;
        Client::new(&config, Duration::from_millis(500))
            .await
            .expect("client")
    };
    let event = [InputEvent {
        timestamp_ms: 1,
        message: "x",
    }];

    // A port nobody listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let client = moto_less(format!("http://127.0.0.1:{port}")).await;
    match client.put_log_events(GROUP, "s", &event, false).await {
        Err(Error::Connection(_)) => {}
        other => panic!("nobody listening: {other:?}"),
    }

    // A listener that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let client = moto_less(format!("http://{}", silent.local_addr().expect("addr"))).await;
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    match client.put_log_events(GROUP, "s", &event, false).await {
        Err(Error::Timeout(limit)) => assert_eq!(limit, Duration::from_millis(500)),
        Err(Error::Connection(detail)) if detail.contains("timed out") => {}
        other => panic!("a silent endpoint: {other:?}"),
    }
    held.abort();
}
