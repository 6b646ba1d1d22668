//! Frames: what peers, gateways and relays say to each other on a stream.
//!
//! # Format
//! ```text
//! u32 big-endian length | u8 protocol version | postcard(Frame)
//!                       |<------------- length bytes --------->|
//! ```
//! The length counts the version byte and the postcard body, is never zero
//! and never exceeds [`MAX_FRAME_LEN`]. An oversize length is rejected as soon
//! as its four bytes arrive, before any of the body is buffered; a body that
//! does not decode to exactly one [`Frame`] is [`DecodeError::Malformed`] or
//! [`DecodeError::TrailingBytes`]. Decoding never panics on any input.
//!
//! Adding a `Frame` variant at the end is compatible (old peers answer with
//! `Malformed` for it); changing an existing one needs a new
//! [`PROTOCOL_VERSION`].

use serde::{Deserialize, Serialize};

use crate::election::Beacon;
use crate::envelope::Envelope;
use crate::file::{FileRefusal, FileRequest, FileUpload};
use crate::identity::DeviceCert;
use crate::lease::LeaseGrant;
use crate::org::{Membership, Revocations};
use crate::receipt::Receipt;
use crate::route::{DeviceAnswer, DirectoryEntry, MemberCard, Neighbour, Register, Route, Welcome};
use crate::site::SiteId;
use crate::{DeviceId, MessageId};

/// The version byte this build writes and accepts.
/// Version 2 added organisations, relays and gateways (membership in
/// `Hello`, routing, leases, beacons).
pub const PROTOCOL_VERSION: u8 = 2;

/// Largest frame body accepted (version byte + postcard). Text messages up to
/// [`MAX_TEXT_LEN`] fit in one Envelope frame with room to spare, even to
/// the largest recipient list.
pub const MAX_FRAME_LEN: usize = 256 * 1024;

/// Largest text a message may carry; bigger texts belong to file transfer.
pub const MAX_TEXT_LEN: usize = 64 * 1024;

/// Bytes of the length prefix.
const LEN_PREFIX: usize = 4;

/// The first frame on a connection: who is talking and where to call back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The user's display name.
    pub name: String,
    /// The UDP port this device listens on for QUIC.
    pub listen_port: u16,
    /// This device's certificate (must match the TLS key).
    pub cert: DeviceCert,
    /// The user's organisation membership, if they joined one. Peers of the
    /// same organisation elect a gateway together.
    pub membership: Option<Membership>,
}

/// Why a receiver refused an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RefuseReason {
    /// The envelope does not list the receiving device.
    NotForThisDevice,
    /// The envelope did not open.
    Undecryptable,
    /// The sender certificate or signature is invalid.
    BadSignature,
    /// The envelope exceeds a size limit.
    TooLarge,
    /// The receiver blocked the sender.
    Blocked,
    /// The relay's mailbox for the device is full (per-device quota).
    MailboxFull,
    /// The destination device is not known to the relay or is not in the
    /// sender's organisation.
    UnknownDevice,
    /// Anything else, explained for logs.
    Other(String),
    /// The sending device was removed by its user (`tincan device remove`).
    DeviceRemoved,
}

/// One protocol message on a stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Frame {
    /// Introduces the sending device.
    Hello(Hello),
    /// A sealed message.
    Envelope(Envelope),
    /// A delivered/read acknowledgement.
    Receipt(Receipt),
    /// The receiver will not accept `message_id` (do not retry).
    Refused {
        /// The refused message.
        message_id: MessageId,
        /// Why.
        reason: RefuseReason,
    },
    /// The sender is closing the connection on purpose.
    Goodbye,
    /// An item for other devices (answered with [`Frame::Answers`]).
    Route(Route),
    /// One answer per device of a [`Frame::Route`].
    Answers(Vec<DeviceAnswer>),
    /// A LAN peer's election state (sent as a QUIC datagram).
    Beacon(Beacon),
    /// First frame from a device to the relay.
    Register(Register),
    /// The relay accepted [`Frame::Register`].
    Welcome(Welcome),
    /// A gateway asks the relay for (or renews) the lease of its site.
    LeaseClaim {
        /// The site.
        site: SiteId,
        /// The epoch claimed.
        epoch: u64,
    },
    /// The relay granted [`Frame::LeaseClaim`].
    LeaseGranted {
        /// The site.
        site: SiteId,
        /// The epoch granted.
        epoch: u64,
        /// How long the lease lasts from the relay's receipt of the claim.
        ttl_ms: u64,
        /// The same, signed by the relay: the gateway shows it in its
        /// beacons so that its LAN believes it.
        grant: Box<LeaseGrant>,
    },
    /// The relay refused [`Frame::LeaseClaim`].
    LeaseRefused {
        /// The site.
        site: SiteId,
        /// The epoch that was claimed.
        epoch: u64,
        /// The site's current epoch at the relay.
        current_epoch: u64,
        /// The live holder, if any.
        holder: Option<DeviceId>,
    },
    /// A gateway gives its lease up.
    LeaseRelease {
        /// The site.
        site: SiteId,
        /// The epoch released.
        epoch: u64,
    },
    /// A gateway tells the relay which devices its site holds now.
    SiteMembers {
        /// The site.
        site: SiteId,
        /// The gateway's lease epoch.
        epoch: u64,
        /// The site's devices, the gateway included.
        members: Vec<MemberCard>,
    },
    /// Devices of the organisation and where they are (relay → gateway or
    /// roaming device, gateway → its LAN).
    Directory(Vec<DirectoryEntry>),
    /// Probable LAN neighbours behind the same public address.
    Neighbours(Vec<Neighbour>),
    /// The organisation's newest revocation list.
    Revocations(Revocations),
    /// A request that needs no other answer was taken.
    Ack,
    /// The request was refused, with a reason for the log.
    Error(String),
    /// A request for sealed file bytes (see `tincan_core::file`); the
    /// answer is [`Frame::FileData`] followed by the raw bytes, or
    /// [`Frame::FileRefused`].
    FileRequest(FileRequest),
    /// `len` raw bytes (a sealed chunk or manifest) follow this frame on
    /// the stream.
    FileData {
        /// Bytes that follow.
        len: u32,
    },
    /// The file request is refused.
    FileRefused(FileRefusal),
    /// One step of pairing a new device (`crate::pairing`), on a
    /// bidirectional stream, answered with the next step.
    Pair(crate::pairing::PairMessage),
    /// The sender's user's devices and removed devices (on connect and
    /// whenever they change), answered with [`Frame::Ack`].
    Devices(crate::device::Roster),
    /// An upload of sealed file bytes to the relay; the header is followed
    /// by `len` raw bytes on the stream and answered `Ack` (stored, or
    /// stored already) or [`Frame::FileRefused`].
    FileUpload(FileUpload),
    /// A room message sealed once with the sender's room key (answered
    /// like [`Frame::Envelope`]: a receipt or a refusal).
    RoomEnvelope(crate::room::RoomEnvelope),
    /// LAN peer exchange: devices' signed records and reports of devices
    /// gone (`crate::lan`), answered with [`Frame::Ack`].
    Lan(crate::lan::LanGossip),
    /// A device asks the relay for versioned directory pushes
    /// ([`Frame::DirectoryUpdate`]) on this connection, answered with
    /// [`Frame::Ack`]. A relay that predates them answers an error and keeps
    /// pushing [`Frame::Directory`] parts; a device that never asks gets
    /// those too.
    DirectoryVersions,
    /// One part of a versioned directory push (relay → device; see
    /// `crate::route::directory`), answered with [`Frame::Ack`] once
    /// applied, or [`Frame::Error`] when it does not apply to what the
    /// device holds (the relay then sends the whole directory).
    DirectoryUpdate(crate::route::directory::DirectoryUpdate),
}

impl Frame {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "hello",
            Frame::Envelope(_) => "envelope",
            Frame::Receipt(_) => "receipt",
            Frame::Refused { .. } => "refused",
            Frame::Goodbye => "goodbye",
            Frame::Route(_) => "route",
            Frame::Answers(_) => "answers",
            Frame::Beacon(_) => "beacon",
            Frame::Register(_) => "register",
            Frame::Welcome(_) => "welcome",
            Frame::LeaseClaim { .. } => "lease-claim",
            Frame::LeaseGranted { .. } => "lease-granted",
            Frame::LeaseRefused { .. } => "lease-refused",
            Frame::LeaseRelease { .. } => "lease-release",
            Frame::SiteMembers { .. } => "site-members",
            Frame::Directory(_) => "directory",
            Frame::Neighbours(_) => "neighbours",
            Frame::Revocations(_) => "revocations",
            Frame::Ack => "ack",
            Frame::Error(_) => "error",
            Frame::FileRequest(_) => "file-request",
            Frame::FileData { .. } => "file-data",
            Frame::FileRefused(_) => "file-refused",
            Frame::Pair(_) => "pair",
            Frame::Devices(_) => "devices",
            Frame::FileUpload(_) => "file-upload",
            Frame::RoomEnvelope(_) => "room-envelope",
            Frame::Lan(_) => "lan",
            Frame::DirectoryVersions => "directory-versions",
            Frame::DirectoryUpdate(_) => "directory-update",
        }
    }
}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The body would exceed [`MAX_FRAME_LEN`].
    #[error("frame body of {len} bytes exceeds {max} bytes")]
    TooLarge {
        /// Body length (version byte + postcard).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// postcard refused the value.
    #[error("frame could not be serialized: {0}")]
    Serialize(String),
}

/// Why bytes could not be decoded into a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes are needed: the frame is `needed` bytes long in total
    /// (counting the length prefix), or at least 4 while the prefix is
    /// incomplete.
    #[error("frame truncated, {needed} bytes needed")]
    Truncated {
        /// Total bytes the frame needs.
        needed: usize,
    },
    /// The length prefix exceeds [`MAX_FRAME_LEN`]; the stream is unusable.
    #[error("frame of {len} bytes exceeds {max} bytes")]
    Oversize {
        /// The announced body length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A protocol version this build does not speak.
    #[error("unknown protocol version {0}")]
    UnknownVersion(u8),
    /// The body is empty or does not decode to a frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The body decodes to a frame but has bytes left over.
    #[error("frame has trailing bytes")]
    TrailingBytes,
}

/// Encodes `frame` as `length || version || postcard`.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, EncodeError> {
    let body = postcard::to_allocvec(frame).map_err(|e| EncodeError::Serialize(e.to_string()))?;
    let len = 1 + body.len();
    if len > MAX_FRAME_LEN {
        return Err(EncodeError::TooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    // len <= MAX_FRAME_LEN < u32::MAX, so the cast is lossless.
    let mut out = Vec::with_capacity(LEN_PREFIX + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.push(PROTOCOL_VERSION);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Reads and checks the length prefix at the front of `buf`, if complete.
fn body_len(buf: &[u8]) -> Option<Result<usize, DecodeError>> {
    let prefix: [u8; LEN_PREFIX] = buf.get(..LEN_PREFIX)?.try_into().ok()?;
    let len = u32::from_be_bytes(prefix) as usize;
    Some(if len == 0 {
        Err(DecodeError::Malformed("empty frame".into()))
    } else if len > MAX_FRAME_LEN {
        Err(DecodeError::Oversize {
            len,
            max: MAX_FRAME_LEN,
        })
    } else {
        Ok(len)
    })
}

/// Decodes one frame from the front of `buf`; returns the frame and the
/// bytes consumed.
pub fn decode(buf: &[u8]) -> Result<(Frame, usize), DecodeError> {
    let len = body_len(buf).unwrap_or(Err(DecodeError::Truncated { needed: LEN_PREFIX }))?;
    let total = LEN_PREFIX + len;
    let body = buf
        .get(LEN_PREFIX..total)
        .ok_or(DecodeError::Truncated { needed: total })?;
    let (&version, postcard_body) = body
        .split_first()
        .ok_or_else(|| DecodeError::Malformed("empty frame".into()))?;
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    match postcard::take_from_bytes::<Frame>(postcard_body) {
        Ok((frame, [])) => Ok((frame, total)),
        Ok(_) => Err(DecodeError::TrailingBytes),
        Err(e) => Err(DecodeError::Malformed(e.to_string())),
    }
}

/// Incremental decoder for a byte stream: feed bytes, pull whole frames.
///
/// Length prefixes are checked as they arrive in [`FrameDecoder::feed`]: at
/// an oversize or empty prefix the stream is declared dead, the bytes after
/// it are dropped unbuffered, and [`FrameDecoder::poll_frame`] returns the
/// error once the frames before it have been pulled. So at most one
/// in-progress frame (≤ [`MAX_FRAME_LEN`] + 4 bytes) is buffered beyond the
/// complete frames the caller has not pulled yet. Any decode error is final.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// Received bytes; `buf[start..]` is not yet consumed.
    buf: Vec<u8>,
    /// Offset of the first unconsumed byte.
    start: usize,
    /// Offset of the next length prefix not yet checked (may lie beyond
    /// `buf.len()` while a frame body is arriving).
    scan: usize,
    /// The error that ended the stream, if any.
    error: Option<DecodeError>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream (dropped once the stream is dead).
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.error.is_none() {
            let in_body = self.buf.len() < self.scan;
            let wanted = if in_body {
                self.scan - self.buf.len()
            } else {
                self.scan + LEN_PREFIX - self.buf.len()
            };
            let (now, rest) = bytes.split_at(wanted.min(bytes.len()));
            self.buf.extend_from_slice(now);
            bytes = rest;
            if !in_body && self.buf.len() == self.scan + LEN_PREFIX {
                match body_len(&self.buf[self.scan..]) {
                    Some(Ok(len)) => self.scan += LEN_PREFIX + len,
                    Some(Err(error)) => {
                        // Keep the complete frames before the bad prefix.
                        self.buf.truncate(self.scan);
                        self.error = Some(error);
                    }
                    None => {}
                }
            }
        }
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or the
    /// error that ended the stream (returned again on every later call).
    pub fn poll_frame(&mut self) -> Result<Option<Frame>, DecodeError> {
        if self.start == self.buf.len() {
            return match &self.error {
                Some(error) => Err(error.clone()),
                None => Ok(None),
            };
        }
        match decode(&self.buf[self.start..]) {
            Ok((frame, used)) => {
                self.start += used;
                // Compact once the consumed prefix dominates: amortized O(1).
                if self.start * 2 >= self.buf.len() {
                    self.buf.drain(..self.start);
                    self.scan -= self.start;
                    self.start = 0;
                }
                Ok(Some(frame))
            }
            Err(DecodeError::Truncated { .. }) => Ok(None),
            Err(error) => {
                self.buf = Vec::new();
                self.start = 0;
                self.scan = 0;
                self.error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Bytes held and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests;
