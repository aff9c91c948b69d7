//! Error classification: SDK errors by their error code / kind (never by
//! HTTP status alone: ThrottlingException is a 400) into the handful of
//! classes the retry policy (`policy`) decides on.

use std::error::Error as StdError;

use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::retry::ErrorKind;

/// What the sender does about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// ThrottlingException / 429: back off and retry.
    Throttled,
    /// 5xx, ServiceUnavailable, timeouts, connection failures, unreadable
    /// responses: back off and retry.
    Transient,
    /// InvalidParameterException: the request itself is bad; never resend unchanged.
    InvalidParameter,
    /// ResourceNotFoundException: group or stream missing.
    NotFound,
    /// ResourceAlreadyExistsException (creation raced with someone): success.
    AlreadyExists,
    /// Credentials missing, expired, unrecognised, or permission denied:
    /// keep data, long backoff, loud log.
    Credentials,
    /// Anything else the service refused: a few tries, then drop.
    Permanent,
}

impl ErrorClass {
    /// True for classes a plain backoff-and-retry can fix.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Throttled | ErrorClass::Transient)
    }
}

/// A classified error with a one-line description for logs and health.
#[derive(Debug, Clone)]
pub(crate) struct Classified {
    /// The class.
    pub class: ErrorClass,
    /// The service error code, or the SDK error kind when there is none.
    pub code: String,
    /// Human-readable description including the source chain.
    pub message: String,
}

/// Classifies an error code from the service.
pub(crate) fn class_of_code(code: &str) -> Option<ErrorClass> {
    Some(match code {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => ErrorClass::Throttled,
        "ServiceUnavailableException"
        | "ServiceUnavailable"
        | "InternalFailure"
        | "InternalServerError"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "RequestExpired"
        | "OperationAbortedException"
        | "InvalidSequenceTokenException" => ErrorClass::Transient,
        "InvalidParameterException" | "ValidationException" | "SerializationException" => {
            ErrorClass::InvalidParameter
        }
        "ResourceNotFoundException" => ErrorClass::NotFound,
        "ResourceAlreadyExistsException" => ErrorClass::AlreadyExists,
        "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "UnauthorizedOperation"
        | "NotAuthorized" => ErrorClass::Credentials,
        _ => return None,
    })
}

/// Classifies any CloudWatch Logs SDK error.
pub(crate) fn classify<E>(err: &SdkError<E, HttpResponse>) -> Classified
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let message = DisplayErrorContext(err).to_string();
    let (class, code) = match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            match ctx.err().code() {
                Some(code) => {
                    let class = class_of_code(code).unwrap_or(if status >= 500 {
                        ErrorClass::Transient
                    } else if status == 429 {
                        ErrorClass::Throttled
                    } else {
                        ErrorClass::Permanent
                    });
                    (class, code.to_string())
                }
                None if status >= 500 => (ErrorClass::Transient, format!("HTTP {status}")),
                None if status == 429 => (ErrorClass::Throttled, format!("HTTP {status}")),
                None if status == 401 || status == 403 => {
                    (ErrorClass::Credentials, format!("HTTP {status}"))
                }
                None => (ErrorClass::Permanent, format!("HTTP {status}")),
            }
        }
        SdkError::TimeoutError(_) => (ErrorClass::Transient, "timeout".into()),
        SdkError::DispatchFailure(d) => {
            if d.is_timeout() {
                (ErrorClass::Transient, "timeout".into())
            } else if d.is_io() {
                (ErrorClass::Transient, "connection".into())
            } else if matches!(
                d.as_other(),
                Some(
                    ErrorKind::TransientError | ErrorKind::ServerError | ErrorKind::ThrottlingError
                )
            ) {
                (ErrorClass::Transient, "dispatch".into())
            } else {
                // Failures before anything reached the wire that are not I/O
                // are almost always identity resolution: no credentials, an
                // expired SSO session, an unreachable credential endpoint.
                (ErrorClass::Credentials, "credentials".into())
            }
        }
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            if (400..500).contains(&status) && status != 429 && status != 408 {
                (
                    ErrorClass::Permanent,
                    format!("unreadable HTTP {status} response"),
                )
            } else {
                (ErrorClass::Transient, "unreadable response".into())
            }
        }
        SdkError::ConstructionFailure(_) => {
            (ErrorClass::Credentials, "request construction".into())
        }
        _ => (ErrorClass::Transient, "unknown SDK error".into()),
    };
    Classified {
        class,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(
            class_of_code("ThrottlingException"),
            Some(ErrorClass::Throttled)
        );
        assert_eq!(
            class_of_code("ServiceUnavailableException"),
            Some(ErrorClass::Transient)
        );
        assert_eq!(
            class_of_code("InvalidParameterException"),
            Some(ErrorClass::InvalidParameter)
        );
        assert_eq!(
            class_of_code("ResourceNotFoundException"),
            Some(ErrorClass::NotFound)
        );
        assert_eq!(
            class_of_code("ResourceAlreadyExistsException"),
            Some(ErrorClass::AlreadyExists)
        );
        for c in [
            "AccessDeniedException",
            "UnrecognizedClientException",
            "ExpiredTokenException",
        ] {
            assert_eq!(class_of_code(c), Some(ErrorClass::Credentials), "{c}");
        }
        assert_eq!(class_of_code("SomethingNew"), None);
    }
}
