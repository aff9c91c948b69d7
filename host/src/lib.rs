//! cwpub: runs sandboxed WASI guest components on a schedule and delivers the
//! log events and EMF documents they compose to CloudWatch Logs, DataDog or
//! stdout.
//!
//! Data flows one way, and the modules follow it:
//!
//! ```text
//! config ─► schedule ─► guest (sandboxed run) ─► validate ─► sinks ─┬► stdout
//!                                                                   └► delivery core ─► CloudWatch / DataDog adapter
//! ```
//!
//! * [`daemon`] — `cwpub run`: the jobs, the running sinks, reloads.
//! * [`sinks`] — the destinations, each an adapter in a folder of its own.
//! * [`delivery`] — the sink-neutral core: buffer, retries, breakers, rate, spool.
//! * [`event`] — the types every stage passes down the chain.
//! * [`env`] — the environment map every command reads variables from, and
//!   the host's identity.
//! * [`guest`] — the wasmtime engine, the `publisher` WIT bindings, the sandbox
//!   and per-run limits, and the built-in reference guests.
//! * [`harness`] — `cwpub test`: runs a guest against a file of test cases.
//! * [`ledger`] — every counter and typed drop reason, whichever stage reports
//!   it, and the one metrics registry behind `/metrics`.
//! * [`untrusted`] — what guests (and remote services) can make the host
//!   print: escaped, capped text and a per-job log budget, used by every stage.

/// musl's malloc takes one lock for every allocation and slows guest
/// compilation and multi-threaded delivery; static (musl) builds use mimalloc.
/// Declared in the library so the binary and the benchmarks share it.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod config;
pub mod daemon;
pub mod delivery;
pub mod env;
pub mod event;
pub mod guest;
pub mod harness;
pub mod http;
pub mod ledger;
mod memory;
pub mod observe;
pub mod schedule;
pub mod sinks;
pub mod untrusted;
pub mod validate;
