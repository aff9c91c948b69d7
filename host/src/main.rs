//! The `cwpub` command line: parses arguments and dispatches to the commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// Runs sandboxed WebAssembly guests on a schedule and delivers the log events
/// and EMF metrics they compose to CloudWatch Logs.
#[derive(Parser)]
#[command(name = "cwpub", version, about, long_about = None, propagate_version = true)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one tick of a guest and print each event's message on its own line,
    /// exactly as it would be sent.
    ///
    /// Examples:
    ///   cwpub invoke builtin:heartbeat --config service=orders-api
    ///   cwpub invoke builtin:emf | jq .
    ///   cwpub invoke ./my-guest.wasm --job my-job --timeout-ms 500
    #[command(verbatim_doc_comment)]
    Invoke(Box<cli::invoke::InvokeArgs>),
    /// Run every job of a config file on its schedule until SIGTERM/SIGINT.
    ///
    /// Example: cwpub run examples/quickstart.toml
    Run(cli::run::RunArgs),
    /// Check a config file and every guest it names, without running anything.
    ///
    /// Exits 0 when everything is valid, 1 listing every problem otherwise.
    Check(cli::check::CheckArgs),
    /// Ask a running daemon's /healthz (or /readyz with --ready); exit 0 when it
    /// answers 200, 1 otherwise. For container health checks and exec probes.
    ///
    /// Examples:
    ///   cwpub health                          # 127.0.0.1:9464 or CWPUB_OBSERVE_LISTEN
    ///   cwpub health /etc/cwpub/cwpub.toml --ready
    ///   cwpub health --addr 127.0.0.1:9464 --timeout 1s
    #[command(verbatim_doc_comment)]
    Health(cli::health::HealthArgs),
    /// Create a guest project (Rust or Python) that builds and passes its tests.
    ///
    /// Examples:
    ///   cwpub new hello
    ///   cwpub new my-metrics --kind emf
    ///   cwpub new hello-py --lang python
    #[command(verbatim_doc_comment)]
    New(cli::new::NewArgs),
    /// Run a guest against a file of test cases (cwpub-test.toml by default)
    /// with a fixed clock, host facts and delivery counters; print a diff for
    /// every case that fails.
    ///
    /// Examples:
    ///   cwpub test                      # in a guest project: reads ./cwpub-test.toml
    ///   cwpub test --cases tests/cases.toml target/wasm32-wasip2/release/my_guest.wasm
    ///   cwpub test --case heartbeat     # only the cases whose name contains "heartbeat"
    #[command(verbatim_doc_comment, after_long_help = cli::test::AFTER_HELP)]
    Test(cli::test::TestArgs),
}

fn main() -> ExitCode {
    bound_allocator_arenas();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match args.command {
            Command::Invoke(invoke) => cli::invoke::run(*invoke).await,
            Command::Run(run) => cli::run::run(run).await,
            Command::Check(check) => cli::check::run(check).await,
            Command::Health(health) => cli::health::run(health).await,
            Command::New(new) => cli::new::run(new),
            Command::Test(test) => cli::test::run(test).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Lets all threads share two glibc malloc arenas instead of one arena per
/// thread (up to eight per CPU): the host allocates little and rarely, so
/// contention is negligible, and an idle daemon keeps ~2 MiB less resident
/// (docs/benchmarks.md). Must run before any thread is started.
fn bound_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts glibc's allocator parameters; called
    // before any other thread exists, it races with nothing.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
