//! The AWS configuration a CloudWatch sink's clients are built from: the
//! aws-config default credential
//! chain (env, profile, SSO, web identity/IRSA, ECS task role, IMDS), region
//! from config or the environment, an optional endpoint override, SDK retries
//! disabled (the delivery core owns retry) and explicit timeouts. The region
//! and endpoint rules live here ([`check_region`], [`check_endpoint_url`]);
//! the config loader checks every CloudWatch sink with the same functions.

use std::time::Duration;

use anyhow::bail;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_cloudwatchlogs::config::Region;

use super::config::AwsSettings;

/// The timeouts delivery uses for one request attempt of `timeout`.
pub(crate) fn timeout_config(timeout: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .operation_attempt_timeout(timeout)
        .operation_timeout(timeout)
        .build()
}

/// Checks a region code's shape, as every AWS region has it (`us-east-1`,
/// `us-gov-west-1`, `eusc-de-east-1`): three or more hyphen-separated
/// lowercase words, the last one a number.
pub fn check_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = match parts.split_last() {
        Some((number, words)) => {
            region.len() <= 32
                && parts.len() >= 3
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
                && words
                    .iter()
                    .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err("invalid AWS region; expected a region code like \"us-east-1\"".to_string())
    }
}

/// Checks an endpoint override: `http://` or `https://`, a host, no whitespace.
pub fn check_endpoint_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let ok = rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.starts_with(':') && !url.chars().any(char::is_whitespace)
    });
    if ok {
        Ok(())
    } else {
        Err("invalid endpoint URL; expected http:// or https:// followed by a host, e.g. \"http://127.0.0.1:4566\"".to_string())
    }
}

/// The AWS configuration a CloudWatch sink's clients are built from: the
/// default chain, `settings`' region and endpoint, retries disabled and
/// `timeout` per request attempt. Fails with an actionable message when the
/// region or endpoint is malformed or no region can be found.
pub async fn sdk_config_from_settings(
    settings: &AwsSettings,
    timeout: Duration,
) -> anyhow::Result<SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeout_config(timeout));
    if let Some(region) = settings
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        if let Err(e) = check_region(region) {
            bail!("region {region:?}: {e}");
        }
        loader = loader.region(Region::new(region.to_string()));
    }
    if let Some(url) = settings.endpoint_url.as_deref().map(str::trim) {
        if let Err(e) = check_endpoint_url(url) {
            bail!("endpoint_url {url:?}: {e}");
        }
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    require_region(sdk.region())?;
    Ok(sdk)
}

/// Resolves credentials once at start so a missing or broken credential
/// source is reported in one clear line, not only at the first send. The
/// daemon still starts: credentials may appear later (an IAM role attached,
/// a profile written), and events stay buffered until they do.
pub async fn warn_without_credentials(sink: &str) {
    use aws_credential_types::provider::ProvideCredentials as _;
    let sdk_config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let Some(provider) = sdk_config.credentials_provider() else {
        tracing::warn!(
            sink,
            "no AWS credentials provider is configured; deliveries will fail until one is"
        );
        return;
    };
    let timeout = super::CREDENTIALS_CHECK_TIMEOUT;
    match tokio::time::timeout(timeout, provider.provide_credentials()).await {
        Ok(Ok(_)) => tracing::info!(sink, "AWS credentials found"),
        Ok(Err(e)) => tracing::warn!(
            sink,
            detail = %first_line(&e.to_string()),
            "no AWS credentials found; looked in: environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), \
             profile (~/.aws), SSO, web identity (IRSA), ECS task role, EC2 instance metadata. \
             Events stay buffered and delivery starts once credentials are available"
        ),
        Err(_) => tracing::warn!(
            sink,
            "resolving AWS credentials took longer than {timeout:?}; continuing, deliveries will retry"
        ),
    }
}

fn first_line(s: &str) -> &str {
    s.lines()
        .next()
        .unwrap_or(s)
        .trim_end_matches(". Attempted:")
        .trim_end_matches(':')
}

fn require_region(region: Option<&Region>) -> anyhow::Result<()> {
    match region {
        Some(r) if !r.as_ref().is_empty() => Ok(()),
        _ => bail!("no AWS region: set [sink] region or AWS_REGION"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes_are_checked_for_shape() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "cn-northwest-1",
            "us-isob-east-1",
            "eusc-de-east-1",
        ] {
            assert_eq!(check_region(ok), Ok(()), "{ok} is a region");
        }
        for bad in [
            "US East",
            "us-east",
            "mars-north-9x",
            "us-east-l",
            "us--east-1",
            "-us-east-1",
            "useast1",
            "",
        ] {
            assert!(check_region(bad).is_err(), "{bad} is not a region");
        }
    }

    #[test]
    fn missing_region_names_the_fix() {
        let err = require_region(None).unwrap_err().to_string();
        assert_eq!(err, "no AWS region: set [sink] region or AWS_REGION");
        assert!(require_region(Some(&Region::new("eu-west-1"))).is_ok());
    }

    #[test]
    fn endpoint_must_be_http_with_a_host() {
        assert!(check_endpoint_url("http://127.0.0.1:4566").is_ok());
        assert!(check_endpoint_url("https://logs.eu-west-1.amazonaws.com").is_ok());
        for bad in ["localhost:4566", "http://", "https://:80", "http://a b"] {
            assert!(check_endpoint_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn malformed_settings_are_refused_before_any_network() {
        let err = sdk_config_from_settings(
            &AwsSettings {
                region: Some("eu-west-1".into()),
                endpoint_url: Some("localhost:4566".into()),
            },
            Duration::from_secs(2),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("endpoint_url \"localhost:4566\": invalid endpoint URL"),
            "{err}"
        );
        let err = sdk_config_from_settings(
            &AwsSettings {
                region: Some("US East".into()),
                endpoint_url: None,
            },
            Duration::from_secs(2),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("region \"US East\": invalid AWS region"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn explicit_region_and_endpoint_need_no_network() {
        let sdk = sdk_config_from_settings(
            &AwsSettings {
                region: Some("eu-west-1".into()),
                endpoint_url: Some("http://127.0.0.1:9".into()),
            },
            Duration::from_secs(2),
        )
        .await
        .expect("AWS configuration");
        assert_eq!(
            sdk.region().map(|r| r.as_ref().to_string()),
            Some("eu-west-1".to_string())
        );
    }
}
