//! Target management: lazy creation of log streams (and their log groups)
//! when PutLogEvents reports them missing, with retention, tags and KMS key
//! from config, `ResourceAlreadyExists` treated as success, one creation at a
//! time per target, a rate limit for the control-plane calls, and a cache of
//! targets known to exist. Nothing here runs on the happy path: PutLogEvents
//! is always tried first and DescribeLogStreams is never called.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::Client;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::delivery::{ErrorClass, Failure, full_jitter};
use crate::event::Target;
use crate::ledger::{Creation, Ledger};

use super::config::CloudWatchConfig;
use super::names;
use super::retry::classify;

/// Creates missing targets and remembers which exist.
pub(crate) struct Targets {
    client: Client,
    cfg: Arc<CloudWatchConfig>,
    /// First and longest backoff of the retention retries.
    backoff: (Duration, Duration),
    ledger: Ledger,
    known: Mutex<HashMap<Target, Instant>>,
    locks: Mutex<HashMap<Target, Arc<tokio::sync::Mutex<()>>>>,
    limiter: DefaultDirectRateLimiter,
}

impl Targets {
    /// A manager using `client` for the Create* calls.
    pub fn new(
        client: Client,
        cfg: Arc<CloudWatchConfig>,
        backoff: (Duration, Duration),
        ledger: Ledger,
    ) -> Targets {
        let rate = NonZeroU32::new(cfg.create_rate_per_sec).unwrap_or(NonZeroU32::MIN);
        Targets {
            client,
            cfg,
            backoff,
            ledger,
            known: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            limiter: RateLimiter::direct(Quota::per_second(rate)),
        }
    }

    /// Notes that `target` accepted a PutLogEvents call.
    pub fn mark_known(&self, target: &Target) {
        let mut k = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if !k.contains_key(target) {
            k.insert(target.clone(), Instant::now());
        }
    }

    /// Forgets `target` (it was reported missing).
    fn forget(&self, target: &Target) {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(target);
    }

    fn lock_for(&self, target: &Target) -> Arc<tokio::sync::Mutex<()>> {
        let mut l = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        l.entry(target.clone()).or_default().clone()
    }

    /// Makes sure `target` exists after a PutLogEvents at `failed_at` said it
    /// did not: creates the stream, and the group first if the stream's
    /// creation reports the group missing (when group creation is enabled).
    /// An error of class `NotFound` means the group is missing and may not be created.
    pub async fn ensure(&self, target: &Target, failed_at: Instant) -> Result<(), Failure> {
        let lock = self.lock_for(target);
        let _guard = lock.lock().await;
        {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            if known.get(target).is_some_and(|t| *t > failed_at) {
                // Another worker (re)created it while we waited for the lock.
                return Ok(());
            }
        }
        self.forget(target);
        // A little jitter spreads a fleet restart's creations over time.
        tokio::time::sleep(full_jitter(
            Duration::from_millis(50),
            Duration::from_millis(50),
            0,
        ))
        .await;
        match self.create_stream(target).await {
            Ok(()) => {}
            Err(c) if c.class == ErrorClass::NotFound && self.cfg.create_log_groups => {
                self.create_group(target).await?;
                self.create_stream(target).await.map_err(|mut c| {
                    // The group exists now (we created it or someone else
                    // did): a NotFound here is eventual consistency.
                    if c.class == ErrorClass::NotFound {
                        c.class = ErrorClass::Transient;
                    }
                    c
                })?;
            }
            Err(c) => return Err(c),
        }
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(target.clone(), Instant::now());
        Ok(())
    }

    async fn create_stream(&self, target: &Target) -> Result<(), Failure> {
        let (group, stream) = names(target)?;
        self.limiter.until_ready().await;
        let res = self
            .client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await;
        match res {
            Ok(_) => {
                self.ledger.created(target, Creation::Stream);
                tracing::info!(target = %target, "created log stream");
                Ok(())
            }
            Err(e) => match classify(&e) {
                c if c.class == ErrorClass::AlreadyExists => Ok(()),
                c => Err(c),
            },
        }
    }

    async fn create_group(&self, target: &Target) -> Result<(), Failure> {
        let (group, _) = names(target)?;
        self.limiter.until_ready().await;
        let tags = (!self.cfg.tags.is_empty()).then(|| {
            self.cfg
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>()
        });
        let res = self
            .client
            .create_log_group()
            .log_group_name(group)
            .set_tags(tags)
            .set_kms_key_id(self.cfg.kms_key_id.clone())
            .send()
            .await;
        match res {
            Ok(_) => {
                self.ledger.created(target, Creation::Group);
                tracing::info!(log_group = group, "created log group");
            }
            Err(e) => {
                let c = classify(&e);
                // Someone else created it: leave its settings alone.
                return if c.class == ErrorClass::AlreadyExists {
                    Ok(())
                } else {
                    Err(c)
                };
            }
        }
        if let Some(days) = self.cfg.retention_days {
            self.set_retention(group, days).await;
        }
        Ok(())
    }

    /// Sets retention on a group this host just created. Transient failures
    /// are retried a few times; a lasting failure is logged, never fatal for
    /// the data.
    async fn set_retention(&self, group: &str, days: u32) {
        let mut attempt = 0;
        loop {
            self.limiter.until_ready().await;
            let res = self
                .client
                .put_retention_policy()
                .log_group_name(group)
                .retention_in_days(days as i32)
                .send()
                .await;
            match res {
                Ok(_) => return,
                Err(e) => {
                    let c = classify(&e);
                    attempt += 1;
                    if !c.class.is_retryable() || attempt >= 5 {
                        tracing::error!(
                            log_group = group,
                            retention_days = days,
                            error = %c.message,
                            "could not set retention on the log group this host created; \
                             set it by hand or grant logs:PutRetentionPolicy"
                        );
                        return;
                    }
                    tokio::time::sleep(full_jitter(self.backoff.0, self.backoff.1, attempt)).await;
                }
            }
        }
    }
}
