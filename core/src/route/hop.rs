//! What a node does with traffic between sites: where its own routed copies
//! leave ([`uplink`]), and what it does with a routed item that reaches it
//! ([`plan_hop`]). The daemon and the simulator both ask these, so the
//! simulator's gateways forward exactly as the daemon's do.
//!
//! A gateway is the only hop inside a site: it takes items from its LAN
//! members up to the relay and items from the relay down to its LAN. Any
//! other node only takes what is addressed to itself; everything else it
//! answers as unreachable, so the sender retries along another path rather
//! than trusting a node that is not (or no longer) the gateway.

use crate::site::{GatewayRef, Role};
use crate::DeviceId;

use super::MAX_ROUTE_DEVICES;

/// The answer text for a device a hop cannot reach.
pub const NOT_REACHABLE: &str = "not reachable through this node";

/// Where this node's routed copies go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uplink {
    /// Through the site's gateway, over the LAN.
    Gateway(DeviceId),
    /// Straight to the relay.
    Relay,
    /// Nowhere: no relay is configured, or the gateway is not known yet.
    Nowhere,
}

/// The uplink of a node in `role` that follows `gateway`: a member sends
/// through its gateway, a gateway or roaming device to the relay itself.
pub fn uplink(role: Role, gateway: Option<GatewayRef>) -> Uplink {
    match role {
        Role::Member => gateway.map_or(Uplink::Nowhere, |g| Uplink::Gateway(g.device)),
        Role::Gateway | Role::Roaming => Uplink::Relay,
        Role::Standalone => Uplink::Nowhere,
    }
}

/// Who handed this node a routed item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HopSource {
    /// The relay, over this node's relay connection.
    Relay,
    /// An authenticated member of this organisation on the LAN.
    Member,
    /// Anyone else.
    Other,
}

/// What a node knows about itself when a routed item arrives.
#[derive(Clone, Copy, Debug)]
pub struct HopState {
    /// This device.
    pub me: DeviceId,
    /// Whether it is its site's gateway now.
    pub gateway: bool,
    /// Whether its relay connection is up.
    pub relay_up: bool,
}

/// Where the devices of one routed item go from this hop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HopPlan {
    /// The item is for this device: take it.
    pub take: bool,
    /// Devices to hand it to over their LAN connection.
    pub to_lan: Vec<DeviceId>,
    /// Devices to send it on to through the relay (one copy for all).
    pub to_relay: Vec<DeviceId>,
    /// Devices this hop cannot reach: answer [`NOT_REACHABLE`].
    pub unreachable: Vec<DeviceId>,
}

/// Plans a routed item addressed to `to`, from `source`, at a node in
/// `state`; `on_lan` says which devices have a LAN connection here.
/// Duplicate devices count once and at most [`MAX_ROUTE_DEVICES`] are
/// served (a route never names more).
///
/// # Example
/// ```
/// use tincan_core::route::hop::{plan_hop, HopSource, HopState};
/// use tincan_core::DeviceId;
///
/// let (me, member, away) = (DeviceId([1; 20]), DeviceId([2; 20]), DeviceId([3; 20]));
/// let state = HopState { me, gateway: true, relay_up: true };
/// // From the relay: the LAN member gets it; a device not here does not.
/// let plan = plan_hop(vec![member, away], HopSource::Relay, state, |d| *d == member);
/// assert_eq!((plan.to_lan, plan.unreachable), (vec![member], vec![away]));
/// ```
pub fn plan_hop(
    mut to: Vec<DeviceId>,
    source: HopSource,
    state: HopState,
    on_lan: impl Fn(&DeviceId) -> bool,
) -> HopPlan {
    to.sort();
    to.dedup();
    to.truncate(MAX_ROUTE_DEVICES);
    let forwards = state.gateway && source != HopSource::Other;
    let mut plan = HopPlan::default();
    for device in to {
        if device == state.me {
            plan.take = true;
        } else if forwards && on_lan(&device) {
            plan.to_lan.push(device);
        } else if state.gateway && source == HopSource::Member && state.relay_up {
            plan.to_relay.push(device);
        } else {
            plan.unreachable.push(device);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(n: u8) -> DeviceId {
        DeviceId([n; 20])
    }

    fn gateway(relay_up: bool) -> HopState {
        HopState {
            me: dev(1),
            gateway: true,
            relay_up,
        }
    }

    #[test]
    fn members_send_through_their_gateway_and_gateways_to_the_relay() {
        let g = GatewayRef {
            device: dev(9),
            epoch: 3,
        };
        assert_eq!(uplink(Role::Member, Some(g)), Uplink::Gateway(dev(9)));
        assert_eq!(uplink(Role::Member, None), Uplink::Nowhere);
        assert_eq!(uplink(Role::Gateway, Some(g)), Uplink::Relay);
        assert_eq!(uplink(Role::Roaming, None), Uplink::Relay);
        assert_eq!(uplink(Role::Standalone, None), Uplink::Nowhere);
    }

    #[test]
    fn a_gateway_takes_its_own_sends_lan_devices_down_and_the_rest_up() {
        let lan = |d: &DeviceId| *d == dev(2);
        let to = vec![dev(3), dev(1), dev(2), dev(2)];
        let plan = plan_hop(to.clone(), HopSource::Member, gateway(true), lan);
        assert!(plan.take);
        assert_eq!(plan.to_lan, vec![dev(2)]);
        assert_eq!(plan.to_relay, vec![dev(3)]);
        assert!(plan.unreachable.is_empty());
        // From the relay nothing goes back up.
        let plan = plan_hop(to.clone(), HopSource::Relay, gateway(true), lan);
        assert_eq!((plan.to_relay, plan.unreachable), (vec![], vec![dev(3)]));
        // Without a relay connection a member's item cannot go up.
        let plan = plan_hop(to, HopSource::Member, gateway(false), lan);
        assert_eq!(plan.unreachable, vec![dev(3)]);
    }

    #[test]
    fn a_node_that_is_not_gateway_or_a_stranger_forwards_nothing() {
        let lan = |_: &DeviceId| true;
        let member = HopState {
            gateway: false,
            ..gateway(true)
        };
        let plan = plan_hop(vec![dev(1), dev(2)], HopSource::Member, member, lan);
        assert!(plan.take);
        assert_eq!(plan.unreachable, vec![dev(2)]);
        let plan = plan_hop(vec![dev(2)], HopSource::Other, gateway(true), lan);
        assert_eq!(plan.unreachable, vec![dev(2)]);
    }

    #[test]
    fn a_route_serves_at_most_the_cap() {
        let to: Vec<DeviceId> = (0..MAX_ROUTE_DEVICES as u32 + 5)
            .map(|i| {
                let mut id = [0u8; 20];
                id[..4].copy_from_slice(&i.to_be_bytes());
                DeviceId(id)
            })
            .collect();
        let plan = plan_hop(to, HopSource::Relay, gateway(true), |_| true);
        assert_eq!(plan.to_lan.len(), MAX_ROUTE_DEVICES);
    }
}
