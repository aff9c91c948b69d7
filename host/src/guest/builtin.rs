//! The reference guests shipped inside the binary (`builtin:heartbeat`,
//! `builtin:emf`), compiled for wasm32-wasip2 by `build.rs`.

/// A guest embedded in the cwpub binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `builtin:heartbeat`: one heartbeat JSON log event per run.
    Heartbeat,
    /// `builtin:emf`: CloudWatch EMF documents with the host's health metrics.
    Emf,
}

impl Builtin {
    /// Every built-in guest.
    pub const ALL: [Builtin; 2] = [Builtin::Heartbeat, Builtin::Emf];

    /// The name after `builtin:`.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Heartbeat => "heartbeat",
            Builtin::Emf => "emf",
        }
    }

    /// Looks up a built-in by the name after `builtin:`.
    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The component's bytes.
    pub fn wasm(self) -> &'static [u8] {
        match self {
            Builtin::Heartbeat => include_bytes!(concat!(env!("OUT_DIR"), "/guest_heartbeat.wasm")),
            Builtin::Emf => include_bytes!(concat!(env!("OUT_DIR"), "/guest_emf.wasm")),
        }
    }
}
