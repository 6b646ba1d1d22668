//! Who gets this user's presence, and when: every reachable device once
//! after each change, and every device that becomes reachable (a late
//! joiner, a restarted peer), so nobody waits for the next change to see
//! it. A device whose presence this node does not know yet is asked for
//! it in the same update (`ask`), and a blocked user's devices get the
//! offline update instead, so blocking cannot be told from going
//! offline.
//!
//! Presence is ephemeral (sent once, never stored or retried); what this
//! tracks is only who has the current one.

use std::collections::BTreeSet;

use crate::DeviceId;

/// How a reachable device stands for presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Its presence is known: it gets this user's presence.
    Known,
    /// Its presence is not known: it gets this user's presence with a
    /// request for its own.
    Unknown,
    /// Its user is blocked: it gets the offline update.
    Blocked,
    /// Nothing can be sealed to it yet (no certificate): skipped, and
    /// tried again next time.
    Unsealable,
}

/// The devices one round of sends goes to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpreadPlan {
    /// Get this user's presence.
    pub known: Vec<DeviceId>,
    /// Get this user's presence, asking for theirs.
    pub unknown: Vec<DeviceId>,
    /// Get the offline update.
    pub blocked: Vec<DeviceId>,
}

impl SpreadPlan {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty() && self.unknown.is_empty() && self.blocked.is_empty()
    }
}

/// The devices that have this user's current presence.
#[derive(Clone, Debug, Default)]
pub struct PresenceSpread {
    sent: BTreeSet<DeviceId>,
}

impl PresenceSpread {
    /// Nobody has it yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// This user's presence changed: everybody needs it again.
    pub fn handle_changed(&mut self) {
        self.sent.clear();
    }

    /// `device` asked for this user's presence (it restarted, or met this
    /// node for the first time): it gets it again.
    pub fn handle_asked(&mut self, device: &DeviceId) {
        self.sent.remove(device);
    }

    /// Plans the sends to the `reachable` devices that lack the current
    /// presence, as `audience` ranks them, and counts them as having it.
    /// A device that is no longer reachable loses it (it will need it
    /// again when it is back).
    ///
    /// ```
    /// use std::collections::BTreeSet;
    /// use tincan_core::presence::spread::{Audience, PresenceSpread};
    /// use tincan_core::DeviceId;
    ///
    /// let (a, b) = (DeviceId([1; 20]), DeviceId([2; 20]));
    /// let mut spread = PresenceSpread::new();
    /// let reachable = BTreeSet::from([a, b]);
    /// let plan = spread.plan(&reachable, |d| if *d == a { Audience::Known } else { Audience::Unknown });
    /// assert_eq!((plan.known, plan.unknown), (vec![a], vec![b]));
    /// // Nothing changed: nothing to send.
    /// assert!(spread.plan(&reachable, |_| Audience::Known).is_empty());
    /// ```
    pub fn plan(
        &mut self,
        reachable: &BTreeSet<DeviceId>,
        audience: impl Fn(&DeviceId) -> Audience,
    ) -> SpreadPlan {
        self.sent.retain(|d| reachable.contains(d));
        let mut plan = SpreadPlan::default();
        for device in reachable.difference(&self.sent) {
            match audience(device) {
                Audience::Known => plan.known.push(*device),
                Audience::Unknown => plan.unknown.push(*device),
                Audience::Blocked => plan.blocked.push(*device),
                Audience::Unsealable => {}
            }
        }
        let planned = plan.known.iter().chain(&plan.unknown).chain(&plan.blocked);
        self.sent.extend(planned.copied());
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> DeviceId {
        DeviceId([n; 20])
    }

    fn set(ns: &[u8]) -> BTreeSet<DeviceId> {
        ns.iter().map(|n| d(*n)).collect()
    }

    #[test]
    fn a_change_goes_to_everyone_again_and_a_newcomer_gets_it_once() {
        let mut spread = PresenceSpread::new();
        assert_eq!(
            spread.plan(&set(&[1, 2]), |_| Audience::Known).known,
            [d(1), d(2)]
        );
        // A newcomer: only it.
        assert_eq!(
            spread.plan(&set(&[1, 2, 3]), |_| Audience::Known).known,
            [d(3)]
        );
        spread.handle_changed();
        assert_eq!(
            spread.plan(&set(&[1, 2, 3]), |_| Audience::Known).known,
            [d(1), d(2), d(3)]
        );
    }

    #[test]
    fn a_device_that_went_away_or_asked_gets_it_again() {
        let mut spread = PresenceSpread::new();
        spread.plan(&set(&[1, 2]), |_| Audience::Known);
        // 2 left and came back; 1 restarted and asked.
        assert!(spread.plan(&set(&[1]), |_| Audience::Known).is_empty());
        spread.handle_asked(&d(1));
        let plan = spread.plan(&set(&[1, 2]), |_| Audience::Known);
        assert_eq!(plan.known, [d(1), d(2)]);
    }

    #[test]
    fn blocked_users_get_the_offline_update_and_unsealable_devices_wait() {
        let mut spread = PresenceSpread::new();
        let rank = |x: &DeviceId| match x.0[0] {
            1 => Audience::Blocked,
            2 => Audience::Unknown,
            _ => Audience::Unsealable,
        };
        let plan = spread.plan(&set(&[1, 2, 3]), rank);
        assert_eq!(plan.blocked, [d(1)]);
        assert_eq!(plan.unknown, [d(2)]);
        assert!(plan.known.is_empty());
        // 3 now has a certificate: it is sent to then.
        let plan = spread.plan(&set(&[1, 2, 3]), |_| Audience::Known);
        assert_eq!(plan.known, [d(3)]);
    }
}
