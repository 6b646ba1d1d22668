//! tincan-core: the sans-IO protocol of tincan.
//!
//! Nothing in this crate touches a socket, a clock, a thread or the OS random
//! source: time comes in as `now` arguments (milliseconds since the Unix epoch,
//! chosen by the driver) and randomness through [`Entropy`]. That keeps every
//! decision deterministic, so the node daemon, the relay and the simulator in
//! `tincan-netsim` all drive the very same code.
//!
//! # Layout
//! - [`id`]: printable user, device and message ids.
//! - [`entropy`]: the randomness the caller hands in.
//! - [`clock`]: the one `now` of a turn, monotone even when the wall clock steps back.
//! - [`identity`]: user and device keys, device certificates, the stored identity.
//! - [`device`]: a user's devices: device revocations, rosters, the one lookup.
//! - [`pairing`]: enrolling a new device by a short code (SPAKE2).
//! - [`envelope`]: end-to-end sealed messages, one payload for many devices.
//! - [`receipt`]: signed delivered/read acknowledgements.
//! - [`wire`]: length-prefixed, versioned postcard frames.
//! - [`name`]: display names: the rule for valid ones, comparing look-alikes (pins), showing peers' text safely.
//! - [`peer_book`]: who is known, under which name, and how a typed name resolves.
//! - [`outbox`]: the delivery state machine (retries, backoff, expiry).
//! - [`delivery`]: what answers prove and how a message's devices add up to its state.
//! - [`inbound`]: whether an incoming envelope is taken (open, sender's standing) and its receipt.
//! - [`org`]: organisation keys, memberships, revocation lists.
//! - [`route`]: items routed across sites and the answers hops return.
//! - [`site`]: site ids, gateway preference, candidate rank and roles.
//! - [`election`]: the per-node branch-gateway election state machine.
//! - [`lease`]: the relay's gateway leases with epoch fencing.
//! - [`file`](mod@file): file offers, manifests, sealed chunks and the receiver's pull state machine.
//! - [`presence`]: own presence with auto-away, peers' latest presence, rate limits.
//! - [`post`]: replies, mentions, broadcasts, edits and retractions.
//! - [`contact`]: the contact-request handshake.
//! - [`notify`]: when a new message raises a desktop notification.
//! - [`room`]: rooms: the signed membership log, sender keys, room envelopes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod contact;
pub mod delivery;
pub mod device;
pub mod election;
pub mod entropy;
pub mod envelope;
pub mod file;
pub mod id;
pub mod identity;
pub mod inbound;
pub mod lan;
pub mod lease;
pub mod name;
pub mod notify;
pub mod org;
pub mod outbox;
pub mod pairing;
pub mod peer_book;
pub mod post;
pub mod presence;
pub mod receipt;
pub mod report;
pub mod room;
pub mod route;
pub mod site;
pub mod wire;

pub use contact::{ContactAction, ContactError, ContactNote, ContactState, ContactStep};
pub use device::{DeviceError, DeviceRevocation, Devices, Roster};
pub use election::{Beacon, ElectionConfig, ElectionEvent, ElectionTransmit, GatewayElection};
pub use entropy::Entropy;
pub use envelope::{Content, Envelope, OpenError, Opened, SealError, WrappedKey};
pub use file::{FileAction, FileOffer, FileRefusal, FileRequest, TransferId};
pub use id::{DeviceId, IdParseError, MessageId, OrgId, RelayId, UserId};
pub use identity::{
    verify_signature, CertError, DeviceCert, DeviceKey, Identity, IdentityError, Signature, UserKey,
};
pub use lease::{Lease, LeaseGrant, LeaseRefusal, LeaseTable, VerifiedGrant};
pub use notify::{NotifyInput, NotifyRule, Urgency};
pub use org::{Membership, MembershipError, OrgKey, Revocations};
pub use post::{Change, Post, PostError, Quote};
pub use presence::{
    PeerPresences, Presence, PresenceError, PresenceEvent, PresenceState, PresenceUpdate,
    RateLimiter, ShownPresence,
};
pub use receipt::{Receipt, ReceiptError, ReceiptKind};
pub use room::{RoomEnvelope, RoomError, RoomId, RoomLog};
pub use site::{GatewayPreference, GatewayRef, PreferenceParseError, Rank, Role, SiteId};
pub use wire::{DecodeError, EncodeError, Frame, FrameDecoder, Hello, RefuseReason};
