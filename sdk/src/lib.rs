//! # cwpub-guest: write a cwpub guest in Rust
//!
//! A cwpub *guest* is a WebAssembly component that composes log payloads —
//! JSON log lines or CloudWatch EMF metric documents — for the cwpub host. The
//! host runs it on a schedule in a sandbox and owns everything else:
//! credentials, batching, retries and delivery to CloudWatch Logs. This crate
//! is all a guest needs: it embeds the contract ([`WIT`], version
//! [`WIT_VERSION`]) and hides the bindings. A guest is **one type implementing
//! [`Guest`] plus one [`export!`] call**.
//!
//! ## A complete guest
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "hello"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! cwpub-guest = { git = "https://github.com/cwpub/cwpub" }  # or { path = "…/cwpub/sdk" }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use cwpub_guest::serde_json::json;
//! use cwpub_guest::{Config, Context, Error, Guest, Output, Result};
//!
//! /// Greets the world on every run.
//! struct Hello;
//!
//! impl Guest for Hello {
//!     const NAME: &'static str = "hello";
//!     const CONFIG_KEYS: &'static [&'static str] = &["greeting", "repeat"];
//!
//!     fn validate_config(config: &Config) -> Result<()> {
//!         Settings::read(config).map(drop)
//!     }
//!
//!     fn run(ctx: &Context) -> Result<Output> {
//!         let settings = Settings::read(&ctx.config)?;
//!         cwpub_guest::debug!("run {} of job {}", ctx.sequence, ctx.job);
//!         let events = (1..=settings.repeat).map(|n| {
//!             json!({
//!                 "message": format!("{}, world!", settings.greeting),
//!                 "n": n,
//!                 "host": ctx.host.hostname,
//!                 "at": ctx.actual.to_string(),
//!             })
//!         });
//!         Output::json_lines(ctx.actual, events)
//!     }
//! }
//!
//! /// The job's settings, read in one place for the configuration check and the run.
//! struct Settings<'a> {
//!     greeting: &'a str,
//!     repeat: u32,
//! }
//!
//! impl<'a> Settings<'a> {
//!     fn read(config: &'a Config) -> Result<Self> {
//!         let repeat = config.parse("repeat")?.unwrap_or(1);
//!         if !(1..=10).contains(&repeat) {
//!             return Err(Error::config("repeat", "must be between 1 and 10"));
//!         }
//!         let greeting = config.optional("greeting")?.unwrap_or("Hello");
//!         Ok(Settings { greeting, repeat })
//!     }
//! }
//!
//! cwpub_guest::export!(Hello);
//! # let mut ctx = Context::new("hello", "2026-01-01T00:00:00Z".parse().unwrap());
//! # ctx.config = Config::new("hello", [("greeting", "Hi"), ("repeat", "2")]);
//! # let output = ctx.run_for::<Hello>().unwrap();
//! # assert_eq!(output.events.len(), 2);
//! # assert_eq!(output.events[1].message,
//! #     r#"{"message":"Hi, world!","n":2,"host":"localhost","at":"2026-01-01T00:00:00.000Z"}"#);
//! # assert!(Config::new("hello", [("repeat", "0")]).validate_for::<Hello>().is_err());
//! ```
//!
//! Build and try it (`cwpub new hello` writes this project for you, with a
//! test file and a README):
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2
//! cwpub invoke target/wasm32-wasip2/release/hello.wasm --config greeting=Hi
//! ```
//!
//! ## What the host does with it
//!
//! * When it loads a job, the host calls the configuration check once in a
//!   fresh instance: the SDK checks the keys against [`Guest::CONFIG_KEYS`]
//!   (no duplicates, no unknown keys), then calls [`Guest::validate_config`].
//!   An error stops the host at start-up, so `cwpub check` catches bad
//!   configuration before anything runs.
//! * On every tick it creates a **fresh instance** and calls [`Guest::run`]
//!   once with a [`Context`]: the job name, the scheduled and actual time, a
//!   sequence number, an invocation id, the configuration and facts about the
//!   host (hostname, task id, region, version, uptime and its delivery
//!   counters). Nothing survives between runs — no memory, no globals.
//! * It delivers the [`Output`]'s events to the job's log group and stream.
//!   An [`Error`] fails the run (logged and counted by kind); the job runs
//!   again at its next tick.
//!
//! A guest cannot see credentials, environment variables, files or the
//! network; it can read clocks and random numbers, write [diagnostics](log)
//! and print to stdout/stderr (captured; stderr is attached to error reports).
//! Each run has limits the operator can raise per job: a wall-clock deadline
//! (default 2 s), 64 MiB of memory, 10,000 events and 8 MiB of messages. A
//! panic fails the run and the host reports the panic message and location.
//!
//! ## Configuration
//!
//! A job's `[jobs.config]` table reaches the guest as a [`Config`] of string
//! keys and values. Declare the keys your guest accepts in
//! [`Guest::CONFIG_KEYS`] — `"service"` for one key, `"field.<name>"` for a
//! family read with [`Config::prefixed`] — and read them with
//! [`Config::required`], [`Config::optional`] and [`Config::parse`]; each
//! returns an [`Error::InvalidConfig`] whose message names the key and the fix,
//! such as ``config key `colour`: unknown key; hello accepts `greeting` and `repeat` ``.
//! For your own checks use [`Error::config`] so every message has that shape.
//!
//! Read the configuration in one function and call it from both
//! [`Guest::validate_config`] and [`Guest::run`], as above: then every
//! problem is caught at start-up, not at the first tick.
//!
//! ## Output
//!
//! * JSON log lines: [`Output::json_lines`] serializes any `serde::Serialize`
//!   values (`serde_json::json!` is re-exported as [`serde_json`]).
//! * EMF metrics: enable the `emf` feature and compose with
//!   [`emf::MetricsLogger`](https://docs.rs/cwpub-emf), which only ever
//!   produces valid documents and splits above 100 metrics:
//!
//! ```toml
//! cwpub-guest = { git = "https://github.com/cwpub/cwpub", features = ["emf"] }
//! ```
//!
#![cfg_attr(feature = "emf", doc = "```")]
#![cfg_attr(not(feature = "emf"), doc = "```ignore")]
//! use cwpub_guest::emf::Unit;
//! # use cwpub_guest::{Context, Output, Result};
//!
//! fn run(ctx: &Context) -> Result<Output> {
//!     let mut metrics = ctx.metrics_logger("MyApp")?; // stamped with ctx.actual
//!     metrics.put_metric("QueueDepth", 42.0, Unit::Count)?;
//!     Output::from_metrics(&mut metrics)
//! }
//! # let output = run(&Context::new("job", "2026-01-01T00:00:00Z".parse().unwrap())).unwrap();
//! # assert!(output.events[0].message.contains(r#""QueueDepth":42"#));
//! ```
//!
//! Each message must be non-empty, on one line and at most 1,048,550 bytes;
//! the host drops (and counts) others, never truncating them.
//!
//! ## Testing
//!
//! Guests build natively too, so plain unit tests can call the guest with a
//! context you build: [`Context::new`], [`Config::new`], and
//! [`Context::run_for`] / [`Config::validate_for`], which apply the same key
//! checks as the host. Diagnostics go to stderr outside WebAssembly.
//!
//! ```
//! # use cwpub_guest::{Context, Guest, Output, Result, Timestamp};
//! # struct Hello;
//! # impl Guest for Hello {
//! #     const NAME: &'static str = "hello";
//! #     const CONFIG_KEYS: &'static [&'static str] = &[];
//! #     fn run(ctx: &Context) -> Result<Output> {
//! #         Output::json_lines(ctx.actual, [ctx.host.hostname.as_str()])
//! #     }
//! # }
//! let mut ctx = Context::new("hello", "2026-01-01T00:00:00Z".parse().unwrap());
//! ctx.host.hostname = "ip-10-0-0-1".into();
//! let output = ctx.run_for::<Hello>().unwrap();
//! assert_eq!(output.events[0].message, r#""ip-10-0-0-1""#);
//! ```
//!
//! To test the built component in the real sandbox, with a fixed clock and
//! host facts, write the cases in a TOML file and run `cwpub test`
//! (see `docs/writing-guests.md` in the cwpub repository).
//!
//! ## Versions
//!
//! [`WIT_VERSION`] is the version of the `cwpub:publisher` contract this SDK
//! builds guests against. Within `0.1.x` the contract only grows, so a guest
//! built with this SDK runs on every host that speaks `0.1.x` of at least this
//! version; a host that is too old refuses the guest at load time with a
//! message to upgrade cwpub. The compatibility table of host, contract and SDK
//! versions is in `docs/writing-guests.md`.

#![warn(missing_docs)]

mod config;
mod context;
mod error;
mod export;
pub mod log;
mod output;
mod time;

pub use config::Config;
pub use context::{Context, Delivery, Host};
pub use error::{Error, Result};
pub use log::Level;
pub use output::{Event, Output, PayloadKind};
pub use time::{ParseTimestampError, Timestamp};

/// `chrono`, for calendar arithmetic and other time formats ([`Timestamp::datetime`]).
pub use chrono;
/// `serde_json`, for composing JSON log lines (`serde_json::json!`).
pub use serde_json;

/// `cwpub-emf`, the EMF builder and validator (feature `emf`): compose EMF
/// documents with [`emf::MetricsLogger`], which refuses any input that would
/// make an invalid document.
#[cfg(feature = "emf")]
pub use cwpub_emf as emf;

/// The WIT contract between guests and the cwpub host, `wit/publisher.wit`,
/// with every item documented for plugin authors. Tools that generate
/// bindings for other languages (e.g. componentize-py) read it from a file;
/// `cwpub new --lang python` writes this text into the project.
pub const WIT: &str = include_str!("../../wit/publisher.wit");

/// The version of the `cwpub:publisher` WIT package this SDK targets
/// (the `@version` of its `package` line).
pub const WIT_VERSION: &str = "0.1.0";

/// What a cwpub guest implements. Implement it on a unit struct and pass the
/// struct to [`export!`].
///
/// The functions take no `self`: the host creates a fresh instance for every
/// call, so there is no state to keep between them.
pub trait Guest {
    /// The guest's name in messages, e.g. ``config key `x`: unknown key; hello accepts …``.
    const NAME: &'static str;

    /// The configuration keys this guest accepts. A pattern is a key
    /// (`"service"`) or a prefix followed by a `<placeholder>`
    /// (`"field.<name>"`), accepting every key with that prefix and a
    /// non-empty rest; `&["<key>"]` accepts any key, `&[]` none. The SDK
    /// refuses unknown and repeated keys before calling the guest.
    const CONFIG_KEYS: &'static [&'static str];

    /// Checks the job's configuration when the host loads the job, after the
    /// key check. Return [`Error::InvalidConfig`] (see [`Error::config`]) for
    /// a missing or malformed value. The default accepts anything that passed
    /// the key check; override it when [`run`](Guest::run) reads keys that
    /// could be wrong.
    fn validate_config(config: &Config) -> Result<()> {
        let _ = config;
        Ok(())
    }

    /// Composes this tick's payload.
    fn run(ctx: &Context) -> Result<Output>;
}

/// Exports a type implementing [`Guest`] as the guest's implementation of the
/// `cwpub:publisher` contract. Call it once, at the top level of the crate:
///
/// ```
/// # use cwpub_guest::{Context, Guest, Output, PayloadKind, Result};
/// struct Quiet;
///
/// impl Guest for Quiet {
///     const NAME: &'static str = "quiet";
///     const CONFIG_KEYS: &'static [&'static str] = &[];
///
///     fn run(_ctx: &Context) -> Result<Output> {
///         Ok(Output::none(PayloadKind::JsonLog))
///     }
/// }
///
/// cwpub_guest::export!(Quiet);
/// ```
#[macro_export]
macro_rules! export {
    ($guest:ty) => {
        const _: () = {
            type __CwpubGuest = $crate::__private::Adapter<$guest>;
            $crate::__private::bindings::export_raw!(
                __CwpubGuest with_types_in $crate::__private::bindings
            );
        };
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::export::{Adapter, bindings};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wit_version_matches_the_package_line() {
        let line = WIT
            .lines()
            .find(|l| l.starts_with("package "))
            .expect("a package line");
        assert_eq!(line, format!("package cwpub:publisher@{WIT_VERSION};"));
    }
}
