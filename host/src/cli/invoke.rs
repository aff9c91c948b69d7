//! `cwpub invoke`: one tick of one guest, events printed to stdout one per
//! line exactly as they would be sent; failures on stderr with a non-zero exit.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use cwpub::event::{Submission, Target};
use cwpub::guest::{GuestSource, HostFacts, RunError, RunLimits, RunRequest, Runtime};
use cwpub::ledger::DropReason;
use cwpub::sink::stdout;
use cwpub::untrusted::GuestText;
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
    /// The region reported to the guest as a host fact.
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// Wall-clock deadline for the run, in milliseconds.
    #[arg(long, default_value_t = RunLimits::DEFAULT_DEADLINE.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    timeout_ms: u64,
    /// Linear-memory cap for the guest, in MiB (1 to 1024).
    #[arg(long, default_value_t = (RunLimits::DEFAULT_MAX_MEMORY_BYTES >> 20) as u64,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
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
    let limits = RunLimits {
        deadline: Duration::from_millis(args.timeout_ms),
        // clap bounds memory_mb to 1..=1024, so this fits RunLimits::MAX_MEMORY_CEILING.
        max_memory_bytes: (args.memory_mb as usize) << 20,
        ..RunLimits::default()
    };
    let source = GuestSource::parse(&args.guest)?;
    let runtime = Runtime::new()?;
    let guest = runtime.load(&source).await?;

    let job: Arc<str> = args.job.into();
    let config: Arc<[(String, String)]> = args.config.into();
    if let Err(e) = guest.validate_config(&job, &config, &limits).await {
        report_failure(&e);
        return Ok(ExitCode::FAILURE);
    }
    let facts = HostFacts {
        region: args.region,
        ..HostFacts::from_process()
    };
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
                    // A violation quotes the guest's keys and values.
                    eprintln!("  - {}", GuestText::new(&v.to_string()));
                }
            }
            Ok(if refused.is_empty() && framing.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            report_failure(&e);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Shows a failed call: the guest's stderr line by line, then what went wrong.
fn report_failure(e: &RunError) {
    forward_guest_stdio(&GuestText::default(), &e.stderr);
    eprintln!("error: {}", e.headline());
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

/// Shows what the guest printed on stderr (so stdout stays pure events), one
/// record per line, each line escaped and capped; what the capture kept is
/// the end of the output, so an over-long first line starts with a cut marker.
fn forward_guest_stdio(stdout: &GuestText, stderr: &GuestText) {
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        if text.is_empty() {
            continue;
        }
        for line in text.lines() {
            eprintln!("guest {name} | {line}");
        }
    }
}

/// Logs to stderr: warnings from the host and everything the guest sends
/// through `diagnostics.log`; `RUST_LOG` overrides.
pub fn init_logging() {
    cwpub::observe::init_cli_logging(&format!("warn,{}=trace", cwpub::guest::DIAGNOSTICS_TARGET));
}
