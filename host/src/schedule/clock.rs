//! Clocks the scheduler reads and sleeps on: [`SystemClock`] (UTC wall clock,
//! robust to suspend and clock steps) and [`ManualClock`] (moved by hand, for
//! testing schedule semantics without waiting).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A boxed, sendable future, as returned by [`Clock::sleep_until`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source of UTC time that can also wait until a given time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Completes once `now() >= deadline` (immediately if it already is).
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()>;
    /// A [`Timer`] for waiting again and again (a job's driver holds one for
    /// its whole life), keeping whatever one wait sets up for the next.
    fn timer(&self) -> Box<dyn Timer + '_> {
        Box::new(OneShots(self))
    }
}

/// Waits on a [`Clock`], one wait at a time.
pub trait Timer: Send {
    /// Completes once the clock reads `deadline` or later.
    fn sleep_until(&mut self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()>;
}

/// A [`Timer`] made of [`Clock::sleep_until`] calls.
struct OneShots<'a, C: ?Sized>(&'a C);

impl<C: Clock + ?Sized> Timer for OneShots<'_, C> {
    fn sleep_until(&mut self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
        self.0.sleep_until(deadline)
    }
}

/// The real wall clock. On Linux a sleep is one kernel timer on the wall
/// clock itself (`timerfd`, `CLOCK_REALTIME`, absolute, cancelled when the
/// clock is set): the process wakes up once, at the deadline, and still on
/// time after a suspend/resume or a clock step; a [`Clock::timer`] keeps its
/// `timerfd` (registered with the runtime) from one wait to the next.
/// Elsewhere (or without `timerfd`) it sleeps in slices of at most
/// [`SystemClock::MAX_SLICE`] and re-reads the wall clock after each.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The longest single sleep before the wall clock is read again, where
    /// no wall-clock timer is available.
    pub const MAX_SLICE: Duration = Duration::from_secs(5);
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move { WallTimer::default().wait_until(deadline).await })
    }

    fn timer(&self) -> Box<dyn Timer + '_> {
        Box::new(WallTimer::default())
    }
}

/// [`SystemClock`]'s timer: its `timerfd`, made at the first wait.
#[derive(Default)]
struct WallTimer {
    #[cfg(target_os = "linux")]
    fd: Option<wall_timer::WallFd>,
}

impl Timer for WallTimer {
    fn sleep_until(&mut self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(self.wait_until(deadline))
    }
}

impl WallTimer {
    async fn wait_until(&mut self, deadline: DateTime<Utc>) {
        #[cfg(target_os = "linux")]
        {
            let fd = match self.fd.take() {
                Some(fd) => Ok(fd),
                None => wall_timer::WallFd::new(),
            };
            match fd {
                Ok(fd) => match fd.sleep_until(deadline).await {
                    Ok(()) => {
                        self.fd = Some(fd);
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "wall-clock timer failed; sleeping in slices")
                    }
                },
                Err(e) => tracing::debug!(error = %e, "no wall-clock timer; sleeping in slices"),
            }
        }
        loop {
            let now = Utc::now();
            if now >= deadline {
                return;
            }
            let left = (deadline - now).to_std().unwrap_or_default();
            tokio::time::sleep(left.min(SystemClock::MAX_SLICE)).await;
        }
    }
}

/// Sleeping on a `timerfd` armed on `CLOCK_REALTIME`.
#[cfg(target_os = "linux")]
mod wall_timer {
    use std::os::fd::OwnedFd;

    use chrono::{DateTime, Utc};
    use rustix::io::Errno;
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// A wall-clock `timerfd` registered with the current runtime.
    pub(super) struct WallFd(AsyncFd<OwnedFd>);

    impl WallFd {
        /// Fails only when the timer cannot be set up.
        pub(super) fn new() -> std::io::Result<Self> {
            let timer = timerfd_create(
                TimerfdClockId::Realtime,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            // SAFETY: the timer is an open descriptor that the AsyncFd owns (and
            // so keeps open, unchanged) for as long as it exists.
            let timer = unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE) }
                .map_err(std::io::Error::from)?;
            Ok(WallFd(timer))
        }

        /// Completes once the wall clock reads `deadline` or later. Fails
        /// only when the timer cannot be armed or read (then it is not to be
        /// used again).
        pub(super) async fn sleep_until(&self, deadline: DateTime<Utc>) -> std::io::Result<()> {
            let at = Itimerspec {
                it_interval: Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: Timespec {
                    tv_sec: deadline.timestamp(),
                    tv_nsec: deadline.timestamp_subsec_nanos().into(),
                },
            };
            loop {
                if Utc::now() >= deadline {
                    return Ok(());
                }
                // Re-armed after every wake-up: a clock step cancels the timer.
                timerfd_settime(
                    self.0.get_ref(),
                    TimerfdTimerFlags::ABSTIME | TimerfdTimerFlags::CANCEL_ON_SET,
                    &at,
                )?;
                let mut ready = self.0.readable().await?;
                let mut expirations = [0u8; 8];
                match rustix::io::read(ready.get_inner(), &mut expirations) {
                    // Expired, or the clock was set: check the time again.
                    Ok(_) | Err(Errno::CANCELED) => {}
                    Err(Errno::AGAIN) => ready.clear_ready(),
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

/// A clock that only moves when told to; sleepers wake when it passes their deadline.
#[derive(Debug, Clone)]
pub struct ManualClock {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Bumped on every change (time moved, sleeper added or removed).
    version: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    now: DateTime<Utc>,
    next_id: u64,
    sleepers: BTreeMap<u64, DateTime<Utc>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    now: start,
                    next_id: 0,
                    sleepers: BTreeMap::new(),
                }),
                version: watch::channel(0).0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.shared.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Moves the clock forward by `by`, waking every sleeper whose deadline passed.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        {
            let mut s = self.state();
            s.now = s.now.checked_add_signed(by).unwrap_or(s.now);
        }
        self.bump();
    }

    /// Sets the clock to `t` (forwards or backwards).
    pub fn set(&self, t: DateTime<Utc>) {
        self.state().now = t;
        self.bump();
    }

    /// The number of sleepers waiting for a time still in the future.
    pub fn pending_sleepers(&self) -> usize {
        let s = self.state();
        s.sleepers.values().filter(|d| **d > s.now).count()
    }

    /// The earliest deadline any sleeper is waiting for that is still in the future.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let s = self.state();
        s.sleepers.values().filter(|d| **d > s.now).min().copied()
    }

    /// Waits until at least `n` sleepers wait for a future time: the tasks
    /// using this clock have caught up with the last change and are idle.
    pub async fn wait_for_sleepers(&self, n: usize) {
        let mut rx = self.shared.version.subscribe();
        loop {
            if self.pending_sleepers() >= n {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Advances the clock straight to the earliest pending deadline, if any,
    /// and returns it.
    pub fn advance_to_next_deadline(&self) -> Option<DateTime<Utc>> {
        let next = self.next_deadline()?;
        self.set(next);
        Some(next)
    }
}

struct SleeperGuard<'a> {
    clock: &'a ManualClock,
    id: u64,
}

impl Drop for SleeperGuard<'_> {
    fn drop(&mut self) {
        self.clock.state().sleepers.remove(&self.id);
        self.clock.bump();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.state().now
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut rx = self.shared.version.subscribe();
            let id = {
                let mut s = self.state();
                let id = s.next_id;
                s.next_id += 1;
                s.sleepers.insert(id, deadline);
                id
            };
            let _guard = SleeperGuard { clock: self, id };
            self.bump();
            loop {
                if self.now() >= deadline {
                    return;
                }
                if rx.changed().await.is_err() {
                    // The sender lives as long as `self`; this cannot happen.
                    return;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_in_order() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let clock = ManualClock::new(start);
        let c2 = clock.clone();
        let task = tokio::spawn(async move {
            c2.sleep_until(start + chrono::Duration::seconds(10)).await;
            c2.now()
        });
        clock.wait_for_sleepers(1).await;
        clock.advance(Duration::from_secs(5));
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        assert_eq!(clock.pending_sleepers(), 1);
        clock.advance(Duration::from_secs(5));
        let woke = task.await.unwrap();
        assert_eq!(woke, start + chrono::Duration::seconds(10));
        assert_eq!(clock.pending_sleepers(), 0);
    }

    #[tokio::test]
    async fn system_clock_wakes_at_the_deadline() {
        let clock = SystemClock;
        let deadline = clock.now() + chrono::Duration::milliseconds(150);
        tokio::time::timeout(Duration::from_secs(5), clock.sleep_until(deadline))
            .await
            .expect("woke up");
        assert!(clock.now() >= deadline, "not before the deadline");
    }

    #[tokio::test]
    async fn a_system_clock_timer_wakes_at_each_deadline() {
        let clock = SystemClock;
        let mut timer = clock.timer();
        for ms in [120, 60, 0] {
            let deadline = clock.now() + chrono::Duration::milliseconds(ms);
            tokio::time::timeout(Duration::from_secs(5), timer.sleep_until(deadline))
                .await
                .expect("woke up");
            assert!(clock.now() >= deadline, "not before the deadline");
        }
    }

    #[tokio::test]
    async fn system_clock_past_deadline_returns_at_once() {
        let clock = SystemClock;
        let past = clock.now() - chrono::Duration::seconds(1);
        tokio::time::timeout(Duration::from_secs(5), clock.sleep_until(past))
            .await
            .expect("sleep_until in the past returns immediately");
    }
}
