//! Fuzz target `envelope`: sealed messages as a receiver or a hop sees them
//! (`tincan_core::envelope`, `tincan_core::room::RoomEnvelope`).
//!
//! The first byte picks a mode, the rest is its input:
//! - 0: an [`Envelope`] (postcard, as inside `Frame::Envelope`): checked
//!   like a hop does ([`Envelope::verify_signature`]) and opened as the
//!   receiver the seeds are sealed for ([`Envelope::open`]).
//! - 1: a [`RoomEnvelope`]: checked and opened with the seeds' sender key.
//! - 2: a [`Content`]: whatever decodes is sealed for the receiver and must
//!   open to the very same content (or be refused by `seal`).
//! - 3: a [`RoomContent`], the same way through a room envelope.
//!
//! Nothing may panic. The keys are fixed (see [`keys`]) so that the seed
//! corpus, written with the same keys, reaches past the key lookup.

use std::sync::OnceLock;

use tincan_core::entropy::SeededEntropy;
use tincan_core::identity::{DeviceCert, DeviceKey, UserKey};
use tincan_core::room::{OpHash, RoomContent, RoomEnvelope, RoomId, SenderKey};
use tincan_core::{Content, Envelope, MessageId};

/// The fixed sender and receiver of the seeds.
pub struct Keys {
    /// The sending device.
    pub sender: DeviceKey,
    /// Its certificate.
    pub sender_cert: DeviceCert,
    /// The receiving device.
    pub receiver: DeviceKey,
    /// Its certificate.
    pub receiver_cert: DeviceCert,
    /// The sender's room key.
    pub room_key: SenderKey,
}

/// The fixed keys (deterministic, so the seed generator uses them too).
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let alice = UserKey::from_bytes(&[1; 32]);
        let bob = UserKey::from_bytes(&[2; 32]);
        let sender = DeviceKey::from_bytes(&[11; 64]);
        let receiver = DeviceKey::from_bytes(&[12; 64]);
        Keys {
            sender_cert: alice.certify(&sender, 1_700_000_000),
            receiver_cert: bob.certify(&receiver, 1_700_000_000),
            sender,
            receiver,
            room_key: SenderKey([21; 32]),
        }
    })
}

/// The room and epoch of the seeds' room envelopes.
pub const ROOM: RoomId = RoomId([31; 16]);
/// See [`ROOM`].
pub const EPOCH: OpHash = OpHash([32; 32]);

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let keys = keys();
    match mode % 4 {
        0 => {
            if let Ok(envelope) = postcard::from_bytes::<Envelope>(body) {
                let verified = envelope.verify_signature();
                if let Ok(opened) = envelope.open(&keys.receiver) {
                    assert!(verified.is_ok(), "opened an envelope whose signature fails");
                    assert_eq!(opened.sender, envelope.sender);
                }
            }
        }
        1 => {
            if let Ok(envelope) = postcard::from_bytes::<RoomEnvelope>(body) {
                let verified = envelope.verify_signature();
                if envelope.open(&keys.room_key).is_ok() {
                    assert!(
                        verified.is_ok(),
                        "opened a room envelope whose signature fails"
                    );
                }
            }
        }
        2 => {
            let Ok(content) = postcard::from_bytes::<Content>(body) else {
                return;
            };
            let sealed = Envelope::seal(
                &keys.sender,
                &keys.sender_cert,
                std::slice::from_ref(&keys.receiver_cert),
                MessageId([5; 16]),
                1_700_000_000_000,
                &content,
                &mut SeededEntropy::new(body.len() as u64),
            );
            if let Ok(envelope) = sealed {
                let opened = envelope
                    .open(&keys.receiver)
                    .expect("a sealed envelope opens for its receiver");
                assert_eq!(opened.content, content);
            }
        }
        _ => {
            let Ok(content) = postcard::from_bytes::<RoomContent>(body) else {
                return;
            };
            let sealed = RoomEnvelope::seal(
                &keys.sender,
                &keys.sender_cert,
                ROOM,
                EPOCH,
                &keys.room_key,
                vec![keys.receiver.id()],
                MessageId([6; 16]),
                1_700_000_000_000,
                &content,
                &mut SeededEntropy::new(7),
            );
            if let Ok(envelope) = sealed {
                let opened = envelope
                    .open(&keys.room_key)
                    .expect("a sealed room envelope opens with its key");
                assert_eq!(opened, content);
            }
        }
    }
}
