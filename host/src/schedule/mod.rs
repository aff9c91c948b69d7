//! Scheduling: when each job fires and the per-job driver that fires it.
//!
//! * [`Schedule`] — `@every <duration>`, `@hourly`-style nicknames and 5/6-field
//!   cron expressions, evaluated in UTC (`spec`).
//! * [`Clock`] — the time source the driver sleeps on: [`SystemClock`] in
//!   production, [`ManualClock`] in tests (`clock`).
//! * [`drive`] — runs one job's action on its schedule with run-at-start,
//!   jitter, no self-overlap and missed-tick accounting, until shut down (`driver`).

mod clock;
mod driver;
mod spec;

pub use clock::{BoxFuture, Clock, ManualClock, SystemClock, Timer};
pub use driver::{DriveOptions, DriveStats, DriveStatsSnapshot, MISSED_COUNT_CAP, Tick, drive};
pub use spec::{MAX_EVERY, MIN_EVERY, NICKNAMES, Schedule, ScheduleError};
