//! Building the CloudWatch Logs client: the aws-config default credential
//! chain (env, profile, SSO, web identity/IRSA, ECS task role, IMDS), region
//! from config or the environment, an optional endpoint override, SDK retries
//! disabled (the sender owns retry) and explicit timeouts.

use std::time::Duration;

use anyhow::bail;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
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

/// Builds a client from the default AWS configuration chain, with retries
/// disabled and `timeout` per request. Fails with an actionable message when
/// no region can be found.
pub async fn client_from_settings(
    settings: &AwsSettings,
    timeout: Duration,
) -> anyhow::Result<aws_sdk_cloudwatchlogs::Client> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeout_config(timeout));
    if let Some(region) = settings.region.as_deref().filter(|r| !r.trim().is_empty()) {
        loader = loader.region(Region::new(region.trim().to_string()));
    }
    if let Some(url) = settings.endpoint_url.as_deref() {
        check_endpoint(url)?;
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    require_region(sdk.region())?;
    Ok(aws_sdk_cloudwatchlogs::Client::new(&sdk))
}

fn require_region(region: Option<&Region>) -> anyhow::Result<()> {
    match region {
        Some(r) if !r.as_ref().is_empty() => Ok(()),
        _ => bail!("no AWS region: set [sink] region or AWS_REGION"),
    }
}

fn check_endpoint(url: &str) -> anyhow::Result<()> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() > "https://".len()
        && !url.contains(char::is_whitespace);
    if !ok {
        bail!(
            "endpoint_url = {url:?} is not an http(s) URL; use e.g. \"http://localhost:4566\" for LocalStack"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_region_names_the_fix() {
        let err = require_region(None).unwrap_err().to_string();
        assert_eq!(err, "no AWS region: set [sink] region or AWS_REGION");
        assert!(require_region(Some(&Region::new("eu-west-1"))).is_ok());
    }

    #[test]
    fn endpoint_must_be_http() {
        assert!(check_endpoint("http://127.0.0.1:4566").is_ok());
        assert!(check_endpoint("https://logs.eu-west-1.amazonaws.com").is_ok());
        let err = check_endpoint("localhost:4566").unwrap_err().to_string();
        assert!(err.contains("endpoint_url = \"localhost:4566\""), "{err}");
    }

    #[tokio::test]
    async fn explicit_region_and_endpoint_need_no_network() {
        let client = client_from_settings(
            &AwsSettings {
                region: Some("eu-west-1".into()),
                endpoint_url: Some("http://127.0.0.1:9".into()),
            },
            Duration::from_secs(2),
        )
        .await
        .expect("client");
        assert_eq!(
            client.config().region().map(|r| r.as_ref().to_string()),
            Some("eu-west-1".to_string())
        );
    }
}
