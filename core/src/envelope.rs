//! The end-to-end message format: one sealed payload, many recipient devices.
//!
//! # Format
//! - The [`Content`] is postcard-encoded and sealed once with a random 32-byte
//!   content key (ChaCha20-Poly1305, random 12-byte nonce). The AAD is the
//!   header: every field except the ciphertext and the signature.
//! - The content key is wrapped for every recipient device: X25519 between
//!   one ephemeral key per envelope and the device's agreement key, then
//!   HKDF-SHA256 (salt = message id, info = context || ephemeral public key ||
//!   recipient X25519 public key) gives a one-time key that seals the content
//!   key with ChaCha20-Poly1305 under an all-zero nonce (each derived key is
//!   used exactly once, recipients being de-duplicated).
//! - The sending device signs `context || header || ciphertext` with ed25519,
//!   and its [`DeviceCert`] travels inside, so any hop can check who sent it
//!   ([`Envelope::verify_signature`]) without being able to read it.
//!
//! Fan-out to N devices therefore costs one payload plus about 70 bytes per
//! device. Opening never panics on hostile envelopes.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x25519_dalek::{PublicKey as AgreementPublic, StaticSecret};

use crate::identity::{verify_signature, CertError, DeviceCert, DeviceKey, Signature};
use crate::wire::MAX_TEXT_LEN;
use crate::{DeviceId, Entropy, MessageId};

/// The envelope format version this build writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;

/// Most recipient devices one envelope may address.
pub const MAX_RECIPIENTS: usize = 1024;

/// Context of the signed message.
const SIGN_CONTEXT: &[u8] = b"tincan envelope v1\0";
/// Context of the payload AAD.
const AAD_CONTEXT: &[u8] = b"tincan envelope header v1\0";
/// Context of the HKDF info for key wrapping.
const WRAP_CONTEXT: &[u8] = b"tincan content key wrap v1\0";

/// What a user sent: the sealed plaintext, postcard-encoded before sealing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Content {
    /// A text message of at most [`MAX_TEXT_LEN`] bytes.
    Text {
        /// The message text.
        text: String,
    },
    /// An offer of files ([`crate::file`]): names, sizes and the
    /// content key, so only recipients can read names or bytes.
    FileOffer(crate::file::FileOffer),
    /// A change of an offered transfer, told to the other side.
    FileControl {
        /// The transfer.
        transfer: crate::file::TransferId,
        /// What happened.
        action: crate::file::FileAction,
    },
    /// The sender device's presence as shown to the recipients (latest
    /// version wins; sent once, never stored).
    Presence(crate::presence::PresenceUpdate),
    /// The sender is typing in the 1:1 conversation with the recipient
    /// (sent once, rate-limited, never stored).
    Typing,
    /// Signed read receipts (at most [`crate::receipt::MAX_RECEIPTS`]) for
    /// messages the recipient device sent; sealed, so hops cannot see
    /// what was read.
    Receipts(Vec<crate::receipt::Receipt>),
    /// A text message with a reply quote, mentions or the broadcast mark
    /// ([`crate::post`]); plain texts still travel as [`Content::Text`].
    Post(crate::post::Post),
    /// The sender edits or retracts one of its earlier messages.
    Change(crate::post::Change),
    /// A contact request or its answer ([`crate::contact`]).
    Contact(crate::contact::ContactNote),
    /// For the sender's own other devices: a copy of what this device sent
    /// (`message`, sealed separately to `to`), so it shows as outgoing in
    /// the right conversations everywhere. Accepted only from a device of
    /// the same user.
    OwnCopy {
        /// The id of the message the others received.
        message: crate::MessageId,
        /// The conversations it belongs to (its recipients).
        to: Vec<crate::UserId>,
        /// What was sent (a [`Content::Text`] today).
        content: Box<Content>,
    },
    /// For the sender's own other devices: the conversation with `peer`
    /// was read up to `up_to_ms` (received time) on the sending device;
    /// mark it read too, without sending read receipts again.
    ReadSync {
        /// The conversation.
        peer: crate::UserId,
        /// Messages sent at or before this time (sender's clock) are read.
        up_to_ms: u64,
    },
    /// Ops of a room's membership log ([`crate::room`]): a new op for the
    /// members, or the whole log for a user just added. Sealed, so hops
    /// never see names, topics or who is in a room.
    RoomOps {
        /// The room.
        room: crate::room::RoomId,
        /// The ops, in any order.
        ops: Vec<crate::room::RoomOp>,
        /// When the whole log goes to a user just added (in one or more
        /// envelopes of [`Content::RoomOps`]): how many ops it has, so the
        /// receiver knows when it has all of it. 0 for new ops sent to
        /// members who hold the log.
        log_len: u32,
    },
    /// The sender device's key of one room epoch.
    RoomKey(crate::room::RoomKeyGrant),
    /// Asks an admin (the recipient) to add the sender to a room, with the
    /// secret of a join link that admin made (`tincan room link`).
    RoomJoinRequest {
        /// The room.
        room: crate::room::RoomId,
        /// The link's secret.
        secret: [u8; 16],
    },
    /// For the recipient's own other devices: a message another user sent
    /// to this user without sealing it for them (the sender did not know
    /// those devices yet, e.g. one paired a moment ago), so it reaches
    /// every device of the user anyway. Accepted only from a device of the
    /// same user, which vouches for `from` as it does for [`Content::OwnCopy`].
    MissedCopy {
        /// The original message id (dedupes against a copy that did arrive).
        message: crate::MessageId,
        /// The original sender's device certificate.
        from: DeviceCert,
        /// The sender's name as the passing device knows it, for a device
        /// that has not met the sender.
        from_name: String,
        /// When the original sender wrote it (its clock).
        sent_at_ms: u64,
        /// What was sent ([`Content::Text`] or [`Content::Post`]).
        content: Box<Content>,
    },
}

/// The content key, sealed for one recipient device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// The device that can unwrap it.
    pub device: DeviceId,
    /// The sealed content key (32 bytes + 16-byte tag).
    pub wrapped: Vec<u8>,
}

/// A sealed, signed message addressed to a set of devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Format version ([`ENVELOPE_VERSION`]).
    pub version: u8,
    /// The message id, chosen by the sender.
    pub id: MessageId,
    /// The sending device's certificate.
    pub sender: DeviceCert,
    /// When the sender wrote it, in ms since the Unix epoch (sender's clock).
    pub created_at_ms: u64,
    /// The envelope's ephemeral X25519 public key.
    pub ephemeral_key: [u8; 32],
    /// The content key, once per recipient device.
    pub recipients: Vec<WrappedKey>,
    /// The payload nonce.
    pub nonce: [u8; 12],
    /// The sealed [`Content`].
    pub ciphertext: Vec<u8>,
    /// The sending device's signature over everything above.
    pub signature: Signature,
}

/// A successfully opened envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The message id.
    pub id: MessageId,
    /// The sender's certificate (verified).
    pub sender: DeviceCert,
    /// When the sender wrote it, in ms since the Unix epoch (sender's clock).
    pub created_at_ms: u64,
    /// The devices it was sealed for: a recipient device missing here was
    /// unknown to the sender when it sealed the envelope.
    pub sealed_for: Vec<DeviceId>,
    /// What was sent.
    pub content: Content,
}

/// Why an envelope could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// No recipient devices were given.
    #[error("envelope has no recipients")]
    NoRecipients,
    /// More than [`MAX_RECIPIENTS`] devices were given.
    #[error("envelope has more than {MAX_RECIPIENTS} recipients")]
    TooManyRecipients,
    /// A text longer than [`MAX_TEXT_LEN`]; send it as a file instead.
    #[error("text of {len} bytes exceeds {max} bytes")]
    TextTooLong {
        /// Length of the text.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The sender certificate does not describe the sender's key.
    #[error("sender certificate does not match the sending device key")]
    SenderMismatch,
    /// A recipient certificate is invalid.
    #[error("recipient certificate is invalid: {0}")]
    RecipientCert(CertError),
    /// The content could not be encoded or encrypted.
    #[error("content could not be encoded")]
    Encode,
}

/// Why an envelope could not be opened or verified; variants follow the
/// order of the checks in [`Envelope::open`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Written in a format version this build does not know.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// This device is not among the recipients.
    #[error("envelope is not addressed to this device")]
    NotForThisDevice,
    /// The content key for this device does not unwrap.
    #[error("content key does not unwrap")]
    KeyUnwrap,
    /// The payload does not decrypt (tampered ciphertext or header).
    #[error("payload does not decrypt")]
    Decrypt,
    /// The sender certificate is invalid.
    #[error("sender certificate is invalid: {0}")]
    SenderCert(CertError),
    /// The sending device's signature is invalid.
    #[error("envelope signature is invalid")]
    BadSignature,
    /// The plaintext is not a known [`Content`].
    #[error("envelope content is malformed")]
    MalformedContent,
}

/// The header: every field but the ciphertext and the signature.
#[derive(Serialize)]
struct Header<'a> {
    version: u8,
    id: &'a MessageId,
    sender: &'a DeviceCert,
    created_at_ms: u64,
    ephemeral_key: &'a [u8; 32],
    recipients: &'a [WrappedKey],
    nonce: &'a [u8; 12],
}

impl Envelope {
    /// Seals `content` from `sender` (described by `sender_cert`) for the
    /// devices of `recipients` (checked, duplicates dropped). Include the
    /// sender's other devices, and the sender itself if it should be able to
    /// reopen the message.
    pub fn seal(
        sender: &DeviceKey,
        sender_cert: &DeviceCert,
        recipients: &[DeviceCert],
        id: MessageId,
        created_at_ms: u64,
        content: &Content,
        entropy: &mut dyn Entropy,
    ) -> Result<Envelope, SealError> {
        if recipients.is_empty() {
            return Err(SealError::NoRecipients);
        }
        if recipients.len() > MAX_RECIPIENTS {
            return Err(SealError::TooManyRecipients);
        }
        let text = match content {
            Content::Text { text } => Some(text),
            Content::Post(post) => Some(&post.text),
            Content::Change(crate::post::Change::Edit { text, .. }) => Some(text),
            _ => None,
        };
        if let Some(text) = text {
            if text.len() > MAX_TEXT_LEN {
                return Err(SealError::TextTooLong {
                    len: text.len(),
                    max: MAX_TEXT_LEN,
                });
            }
        }
        if sender_cert.device_key != sender.public_key() {
            return Err(SealError::SenderMismatch);
        }
        let plaintext = postcard::to_allocvec(content).map_err(|_| SealError::Encode)?;
        seal_plaintext(
            sender,
            sender_cert,
            recipients,
            id,
            created_at_ms,
            &plaintext,
            entropy,
        )
    }

    /// Opens an envelope addressed to `me`. Order: find my wrapped key
    /// (`NotForThisDevice`) → unwrap (`KeyUnwrap`) → decrypt the payload with
    /// the header as AAD (`Decrypt`) → sender cert valid (`SenderCert`) →
    /// device signature over the whole envelope (`BadSignature`) → decode
    /// the plaintext (`MalformedContent`).
    pub fn open(&self, me: &DeviceKey) -> Result<Opened, OpenError> {
        self.check_version()?;
        let my_id = me.id();
        let wrapped = self
            .recipients
            .iter()
            .find(|w| w.device == my_id)
            .ok_or(OpenError::NotForThisDevice)?;

        let shared = me.agree(&self.ephemeral_key);
        if shared == [0u8; 32] {
            return Err(OpenError::KeyUnwrap);
        }
        let key = wrapping_key(
            &shared,
            &self.id,
            &self.ephemeral_key,
            &me.agreement_public_key(),
        )
        .ok_or(OpenError::KeyUnwrap)?;
        let content_key = ChaCha20Poly1305::new(&Key::from(key))
            .decrypt(&Nonce::default(), wrapped.wrapped.as_slice())
            .map_err(|_| OpenError::KeyUnwrap)?;
        let content_key =
            <[u8; 32]>::try_from(content_key.as_slice()).map_err(|_| OpenError::KeyUnwrap)?;

        let header = self.header_bytes().ok_or(OpenError::Decrypt)?;
        let plaintext = ChaCha20Poly1305::new(&Key::from(content_key))
            .decrypt(
                &Nonce::from(self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: &aad(&header),
                },
            )
            .map_err(|_| OpenError::Decrypt)?;

        self.check_sender(&header)?;
        let content = match postcard::take_from_bytes::<Content>(&plaintext) {
            Ok((content, [])) => content,
            _ => return Err(OpenError::MalformedContent),
        };
        Ok(Opened {
            id: self.id,
            sender: self.sender.clone(),
            created_at_ms: self.created_at_ms,
            sealed_for: self.recipient_devices().collect(),
            content,
        })
    }

    /// Checks the version, the sender certificate and the device signature
    /// only (for hops that cannot decrypt).
    pub fn verify_signature(&self) -> Result<(), OpenError> {
        self.check_version()?;
        let header = self.header_bytes().ok_or(OpenError::BadSignature)?;
        self.check_sender(&header)
    }

    /// The devices this envelope is addressed to.
    pub fn recipient_devices(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.recipients.iter().map(|w| w.device)
    }

    fn check_version(&self) -> Result<(), OpenError> {
        if self.version == ENVELOPE_VERSION {
            Ok(())
        } else {
            Err(OpenError::UnsupportedVersion(self.version))
        }
    }

    fn check_sender(&self, header: &[u8]) -> Result<(), OpenError> {
        self.sender.verify().map_err(OpenError::SenderCert)?;
        let message = signed_message(header, &self.ciphertext);
        if verify_signature(&self.sender.device_key, &message, &self.signature) {
            Ok(())
        } else {
            Err(OpenError::BadSignature)
        }
    }

    /// Postcard of the header; `None` only if serialization failed, which
    /// these plain types never do.
    fn header_bytes(&self) -> Option<Vec<u8>> {
        postcard::to_allocvec(&Header {
            version: self.version,
            id: &self.id,
            sender: &self.sender,
            created_at_ms: self.created_at_ms,
            ephemeral_key: &self.ephemeral_key,
            recipients: &self.recipients,
            nonce: &self.nonce,
        })
        .ok()
    }
}

/// The sealing itself, on already encoded content (tests seal bytes that
/// are not a [`Content`] through it).
fn seal_plaintext(
    sender: &DeviceKey,
    sender_cert: &DeviceCert,
    recipients: &[DeviceCert],
    id: MessageId,
    created_at_ms: u64,
    plaintext: &[u8],
    entropy: &mut dyn Entropy,
) -> Result<Envelope, SealError> {
    let content_key = entropy.bytes32();
    let ephemeral = StaticSecret::from(entropy.bytes32());
    let ephemeral_key = AgreementPublic::from(&ephemeral).to_bytes();
    let mut nonce = [0u8; 12];
    entropy.fill(&mut nonce);

    let mut wrapped_keys: Vec<WrappedKey> = Vec::with_capacity(recipients.len());
    for cert in recipients {
        cert.verify().map_err(SealError::RecipientCert)?;
        let device = cert.device_id();
        if wrapped_keys.iter().any(|w| w.device == device) {
            continue;
        }
        let shared = ephemeral
            .diffie_hellman(&AgreementPublic::from(cert.agreement_key))
            .to_bytes();
        if shared == [0u8; 32] {
            return Err(SealError::RecipientCert(CertError::BadKey("agreement")));
        }
        let key = wrapping_key(&shared, &id, &ephemeral_key, &cert.agreement_key)
            .ok_or(SealError::Encode)?;
        let wrapped = ChaCha20Poly1305::new(&Key::from(key))
            .encrypt(&Nonce::default(), content_key.as_slice())
            .map_err(|_| SealError::Encode)?;
        wrapped_keys.push(WrappedKey { device, wrapped });
    }

    let mut envelope = Envelope {
        version: ENVELOPE_VERSION,
        id,
        sender: sender_cert.clone(),
        created_at_ms,
        ephemeral_key,
        recipients: wrapped_keys,
        nonce,
        ciphertext: Vec::new(),
        signature: Signature([0u8; 64]),
    };
    let header = envelope.header_bytes().ok_or(SealError::Encode)?;
    envelope.ciphertext = ChaCha20Poly1305::new(&Key::from(content_key))
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &aad(&header),
            },
        )
        .map_err(|_| SealError::Encode)?;
    envelope.signature = sender.sign(&signed_message(&header, &envelope.ciphertext));
    Ok(envelope)
}

fn aad(header: &[u8]) -> Vec<u8> {
    [AAD_CONTEXT, header].concat()
}

/// The header is self-delimiting (postcard), so the concatenation is
/// unambiguous.
fn signed_message(header: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    [SIGN_CONTEXT, header, ciphertext].concat()
}

/// HKDF-SHA256(salt = message id, ikm = X25519 output, info = context ||
/// ephemeral public || recipient public). `None` only if HKDF refused a
/// 32-byte output, which it never does.
fn wrapping_key(
    shared: &[u8; 32],
    id: &MessageId,
    ephemeral_key: &[u8; 32],
    recipient_key: &[u8; 32],
) -> Option<[u8; 32]> {
    let info = [WRAP_CONTEXT, ephemeral_key, recipient_key].concat();
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&id.0), shared)
        .expand(&info, &mut key)
        .ok()?;
    Some(key)
}

#[cfg(test)]
mod tests;
