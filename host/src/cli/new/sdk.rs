//! Where a generated Rust project takes the cwpub-guest SDK from: a
//! directory, a git repository, or by default the checkout this binary was
//! built from (found through `CARGO_MANIFEST_DIR` at build time).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::Kind;

/// The repository named in generated projects when no local SDK is known.
const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

/// Where a generated Rust project takes the cwpub-guest SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
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
    /// The source the arguments ask for, else this build's checkout if it is
    /// still there, else the cwpub repository.
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
        Ok(match built_from_sdk() {
            Some(dir) => SdkSource::Path(dir),
            None => SdkSource::Git {
                url: REPOSITORY.to_owned(),
                rev: None,
            },
        })
    }

    /// The dependency line for `Cargo.toml`.
    pub fn dependency(&self, kind: Kind) -> String {
        let mut line = String::from("cwpub-guest = { ");
        match self {
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
        let _ = write!(line, ", version = \"{}\"", env!("CARGO_PKG_VERSION"));
        if kind == Kind::Emf {
            line.push_str(", features = [\"emf\"]");
        }
        line.push_str(" }");
        line
    }

    /// Where the SDK comes from, in words.
    pub fn describe(&self) -> String {
        match self {
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
}

/// The `sdk/` directory of the checkout this binary was built from, if it
/// still holds the SDK (a binary built elsewhere finds nothing here).
fn built_from_sdk() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.join("sdk");
    is_sdk_dir(&dir).then_some(dir)
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
        let path = SdkSource::Path(PathBuf::from("/src/cw\"pub/sdk"));
        let line: toml::Table = path.dependency(Kind::Emf).parse().unwrap();
        let dep = &line["cwpub-guest"];
        assert_eq!(dep["path"].as_str(), Some("/src/cw\"pub/sdk"));
        assert_eq!(dep["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
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
    }

    #[test]
    fn this_checkout_is_the_default_sdk() {
        let dir = built_from_sdk().expect("tests run from a checkout");
        assert!(dir.join("src/lib.rs").is_file());
    }
}
