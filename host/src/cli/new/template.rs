//! The template files of every kind of project, and their rendering.
//!
//! The templates are plain files under `host/templates/`, compiled into the
//! binary. They use cargo-generate's placeholder syntax (`{{project-name}}`,
//! `{{crate_name}}`, `{{project-name | upper_camel_case}}`) so they read like
//! any cargo-generate template, but cwpub renders them itself: `cwpub new`
//! must work offline with nothing but the cwpub binary, must write the
//! location of the SDK this binary was built with (no template engine can know
//! it), and covers Python projects too. Rendering is plain substitution of a
//! fixed set of names; an unknown name is an error, never left in the output.

use anyhow::bail;

use super::name::ProjectName;
use super::sdk::{self, SdkSource};
use super::{Kind, Lang};

/// The WIT contract, from the repository's single copy; Python projects get it
/// as `wit/publisher.wit` (Rust projects get it with the SDK).
const WIT: &str = include_str!("../../../../wit/publisher.wit");
/// One file of a template: where it goes in the project, its text, and
/// whether it is a script to mark executable.
struct TemplateFile {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const fn file(path: &'static str, text: &'static str) -> TemplateFile {
    TemplateFile {
        path,
        text,
        executable: false,
    }
}

/// The files of a `lang` project publishing `kind`.
fn template(lang: Lang, kind: Kind) -> Vec<TemplateFile> {
    let mut files = match kind {
        Kind::Json => vec![
            file(
                "cwpub-test.toml",
                include_str!("../../../templates/common/json/cwpub-test.toml"),
            ),
            file(
                "cwpub.toml",
                include_str!("../../../templates/common/json/cwpub.toml"),
            ),
        ],
        Kind::Emf => vec![
            file(
                "cwpub-test.toml",
                include_str!("../../../templates/common/emf/cwpub-test.toml"),
            ),
            file(
                "cwpub.toml",
                include_str!("../../../templates/common/emf/cwpub.toml"),
            ),
        ],
    };
    match lang {
        Lang::Rust => files.extend([
            file(
                "Cargo.toml",
                include_str!("../../../templates/rust/Cargo.toml.liquid"),
            ),
            file(
                "rust-toolchain.toml",
                include_str!("../../../templates/rust/rust-toolchain.toml"),
            ),
            file(
                ".gitignore",
                include_str!("../../../templates/rust/gitignore"),
            ),
            file(
                "README.md",
                include_str!("../../../templates/rust/README.md"),
            ),
            match kind {
                Kind::Json => file(
                    "src/lib.rs",
                    include_str!("../../../templates/rust/json/lib.rs"),
                ),
                Kind::Emf => file(
                    "src/lib.rs",
                    include_str!("../../../templates/rust/emf/lib.rs"),
                ),
            },
        ]),
        Lang::Python => files.extend([
            TemplateFile {
                executable: true,
                ..file(
                    "build.sh",
                    include_str!("../../../templates/python/build.sh"),
                )
            },
            file(
                "requirements.txt",
                include_str!("../../../templates/python/requirements.txt"),
            ),
            file(
                ".gitignore",
                include_str!("../../../templates/python/gitignore"),
            ),
            file(
                "README.md",
                include_str!("../../../templates/python/README.md"),
            ),
            file("wit/publisher.wit", WIT),
            file(
                "jobconfig.py",
                include_str!("../../../templates/python/jobconfig.py"),
            ),
            match kind {
                Kind::Json => file(
                    "app.py",
                    include_str!("../../../templates/python/json/app.py"),
                ),
                Kind::Emf => file(
                    "app.py",
                    include_str!("../../../templates/python/emf/app.py"),
                ),
            },
        ]),
    }
    files
}

/// What the SDK's directory in a project says about itself.
const SDK_README: &str = include_str!("../../../templates/rust/cwpub-sdk/README.md");

/// The value of every placeholder the templates use.
fn placeholders(
    name: &ProjectName,
    lang: Lang,
    kind: Kind,
    sdk: Option<&SdkSource>,
) -> Vec<(&'static str, String)> {
    let (guest_path, build_command) = match lang {
        Lang::Rust => (
            name.rust_guest_path(),
            r#"["cargo", "build", "--release", "--target", "wasm32-wasip2"]"#.to_owned(),
        ),
        Lang::Python => (name.python_guest_path(), r#"["sh", "build.sh"]"#.to_owned()),
    };
    let (kind_summary, example_config, emf_note, sdk_features) = match kind {
        Kind::Json => (
            "it publishes one JSON log line per run.",
            "greeting=Hi",
            " and, with its `emf` feature, the EMF `MetricsLogger`",
            "",
        ),
        Kind::Emf => (
            "it publishes CloudWatch metrics as one EMF document per run.",
            "namespace=MyApp",
            " and, with its `emf` feature (enabled here), the EMF `MetricsLogger`",
            r#", features = ["emf"]"#,
        ),
    };
    vec![
        ("project-name", name.name.clone()),
        ("crate_name", name.crate_name.clone()),
        ("project-name | upper_camel_case", name.type_name.clone()),
        ("guest_path", guest_path),
        ("wasm_file", name.python_guest_path()),
        ("build_command", build_command),
        ("kind_summary", kind_summary.to_owned()),
        ("example_config", example_config.to_owned()),
        ("emf_note", emf_note.to_owned()),
        ("sdk_features", sdk_features.to_owned()),
        (
            "sdk_dependency",
            sdk.map(|s| s.dependency(kind)).unwrap_or_default(),
        ),
        (
            "sdk_source",
            sdk.map(SdkSource::describe).unwrap_or_default(),
        ),
        (
            "sdk_workspace",
            sdk.map(SdkSource::workspace_keys).unwrap_or_default(),
        ),
        ("sdk_dir", sdk::BUNDLE_DIR.to_owned()),
        ("cwpub_version", env!("CARGO_PKG_VERSION").to_owned()),
    ]
}

/// Every file of a `lang` project publishing `kind`, rendered for `name`,
/// and the SDK's own files when it is written into the project:
/// `(path in the project, text, executable)`.
pub fn render_project(
    name: &ProjectName,
    lang: Lang,
    kind: Kind,
    sdk: Option<&SdkSource>,
) -> anyhow::Result<Vec<(String, String, bool)>> {
    let values = placeholders(name, lang, kind, sdk);
    let mut files = template(lang, kind)
        .into_iter()
        .map(|f| Ok((f.path.to_owned(), render(f.text, &values)?, f.executable)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sdk_files = sdk.map(SdkSource::files).transpose()?.unwrap_or_default();
    if !sdk_files.is_empty() {
        files.push((
            format!("{}/README.md", sdk::BUNDLE_DIR),
            render(SDK_README, &values)?,
            false,
        ));
    }
    files.extend(
        sdk_files
            .into_iter()
            .map(|(path, text)| (path, text, false)),
    );
    Ok(files)
}

/// Replaces every `{{name}}` in `template` with its value; an unknown or
/// unclosed placeholder is an error.
fn render(template: &str, values: &[(&str, String)]) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("template bug: unclosed `{{{{` placeholder");
        };
        let key = after[..end].trim();
        let Some((_, value)) = values.iter().find(|(k, _)| *k == key) else {
            bail!("template bug: unknown placeholder `{{{{{key}}}}}`");
        };
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn every_template_renders_completely() {
        let sdks = [
            SdkSource::Bundled,
            SdkSource::Path(PathBuf::from("/src/cwpub/sdk")),
            SdkSource::Git {
                url: "https://example.test/cwpub".into(),
                rev: Some("v0.1.0".into()),
            },
        ];
        let name = ProjectName::parse("hello-world").unwrap();
        for kind in [Kind::Json, Kind::Emf] {
            let python = render_project(&name, Lang::Python, kind, None).unwrap();
            for sdk in &sdks {
                let rust = render_project(&name, Lang::Rust, kind, Some(sdk)).unwrap();
                let bundled = rust.iter().any(|(path, ..)| path.starts_with("cwpub-sdk/"));
                assert_eq!(bundled, *sdk == SdkSource::Bundled, "{sdk:?}");
                let manifest = &rust.iter().find(|(p, ..)| p == "Cargo.toml").unwrap().1;
                assert_eq!(manifest.contains("exclude = [\"cwpub-sdk\"]"), bundled);
                // The SDK's own sources are copied, not rendered.
                let rendered = rust
                    .iter()
                    .chain(&python)
                    .filter(|(p, ..)| !p.starts_with("cwpub-sdk/") || p.ends_with("README.md"));
                for (path, text, _) in rendered {
                    assert!(!text.contains("{{"), "{sdk:?}/{kind:?} {path}: {text}");
                    assert!(text.ends_with('\n'), "{path} ends with a newline");
                    if path.ends_with(".toml") {
                        text.parse::<toml::Table>()
                            .unwrap_or_else(|e| panic!("{sdk:?}/{kind:?} {path}: {e}\n{text}"));
                    }
                }
            }
        }
    }

    #[test]
    fn render_refuses_unknown_placeholders() {
        let values = vec![("a", "1".to_owned())];
        assert_eq!(render("x{{a}}y{{ a }}", &values).unwrap(), "x1y1");
        assert!(
            render("{{b}}", &values)
                .unwrap_err()
                .to_string()
                .contains("`{{b}}`")
        );
        assert!(render("{{a", &values).is_err());
    }
}
