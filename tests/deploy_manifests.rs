//! The deployment manifests in `deploy/`, checked by real schema checkers
//! (kubernetes-validate's bundled Kubernetes schemas, strict; botocore's ECS
//! `RegisterTaskDefinition` model — both installed into .venv by
//! scripts/test.sh) and against the hardening docs/deployment.md promises.
//! The configs they carry pass `cwpub check`, with and without their DataDog
//! sink, and the DataDog API key comes from a secret (ECS `secrets`, a
//! Kubernetes Secret), never from a config or a plain environment value.
//! Each checker is also shown a broken manifest, so a checker that passes
//! everything fails the test.

use crate::support::test_guests::workspace_root;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cwpub::config::SinkKind;
use serde_json::{Value, json};

const K8S: &str = "deploy/kubernetes/cwpub.yaml";
const ECS: &str = "deploy/ecs/task-definition.json";
const ECS_DATADOG: &str = "deploy/ecs/task-definition-datadog.json";
const ECS_DATADOG_CONFIG: &str = "deploy/ecs/cwpub-datadog.toml";
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

/// The container's environment as `cwpub check` should see it: plain
/// values as they are, a `fieldRef` (the node name) as a node's name.
fn container_env(container: &Value) -> Vec<(String, String)> {
    container["env"]
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
        .collect()
}

/// Asserts that the spools of every sink of `config` fit the `emptyDir`
/// `volume`, with 8 MiB to spare for each (segments are freed whole).
fn assert_spool_fits(config: &str, volume: &Value) {
    let env = cwpub::env::from_pairs(&[("AWS_REGION", "us-east-1")]);
    let loaded = cwpub::config::parse(config, Path::new("cwpub.toml"), &env)
        .unwrap_or_else(|e| panic!("{}", e.lines().join("\n")));
    let spools: Vec<u64> = loaded
        .sinks
        .list
        .iter()
        // The stdout sink has no spool.
        .filter(|s| s.kind() != SinkKind::Stdout && s.delivery.spool_dir.is_some())
        .map(|s| s.delivery.spool_max_bytes)
        .collect();
    assert!(!spools.is_empty(), "no sink of the config has a spool");
    let needed: u64 = spools.iter().map(|b| b + 8 * 1024 * 1024).sum();
    let limit = volume["emptyDir"]["sizeLimit"].as_str().expect("sizeLimit");
    let limit_mib: u64 = limit.trim_end_matches("Mi").parse().expect("a size in Mi");
    assert!(
        needed <= limit_mib * 1024 * 1024,
        "the sinks' spool_max_bytes ({spools:?}) fit the volume's sizeLimit ({limit}) with room to spare"
    );
}

/// The mount of `mounts` (a container's `volumeMounts` or `mountPoints`)
/// whose `path_key` is a directory holding `path`.
fn mount_holding<'a>(mounts: &'a Value, path_key: &str, path: &str) -> &'a Value {
    mounts
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {mounts}"))
        .iter()
        .find(|m| {
            m[path_key]
                .as_str()
                .is_some_and(|dir| path.starts_with(&format!("{dir}/")))
        })
        .unwrap_or_else(|| panic!("no volume holds {path}"))
}

/// The element of the array `list` whose `key` is `value`.
fn named<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .find(|item| item[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value:?} in {list}"))
}

/// `config` with its commented DataDog part switched on: the commented
/// `[sinks.dd]` table and the jobs' commented `sinks` lines.
fn with_datadog(config: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    for line in config.lines() {
        let body = line.trim_start();
        let uncommented = body.strip_prefix("# ");
        in_table = match uncommented {
            Some("[sinks.dd]") => true,
            Some(rest) => in_table && rest.contains(" = "),
            None => false,
        };
        match uncommented {
            Some(rest) if in_table || rest.starts_with("sinks = [") => out.push_str(rest),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    assert_ne!(out, config, "the config has no commented DataDog part");
    out
}

/// Environment variables whose name says they hold an API key.
fn key_vars(env: &Value) -> Vec<&Value> {
    env.as_array()
        .map(|list| {
            list.iter()
                .filter(|e| e["name"].as_str().is_some_and(|n| n.contains("API_KEY")))
                .collect()
        })
        .unwrap_or_default()
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
    // A ConfigMap edit is reloaded without a restart.
    assert_eq!(
        container["args"],
        json!(["run", "--watch", "/etc/cwpub/cwpub.toml"])
    );
    assert!(
        config.contains("listen = \"0.0.0.0:9464\""),
        "probes reach the observe port"
    );
    // The spool is on a writable volume of its own (the root is read-only).
    let spool = spool_dir(config);
    let spool_mount = mount_holding(&container["volumeMounts"], "mountPath", &spool);
    assert_ne!(
        spool_mount["readOnly"], true,
        "the spool volume is writable"
    );
    let spool_volume = named(
        &pod["volumes"],
        "name",
        spool_mount["name"].as_str().expect("name"),
    );
    assert_spool_fits(config, spool_volume);
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace period");
    assert!(
        drain_deadline(config) + Duration::from_secs(5) <= Duration::from_secs(grace),
        "the drain ends well before SIGKILL"
    );
    let (ok, out) = cwpub_check(config, &container_env(container));
    assert!(ok, "the ConfigMap's config fails `cwpub check`:\n{out}");
    assert!(
        out.contains("OK (2 jobs; sink cloudwatch (cloudwatch))"),
        "{out}"
    );
}

#[test]
fn kubernetes_manifest_gives_the_datadog_key_from_an_optional_secret() {
    let docs = validate("k8s", &workspace_root().join(K8S)).unwrap_or_else(|e| panic!("{e}"));
    let pod = &find(&docs, "DaemonSet")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let config = find(&docs, "ConfigMap")["data"]["cwpub.toml"]
        .as_str()
        .expect("cwpub.toml");

    // Switched on, the commented DataDog part is a valid config that sends
    // both jobs to both destinations.
    let datadog = with_datadog(config);
    let (ok, out) = cwpub_check(&datadog, &container_env(container));
    assert!(
        ok,
        "the ConfigMap's config with DataDog fails `cwpub check`:\n{datadog}\n{out}"
    );
    assert!(
        out.contains("OK (2 jobs; sinks cloudwatch (cloudwatch), dd (datadog))"),
        "{out}"
    );
    for job in ["heartbeat", "host-metrics"] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(&format!("{job}: ")) && l.contains(", dd (")),
            "{job} goes to DataDog too: {out}"
        );
    }

    // Both sinks' spools fit the spool volume.
    let spool = spool_dir(&datadog);
    let spool_mount = mount_holding(&container["volumeMounts"], "mountPath", &spool);
    let spool_name = spool_mount["name"].as_str().expect("name");
    assert_spool_fits(&datadog, named(&pod["volumes"], "name", spool_name));

    // The key is a file of a Secret volume, which is optional: a cluster
    // without DataDog needs no Secret.
    let table: toml::Table = datadog.parse().expect("TOML");
    let key_file = table["sinks"]["dd"]["api_key_file"]
        .as_str()
        .expect("the DataDog sink reads its key from a file");
    let mount = mount_holding(&container["volumeMounts"], "mountPath", key_file);
    assert_eq!(mount["readOnly"], true);
    let volume = named(
        &pod["volumes"],
        "name",
        mount["name"].as_str().expect("name"),
    );
    let secret = &volume["secret"];
    assert!(
        secret["secretName"].is_string(),
        "a Secret volume: {volume}"
    );
    assert_eq!(secret["optional"], true, "{volume}");
    // Readable by the pod's group (fsGroup), by nobody else.
    assert_eq!(secret["defaultMode"], 0o440, "{volume}");
    assert_eq!(pod["securityContext"]["fsGroup"], IMAGE_UID);

    // Never in the ConfigMap, never a plain environment value.
    assert!(
        !["api_key =", "api_key=", "DD_API_KEY="]
            .iter()
            .any(|literal| datadog.contains(literal)),
        "{datadog}"
    );
    for var in key_vars(&container["env"]) {
        assert!(var["value"].is_null(), "a key as a plain value: {var}");
        assert!(var["valueFrom"]["secretKeyRef"].is_object(), "{var}");
    }
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
    let mount = mount_holding(&container["mountPoints"], "containerPath", &spool);
    assert_eq!(mount["readOnly"], false);
    assert_eq!(container["restartPolicy"]["enabled"], true);
    let stop = container["stopTimeout"].as_u64().expect("stopTimeout");
    assert!(
        drain_deadline(&image_config) + Duration::from_secs(5) <= Duration::from_secs(stop),
        "the drain ends well before ECS sends SIGKILL"
    );
}

#[test]
fn ecs_datadog_task_definition_gives_the_key_from_secrets() {
    let base = validate("ecs", &workspace_root().join(ECS)).unwrap_or_else(|e| panic!("{e}"));
    let docs =
        validate("ecs", &workspace_root().join(ECS_DATADOG)).unwrap_or_else(|e| panic!("{e}"));
    let (base, task) = (&base[0], &docs[0]);
    let container = &task["containerDefinitions"][0];

    // The key comes from Secrets Manager (or SSM Parameter Store) through the
    // execution role; no environment value holds one.
    let secret = named(&container["secrets"], "name", "DD_API_KEY");
    let from = secret["valueFrom"].as_str().expect("valueFrom");
    assert!(
        from.starts_with("arn:aws:secretsmanager:") || from.starts_with("arn:aws:ssm:"),
        "{from}"
    );
    assert!(task["executionRoleArn"].is_string());
    assert!(
        key_vars(&container["environment"]).is_empty(),
        "{container}"
    );

    // Otherwise the same task as the checked one (so its hardening holds),
    // running an image built with the DataDog config.
    let mut same = task.clone();
    same["family"] = base["family"].clone();
    let def = &mut same["containerDefinitions"][0];
    def["image"] = base["containerDefinitions"][0]["image"].clone();
    def.as_object_mut().expect("container").remove("secrets");
    assert_eq!(
        &same, base,
        "{ECS_DATADOG} differs from {ECS} beyond family, image and secrets"
    );

    let config =
        std::fs::read_to_string(workspace_root().join(ECS_DATADOG_CONFIG)).expect("read config");
    assert!(
        config.contains(&format!("COPY {ECS_DATADOG_CONFIG} /etc/cwpub/cwpub.toml")),
        "{ECS_DATADOG_CONFIG} says how to bake it into the image"
    );
    let env = [("AWS_REGION".to_owned(), "eu-west-1".to_owned())];
    let (ok, out) = cwpub_check(&config, &env);
    assert!(ok, "{ECS_DATADOG_CONFIG} fails `cwpub check`:\n{out}");
    assert!(
        out.contains("OK (2 jobs; sinks cloudwatch (cloudwatch), dd (datadog))"),
        "{out}"
    );
    // The sink reads the variable the secret sets.
    let table: toml::Table = config.parse().expect("TOML");
    let dd = &table["sinks"]["dd"];
    assert!(dd.get("api_key_file").is_none(), "{dd}");
    let var = dd
        .get("api_key_env")
        .and_then(toml::Value::as_str)
        .unwrap_or("DD_API_KEY");
    assert_eq!(secret["name"], var);
    // Spool and drain fit the task as the image config's do.
    let spool = spool_dir(&config);
    mount_holding(&container["mountPoints"], "containerPath", &spool);
    let stop = container["stopTimeout"].as_u64().expect("stopTimeout");
    assert!(drain_deadline(&config) + Duration::from_secs(5) <= Duration::from_secs(stop));
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
