//! Sender keys and the room envelope: one payload sealed once with the
//! sender's room key, signed by the sender device, for every member device.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{OpHash, RoomId};
use crate::envelope::{OpenError, SealError, MAX_RECIPIENTS};
use crate::identity::{verify_signature, DeviceCert, DeviceKey, Signature};
use crate::wire::MAX_TEXT_LEN;
use crate::{DeviceId, Entropy, MessageId};

/// The room envelope format version this build writes and reads.
pub const ROOM_ENVELOPE_VERSION: u8 = 1;

const SIGN_CONTEXT: &[u8] = b"tincan room envelope v1\0";
const AAD_CONTEXT: &[u8] = b"tincan room envelope header v1\0";
const KEY_CONTEXT: &[u8] = b"tincan room message key v1\0";

/// A device's symmetric key for one room epoch. Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderKey(pub [u8; 32]);

impl std::fmt::Debug for SenderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SenderKey(..)")
    }
}

impl SenderKey {
    /// A fresh random key.
    pub fn generate(entropy: &mut dyn Entropy) -> Self {
        SenderKey(entropy.bytes32())
    }

    /// The one-time key of message `id` (HKDF-SHA256, salt = message id).
    fn message_key(&self, id: &MessageId, room: &RoomId, epoch: &OpHash) -> [u8; 32] {
        let info = [KEY_CONTEXT, &room.0, &epoch.0].concat();
        let mut key = [0u8; 32];
        // A 32-byte output is always within HKDF's limit.
        let _ = Hkdf::<Sha256>::new(Some(&id.0), &self.0).expand(&info, &mut key);
        key
    }
}

/// A member device's sender key for one epoch, sent to the other member
/// devices inside a pairwise-sealed envelope (whose sender owns the key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomKeyGrant {
    /// The room.
    pub room: RoomId,
    /// The epoch the key is for.
    pub epoch: OpHash,
    /// The key.
    pub key: SenderKey,
}

/// What a room message carries, sealed with the sender key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RoomContent {
    /// A text of at most [`MAX_TEXT_LEN`] bytes.
    Text {
        /// The text.
        text: String,
    },
    /// The sender is typing in the room (sent once, never stored).
    Typing,
}

/// A room message: sealed once, signed by the sender device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEnvelope {
    /// Format version ([`ROOM_ENVELOPE_VERSION`]).
    pub version: u8,
    /// The message id, chosen by the sender.
    pub id: MessageId,
    /// The room.
    pub room: RoomId,
    /// The key epoch it is sealed in.
    pub epoch: OpHash,
    /// The sending device's certificate.
    pub sender: DeviceCert,
    /// When it was written (sender's clock, ms since the Unix epoch).
    pub created_at_ms: u64,
    /// The member devices it is for (routing checks `to` against it).
    pub to: Vec<DeviceId>,
    /// The payload nonce.
    pub nonce: [u8; 12],
    /// The sealed [`RoomContent`].
    pub ciphertext: Vec<u8>,
    /// The sender device's signature over everything above.
    pub signature: Signature,
}

#[derive(Serialize)]
struct Header<'a> {
    version: u8,
    id: &'a MessageId,
    room: &'a RoomId,
    epoch: &'a OpHash,
    sender: &'a DeviceCert,
    created_at_ms: u64,
    to: &'a [DeviceId],
    nonce: &'a [u8; 12],
}

impl RoomEnvelope {
    /// Seals `content` once with `key` (the sender's key of `epoch`) for
    /// the devices `to` (deduplicated).
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        sender: &DeviceKey,
        sender_cert: &DeviceCert,
        room: RoomId,
        epoch: OpHash,
        key: &SenderKey,
        mut to: Vec<DeviceId>,
        id: MessageId,
        created_at_ms: u64,
        content: &RoomContent,
        entropy: &mut dyn Entropy,
    ) -> Result<RoomEnvelope, SealError> {
        to.sort();
        to.dedup();
        if to.is_empty() {
            return Err(SealError::NoRecipients);
        }
        if to.len() > MAX_RECIPIENTS {
            return Err(SealError::TooManyRecipients);
        }
        if let RoomContent::Text { text } = content {
            if text.len() > MAX_TEXT_LEN {
                return Err(SealError::TextTooLong {
                    len: text.len(),
                    max: MAX_TEXT_LEN,
                });
            }
        }
        Self::seal_sorted(
            sender,
            sender_cert,
            (room, epoch, key),
            to,
            id,
            created_at_ms,
            content,
            entropy,
        )
    }

    /// [`RoomEnvelope::seal`] after its checks of the recipients and the
    /// text (tests build what a modified sender could send with it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn seal_sorted(
        sender: &DeviceKey,
        sender_cert: &DeviceCert,
        (room, epoch, key): (RoomId, OpHash, &SenderKey),
        to: Vec<DeviceId>,
        id: MessageId,
        created_at_ms: u64,
        content: &RoomContent,
        entropy: &mut dyn Entropy,
    ) -> Result<RoomEnvelope, SealError> {
        if sender_cert.device_key != sender.public_key() {
            return Err(SealError::SenderMismatch);
        }
        let plaintext = postcard::to_allocvec(content).map_err(|_| SealError::Encode)?;
        let mut nonce = [0u8; 12];
        entropy.fill(&mut nonce);
        let mut envelope = RoomEnvelope {
            version: ROOM_ENVELOPE_VERSION,
            id,
            room,
            epoch,
            sender: sender_cert.clone(),
            created_at_ms,
            to,
            nonce,
            ciphertext: Vec::new(),
            signature: Signature([0u8; 64]),
        };
        let header = envelope.header_bytes().ok_or(SealError::Encode)?;
        let message_key = key.message_key(&id, &room, &epoch);
        envelope.ciphertext = ChaCha20Poly1305::new(&Key::from(message_key))
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &[AAD_CONTEXT, &header].concat(),
                },
            )
            .map_err(|_| SealError::Encode)?;
        envelope.signature = sender.sign(&[SIGN_CONTEXT, &header, &envelope.ciphertext].concat());
        Ok(envelope)
    }

    /// Checks the version, the sender certificate and the signature (what
    /// a hop can check without the key).
    pub fn verify_signature(&self) -> Result<(), OpenError> {
        if self.version != ROOM_ENVELOPE_VERSION {
            return Err(OpenError::UnsupportedVersion(self.version));
        }
        self.sender.verify().map_err(OpenError::SenderCert)?;
        let header = self.header_bytes().ok_or(OpenError::BadSignature)?;
        let message = [SIGN_CONTEXT, &header, &self.ciphertext].concat();
        if verify_signature(&self.sender.device_key, &message, &self.signature) {
            Ok(())
        } else {
            Err(OpenError::BadSignature)
        }
    }

    /// Verifies, then decrypts with the sender's key of this epoch.
    pub fn open(&self, key: &SenderKey) -> Result<RoomContent, OpenError> {
        self.verify_signature()?;
        let header = self.header_bytes().ok_or(OpenError::Decrypt)?;
        let message_key = key.message_key(&self.id, &self.room, &self.epoch);
        let plaintext = ChaCha20Poly1305::new(&Key::from(message_key))
            .decrypt(
                &Nonce::from(self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: &[AAD_CONTEXT, &header].concat(),
                },
            )
            .map_err(|_| OpenError::Decrypt)?;
        match postcard::take_from_bytes::<RoomContent>(&plaintext) {
            Ok((content, [])) => Ok(content),
            _ => Err(OpenError::MalformedContent),
        }
    }

    /// The devices it is for.
    pub fn recipient_devices(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.to.iter().copied()
    }

    fn header_bytes(&self) -> Option<Vec<u8>> {
        postcard::to_allocvec(&Header {
            version: self.version,
            id: &self.id,
            room: &self.room,
            epoch: &self.epoch,
            sender: &self.sender,
            created_at_ms: self.created_at_ms,
            to: &self.to,
            nonce: &self.nonce,
        })
        .ok()
    }
}
