//! Throughput over time, with time as an input: a meter for the rate and
//! ETA shown to users, and a token bucket for a configured upload cap.

use std::collections::VecDeque;

/// How far back the meter looks.
const WINDOW_MS: u64 = 5_000;

/// The recent rate of a growing byte count.
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    samples: VecDeque<(u64, u64)>,
}

impl RateMeter {
    /// A meter with no samples.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `bytes` were done in total at `now` (ms).
    pub fn handle_progress(&mut self, now: u64, bytes: u64) {
        if let Some(&(t, b)) = self.samples.back() {
            if bytes < b || now < t {
                self.samples.clear();
            }
        }
        self.samples.push_back((now, bytes));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|&(t, _)| t + WINDOW_MS < now)
        {
            self.samples.pop_front();
        }
    }

    /// Bytes per second over the last few seconds (as of `now`), if known.
    pub fn rate(&self, now: u64) -> Option<u64> {
        let (&(t0, b0), &(_, b1)) = (self.samples.front()?, self.samples.back()?);
        let elapsed = now.saturating_sub(t0);
        if elapsed < 200 {
            return None;
        }
        Some((b1 - b0).saturating_mul(1000) / elapsed)
    }

    /// Seconds until `total` at the current rate, if there is one.
    pub fn eta_secs(&self, now: u64, total: u64) -> Option<u64> {
        let done = self.samples.back()?.1;
        let rate = self.rate(now).filter(|r| *r > 0)?;
        Some(total.saturating_sub(done).div_ceil(rate))
    }
}

/// A token bucket (GCRA): at most `rate` bytes per second on average,
/// bursts of up to one second's worth.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: u64,
    /// The theoretical time (ms) at which everything reserved so far has
    /// been sent at `rate`.
    tat: u64,
}

/// How much may be sent ahead of the average, in ms of `rate`.
const BURST_MS: u64 = 1000;

impl TokenBucket {
    /// A bucket of `rate` bytes per second (0 = unlimited).
    pub fn new(rate: u64) -> Self {
        Self { rate, tat: 0 }
    }

    /// Reserves `bytes` at `now` (ms); returns how many ms the caller must
    /// wait before sending them.
    #[must_use]
    pub fn reserve(&mut self, now: u64, bytes: u64) -> u64 {
        if self.rate == 0 {
            return 0;
        }
        let cost = bytes.saturating_mul(1000) / self.rate;
        self.tat = self.tat.max(now).saturating_add(cost);
        self.tat.saturating_sub(now.saturating_add(BURST_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_reports_rate_and_eta() {
        let mut m = RateMeter::new();
        assert_eq!(m.rate(0), None);
        m.handle_progress(1_000, 0);
        m.handle_progress(2_000, 10_000);
        assert_eq!(m.rate(2_000), Some(10_000));
        assert_eq!(m.eta_secs(2_000, 30_000), Some(2));
        // Old samples fall out of the window.
        m.handle_progress(9_000, 80_000);
        m.handle_progress(10_000, 90_000);
        assert_eq!(m.rate(10_000), Some(10_000));
        // A reset (restart) starts over.
        m.handle_progress(11_000, 5);
        assert_eq!(m.rate(11_000), None);
    }

    #[test]
    fn bucket_spaces_out_reservations() {
        let mut b = TokenBucket::new(1000);
        // The first second's worth goes at once (burst).
        assert_eq!(b.reserve(10_000, 500), 0);
        assert_eq!(b.reserve(10_000, 500), 0);
        // Then one waits for the tokens.
        let w1 = b.reserve(10_000, 1000);
        let w2 = b.reserve(10_000, 1000);
        assert!(w2 > w1, "{w1} {w2}");
        assert!((900..=2100).contains(&w2), "{w2}");
        // Over a long run, bytes / time ≈ rate.
        let mut b = TokenBucket::new(1_000_000);
        let mut last = 0;
        for _ in 0..100 {
            last = b.reserve(0, 100_000);
        }
        assert!((8_500..=10_000).contains(&last), "{last}");
        assert_eq!(TokenBucket::new(0).reserve(5, u64::MAX), 0);
    }
}
