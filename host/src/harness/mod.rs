//! `cwpub test`, the guest author's harness, as a library: a TOML file of
//! cases ([`cases`]), each run in the real sandbox with a fixed run context
//! ([`context`], [`runner`]), its output checked with the daemon's own rules
//! ([`checks`]) and held against what the case expects ([`expect`]), every
//! difference shown as a readable diff ([`render`]), the guest's diagnostics
//! kept for the report ([`capture`]). It works for guests in
//! any language: it only sees the component.

pub mod capture;
pub mod cases;
pub mod checks;
pub mod context;
pub mod expect;
pub mod render;
pub mod runner;

pub use cases::{Case, CasesError, Suite};
pub use expect::Outcome;
pub use expect::{Expect, Mismatch};
pub use runner::{CaseReport, run_case, run_suite};
