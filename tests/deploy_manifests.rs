//! The deployment manifests in `deploy/`, checked by real schema checkers
//! (kubernetes-validate's bundled Kubernetes schemas, strict; botocore's ECS
//! `RegisterTaskDefinition` model — both installed into .venv by
//! scripts/test.sh) and against the hardening docs/deployment.md promises.
//! The configs they carry pass `cwpub check`. Each checker is also shown a
//! broken manifest, so a checker that passes everything fails the test.

use crate::support::test_guests::workspace_root;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

const K8S: &str = "deploy/kubernetes/cwpub.yaml";
const ECS: &str = "deploy/ecs/task-definition.json";
const IMAGE_CONFIG: &str = "deploy/image/cwpub.toml";
/// The runtime user of the image (Containerfile `USER`).
const IMAGE_UID: i64 = 65532;

fn python() -> PathBuf {
    let python = workspace_root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run ./scripts/test.sh (it creates .venv with the manifest checkers)",
        python.display()
    );
    python
}

/// Runs the schema checker on `path`: the parsed documents, or its problems.
fn validate(kind: &str, path: &Path) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("docs.json");
    let run = Command::new(python())
        .arg(workspace_root().join("tests/support/validate_manifests.py"))
        .arg(kind)
        .arg(path)
        .arg(&out)
        .output()
        .expect("running the manifest checker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    match run.status.code() {
        Some(0) => {
            let docs = std::fs::read_to_string(&out).expect("checker output");
            Ok(serde_json::from_str(&docs).expect("checker JSON"))
        }
        Some(1) => Err(text),
        _ => panic!("the {kind} checker could not run (run ./scripts/test.sh):\n{text}"),
    }
}

/// A copy of `file` with `from` replaced by `to` (which must occur), checked.
fn validate_mutated(kind: &str, file: &str, from: &str, to: &str) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(workspace_root().join(file)).expect("read manifest");
    assert!(text.contains(from), "{file} has no {from:?} to break");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(Path::new(file).file_name().expect("name"));
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
    validate(kind, &path)
}

/// `cwpub check` on `config` with exactly `env` (plus PATH): success and output.
fn cwpub_check(config: &str, env: &[(String, String)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cwpub.toml");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_cwpub"))
        .arg("check")
        .arg(&path)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CWPUB_CACHE_DIR", dir.path().join("cache"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("cwpub check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `[shutdown] drain_deadline` of a config (the default when absent).
fn drain_deadline(config: &str) -> Duration {
    config
        .lines()
        .find_map(|l| l.trim().strip_prefix("drain_deadline"))
        .map(|rest| rest.trim_start_matches([' ', '=']).trim().trim_matches('"'))
        .map(|text| humantime::parse_duration(text).expect("a duration"))
        .unwrap_or(cwpub::config::DEFAULT_DRAIN_DEADLINE)
}

/// `[delivery] spool_dir` of a config, which every shipped config sets.
fn spool_dir(config: &str) -> String {
    config
        .lines()
        .find_map(|l| l.trim().strip_prefix("spool_dir"))
        .map(|rest| {
            rest.trim_start_matches([' ', '='])
                .trim()
                .trim_matches('"')
                .to_owned()
        })
        .expect("the config turns the durable spool on (spool_dir)")
}

/// The HEALTHCHECK command of the Containerfile, as an exec array.
fn containerfile_healthcheck() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("Containerfile")).expect("read");
    let line = text
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("CMD [\"/usr/local/bin/cwpub\", \"health\"")
        })
        .expect("a HEALTHCHECK CMD line");
    serde_json::from_str(line.trim_start().trim_start_matches("CMD ")).expect("exec array")
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {K8S}"))
}

#[test]
fn kubernetes_manifest_passes_the_schemas_and_keeps_the_hardening() {
    let docs = validate("k8s", &workspace_root().join(K8S)).unwrap_or_else(|e| panic!("{e}"));

    let account = find(&docs, "ServiceAccount");
    let role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        .as_str()
        .unwrap_or_default();
    assert!(
        role.starts_with("arn:aws:iam::") && role.contains(":role/"),
        "IRSA role: {role:?}"
    );
    assert_eq!(account["automountServiceAccountToken"], false);

    let workload = find(&docs, "DaemonSet");
    let pod = &workload["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], account["metadata"]["name"]);
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], IMAGE_UID);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    for key in ["cpu", "memory"] {
        assert!(
            container["resources"]["requests"][key].is_string(),
            "request {key}"
        );
    }
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(container["ports"][0]["containerPort"], 9464);
    let port_name = &container["ports"][0]["name"];
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(container[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(&container[probe]["httpGet"]["port"], port_name, "{probe}");
    }

    // The ConfigMap's config is the one mounted and run, and it passes `cwpub check`
    // with the container's environment.
    let config_map = find(&docs, "ConfigMap");
    let config = config_map["data"]["cwpub.toml"]
        .as_str()
        .expect("cwpub.toml");
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["configMap"]["name"] == config_map["metadata"]["name"])
        .expect("the ConfigMap is a volume");
    let mount = container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the config volume is mounted");
    assert_eq!(mount["mountPath"], "/etc/cwpub");
    assert_eq!(container["args"], json!(["run", "/etc/cwpub/cwpub.toml"]));
    assert!(
        config.contains("listen = \"0.0.0.0:9464\""),
        "probes reach the observe port"
    );
    // The spool is on a writable volume of its own (the root is read-only).
    let spool = spool_dir(config);
    let spool_mount = container["volumeMounts"]
        .as_array()
        .expect("volumeMounts")
        .iter()
        .find(|m| {
            m["mountPath"]
                .as_str()
                .is_some_and(|p| spool.starts_with(&format!("{p}/")))
        })
        .unwrap_or_else(|| panic!("no volume holds spool_dir {spool}"));
    assert_ne!(
        spool_mount["readOnly"], true,
        "the spool volume is writable"
    );
    let spool_volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == spool_mount["name"])
        .expect("the spool volume");
    let limit = spool_volume["emptyDir"]["sizeLimit"]
        .as_str()
        .expect("sizeLimit");
    let limit_mib: u64 = limit.trim_end_matches("Mi").parse().expect("a size in Mi");
    let max_bytes: u64 = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("spool_max_bytes = "))
        .and_then(|v| v.parse().ok())
        .expect("spool_max_bytes bounds the spool");
    assert!(
        max_bytes + 8 * 1024 * 1024 <= limit_mib * 1024 * 1024,
        "spool_max_bytes ({max_bytes}) fits the volume's sizeLimit ({limit}) with room to spare"
    );
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace period");
    assert!(
        drain_deadline(config) + Duration::from_secs(5) <= Duration::from_secs(grace),
        "the drain ends well before SIGKILL"
    );
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            let value = match e["value"].as_str() {
                Some(v) => v.to_owned(),
                None => "ip-10-0-1-23.ec2.internal".to_owned(), // a fieldRef: the node name
            };
            (e["name"].as_str().expect("name").to_owned(), value)
        })
        .collect();
    let (ok, out) = cwpub_check(config, &env);
    assert!(ok, "the ConfigMap's config fails `cwpub check`:\n{out}");
    assert!(
        out.contains("OK (2 jobs; sink cloudwatch (cloudwatch))"),
        "{out}"
    );
}

#[test]
fn kubernetes_checker_refuses_broken_manifests() {
    let e = validate_mutated("k8s", K8S, "runAsNonRoot: true", "runAsNonRoot: \"yes\"")
        .expect_err("a string where a boolean belongs");
    assert!(
        e.contains("runAsNonRoot: 'yes' is not of type 'boolean'"),
        "{e}"
    );
    let e = validate_mutated("k8s", K8S, "timeoutSeconds: 3", "timeoutSecs: 3")
        .expect_err("an unknown field (strict)");
    assert!(e.contains("'timeoutSecs' was unexpected"), "{e}");
    let e = validate_mutated("k8s", K8S, "kind: DaemonSet", "kind: DaemonSett")
        .expect_err("an unknown kind");
    assert!(e.contains("DaemonSett"), "{e}");
}

#[test]
fn ecs_task_definition_passes_botocore_and_keeps_the_hardening() {
    let docs = validate("ecs", &workspace_root().join(ECS)).unwrap_or_else(|e| panic!("{e}"));
    let task = &docs[0];
    let role = task["taskRoleArn"].as_str().unwrap_or_default();
    assert!(
        role.starts_with("arn:aws:iam::") && role.contains(":role/"),
        "task role: {role:?}"
    );
    let container = &task["containerDefinitions"][0];
    assert_eq!(container["readonlyRootFilesystem"], true);
    assert_eq!(container["privileged"], false);
    assert_eq!(container["user"], format!("{IMAGE_UID}:{IMAGE_UID}"));
    assert_eq!(
        container["linuxParameters"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(
        container["command"],
        json!(["run", "/etc/cwpub/cwpub.toml"])
    );
    let health = container["healthCheck"]["command"]
        .as_array()
        .expect("health check");
    assert_eq!(health[0], "CMD", "exec form: the image has no shell");
    assert_eq!(
        Value::from(health[1..].to_vec()),
        containerfile_healthcheck(),
        "the same probe as the image's HEALTHCHECK"
    );
    assert_eq!(container["logConfiguration"]["logDriver"], "awslogs");
    let cache = container["mountPoints"]
        .as_array()
        .expect("mountPoints")
        .iter()
        .find(|m| m["containerPath"] == "/var/cache/cwpub")
        .expect("the guest cache is a volume");
    assert_eq!(cache["readOnly"], false);
    let image_config =
        std::fs::read_to_string(workspace_root().join(IMAGE_CONFIG)).expect("image config");
    // The image's spool_dir is on a writable task volume, and a crashed
    // container restarts in place (keeping that volume) to replay it.
    let spool = spool_dir(&image_config);
    let mount = container["mountPoints"]
        .as_array()
        .expect("mountPoints")
        .iter()
        .find(|m| {
            m["containerPath"]
                .as_str()
                .is_some_and(|p| spool.starts_with(&format!("{p}/")))
        })
        .unwrap_or_else(|| panic!("no volume holds spool_dir {spool}"));
    assert_eq!(mount["readOnly"], false);
    assert_eq!(container["restartPolicy"]["enabled"], true);
    let stop = container["stopTimeout"].as_u64().expect("stopTimeout");
    assert!(
        drain_deadline(&image_config) + Duration::from_secs(5) <= Duration::from_secs(stop),
        "the drain ends well before ECS sends SIGKILL"
    );
}

#[test]
fn ecs_checker_refuses_broken_task_definitions() {
    let e = validate_mutated("ecs", ECS, "\"memory\": 256", "\"memory\": \"lots\"")
        .expect_err("a string where an integer belongs");
    assert!(e.contains("containerDefinitions[0].memory"), "{e}");
    let e = validate_mutated("ecs", ECS, "\"family\": \"cwpub\",", "")
        .expect_err("a required field missing");
    assert!(e.contains("family"), "{e}");
    let e = validate_mutated(
        "ecs",
        ECS,
        "\"readonlyRootFilesystem\"",
        "\"readOnlyRootFilesystem\"",
    )
    .expect_err("a misspelt field");
    assert!(e.contains("readOnlyRootFilesystem"), "{e}");
}

#[test]
fn image_config_passes_check_with_the_region_ecs_sets() {
    let config =
        std::fs::read_to_string(workspace_root().join(IMAGE_CONFIG)).expect("image config");
    let (ok, out) = cwpub_check(&config, &[("AWS_REGION".into(), "eu-west-1".into())]);
    assert!(ok, "{IMAGE_CONFIG} fails `cwpub check`:\n{out}");
    assert!(
        out.contains("OK (2 jobs; sink cloudwatch (cloudwatch))"),
        "{out}"
    );
    let (ok, out) = cwpub_check(&config, &[]);
    assert!(
        !ok && out.contains("region"),
        "without a region it says so: {out}"
    );
}
