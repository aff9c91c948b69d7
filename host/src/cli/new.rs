//! `cwpub new <path> [--lang rust|python] [--kind json|emf]`: writes a ready
//! guest project — source with a working example, build files, a README, a
//! `cwpub test` case file, a `cwpub run` config and a `.gitignore` — that
//! builds with one command and passes its own tests.
//!
//! The templates are plain files under `host/templates/`, compiled into the
//! binary. They use cargo-generate's placeholder syntax (`{{project-name}}`,
//! `{{crate_name}}`, `{{project-name | upper_camel_case}}`) so they read like
//! any cargo-generate template, but cwpub renders them itself: `cwpub new`
//! must work offline with nothing but the cwpub binary, must write the
//! location of the SDK this binary was built with (no template engine can know
//! it), and covers Python projects too. Rendering is plain substitution of a
//! fixed set of names; an unknown name is an error, never left in the output.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

/// Arguments of `cwpub new`.
#[derive(Args)]
pub struct NewArgs {
    /// The project's directory, created if missing (an existing one must be
    /// empty); its last component is the project's name, e.g. `hello`.
    path: PathBuf,
    /// The language of the guest.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// What the example guest publishes.
    #[arg(long, value_enum, default_value_t = Kind::Json)]
    kind: Kind,
    /// Rust: take the cwpub-guest SDK from this directory (the `sdk/` of a
    /// cwpub checkout) [default: the checkout this cwpub was built from, if it
    /// still exists, else the cwpub git repository].
    #[arg(long, value_name = "DIR", conflicts_with = "sdk_git")]
    sdk_path: Option<PathBuf>,
    /// Rust: take the cwpub-guest SDK from this git repository.
    #[arg(long, value_name = "URL")]
    sdk_git: Option<String>,
    /// Rust, with --sdk-git: the commit, tag or branch to use.
    #[arg(long, value_name = "REV", requires = "sdk_git")]
    sdk_rev: Option<String>,
}

/// The language of the generated guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust with the cwpub-guest SDK, built with cargo for wasm32-wasip2.
    Rust,
    /// Python, built with componentize-py 0.25.1.
    Python,
}

/// What the example guest publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// One JSON log line per run.
    Json,
    /// CloudWatch metrics: one EMF document per run.
    Emf,
}

/// The WIT contract, from the repository's single copy; Python projects get it
/// as `wit/publisher.wit` (Rust projects get it through the SDK).
const WIT: &str = include_str!("../../../wit/publisher.wit");

/// The repository named in generated projects when no local SDK is known.
const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

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
                include_str!("../../templates/common/json/cwpub-test.toml"),
            ),
            file(
                "cwpub.toml",
                include_str!("../../templates/common/json/cwpub.toml"),
            ),
        ],
        Kind::Emf => vec![
            file(
                "cwpub-test.toml",
                include_str!("../../templates/common/emf/cwpub-test.toml"),
            ),
            file(
                "cwpub.toml",
                include_str!("../../templates/common/emf/cwpub.toml"),
            ),
        ],
    };
    match lang {
        Lang::Rust => files.extend([
            file(
                "Cargo.toml",
                include_str!("../../templates/rust/Cargo.toml.liquid"),
            ),
            file(
                ".cargo/config.toml",
                include_str!("../../templates/rust/cargo-config.toml"),
            ),
            file(
                "rust-toolchain.toml",
                include_str!("../../templates/rust/rust-toolchain.toml"),
            ),
            file(".gitignore", include_str!("../../templates/rust/gitignore")),
            file("README.md", include_str!("../../templates/rust/README.md")),
            match kind {
                Kind::Json => file(
                    "src/lib.rs",
                    include_str!("../../templates/rust/json/lib.rs"),
                ),
                Kind::Emf => file(
                    "src/lib.rs",
                    include_str!("../../templates/rust/emf/lib.rs"),
                ),
            },
        ]),
        Lang::Python => files.extend([
            TemplateFile {
                executable: true,
                ..file("build.sh", include_str!("../../templates/python/build.sh"))
            },
            file(
                "requirements.txt",
                include_str!("../../templates/python/requirements.txt"),
            ),
            file(
                ".gitignore",
                include_str!("../../templates/python/gitignore"),
            ),
            file(
                "README.md",
                include_str!("../../templates/python/README.md"),
            ),
            file("wit/publisher.wit", WIT),
            match kind {
                Kind::Json => file("app.py", include_str!("../../templates/python/json/app.py")),
                Kind::Emf => file("app.py", include_str!("../../templates/python/emf/app.py")),
            },
        ]),
    }
    files
}

/// Runs the command.
pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let name = ProjectName::from_path(&args.path)?;
    let sdk = match args.lang {
        Lang::Rust => Some(SdkSource::choose(&args)?),
        Lang::Python if args.sdk_path.is_some() || args.sdk_git.is_some() => bail!(
            "--sdk-path and --sdk-git apply to Rust projects; a Python project gets the WIT contract as wit/publisher.wit instead"
        ),
        Lang::Python => None,
    };
    let values = placeholders(&name, args.lang, args.kind, sdk.as_ref());
    let files = template(args.lang, args.kind)
        .into_iter()
        .map(|f| Ok((f.path, render(f.text, &values)?, f.executable)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    write_project(&args.path, &files)?;

    let dir = args.path.display();
    let (what, build, guest) = match args.lang {
        Lang::Rust => ("Rust", "cargo build --release", name.rust_guest_path()),
        Lang::Python => ("Python", "./build.sh", name.python_guest_path()),
    };
    let kind = match args.kind {
        Kind::Json => "JSON log lines",
        Kind::Emf => "EMF metrics",
    };
    println!("Created {what} guest `{}` ({kind}) in {dir}", name.name);
    if let Some(sdk) = &sdk {
        println!(
            "The cwpub-guest SDK comes from {} (it is not on crates.io yet; README.md says how to change this).",
            sdk.describe()
        );
    }
    println!(
        "\nNext:\n  cd {dir}\n  {build:<22} # builds {guest}\n  {:<22} # builds, then runs the cases in cwpub-test.toml\n  {:<22} # runs it every 10 s, events on stdout; Ctrl-C stops",
        "cwpub test", "cwpub run cwpub.toml"
    );
    Ok(ExitCode::SUCCESS)
}

/// A project name checked for use as a Cargo package, a job name and a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProjectName {
    /// As given, e.g. `my-guest`.
    name: String,
    /// The Rust crate name, e.g. `my_guest` (also the `.wasm` file's stem).
    crate_name: String,
    /// The type implementing `Guest`, e.g. `MyGuest`.
    type_name: String,
}

/// Longest accepted name (cwpub job names allow 64 characters).
const MAX_NAME_LEN: usize = 64;

/// Rust keywords and crate names a package (or its `Guest` type) cannot take.
const RESERVED_CRATE_NAMES: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "chrono",
    "const",
    "continue",
    "core",
    "crate",
    "cwpub_emf",
    "cwpub_guest",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "serde",
    "serde_json",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "wit_bindgen",
    "yield",
];

/// Names the Rust templates use themselves; a guest type may not shadow them.
const TEMPLATE_TYPE_NAMES: &[&str] = &[
    "Config",
    "Context",
    "DimensionSet",
    "Error",
    "Guest",
    "MetricsLogger",
    "Output",
    "Result",
    "Settings",
    "Unit",
    "Value",
];

impl ProjectName {
    /// The name of the project at `path` (its last component), checked.
    fn from_path(path: &Path) -> anyhow::Result<ProjectName> {
        let Some(last) = path.file_name() else {
            bail!(
                "`{}` does not end in a project name; give the project's directory, e.g. `cwpub new hello`",
                path.display()
            );
        };
        let Some(name) = last.to_str() else {
            bail!(
                "the project name {last:?} is not UTF-8; use lowercase ASCII letters, digits, '-' and '_'"
            );
        };
        ProjectName::parse(name).map_err(anyhow::Error::msg)
    }

    /// Checks `name`: 1–64 of `a-z 0-9 - _`, starting with a letter, not a
    /// Rust keyword or the name of a crate the guest uses.
    fn parse(name: &str) -> Result<ProjectName, String> {
        let rule = "a project name is 1-64 lowercase ASCII letters, digits, '-' and '_', starting with a letter";
        let suggestion = || {
            let fixed: String = name
                .to_ascii_lowercase()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .skip_while(|c| !c.is_ascii_lowercase())
                .take(MAX_NAME_LEN)
                .collect();
            match ProjectName::parse(&fixed) {
                Ok(_) if fixed != name => format!(", e.g. `{fixed}`"),
                _ => String::new(),
            }
        };
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(format!(
                "the project name {:?} has {} characters; {rule}",
                shown(name),
                name.chars().count()
            ));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase())
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(format!(
                "the project name {:?} is not valid: {rule}{}",
                shown(name),
                suggestion()
            ));
        }
        let crate_name = name.replace('-', "_");
        if RESERVED_CRATE_NAMES.contains(&crate_name.as_str()) {
            return Err(format!(
                "the project name `{name}` is a Rust keyword or the name of a crate guests use; choose another, e.g. `{name}-guest`"
            ));
        }
        let mut type_name: String = crate_name
            .split('_')
            .map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        if TEMPLATE_TYPE_NAMES.contains(&type_name.as_str()) {
            type_name.insert_str(0, "My");
        }
        Ok(ProjectName {
            name: name.to_owned(),
            crate_name,
            type_name,
        })
    }

    fn rust_guest_path(&self) -> String {
        format!("target/wasm32-wasip2/release/{}.wasm", self.crate_name)
    }

    fn python_guest_path(&self) -> String {
        format!("{}.wasm", self.crate_name)
    }
}

/// `name` with control characters escaped, for messages (it came from the command line).
fn shown(name: &str) -> String {
    name.chars().flat_map(char::escape_debug).take(80).collect()
}

/// Where a generated Rust project takes the cwpub-guest SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SdkSource {
    /// A local directory holding the SDK's `Cargo.toml`.
    Path(PathBuf),
    /// A git repository holding the cwpub workspace, at a revision if given.
    Git { url: String, rev: Option<String> },
}

impl SdkSource {
    /// The source the arguments ask for, else this build's checkout if it is
    /// still there, else the cwpub repository.
    fn choose(args: &NewArgs) -> anyhow::Result<SdkSource> {
        if let Some(dir) = &args.sdk_path {
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
        if let Some(url) = &args.sdk_git {
            return Ok(SdkSource::Git {
                url: url.clone(),
                rev: args.sdk_rev.clone(),
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
    fn dependency(&self, kind: Kind) -> String {
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
    fn describe(&self) -> String {
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
            r#"["cargo", "build", "--release"]"#.to_owned(),
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
    ]
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

/// Writes `files` under `dir`, which must not exist or be empty. On failure
/// removes what it wrote, so nothing half-made is left behind.
fn write_project(dir: &Path, files: &[(&str, String, bool)]) -> anyhow::Result<()> {
    let existed = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} already exists and is not empty; choose another name or remove it",
                    dir.display()
                );
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) if dir.exists() && !dir.is_dir() => {
            bail!(
                "{} already exists and is not a directory ({e})",
                dir.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let result = files
        .iter()
        .try_for_each(|(path, text, executable)| write_file(&dir.join(path), text, *executable));
    if result.is_err() {
        if existed {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    result
}

fn write_file(path: &Path, text: &str, executable: bool) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ProjectName {
        ProjectName::parse(s).unwrap()
    }

    #[test]
    fn names_map_to_crate_and_type_names() {
        let n = name("my-guest_2");
        assert_eq!(n.crate_name, "my_guest_2");
        assert_eq!(n.type_name, "MyGuest2");
        assert_eq!(name("hello").type_name, "Hello");
        assert_eq!(name("guest").type_name, "MyGuest");
        assert_eq!(name("output").type_name, "MyOutput");
        assert_eq!(
            n.rust_guest_path(),
            "target/wasm32-wasip2/release/my_guest_2.wasm"
        );
    }

    #[test]
    fn bad_names_are_refused_with_the_rule_and_a_fix() {
        let e = ProjectName::parse("My Guest").unwrap_err();
        assert!(
            e.contains("lowercase ASCII letters") && e.ends_with("e.g. `my-guest`"),
            "{e}"
        );
        let e = ProjectName::parse("2fast").unwrap_err();
        assert!(
            e.contains("starting with a letter") && e.ends_with("e.g. `fast`"),
            "{e}"
        );
        let e = ProjectName::parse("fn").unwrap_err();
        assert!(
            e.contains("Rust keyword") && e.contains("`fn-guest`"),
            "{e}"
        );
        assert!(
            ProjectName::parse("cwpub-guest")
                .unwrap_err()
                .contains("crate")
        );
        assert!(ProjectName::parse("").unwrap_err().contains("0 characters"));
        assert!(
            ProjectName::parse(&"a".repeat(65))
                .unwrap_err()
                .contains("65 characters")
        );
        let e = ProjectName::parse("bad\u{1b}[31m").unwrap_err();
        assert!(!e.contains('\u{1b}'), "{e}");
        let e = ProjectName::from_path(Path::new(".."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not end in a project name"), "{e}");
    }

    #[test]
    fn every_template_renders_completely() {
        let sdks = [
            SdkSource::Path(PathBuf::from("/src/cwpub/sdk")),
            SdkSource::Git {
                url: "https://example.test/cwpub".into(),
                rev: Some("v0.1.0".into()),
            },
        ];
        for lang in [Lang::Rust, Lang::Python] {
            for kind in [Kind::Json, Kind::Emf] {
                let sdk = (lang == Lang::Rust).then_some(&sdks[kind as usize]);
                let values = placeholders(&name("hello-world"), lang, kind, sdk);
                for f in template(lang, kind) {
                    let text = render(f.text, &values)
                        .unwrap_or_else(|e| panic!("{lang:?}/{kind:?} {}: {e}", f.path));
                    assert!(!text.contains("{{"), "{lang:?}/{kind:?} {}: {text}", f.path);
                    assert!(text.ends_with('\n'), "{} ends with a newline", f.path);
                    if f.path.ends_with(".toml") {
                        text.parse::<toml::Table>().unwrap_or_else(|e| {
                            panic!("{lang:?}/{kind:?} {}: {e}\n{text}", f.path)
                        });
                    }
                }
            }
        }
    }

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

    #[test]
    fn projects_are_written_only_into_new_or_empty_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let files = vec![
            ("a/b.txt", "hi\n".to_owned(), false),
            ("run.sh", "#!/bin/sh\n".to_owned(), true),
        ];
        let dir = tmp.path().join("p");
        write_project(&dir, &files).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("a/b.txt")).unwrap(),
            "hi\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join("run.sh"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0o111);
        }
        let e = write_project(&dir, &files).unwrap_err().to_string();
        assert!(e.contains("already exists and is not empty"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.join("a/b.txt")).unwrap(),
            "hi\n"
        );

        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        write_project(&empty, &files).unwrap();

        let plain = tmp.path().join("file");
        std::fs::write(&plain, "x").unwrap();
        let e = write_project(&plain, &files).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");

        // A file in the way of a directory: the half-written project is removed.
        let blocked = tmp.path().join("blocked");
        let files = vec![("a", "x".to_owned(), false), ("a/b", "y".to_owned(), false)];
        assert!(write_project(&blocked, &files).is_err());
        assert!(!blocked.exists());
    }
}
