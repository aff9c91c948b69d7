//! The epoch ticker: advances the engines' epochs every [`EPOCH_TICK`] while
//! at least one guest call is in flight, from a thread of its own, so a
//! guest stuck in a loop is interrupted whatever the host's and the guest
//! pool's threads are doing.
//!
//! On Linux the thread sleeps in a blocking read of a `timerfd` that the
//! first call in flight arms (ticking every [`EPOCH_TICK`] from then on) and
//! the last one disarms: a call shorter than one tick costs two
//! `timerfd_settime` calls and wakes no thread at all, and an idle host never
//! wakes the ticker. While calls follow each other closely (the last one
//! ended less than a tick ago) the timer stays armed, and the ticker
//! disarms it at its next tick once no call is in flight. Elsewhere the
//! thread waits on a condition variable that the first call in flight
//! signals.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wasmtime::{Engine, EngineWeak};

/// How often the epoch advances while a guest runs; the granularity of run
/// deadlines and how long a guest runs before it yields its thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Starts and stops the ticking; see the module docs.
pub(crate) struct EpochTicker {
    shared: Arc<Shared>,
}

struct Shared {
    /// Calls in flight, and whether the ticker is to exit.
    state: Mutex<State>,
    /// Wakes the ticker thread where there is no timerfd.
    wake: Condvar,
    #[cfg(target_os = "linux")]
    timer: Option<std::os::fd::OwnedFd>,
}

#[derive(Default)]
struct State {
    /// The engines whose epochs advance.
    engines: Vec<EngineWeak>,
    in_flight: usize,
    /// Whether the timer is set to tick.
    armed: bool,
    /// When the last call in flight ended.
    last_end: Option<Instant>,
    stopping: bool,
}

/// Keeps the epoch ticking while it lives (one per guest call in flight).
pub(crate) struct Ticking {
    shared: Arc<Shared>,
}

impl EpochTicker {
    /// Starts the (idle) ticker thread for `engine`.
    pub(crate) fn start(engine: &Engine) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                engines: vec![engine.weak()],
                ..State::default()
            }),
            wake: Condvar::new(),
            #[cfg(target_os = "linux")]
            timer: linux::timer(),
        });
        let thread = shared.clone();
        std::thread::Builder::new()
            .name("cwpub-epoch".into())
            .stack_size(64 << 10)
            .spawn(move || thread.run())
            .context("starting the epoch ticker thread")?;
        Ok(EpochTicker { shared })
    }

    /// Advances `engine`'s epoch too, from now on.
    pub(crate) fn watch(&self, engine: &Engine) {
        self.shared.lock().engines.push(engine.weak());
    }

    /// Ticks until the guard is dropped.
    pub(crate) fn busy(&self) -> Ticking {
        let mut state = self.shared.lock();
        state.in_flight += 1;
        if !state.armed {
            self.shared.arm(true);
            state.armed = true;
        }
        Ticking {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.stop();
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.in_flight -= 1;
        if state.in_flight == 0 {
            let now = Instant::now();
            // Calls in quick succession keep the timer armed (the ticker
            // disarms it at its next tick); a lone call disarms it now.
            let lone = state
                .last_end
                .is_none_or(|end| now.duration_since(end) >= EPOCH_TICK);
            if lone {
                self.shared.arm(false);
                state.armed = false;
            }
            state.last_end = Some(now);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts (`on`) or stops the ticks; called with the state locked.
    fn arm(&self, on: bool) {
        #[cfg(target_os = "linux")]
        if let Some(timer) = &self.timer {
            linux::set(timer, on.then_some(EPOCH_TICK));
            return;
        }
        if on {
            self.wake.notify_one();
        }
    }

    /// Makes the ticker thread see `stopping` at once.
    fn stop(&self) {
        #[cfg(target_os = "linux")]
        if let Some(timer) = &self.timer {
            linux::set(timer, Some(Duration::from_nanos(1)));
            return;
        }
        self.wake.notify_one();
    }

    /// The ticker thread: ticks while calls are in flight, until the
    /// engines are gone or the ticker is dropped.
    fn run(&self) {
        loop {
            #[cfg(target_os = "linux")]
            let waited = self.timer.as_ref().map(linux::wait);
            #[cfg(not(target_os = "linux"))]
            let waited: Option<()> = None;
            if waited.is_none() {
                let mut state = self.lock();
                if state.in_flight == 0 {
                    // The next call has to wake this thread.
                    state.armed = false;
                }
                let state = self
                    .wake
                    .wait_while(state, |s| s.in_flight == 0 && !s.stopping)
                    .unwrap_or_else(PoisonError::into_inner);
                if state.stopping {
                    return;
                }
                drop(state);
                std::thread::sleep(EPOCH_TICK);
            }
            let mut state = self.lock();
            if state.stopping {
                return;
            }
            if state.in_flight == 0 && state.armed {
                self.arm(false);
                state.armed = false;
            }
            state.engines.retain(|engine| match engine.upgrade() {
                Some(engine) => {
                    engine.increment_epoch();
                    true
                }
                None => false,
            });
            if state.engines.is_empty() {
                return;
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::OwnedFd;
    use std::time::Duration;

    use rustix::io::Errno;
    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };

    /// A blocking monotonic timerfd, or `None` where the kernel has none.
    pub(super) fn timer() -> Option<OwnedFd> {
        match timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::CLOEXEC) {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::debug!(error = %e, "no timerfd; the epoch ticker waits on a condition variable");
                None
            }
        }
    }

    /// Fires every `every` from `every` from now on, or never (`None`).
    pub(super) fn set(timer: &OwnedFd, every: Option<Duration>) {
        let spec = |d: Duration| Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: d.subsec_nanos().into(),
        };
        let period = spec(every.unwrap_or_default());
        let value = Itimerspec {
            it_interval: period,
            it_value: period,
        };
        // Cannot fail for a valid timerfd and a normalized time.
        let _ = timerfd_settime(timer, TimerfdTimerFlags::empty(), &value);
    }

    /// Blocks until the timer has fired at least once since the last wait
    /// (or, should the read ever fail, for one tick).
    pub(super) fn wait(timer: &OwnedFd) {
        let mut expirations = [0u8; 8];
        loop {
            match rustix::io::read(timer, &mut expirations) {
                Ok(_) => return,
                Err(Errno::INTR) => {}
                Err(_) => return std::thread::sleep(super::EPOCH_TICK),
            }
        }
    }
}
