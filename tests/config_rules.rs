//! One owner per rule: `invoke` reads the host identity and region from the
//! environment the way `run` does, a type error in `[delivery]` names its
//! key, and a job config with 100,000 keys loads in one linear pass, in file
//! order.

use std::fmt::Write as _;
use std::process::Command;

use cwpub::config;
use cwpub::env::from_pairs as env;

const HB: &str = r#"
[[jobs]]
name = "hb"
guest = "builtin:heartbeat"
schedule = "@every 1m"
log_group = "/cwpub/hb"
"#;

/// Runs `cwpub invoke builtin:heartbeat` with only `vars` (plus PATH) in its environment.
fn invoke_heartbeat(vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let cache = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cwpub"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CWPUB_CACHE_DIR", cache.path())
        .args(["invoke", "builtin:heartbeat"])
        .args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("run cwpub invoke")
}

fn metadata(output: &std::process::Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout={stdout} stderr={}",
        String::from_utf8_lossy(&output.stderr)
    );
    let event: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("one event")).expect("JSON event");
    event["metadata"].clone()
}

#[test]
fn invoke_reads_hostname_task_and_region_like_run() {
    let vars = [
        ("CWPUB_HOSTNAME", "invoke-host-7"),
        ("CWPUB_TASK_ID", "task-42"),
        ("CWPUB_REGION", "eu-north-1"),
        ("AWS_REGION", "us-west-2"),
    ];
    let m = metadata(&invoke_heartbeat(&vars, &[]));
    assert_eq!(m["hostname"], "invoke-host-7", "{m}");
    assert_eq!(m["task_id"], "task-42", "{m}");
    assert_eq!(
        m["region"], "eu-north-1",
        "CWPUB_REGION wins, as for run: {m}"
    );

    // The config loader resolves the same values from the same variables.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cwpub.toml");
    std::fs::write(&path, HB).expect("write");
    let cfg = config::load(&path, &env(&vars)).expect("loads");
    assert_eq!(cfg.host.hostname, "invoke-host-7");
    assert_eq!(cfg.host.task_id.as_deref(), Some("task-42"));
    assert_eq!(cfg.region.as_deref(), Some("eu-north-1"));

    // Without CWPUB_REGION the SDK variables apply; --region wins over all.
    let m = metadata(&invoke_heartbeat(
        &[("AWS_DEFAULT_REGION", "ap-south-1")],
        &[],
    ));
    assert_eq!(m["region"], "ap-south-1", "{m}");
    let m = metadata(&invoke_heartbeat(&vars, &["--region", "ca-central-1"]));
    assert_eq!(m["region"], "ca-central-1", "{m}");
}

#[test]
fn invoke_refuses_a_malformed_region_as_run_does() {
    let output = invoke_heartbeat(&[("AWS_REGION", "us-east-l")], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: environment variable AWS_REGION \"us-east-l\": invalid AWS region; expected a region code like \"us-east-1\""
        ),
        "{stderr}"
    );
}

#[test]
fn invoke_help_shows_no_environment_values() {
    let output = invoke_heartbeat(&[("AWS_REGION", "us-east-1")], &["--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{help}");
    assert!(help.contains("--region"), "{help}");
    assert!(!help.contains("[env:"), "{help}");
}

#[test]
fn a_type_error_in_delivery_names_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cwpub.toml");
    let text = format!(
        "[delivery]\nmax_in_flight = \"eight\"\ncreate_log_groups = \"yes\"\nmax_batch_delay = \"2s\"\n{HB}"
    );
    std::fs::write(&path, text).expect("write");
    let err = config::load(&path, &env(&[("CWPUB_HOSTNAME", "h")])).expect_err("refused");
    let prefix = format!("{}: ", path.display());
    let lines: Vec<String> = err
        .lines()
        .iter()
        .map(|l| l.strip_prefix(&prefix).expect("file prefix").to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "[delivery] max_in_flight: expected an integer, found a string (\"eight\")",
            "[delivery] create_log_groups: expected true or false, found a string (\"yes\")",
        ]
    );
}

#[test]
fn a_job_config_with_100000_keys_loads_in_file_order() {
    const N: usize = 100_000;
    let mut text = format!("{HB}[jobs.config]\n");
    // Keys in an order no sort would produce, some dotted.
    for i in 0..N {
        let k = (i * 7_919) % N;
        if i % 10 == 0 {
            writeln!(text, "group{k}.key = \"{i}\"").expect("write");
        } else {
            writeln!(text, "key{k} = \"{i}\"").expect("write");
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cwpub.toml");
    std::fs::write(&path, &text).expect("write");
    let cfg = config::load(&path, &env(&[("CWPUB_HOSTNAME", "h")])).expect("loads");
    let pairs = &cfg.jobs[0].config;
    assert_eq!(pairs.len(), N);
    for (i, (key, value)) in pairs.iter().enumerate() {
        let k = (i * 7_919) % N;
        let expected = if i % 10 == 0 {
            format!("group{k}.key")
        } else {
            format!("key{k}")
        };
        assert_eq!(
            (key.as_str(), value.as_str()),
            (expected.as_str(), i.to_string().as_str())
        );
    }
}
