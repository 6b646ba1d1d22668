//! What travels on the event queue (packets, timers, beacons), and the
//! queue itself (`wheel`): a priority queue ordered by (virtual time,
//! sequence).

mod wheel;

use std::sync::Arc;

use tincan_core::route::custody::MailKey;
use tincan_core::route::Answer;
use tincan_core::{Beacon, DeviceId, Envelope, LeaseRefusal, MessageId, SiteId};

use super::relay::PendingGrant;
use super::{NodeIdx, SiteIdx};

pub(crate) use wheel::Queue;

/// Where a packet arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hop {
    /// A device.
    Node(NodeIdx),
    /// The node a sender believes is its site's gateway, on its LAN side
    /// (traffic leaving the site). It forwards only while it is gateway.
    GatewayOut(NodeIdx),
    /// The relay in the middle of the WAN.
    Relay,
    /// The node the relay holds as a site's gateway, on its WAN side
    /// (traffic entering the site).
    GatewayIn(NodeIdx),
}

/// A recipient's answer to one envelope, as the daemon sends it back on
/// the envelope's stream; or the relay's answers for the devices it took
/// custody of (`Frame::Answers`), on the sender's routed stream.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    /// The message answered.
    pub(crate) message_id: MessageId,
    /// The device that sent the message (where the answer goes).
    pub(crate) to_device: DeviceId,
    /// The device that answers.
    pub(crate) from_device: DeviceId,
    /// `Frame::Receipt`, `Frame::Refused` or (from the relay)
    /// `Frame::Answers` (boxed: a frame is large and every queued event
    /// would carry its size).
    pub(crate) frame: Box<tincan_core::wire::Frame>,
}

/// Something on the wire.
#[derive(Clone, Debug)]
pub(crate) enum Packet {
    /// A sealed envelope for some devices, grouped by destination site.
    Envelope {
        /// The envelope, shared by every copy.
        envelope: Arc<Envelope>,
        /// Length of its encoded `Frame::Envelope` (real bytes).
        frame_len: usize,
        /// The site it left.
        from: SiteIdx,
        /// Destination devices: before the relay one group labelled with
        /// the sending site; from the relay on, the site the relay found
        /// them in.
        to: Vec<(SiteIdx, Vec<DeviceId>)>,
        /// Whether this is every listed device's first attempt (copies
        /// of later attempts are retransmissions).
        first: bool,
        /// Handed over from the relay's mailbox: the device answers the
        /// relay ([`Packet::MailAnswer`]), which settles its copy.
        held: bool,
    },
    /// A recipient's answer to an envelope (a signed receipt or a
    /// refusal) on its way back to the sending device.
    Receipt {
        /// The answer.
        reply: Reply,
        /// Length of its encoded frame.
        frame_len: usize,
        /// The site it left.
        from: SiteIdx,
        /// The site the sender device was in when the answer left.
        to_site: SiteIdx,
        /// A receipt handed over from the relay's mailbox: the sender
        /// answers the relay that it took it.
        held: bool,
    },
    /// A device's answer to an item the relay handed over from its
    /// mailbox, on its way back to the relay (the flush's stream).
    MailAnswer {
        /// The held copy answered.
        key: MailKey,
        /// The answer (boxed: a receipt is large).
        answer: Box<Answer>,
        /// Length of its encoded `Frame::Answers`.
        frame_len: usize,
        /// The site it left.
        from: SiteIdx,
    },
    /// A gateway candidate claims or renews its site's lease at the relay.
    Claim {
        /// The claiming node.
        from: NodeIdx,
        /// Its incarnation, so the answer finds the same life.
        incarnation: u32,
        /// The site.
        site: SiteId,
        /// The epoch claimed.
        epoch: u64,
    },
    /// A gateway gives its lease back.
    Release {
        /// The node.
        from: NodeIdx,
        /// The site.
        site: SiteId,
        /// The epoch.
        epoch: u64,
    },
    /// The relay's answer to a claim.
    Answer {
        /// The claimer's incarnation.
        incarnation: u32,
        /// The site claimed.
        site: SiteId,
        /// The epoch claimed.
        epoch: u64,
        /// The signed grant (being signed and checked on the relay's
        /// signer thread), or why not.
        result: Result<PendingGrant, LeaseRefusal>,
    },
}

impl Packet {
    /// This packet for one device of `site` (an answer is for one device
    /// already).
    pub(crate) fn for_device(&self, site: SiteIdx, device: DeviceId) -> Packet {
        match self {
            Packet::Envelope {
                envelope,
                frame_len,
                from,
                first,
                held,
                ..
            } => Packet::Envelope {
                envelope: Arc::clone(envelope),
                frame_len: *frame_len,
                from: *from,
                to: vec![(site, vec![device])],
                first: *first,
                held: *held,
            },
            other => other.clone(),
        }
    }

    /// This packet for `devices` only (keeping the site groups).
    pub(crate) fn only(&self, devices: &[DeviceId]) -> Packet {
        match self {
            Packet::Envelope {
                envelope,
                frame_len,
                from,
                to,
                first,
                held,
            } => Packet::Envelope {
                envelope: Arc::clone(envelope),
                frame_len: *frame_len,
                from: *from,
                to: to
                    .iter()
                    .map(|(s, d)| {
                        (
                            *s,
                            d.iter().filter(|x| devices.contains(x)).copied().collect(),
                        )
                    })
                    .filter(|(_, d): &(SiteIdx, Vec<DeviceId>)| !d.is_empty())
                    .collect(),
                first: *first,
                held: *held,
            },
            other => other.clone(),
        }
    }

    /// Bytes of this copy on a link: the frame plus a 20-byte device id per
    /// routed destination (the routing header a gateway or relay reads).
    pub(crate) fn wire_len(&self) -> u64 {
        let len = match self {
            Packet::Envelope { frame_len, to, .. } => {
                frame_len + 20 * to.iter().map(|(_, d)| d.len()).sum::<usize>()
            }
            Packet::Receipt { frame_len, .. } => frame_len + 20,
            Packet::MailAnswer { frame_len, .. } => *frame_len,
            // A claim or answer: ids, epoch and a signature.
            Packet::Claim { .. } | Packet::Release { .. } => 64,
            Packet::Answer { .. } => 160,
        };
        len as u64
    }
}

/// What happens at a point in virtual time.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    /// A packet reaches a hop.
    Arrive {
        /// Where.
        at: Hop,
        /// What.
        packet: Packet,
    },
    /// A node's outbox asked to be woken (its `poll_timeout`).
    Wake {
        /// The node.
        node: NodeIdx,
        /// The node's incarnation when scheduled; stale after a crash.
        incarnation: u32,
    },
    /// A beacon reaches every other running node of `site` (a LAN
    /// datagram to each peer, each lost independently).
    Beacon {
        /// The sender.
        from: NodeIdx,
        /// The site it was sent in.
        site: SiteIdx,
        /// What it says.
        beacon: Beacon,
    },
    /// A node's gateway election asked to be woken.
    ElectionWake {
        /// The node.
        node: NodeIdx,
        /// The node's incarnation when scheduled.
        incarnation: u32,
    },
    /// The relay's mailbox flush is due (it holds something).
    RelayTick,
    /// A delivery attempt got no receipt in time.
    AttemptTimeout {
        /// The sending node.
        node: NodeIdx,
        /// The node's incarnation when scheduled.
        incarnation: u32,
        /// The message.
        message_id: MessageId,
        /// The device it was sent to.
        device: DeviceId,
        /// Which attempt this timer belongs to.
        attempt: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wake(node: usize) -> Event {
        Event::Wake {
            node: NodeIdx(node),
            incarnation: 0,
        }
    }

    fn node_of(event: &Event) -> usize {
        match event {
            Event::Wake { node, .. } => node.0,
            _ => usize::MAX,
        }
    }

    #[test]
    fn pops_by_time_then_by_scheduling_order() {
        let mut q = Queue::default();
        q.push(20, wake(0));
        q.push(10, wake(1));
        q.push(20, wake(2));
        q.push(10, wake(3));
        let order: Vec<(u64, usize)> =
            std::iter::from_fn(|| q.pop().map(|(t, _, e)| (t, node_of(&e)))).collect();
        assert_eq!(order, vec![(10, 1), (10, 3), (20, 0), (20, 2)]);
    }
}
