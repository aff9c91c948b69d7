//! `cwpub check <config>`: loads the config and every guest, runs each
//! guest's config validation, runs nothing; exit 0 when all is well, 1 with
//! every problem listed otherwise.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cwpub::config;
use cwpub::daemon::prepare;
use cwpub::guest::Runtime;

/// Arguments of `cwpub check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The TOML config file.
    config: PathBuf,
}

/// Runs the command.
pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    super::invoke::init_logging();
    let config = match config::load(&args.config, &config::process_env()) {
        Ok(config) => config,
        Err(e) => return Ok(report(&e)),
    };
    let runtime = Runtime::with_options(&config.runtime)?;
    match prepare(&config, &runtime).await {
        Ok(jobs) => {
            let sinks: Vec<String> = config
                .sinks
                .list
                .iter()
                .map(|s| format!("{} ({})", s.name, s.kind().as_str()))
                .collect();
            println!(
                "{}: OK ({} job{}; sink{} {})",
                args.config.display(),
                jobs.len(),
                plural(jobs.len()),
                plural(sinks.len()),
                sinks.join(", ")
            );
            for job in &jobs {
                let destinations: Vec<String> = job
                    .config
                    .sinks
                    .iter()
                    .filter_map(|name| config.sinks.get(name))
                    .map(|s| destination(&s.target(&job.config)))
                    .collect();
                println!(
                    "  {}: {} on {:?} → {} ({})",
                    job.config.name,
                    job.guest.name(),
                    job.config.schedule.as_str(),
                    destinations.join(", "),
                    format_args!("cwpub:publisher@{}", job.guest.wit_version()),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(report(&e)),
    }
}

/// A job's destination at one sink: `sink` or `sink group:stream`.
fn destination(target: &cwpub::event::Target) -> String {
    if target.labels.is_empty() {
        target.sink.to_string()
    } else {
        format!("{} {target}", target.sink)
    }
}

/// Prints every problem on stderr and returns the failure exit code.
pub fn report(e: &config::ConfigError) -> ExitCode {
    let n = e.problems.len();
    eprintln!("error: the config has {n} problem{}:", plural(n));
    for line in e.lines() {
        eprintln!("  {line}");
    }
    ExitCode::FAILURE
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
