//! End-to-end acknowledgements: a recipient device's signed statement that a
//! message was delivered to it, or read on it.
//!
//! Receipts travel outside envelopes (they carry nothing secret), so relays
//! and gateways can forward them, yet only the device named in the receipt
//! can have produced one. The signed message is a context string followed by
//! fixed-width fields, so it is unambiguous.

use serde::{Deserialize, Serialize};

use crate::identity::{verify_signature, DeviceCert, DeviceKey, Signature};
use crate::{DeviceId, MessageId};

/// Most receipts one [`crate::Content::Receipts`] carries (about 130 bytes
/// each, so a full batch stays far below the frame cap).
pub const MAX_RECEIPTS: usize = 512;

/// Context prefix of the signed message.
const RECEIPT_CONTEXT: &[u8] = b"tincan receipt v1\0";

/// What the receipt acknowledges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiptKind {
    /// The message reached the recipient device and was stored.
    Delivered,
    /// The user displayed the message on the recipient device.
    Read,
}

/// A signed acknowledgement of one message by one recipient device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The acknowledged message.
    pub message_id: MessageId,
    /// The device that sent the original message.
    pub sender_device: DeviceId,
    /// The device that received the message and signed this receipt.
    pub recipient_device: DeviceId,
    /// Delivered or read.
    pub kind: ReceiptKind,
    /// When it happened, in ms since the Unix epoch (recipient's clock).
    pub at_ms: u64,
    /// The recipient device's signature.
    pub signature: Signature,
}

/// Why a receipt was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The certificate given is not the one of `recipient_device`.
    #[error("certificate does not belong to the receipt's device")]
    WrongDevice,
    /// The signature does not cover this receipt.
    #[error("receipt signature is invalid")]
    BadSignature,
}

fn signed_message(
    message_id: &MessageId,
    sender_device: &DeviceId,
    recipient_device: &DeviceId,
    kind: ReceiptKind,
    at_ms: u64,
) -> Vec<u8> {
    let kind = match kind {
        ReceiptKind::Delivered => 0u8,
        ReceiptKind::Read => 1u8,
    };
    let mut message = Vec::with_capacity(RECEIPT_CONTEXT.len() + 16 + 20 + 20 + 1 + 8);
    message.extend_from_slice(RECEIPT_CONTEXT);
    message.extend_from_slice(&message_id.0);
    message.extend_from_slice(&sender_device.0);
    message.extend_from_slice(&recipient_device.0);
    message.push(kind);
    message.extend_from_slice(&at_ms.to_be_bytes());
    message
}

impl Receipt {
    /// `recipient` acknowledges `message_id`, sent by `sender_device`.
    pub fn sign(
        recipient: &DeviceKey,
        message_id: MessageId,
        sender_device: DeviceId,
        kind: ReceiptKind,
        at_ms: u64,
    ) -> Receipt {
        let recipient_device = recipient.id();
        let message = signed_message(&message_id, &sender_device, &recipient_device, kind, at_ms);
        Receipt {
            message_id,
            sender_device,
            recipient_device,
            kind,
            at_ms,
            signature: recipient.sign(&message),
        }
    }

    /// Checks that `recipient_cert` names `recipient_device` and that its
    /// device key signed this receipt. The certificate's own user signature
    /// is the caller's to check (it usually already has).
    pub fn verify(&self, recipient_cert: &DeviceCert) -> Result<(), ReceiptError> {
        if recipient_cert.device_id() != self.recipient_device {
            return Err(ReceiptError::WrongDevice);
        }
        let message = signed_message(
            &self.message_id,
            &self.sender_device,
            &self.recipient_device,
            self.kind,
            self.at_ms,
        );
        if verify_signature(&recipient_cert.device_key, &message, &self.signature) {
            Ok(())
        } else {
            Err(ReceiptError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::identity::Identity;

    fn pair() -> (Identity, Identity) {
        (
            Identity::generate("a", 1, &mut SeededEntropy::new(1)),
            Identity::generate("b", 1, &mut SeededEntropy::new(2)),
        )
    }

    fn receipt(sender: &Identity, recipient: &Identity, kind: ReceiptKind) -> Receipt {
        Receipt::sign(
            &recipient.device,
            MessageId([5; 16]),
            sender.device_id(),
            kind,
            1_234,
        )
    }

    #[test]
    fn signed_receipt_verifies() {
        let (a, b) = pair();
        for kind in [ReceiptKind::Delivered, ReceiptKind::Read] {
            let r = receipt(&a, &b, kind);
            assert_eq!(r.recipient_device, b.device_id());
            assert_eq!(r.sender_device, a.device_id());
            assert_eq!(r.verify(&b.cert), Ok(()));
        }
    }

    #[test]
    fn another_devices_cert_is_wrong_device() {
        let (a, b) = pair();
        assert_eq!(
            receipt(&a, &b, ReceiptKind::Read).verify(&a.cert),
            Err(ReceiptError::WrongDevice)
        );
    }

    #[test]
    fn tampered_receipts_are_bad_signatures() {
        let (a, b) = pair();
        let good = receipt(&a, &b, ReceiptKind::Delivered);
        let mut r = good.clone();
        r.kind = ReceiptKind::Read;
        assert_eq!(r.verify(&b.cert), Err(ReceiptError::BadSignature));
        let mut r = good.clone();
        r.at_ms += 1;
        assert_eq!(r.verify(&b.cert), Err(ReceiptError::BadSignature));
        let mut r = good.clone();
        r.message_id.0[0] ^= 1;
        assert_eq!(r.verify(&b.cert), Err(ReceiptError::BadSignature));
        let mut r = good;
        r.signature.0[10] ^= 1;
        assert_eq!(r.verify(&b.cert), Err(ReceiptError::BadSignature));
    }

    #[test]
    fn receipt_round_trips_through_postcard() {
        let (a, b) = pair();
        let r = receipt(&a, &b, ReceiptKind::Read);
        let bytes = postcard::to_allocvec(&r).expect("encode");
        assert_eq!(postcard::from_bytes::<Receipt>(&bytes), Ok(r));
    }
}
