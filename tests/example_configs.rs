//! The example configs in `examples/` pass `cwpub check` as their comments
//! say they do, with nothing from the environment: no region, no API key.
//! The DataDog example lists each job's destinations, and its daemon refuses
//! to start without the API key its comments say it reads.

use std::process::Command;

use crate::support::cli::{self, Ran};
use crate::support::test_guests::workspace_root;

/// `cwpub <args>` with none of the settings the examples could take from the
/// environment, and a fixed host name.
fn cwpub(args: &[&str]) -> Ran {
    let mut cmd: Command = cli::cwpub();
    for var in [
        "DD_API_KEY",
        "AWS_DEFAULT_REGION",
        "CWPUB_REGION",
        "CWPUB_ENDPOINT_URL",
        "CWPUB_SINK_KIND",
        "CWPUB_OBSERVE_LISTEN",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CWPUB_HOSTNAME", "web-1")
        .env("CWPUB_OBSERVE_ENABLED", "false")
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("run cwpub")
        .into()
}

#[test]
fn every_example_config_passes_check() {
    let mut configs: Vec<String> = std::fs::read_dir(workspace_root().join("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            format!(
                "examples/{}",
                p.file_name().expect("name").to_string_lossy()
            )
        })
        .collect();
    configs.sort();
    assert!(
        configs.contains(&"examples/datadog.toml".to_owned()),
        "{configs:?}"
    );
    for config in &configs {
        let ran = cwpub(&["check", config]);
        assert_eq!(ran.code, Some(0), "{config}: {}", ran.both());
        assert!(
            ran.stdout.starts_with(&format!("{config}: OK (")),
            "{config}: {}",
            ran.both()
        );
    }
}

#[test]
fn datadog_example_lists_each_jobs_destinations() {
    let ran = cwpub(&["check", "examples/datadog.toml"]);
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("examples/datadog.toml: OK (2 jobs; sinks dd (datadog), cw (cloudwatch))"),
        "{}",
        ran.both()
    );
    let destinations = |job: &str| -> String {
        let line = lines
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{job}: ")))
            .unwrap_or_else(|| panic!("no line for job {job}: {}", ran.both()));
        let after = line.split(" → ").nth(1).expect("an arrow");
        after
            .split(" (cwpub:publisher@")
            .next()
            .expect("a version")
            .to_owned()
    };
    assert_eq!(destinations("host-metrics"), "dd");
    assert_eq!(
        destinations("heartbeat"),
        "cw /cwpub/heartbeat:web-1-heartbeat, dd"
    );
}

#[test]
fn datadog_example_does_not_start_without_its_api_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The example's spool directory is a system path; use one of our own.
    let text = std::fs::read_to_string(workspace_root().join("examples/datadog.toml"))
        .expect("read the example");
    let spool = dir.path().join("spool");
    let needle = "spool_dir = \"/var/lib/cwpub/spool\"";
    assert!(text.contains(needle), "the example sets {needle}");
    let config = cli::write(
        dir.path(),
        "datadog.toml",
        &text.replacen(
            needle,
            &format!("spool_dir = {:?}", spool.display().to_string()),
            1,
        ),
    );
    let ran = cwpub(&["run", config.to_str().expect("utf-8 path")]);
    assert_ne!(ran.code, Some(0), "{}", ran.both());
    assert!(
        ran.stderr.contains(
            "sink \"dd\": DataDog API key: environment variable DD_API_KEY is not set or empty"
        ),
        "{}",
        ran.both()
    );
}
