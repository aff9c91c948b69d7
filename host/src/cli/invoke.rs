//! `cwpub invoke`: one tick of one guest, events printed to stdout one per
//! line exactly as they would be sent; failures on stderr with a non-zero exit.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::Args;
use cwpub::config::{self, HostIdentity, MEMORY_MB, TIMEOUT_MS};
use cwpub::delivery::check_region;
use cwpub::event::{Submission, Target};
use cwpub::guest::{GuestSource, HostFacts, RunLimits, RunRequest, Runtime, RuntimeOptions};
use cwpub::ledger::DropReason;
use cwpub::sink::stdout;
use cwpub::validate::Validator;

/// Arguments of `cwpub invoke`.
#[derive(Args)]
pub struct InvokeArgs {
    /// The guest: `builtin:heartbeat`, `builtin:emf`, or a path to a .wasm component.
    guest: String,
    /// A job config entry handed to the guest (repeatable), e.g. `--config service=orders-api`.
    #[arg(short, long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<(String, String)>,
    /// The job name the guest sees.
    #[arg(long, default_value = "invoke")]
    job: String,
    /// The run's sequence number.
    #[arg(long, default_value_t = 1)]
    sequence: u64,
    /// The region reported to the guest as a host fact [default: CWPUB_REGION,
    /// AWS_REGION or AWS_DEFAULT_REGION, as `cwpub run` reads them].
    #[arg(long)]
    region: Option<String>,
    /// Wall-clock deadline for the run, in milliseconds (as a job's `timeout`).
    #[arg(long, default_value_t = RunLimits::DEFAULT_DEADLINE.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(TIMEOUT_MS))]
    timeout_ms: u64,
    /// Linear-memory cap for the guest, in MiB (as a job's `memory_mb`).
    #[arg(long, default_value_t = (RunLimits::DEFAULT_MAX_MEMORY_BYTES >> 20) as u64,
          value_parser = clap::value_parser!(u64).range(MEMORY_MB))]
    memory_mb: u64,
    /// Print EMF documents even when they break the EMF specification (by
    /// default they are refused, as the daemon would, with every violation on stderr).
    #[arg(long)]
    no_check: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// Runs the command.
pub async fn run(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    // The same environment, read by the same rules, as `check` and `run`.
    let env = config::process_env();
    let region = match args.region.as_deref().map(str::trim) {
        Some(r) => {
            check_region(r).map_err(|e| anyhow!("--region {r:?}: {e}"))?;
            Some(r.to_owned())
        }
        None => config::region_from_env(&env).map_err(|e| anyhow!(e))?,
    };
    let limits = RunLimits {
        deadline: Duration::from_millis(args.timeout_ms),
        // clap bounds memory_mb to MEMORY_MB, so this fits RunLimits::MAX_MEMORY_CEILING.
        max_memory_bytes: (args.memory_mb as usize) << 20,
        ..RunLimits::default()
    };
    let source = GuestSource::parse(&args.guest)?;
    let runtime = Runtime::with_options(&RuntimeOptions::from_env(&env))?;
    let guest = runtime.load(&source).await?;

    let job: Arc<str> = args.job.into();
    let config: Arc<[(String, String)]> = args.config.into();
    if let Err(e) = guest.validate_config(&job, &config, &limits).await {
        eprintln!("error: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let facts = HostFacts::new(&HostIdentity::detect(&env), region);
    let request = RunRequest::now(job, args.sequence, config, facts);
    match guest.run(&request, &limits).await {
        Ok(output) => {
            forward_guest_stdio(&output.stdout, &output.stderr);
            let mut submission = Submission {
                job: request.job.clone(),
                kind: output.kind,
                target: Arc::new(Target {
                    log_group: "invoke".into(),
                    log_stream: "invoke".into(),
                }),
                events: output.events,
            };
            let refused = if args.no_check {
                Vec::new()
            } else {
                Validator::default().check(&mut submission, chrono::Utc::now().timestamp_millis())
            };
            let framing = framing_problems(&submission.events);
            let mut stdout = std::io::stdout().lock();
            for event in &submission.events {
                writeln!(stdout, "{}", event.message).context("writing to stdout")?;
            }
            stdout.flush().context("writing to stdout")?;
            for problem in &framing {
                eprintln!("error: job \"{}\": {problem}", request.job);
            }
            for r in &refused {
                eprintln!(
                    "error: job \"{}\": event {} is not valid EMF and would be dropped:",
                    request.job, r.index
                );
                for v in &r.violations {
                    eprintln!("  - {v}");
                }
            }
            Ok(if refused.is_empty() && framing.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Events every sink would drop whatever their payload: empty, over the
/// CloudWatch size limit, or (for the stdout sink) spanning several lines.
fn framing_problems(events: &[cwpub::event::LogEvent]) -> Vec<String> {
    let max = cwpub::delivery::limits::MAX_EVENT_BYTES;
    let mut problems = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let len = event.message.len();
        let problem = if len > max {
            format!(
                "event {i} is {len} bytes, over CloudWatch's {max}-byte limit, and would be dropped"
            )
        } else {
            match stdout::drop_reason(&event.message) {
                Some(DropReason::EmptyMessage) => {
                    format!("event {i} is empty and would be dropped")
                }
                Some(_) => format!(
                    "event {i} spans several lines: the stdout sink would drop it (CloudWatch would store it as is)"
                ),
                None => continue,
            }
        };
        problems.push(problem);
    }
    problems
}

/// Shows what a successful guest printed, on stderr, so stdout stays pure events.
fn forward_guest_stdio(stdout: &str, stderr: &str) {
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        for line in text.lines() {
            eprintln!("guest {name} | {line}");
        }
    }
}

/// Logs to stderr: warnings from the host and everything the guest sends
/// through `diagnostics.log`; `RUST_LOG` overrides.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,cwpub::guest=trace"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
