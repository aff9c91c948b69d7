//! `cwpub invoke`: one tick of one guest, events printed to stdout one per
//! line exactly as they would be sent; failures, and events the daemon would
//! drop, on stderr with a non-zero exit. Flags can pin the run context (time,
//! host facts, delivery counters) to reproduce a run exactly. `--sink` shows
//! what one sink would send instead (a DataDog log item per line, a series
//! payload), with a config's sink settings under `--from`.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::Args;
use cwpub::config::{self, HostIdentity, MEMORY_MB, SinkSettings, TIMEOUT_MS};
use cwpub::guest::{
    FixedContext, GuestSource, HostFacts, RunError, RunLimits, RunRequest, Runtime, RuntimeOptions,
};
use cwpub::harness::{checks, context};
use cwpub::sinks::cloudwatch::check_region;
use cwpub::sinks::datadog;
use cwpub::untrusted::GuestText;

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
    /// Run as if at this time (RFC 3339, e.g. 2026-01-01T00:00:00Z) instead of now.
    #[arg(long, value_name = "TIME", value_parser = context::parse_time)]
    at: Option<u64>,
    /// When the schedule meant the run to happen [default: the run's time].
    #[arg(long, value_name = "TIME", value_parser = context::parse_time)]
    scheduled_at: Option<u64>,
    /// The run's invocation id [default: a fresh UUID].
    #[arg(long, value_name = "ID")]
    invocation_id: Option<String>,
    /// The host name the guest sees [default: CWPUB_HOSTNAME, else this machine's].
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// The orchestrator task id the guest sees [default: CWPUB_TASK_ID, else none].
    #[arg(long, value_name = "ID")]
    task_id: Option<String>,
    /// The region reported to the guest as a host fact [default: CWPUB_REGION,
    /// AWS_REGION or AWS_DEFAULT_REGION, as `cwpub run` reads them].
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// The host version the guest sees [default: this cwpub's].
    #[arg(long, value_name = "VERSION")]
    host_version: Option<String>,
    /// The host's uptime the guest sees, in milliseconds [default: 0].
    #[arg(long, value_name = "MS")]
    uptime_ms: Option<u64>,
    /// A delivery counter the guest sees (repeatable), e.g. `--delivery events_dropped=2`;
    /// the others stay 0. Counters: events_delivered, bytes_delivered, events_dropped,
    /// events_pending, requests, retries, throttled, runs_succeeded, runs_failed.
    #[arg(long = "delivery", value_name = "NAME=VALUE", value_parser = context::parse_counter)]
    delivery: Vec<(&'static str, u64)>,
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
    /// Print what this sink would send: a sink kind (`stdout`, `cloudwatch`,
    /// `datadog`, with default settings), or with `--from` the name of a
    /// sink in that config. A DataDog sink prints each log item on its own
    /// line, or the series payload of an EMF run.
    #[arg(long, value_name = "NAME")]
    sink: Option<String>,
    /// The config file whose sink `--sink` names.
    #[arg(long, value_name = "CONFIG", requires = "sink")]
    from: Option<std::path::PathBuf>,
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
    let sink = match &args.sink {
        Some(name) => match sink_settings(name, args.from.as_deref(), &env) {
            Ok(settings) => Some(settings),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::FAILURE);
            }
        },
        None => None,
    };
    let source = GuestSource::parse(&args.guest)?;
    let runtime = Runtime::with_options(&RuntimeOptions::from_env(&env))?;
    let guest = runtime.load(&source).await?;

    let job: Arc<str> = args.job.into();
    let config: Arc<[(String, String)]> = args.config.into();
    if let Err(e) = guest.validate_config(&job, &config, &limits).await {
        report_failure(&e);
        return Ok(ExitCode::FAILURE);
    }
    let fixed = FixedContext {
        at_ms: args.at,
        scheduled_ms: args.scheduled_at,
        invocation_id: args.invocation_id,
        hostname: args.hostname,
        task_id: args.task_id,
        // Resolved above into the host's facts.
        region: None,
        host_version: args.host_version,
        uptime_ms: args.uptime_ms,
        delivery: (!args.delivery.is_empty()).then(|| context::counters(&args.delivery)),
    };
    let request = RunRequest::fixed(
        job,
        args.sequence,
        config,
        HostFacts::new(&HostIdentity::detect(&env), region),
        &fixed,
    );
    match guest.run(&request, &limits).await {
        Ok(output) => {
            forward_guest_stdio(&output.stdout, &output.stderr);
            let mut dropped =
                checks::would_drop(&request.job, output.kind, &output.events, request.actual_ms);
            if args.no_check {
                dropped.retain(|d| d.violations.is_empty());
            }
            // Invalid EMF is refused, as the daemon would; other drops are still shown.
            let events: Vec<_> = output
                .events
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    !dropped
                        .iter()
                        .any(|d| d.index == *i && !d.violations.is_empty())
                })
                .map(|(_, e)| e.clone())
                .collect();
            let mut lines: Vec<String> = events.iter().map(|e| e.message.clone()).collect();
            if let Some(SinkSettings::DataDog(dd)) = &sink {
                let hostname = args_hostname(&request);
                let preview = datadog::preview(
                    output.kind,
                    &events,
                    dd,
                    hostname.as_deref(),
                    i64::try_from(request.actual_ms).unwrap_or(i64::MAX),
                );
                lines = preview.bodies;
                // DataDog's own limits replace CloudWatch's; invalid EMF stays refused.
                dropped.retain(|d| !d.violations.is_empty());
                for (_, why) in &preview.skipped {
                    dropped.push(checks::Dropped {
                        index: usize::MAX,
                        reason: format!("DataDog would drop an event ({}): {}", why.1, why.0),
                        violations: Vec::new(),
                    });
                }
            }
            let mut stdout = std::io::stdout().lock();
            for line in &lines {
                writeln!(stdout, "{line}").context("writing to stdout")?;
            }
            stdout.flush().context("writing to stdout")?;
            for d in &dropped {
                let colon = if d.violations.is_empty() { "" } else { ":" };
                eprintln!("error: job \"{}\": {}{colon}", request.job, d.reason);
                for v in &d.violations {
                    // A violation quotes the guest's keys and values.
                    eprintln!("  - {}", GuestText::new(&v.to_string()));
                }
            }
            Ok(if dropped.is_empty() {
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

/// The settings of the sink `--sink` names: a kind with default settings,
/// or a sink of the config `--from` names.
fn sink_settings(
    name: &str,
    from: Option<&std::path::Path>,
    env: &config::Env,
) -> Result<SinkSettings, String> {
    match from {
        Some(path) => {
            let cfg = config::load(path, env).map_err(|e| {
                format!(
                    "{}: the config has problems (cwpub check lists them): {}",
                    path.display(),
                    e.lines().join("; ")
                )
            })?;
            cfg.sinks
                .get(name)
                .map(|s| s.settings.clone())
                .ok_or_else(|| {
                    format!(
                        "--sink {name:?}: {} has no such sink; its sinks are {}",
                        path.display(),
                        cfg.sinks.names()
                    )
                })
        }
        None => match name.trim() {
            "stdout" => Ok(SinkSettings::Stdout),
            "cloudwatch" => Ok(SinkSettings::CloudWatch(Default::default())),
            "datadog" => Ok(SinkSettings::DataDog(Default::default())),
            other => Err(format!(
                "--sink {other:?}: without --from, name a kind: stdout, cloudwatch or datadog; \
                 or name a sink of a config with --from <config>"
            )),
        },
    }
}

/// The host name the run saw (its host facts), as a sink would send it.
fn args_hostname(request: &RunRequest) -> Option<String> {
    Some(request.facts.hostname.clone()).filter(|h| !h.is_empty())
}

/// Shows a failed call: what went wrong, then the guest's stderr line by line.
fn report_failure(e: &RunError) {
    eprintln!("error: {}", e.headline());
    forward_guest_stdio(&GuestText::default(), &e.stderr);
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

/// Logs to stderr: warnings from the host, compile progress, and
/// everything the guest sends through `diagnostics.log`.
pub fn init_logging() {
    super::logging::init::<tracing_subscriber::layer::Identity>(
        &format!("warn,{}=trace", cwpub::guest::DIAGNOSTICS_TARGET),
        None,
    );
}
