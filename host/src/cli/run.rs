//! `cwpub run <config>`: the long-running daemon. SIGTERM or SIGINT stops
//! scheduling, lets running guests finish, drains every sink and logs a
//! summary; the exit status is 0 when the shutdown lost nothing (everything
//! held was delivered, or kept in a spool for the next start) and 1 when
//! events were lost at shutdown. Events dropped during the daemon's life are
//! in the summary and the metrics, not in the exit status. A second signal
//! exits at once. The handlers are installed before anything else, so as PID 1
//! of a container (where an unhandled SIGTERM is ignored) a signal sent
//! during start-up still stops the daemon gracefully.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cwpub::config;
use cwpub::daemon::{self, Summary};
use cwpub::observe;
use tokio_util::sync::CancellationToken;

/// Arguments of `cwpub run`.
#[derive(Args)]
pub struct RunArgs {
    /// The TOML config file.
    config: PathBuf,
}

/// Runs the command.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let signals = Signals::new();
    let env = config::process_env();
    let config = match config::load(&args.config, &env) {
        Ok(config) => config,
        Err(e) => return Ok(super::check::report(&e)),
    };
    observe::init_logging(&config.log, env.get("RUST_LOG").map(String::as_str))?;

    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(signals, shutdown.clone()));
    let summary = match daemon::run(config, &env, shutdown).await {
        Ok(summary) => summary,
        Err(e) => match e.downcast_ref::<config::ConfigError>() {
            Some(problems) => return Ok(super::check::report(problems)),
            None => return Err(e),
        },
    };
    log_summary(&summary);
    Ok(if summary.lost_at_shutdown() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A repeated signal within this window is the same request (a terminal and
/// a supervisor such as `timeout` may both deliver one Ctrl-C), not a second one.
const SECOND_SIGNAL_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

/// Cancels `shutdown` on the first SIGTERM/SIGINT; exits the process on the second.
async fn watch_signals(signals: std::io::Result<Signals>, shutdown: CancellationToken) {
    let mut signals = match signals {
        Ok(signals) => signals,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT; stop cwpub with SIGKILL");
            return;
        }
    };
    let mut first: Option<std::time::Instant> = None;
    loop {
        let (signal, code) = signals.next().await;
        match first {
            None => {
                shutdown.cancel();
                first = Some(std::time::Instant::now());
                tracing::info!(
                    signal,
                    "stopping gracefully (send it again to exit at once)"
                );
            }
            Some(at) if at.elapsed() < SECOND_SIGNAL_AFTER => {}
            Some(_) => {
                tracing::warn!(signal, "second signal: exiting without draining");
                std::process::exit(code);
            }
        }
    }
}

/// The termination signals, registered once so none is missed between waits.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Self> {
        Ok(Signals {})
    }

    /// The next signal's name and the conventional exit status for dying of it.
    #[cfg(unix)]
    async fn next(&mut self) -> (&'static str, i32) {
        tokio::select! {
            _ = self.term.recv() => ("SIGTERM", 143),
            _ = self.int.recv() => ("SIGINT", 130),
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> (&'static str, i32) {
        let _ = tokio::signal::ctrl_c().await;
        ("Ctrl-C", 130)
    }
}

fn log_summary(summary: &Summary) {
    let totals = &summary.stats.totals;
    let drops = |c: &cwpub::ledger::Counters| -> String {
        let by_reason: Vec<String> = c
            .drops
            .iter()
            .map(|(reason, n)| format!("{reason}={n}"))
            .collect();
        if by_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_reason.join(", "))
        }
    };
    let lost = summary.lost_at_shutdown();
    let message = format!(
        "cwpub stopped after {:.0?}: {} runs ok, {} failed; {} events delivered ({} bytes); {} dropped{}; {} undelivered at shutdown",
        summary.uptime,
        summary.runs.succeeded,
        summary.runs.failed,
        totals.events_sent,
        totals.bytes_sent,
        totals.dropped_total(),
        drops(totals),
        lost,
    );
    let spools: Vec<_> = summary
        .drains
        .iter()
        .filter_map(|(_, d)| d.spool.map(|sp| (d.spooled, sp)))
        .collect();
    let message = if spools.is_empty() {
        message
    } else {
        let sum =
            |f: fn(&(u64, cwpub::delivery::SpoolStats)) -> u64| spools.iter().map(f).sum::<u64>();
        format!(
            "{message}; spool: {} kept for the next start ({} bytes on disk), {} replayed at start, {} corrupt records skipped, {} possible duplicates",
            sum(|(kept, _)| *kept),
            sum(|(_, sp)| sp.bytes),
            sum(|(_, sp)| sp.replayed),
            sum(|(_, sp)| sp.corrupt_records),
            sum(|(_, sp)| sp.possible_duplicates),
        )
    };
    let clean = lost == 0 && totals.dropped_total() == 0;
    if clean {
        tracing::info!("{message}");
    } else {
        tracing::warn!("{message}");
    }
    if summary.drains.len() > 1 {
        for (name, d) in &summary.drains {
            let c = summary.stats.sink(name);
            let line = format!(
                "sink {name}: {} events delivered ({} bytes); {} dropped{}; {} undelivered at shutdown{}",
                c.events_sent,
                c.bytes_sent,
                c.dropped_total(),
                drops(&c),
                d.undelivered,
                if d.spool.is_some() {
                    format!("; {} kept in its spool for the next start", d.spooled)
                } else {
                    String::new()
                },
            );
            if d.undelivered == 0 && c.dropped_total() == 0 {
                tracing::info!(sink = &**name, "{line}");
            } else {
                tracing::warn!(sink = &**name, "{line}");
            }
        }
    }
    for (name, d) in &summary.drains {
        for (job, n) in &d.undelivered_per_job {
            tracing::warn!(
                sink = &**name,
                job = &**job,
                undelivered = n,
                "events of this job were not delivered before the drain deadline"
            );
        }
    }
}
