//! Start-up checks for a whole config: every guest is loaded (compiled and
//! checked against the supported `cwpub:publisher` version) and asked to
//! validate its job's config. Every problem is collected and reported at
//! once, naming the file, the job and the key.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, ConfigError, JobConfig, JobRef, Problem};
use crate::guest::{FailureKind, LoadedGuest, Runtime};

/// A job whose guest is loaded and whose config the guest accepted.
#[derive(Clone)]
pub struct PreparedJob {
    /// The job's configuration.
    pub config: JobConfig,
    /// The compiled guest.
    pub guest: LoadedGuest,
}

/// Loads every job's guest and validates every job's config; returns all problems on failure.
pub async fn prepare(config: &Config, runtime: &Runtime) -> Result<Vec<PreparedJob>, ConfigError> {
    let file = config.path.display().to_string();
    let mut problems = Vec::new();
    let mut loaded: HashMap<String, Result<LoadedGuest, String>> = HashMap::new();
    let mut jobs = Vec::new();
    for job in &config.jobs {
        let key = job.guest.to_string();
        if !loaded.contains_key(&key) {
            let result = runtime.load(&job.guest).await.map_err(|e| e.message);
            loaded.insert(key.clone(), result);
        }
        let problem = |key: &str, value: Option<String>, message: String| Problem {
            file: file.clone(),
            job: Some(JobRef::Named(job.name.clone())),
            key: Some(key.to_owned()),
            value,
            message,
        };
        let guest = match &loaded[&key] {
            Ok(guest) => guest.clone(),
            Err(message) => {
                problems.push(problem("guest", Some(key), message.clone()));
                continue;
            }
        };
        let name: Arc<str> = job.name.as_str().into();
        if let Err(e) = guest.validate_config(&name, &job.config, &job.limits).await {
            problems.push(match &e.kind {
                FailureKind::InvalidConfig(message) => problem(
                    "config",
                    None,
                    format!("rejected by {}: {message}", guest.name()),
                ),
                // The guest itself failed while checking: report it whole, stderr included.
                _ => problem(
                    "guest",
                    Some(key),
                    format!(
                        "failed while validating the job's config: {}",
                        e.to_string()
                            .replacen(&format!("job \"{}\": ", job.name), "", 1)
                    ),
                ),
            });
            continue;
        }
        jobs.push(PreparedJob {
            config: job.clone(),
            guest,
        });
    }
    if problems.is_empty() {
        Ok(jobs)
    } else {
        Err(ConfigError { problems })
    }
}
