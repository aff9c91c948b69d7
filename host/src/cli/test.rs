//! `cwpub test [<guest>] [--cases FILE]`: runs a guest against a file of
//! test cases (see [`cwpub::harness`]) and prints one line per case, a diff
//! for every failure and a summary. Exit 0 when every case passed, 1 when
//! one failed, 2 when the cases could not run (bad case file, failed build,
//! guest that does not load).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context as _;
use clap::Args;
use cwpub::guest::{Codegen, GuestSource, Runtime, RuntimeOptions};
use cwpub::harness::capture::{self, DiagnosticsCapture};
use cwpub::harness::render::printable_lines;
use cwpub::harness::{CaseReport, Suite, cases, run_suite};
use tracing_subscriber::Layer as _;

/// Exit code when the cases could not be run at all.
const CANNOT_RUN: u8 = 2;

/// Arguments of `cwpub test`.
#[derive(Args)]
pub struct TestArgs {
    /// The guest to test: a path to a .wasm component or `builtin:<name>`
    /// [default: the `guest` named in the case file].
    guest: Option<String>,
    /// The case file [default: cwpub-test.toml in the current directory].
    #[arg(long, value_name = "FILE")]
    cases: Option<PathBuf>,
    /// Run only the cases whose name contains this text (repeatable).
    #[arg(long = "case", value_name = "TEXT")]
    only: Vec<String>,
    /// Skip the case file's `build` command (skipped too when a guest is given).
    #[arg(long)]
    no_build: bool,
}

/// The case-file format, shown by `cwpub test --help`.
pub const AFTER_HELP: &str = r#"The case file (cwpub-test.toml):

  guest = "target/wasm32-wasip2/release/my_guest.wasm"  # relative to this file
  build = ["cargo", "build", "--target", "wasm32-wasip2", "--release"]  # optional, run first

  [defaults]                      # optional: any case key but name/expect
  config = { service = "orders-api" }

  [[case]]
  name = "one heartbeat"          # required, unique
  at = 2026-01-01T00:00:00Z       # the run's time (default); scheduled_at defaults to it
  sequence = 1                    # default 1
  hostname = "cwpub-test"         # default; also task_id, region, host_version,
  uptime_ms = 0                   # invocation_id (default 00000000-0000-4000-8000-<case #>)
  delivery = { events_dropped = 0 }   # the host's delivery counters (default all 0)
  timeout = "2s"                  # job limits: timeout, memory_mb, max_events,
                                  # max_output_bytes, max_stdio_bytes
  expect.kind = "json-log"        # or "emf"
  expect.count = 1                # number of events
  expect.events = ['{"a":1}']     # exact messages (or { message, timestamp } tables)
  expect.json = [{ event = "heartbeat" }]  # per event: a JSON subset it must contain

  [[case]]
  name = "service is required"
  config = {}
  expect.error = "invalid-config" # or transient, fatal, panic, trap, deadline, memory,
  expect.message = "service"      # stack-overflow, output-too-large, stdio-overflow, instantiate

Every case runs validate-config, then run, in a fresh sandboxed instance with
the job limits. A successful run must also pass the daemon's own checks (EMF
validation, size, CloudWatch's time window, one line per message).

Exit status: 0 all cases passed, 1 a case failed, 2 the cases could not run."#;

/// Runs the command.
pub async fn run(args: TestArgs) -> anyhow::Result<ExitCode> {
    let capture = init_logging();
    let cases_path = args
        .cases
        .clone()
        .unwrap_or_else(|| PathBuf::from(cases::DEFAULT_FILE));
    let mut suite = match Suite::load(&cases_path) {
        Ok(suite) => suite,
        Err(e) => {
            return Ok(cannot_run(&format!(
                "the case file has problems:\n  {}",
                e.lines.join("\n  ")
            )));
        }
    };
    if !args.only.is_empty() {
        suite
            .cases
            .retain(|c| args.only.iter().any(|text| c.name.contains(text.as_str())));
        if suite.cases.is_empty() {
            return Ok(cannot_run(&format!(
                "no case of {} has a name containing {}",
                cases_path.display(),
                args.only.join(" or ")
            )));
        }
    }
    let source = match &args.guest {
        Some(spec) => match GuestSource::parse(spec) {
            Ok(source) => source,
            Err(e) => return Ok(cannot_run(&e.to_string())),
        },
        None => match &suite.guest {
            Some(source) => source.clone(),
            None => {
                return Ok(cannot_run(&format!(
                    "{} names no guest; add `guest = \"path/to/guest.wasm\"` at its top or pass the guest: cwpub test <guest>",
                    cases_path.display()
                )));
            }
        },
    };
    // The build makes the file's guest; a guest given on the command line is used as it is.
    if let Some(command) = &suite.build
        && !args.no_build
        && args.guest.is_none()
        && let Err(e) = build(command, &cases_path)
    {
        return Ok(cannot_run(&e));
    }

    if let GuestSource::Path(path) = &source
        && !path.exists()
    {
        let fix = if args.guest.is_some() {
            "check the path"
        } else if suite.build.is_some() && args.no_build {
            "build it (run without --no-build)"
        } else if suite.build.is_some() {
            "the case file's `build` command did not make it; fix `guest` or `build`"
        } else {
            "build it first, or add a `build` command to the case file"
        };
        return Ok(cannot_run(&format!(
            "guest {} not found; {fix}",
            path.display()
        )));
    }
    // Guests are compiled after every edit and run a few times here: compile fast.
    let options = RuntimeOptions {
        codegen: Codegen::fastest_compile(),
        ..RuntimeOptions::from_env(&cwpub::env::process_env())
    };
    let runtime = Runtime::with_options(&options)?;
    let guest = match runtime.load(&source).await {
        Ok(guest) => guest,
        Err(e) => return Ok(cannot_run(&e.to_string())),
    };
    let total = suite.cases.len();
    println!(
        "running {} from {} against {} (cwpub:publisher@{})",
        plural(total, "case"),
        cases_path.display(),
        guest.name(),
        guest.wit_version()
    );
    let mut diagnostics = Vec::with_capacity(total);
    let reports = run_suite(&guest, &suite, |report| {
        diagnostics.push(capture.take());
        let status = if report.passed() { "ok" } else { "FAILED" };
        println!(
            "case {:?} ... {status} ({:.1} ms)",
            report.name,
            report.elapsed.as_secs_f64() * 1e3
        );
        let _ = std::io::stdout().flush();
    })
    .await;

    let failed: Vec<(&CaseReport, &Vec<String>)> = reports
        .iter()
        .zip(&diagnostics)
        .filter(|(r, _)| !r.passed())
        .collect();
    let mut out = std::io::stdout().lock();
    if !failed.is_empty() {
        writeln!(out, "\nfailures:").context("writing to stdout")?;
        for (report, diagnostics) in &failed {
            writeln!(out, "\n---- case {:?} ----", report.name).context("writing to stdout")?;
            write!(out, "{}", failure_text(report, diagnostics)).context("writing to stdout")?;
        }
        writeln!(out).context("writing to stdout")?;
    }
    writeln!(
        out,
        "result: {} passed, {} failed",
        total - failed.len(),
        failed.len()
    )
    .context("writing to stdout")?;
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every mismatch of a failed case, then what the guest said.
fn failure_text(report: &CaseReport, diagnostics: &[String]) -> String {
    let mut text = String::new();
    for (i, m) in report.mismatches.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(m.0.trim_end());
        text.push('\n');
    }
    let diagnostics = diagnostics.join("\n");
    if !diagnostics.trim().is_empty() {
        text.push_str("  guest diagnostics:\n");
        text.push_str(&printable_lines(&diagnostics, "    | ", 40));
    }
    for (title, output) in [
        ("guest stdout", &report.stdio.0),
        ("guest stderr", &report.stdio.1),
    ] {
        if !output.is_empty() {
            text.push_str(&format!("  {title}:\n"));
            for line in output.lines() {
                text.push_str(&format!("    | {line}\n"));
            }
        }
    }
    text
}

/// Runs the case file's `build` command in the file's directory; its output
/// goes to stderr so stdout stays the report.
fn build(command: &[String], cases_path: &Path) -> Result<(), String> {
    let dir = match cases_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let shown = command.join(" ");
    eprintln!("building: {shown}");
    let (program, args) = command.split_first().ok_or("`build` is empty")?;
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| {
            format!(
                "cannot run the build command `{shown}` in {}: {e}; install {program} or fix `build` in {}",
                dir.display(),
                cases_path.display()
            )
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the build command `{shown}` failed ({status}); fix the build, or run with --no-build to test the last built guest"
        ))
    }
}

fn cannot_run(message: &str) -> ExitCode {
    eprintln!("error: {}", printable_lines(message, "", 200).trim_end());
    ExitCode::from(CANNOT_RUN)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Logs host warnings and compile progress to stderr (`RUST_LOG` overrides)
/// and captures the guest's diagnostics for the report.
fn init_logging() -> DiagnosticsCapture {
    let capture = DiagnosticsCapture::default();
    let only_guest = tracing_subscriber::filter::Targets::new()
        .with_target(capture::GUEST_TARGET, tracing::Level::TRACE);
    super::logging::init(
        "warn,cwpub::guest::load=info,cwpub::guest=off,cwpub::validate=off",
        Some(capture.clone().with_filter(only_guest)),
    );
    capture
}
