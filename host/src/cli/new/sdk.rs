//! Where a generated Rust project takes the cwpub-guest SDK from.
//!
//! By default from the binary itself: every cwpub carries the sources of the
//! SDK it was built with (`sdk/`, the `cwpub-emf` crate it depends on,
//! `emf/`, the WIT contract `wit/`, and the licence, listed by `build.rs`),
//! and `cwpub new` writes them into the project as `cwpub-sdk/`, with the
//! manifests made standalone (no `workspace = true`, no dev-dependencies).
//!
//! Why beside the project rather than a path into a checkout, a git URL or a
//! shared cache directory:
//! - it works the same from a checkout build, `cargo install`, or the
//!   container image, and needs no network (the SDK is not on crates.io);
//! - the SDK is exactly the one of the cwpub that will run the guest, so the
//!   guest and the host speak the same contract version;
//! - the project is self-contained: the dependency is the relative path
//!   `cwpub-sdk/sdk`, so it builds from a clone on CI or another machine,
//!   and nothing breaks when a checkout moves or a cache is cleaned.
//!
//! `--sdk-path` (a checkout's `sdk/`, e.g. to work on the SDK itself) and
//! `--sdk-git` point the project elsewhere instead.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use toml::{Table, Value};

use super::Kind;

include!(concat!(env!("OUT_DIR"), "/sdk_sources.rs"));

/// The directory of a project that holds the SDK this binary carries.
pub const BUNDLE_DIR: &str = "cwpub-sdk";
/// This cwpub's version, which is also the SDK's.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Where a generated Rust project takes the cwpub-guest SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// The SDK this binary carries, written into the project's `cwpub-sdk/`.
    Bundled,
    /// A local directory holding the SDK's `Cargo.toml`.
    Path(PathBuf),
    /// A git repository holding the cwpub workspace.
    Git {
        /// The repository's URL.
        url: String,
        /// The commit, tag or branch; none for the default branch.
        rev: Option<String>,
    },
}

impl SdkSource {
    /// The source the arguments ask for, else the SDK this binary carries.
    pub fn choose(
        path: Option<&Path>,
        git: Option<&str>,
        rev: Option<&str>,
    ) -> anyhow::Result<SdkSource> {
        if let Some(dir) = path {
            let dir = std::path::absolute(dir)
                .with_context(|| format!("--sdk-path {}", dir.display()))?;
            if !is_sdk_dir(&dir) {
                bail!(
                    "--sdk-path {}: no cwpub-guest SDK there (expected a Cargo.toml of package `cwpub-guest`); pass the `sdk` directory of a cwpub checkout",
                    dir.display()
                );
            }
            return Ok(SdkSource::Path(dir));
        }
        if let Some(url) = git {
            return Ok(SdkSource::Git {
                url: url.to_owned(),
                rev: rev.map(str::to_owned),
            });
        }
        Ok(SdkSource::Bundled)
    }

    /// The dependency line for `Cargo.toml`.
    pub fn dependency(&self, kind: Kind) -> String {
        let mut line = String::from("cwpub-guest = { ");
        match self {
            SdkSource::Bundled => {
                let _ = write!(line, "path = {}", toml_string(&format!("{BUNDLE_DIR}/sdk")));
            }
            SdkSource::Path(dir) => {
                let _ = write!(line, "path = {}", toml_string(&dir.display().to_string()));
            }
            SdkSource::Git { url, rev } => {
                let _ = write!(line, "git = {}", toml_string(url));
                if let Some(rev) = rev {
                    let _ = write!(line, ", rev = {}", toml_string(rev));
                }
            }
        }
        let _ = write!(line, ", version = \"{VERSION}\"");
        if kind == Kind::Emf {
            line.push_str(", features = [\"emf\"]");
        }
        line.push_str(" }");
        line
    }

    /// The `[workspace]` keys of the project's `Cargo.toml`: the bundled SDK
    /// stays out of the project's workspace (its own `cargo fmt`, `clippy`
    /// and `test` leave it alone).
    pub fn workspace_keys(&self) -> String {
        match self {
            SdkSource::Bundled => format!(
                "# {BUNDLE_DIR}/ holds the SDK's sources, not part of this project's workspace.\nexclude = [\"{BUNDLE_DIR}\"]\n"
            ),
            SdkSource::Path(_) | SdkSource::Git { .. } => String::new(),
        }
    }

    /// Where the SDK comes from, in words.
    pub fn describe(&self) -> String {
        match self {
            SdkSource::Bundled => {
                format!("`{BUNDLE_DIR}/`, a copy of cwpub-guest {VERSION} written by this cwpub")
            }
            SdkSource::Path(dir) => format!("the directory {}", dir.display()),
            SdkSource::Git {
                url,
                rev: Some(rev),
            } => {
                format!("the git repository {url} at {rev}")
            }
            SdkSource::Git { url, rev: None } => {
                format!("the git repository {url} (its default branch)")
            }
        }
    }

    /// The files to write into the project for this source, `(path in the
    /// project, text)`: the SDK's sources for [`SdkSource::Bundled`], none
    /// otherwise.
    pub fn files(&self) -> anyhow::Result<Vec<(String, String)>> {
        if *self != SdkSource::Bundled {
            return Ok(Vec::new());
        }
        bundle(SDK_SOURCES)
    }
}

/// The bundle's files from the workspace's `sources`: every file under
/// `cwpub-sdk/`, with each crate's manifest made standalone. The workspace's
/// own `Cargo.toml` is only read, to resolve inherited keys.
fn bundle(sources: &[(&str, &str)]) -> anyhow::Result<Vec<(String, String)>> {
    let workspace: Table = sources
        .iter()
        .find(|(path, _)| *path == "Cargo.toml")
        .ok_or_else(|| anyhow!("this cwpub carries no workspace Cargo.toml"))?
        .1
        .parse()
        .context("the workspace Cargo.toml this cwpub carries")?;
    sources
        .iter()
        .filter(|(path, _)| *path != "Cargo.toml")
        .map(|(path, text)| {
            let text = if path.ends_with("/Cargo.toml") {
                standalone_manifest(text, &workspace)
                    .with_context(|| format!("the {path} this cwpub carries"))?
            } else {
                (*text).to_owned()
            };
            Ok((format!("{BUNDLE_DIR}/{path}"), text))
        })
        .collect()
}

/// A member's manifest that builds outside its workspace: every
/// `key.workspace = true` replaced by the workspace's value (a workspace
/// `path` is taken from the member's directory, one level below the root,
/// as in the bundle), and what only the workspace's own builds use (dev-
/// dependencies, tests, benches, examples, lints) left out.
fn standalone_manifest(text: &str, workspace: &Table) -> anyhow::Result<String> {
    let mut manifest: Table = text.parse()?;
    let ws = workspace
        .get("workspace")
        .and_then(Value::as_table)
        .ok_or_else(|| anyhow!("the workspace manifest has no [workspace]"))?;
    let empty = Table::new();
    let ws_package = ws
        .get("package")
        .and_then(Value::as_table)
        .unwrap_or(&empty);
    let ws_deps = ws
        .get("dependencies")
        .and_then(Value::as_table)
        .unwrap_or(&empty);

    if let Some(package) = manifest.get_mut("package").and_then(Value::as_table_mut) {
        for (key, value) in package.iter_mut() {
            if inherits(value) {
                *value = ws_package.get(key.as_str()).cloned().ok_or_else(|| {
                    anyhow!("package.{key} is inherited but the workspace has none")
                })?;
            }
        }
    }
    for section in ["dev-dependencies", "test", "bench", "example", "lints"] {
        manifest.remove(section);
    }
    if let Some(deps) = manifest
        .get_mut("dependencies")
        .and_then(Value::as_table_mut)
    {
        for (name, dep) in deps.iter_mut() {
            if inherits(dep) {
                *dep = inherited_dependency(name, dep, ws_deps)?;
            }
        }
    }
    Ok(format!(
        "# Written by cwpub {VERSION} (`cwpub new`) from the cwpub workspace: inherited\n\
         # settings resolved, development-only sections left out.\n\n{}",
        toml::to_string(&manifest)?
    ))
}

/// Whether a manifest value is `{ workspace = true, … }`.
fn inherits(value: &Value) -> bool {
    value
        .as_table()
        .and_then(|t| t.get("workspace"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// The dependency `name = { workspace = true, … }` resolved against the
/// workspace's `[workspace.dependencies]`: its entry, plus the member's
/// `features` and `optional`.
fn inherited_dependency(name: &str, dep: &Value, ws_deps: &Table) -> anyhow::Result<Value> {
    let mut resolved = match ws_deps.get(name) {
        Some(Value::String(version)) => {
            Table::from_iter([("version".to_owned(), Value::String(version.clone()))])
        }
        Some(Value::Table(table)) => table.clone(),
        _ => bail!("dependency {name} is inherited but the workspace has none"),
    };
    if let Some(Value::String(path)) = resolved.get("path") {
        let rebased = format!("../{path}");
        resolved.insert("path".to_owned(), Value::String(rebased));
    }
    let local = dep.as_table().into_iter().flatten();
    for (key, value) in local.filter(|(k, _)| k.as_str() != "workspace") {
        match (key.as_str(), resolved.get_mut(key.as_str())) {
            ("features", Some(Value::Array(features))) => {
                features.extend(value.as_array().into_iter().flatten().cloned());
            }
            _ => {
                resolved.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(Value::Table(resolved))
}

/// Whether `dir` holds the cwpub-guest package.
fn is_sdk_dir(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|manifest| manifest.contains("name = \"cwpub-guest\""))
}

/// `text` as a TOML basic string, quotes included.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dependency_names_the_sdk_and_its_features() {
        let line: toml::Table = SdkSource::Bundled.dependency(Kind::Json).parse().unwrap();
        assert_eq!(line["cwpub-guest"]["path"].as_str(), Some("cwpub-sdk/sdk"));
        let path = SdkSource::Path(PathBuf::from("/src/cw\"pub/sdk"));
        let line: toml::Table = path.dependency(Kind::Emf).parse().unwrap();
        let dep = &line["cwpub-guest"];
        assert_eq!(dep["path"].as_str(), Some("/src/cw\"pub/sdk"));
        assert_eq!(dep["version"].as_str(), Some(VERSION));
        assert_eq!(dep["features"].as_array().unwrap()[0].as_str(), Some("emf"));
        let git = SdkSource::Git {
            url: "https://example.test/cwpub".into(),
            rev: Some("abc123".into()),
        };
        let line: toml::Table = git.dependency(Kind::Json).parse().unwrap();
        let dep = &line["cwpub-guest"];
        assert_eq!(dep["git"].as_str(), Some("https://example.test/cwpub"));
        assert_eq!(dep["rev"].as_str(), Some("abc123"));
        assert!(!git.dependency(Kind::Json).contains("features"));
        assert!(git.files().unwrap().is_empty());
    }

    #[test]
    fn the_bundle_holds_the_sdk_its_dependencies_and_the_contract() {
        let files = SdkSource::Bundled.files().unwrap();
        let get = |path: &str| {
            files
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, text)| text.as_str())
                .unwrap_or_else(|| panic!("{path} is in the bundle"))
        };
        assert_eq!(
            get("cwpub-sdk/wit/publisher.wit"),
            include_str!("../../../../wit/publisher.wit")
        );
        assert!(get("cwpub-sdk/sdk/src/lib.rs").contains("export!"));
        assert!(get("cwpub-sdk/emf/src/lib.rs").contains("MetricsLogger"));
        assert!(get("cwpub-sdk/LICENSE").contains("Apache License"));
        assert!(!files.iter().any(|(p, _)| p == "cwpub-sdk/Cargo.toml"));
        // Every path dependency of a bundled crate is in the bundle too.
        for crate_dir in ["sdk", "emf"] {
            let manifest: Table = get(&format!("cwpub-sdk/{crate_dir}/Cargo.toml"))
                .parse()
                .unwrap();
            let text = toml::to_string(&manifest).unwrap();
            assert!(!text.contains("workspace"), "{crate_dir}: {text}");
            assert!(manifest.get("dev-dependencies").is_none(), "{text}");
            assert_eq!(manifest["package"]["version"].as_str(), Some(VERSION));
            assert_eq!(manifest["package"]["license"].as_str(), Some("Apache-2.0"));
            for dep in manifest["dependencies"].as_table().unwrap().values() {
                if let Some(path) = dep.get("path").and_then(Value::as_str) {
                    let sibling = path.strip_prefix("../").expect("a sibling crate");
                    get(&format!("cwpub-sdk/{sibling}/Cargo.toml"));
                }
            }
        }
    }

    #[test]
    fn inherited_keys_are_resolved_from_the_workspace() {
        let workspace: Table = r#"
            [workspace.package]
            version = "1.2.3"
            edition = "2024"
            [workspace.dependencies]
            serde = { version = "1", features = ["derive"] }
            shared = { path = "shared" }
            json = "1"
        "#
        .parse()
        .unwrap();
        let member = r#"
            [package]
            name = "m"
            version.workspace = true
            edition.workspace = true
            [dependencies]
            serde = { workspace = true, features = ["rc"], optional = true }
            shared.workspace = true
            json.workspace = true
            [dev-dependencies]
            proptest = "1"
            [[bench]]
            name = "b"
        "#;
        let out: Table = standalone_manifest(member, &workspace)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(out["package"]["version"].as_str(), Some("1.2.3"));
        let deps = out["dependencies"].as_table().unwrap();
        assert_eq!(
            deps["serde"]["features"].as_array().unwrap(),
            &vec![Value::from("derive"), Value::from("rc")]
        );
        assert_eq!(deps["serde"]["optional"].as_bool(), Some(true));
        assert_eq!(deps["shared"]["path"].as_str(), Some("../shared"));
        assert_eq!(deps["json"]["version"].as_str(), Some("1"));
        assert!(out.get("dev-dependencies").is_none() && out.get("bench").is_none());

        let e = standalone_manifest("[package]\nlicense.workspace = true\n", &workspace)
            .unwrap_err()
            .to_string();
        assert!(e.contains("package.license"), "{e}");
    }
}
