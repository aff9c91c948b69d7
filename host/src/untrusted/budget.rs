//! How much one job may make the host log: at most [`RECORDS_PER_MINUTE`]
//! records and [`BYTES_PER_MINUTE`] bytes per minute, whatever the guest
//! does (diagnostics, failures of any kind in any order, captured output).
//! Records over the budget are not written; they are counted, and the job's
//! log says so twice per window at most: once when suppression starts, once
//! (with the count) at the first record of the next window.
//!
//! No timer is involved: windows are closed lazily by the next record, so an
//! idle job costs nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Log records one job may cause per minute.
pub const RECORDS_PER_MINUTE: u64 = 1_000;
/// Bytes of log records one job may cause per minute (512 KiB).
pub const BYTES_PER_MINUTE: u64 = 512 << 10;
/// The length of one budget window.
const WINDOW: Duration = Duration::from_secs(60);

/// One job's log budget; share it between the job's runs.
#[derive(Debug)]
pub struct LogBudget {
    job: Arc<str>,
    window: Mutex<Window>,
    /// Records suppressed since the budget was created.
    suppressed_total: AtomicU64,
}

#[derive(Debug, Default)]
struct Window {
    started: Option<Instant>,
    records: u64,
    bytes: u64,
    suppressed_records: u64,
    suppressed_bytes: u64,
}

/// What the budget itself has to say, logged outside its lock.
enum Notice {
    Started { resumes_in: Duration },
    Summary { records: u64, bytes: u64 },
}

impl LogBudget {
    /// A fresh budget for `job`.
    pub fn new(job: Arc<str>) -> Self {
        LogBudget {
            job,
            window: Mutex::new(Window::default()),
            suppressed_total: AtomicU64::new(0),
        }
    }

    /// Charges one record of `bytes` bytes to the job. Returns false when the
    /// job is over its budget: the caller must then not write the record,
    /// which is counted as suppressed.
    pub fn admit(&self, bytes: usize) -> bool {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let now = Instant::now();
        let (admitted, notice) = {
            let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
            let mut notice = None;
            if w.started.is_none_or(|s| now.duration_since(s) >= WINDOW) {
                if w.suppressed_records > 0 {
                    notice = Some(Notice::Summary {
                        records: w.suppressed_records,
                        bytes: w.suppressed_bytes,
                    });
                }
                *w = Window {
                    started: Some(now),
                    ..Window::default()
                };
            }
            if w.records < RECORDS_PER_MINUTE && w.bytes.saturating_add(bytes) <= BYTES_PER_MINUTE {
                w.records += 1;
                w.bytes += bytes;
                (true, notice)
            } else {
                if w.suppressed_records == 0 {
                    let ends = w.started.map_or(now, |s| s + WINDOW);
                    notice = Some(Notice::Started {
                        resumes_in: ends.saturating_duration_since(now),
                    });
                }
                w.suppressed_records += 1;
                w.suppressed_bytes = w.suppressed_bytes.saturating_add(bytes);
                self.suppressed_total.fetch_add(1, Ordering::Relaxed);
                (false, notice)
            }
        };
        match notice {
            Some(Notice::Started { resumes_in }) => tracing::warn!(
                job = &*self.job,
                "the job exceeded its log budget ({RECORDS_PER_MINUTE} records or {} KiB per minute); \
                 its log records are suppressed and counted for the next {} s",
                BYTES_PER_MINUTE >> 10,
                resumes_in.as_secs().max(1),
            ),
            Some(Notice::Summary { records, bytes }) => tracing::warn!(
                job = &*self.job,
                suppressed = records,
                suppressed_bytes = bytes,
                "{records} log records ({bytes} bytes) of this job were suppressed in the last minute \
                 (over its log budget; see cwpub_job_log_records_suppressed_total)"
            ),
            None => {}
        }
        admitted
    }

    /// Records suppressed since the budget was created.
    pub fn suppressed_total(&self) -> u64 {
        self.suppressed_total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_over_the_budget_are_refused_and_counted() {
        let budget = LogBudget::new("flood".into());
        for _ in 0..RECORDS_PER_MINUTE {
            assert!(budget.admit(10));
        }
        assert!(!budget.admit(10));
        assert!(!budget.admit(10));
        assert_eq!(budget.suppressed_total(), 2);
    }

    #[test]
    fn bytes_over_the_budget_are_refused() {
        let budget = LogBudget::new("big".into());
        let record = 8 << 10;
        let fit = BYTES_PER_MINUTE / record;
        for _ in 0..fit {
            assert!(budget.admit(record as usize));
        }
        assert!(!budget.admit(record as usize));
        assert!(budget.admit(0), "an empty record still fits");
        assert_eq!(budget.suppressed_total(), 1);
    }

    #[test]
    fn a_new_window_admits_again() {
        let budget = LogBudget::new("later".into());
        for _ in 0..=RECORDS_PER_MINUTE {
            budget.admit(1);
        }
        assert!(!budget.admit(1));
        // Age the window instead of waiting a minute.
        budget.window.lock().unwrap().started = Instant::now().checked_sub(WINDOW);
        assert!(budget.admit(1));
        assert_eq!(budget.suppressed_total(), 2);
    }
}
