//! The guest runtime: loads WASI components that implement the
//! `cwpub:publisher` contract and runs each call in a fresh, sandboxed
//! instance with a deadline, a memory cap and output limits.
//!
//! * [`engine`] — the shared engine (pooling allocator, epoch ticker), linker
//!   and the threads long guest calls go on running on, built from
//!   [`options`] read from the environment; `ticker` advances the epoch.
//! * [`source`], [`builtin`], [`load`] — where guests come from and how they are compiled and checked.
//! * [`sandbox`], [`stdio`], [`limits`] — what a run may touch and how much.
//! * [`run`] — one call; [`classify`] names each way it can fail ([`error`]).
//! * [`facts`] — the run context handed to the guest.

pub mod bindings;
pub mod builtin;
pub mod classify;
pub mod engine;
pub mod error;
pub mod facts;
pub mod limits;
pub mod load;
pub mod options;
pub mod run;
pub(crate) mod sandbox;
pub mod source;
pub mod stdio;
mod ticker;

pub use builtin::Builtin;
pub use engine::Runtime;
pub use error::{FailureKind, LoadError, RunError};
pub use facts::{DeliveryStats, FixedContext, HostFacts, RunRequest};
pub use limits::RunLimits;
pub use load::LoadedGuest;
pub use options::{Codegen, RuntimeOptions};
pub use run::RunOutput;
pub use sandbox::DIAGNOSTICS_TARGET;
pub use source::GuestSource;
