//! Where DataDog data goes: the `site` names the intake hosts, or an
//! `endpoint_url` names one base URL that serves both intakes (a local fake,
//! a forwarding proxy).
//!
//! | site | logs | metrics |
//! |---|---|---|
//! | `<site>` | `https://http-intake.logs.<site>/api/v2/logs` | `https://api.<site>/api/v2/series` |
//! | `endpoint_url = "<base>"` | `<base>/api/v2/logs` | `<base>/api/v2/series` |
//!
//! [`SITES`] lists the sites DataDog's API reference names. The URL rule
//! (HTTPS, or plain HTTP to a loopback host only) is [`crate::http::check_url`].

use std::fmt;

use hyper::Uri;

/// The sites DataDog's API reference names, with the region each is known as.
pub const SITES: [(&str, &str); 9] = [
    ("datadoghq.com", "US1"),
    ("us3.datadoghq.com", "US3"),
    ("us5.datadoghq.com", "US5"),
    ("datadoghq.eu", "EU1"),
    ("ap1.datadoghq.com", "AP1"),
    ("ap2.datadoghq.com", "AP2"),
    ("uk1.datadoghq.com", "UK1"),
    ("ddog-gov.com", "US1-FED"),
    ("us2.ddog-gov.com", "US2-FED"),
];

/// The site used when none is configured.
pub const DEFAULT_SITE: &str = "datadoghq.com";

/// The two intakes a DataDog sink sends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intake {
    /// Logs intake v2, `POST /api/v2/logs` (`json-log` events).
    Logs,
    /// Metrics intake v2, `POST /api/v2/series` (`emf` events).
    Series,
}

impl Intake {
    /// The request path.
    pub const fn path(self) -> &'static str {
        match self {
            Intake::Logs => "/api/v2/logs",
            Intake::Series => "/api/v2/series",
        }
    }

    /// A stable lowercase name for logs and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Intake::Logs => "logs",
            Intake::Series => "series",
        }
    }
}

impl fmt::Display for Intake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The URLs of both intakes, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    logs: Uri,
    series: Uri,
    /// The site, or the base URL, for messages.
    origin: String,
}

impl Endpoints {
    /// The intakes of `site` (one of [`SITES`], any case, surrounding blanks ignored).
    pub fn for_site(site: &str) -> Result<Endpoints, String> {
        let site = check_site(site)?;
        Ok(Endpoints {
            logs: uri(&format!(
                "https://http-intake.logs.{site}{}",
                Intake::Logs.path()
            ))?,
            series: uri(&format!("https://api.{site}{}", Intake::Series.path()))?,
            origin: format!("site {site}"),
        })
    }

    /// Both intakes under one base URL (see [`check_endpoint_url`]).
    pub fn for_base_url(base: &str) -> Result<Endpoints, String> {
        check_endpoint_url(base)?;
        let base = base.trim().trim_end_matches('/');
        Ok(Endpoints {
            logs: uri(&format!("{base}{}", Intake::Logs.path()))?,
            series: uri(&format!("{base}{}", Intake::Series.path()))?,
            origin: format!("endpoint_url {base}"),
        })
    }

    /// The endpoints a sink configuration names: `endpoint_url` when set, else
    /// `site`, else [`DEFAULT_SITE`].
    pub fn from_config(
        site: Option<&str>,
        endpoint_url: Option<&str>,
    ) -> Result<Endpoints, String> {
        match (endpoint_url, site) {
            (Some(base), _) => Endpoints::for_base_url(base),
            (None, Some(site)) => Endpoints::for_site(site),
            (None, None) => Endpoints::for_site(DEFAULT_SITE),
        }
    }

    /// The URL of `intake`.
    pub fn url(&self, intake: Intake) -> &Uri {
        match intake {
            Intake::Logs => &self.logs,
            Intake::Series => &self.series,
        }
    }

    /// `site datadoghq.eu` or `endpoint_url http://127.0.0.1:9000`, for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

fn uri(text: &str) -> Result<Uri, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a valid URL"))
}

/// The canonical name of `site` (lowercase, trimmed) if DataDog has it;
/// otherwise a message listing the known sites, with a suggestion when the
/// input looks like a URL, an app host or a region name.
pub fn check_site(site: &str) -> Result<&'static str, String> {
    let wanted = site.trim().to_ascii_lowercase();
    if let Some((name, _)) = SITES.iter().find(|(name, _)| *name == wanted) {
        return Ok(name);
    }
    let hint = suggest(&wanted)
        .map(|s| format!("did you mean {s:?}? "))
        .unwrap_or_default();
    let known: Vec<String> = SITES
        .iter()
        .map(|(name, region)| format!("{name} ({region})"))
        .collect();
    Err(format!(
        "unknown DataDog site; {hint}use one of: {} (the site is the part of your DataDog URL after \"app.\"), \
         or set endpoint_url for a proxy",
        known.join(", ")
    ))
}

/// The site meant by a URL, an `app.` host or a region name, if any.
fn suggest(wanted: &str) -> Option<&'static str> {
    let host = wanted
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    let host = ["app.", "api.", "http-intake.logs."]
        .iter()
        .find_map(|p| host.strip_prefix(p))
        .unwrap_or(host);
    if let Some((name, _)) = SITES.iter().find(|(name, _)| *name == host) {
        return Some(name);
    }
    let region = match wanted {
        "us" | "us1" => "US1",
        "eu" | "eu1" => "EU1",
        "gov" | "us1-fed" => "US1-FED",
        other => {
            return SITES
                .iter()
                .find(|(_, region)| region.eq_ignore_ascii_case(other))
                .map(|(name, _)| *name);
        }
    };
    SITES
        .iter()
        .find(|(_, r)| *r == region)
        .map(|(name, _)| *name)
}

/// The rule for `endpoint_url`: a base URL (no `/api/...` path of its own,
/// no query) that [`crate::http::check_url`] accepts. `Err` is the reason
/// with the fix.
pub fn check_endpoint_url(url: &str) -> Result<(), String> {
    let url = url.trim();
    let uri = crate::http::check_url(url)?;
    let path = uri.path().trim_end_matches('/');
    if let Some(intake) = [Intake::Logs, Intake::Series]
        .into_iter()
        .find(|i| path.ends_with(i.path()))
    {
        let trimmed = url.trim_end_matches('/');
        let base = &trimmed[..trimmed.len() - intake.path().len()];
        return Err(format!(
            "endpoint_url is a base URL under which both /api/v2/logs and /api/v2/series are sent; \
             leave out {}: endpoint_url = {base:?}",
            intake.path()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_site_names_both_intakes() {
        let eu = Endpoints::for_site("datadoghq.eu").unwrap();
        assert_eq!(
            eu.url(Intake::Logs).to_string(),
            "https://http-intake.logs.datadoghq.eu/api/v2/logs"
        );
        assert_eq!(
            eu.url(Intake::Series).to_string(),
            "https://api.datadoghq.eu/api/v2/series"
        );
        assert_eq!(eu.origin(), "site datadoghq.eu");
        for (site, _) in SITES {
            let e = Endpoints::for_site(site).unwrap();
            assert_eq!(
                e.url(Intake::Logs).host(),
                Some(format!("http-intake.logs.{site}").as_str())
            );
            assert_eq!(
                e.url(Intake::Series).host(),
                Some(format!("api.{site}").as_str())
            );
        }
        assert_eq!(
            Endpoints::for_site(" US5.DatadogHQ.com ")
                .unwrap()
                .url(Intake::Series)
                .to_string(),
            "https://api.us5.datadoghq.com/api/v2/series"
        );
        assert_eq!(
            Endpoints::from_config(None, None).unwrap(),
            Endpoints::for_site("datadoghq.com").unwrap()
        );
    }

    #[test]
    fn unknown_sites_list_the_known_ones_and_suggest() {
        let err = check_site("datadoghq.org").unwrap_err();
        for (site, region) in SITES {
            assert!(err.contains(site) && err.contains(region), "{err}");
        }
        assert!(!err.contains("did you mean"), "{err}");
        for (input, meant) in [
            ("app.datadoghq.eu", "datadoghq.eu"),
            ("https://app.datadoghq.com/", "datadoghq.com"),
            ("api.us3.datadoghq.com", "us3.datadoghq.com"),
            ("EU", "datadoghq.eu"),
            ("us1", "datadoghq.com"),
            ("ap2", "ap2.datadoghq.com"),
            ("US1-FED", "ddog-gov.com"),
        ] {
            let err = check_site(input).unwrap_err();
            assert!(
                err.contains(&format!("did you mean {meant:?}")),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn an_endpoint_url_is_one_base_for_both_intakes() {
        let e = Endpoints::for_base_url("http://127.0.0.1:9000/").unwrap();
        assert_eq!(
            e.url(Intake::Logs).to_string(),
            "http://127.0.0.1:9000/api/v2/logs"
        );
        assert_eq!(
            e.url(Intake::Series).to_string(),
            "http://127.0.0.1:9000/api/v2/series"
        );
        let e = Endpoints::for_base_url("https://proxy.internal/datadog").unwrap();
        assert_eq!(
            e.url(Intake::Series).to_string(),
            "https://proxy.internal/datadog/api/v2/series"
        );
        assert_eq!(e.origin(), "endpoint_url https://proxy.internal/datadog");
        // The endpoint wins over the site.
        assert_eq!(
            Endpoints::from_config(Some("datadoghq.eu"), Some("http://localhost:1"))
                .unwrap()
                .url(Intake::Logs)
                .to_string(),
            "http://localhost:1/api/v2/logs"
        );
    }

    #[test]
    fn endpoint_urls_name_the_fix() {
        let err = check_endpoint_url("https://proxy.internal/dd/api/v2/logs").unwrap_err();
        assert!(
            err.contains("endpoint_url = \"https://proxy.internal/dd\""),
            "{err}"
        );
        let err = check_endpoint_url("http://127.0.0.1:9/api/v2/series/").unwrap_err();
        assert!(
            err.contains("endpoint_url = \"http://127.0.0.1:9\""),
            "{err}"
        );
        let err = check_endpoint_url("http://dd-proxy:8080").unwrap_err();
        assert!(err.contains("https://dd-proxy:8080"), "{err}");
        assert!(check_endpoint_url(" https://proxy.internal ").is_ok());
    }
}
