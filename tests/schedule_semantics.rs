//! Scheduler semantics with a controlled clock: cron boundaries, `@every`,
//! run-at-start, no self-overlap, missed ticks after a suspend, jitter bounds,
//! shutdown and per-job independence. Nothing here waits on real time except
//! generous timeouts that only fire when a test is broken.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cwpub::schedule::{
    Clock, DriveOptions, DriveStats, DriveStatsSnapshot, ManualClock, Schedule, Tick, drive,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(20);

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

/// One driven job under test.
struct Harness {
    clock: ManualClock,
    stats: Arc<DriveStats>,
    ticks: mpsc::UnboundedReceiver<Tick>,
    shutdown: CancellationToken,
    task: JoinHandle<DriveStatsSnapshot>,
}

/// Starts driving `schedule`; each run reports its tick, then waits for a
/// permit from `gate` if one is given (so a test controls how long runs last).
fn start(
    clock: &ManualClock,
    schedule: &str,
    run_at_start: bool,
    jitter: Duration,
    gate: Option<Arc<Semaphore>>,
) -> Harness {
    start_after(clock, schedule, run_at_start, jitter, gate, 0)
}

/// [`start`] for a driver that continues a job whose last tick was
/// `last_sequence` (a reload that changed its schedule).
fn start_after(
    clock: &ManualClock,
    schedule: &str,
    run_at_start: bool,
    jitter: Duration,
    gate: Option<Arc<Semaphore>>,
    last_sequence: u64,
) -> Harness {
    let stats = DriveStats::new();
    let (tx, rx) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let opts = DriveOptions {
        job: "test".into(),
        run_at_start,
        jitter,
        seed: Some(7),
        stats: stats.clone(),
        last_sequence,
    };
    let task = tokio::spawn(drive(
        Schedule::parse(schedule).expect("schedule"),
        opts,
        Arc::new(clock.clone()) as Arc<dyn Clock>,
        shutdown.clone(),
        move |tick| {
            let tx = tx.clone();
            let gate = gate.clone();
            async move {
                let _ = tx.send(tick);
                if let Some(gate) = gate {
                    gate.acquire().await.expect("gate").forget();
                }
            }
        },
    ));
    Harness {
        clock: clock.clone(),
        stats,
        ticks: rx,
        shutdown,
        task,
    }
}

impl Harness {
    async fn next_tick(&mut self) -> Tick {
        tokio::time::timeout(LIMIT, self.ticks.recv())
            .await
            .expect("a tick in time")
            .expect("channel open")
    }

    /// Waits until the driver sleeps on a future deadline again (and `extra` other sleepers).
    async fn settle(&self, sleepers: usize) {
        tokio::time::timeout(LIMIT, self.clock.wait_for_sleepers(sleepers))
            .await
            .expect("driver idle in time");
    }

    async fn wait_finished(&self, n: u64) {
        tokio::time::timeout(LIMIT, async {
            while self.stats.snapshot().runs_finished < n {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("runs finished in time");
    }

    async fn stop(self) -> DriveStatsSnapshot {
        self.shutdown.cancel();
        tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("driver stops in time")
            .expect("driver task")
    }
}

#[test]
fn cron_boundaries() {
    let cases = [
        (
            "*/15 * * * *",
            "2024-05-01T12:59:59Z",
            "2024-05-01T13:00:00Z",
        ),
        ("0 * * * *", "2024-12-31T23:00:00Z", "2025-01-01T00:00:00Z"),
        ("@daily", "2024-02-28T00:00:00Z", "2024-02-29T00:00:00Z"),
        ("0 0 29 2 *", "2023-03-01T00:00:00Z", "2024-02-29T00:00:00Z"),
        ("@monthly", "2024-01-31T10:00:00Z", "2024-02-01T00:00:00Z"),
        ("@weekly", "2024-05-01T00:00:00Z", "2024-05-05T00:00:00Z"), // a Sunday
        ("@yearly", "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        (
            "*/20 * * * * *",
            "2024-05-01T12:00:40Z",
            "2024-05-01T12:01:00Z",
        ),
        (
            "30 9 * * 1-5",
            "2024-05-03T09:30:00Z",
            "2024-05-06T09:30:00Z",
        ), // Fri → Mon
        (
            "@every 1h",
            "2024-05-01T12:59:59.999Z",
            "2024-05-01T13:00:00Z",
        ),
        ("@every 90s", "2024-05-01T00:00:00Z", "2024-05-01T00:01:30Z"),
    ];
    for (expr, after, want) in cases {
        let s = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(
            s.next_after(at(after)),
            Some(at(want)),
            "{expr} after {after}"
        );
    }
}

#[tokio::test]
async fn every_fires_on_aligned_ticks_in_sequence() {
    let clock = ManualClock::new(at("2024-05-01T12:00:03Z"));
    let mut h = start(&clock, "@every 10s", false, Duration::ZERO, None);
    h.settle(1).await;
    assert_eq!(clock.next_deadline(), Some(at("2024-05-01T12:00:10Z")));
    for (i, want) in ["12:00:10", "12:00:20", "12:00:30"].iter().enumerate() {
        clock.advance_to_next_deadline();
        let t = h.next_tick().await;
        assert_eq!(t.scheduled, at(&format!("2024-05-01T{want}Z")));
        assert_eq!(t.sequence, i as u64 + 1);
        assert_eq!(t.missed_before, 0);
        assert!(!t.at_start);
        h.settle(1).await;
    }
    // Advancing short of the next tick fires nothing.
    clock.advance(Duration::from_secs(9));
    h.settle(1).await;
    assert_eq!(h.stats.snapshot().ticks, 3);
    let s = h.stop().await;
    assert_eq!(
        (s.ticks, s.runs_started, s.skipped_overlap, s.missed),
        (3, 3, 0, 0)
    );
}

#[tokio::test]
async fn a_driver_continuing_a_job_continues_its_sequence_on_the_new_schedule() {
    let clock = ManualClock::new(at("2024-05-01T12:00:03Z"));
    let mut h = start_after(&clock, "@every 10s", false, Duration::ZERO, None, 41);
    h.settle(1).await;
    // No tick at once (the job already ran under its old schedule)…
    assert_eq!(h.stats.snapshot().ticks, 0);
    clock.advance_to_next_deadline();
    let t = h.next_tick().await;
    // …then the new schedule's next boundary, numbered after the last tick.
    assert_eq!((t.scheduled, t.sequence), (at("2024-05-01T12:00:10Z"), 42));
    h.stop().await;
}

#[tokio::test]
async fn run_at_start_fires_immediately_then_follows_the_schedule() {
    let start_time = at("2024-05-01T12:00:03Z");
    let clock = ManualClock::new(start_time);
    let mut h = start(&clock, "@every 1m", true, Duration::from_secs(30), None);
    let first = h.next_tick().await;
    assert!(first.at_start);
    assert_eq!(
        (first.scheduled, first.fired, first.sequence),
        (start_time, start_time, 1)
    );
    h.settle(1).await;
    clock.advance_to_next_deadline();
    let second = h.next_tick().await;
    assert!(!second.at_start);
    assert_eq!(second.scheduled, at("2024-05-01T12:01:00Z"));
    assert_eq!(second.sequence, 2);
    h.stop().await;
}

#[tokio::test]
async fn a_job_never_overlaps_itself() {
    let clock = ManualClock::new(at("2024-05-01T12:00:00Z"));
    let gate = Arc::new(Semaphore::new(0));
    let mut h = start(
        &clock,
        "@every 10s",
        false,
        Duration::ZERO,
        Some(gate.clone()),
    );
    h.settle(1).await;
    clock.advance_to_next_deadline();
    assert_eq!(h.next_tick().await.sequence, 1);
    // The run is still going: the next three ticks are skipped and counted.
    for _ in 0..3 {
        h.settle(1).await;
        clock.advance_to_next_deadline();
    }
    h.settle(1).await;
    let s = h.stats.snapshot();
    assert_eq!(
        (s.ticks, s.runs_started, s.skipped_overlap, s.runs_finished),
        (4, 1, 3, 0)
    );
    assert!(s.running);
    assert!(h.ticks.try_recv().is_err(), "a skipped tick must not run");
    // Once the run ends, the next tick runs; skipped ticks consumed sequence numbers.
    gate.add_permits(1);
    h.wait_finished(1).await;
    clock.advance_to_next_deadline();
    let t = h.next_tick().await;
    assert_eq!(t.sequence, 5);
    assert_eq!(t.scheduled, at("2024-05-01T12:00:50Z"));
    gate.add_permits(1);
    let s = h.stop().await;
    assert_eq!(
        (s.runs_started, s.runs_finished, s.skipped_overlap),
        (2, 2, 3)
    );
    assert!(!s.running);
}

#[tokio::test]
async fn ticks_missed_during_a_suspend_are_counted_not_replayed() {
    let clock = ManualClock::new(at("2024-05-01T12:00:30Z"));
    let mut h = start(&clock, "@every 1m", false, Duration::ZERO, None);
    h.settle(1).await;
    clock.advance_to_next_deadline();
    assert_eq!(h.next_tick().await.scheduled, at("2024-05-01T12:01:00Z"));
    h.settle(1).await;
    // The process sleeps through two hours: 12:02 … 14:00 fall due at once.
    clock.set(at("2024-05-01T14:00:30Z"));
    let t = h.next_tick().await;
    assert_eq!(
        t.scheduled,
        at("2024-05-01T14:00:00Z"),
        "only the latest due tick runs"
    );
    assert_eq!(t.missed_before, 118);
    assert_eq!(t.sequence, 2);
    h.settle(1).await;
    assert!(h.ticks.try_recv().is_err(), "no burst of replayed ticks");
    assert_eq!(clock.next_deadline(), Some(at("2024-05-01T14:01:00Z")));
    clock.advance_to_next_deadline();
    let t = h.next_tick().await;
    assert_eq!((t.sequence, t.missed_before), (3, 0));
    let s = h.stop().await;
    assert_eq!((s.ticks, s.runs_started, s.missed), (3, 3, 118));
}

#[tokio::test]
async fn missed_cron_ticks_are_counted_too() {
    let clock = ManualClock::new(at("2024-05-01T12:00:30Z"));
    let mut h = start(&clock, "*/15 * * * *", false, Duration::ZERO, None);
    h.settle(1).await;
    clock.set(at("2024-05-02T00:07:00Z"));
    let t = h.next_tick().await;
    // Due: 12:15, 12:30, … , 00:00 → 48 ticks; the latest runs, 47 are missed.
    assert_eq!(t.scheduled, at("2024-05-02T00:00:00Z"));
    assert_eq!(t.missed_before, 47);
    h.stop().await;
}

#[tokio::test]
async fn jitter_stays_within_bounds() {
    let clock = ManualClock::new(at("2024-05-01T12:00:00Z"));
    let jitter = Duration::from_secs(3);
    let mut h = start(&clock, "@every 10s", false, jitter, None);
    let mut offsets = Vec::new();
    for _ in 0..40 {
        h.settle(1).await;
        clock.advance_to_next_deadline();
        let t = h.next_tick().await;
        let offset = (t.fired - t.scheduled)
            .to_std()
            .expect("fired at or after scheduled");
        assert!(
            offset < jitter,
            "offset {offset:?} must be below {jitter:?}"
        );
        assert_eq!(
            t.scheduled.timestamp() % 10,
            0,
            "scheduled times stay on the grid"
        );
        assert_eq!(t.missed_before, 0);
        offsets.push(offset);
    }
    offsets.sort();
    offsets.dedup();
    assert!(
        offsets.len() > 10,
        "jitter should spread runs, got {offsets:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn cron_jitter_is_capped_at_the_gap_to_the_next_tick() {
    let clock = ManualClock::new(at("2024-05-01T12:00:00Z"));
    let mut h = start(
        &clock,
        "*/2 * * * * *",
        false,
        Duration::from_secs(3600),
        None,
    );
    for _ in 0..20 {
        h.settle(1).await;
        clock.advance_to_next_deadline();
        let t = h.next_tick().await;
        assert!(
            t.fired - t.scheduled < chrono::Duration::seconds(2),
            "{t:?}"
        );
        assert_eq!(t.missed_before, 0);
    }
    h.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_the_run_in_flight() {
    let clock = ManualClock::new(at("2024-05-01T12:00:00Z"));
    let gate = Arc::new(Semaphore::new(0));
    let mut h = start(
        &clock,
        "@every 10s",
        true,
        Duration::ZERO,
        Some(gate.clone()),
    );
    h.next_tick().await;
    h.settle(1).await;
    h.shutdown.cancel();
    tokio::task::yield_now().await;
    assert!(
        !h.task.is_finished(),
        "drive must wait for the running guest"
    );
    gate.add_permits(1);
    let s = tokio::time::timeout(LIMIT, h.task)
        .await
        .expect("stops")
        .expect("task");
    assert_eq!((s.runs_started, s.runs_finished), (1, 1));
}

#[tokio::test]
async fn cancelled_before_start_runs_nothing() {
    let clock = ManualClock::new(at("2024-05-01T12:00:00Z"));
    let stats = DriveStats::new();
    let token = CancellationToken::new();
    token.cancel();
    let opts = DriveOptions {
        job: "x".into(),
        run_at_start: true,
        stats,
        ..Default::default()
    };
    let s = drive(
        Schedule::parse("@every 1s").unwrap(),
        opts,
        Arc::new(clock),
        token,
        |_tick| async {},
    )
    .await;
    assert_eq!(s.ticks, 0);
}

#[tokio::test]
async fn a_slow_job_does_not_delay_another() {
    let clock = ManualClock::new(at("2024-05-01T12:00:00Z"));
    let gate = Arc::new(Semaphore::new(0));
    let slow = start(
        &clock,
        "@every 10s",
        true,
        Duration::ZERO,
        Some(gate.clone()),
    );
    let mut fast = start(&clock, "@every 10s", false, Duration::ZERO, None);
    slow.settle(2).await;
    for i in 1..=5u64 {
        clock.advance_to_next_deadline();
        assert_eq!(fast.next_tick().await.sequence, i);
        fast.settle(2).await;
    }
    assert_eq!(slow.stats.snapshot().runs_started, 1);
    assert_eq!(slow.stats.snapshot().skipped_overlap, 5);
    assert_eq!(fast.stats.snapshot().runs_finished, 5);
    gate.add_permits(1);
    fast.stop().await;
    slow.stop().await;
}

#[tokio::test]
async fn a_panicking_run_is_counted_and_the_job_keeps_its_schedule() {
    let clock = ManualClock::new(at("2024-05-01T12:00:00Z"));
    let stats = DriveStats::new();
    let token = CancellationToken::new();
    let opts = DriveOptions {
        job: "p".into(),
        stats: stats.clone(),
        ..Default::default()
    };
    let task = tokio::spawn(drive(
        Schedule::parse("@every 10s").unwrap(),
        opts,
        Arc::new(clock.clone()),
        token.clone(),
        |tick: Tick| async move {
            if tick.sequence == 1 {
                panic!("guest host glue failed (expected by the test)");
            }
        },
    ));
    for _ in 0..2 {
        tokio::time::timeout(LIMIT, clock.wait_for_sleepers(1))
            .await
            .expect("driver idle in time");
        clock.advance_to_next_deadline();
    }
    tokio::time::timeout(LIMIT, async {
        while stats.snapshot().runs_finished < 1 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("second run finishes");
    token.cancel();
    let s = task.await.expect("driver survives a panicking run");
    assert_eq!(
        (s.runs_started, s.runs_panicked, s.runs_finished),
        (2, 1, 1)
    );
}
