//! Error classification: CloudWatch Logs SDK errors by their error code or
//! kind (never by HTTP status alone: ThrottlingException is a 400), and
//! failures before anything reached the wire by their cause, into the
//! classes the delivery core's retry policy decides on. A credential
//! problem is one only when the credential chain says so: a request that
//! could not be built or a connector fault is a local problem, not "check
//! IAM".

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::retry::ErrorKind;

use crate::delivery::{ErrorClass, Failure};

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
            ErrorClass::InvalidRequest
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
pub(crate) fn classify<E>(err: &SdkError<E, HttpResponse>) -> Failure
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
                None => class_of_status(status),
            }
        }
        SdkError::TimeoutError(_) => (ErrorClass::Transient, "timeout".into()),
        SdkError::DispatchFailure(d) => {
            if d.is_timeout() {
                (ErrorClass::Transient, "timeout".into())
            } else if d.is_io() {
                (ErrorClass::Transient, "connection".into())
            } else if credentials_failed(err) {
                // No credentials, an expired SSO session, an unreachable
                // credential endpoint: the chain said so.
                (ErrorClass::Credentials, "credentials".into())
            } else if matches!(
                d.as_other(),
                Some(
                    ErrorKind::TransientError | ErrorKind::ServerError | ErrorKind::ThrottlingError
                )
            ) {
                (ErrorClass::Transient, "dispatch".into())
            } else {
                // Signing, endpoint resolution, the connector: a fault on
                // this side, retried with backoff and shown on /readyz.
                (ErrorClass::Transient, "local dispatch failure".into())
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
        // The request could not be built: it will not be built next time
        // either. A few tries, then the batch is dropped and counted.
        SdkError::ConstructionFailure(_) => {
            if credentials_failed(err) {
                (ErrorClass::Credentials, "credentials".into())
            } else {
                (ErrorClass::Permanent, "request construction".into())
            }
        }
        _ => (ErrorClass::Transient, "unknown SDK error".into()),
    };
    Failure::new(class, &code, &message)
}

/// The class of an error answer without an error code.
pub(crate) fn class_of_status(status: u16) -> (ErrorClass, String) {
    let class = match status {
        500.. => ErrorClass::Transient,
        429 => ErrorClass::Throttled,
        401 | 403 => ErrorClass::Credentials,
        408 => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    };
    (class, format!("HTTP {status}"))
}

/// True when the credential chain is somewhere in the error's causes.
fn credentials_failed(err: &(dyn StdError + 'static)) -> bool {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cause {
        if e.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        cause = e.source();
    }
    false
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
            Some(ErrorClass::InvalidRequest)
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

    type E = aws_sdk_cloudwatchlogs::operation::put_log_events::PutLogEventsError;

    fn dispatch(source: Box<dyn StdError + Send + Sync>) -> SdkError<E, HttpResponse> {
        SdkError::dispatch_failure(
            aws_smithy_runtime_api::client::result::ConnectorError::other(source, None),
        )
    }

    /// Only the credential chain's own errors are credential problems: a
    /// request that cannot be built, or a fault of the connector, is not.
    #[test]
    fn failures_before_the_wire_are_classed_by_cause() {
        let no_credentials = dispatch(Box::new(CredentialsError::not_loaded(
            "no providers in chain provided credentials",
        )));
        let f = classify(&no_credentials);
        assert_eq!(
            (f.class, f.code.to_string()),
            (ErrorClass::Credentials, "credentials".to_string())
        );

        let signing = dispatch("failed to sign the request".into());
        assert_eq!(classify(&signing).class, ErrorClass::Transient);

        let construction: SdkError<E, HttpResponse> =
            SdkError::construction_failure("log group name is missing");
        let f = classify(&construction);
        assert_eq!(f.class, ErrorClass::Permanent);
        assert_eq!(f.code.to_string(), "request construction");
    }

    #[test]
    fn answers_without_a_code_are_classed_by_status() {
        for (status, class) in [
            (503, ErrorClass::Transient),
            (429, ErrorClass::Throttled),
            (403, ErrorClass::Credentials),
            (408, ErrorClass::Transient),
            (404, ErrorClass::Permanent),
        ] {
            assert_eq!(class_of_status(status).0, class, "HTTP {status}");
        }
    }
}
