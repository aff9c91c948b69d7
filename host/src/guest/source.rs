//! Where a guest comes from: `builtin:<name>` or a path to a `.wasm` component.

use std::fmt;
use std::path::PathBuf;

use super::builtin::Builtin;
use super::error::LoadError;

/// Prefix of built-in guest names.
pub const BUILTIN_PREFIX: &str = "builtin:";

/// A guest as an operator names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestSource {
    /// A guest shipped in the binary.
    Builtin(Builtin),
    /// A component file on disk.
    Path(PathBuf),
}

impl GuestSource {
    /// Parses `builtin:<name>` or a file path; unknown built-ins are an error listing the known ones.
    pub fn parse(spec: &str) -> Result<Self, LoadError> {
        match spec.strip_prefix(BUILTIN_PREFIX) {
            Some(name) => Builtin::from_name(name)
                .map(GuestSource::Builtin)
                .ok_or_else(|| LoadError {
                    source_name: spec.to_owned(),
                    message: format!(
                        "unknown built-in guest; the built-ins are {}",
                        Builtin::ALL
                            .map(|b| format!("{BUILTIN_PREFIX}{}", b.name()))
                            .join(", ")
                    ),
                }),
            None if spec.is_empty() => Err(LoadError {
                source_name: "\"\"".to_owned(),
                message: "empty guest; give builtin:<name> or a path to a .wasm component"
                    .to_owned(),
            }),
            None => Ok(GuestSource::Path(PathBuf::from(spec))),
        }
    }

    /// Reads the component bytes.
    pub fn bytes(&self) -> Result<std::borrow::Cow<'static, [u8]>, LoadError> {
        match self {
            GuestSource::Builtin(b) => Ok(b.wasm().into()),
            GuestSource::Path(path) => std::fs::read(path).map(Into::into).map_err(|e| LoadError {
                source_name: self.to_string(),
                message: match e.kind() {
                    std::io::ErrorKind::NotFound => "file not found".to_owned(),
                    _ => format!("cannot read the file: {e}"),
                },
            }),
        }
    }
}

impl fmt::Display for GuestSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestSource::Builtin(b) => write!(f, "{BUILTIN_PREFIX}{}", b.name()),
            GuestSource::Path(p) => write!(f, "{}", p.display()),
        }
    }
}
