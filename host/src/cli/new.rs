//! `cwpub new <path> [--lang rust|python] [--kind json|emf]`: writes a ready
//! guest project — source with a working example, build files, a README, a
//! `cwpub test` case file, a `cwpub run` config and a `.gitignore` — that
//! builds with one command and passes its own tests.
//!
//! The project's name is checked in [`name`], the SDK's location chosen in
//! [`sdk`], the files rendered from the templates in [`template`]; this file
//! writes them, refusing to touch a directory that is not empty.

mod name;
mod sdk;
mod template;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

use name::ProjectName;
use sdk::SdkSource;

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
    /// cwpub checkout) [default: the SDK this cwpub carries, written into the
    /// project as `cwpub-sdk/`].
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

/// Runs the command.
pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let name = ProjectName::from_path(&args.path)?;
    let sdk = match args.lang {
        Lang::Rust => Some(SdkSource::choose(
            args.sdk_path.as_deref(),
            args.sdk_git.as_deref(),
            args.sdk_rev.as_deref(),
        )?),
        Lang::Python if args.sdk_path.is_some() || args.sdk_git.is_some() => bail!(
            "--sdk-path and --sdk-git apply to Rust projects; a Python project gets the WIT contract as wit/publisher.wit instead"
        ),
        Lang::Python => None,
    };
    let files = template::render_project(&name, args.lang, args.kind, sdk.as_ref())?;
    write_project(&args.path, &files)?;

    let dir = args.path.display();
    let (what, build, guest) = match args.lang {
        Lang::Rust => (
            "Rust",
            "cargo build --release --target wasm32-wasip2",
            name.rust_guest_path(),
        ),
        Lang::Python => ("Python", "./build.sh", name.python_guest_path()),
    };
    let kind = match args.kind {
        Kind::Json => "JSON log lines",
        Kind::Emf => "EMF metrics",
    };
    println!("Created {what} guest `{}` ({kind}) in {dir}", name.name);
    if let Some(sdk) = &sdk {
        println!(
            "The cwpub-guest SDK comes from {} (README.md says how to change this).",
            sdk.describe()
        );
    }
    println!(
        "\nNext:\n  cd {dir}\n  {build}\n      builds {guest}\n  cwpub test\n      builds, then runs the cases in cwpub-test.toml\n  cwpub run cwpub.toml\n      runs it every 10 s, events on stdout; Ctrl-C stops"
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `files` under `dir`, which must not exist or be empty. On failure
/// removes what it wrote, so nothing half-made is left behind.
fn write_project(dir: &Path, files: &[(String, String, bool)]) -> anyhow::Result<()> {
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

    #[test]
    fn projects_are_written_only_into_new_or_empty_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let files = vec![
            ("a/b.txt".to_owned(), "hi\n".to_owned(), false),
            ("run.sh".to_owned(), "#!/bin/sh\n".to_owned(), true),
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
        let files = vec![
            ("a".to_owned(), "x".to_owned(), false),
            ("a/b".to_owned(), "y".to_owned(), false),
        ];
        assert!(write_project(&blocked, &files).is_err());
        assert!(!blocked.exists());
    }
}
