//! The name of a new project: checked once, and turned into the Cargo
//! package name, the crate name (also the `.wasm` file's stem) and the name
//! of the type implementing `Guest`.

use std::path::Path;

use anyhow::bail;

/// A project name checked for use as a Cargo package, a job name and a file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName {
    /// As given, e.g. `my-guest`.
    pub name: String,
    /// The Rust crate name, e.g. `my_guest` (also the `.wasm` file's stem).
    pub crate_name: String,
    /// The type implementing `Guest`, e.g. `MyGuest`.
    pub type_name: String,
}

/// Longest accepted name (cwpub job names allow 64 characters).
const MAX_NAME_LEN: usize = 64;

/// Rust keywords and crate names a package (or its `Guest` type) cannot take.
#[rustfmt::skip]
const RESERVED_CRATE_NAMES: &[&str] = &[
    "abstract", "alloc", "as", "async", "await", "become", "box", "break", "chrono", "const",
    "continue", "core", "crate", "cwpub_emf", "cwpub_guest", "do", "dyn", "else", "enum", "extern",
    "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match",
    "mod", "move", "mut", "override", "priv", "proc_macro", "pub", "ref", "return", "self",
    "serde", "serde_json", "static", "std", "struct", "super", "test", "trait", "true", "try",
    "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "wit_bindgen",
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
    pub fn from_path(path: &Path) -> anyhow::Result<ProjectName> {
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
    pub fn parse(name: &str) -> Result<ProjectName, String> {
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
        let len = name.chars().count();
        if len == 0 || len > MAX_NAME_LEN {
            return Err(format!(
                "the project name \"{}\" has {len} characters; {rule}",
                shown(name)
            ));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase())
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(format!(
                "the project name \"{}\" is not valid: {rule}{}",
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

    /// Where a Rust project's build writes the component.
    pub fn rust_guest_path(&self) -> String {
        format!("target/wasm32-wasip2/release/{}.wasm", self.crate_name)
    }

    /// Where a Python project's build writes the component.
    pub fn python_guest_path(&self) -> String {
        format!("{}.wasm", self.crate_name)
    }
}

/// `name` with control characters escaped, for messages (it came from the command line).
fn shown(name: &str) -> String {
    name.chars().flat_map(char::escape_debug).take(80).collect()
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
}
