//! The per-job driver: sleeps until each fire time on an injected [`Clock`],
//! applies run-at-start and jitter, never lets a job overlap itself, counts
//! (rather than replays) ticks missed while the process was suspended, and
//! stops on a cancellation token after the run in flight has finished.
//!
//! Each job gets its own `drive` future, and each run is spawned as its own
//! tokio task, so a slow guest delays neither its own schedule nor any other job.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::clock::Clock;
use super::spec::Schedule;

/// Counting more missed ticks than this after one wake-up stops (the count saturates).
pub const MISSED_COUNT_CAP: u64 = 100_000;

/// One firing of a job, handed to the job's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// When the schedule meant this run to happen (for run-at-start: the start time).
    pub scheduled: DateTime<Utc>,
    /// When the driver actually fired it (after any jitter and wake-up delay).
    pub fired: DateTime<Utc>,
    /// Run counter for the job, from 1; skipped ticks also consume a number.
    pub sequence: u64,
    /// Ticks that fell due since the previous one but were not run (e.g. the
    /// process was suspended); this tick is the latest of them.
    pub missed_before: u64,
    /// True for the run-at-start run.
    pub at_start: bool,
}

/// How one job is driven.
#[derive(Debug, Clone, Default)]
pub struct DriveOptions {
    /// The job's name, used in log messages.
    pub job: String,
    /// Fire once immediately when driving starts, before the first scheduled tick.
    pub run_at_start: bool,
    /// Delay each scheduled run by a random offset in `[0, jitter)`, capped at
    /// the gap to the following fire time. Zero disables jitter.
    pub jitter: Duration,
    /// Seed for the jitter generator (tests); `None` seeds from the OS.
    pub seed: Option<u64>,
    /// Where the driver counts what it does; share it with the metrics registry.
    pub stats: Arc<DriveStats>,
    /// The sequence number of the last tick before this driver (a reload
    /// that changed the job's schedule continues its numbering).
    pub last_sequence: u64,
}

/// Live counters of one job's driver (lock-free, shared).
#[derive(Debug, Default)]
pub struct DriveStats {
    ticks: AtomicU64,
    runs_started: AtomicU64,
    runs_finished: AtomicU64,
    runs_panicked: AtomicU64,
    skipped_overlap: AtomicU64,
    missed: AtomicU64,
    running: AtomicBool,
    last_scheduled_ms: AtomicI64,
}

/// A point-in-time copy of [`DriveStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DriveStatsSnapshot {
    /// Ticks that fell due and were acted on (run or skipped), including run-at-start.
    pub ticks: u64,
    /// Runs started.
    pub runs_started: u64,
    /// Runs whose action completed (successfully or not, as far as the driver knows).
    pub runs_finished: u64,
    /// Runs whose action panicked.
    pub runs_panicked: u64,
    /// Ticks skipped because the previous run was still going.
    pub skipped_overlap: u64,
    /// Ticks missed (never run) because the process was suspended or the clock jumped.
    pub missed: u64,
    /// Whether a run is in flight right now.
    pub running: bool,
    /// Scheduled time of the last tick acted on, ms since the Unix epoch (0 = none yet).
    pub last_scheduled_ms: i64,
}

impl DriveStats {
    /// Fresh counters, ready to share.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A consistent-enough copy of every counter.
    pub fn snapshot(&self) -> DriveStatsSnapshot {
        DriveStatsSnapshot {
            ticks: self.ticks.load(Ordering::Relaxed),
            runs_started: self.runs_started.load(Ordering::Relaxed),
            runs_finished: self.runs_finished.load(Ordering::Relaxed),
            runs_panicked: self.runs_panicked.load(Ordering::Relaxed),
            skipped_overlap: self.skipped_overlap.load(Ordering::Relaxed),
            missed: self.missed.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            last_scheduled_ms: self.last_scheduled_ms.load(Ordering::Relaxed),
        }
    }
}

/// Marks the run finished (or panicked, if dropped while unwinding) when dropped.
struct RunGuard {
    stats: Arc<DriveStats>,
    completed: bool,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if self.completed {
            self.stats.runs_finished.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.runs_panicked.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.running.store(false, Ordering::Relaxed);
    }
}

/// Drives one job until `shutdown` is cancelled (or the schedule has no
/// further fire time), calling `action` for every tick that is run, then waits
/// for the run in flight to finish and returns the final counters.
///
/// Semantics: with `run_at_start` the first run fires at once; each later run
/// fires at its schedule time plus jitter; a tick that finds the previous run
/// still going is skipped and counted (its sequence number is used up); when
/// the clock jumps past several ticks (suspend, clock step) only the latest
/// runs and the others are counted as missed; a clock stepped backwards simply
/// delays the next run until the clock reaches it again.
///
/// Must be called inside a tokio runtime: each run is spawned as a task, so a
/// slow run never delays the schedule, and a panicking run is counted (not fatal).
pub async fn drive<F, Fut>(
    schedule: Schedule,
    opts: DriveOptions,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    mut action: F,
) -> DriveStatsSnapshot
where
    F: FnMut(Tick) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let stats = opts.stats.clone();
    let mut rng = match opts.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_rng(&mut rand::rng()),
    };
    let mut running: Option<JoinHandle<()>> = None;
    let mut sequence = opts.last_sequence;
    let start = clock.now();
    let mut cursor = start;
    let mut timer = clock.timer();

    // Ticks skipped in a row behind one long run: the first is logged as a
    // warning, the rest at debug level and in one line when the run ends, so
    // a guest that runs for an hour on a 1 s schedule logs two lines, not 3,600.
    let mut skipped_in_a_row = 0u64;
    let mut fire = |tick: Tick, running: &mut Option<JoinHandle<()>>| {
        stats.ticks.fetch_add(1, Ordering::Relaxed);
        stats
            .last_scheduled_ms
            .store(tick.scheduled.timestamp_millis(), Ordering::Relaxed);
        if running.as_ref().is_some_and(|h| !h.is_finished()) {
            stats.skipped_overlap.fetch_add(1, Ordering::Relaxed);
            if skipped_in_a_row == 0 {
                tracing::warn!(
                    job = %opts.job,
                    scheduled = %tick.scheduled,
                    sequence = tick.sequence,
                    "tick skipped: the previous run is still going (further skips are counted \
                     in cwpub_job_ticks_skipped_total until it ends)"
                );
            } else {
                tracing::debug!(job = %opts.job, sequence = tick.sequence, "tick skipped again");
            }
            skipped_in_a_row += 1;
            return;
        }
        if skipped_in_a_row > 1 {
            tracing::info!(
                job = %opts.job,
                skipped = skipped_in_a_row,
                "{skipped_in_a_row} ticks in a row were skipped while one run was going"
            );
        }
        skipped_in_a_row = 0;
        stats.runs_started.fetch_add(1, Ordering::Relaxed);
        stats.running.store(true, Ordering::Relaxed);
        let fut = action(tick);
        let guard_stats = stats.clone();
        *running = Some(tokio::spawn(async move {
            let mut guard = RunGuard {
                stats: guard_stats,
                completed: false,
            };
            fut.await;
            guard.completed = true;
        }));
    };

    if opts.run_at_start && !shutdown.is_cancelled() {
        sequence += 1;
        let tick = Tick {
            scheduled: start,
            fired: start,
            sequence,
            missed_before: 0,
            at_start: true,
        };
        tracing::debug!(job = %opts.job, "run at start");
        fire(tick, &mut running);
    }

    loop {
        let Some(next) = schedule.next_after(cursor) else {
            tracing::info!(job = %opts.job, schedule = %schedule, "schedule has no further fire time");
            break;
        };
        let offset = jitter_offset(&schedule, next, opts.jitter, &mut rng);
        let wake = next.checked_add_signed(offset).unwrap_or(next);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = timer.sleep_until(wake) => {}
        }
        let now = clock.now();
        // Ticks after `next` that are already due (only after a suspend or a
        // clock jump): run the latest, count the rest as missed.
        let later = schedule.count_between(next, now, MISSED_COUNT_CAP);
        let (scheduled, missed) = if later == 0 {
            (next, 0)
        } else {
            (
                schedule.latest_at_or_before(next, now).unwrap_or(next),
                later,
            )
        };
        if missed > 0 {
            stats.missed.fetch_add(missed, Ordering::Relaxed);
            tracing::warn!(
                job = %opts.job,
                missed,
                running = %scheduled,
                "ticks missed (the process was suspended or the clock jumped); running the latest only"
            );
        }
        cursor = scheduled;
        sequence += 1;
        fire(
            Tick {
                scheduled,
                fired: now,
                sequence,
                missed_before: missed,
                at_start: false,
            },
            &mut running,
        );
    }

    if let Some(handle) = running.take() {
        // The run enforces its own deadline; a panic is already counted by the guard.
        let _ = handle.await;
    }
    stats.snapshot()
}

/// A random delay in `[0, min(jitter, gap to the following fire time))`.
fn jitter_offset(
    schedule: &Schedule,
    next: DateTime<Utc>,
    jitter: Duration,
    rng: &mut StdRng,
) -> chrono::Duration {
    let jitter_ms = i64::try_from(jitter.as_millis()).unwrap_or(i64::MAX);
    if jitter_ms <= 0 {
        return chrono::Duration::zero();
    }
    let gap_ms = schedule
        .next_after(next)
        .map(|following| (following - next).num_milliseconds())
        .unwrap_or(jitter_ms);
    let bound = jitter_ms.min(gap_ms);
    if bound <= 0 {
        return chrono::Duration::zero();
    }
    chrono::Duration::milliseconds(rng.random_range(0..bound))
}
