//! Valid configuration files: the shipped examples load, defaults are what the
//! docs say, environment variables override the file, placeholders expand,
//! relative guest paths resolve against the file's directory, and job config
//! keeps file order.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cwpub::config::{self, Config, Env, LogFormat, SinkKind, SinkSettings};
use cwpub::guest::{Builtin, GuestSource, RunLimits};
use cwpub::sinks::cloudwatch::CloudWatchConfig;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

fn env(pairs: &[(&str, &str)]) -> Env {
    let mut e: Env = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    e.entry("CWPUB_HOSTNAME".into())
        .or_insert_with(|| "web-1".into());
    e
}

fn load_text(text: &str, vars: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cwpub.toml");
    std::fs::write(&path, text).expect("write");
    let cfg =
        config::load(&path, &env(vars)).unwrap_or_else(|e| panic!("config should load:\n{e}"));
    (dir, cfg)
}

const MINIMAL: &str = r#"
[[jobs]]
name = "hb"
guest = "builtin:heartbeat"
schedule = "@every 1m"
log_group = "/cwpub/hb"
"#;

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn quickstart_example_loads() {
    let cfg =
        config::load(&example("quickstart.toml"), &env(&[])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.sinks.list[0].kind(), SinkKind::Stdout);
    assert!(cfg.observe.enabled);
    assert_eq!(
        cfg.observe.listen,
        "127.0.0.1:9464".parse::<SocketAddr>().unwrap()
    );
    let names: Vec<&str> = cfg.jobs.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(names, ["heartbeat", "emf"]);
    assert_eq!(cfg.jobs[0].guest, GuestSource::Builtin(Builtin::Heartbeat));
    assert_eq!(cfg.jobs[1].guest, GuestSource::Builtin(Builtin::Emf));
    for job in &cfg.jobs {
        assert!(job.run_at_start);
        assert_eq!(job.schedule.interval(), Some(Duration::from_secs(10)));
        assert_eq!(
            job.log_group.as_deref().expect("log group"),
            "/cwpub/quickstart"
        );
        assert_eq!(job.log_stream, format!("web-1-{}", job.name));
    }
    assert_eq!(
        pairs(&cfg.jobs[1].config),
        [("namespace", "cwpub/quickstart"), ("service", "quickstart")]
    );
}

#[test]
fn cloudwatch_example_loads_and_keeps_config_order() {
    let cfg =
        config::load(&example("cloudwatch.toml"), &env(&[])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.sinks.list[0].kind(), SinkKind::CloudWatch);
    assert_eq!(cfg.sinks.list[0].region(), Some("us-east-1"));
    assert_eq!(
        cfg.sinks.list[0].aws().and_then(|a| a.endpoint_url.clone()),
        None
    );
    assert_eq!(cloudwatch(&cfg).retention_days, Some(30));
    assert_eq!(
        cloudwatch(&cfg).tags.get("team").map(String::as_str),
        Some("platform")
    );
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(cfg.shutdown.drain_deadline, Duration::from_secs(10));
    let hb = &cfg.jobs[0];
    assert_eq!(
        pairs(&hb.config),
        [
            ("service", "orders-api"),
            ("status", "ok"),
            ("field.team", "platform")
        ]
    );
    assert_eq!(
        hb.limits,
        RunLimits::default(),
        "the annotated values are the defaults"
    );
    let m = &cfg.jobs[1];
    assert_eq!(m.schedule.as_str(), "*/5 * * * *");
    assert_eq!(m.jitter, Duration::from_secs(20));
    assert_eq!(m.log_stream, "web-1-host-metrics");
    assert_eq!(
        pairs(&m.config),
        [
            ("namespace", "MyCompany/cwpub"),
            ("dimensions", "Service,Host,Env"),
            ("service", "orders-api"),
            ("dimension.Env", "prod")
        ]
    );
}

#[test]
fn defaults() {
    let (_d, cfg) = load_text(MINIMAL, &[]);
    assert_eq!(cfg.sinks.list[0].kind(), SinkKind::Stdout);
    assert_eq!(cfg.sinks.list[0].region(), None);
    assert!(cfg.observe.enabled);
    assert_eq!(
        cfg.observe.listen.to_string(),
        config::DEFAULT_OBSERVE_LISTEN
    );
    assert_eq!(cfg.log.format, LogFormat::Human);
    assert_eq!(cfg.log.level, "info");
    assert_eq!(cfg.shutdown.drain_deadline, config::DEFAULT_DRAIN_DEADLINE);
    assert_eq!(cfg.delivery, cwpub::delivery::DeliveryConfig::default());
    let job = &cfg.jobs[0];
    assert_eq!(job.position, 1);
    assert_eq!(job.limits, RunLimits::default());
    assert!(!job.run_at_start);
    assert_eq!(job.jitter, Duration::ZERO);
    assert!(job.config.is_empty());
    assert_eq!(job.log_stream, "web-1-hb");
    assert_eq!(cfg.host.hostname, "web-1");
}

#[test]
fn environment_overrides_the_sink_and_more() {
    let text = format!(
        "[sink]\nkind = \"stdout\"\nregion = \"us-east-1\"\n[log]\nformat = \"human\"\n{MINIMAL}"
    );
    let (_d, cfg) = load_text(
        &text,
        &[
            ("CWPUB_SINK_KIND", "cloudwatch"),
            ("CWPUB_REGION", "eu-central-1"),
            ("AWS_REGION", "ap-south-1"),
            ("CWPUB_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("CWPUB_OBSERVE_LISTEN", "127.0.0.1:0"),
            ("CWPUB_OBSERVE_ENABLED", "false"),
            ("CWPUB_LOG_FORMAT", "json"),
            ("CWPUB_LOG_LEVEL", "debug,hyper=warn"),
        ],
    );
    assert_eq!(cfg.sinks.list[0].kind(), SinkKind::CloudWatch);
    assert_eq!(
        cfg.sinks.list[0].region(),
        Some("eu-central-1"),
        "CWPUB_REGION beats the file"
    );
    assert_eq!(
        cfg.sinks.list[0]
            .aws()
            .and_then(|a| a.endpoint_url.as_deref()),
        Some("http://127.0.0.1:4566")
    );
    let aws = cfg.sinks.list[0].aws().cloned().unwrap_or_default();
    assert_eq!(
        (aws.region.as_deref(), aws.endpoint_url.as_deref()),
        (Some("eu-central-1"), Some("http://127.0.0.1:4566"))
    );
    assert!(!cfg.observe.enabled);
    assert_eq!(cfg.observe.listen.port(), 0);
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(cfg.log.level, "debug,hyper=warn");
}

#[test]
fn region_precedence() {
    let with_file = format!("[sink]\nregion = \"us-west-2\"\n{MINIMAL}");
    // The file beats AWS_REGION; AWS_REGION beats AWS_DEFAULT_REGION; blank values are unset.
    let (_d, cfg) = load_text(
        &with_file,
        &[("AWS_REGION", "eu-west-1"), ("CWPUB_REGION", " ")],
    );
    assert_eq!(cfg.region.as_deref(), Some("us-west-2"));
    let (_d, cfg) = load_text(
        MINIMAL,
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-2"),
        ],
    );
    assert_eq!(cfg.region.as_deref(), Some("eu-west-1"));
    let (_d, cfg) = load_text(MINIMAL, &[("AWS_DEFAULT_REGION", "eu-west-2")]);
    assert_eq!(cfg.region.as_deref(), Some("eu-west-2"));
}

#[test]
fn relative_component_paths_resolve_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("guests")).unwrap();
    std::fs::write(dir.path().join("guests/mine.wasm"), b"\0asm").unwrap();
    let path = dir.path().join("cwpub.toml");
    std::fs::write(
        &path,
        MINIMAL.replace("builtin:heartbeat", "guests/mine.wasm"),
    )
    .unwrap();
    let cfg = config::load(&path, &env(&[])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cfg.jobs[0].guest,
        GuestSource::Path(dir.path().join("guests/mine.wasm"))
    );
    assert_eq!(cfg.base_dir, dir.path());
}

#[test]
fn limits_map_to_run_limits() {
    let text = format!(
        "{MINIMAL}timeout = 750\nmemory_mb = 128\nmax_events = 50\nmax_output_bytes = 4096\nmax_stdio_bytes = 1024\nrun_at_start = true\njitter = \"5s\"\n"
    );
    let (_d, cfg) = load_text(&text, &[]);
    let job = &cfg.jobs[0];
    assert_eq!(
        job.limits,
        RunLimits {
            deadline: Duration::from_millis(750),
            max_memory_bytes: 128 << 20,
            max_events: 50,
            max_output_bytes: 4096,
            max_stdio_bytes: 1024,
        }
    );
    assert!(job.run_at_start);
    assert_eq!(job.jitter, Duration::from_secs(5));
}

#[test]
fn placeholders_expand_from_the_host_identity() {
    let text = MINIMAL.replace("/cwpub/hb", "/cwpub/{job}")
        + "log_stream = \"{task_id}/{instance_id}/{{literal}}\"\n";
    let (_d, cfg) = load_text(
        &text,
        &[("CWPUB_TASK_ID", "task-9"), ("CWPUB_INSTANCE_ID", "i-0abc")],
    );
    assert_eq!(
        cfg.jobs[0].log_group.as_deref().expect("log group"),
        "/cwpub/hb"
    );
    assert_eq!(cfg.jobs[0].log_stream, "task-9/i-0abc/{literal}");
}

#[test]
fn dotted_and_nested_job_config_keys_flatten_in_file_order() {
    let text = format!(
        "{MINIMAL}[jobs.config]\nzeta = \"1\"\nfield.team = \"platform\"\n\"metric.Latency\" = \"5 Milliseconds\"\nalpha = \"2\"\n"
    );
    let (_d, cfg) = load_text(&text, &[]);
    assert_eq!(
        pairs(&cfg.jobs[0].config),
        [
            ("zeta", "1"),
            ("field.team", "platform"),
            ("metric.Latency", "5 Milliseconds"),
            ("alpha", "2")
        ]
    );
}

#[test]
fn cron_and_nickname_schedules_load() {
    let text = format!(
        "{}\n[[jobs]]\nname = \"nightly\"\nguest = \"builtin:emf\"\nschedule = \"@daily\"\nlog_group = \"/n\"\n\n[[jobs]]\nname = \"secs\"\nguest = \"builtin:emf\"\nschedule = \"*/30 * * * * *\"\nlog_group = \"/n\"\njitter = \"1h\"\n",
        MINIMAL
    );
    let (_d, cfg) = load_text(&text, &[]);
    assert_eq!(cfg.jobs.len(), 3);
    assert_eq!(cfg.jobs[1].schedule.interval(), None);
    // Cron jitter is not limited at load time (the driver caps it at the gap to the next tick).
    assert_eq!(cfg.jobs[2].jitter, Duration::from_secs(3600));
}

/// The settings of a config's first sink, a CloudWatch one.
fn cloudwatch(cfg: &Config) -> &CloudWatchConfig {
    match &cfg.sinks.list[0].settings {
        SinkSettings::CloudWatch(cw) => cw,
        other => panic!("not a CloudWatch sink: {other:?}"),
    }
}
