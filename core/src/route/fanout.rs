//! Where the copies of this node's own envelopes go: each destination
//! device straight over its LAN link when it has one, the devices of other
//! sites as one routed copy per message through the uplink (so a message
//! crosses each WAN link once, whatever the number of its devices there),
//! and nowhere when neither path exists yet, in which case the attempt
//! fails and the outbox tries again later.
//!
//! A LAN link wins over the route: it is direct, costs no relay traffic,
//! and is what a device on the same LAN as its peer expects. The daemon
//! asks this for its outbox's transmits and for ephemeral state (typing,
//! presence), which takes the same paths but is sent once.

use std::collections::BTreeMap;

use crate::outbox::Transmit;
use crate::{DeviceId, MessageId};

/// Why an attempt to a device with a LAN link to nobody and no route failed.
pub const NO_CONNECTION: &str = "no connection";

/// Why an attempt to a device of another site failed while this node has
/// no uplink (no gateway known, relay down).
pub const NO_PATH: &str = "no path";

/// What this node knows about the way to a device now.
pub trait Paths {
    /// The device has a live LAN connection to this node.
    fn on_lan(&self, device: &DeviceId) -> bool;
    /// The device is known at another site (the relay's directory lists
    /// it), so a routed copy can reach it or the relay's mailbox.
    fn elsewhere(&self, device: &DeviceId) -> bool;
    /// This node's uplink (its gateway, or the relay itself) is up.
    fn uplink_up(&self) -> bool;
}

/// Where one round of transmits goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FanOut {
    /// Straight over each device's LAN link.
    pub lan: Vec<Transmit>,
    /// One routed copy per message, naming these devices.
    pub routed: BTreeMap<MessageId, Vec<DeviceId>>,
    /// No way there now: fail the attempt with the reason ([`NO_CONNECTION`]
    /// or [`NO_PATH`]); the outbox retries with backoff.
    pub unreachable: Vec<(Transmit, &'static str)>,
}

impl FanOut {
    /// Plans `transmits` over `paths`.
    ///
    /// ```
    /// use tincan_core::outbox::Transmit;
    /// use tincan_core::route::fanout::{FanOut, Paths, NO_CONNECTION};
    /// use tincan_core::{DeviceId, MessageId};
    ///
    /// struct Office;
    /// impl Paths for Office {
    ///     fn on_lan(&self, d: &DeviceId) -> bool { d.0[0] == 1 }
    ///     fn elsewhere(&self, d: &DeviceId) -> bool { d.0[0] == 2 || d.0[0] == 3 }
    ///     fn uplink_up(&self) -> bool { true }
    /// }
    /// let id = MessageId([7; 16]);
    /// let to = |n: u8| Transmit { message_id: id, device: DeviceId([n; 20]) };
    /// let plan = FanOut::plan([to(1), to(2), to(3), to(4)], &Office);
    /// assert_eq!(plan.lan, [to(1)]);
    /// assert_eq!(plan.routed[&id], [DeviceId([2; 20]), DeviceId([3; 20])]); // one copy
    /// assert_eq!(plan.unreachable, [(to(4), NO_CONNECTION)]);
    /// ```
    pub fn plan(transmits: impl IntoIterator<Item = Transmit>, paths: &impl Paths) -> FanOut {
        let mut plan = FanOut::default();
        for t in transmits {
            if paths.on_lan(&t.device) {
                plan.lan.push(t);
            } else if !paths.elsewhere(&t.device) {
                plan.unreachable.push((t, NO_CONNECTION));
            } else if paths.uplink_up() {
                let devices = plan.routed.entry(t.message_id).or_default();
                if !devices.contains(&t.device) {
                    devices.push(t.device);
                }
            } else {
                plan.unreachable.push((t, NO_PATH));
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    struct Known {
        lan: BTreeSet<u8>,
        elsewhere: BTreeSet<u8>,
        uplink: bool,
    }

    impl Paths for Known {
        fn on_lan(&self, d: &DeviceId) -> bool {
            self.lan.contains(&d.0[0])
        }
        fn elsewhere(&self, d: &DeviceId) -> bool {
            self.elsewhere.contains(&d.0[0])
        }
        fn uplink_up(&self) -> bool {
            self.uplink
        }
    }

    fn to(m: u8, d: u8) -> Transmit {
        Transmit {
            message_id: MessageId([m; 16]),
            device: DeviceId([d; 20]),
        }
    }

    fn known(lan: &[u8], elsewhere: &[u8], uplink: bool) -> Known {
        Known {
            lan: lan.iter().copied().collect(),
            elsewhere: elsewhere.iter().copied().collect(),
            uplink,
        }
    }

    #[test]
    fn a_lan_link_wins_over_the_route_even_for_a_device_the_directory_knows() {
        // A laptop back in the office: the relay still lists it, but the
        // LAN link is direct.
        let plan = FanOut::plan([to(1, 5)], &known(&[5], &[5], true));
        assert_eq!(plan.lan, [to(1, 5)]);
        assert!(plan.routed.is_empty());
    }

    #[test]
    fn devices_elsewhere_share_one_routed_copy_per_message() {
        let plan = FanOut::plan(
            [to(1, 2), to(1, 3), to(2, 2), to(1, 3)],
            &known(&[], &[2, 3], true),
        );
        assert_eq!(plan.routed.len(), 2, "one copy per message");
        assert_eq!(
            plan.routed[&MessageId([1; 16])],
            [DeviceId([2; 20]), DeviceId([3; 20])],
            "each device named once"
        );
        assert_eq!(plan.routed[&MessageId([2; 16])], [DeviceId([2; 20])]);
    }

    #[test]
    fn without_an_uplink_devices_elsewhere_fail_with_no_path_and_unknown_ones_with_no_connection() {
        let plan = FanOut::plan([to(1, 2), to(1, 9)], &known(&[], &[2], false));
        assert!(plan.routed.is_empty());
        assert_eq!(
            plan.unreachable,
            [(to(1, 2), NO_PATH), (to(1, 9), NO_CONNECTION)]
        );
    }
}
