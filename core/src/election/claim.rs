//! One claim of a site lease by this node: its epoch, its send schedule and
//! the step-down deadline.
//!
//! The deadline is the point of this file. The relay sets a lease to expire
//! `ttl` after a claim *arrives*; the holder cannot see that instant, but it
//! knows when it *sent* the claim, which is earlier. So after a grant the
//! holder steps down at `send time of the granted claim + step_down_after`
//! (with `step_down_after < ttl`), which on its own clock is before the
//! relay's lease could have lapsed — no clock synchronisation needed.
//!
//! Grants do not say which claim they answer (renewals are identical), so
//! answers are matched to the *oldest* unanswered claim, which can only make
//! the deadline earlier than the truth (safe). Claims unanswered for longer
//! than `ttl - step_down_after` are forgotten as lost, so one lost claim does
//! not shift every later match; the price is an assumption that a relay
//! round trip takes less than that margin (a quarter of the lease TTL:
//! 300 ms by default): an answer slower than the margin is matched to a
//! newer claim, or ignored when there is none.

use std::collections::VecDeque;

use crate::lease::LeaseGrant;
use crate::site::SiteId;

use super::ElectionConfig;

/// A claim in progress (not yet granted) or a held lease (granted).
#[derive(Clone, Debug)]
pub(super) struct Claim {
    /// The site claimed.
    pub(super) site: SiteId,
    /// The epoch claimed; the lease epoch once granted.
    pub(super) epoch: u64,
    /// Whether the relay granted this epoch.
    pub(super) granted: bool,
    /// The relay's latest signed grant, shown to peers in beacons.
    pub(super) grant: Option<LeaseGrant>,
    /// Send times of claims not yet answered, oldest first.
    unanswered: VecDeque<u64>,
    /// When the last claim was sent, if ever.
    last_sent: Option<u64>,
    /// When the next claim (or renewal) is due.
    next_send_at: u64,
    /// When a granted holder must step down unless renewed again.
    step_down_at: u64,
}

impl Claim {
    /// A claim of `site` at `epoch`, to be sent at once.
    pub(super) fn new(site: SiteId, epoch: u64, now: u64) -> Self {
        Self {
            site,
            epoch,
            granted: false,
            grant: None,
            unanswered: VecDeque::new(),
            last_sent: None,
            next_send_at: now,
            step_down_at: 0,
        }
    }

    /// Whether a claim was ever sent (so the relay may hold a lease for it).
    pub(super) fn ever_sent(&self) -> bool {
        self.last_sent.is_some()
    }

    /// Whether a claim should be sent now.
    pub(super) fn is_due(&self, now: u64) -> bool {
        self.next_send_at <= now
    }

    /// Records a claim sent at `now`. Until it is answered the next one
    /// follows after `claim_retry_ms`, so a lost claim or renewal is
    /// repeated quickly rather than after a whole renew interval.
    pub(super) fn sent(&mut self, now: u64, config: &ElectionConfig) {
        self.unanswered.push_back(now);
        self.last_sent = Some(now);
        self.next_send_at = now.saturating_add(config.claim_retry_ms);
    }

    /// Matches an answer arriving at `now` to the oldest unanswered claim
    /// still inside the answer window, and returns that claim's send time.
    fn match_answer(&mut self, now: u64, config: &ElectionConfig) -> Option<u64> {
        let window = config.answer_window_ms();
        while self
            .unanswered
            .front()
            .is_some_and(|&sent| sent.saturating_add(window) <= now)
        {
            self.unanswered.pop_front();
        }
        self.unanswered.pop_front()
    }

    /// Handles a grant of this claim. Returns whether it was accepted (a
    /// grant that cannot be matched to a recent claim is not trusted to
    /// extend the deadline).
    pub(super) fn handle_granted(&mut self, now: u64, config: &ElectionConfig) -> bool {
        let Some(sent) = self.match_answer(now, config) else {
            return false;
        };
        let deadline = sent.saturating_add(config.step_down_after_ms);
        if deadline <= now {
            return false;
        }
        self.step_down_at = self.step_down_at.max(deadline);
        self.granted = true;
        if let Some(last) = self.last_sent {
            self.next_send_at = last.saturating_add(config.renew_interval_ms);
        }
        true
    }

    /// Handles a refusal of this claim: it answers one claim, like a grant.
    pub(super) fn handle_refused(&mut self, now: u64, config: &ElectionConfig) {
        self.match_answer(now, config);
    }

    /// Moves a not-yet-granted claim to a newer `epoch` (the relay said ours
    /// was stale) and sends it at once: answers for the old epoch no longer
    /// count.
    pub(super) fn rebase(&mut self, epoch: u64, now: u64) {
        debug_assert!(!self.granted, "a granted claim steps down instead");
        self.epoch = epoch;
        self.unanswered.clear();
        self.next_send_at = now;
    }

    /// Whether a granted holder has run out of time.
    pub(super) fn must_step_down(&self, now: u64) -> bool {
        self.granted && self.step_down_at <= now
    }

    /// The next instant this claim needs attention.
    pub(super) fn next_timeout(&self) -> u64 {
        if self.granted {
            self.next_send_at.min(self.step_down_at)
        } else {
            self.next_send_at
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DeviceId;

    fn config() -> ElectionConfig {
        ElectionConfig::new(DeviceId([1; 20]))
    }

    #[test]
    fn deadline_counts_from_the_send_time_of_the_matched_claim() {
        let cfg = config();
        let mut claim = Claim::new(SiteId([0; 16]), 1, 0);
        claim.sent(0, &cfg);
        claim.sent(250, &cfg);
        // The answer may be for either claim; the older is assumed.
        assert!(claim.handle_granted(260, &cfg));
        assert!(!claim.must_step_down(cfg.step_down_after_ms - 1));
        assert!(claim.must_step_down(cfg.step_down_after_ms));
        assert_eq!(claim.next_timeout(), 250 + cfg.renew_interval_ms);
        // The second answer extends the deadline to the second claim.
        assert!(claim.handle_granted(270, &cfg));
        assert!(!claim.must_step_down(250 + cfg.step_down_after_ms - 1));
    }

    #[test]
    fn lost_claims_are_forgotten_after_the_answer_window() {
        let cfg = config();
        let mut claim = Claim::new(SiteId([0; 16]), 1, 0);
        claim.sent(0, &cfg); // lost
        claim.sent(1_000, &cfg);
        assert!(claim.handle_granted(1_020, &cfg));
        assert!(!claim.must_step_down(1_000 + cfg.step_down_after_ms - 1));
        // An answer with nothing recent to match is not trusted.
        assert!(!claim.handle_granted(1_030, &cfg));
    }

    #[test]
    fn refusals_answer_claims_too() {
        let cfg = config();
        let mut claim = Claim::new(SiteId([0; 16]), 1, 0);
        claim.sent(0, &cfg);
        claim.sent(250, &cfg);
        claim.handle_refused(255, &cfg);
        assert!(claim.handle_granted(260, &cfg));
        assert!(!claim.must_step_down(250 + cfg.step_down_after_ms - 1));
        // A stale refusal moves a pending claim up and sends it at once,
        // forgetting the old epoch's claims.
        let mut pending = Claim::new(SiteId([0; 16]), 1, 0);
        pending.sent(0, &cfg);
        pending.rebase(2, 10);
        assert!(pending.is_due(10));
        assert!(!pending.handle_granted(20, &cfg));
    }
}
