//! The shared PutLogEvents rate, adapted to throttling (AIMD): a throttled
//! answer halves the allowed rate (at most once per decrease window, so a
//! burst of concurrent throttles counts once), each accepted request raises
//! it a little — about `ceiling / 20` per second of steady use, so it climbs
//! from the floor back to the ceiling in some 20 s — and it never exceeds the
//! configured `put_rate_per_sec` or falls below `ceiling / 100` (at least 1/s).
//!
//! Requests are paced by GCRA (the "virtual scheduling" form of a token
//! bucket) with a burst of a tenth of a second's worth, so high rates do not
//! depend on timer resolution. Nothing runs while no request waits.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct State {
    ceiling: f64,
    floor: f64,
    rate: f64,
    /// Theoretical arrival time of the next request.
    tat: Instant,
    last_decrease: Option<Instant>,
}

/// The adaptive rate limiter shared by every PutLogEvents request.
#[derive(Debug)]
pub(crate) struct AdaptiveRate {
    state: Mutex<State>,
}

/// The ceiling and floor of a configured `put_rate_per_sec`.
fn bounds(ceiling: u32) -> (f64, f64) {
    let ceiling = f64::from(ceiling.max(1));
    (ceiling, (ceiling / 100.0).max(1.0).min(ceiling))
}

/// Shortest time between two decreases.
const DECREASE_WINDOW: Duration = Duration::from_millis(200);

impl AdaptiveRate {
    /// Starts at `ceiling` requests per second.
    pub fn new(ceiling: u32) -> AdaptiveRate {
        let (ceiling, floor) = bounds(ceiling);
        AdaptiveRate {
            state: Mutex::new(State {
                ceiling,
                floor,
                rate: ceiling,
                tat: Instant::now(),
                last_decrease: None,
            }),
        }
    }

    /// A new ceiling (a reload): the rate in use stays, within the new bounds.
    pub fn set_ceiling(&self, ceiling: u32) {
        let (ceiling, floor) = bounds(ceiling);
        let mut s = self.lock();
        s.ceiling = ceiling;
        s.floor = floor;
        s.rate = s.rate.clamp(floor, ceiling);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rate allowed now, requests per second.
    pub fn current(&self) -> f64 {
        self.lock().rate
    }

    /// The configured ceiling.
    pub fn ceiling(&self) -> f64 {
        self.lock().ceiling
    }

    /// How long the caller must wait before sending at `now` (zero: send,
    /// and the slot is taken).
    fn reserve(&self, now: Instant) -> Duration {
        let mut s = self.lock();
        let interval = Duration::from_secs_f64(1.0 / s.rate);
        let tolerance = interval.mul_f64((s.rate / 10.0).ceil().max(1.0) - 1.0);
        let tat = s.tat.max(now);
        let earliest = tat.checked_sub(tolerance).unwrap_or(now);
        if earliest <= now {
            s.tat = tat + interval;
            Duration::ZERO
        } else {
            earliest - now
        }
    }

    /// Waits for a slot.
    pub async fn acquire(&self) {
        loop {
            let wait = self.reserve(Instant::now());
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// A request was throttled: multiplicative decrease. Returns the new
    /// rate when it changed.
    pub fn on_throttle(&self) -> Option<f64> {
        self.throttled_at(Instant::now())
    }

    fn throttled_at(&self, now: Instant) -> Option<f64> {
        let mut s = self.lock();
        if s.last_decrease
            .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_WINDOW)
            || s.rate <= s.floor
        {
            return None;
        }
        s.rate = (s.rate / 2.0).max(s.floor);
        s.last_decrease = Some(now);
        Some(s.rate)
    }

    /// A request was accepted: additive increase (`ceiling / 20` per second
    /// at the current rate), up to the ceiling.
    pub fn on_success(&self) {
        let mut s = self.lock();
        if s.rate < s.ceiling {
            s.rate = (s.rate + s.ceiling / 20.0 / s.rate).min(s.ceiling);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_halve_once_per_window_down_to_the_floor() {
        let r = AdaptiveRate::new(500);
        let t0 = Instant::now();
        assert_eq!(r.throttled_at(t0), Some(250.0));
        assert_eq!(
            r.throttled_at(t0 + Duration::from_millis(50)),
            None,
            "same burst"
        );
        let mut t = t0;
        for _ in 0..20 {
            t += DECREASE_WINDOW;
            r.throttled_at(t);
        }
        assert_eq!(r.current(), 5.0, "floor is ceiling / 100");
        r.set_ceiling(100);
        assert_eq!(
            (r.current(), r.ceiling()),
            (5.0, 100.0),
            "the rate in use stays"
        );
        r.set_ceiling(2);
        assert_eq!(r.current(), 2.0, "within the new ceiling");
    }

    #[test]
    fn successes_climb_back_to_the_ceiling_and_no_further() {
        let r = AdaptiveRate::new(500);
        let t0 = Instant::now();
        let mut t = t0;
        for _ in 0..10 {
            t += DECREASE_WINDOW;
            r.throttled_at(t);
        }
        // About 20 s of requests at the allowed rate.
        let mut sent = 0.0;
        let mut secs = 0.0;
        while r.current() < 500.0 {
            let rate = r.current();
            r.on_success();
            sent += 1.0;
            secs += 1.0 / rate;
            assert!(sent < 1e6, "never reaches the ceiling");
        }
        assert!((10.0..30.0).contains(&secs), "{secs} s to recover");
        r.on_success();
        assert_eq!(r.current(), 500.0);
    }

    #[test]
    fn pacing_allows_a_small_burst_then_spaces_requests() {
        let r = AdaptiveRate::new(100);
        let now = Instant::now();
        let burst = (0..20).take_while(|_| r.reserve(now).is_zero()).count();
        assert_eq!(burst, 10, "a tenth of a second's worth at once");
        let wait = r.reserve(now);
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(10),
            "{wait:?}"
        );
    }
}
