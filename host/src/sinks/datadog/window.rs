//! The time windows DataDog accepts data in, as one rule: an event more than
//! [`Window::max_age_ms`] old or [`Window::max_ahead_ms`] ahead of now is
//! not accepted (logs: 18 h / 2 h, `logs::WINDOW`; metric points: 1 h /
//! 10 min, `series::WINDOW`).

use std::fmt;

/// How far back and ahead of now an intake accepts data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// What is dated, for messages ("logs", "metric points").
    pub what: &'static str,
    /// Oldest accepted, in ms before now.
    pub max_age_ms: i64,
    /// Furthest accepted, in ms after now.
    pub max_ahead_ms: i64,
}

/// A time outside a [`Window`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeRefusal {
    /// Older than the window.
    TooOld {
        /// How old, in ms.
        age_ms: i64,
        /// The window.
        window: Window,
    },
    /// Further ahead than the window.
    TooNew {
        /// How far ahead, in ms.
        ahead_ms: i64,
        /// The window.
        window: Window,
    },
}

impl Window {
    /// Whether `timestamp_ms` is inside the window at `now_ms` (both ms
    /// since the epoch; any values, no overflow).
    pub fn check(self, timestamp_ms: i64, now_ms: i64) -> Result<(), TimeRefusal> {
        let age_ms = now_ms.saturating_sub(timestamp_ms);
        let ahead_ms = timestamp_ms.saturating_sub(now_ms);
        if age_ms > self.max_age_ms {
            Err(TimeRefusal::TooOld {
                age_ms,
                window: self,
            })
        } else if ahead_ms > self.max_ahead_ms {
            Err(TimeRefusal::TooNew {
                ahead_ms,
                window: self,
            })
        } else {
            Ok(())
        }
    }
}

impl TimeRefusal {
    /// A stable label for counters.
    pub const fn label(self) -> &'static str {
        match self {
            TimeRefusal::TooOld { .. } => "too_old",
            TimeRefusal::TooNew { .. } => "too_new",
        }
    }
}

/// `90 s`, `25 min`, `18 h`.
fn span(ms: i64) -> String {
    let s = ms / 1000;
    if s % 3600 == 0 && s >= 3600 {
        format!("{} h", s / 3600)
    } else if s % 60 == 0 && s >= 60 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

impl fmt::Display for TimeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TimeRefusal::TooOld { age_ms, window } => write!(
                f,
                "dated {} s ago; DataDog accepts {} up to {} old",
                age_ms / 1000,
                window.what,
                span(window.max_age_ms)
            ),
            TimeRefusal::TooNew { ahead_ms, window } => write!(
                f,
                "dated {} s ahead; DataDog accepts {} up to {} ahead (check the host's clock)",
                ahead_ms / 1000,
                window.what,
                span(window.max_ahead_ms)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Window = Window {
        what: "things",
        max_age_ms: 3_600_000,
        max_ahead_ms: 600_000,
    };

    #[test]
    fn the_edges_are_inside() {
        let now = 1_767_225_600_000;
        assert_eq!(W.check(now - 3_600_000, now), Ok(()));
        assert_eq!(W.check(now + 600_000, now), Ok(()));
        let old = W.check(now - 3_600_001, now).unwrap_err();
        assert_eq!(
            old,
            TimeRefusal::TooOld {
                age_ms: 3_600_001,
                window: W
            }
        );
        assert_eq!(old.label(), "too_old");
        assert_eq!(
            old.to_string(),
            "dated 3600 s ago; DataDog accepts things up to 1 h old"
        );
        let new = W.check(now + 600_001, now).unwrap_err();
        assert_eq!(new.label(), "too_new");
        assert_eq!(
            new.to_string(),
            "dated 600 s ahead; DataDog accepts things up to 10 min ahead (check the host's clock)"
        );
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        assert_eq!(W.check(i64::MIN, i64::MAX).unwrap_err().label(), "too_old");
        assert_eq!(W.check(i64::MAX, i64::MIN).unwrap_err().label(), "too_new");
        assert_eq!(span(90_000), "90 s");
    }
}
