//! Schedule expressions: parsing `@every <duration>`, the `@hourly`-style
//! nicknames and 5- or 6-field cron expressions (via `croner`), and the pure
//! "when does it fire next" arithmetic, always in UTC.
//!
//! `@every` schedules are aligned to the Unix epoch: `@every 1m` fires at every
//! whole minute, `@every 10s` at :00, :10, :20 …, so fire times do not depend
//! on when the process started (use run-at-start for a first run right away).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use croner::Cron;

/// The shortest interval `@every` accepts.
pub const MIN_EVERY: Duration = Duration::from_secs(1);
/// The longest interval `@every` accepts (366 days).
pub const MAX_EVERY: Duration = Duration::from_secs(366 * 24 * 3600);

/// The nicknames accepted besides `@every`, and the cron expression each stands for.
pub const NICKNAMES: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Why a schedule expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The expression was empty or blank.
    #[error("empty schedule; use a cron expression like \"*/5 * * * *\" or \"@every 1m\"")]
    Empty,
    /// `@every` was followed by something that is not a duration.
    #[error(
        "invalid @every interval {text:?}: {reason}; write e.g. \"@every 30s\" or \"@every 1h 30m\""
    )]
    BadInterval {
        /// The text after `@every`.
        text: String,
        /// What was wrong with it.
        reason: String,
    },
    /// An `@every` interval outside the supported range.
    #[error("@every interval {text:?} is out of range; it must be between 1s and 366 days")]
    IntervalOutOfRange {
        /// The text after `@every`.
        text: String,
    },
    /// An `@word` that is not a known nickname.
    #[error(
        "unknown schedule nickname {0:?}; use @every <duration>, @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually"
    )]
    UnknownNickname(String),
    /// The cron expression did not parse.
    #[error("invalid cron expression: {0}")]
    InvalidCron(String),
    /// The cron expression parses but never matches a real date (e.g. 30 February).
    #[error(
        "cron expression never fires (it matches no real date); check the day-of-month and month fields"
    )]
    NeverFires,
}

/// A parsed schedule: when a job fires, in UTC.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Fires at every multiple of this many milliseconds since the Unix epoch.
    Every(u64),
    /// Fires when the cron expression matches (second resolution).
    Cron(Box<Cron>),
}

impl Schedule {
    /// Parses `@every <duration>`, an `@nickname`, or a 5-field (minute first) or
    /// 6-field (second first) cron expression evaluated in UTC.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if let Some(rest) = strip_prefix_ignore_case(trimmed, "@every") {
            // "@everyday" is not "@every day".
            if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
                return Err(ScheduleError::UnknownNickname(trimmed.to_string()));
            }
            let rest = rest.trim();
            if rest.is_empty() {
                return Err(ScheduleError::BadInterval {
                    text: String::new(),
                    reason: "missing interval".to_string(),
                });
            }
            let interval =
                humantime::parse_duration(rest).map_err(|e| ScheduleError::BadInterval {
                    text: rest.to_string(),
                    reason: e.to_string(),
                })?;
            if !(MIN_EVERY..=MAX_EVERY).contains(&interval) {
                return Err(ScheduleError::IntervalOutOfRange {
                    text: rest.to_string(),
                });
            }
            return Ok(Schedule {
                text: trimmed.to_string(),
                // At most 366 days in ms: fits comfortably in u64.
                kind: Kind::Every(interval.as_millis() as u64),
            });
        }
        let cron_text = if trimmed.starts_with('@') {
            match NICKNAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(trimmed))
            {
                Some((_, expr)) => *expr,
                None => return Err(ScheduleError::UnknownNickname(trimmed.to_string())),
            }
        } else {
            trimmed
        };
        let fields = cron_text.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(ScheduleError::InvalidCron(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found {fields}"
            )));
        }
        let cron = Cron::new(cron_text)
            .with_seconds_optional()
            .parse()
            .map_err(|e| ScheduleError::InvalidCron(locate_cron_error(cron_text, &e)))?;
        let schedule = Schedule {
            text: trimmed.to_string(),
            kind: Kind::Cron(Box::new(cron)),
        };
        // A pattern that matches no real date makes the search fail; refuse it now.
        let reference = Utc
            .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default();
        if schedule.next_after(reference).is_none() {
            return Err(ScheduleError::NeverFires);
        }
        Ok(schedule)
    }

    /// The expression as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The fixed interval of an `@every` schedule, or `None` for cron schedules.
    pub fn interval(&self) -> Option<Duration> {
        match &self.kind {
            Kind::Every(ms) => Some(Duration::from_millis(*ms)),
            Kind::Cron(_) => None,
        }
    }

    /// The first fire time strictly after `t`, or `None` if there is none
    /// (a cron expression that matches no future date).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Every(every) => {
                let every = i64::try_from(*every).ok()?;
                let ms = t.timestamp_millis();
                let next = ms.div_euclid(every).checked_add(1)?.checked_mul(every)?;
                DateTime::from_timestamp_millis(next)
            }
            Kind::Cron(cron) => {
                // croner searches from whole seconds; the first match after the
                // truncated second is also the first match after `t`.
                let whole = t.trunc_subsecs(0);
                cron.find_next_occurrence(&whole, false).ok()
            }
        }
    }

    /// The number of fire times in `(after, until]`, counting at most `cap`.
    pub fn count_between(&self, after: DateTime<Utc>, until: DateTime<Utc>, cap: u64) -> u64 {
        if until <= after {
            return 0;
        }
        match &self.kind {
            Kind::Every(every) => {
                let every = *every as i64;
                let n = until.timestamp_millis().div_euclid(every)
                    - after.timestamp_millis().div_euclid(every);
                (n.max(0) as u64).min(cap)
            }
            Kind::Cron(_) => {
                let mut n = 0;
                let mut cursor = after;
                while n < cap {
                    match self.next_after(cursor) {
                        Some(t) if t <= until => {
                            n += 1;
                            cursor = t;
                        }
                        _ => break,
                    }
                }
                n
            }
        }
    }

    /// The last fire time at or before `t` that is also strictly after `floor`,
    /// or `None` if no fire time lies in `(floor, t]`.
    pub fn latest_at_or_before(
        &self,
        floor: DateTime<Utc>,
        t: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if t <= floor {
            return None;
        }
        let found = match &self.kind {
            Kind::Every(every) => {
                let every = *every as i64;
                let ms = t.timestamp_millis().div_euclid(every).checked_mul(every)?;
                DateTime::from_timestamp_millis(ms)?
            }
            Kind::Cron(_) => {
                // Look back through growing windows for one that holds a fire
                // time, then walk forward inside it to the last one.
                const WINDOWS: &[i64] = &[
                    1,
                    60,
                    3600,
                    86_400,
                    32 * 86_400,
                    366 * 86_400,
                    30 * 366 * 86_400,
                ];
                let mut start = None;
                for secs in WINDOWS {
                    let from = t
                        .checked_sub_signed(chrono::Duration::seconds(*secs))
                        .unwrap_or(floor)
                        .max(floor);
                    if let Some(first) = self.next_after(from).filter(|f| *f <= t) {
                        start = Some(first);
                        break;
                    }
                    if from == floor {
                        break;
                    }
                }
                let mut last = start?;
                while let Some(n) = self.next_after(last).filter(|n| *n <= t) {
                    last = n;
                }
                last
            }
        };
        (found > floor).then_some(found)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Names the cron field at fault (croner's own messages do not), by parsing
/// each field alone with every other field a `*`.
fn locate_cron_error(text: &str, e: &croner::errors::CronError) -> String {
    const FIVE: [(&str, &str); 5] = [
        ("minute", "0-59"),
        ("hour", "0-23"),
        ("day-of-month", "1-31"),
        ("month", "1-12 or JAN-DEC"),
        ("day-of-week", "0-7 or SUN-SAT"),
    ];
    let fields: Vec<&str> = text.split_whitespace().collect();
    let names: Vec<(&str, &str)> = if fields.len() == 6 {
        std::iter::once(("second", "0-59")).chain(FIVE).collect()
    } else {
        FIVE.to_vec()
    };
    for (i, field) in fields.iter().enumerate() {
        let probe: Vec<&str> = (0..fields.len())
            .map(|j| if i == j { *field } else { "*" })
            .collect();
        if let Err(fe) = Cron::new(&probe.join(" ")).with_seconds_optional().parse() {
            let (name, range) = names.get(i).copied().unwrap_or(("field", "?"));
            return format!(
                "{name} field {field:?}: {} ({name} takes {range}, lists a,b, ranges a-b and steps */n)",
                cron_error_text(&fe).trim_end_matches('.')
            );
        }
    }
    cron_error_text(e)
}

/// croner's messages repeat "Invalid pattern:"-style prefixes; keep the useful part.
fn cron_error_text(e: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    match e {
        E::InvalidPattern(m) | E::IllegalCharacters(m) | E::ComponentError(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .with_timezone(&Utc)
    }

    #[test]
    fn every_is_epoch_aligned_and_strict() {
        let s = Schedule::parse("@every 10s").unwrap();
        assert_eq!(
            s.next_after(at("2024-05-01T12:00:03Z")),
            Some(at("2024-05-01T12:00:10Z"))
        );
        assert_eq!(
            s.next_after(at("2024-05-01T12:00:10Z")),
            Some(at("2024-05-01T12:00:20Z"))
        );
        assert_eq!(
            s.next_after(at("2024-05-01T12:00:09.999Z")),
            Some(at("2024-05-01T12:00:10Z"))
        );
        assert_eq!(s.interval(), Some(Duration::from_secs(10)));
    }

    #[test]
    fn cron_five_and_six_fields() {
        let s = Schedule::parse("*/5 * * * *").unwrap();
        assert_eq!(
            s.next_after(at("2024-05-01T12:03:30Z")),
            Some(at("2024-05-01T12:05:00Z"))
        );
        assert_eq!(
            s.next_after(at("2024-05-01T12:05:00Z")),
            Some(at("2024-05-01T12:10:00Z"))
        );
        let s = Schedule::parse("30 * * * * *").unwrap();
        assert_eq!(
            s.next_after(at("2024-05-01T12:00:30.5Z")),
            Some(at("2024-05-01T12:01:30Z"))
        );
    }

    #[test]
    fn nicknames() {
        let s = Schedule::parse("@daily").unwrap();
        assert_eq!(
            s.next_after(at("2024-05-01T12:00:00Z")),
            Some(at("2024-05-02T00:00:00Z"))
        );
        let s = Schedule::parse("@HOURLY").unwrap();
        assert_eq!(
            s.next_after(at("2024-05-01T12:00:00Z")),
            Some(at("2024-05-01T13:00:00Z"))
        );
        assert!(matches!(
            Schedule::parse("@everyday"),
            Err(ScheduleError::UnknownNickname(_))
        ));
        assert!(matches!(
            Schedule::parse("@fortnightly"),
            Err(ScheduleError::UnknownNickname(_))
        ));
    }

    #[test]
    fn bad_expressions() {
        assert_eq!(Schedule::parse("  ").unwrap_err(), ScheduleError::Empty);
        assert!(
            matches!(Schedule::parse("*/5 * *"), Err(ScheduleError::InvalidCron(m)) if m.contains("found 3"))
        );
        assert!(matches!(
            Schedule::parse("61 * * * *"),
            Err(ScheduleError::InvalidCron(_))
        ));
        assert!(matches!(
            Schedule::parse("@every soon"),
            Err(ScheduleError::BadInterval { .. })
        ));
        assert!(matches!(
            Schedule::parse("@every"),
            Err(ScheduleError::BadInterval { .. })
        ));
        assert!(matches!(
            Schedule::parse("@every 10ms"),
            Err(ScheduleError::IntervalOutOfRange { .. })
        ));
        assert_eq!(
            Schedule::parse("0 0 30 2 *").unwrap_err(),
            ScheduleError::NeverFires
        );
    }

    #[test]
    fn counting_and_latest() {
        let s = Schedule::parse("@every 1m").unwrap();
        let a = at("2024-05-01T12:00:00Z");
        let b = at("2024-05-01T13:00:30Z");
        assert_eq!(s.count_between(a, b, u64::MAX), 60);
        assert_eq!(s.count_between(a, b, 10), 10);
        assert_eq!(
            s.latest_at_or_before(a, b),
            Some(at("2024-05-01T13:00:00Z"))
        );
        let c = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(c.count_between(a, b, u64::MAX), 4);
        assert_eq!(
            c.latest_at_or_before(a, b),
            Some(at("2024-05-01T13:00:00Z"))
        );
        assert_eq!(c.latest_at_or_before(a, at("2024-05-01T12:10:00Z")), None);
        let d = Schedule::parse("@daily").unwrap();
        assert_eq!(
            d.latest_at_or_before(a, at("2024-05-09T08:00:00Z")),
            Some(at("2024-05-09T00:00:00Z"))
        );
    }
}
