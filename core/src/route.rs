//! What travels between sites: routed items and the answers hops return.
//!
//! A [`Route`] names the destination devices of one item (a sealed
//! [`Envelope`] or a [`Receipt`]); the item itself travels once per hop, as
//! the design requires ("one copy per site"): sender → its gateway → relay
//! → each destination site's gateway (with only that site's devices in
//! `to`) → the devices. Every hop answers one [`DeviceAnswer`] per device
//! in `to`, so end-to-end receipts come back along the same path and the
//! sender can retry exactly the devices still missing.
//!
//! Hops never open envelopes and never turn anything into "delivered": only
//! a [`Answer::Receipt`] signed by the destination device counts. The relay
//! may answer [`Answer::Custody`] once it has stored the item durably for an
//! offline device; a gateway never does.
//!
//! Directory data ([`DirectoryEntry`], [`MemberCard`], [`Neighbour`]) is
//! routing data: certificates, display names, reachability; nothing a user
//! typed into a conversation.

pub mod custody;
pub mod directory;
pub mod fanout;
pub mod hop;

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;
use crate::identity::DeviceCert;
use crate::org::Membership;
use crate::receipt::Receipt;
use crate::site::SiteId;
use crate::wire::RefuseReason;
use crate::{DeviceId, MessageId};

/// Most entries one [`crate::wire::Frame::Directory`] carries. A bigger
/// directory travels as several frames, each a part that receivers merge
/// into what they know, so an organisation of any size fits the frame cap
/// (an entry is about 200 bytes).
pub const MAX_DIRECTORY_CHUNK: usize = 512;

/// Most destination devices one route may name.
pub const MAX_ROUTE_DEVICES: usize = crate::envelope::MAX_RECIPIENTS;

/// The thing being routed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Routed {
    /// A sealed message (the receiver answers with receipts).
    Envelope(Box<Envelope>),
    /// An end-to-end receipt travelling back to the original sender after
    /// the relay delivered the message from its mailbox.
    Receipt(Receipt),
    /// A room message (the receiver answers with receipts, as for an
    /// envelope).
    Room(Box<crate::room::RoomEnvelope>),
}

impl Routed {
    /// The message id this item is about (the key hops dedupe on).
    pub fn message_id(&self) -> MessageId {
        match self {
            Routed::Envelope(e) => e.id,
            Routed::Receipt(r) => r.message_id,
            Routed::Room(e) => e.id,
        }
    }
}

/// One item and the devices it is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination devices (for an envelope, a subset of its recipients).
    pub to: Vec<DeviceId>,
    /// The item.
    pub item: Routed,
}

/// What became of one destination device of a [`Route`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// The device stored the message and signed this receipt.
    Receipt(Receipt),
    /// The relay stored the item durably for the (offline) device and will
    /// deliver it when the device is back; the sender stops retrying.
    Custody,
    /// The device, or the relay on its behalf, will never accept it.
    Refused(RefuseReason),
    /// Not delivered this time (no path, timeout, overload); retry later.
    Failed(String),
    /// A routed receipt was taken by its destination device.
    Accepted,
}

/// [`Answer`] for one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAnswer {
    /// The destination device.
    pub device: DeviceId,
    /// What became of it.
    pub answer: Answer,
}

/// A device as a gateway reports it to the relay, or a roaming device
/// itself: enough for the relay to check its membership chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCard {
    /// The device certificate.
    pub cert: DeviceCert,
    /// The user's organisation membership.
    pub membership: Membership,
    /// The user's display name.
    pub name: String,
}

/// Where a device of the organisation is, as the relay tells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    /// The device certificate (lets senders seal to it and check receipts).
    pub cert: DeviceCert,
    /// The user's display name.
    pub name: String,
    /// Reachable now (through its site's gateway or directly).
    pub online: bool,
    /// Its site, when it is behind a gateway.
    pub site: Option<SiteId>,
}

/// A device that reached the relay from the same public address and LAN
/// prefix as the one told: probably on the same LAN with multicast blocked.
/// The receiver confirms by connecting directly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbour {
    /// The device.
    pub device: DeviceId,
    /// The LAN addresses it listens on.
    pub addrs: Vec<SocketAddr>,
}

/// The first frame a device sends on a relay connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// The device's display name.
    pub name: String,
    /// The device's membership (the relay checks it against its cert).
    pub membership: Membership,
    /// Addresses the device listens on in its LAN (for neighbour matching
    /// when multicast is blocked).
    pub lan_addrs: Vec<SocketAddr>,
    /// Whether the device hears no LAN peers and asks to be told about
    /// neighbours behind the same public address.
    pub lonely: bool,
}

/// The relay's answer to [`Register`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The address the relay sees the device connect from.
    pub public_addr: SocketAddr,
    /// Lease time-to-live the relay grants, ms.
    pub lease_ttl_ms: u64,
}
