//! CloudWatch Logs `PutLogEvents` without the SDK's per-call pipeline: one
//! AWS JSON 1.1 POST, signed with SigV4 (`aws-sigv4`), sent over the SDK's
//! own HTTP client (hyper, rustls, its connection pool and timeouts).
//!
//! What does not change between calls is done once, in [`Client::new`]: the
//! endpoint is resolved by the SDK's CloudWatch Logs endpoint rules (region,
//! FIPS, dual-stack, an endpoint override), the HTTP connector is built, and
//! the credentials provider of the aws-config default chain (environment,
//! profile, SSO, web identity, ECS, IMDS) is put behind the SDK's identity
//! cache, which resolves credentials once and again shortly before they
//! expire. A call then serializes the body, takes the cached credentials,
//! signs, sends and reads the answer: no runtime plugins merged, no
//! interceptors, no endpoint rules evaluated per request.
//!
//! Failures are classified by `classify` into the delivery core's error
//! classes, by the rules `retry` applies to the SDK's errors when groups and
//! streams are created (the error code from the `X-Amzn-Errortype` header or
//! the JSON `__type`, the status only when the answer names no code).

use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use aws_config::identity::IdentityCache;
use aws_sdk_cloudwatchlogs::config::endpoint::{DefaultResolver, Params, ResolveEndpoint as _};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_runtime::client::auth::no_auth::{NO_AUTH_SCHEME_ID, NoAuthScheme};
use aws_smithy_runtime::client::defaults::default_http_client_plugin_v2;
use aws_smithy_runtime::client::orchestrator::endpoints::StaticUriEndpointResolver;
use aws_smithy_runtime::client::retries::strategy::NeverRetryStrategy;
use aws_smithy_runtime_api::client::auth::static_resolver::StaticAuthSchemeOptionResolver;
use aws_smithy_runtime_api::client::http::{
    HttpClient as _, HttpConnector as _, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::identity::{
    Identity, ResolveCachedIdentity as _, SharedIdentityCache, SharedIdentityResolver,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin as _;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::config_bag::ConfigBag;
use aws_types::service_config::ServiceConfigKey;
use serde::{Deserialize, Serialize};

use crate::delivery::{ErrorClass, Failure};
use crate::untrusted::GuestText;

use super::retry::{class_of_code, class_of_status};

/// The service's SigV4 signing name.
const SIGNING_NAME: &str = "logs";
/// The AWS JSON 1.1 operation name (`X-Amz-Target`).
const TARGET: &str = "Logs_20140328.PutLogEvents";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The header that marks a batch of EMF documents.
const EMF_FORMAT: (&str, &str) = ("x-amzn-logs-format", "json/emf");
/// The longest a connection may take to open (capped by the call's timeout).
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an error answer kept for the message.
const MAX_ERROR_BODY: usize = 4 << 10;

/// One log event of a request.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct InputEvent<'a> {
    /// Milliseconds since the Unix epoch.
    #[serde(rename = "timestamp")]
    pub timestamp_ms: i64,
    /// The message, sent as is.
    pub message: &'a str,
}

/// A PutLogEvents client; cheap to share (`&Client` from any task).
#[derive(Debug)]
pub struct Client {
    connector: SharedHttpConnector,
    credentials: CachedCredentials,
    /// The endpoint with the path `/`.
    url: String,
    /// The endpoint's authority, for the `Host` header.
    host: String,
    region: String,
    timeout: Duration,
}

/// The credentials provider behind the identity cache, with the runtime
/// components the cache reads its clock and timer from.
#[derive(Debug)]
struct CachedCredentials {
    cache: SharedIdentityCache,
    resolver: SharedIdentityResolver,
    components: RuntimeComponents,
    config: ConfigBag,
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("setting up the PutLogEvents client: {0}")]
pub struct SetupError(String);

/// What CloudWatch Logs said about events it did not store (indexes into the request's events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    /// Events from this index on were too far in the future.
    pub too_new_log_event_start_index: Option<i32>,
    /// Events before this index were too old.
    pub too_old_log_event_end_index: Option<i32>,
    /// Events before this index were older than the group's retention.
    pub expired_log_event_end_index: Option<i32>,
}

/// A successful answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    /// Events the service refused within an accepted request, if any.
    #[serde(rename = "rejectedLogEventsInfo")]
    pub rejected: Option<Rejected>,
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service answered with an error.
    #[error("HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Service {
        /// The HTTP status.
        status: u16,
        /// The error code (`ThrottlingException`), when the answer names one.
        code: Option<String>,
        /// The service's message, escaped and capped.
        message: GuestText,
    },
    /// No complete answer within the call's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection could not be opened or broke (refused, reset, TLS).
    #[error("connection failed: {0}")]
    Connection(String),
    /// No credentials: the provider chain found none, or failed.
    #[error("no AWS credentials: {0}")]
    Credentials(String),
    /// The request could not be built or signed.
    #[error("cannot build the request: {0}")]
    Request(String),
    /// The service's answer could not be read.
    #[error("unreadable HTTP {status} answer: {detail}")]
    Unreadable {
        /// The HTTP status.
        status: u16,
        /// What was wrong with it (quoting the answer: escaped and capped).
        detail: GuestText,
    },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestBody<'a> {
    log_group_name: &'a str,
    log_stream_name: &'a str,
    log_events: &'a [InputEvent<'a>],
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type", alias = "code")]
    kind: Option<String>,
    #[serde(alias = "Message")]
    message: Option<String>,
}

impl Client {
    /// A client for the region, endpoint, credentials and HTTP client that
    /// `sdk` (an aws-config `SdkConfig`) holds; each call is given up after
    /// `timeout`. Fails when `sdk` has no region or no HTTP client.
    pub async fn new(sdk: &SdkConfig, timeout: Duration) -> Result<Self, SetupError> {
        let region = sdk
            .region()
            .map(|r| r.as_ref().to_owned())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| SetupError("no AWS region: set [sink] region or AWS_REGION".into()))?;
        let url = resolve_endpoint(sdk, &region).await?;
        let host = url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.authority().map(|a| a.as_str().to_owned()))
            .ok_or_else(|| SetupError(format!("endpoint {url:?} has no host")))?;
        let http_client = http_client(sdk).ok_or_else(|| {
            SetupError(
                "no HTTP client: build aws-config with its default-https-client feature".into(),
            )
        })?;
        let provider = sdk.credentials_provider().ok_or_else(|| {
            SetupError("the AWS configuration has no credentials provider".into())
        })?;
        let cache = sdk
            .identity_cache()
            .unwrap_or_else(|| IdentityCache::lazy().build());
        // aws-config sets both; an SdkConfig built by hand gets the system
        // clock and tokio's timer.
        let time_source = sdk.time_source().unwrap_or_default();
        let sleep = sdk
            .sleep_impl()
            .or_else(default_async_sleep)
            .ok_or_else(|| {
                SetupError("no async timer: build aws-smithy-async with rt-tokio".into())
            })?;
        let resolver = SharedIdentityResolver::new(provider);
        // The identity cache and the HTTP client take their clock, timer and
        // settings from runtime components; the orchestrator-only parts
        // (auth scheme choice, endpoint resolver, retry strategy) are inert
        // placeholders the builder requires.
        let components = RuntimeComponentsBuilder::new("cwpub PutLogEvents")
            .with_http_client(Some(http_client.clone()))
            .with_identity_cache(Some(cache.clone()))
            .with_identity_resolver(NO_AUTH_SCHEME_ID, resolver.clone())
            .with_auth_scheme(NoAuthScheme::new())
            .with_auth_scheme_option_resolver(Some(StaticAuthSchemeOptionResolver::new(vec![
                NO_AUTH_SCHEME_ID,
            ])))
            .with_endpoint_resolver(Some(StaticUriEndpointResolver::uri(url.clone())))
            .with_retry_strategy(Some(NeverRetryStrategy::new()))
            .with_time_source(Some(time_source))
            .with_sleep_impl(Some(sleep))
            .build()
            .map_err(|e| SetupError(e.to_string()))?;
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
            .read_timeout(timeout)
            .build();
        let connector = http_client.http_connector(&settings, &components);
        Ok(Client {
            connector,
            credentials: CachedCredentials {
                cache,
                resolver,
                components,
                config: ConfigBag::base(),
            },
            url: format!("{}/", url.trim_end_matches('/')),
            host,
            region,
            timeout,
        })
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.url
    }

    /// Sends `events` (already valid: sorted, within the request limits) to
    /// `group`/`stream`, with the EMF header when `emf`.
    pub async fn put_log_events(
        &self,
        group: &str,
        stream: &str,
        events: &[InputEvent<'_>],
        emf: bool,
    ) -> Result<Output, Error> {
        let body = serde_json::to_vec(&RequestBody {
            log_group_name: group,
            log_stream_name: stream,
            log_events: events,
        })
        .map_err(|e| Error::Request(e.to_string()))?;
        match tokio::time::timeout(self.timeout, self.call(body, emf)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout(self.timeout)),
        }
    }

    async fn call(&self, body: Vec<u8>, emf: bool) -> Result<Output, Error> {
        let identity = self.credentials.get().await?;
        let request = self.signed_request(body, emf, &identity)?;
        let response = self
            .connector
            .call(request)
            .await
            .map_err(connection_error)?;
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .map(str::to_owned);
        let bytes = ByteStream::new(response.into_body())
            .collect()
            .await
            .map_err(|e| Error::Connection(format!("reading the answer: {e}")))?
            .into_bytes();
        if (200..300).contains(&status) {
            return output(status, &bytes);
        }
        Err(service_error(status, error_type.as_deref(), &bytes))
    }

    fn signed_request(
        &self,
        body: Vec<u8>,
        emf: bool,
        identity: &Identity,
    ) -> Result<HttpRequest, Error> {
        let request_error = |e: &dyn std::fmt::Display| Error::Request(e.to_string());
        let mut headers = vec![
            ("host", self.host.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", TARGET),
        ];
        if emf {
            headers.push(EMF_FORMAT);
        }
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| request_error(&e))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            &self.url,
            headers.iter().copied(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| request_error(&e))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| request_error(&e))?
            .into_parts();
        let mut builder = http::Request::post(&self.url)
            .header("content-length", body.len())
            .header("user-agent", USER_AGENT);
        for (name, value) in &headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder
            .body(SdkBody::from(body))
            .map_err(|e| request_error(&e))?;
        instructions.apply_to_request_http1x(&mut request);
        HttpRequest::try_from(request).map_err(|e| request_error(&e))
    }
}

const USER_AGENT: &str = concat!("cwpub/", env!("CARGO_PKG_VERSION"));

impl CachedCredentials {
    /// The cached credentials, resolved again by the provider chain when
    /// they are about to expire.
    async fn get(&self) -> Result<Identity, Error> {
        self.cache
            .resolve_cached_identity(self.resolver.clone(), &self.components, &self.config)
            .await
            .map_err(|e| {
                Error::Credentials(
                    aws_smithy_types::error::display::DisplayErrorContext(&*e).to_string(),
                )
            })
    }
}

/// The HTTP client `sdk` names, else the one the SDK's clients use by default.
fn http_client(sdk: &SdkConfig) -> Option<SharedHttpClient> {
    sdk.http_client().or_else(|| {
        let version = sdk
            .behavior_version()
            .unwrap_or_else(BehaviorVersion::latest);
        default_http_client_plugin_v2(version)?
            .runtime_components(&RuntimeComponentsBuilder::new("default HTTP client"))
            .http_client()
    })
}

/// The endpoint the SDK's CloudWatch Logs rules give for `region` and the
/// FIPS, dual-stack and endpoint-override settings of `sdk` (an override
/// for this service alone, `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`, included).
async fn resolve_endpoint(sdk: &SdkConfig, region: &str) -> Result<String, SetupError> {
    let endpoint_url = if sdk.get_origin("endpoint_url").is_client_config() {
        sdk.endpoint_url().map(str::to_owned)
    } else {
        let key = ServiceConfigKey::builder()
            .service_id("CloudWatch Logs")
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .map_err(|e| SetupError(e.to_string()))?;
        sdk.service_config()
            .and_then(|c| c.load_config(key))
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
    };
    let params = Params::builder()
        .region(region)
        .set_use_fips(sdk.use_fips())
        .set_use_dual_stack(sdk.use_dual_stack())
        .set_endpoint(endpoint_url)
        .build()
        .map_err(|e| SetupError(e.to_string()))?;
    let endpoint = DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map_err(|e| SetupError(format!("resolving the CloudWatch Logs endpoint: {e}")))?;
    Ok(endpoint.url().to_owned())
}

fn connection_error(e: ConnectorError) -> Error {
    let detail = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
    if e.is_timeout() {
        Error::Connection(format!("timed out: {detail}"))
    } else {
        Error::Connection(detail)
    }
}

/// A successful answer's body: empty, or what CloudWatch did not store.
fn output(status: u16, body: &[u8]) -> Result<Output, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Output::default());
    }
    serde_json::from_slice(body).map_err(|e| Error::Unreadable {
        status,
        // serde quotes the text it could not read.
        detail: GuestText::new(&e.to_string()),
    })
}

/// The error an answer with a failure status carries: its code from the
/// `X-Amzn-Errortype` header or the body's `__type` (`code`), its message
/// from the body. A body that is not AWS JSON (a proxy's HTML page, an XML
/// error) names no code, and the status alone classifies it, as the SDK does.
fn service_error(status: u16, header: Option<&str>, body: &[u8]) -> Error {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let code = header
        .or_else(|| parsed.as_ref().and_then(|b| b.kind.as_deref()))
        .and_then(error_code);
    let message = match parsed.as_ref().and_then(|b| b.message.as_deref()) {
        Some(message) => GuestText::new(message),
        None => GuestText::new(&String::from_utf8_lossy(
            &body[..body.len().min(MAX_ERROR_BODY)],
        )),
    };
    Error::Service {
        status,
        code,
        message,
    }
}

/// The error code in an AWS JSON error type: `aws.protocoltests#FooError`,
/// `FooError:http://internal.amazon.com/coral/...` and `FooError` all name
/// `FooError`; anything that is not a plain name is no code.
fn error_code(raw: &str) -> Option<String> {
    let name = raw.rsplit('#').next().unwrap_or(raw);
    let name = name.split(':').next().unwrap_or(name).trim();
    (!name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
    .then(|| name.to_owned())
}

/// Classifies a failed call into the delivery core's error classes, by the
/// rules the CloudWatch sink applies to the SDK client's errors.
pub(crate) fn classify(error: &Error) -> Failure {
    let (class, code) = match error {
        Error::Service {
            status,
            code: Some(code),
            ..
        } => (
            class_of_code(code).unwrap_or(match status {
                500.. => ErrorClass::Transient,
                429 => ErrorClass::Throttled,
                _ => ErrorClass::Permanent,
            }),
            code.clone(),
        ),
        Error::Service {
            status, code: None, ..
        } => class_of_status(*status),
        Error::Timeout(_) => (ErrorClass::Transient, "timeout".into()),
        Error::Connection(_) => (ErrorClass::Transient, "connection".into()),
        Error::Credentials(_) => (ErrorClass::Credentials, "credentials".into()),
        // A request that cannot be built will not be built next time either.
        Error::Request(_) => (ErrorClass::Permanent, "request construction".into()),
        Error::Unreadable { status, .. } => {
            if (400..500).contains(status) && *status != 429 && *status != 408 {
                (
                    ErrorClass::Permanent,
                    format!("unreadable HTTP {status} response"),
                )
            } else {
                (ErrorClass::Transient, "unreadable response".into())
            }
        }
    };
    Failure::new(class, &code, &error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_every_shape_of_type() {
        assert_eq!(
            error_code("ThrottlingException").as_deref(),
            Some("ThrottlingException")
        );
        assert_eq!(
            error_code("com.amazonaws.logs#ResourceNotFoundException").as_deref(),
            Some("ResourceNotFoundException")
        );
        assert_eq!(
            error_code("InvalidParameterException:http://internal.amazon.com/coral/x/").as_deref(),
            Some("InvalidParameterException")
        );
        assert_eq!(error_code("<html>"), None);
        assert_eq!(error_code(""), None);
    }

    #[test]
    fn service_errors_are_classified_by_code_then_status() {
        let class = |status, header: Option<&str>, body: &str| {
            classify(&service_error(status, header, body.as_bytes())).class
        };
        let throttled = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
        assert_eq!(class(400, None, throttled), ErrorClass::Throttled);
        assert_eq!(
            class(400, Some("ResourceNotFoundException"), "{}"),
            ErrorClass::NotFound
        );
        assert_eq!(
            class(
                400,
                None,
                r#"{"__type":"com.amazonaws.logs#InvalidParameterException","message":"x"}"#
            ),
            ErrorClass::InvalidRequest
        );
        assert_eq!(
            class(400, None, r#"{"__type":"ExpiredTokenException"}"#),
            ErrorClass::Credentials
        );
        assert_eq!(
            class(400, None, r#"{"__type":"SomethingNew"}"#),
            ErrorClass::Permanent
        );
        assert_eq!(
            class(503, None, r#"{"__type":"SomethingNew"}"#),
            ErrorClass::Transient
        );
        assert_eq!(class(500, None, ""), ErrorClass::Transient);
        assert_eq!(
            class(502, None, "<html>bad gateway</html>"),
            ErrorClass::Transient
        );
        assert_eq!(class(429, None, ""), ErrorClass::Throttled);
        assert_eq!(class(403, None, ""), ErrorClass::Credentials);
        assert_eq!(class(400, None, "not json"), ErrorClass::Permanent);
        let xml =
            "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>";
        assert_eq!(class(403, None, xml), ErrorClass::Credentials);
    }

    #[test]
    fn service_messages_are_escaped() {
        let error = service_error(
            400,
            None,
            br#"{"__type":"InvalidParameterException","message":"bad\n\u001b[31mforged"}"#,
        );
        let text = error.to_string();
        assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text}");
        assert!(
            text.starts_with("HTTP 400 InvalidParameterException: bad"),
            "{text}"
        );
    }

    #[test]
    fn unreadable_answers_are_escaped_and_empty_ones_accepted() {
        assert_eq!(output(200, b" \n").expect("empty"), Output::default());
        let forged = format!(
            r#"{{"rejectedLogEventsInfo":{{"tooNewLogEventStartIndex":"x\u001b[31m{}"}}}}"#,
            "y".repeat(10_000)
        );
        let error = output(200, forged.as_bytes()).expect_err("a string index");
        let text = error.to_string();
        assert!(text.starts_with("unreadable HTTP 200 answer: "), "{text}");
        assert!(!text.contains('\u{1b}') && text.len() < 5_000, "{text}");
        assert_eq!(classify(&error).class, ErrorClass::Transient);
    }

    #[test]
    fn the_body_is_aws_json() {
        let events = [
            InputEvent {
                timestamp_ms: 1,
                message: "a\"b",
            },
            InputEvent {
                timestamp_ms: 2,
                message: "c",
            },
        ];
        let body = serde_json::to_string(&RequestBody {
            log_group_name: "g",
            log_stream_name: "s",
            log_events: &events,
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1,"message":"a\"b"},{"timestamp":2,"message":"c"}]}"#
        );
        let output: Output = serde_json::from_str(
            r#"{"nextSequenceToken":"x","rejectedLogEventsInfo":{"tooOldLogEventEndIndex":2}}"#,
        )
        .unwrap();
        assert_eq!(
            output.rejected,
            Some(Rejected {
                too_old_log_event_end_index: Some(2),
                ..Rejected::default()
            })
        );
    }
}
