//! A DataDog sink's own settings ([`DataDogConfig`]): the site (or an
//! endpoint override), where the API key comes from, and the defaults log
//! items get when the guest left them out. The key itself is never in the
//! configuration: only the variable or the file that holds it.

use std::path::PathBuf;

use super::key::KeySource;
use super::site::DEFAULT_SITE;

/// Settings of one DataDog sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDogConfig {
    /// The DataDog site, which names the intake hosts (`datadoghq.com`,
    /// `datadoghq.eu`, `us3.datadoghq.com`, …). Default `datadoghq.com`.
    pub site: String,
    /// One base URL under which both `/api/v2/logs` and `/api/v2/series`
    /// are sent instead of the site's hosts (a local fake, a forwarding
    /// proxy). `https://`, or `http://` to loopback only.
    pub endpoint_url: Option<String>,
    /// Where the API key is read: `api_key_env` (default `DD_API_KEY`) or
    /// `api_key_file` (a mounted secret, re-read after a 401/403).
    pub key: KeySource,
    /// `service` of log items that have none.
    pub service: Option<String>,
    /// `ddsource` of log items that have none.
    pub ddsource: Option<String>,
    /// `ddtags` (comma-separated `key:value`) of log items that have none.
    pub ddtags: Option<String>,
    /// Send the host's name: as `hostname` of log items that have none, and
    /// as the host resource of metric series. Default true.
    pub send_hostname: bool,
}

impl Default for DataDogConfig {
    fn default() -> Self {
        DataDogConfig {
            site: DEFAULT_SITE.to_string(),
            endpoint_url: None,
            key: KeySource::Env(super::key::DEFAULT_API_KEY_ENV.to_string()),
            service: None,
            ddsource: None,
            ddtags: None,
            send_hostname: true,
        }
    }
}

impl DataDogConfig {
    /// The key file, when the key comes from one.
    pub fn key_file(&self) -> Option<&PathBuf> {
        match &self.key {
            KeySource::File(p) => Some(p),
            KeySource::Env(_) => None,
        }
    }
}
