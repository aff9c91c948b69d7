//! The container image end to end, with podman (built by
//! `scripts/build-image.sh --profile image-test`): its shape (a static cwpub
//! on `scratch`, non-root user, STOPSIGNAL, HEALTHCHECK, OCI labels, the
//! reference guests pre-compiled into its cache), and the daemon inside it
//! delivering to moto with credentials that reach it only through the AWS
//! SDK chain: an ECS container-credentials endpoint handing out short-lived
//! keys (which must rotate), and an IRSA web-identity token file. A recording
//! proxy in front of moto proves which keys signed each request. A hostile
//! guest in the same container finds neither the token, the endpoint nor the
//! environment. SIGTERM drains what is buffered and exits 0; after a SIGKILL
//! the next container on the same spool volume sends what was buffered; a
//! spool on the read-only root stops the start with the fix.

use crate::support::container::{self, Container, Volume, env, mount_ro, podman_ok};
use crate::support::daemon::{PATIENCE, eventually, job_runs, metric, scrape_until};
use crate::support::fake_credentials::FakeCredentials;
use crate::support::moto::Moto;
use crate::support::recording_proxy::{Recorded, RecordingProxy};
use crate::support::test_guests;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

/// Where the tests mount the config, as the image's CMD expects.
const CONFIG: &str = "/etc/cwpub/cwpub.toml";
/// Where EKS mounts the IRSA token.
const IRSA_TOKEN: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";
/// Lifetime of the fake endpoint's credentials. The SDK renews them 10–15 s
/// before they expire, so this makes it fetch new ones every 5–10 s.
const CREDENTIAL_LIFETIME: Duration = Duration::from_secs(20);

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    // The container runs as 65532; it (only) needs to read these.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    path
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Every message of every stream of `group` in moto, by stream name.
async fn read_group(moto: &Moto, group: &str) -> Vec<(String, String)> {
    let client = moto.client();
    let streams = client
        .describe_log_streams()
        .log_group_name(group)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeLogStreams {group}: {e:?}"));
    let mut out = Vec::new();
    for stream in streams.log_streams() {
        let name = stream.log_stream_name().unwrap_or_default().to_owned();
        let events = client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(&name)
            .start_from_head(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetLogEvents {group}:{name}: {e:?}"));
        for e in events.events() {
            out.push((name.clone(), e.message().unwrap_or_default().to_owned()));
        }
    }
    out
}

fn messages<'a>(all: &'a [(String, String)], stream: &str) -> Vec<&'a str> {
    all.iter()
        .filter(|(s, _)| s == stream)
        .map(|(_, m)| m.as_str())
        .collect()
}

/// The one report a probing adversary job delivered.
fn probe_report(all: &[(String, String)], stream: &str) -> Value {
    let reports = messages(all, stream);
    assert_eq!(reports.len(), 1, "{stream}: one report: {reports:?}");
    serde_json::from_str(reports[0]).expect("JSON report")
}

/// The hostile guest saw no variable, no file and no socket.
fn assert_probes_denied(all: &[(String, String)], secret_path: &str) {
    let env = probe_report(all, "probe-env");
    assert_eq!(env["vars"], json!({}), "no environment: {env}");
    assert_eq!(env["secret"], Value::Null, "{env}");
    let files = probe_report(all, "probe-files");
    let outcomes = files["files"].as_object().expect("files");
    assert!(
        outcomes.contains_key(secret_path),
        "the secret path was tried: {files}"
    );
    for (path, outcome) in outcomes {
        assert!(
            outcome.as_str().is_some_and(|o| o.starts_with("denied")),
            "{path}: {outcome}"
        );
    }
    let socket = probe_report(all, "probe-socket");
    for kind in ["tcp", "udp", "dns"] {
        assert!(
            socket[kind]
                .as_str()
                .is_some_and(|o| o.starts_with("denied")),
            "{kind}: {socket}"
        );
    }
}

/// No delivered message contains any of `secrets`.
fn assert_no_secret_leaked(all: &[(String, String)], secrets: &[String]) {
    for (stream, message) in all {
        for secret in secrets {
            assert!(
                !message.contains(secret.as_str()),
                "{stream} leaked {secret:?}: {message}"
            );
        }
    }
}

/// The summary line's "<n> events delivered".
fn summary_events_delivered(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.contains("cwpub stopped after"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let before = line
        .split(" events delivered")
        .next()
        .expect("events delivered");
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad summary: {line}"))
}

/// The adversary jobs, each once at start: environment, files (plus
/// `secret_path`), and a TCP/UDP/DNS attempt towards `port`.
fn probe_jobs(secret_path: &str, port: u16) -> String {
    let mut jobs = String::new();
    for (name, mode, extra) in [
        ("probe-env", "env", String::new()),
        ("probe-files", "files", format!("path = \"{secret_path}\"")),
        ("probe-socket", "socket", format!("port = \"{port}\"")),
    ] {
        jobs.push_str(&format!(
            r#"
[[jobs]]
name = "{name}"
guest = "/guests/adversary.wasm"
schedule = "@hourly"
run_at_start = true
log_group = "/cwpub/container"
log_stream = "{{job}}"
[jobs.config]
mode = "{mode}"
{extra}
"#
        ));
    }
    jobs
}

fn config(endpoint: &str, observe_port: u16, max_batch_delay: &str, extra_jobs: &str) -> String {
    format!(
        r#"
[sink]
kind = "cloudwatch"
region = "us-east-1"
endpoint_url = "{endpoint}"

[delivery]
max_batch_delay = "{max_batch_delay}"
# As the image's own config: the spool on its volume, under a read-only root.
spool_dir = "/var/lib/cwpub/spool"

[observe]
listen = "127.0.0.1:{observe_port}"

[log]
format = "human"

[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "@every 1s"
run_at_start = true
log_group = "/cwpub/container"
log_stream = "{{job}}"

[[jobs]]
name = "emf"
guest = "builtin:emf"
schedule = "@every 2s"
run_at_start = true
log_group = "/cwpub/container"
log_stream = "{{job}}"
{extra_jobs}"#
    )
}

/// Each heartbeat/EMF tick delivered once, starting with the run at start.
fn assert_each_tick_once(messages: &[&str], job: &str) -> usize {
    let mut sequences: Vec<u64> = messages
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_str(m).expect("JSON");
            v["sequence"]
                .as_u64()
                .unwrap_or_else(|| panic!("{job}: no sequence in {m}"))
        })
        .collect();
    let n = sequences.len();
    sequences.sort_unstable();
    sequences.dedup();
    assert_eq!(sequences.len(), n, "{job}: no tick delivered twice");
    assert_eq!(
        sequences.first(),
        Some(&1),
        "{job}: the run at start arrived"
    );
    n
}

fn puts(requests: &[Recorded]) -> Vec<&Recorded> {
    requests
        .iter()
        .filter(|r| r.action == "PutLogEvents")
        .collect()
}

/// The module files of a compiled-guest cache listing (tar paths).
fn cached_modules(listing: &str) -> BTreeSet<String> {
    listing
        .lines()
        .map(|l| l.trim_start_matches("./").to_owned())
        .filter(|p| p.contains("modules/") && !p.ends_with('/') && !p.contains(".stats"))
        // Temporary and lock files: `<name>.wip-…`, `.cleanup.wip-<pid>`
        // (a module's own base64 name may start with "wip").
        .filter(|p| !p.contains(".wip-"))
        .map(|p| p.rsplit('/').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn image_is_a_static_cwpub_on_scratch_with_runtime_metadata() {
    let image = container::image();
    let inspect: Value =
        serde_json::from_str(&podman_ok(&["image", "inspect", image])).expect("inspect JSON");
    let config = &inspect[0]["Config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(config["StopSignal"], "SIGTERM", "{config}");
    assert_eq!(config["Entrypoint"], json!(["/usr/local/bin/cwpub"]));
    assert_eq!(config["Cmd"], json!(["run", CONFIG]));
    let env: Vec<&str> = config["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(env.contains(&"CWPUB_CACHE_DIR=/var/cache/cwpub"), "{env:?}");
    for volume in ["/var/cache/cwpub", "/var/lib/cwpub"] {
        assert!(
            config["Volumes"].get(volume).is_some(),
            "{volume}: {config}"
        );
    }
    assert!(config["ExposedPorts"].get("9464/tcp").is_some(), "{config}");
    let healthcheck = &inspect[0]["Healthcheck"]["Test"];
    assert_eq!(
        healthcheck,
        &json!([
            "CMD",
            "/usr/local/bin/cwpub",
            "health",
            CONFIG,
            "--timeout",
            "3s"
        ]),
        "HEALTHCHECK kept (docker image format)"
    );
    let labels = &config["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    for key in ["title", "source", "licenses", "revision", "created"] {
        let v = labels[format!("org.opencontainers.image.{key}")]
            .as_str()
            .unwrap_or_default();
        assert!(!v.is_empty() && v != "unknown", "label {key}: {labels}");
    }

    // Exactly the binary, its config, the CA roots, the baked cache and the
    // spool directory; cache and spool are the runtime user's, everything
    // else root's and read-only to it.
    let listing = container::image_listing(image);
    let mut modules = 0;
    for line in listing.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (mode, owner, path) = (fields[0], fields[1], fields[fields.len() - 1]);
        let path = path.trim_start_matches("./");
        match path {
            "usr/local/bin/cwpub" => assert_eq!((mode, owner), ("-rwxr-xr-x", "0/0")),
            "etc/cwpub/cwpub.toml" | "etc/ssl/certs/ca-certificates.crt" => {
                assert_eq!((mode, owner), ("-rw-r--r--", "0/0"), "{path}")
            }
            "var/lib/cwpub/" | "var/lib/cwpub" => {
                assert_eq!((mode, owner), ("drwxr-xr-x", "65532/65532"), "{line}")
            }
            p if p.starts_with("var/cache/cwpub") => {
                assert_eq!(owner, "65532/65532", "{line}");
                if mode.starts_with('-') && p.contains("/modules/") {
                    modules += 1;
                }
            }
            p if p.ends_with('/') || mode.starts_with('d') => {}
            other => panic!("unexpected file in the image: {other}\n{listing}"),
        }
    }
    assert_eq!(
        cached_modules(&listing).len(),
        2,
        "both reference guests pre-compiled ({modules} files):\n{listing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_task_credentials_deliver_rotate_and_stay_out_of_reach_of_guests() {
    container::image();
    let moto = Moto::start();
    let proxy = RecordingProxy::start(moto.addr, None).await;
    let token = unique("ecs-authorization-token");
    let creds = FakeCredentials::start(&token, "ASIAECSFAKE", CREDENTIAL_LIFETIME).await;
    let adversary = test_guests::test_guest("adversary");
    let dir = tempfile::tempdir().expect("tempdir");
    // Port 0 at start; then the port the daemon bound, for `cwpub health`.
    let config_text = |port: u16| {
        config(
            &proxy.endpoint(),
            port,
            "1s",
            &probe_jobs("/proc/1/environ", creds.port()),
        )
    };
    let config_path = write(dir.path(), "cwpub.toml", &config_text(0));
    let cache = Volume::new("cwpub-test-cache");
    let name = unique("cwpub-test-ecs");
    let mut c = Container::run(
        &name,
        &[
            mount_ro(&config_path, CONFIG),
            mount_ro(&adversary, "/guests/adversary.wasm"),
            cache.mount("/var/cache/cwpub"),
            env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &creds.uri()),
            env("AWS_CONTAINER_AUTHORIZATION_TOKEN", &token),
            env("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        &["run", CONFIG],
    );
    c.wait_for("cwpub started");
    // The daemon read its config at start; `cwpub health` reads it now. The
    // file is rewritten in place, so the container's bind mount sees it.
    let port = c.observe_addr().port();
    write(dir.path(), "cwpub.toml", &config_text(port));

    // The image's health probe, as its HEALTHCHECK and an exec probe run it.
    let (status, out) = c.exec(&["/usr/local/bin/cwpub", "health", CONFIG]);
    assert!(status.success(), "cwpub health: {out}");
    assert!(out.contains("/healthz answered 200"), "{out}");
    let ready_by = Instant::now() + PATIENCE;
    loop {
        let (status, out) = c.exec(&["/usr/local/bin/cwpub", "health", CONFIG, "--ready"]);
        if status.success() {
            assert!(out.contains("/readyz answered 200 ready"), "{out}");
            break;
        }
        assert!(Instant::now() < ready_by, "never ready: {out}");
        std::thread::sleep(Duration::from_millis(300));
    }
    podman_ok(&["healthcheck", "run", &name]);

    // Run until the first credentials have expired and several were fetched.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let issued = creds.issued();
        let past_first_expiry = issued
            .first()
            .is_some_and(|i| SystemTime::now() > i.expires + Duration::from_secs(4));
        if issued.len() >= 3 && past_first_expiry {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "credentials were not renewed: {issued:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (status, stderr) = c.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "exit 0 on SIGTERM; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("0 dropped; 0 undelivered at shutdown; spool: 0 kept for the next start"),
        "{stderr}"
    );
    assert!(stderr.contains("AWS credentials found"), "{stderr}");

    // Every request was signed with credentials from the endpoint, each only
    // while it was valid; they rotated and delivery went on past the first expiry.
    let issued = creds.issued();
    assert_eq!(
        creds.refused(),
        0,
        "the SDK always sent the authorization token"
    );
    let requests = proxy.requests();
    for r in &requests {
        let key = r.access_key_id.as_deref().unwrap_or("(unsigned)");
        let Some(set) = issued.iter().find(|i| i.access_key_id == key) else {
            panic!(
                "{} signed with {key}, which the endpoint never issued",
                r.action
            );
        };
        assert!(
            r.at >= set.at && r.at < set.expires,
            "{} signed with {key} outside its validity ({:?}..{:?})",
            r.action,
            set.at,
            set.expires
        );
    }
    let puts = puts(&requests);
    let keys: BTreeSet<&str> = puts
        .iter()
        .filter_map(|r| r.access_key_id.as_deref())
        .collect();
    assert!(keys.len() >= 2, "PutLogEvents keys rotated: {keys:?}");
    assert!(
        puts.iter().any(|r| r.at > issued[0].expires),
        "delivery continued past the first credentials' expiry"
    );

    let all = read_group(&moto, "/cwpub/container").await;
    let heartbeats = assert_each_tick_once(&messages(&all, "heartbeat"), "heartbeat");
    let documents = assert_each_tick_once(&messages(&all, "emf"), "emf");
    assert!(
        heartbeats >= 10 && documents >= 5,
        "{heartbeats} {documents}"
    );
    assert_eq!(
        all.len(),
        summary_events_delivered(&stderr),
        "everything counted as delivered is in CloudWatch"
    );
    assert_probes_denied(&all, "/proc/1/environ");
    let mut secrets = vec![token.clone()];
    for i in &issued {
        secrets.extend([
            i.access_key_id.clone(),
            i.secret_access_key.clone(),
            i.session_token.clone(),
        ]);
    }
    assert_no_secret_leaked(&all, &secrets);

    // Cold start compiled nothing it had in the image: the cache volume, seeded
    // from the image, gained only the adversary guest's code (not baked): its
    // baseline code at start, and its optimized code if that was ready before
    // the stop.
    let baked = cached_modules(&container::image_listing(container::image()));
    let listing = cache.files().join("\n");
    let after = cached_modules(&listing);
    assert!(
        baked.is_subset(&after),
        "the seeded cache was used: {listing}"
    );
    let compiled = after.difference(&baked).count();
    assert!(
        (1..=2).contains(&compiled),
        "only the adversary guest was compiled at start ({compiled} new modules): {listing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irsa_web_identity_credentials_deliver_and_sigterm_drains_the_buffer() {
    container::image();
    let moto = Moto::start();
    let proxy = RecordingProxy::start(moto.addr, None).await;
    let adversary = test_guests::test_guest("adversary");
    let dir = tempfile::tempdir().expect("tempdir");
    let web_identity_token = unique("irsa-web-identity-token");
    let token_path = write(dir.path(), "token", &web_identity_token);
    // Batches wait an hour: everything is still buffered when SIGTERM comes.
    let config_path = write(
        dir.path(),
        "cwpub.toml",
        &config(
            &proxy.endpoint(),
            0,
            "1h",
            &probe_jobs(IRSA_TOKEN, moto.addr.port()),
        ),
    );
    let name = unique("cwpub-test-irsa");
    let mut c = Container::run(
        &name,
        &[
            mount_ro(&config_path, CONFIG),
            mount_ro(&adversary, "/guests/adversary.wasm"),
            mount_ro(&token_path, IRSA_TOKEN),
            env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/cwpub"),
            env("AWS_ROLE_SESSION_NAME", "cwpub-test"),
            env("AWS_WEB_IDENTITY_TOKEN_FILE", IRSA_TOKEN),
            env("AWS_ENDPOINT_URL_STS", &proxy.endpoint()),
            env("AWS_REGION", "us-east-1"),
            env("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        &["run", CONFIG],
    );
    c.wait_for("cwpub started");
    let observe = c.observe_addr();
    let ran = |m: &str| job_runs(m, "heartbeat", "success") >= 3;
    if scrape_until(observe, ran).is_none() {
        panic!("no 3 heartbeat runs; stderr:\n{}", c.stderr);
    }
    assert!(
        puts(&proxy.requests()).is_empty(),
        "nothing sent before the hour-long batch delay: {:?}",
        proxy.requests()
    );
    let stopping = SystemTime::now();
    let (status, stderr) = c.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "exit 0 on SIGTERM; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("0 dropped; 0 undelivered at shutdown; spool: 0 kept for the next start"),
        "{stderr}"
    );

    let requests = proxy.requests();
    let assumed: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.action == "AssumeRoleWithWebIdentity")
        .collect();
    assert!(!assumed.is_empty(), "STS was asked: {requests:?}");
    let mut issued = BTreeSet::new();
    for r in &assumed {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(
            r.web_identity_token.as_deref(),
            Some(web_identity_token.as_str()),
            "the SDK sent the token file's content"
        );
        let (key, _) = r.issued.as_ref().expect("STS issued credentials");
        issued.insert(key.clone());
    }
    let puts = puts(&requests);
    assert!(!puts.is_empty(), "delivered at SIGTERM");
    for r in requests
        .iter()
        .filter(|r| r.action != "AssumeRoleWithWebIdentity")
    {
        let key = r.access_key_id.clone().unwrap_or_default();
        assert!(
            issued.contains(&key),
            "{} signed with {key:?}, not with credentials STS issued for the token ({issued:?})",
            r.action
        );
    }
    assert!(
        puts.iter().all(|r| r.at >= stopping),
        "the buffer was delivered by the drain"
    );

    let all = read_group(&moto, "/cwpub/container").await;
    let heartbeats = assert_each_tick_once(&messages(&all, "heartbeat"), "heartbeat");
    assert!(heartbeats >= 3, "{heartbeats}");
    assert_eq!(
        all.len(),
        summary_events_delivered(&stderr),
        "everything buffered was delivered"
    );
    assert_probes_denied(&all, IRSA_TOKEN);
    let mut secrets = vec![web_identity_token];
    secrets.extend(issued);
    assert_no_secret_leaked(&all, &secrets);
}

#[test]
fn a_read_only_spool_stops_the_start_with_the_fix() {
    let image = container::image();
    // `--image-volume=ignore`: no volume at /var/lib/cwpub, as on an
    // orchestrator that mounts none, so the spool is on the read-only root.
    let out = container::podman()
        .args(["run", "--rm", "--image-volume=ignore"])
        .args(container::HARDENED)
        .args([
            &env("CWPUB_REGION", "us-east-1"),
            &env("CWPUB_OBSERVE_ENABLED", "false"),
            &env("AWS_EC2_METADATA_DISABLED", "true"),
            image,
            "run",
            CONFIG,
        ])
        .output()
        .expect("podman run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("spool_dir /var/lib/cwpub/spool")
            && stderr.contains("Read-only file system")
            && stderr.contains("a writable volume")
            && stderr.contains("remove spool_dir"),
        "names the directory, the cause and the fix: {stderr}"
    );
}

/// A config with one heartbeat job and the spool on the image's volume;
/// `/metrics` on a port of the system's choosing.
fn spool_config(endpoint: &str, max_batch_delay: &str, schedule: &str, at_start: bool) -> String {
    format!(
        r#"
[sink]
kind = "cloudwatch"
region = "us-east-1"
endpoint_url = "{endpoint}"

[delivery]
max_batch_delay = "{max_batch_delay}"
spool_dir = "/var/lib/cwpub/spool"

[observe]
listen = "127.0.0.1:0"

[log]
format = "human"

[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "{schedule}"
run_at_start = {at_start}
log_group = "/cwpub/container"
log_stream = "{{job}}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_container_leaves_its_buffer_in_the_spool_for_the_next_start() {
    container::image();
    let moto = Moto::start();
    let proxy = RecordingProxy::start(moto.addr, None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = Volume::new("cwpub-test-spool");
    let keys = [
        env("AWS_ACCESS_KEY_ID", "AKIASPOOLTEST"),
        env("AWS_SECRET_ACCESS_KEY", "spool-test-secret"),
        env("AWS_EC2_METADATA_DISABLED", "true"),
    ];

    // Batches wait an hour; SIGKILL leaves no time for a drain.
    let first = write(
        dir.path(),
        "first.toml",
        &spool_config(&proxy.endpoint(), "1h", "@every 1s", true),
    );
    let mut args = vec![mount_ro(&first, CONFIG), spool.mount("/var/lib/cwpub")];
    args.extend(keys.iter().cloned());
    let mut c = Container::run(&unique("cwpub-test-killed"), &args, &["run", CONFIG]);
    c.wait_for("cwpub started");
    let observe = c.observe_addr();
    let spooled = |m: &str| metric(m, r#"cwpub_spool_events{sink="cloudwatch"}"#) >= 3.0;
    if scrape_until(observe, spooled).is_none() {
        panic!("no 3 events in the spool; stderr:\n{}", c.stderr);
    }
    let (status, stderr) = c.signal("KILL");
    assert_eq!(status.code(), Some(137), "killed: {stderr}");
    assert!(
        puts(&proxy.requests()).is_empty(),
        "nothing was sent before the kill"
    );

    // The next container on the same volume, with no job of its own to run,
    // sends what the killed one had buffered.
    let second = write(
        dir.path(),
        "second.toml",
        &spool_config(&proxy.endpoint(), "1s", "@hourly", false),
    );
    let mut args = vec![mount_ro(&second, CONFIG), spool.mount("/var/lib/cwpub")];
    args.extend(keys.iter().cloned());
    let mut c = Container::run(&unique("cwpub-test-replay"), &args, &["run", CONFIG]);
    c.wait_for("cwpub started");
    assert!(
        eventually(PATIENCE, || !puts(&proxy.requests()).is_empty()),
        "the spool was not replayed"
    );
    let (status, stderr) = c.stop();
    assert_eq!(
        status.code(),
        Some(0),
        "exit 0 on SIGTERM; stderr:\n{stderr}"
    );

    let all = read_group(&moto, "/cwpub/container").await;
    let heartbeats = assert_each_tick_once(&messages(&all, "heartbeat"), "heartbeat");
    assert!(
        heartbeats >= 3,
        "the killed container's ticks: {heartbeats}"
    );
    assert_eq!(all.len(), heartbeats, "only heartbeats: {all:?}");
    assert!(
        stderr.contains(&format!("{heartbeats} events delivered"))
            && stderr.contains(&format!("{heartbeats} replayed at start")),
        "the summary counts the replay: {stderr}"
    );
}
