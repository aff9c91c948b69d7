//! A daemon starts a guest whose optimized code is not in the cache on
//! baseline code (Winch), runs it at once, and switches its runs to the
//! optimized code it compiles meanwhile; the next start finds the optimized
//! code in the cache and runs it from the first tick. Where there is no Winch
//! (not x86-64), the first start compiles the optimized code before the
//! first run instead.

use crate::support::daemon::{Daemon, summary, write_config};

use cwpub::guest::Codegen;

const CONFIG: &str = r#"
[sink]
kind = "stdout"

[observe]
enabled = false

[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "@every 1s"
run_at_start = true
log_group = "/cwpub/test"
log_stream = "{job}"
"#;

#[test]
fn a_guest_not_in_the_cache_runs_at_once_and_is_optimized_meanwhile() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), CONFIG);
    let cache = dir.path().join("cache");
    let env = [
        ("CWPUB_CACHE_DIR", cache.to_str().expect("utf-8")),
        // The guest's own diagnostics say which tick ran.
        ("CWPUB_LOG_LEVEL", "info,cwpub::guest=debug"),
    ];

    let mut first = Daemon::start_with_env(&config, &env);
    if Codegen::BASELINE_AVAILABLE {
        first.wait_for("runs on baseline code");
        first.wait_for("now runs on optimized code");
    }
    // A tick after the switch runs too.
    first.wait_for("composed");
    let (status, stderr) = first.stop();
    assert!(status.success(), "first start: {stderr}");
    assert!(stderr.contains("heartbeat 1 composed"), "{stderr}");
    assert!(
        summary(&stderr).contains(" 0 failed"),
        "{}",
        summary(&stderr)
    );
    if !Codegen::BASELINE_AVAILABLE {
        assert!(!stderr.contains("baseline code"), "{stderr}");
    }

    let mut second = Daemon::start_with_env(&config, &env);
    second.wait_for("heartbeat 1 composed");
    let (status, stderr) = second.stop();
    assert!(status.success(), "second start: {stderr}");
    assert!(
        !stderr.contains("baseline code"),
        "the cache held the optimized code: {stderr}"
    );
}
