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

use crate::envelope::Envelope;
use crate::identity::DeviceCert;
use crate::receipt::Receipt;
use crate::MessageId;

/// The version byte this build writes and accepts.
pub const PROTOCOL_VERSION: u8 = 1;

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
    /// Anything else, explained for logs.
    Other(String),
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
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::entropy::SeededEntropy;
    use crate::envelope::Content;
    use crate::identity::Identity;
    use crate::receipt::ReceiptKind;

    fn person(seed: u64) -> Identity {
        Identity::generate("p", 1_700_000_000, &mut SeededEntropy::new(seed))
    }

    fn envelope(from: &Identity, to: &[&Identity], text: &str) -> Envelope {
        let certs: Vec<DeviceCert> = to.iter().map(|p| p.cert.clone()).collect();
        let mut entropy = SeededEntropy::new(9);
        let id = MessageId::random(&mut entropy);
        let content = Content::Text {
            text: text.to_owned(),
        };
        Envelope::seal(
            &from.device,
            &from.cert,
            &certs,
            id,
            5,
            &content,
            &mut entropy,
        )
        .expect("seal")
    }

    fn every_frame() -> Vec<Frame> {
        let (a, b) = (person(1), person(2));
        let id = MessageId([3; 16]);
        let mut frames = vec![
            Frame::Hello(Hello {
                name: "alice".into(),
                listen_port: 4433,
                cert: a.cert.clone(),
            }),
            Frame::Envelope(envelope(&a, &[&b], "hi")),
            Frame::Receipt(Receipt::sign(
                &b.device,
                id,
                a.device_id(),
                ReceiptKind::Read,
                7,
            )),
            Frame::Goodbye,
        ];
        for reason in [
            RefuseReason::NotForThisDevice,
            RefuseReason::Undecryptable,
            RefuseReason::BadSignature,
            RefuseReason::TooLarge,
            RefuseReason::Blocked,
            RefuseReason::Other("full".into()),
        ] {
            frames.push(Frame::Refused {
                message_id: id,
                reason,
            });
        }
        frames
    }

    fn frame_with_body(version: u8, postcard_body: &[u8]) -> Vec<u8> {
        let len = 1 + postcard_body.len() as u32;
        let mut out = len.to_be_bytes().to_vec();
        out.push(version);
        out.extend_from_slice(postcard_body);
        out
    }

    #[test]
    fn every_frame_round_trips() {
        for frame in every_frame() {
            let bytes = encode(&frame).expect("encode");
            assert_eq!(decode(&bytes), Ok((frame, bytes.len())));
        }
    }

    #[test]
    fn goodbye_golden_bytes() {
        // length 2 | version 1 | postcard variant index 4 (Goodbye)
        assert_eq!(encode(&Frame::Goodbye), Ok(vec![0, 0, 0, 2, 1, 4]));
        assert_eq!(decode(&[0, 0, 0, 2, 1, 4, 0xaa]), Ok((Frame::Goodbye, 6)));
    }

    #[test]
    fn truncated_input_says_how_much_is_needed() {
        assert_eq!(decode(&[]), Err(DecodeError::Truncated { needed: 4 }));
        assert_eq!(
            decode(&[0, 0, 0]),
            Err(DecodeError::Truncated { needed: 4 })
        );
        assert_eq!(
            decode(&[0, 0, 0, 2, 1]),
            Err(DecodeError::Truncated { needed: 6 })
        );
        let bytes = encode(&every_frame()[0]).expect("encode");
        for len in 0..bytes.len() {
            assert!(matches!(
                decode(&bytes[..len]),
                Err(DecodeError::Truncated { .. })
            ));
        }
    }

    #[test]
    fn oversize_prefix_is_rejected_without_buffering() {
        let len = MAX_FRAME_LEN + 1;
        let prefix = (len as u32).to_be_bytes();
        let oversize = Err(DecodeError::Oversize {
            len,
            max: MAX_FRAME_LEN,
        });
        assert_eq!(decode(&prefix), oversize);

        let mut decoder = FrameDecoder::new();
        decoder.feed(&[0, 0, 0, 2, 1, 4]);
        decoder.feed(&prefix);
        decoder.feed(&vec![0u8; 100_000]);
        assert_eq!(decoder.buffered(), 6);
        assert_eq!(decoder.poll_frame(), Ok(Some(Frame::Goodbye)));
        assert_eq!(decoder.poll_frame().map(|_| ()), oversize.map(|_| ()));
        assert_eq!(decoder.buffered(), 0);
        decoder.feed(&[0, 0, 0, 2, 1, 4]);
        assert_eq!(decoder.buffered(), 0);
        assert!(decoder.poll_frame().is_err());
    }

    #[test]
    fn unknown_version_is_reported() {
        let bytes = frame_with_body(99, &[4]);
        assert_eq!(decode(&bytes), Err(DecodeError::UnknownVersion(99)));
    }

    #[test]
    fn bad_bodies_are_malformed_or_trailing() {
        assert!(matches!(
            decode(&frame_with_body(1, &[0xff, 0xff])),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode(&frame_with_body(1, &[])),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 0]),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(
            decode(&frame_with_body(1, &[4, 0])),
            Err(DecodeError::TrailingBytes)
        );
        let mut decoder = FrameDecoder::new();
        decoder.feed(&[0, 0, 0, 0]);
        assert!(matches!(
            decoder.poll_frame(),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn largest_text_to_most_recipients_fits_one_frame() {
        let sender = person(1);
        let recipients: Vec<Identity> = (0..crate::envelope::MAX_RECIPIENTS as u64)
            .map(|i| person(1_000 + i))
            .collect();
        let refs: Vec<&Identity> = recipients.iter().collect();
        // Multi-byte characters, exactly MAX_TEXT_LEN bytes.
        let text = "é".repeat(MAX_TEXT_LEN / 2);
        let frame = Frame::Envelope(envelope(&sender, &refs, &text));
        let bytes = encode(&frame).expect("64 KiB text fits");
        assert!(bytes.len() < MAX_FRAME_LEN * 3 / 4, "{} bytes", bytes.len());
        assert_eq!(decode(&bytes).map(|(f, _)| f), Ok(frame));
    }

    #[test]
    fn too_large_frame_is_refused_by_encode() {
        let frame = Frame::Refused {
            message_id: MessageId([0; 16]),
            reason: RefuseReason::Other("x".repeat(MAX_FRAME_LEN)),
        };
        assert!(matches!(encode(&frame), Err(EncodeError::TooLarge { .. })));
    }

    #[test]
    fn byte_at_a_time_yields_the_same_frames() {
        let frames = every_frame();
        let stream: Vec<u8> = frames
            .iter()
            .flat_map(|f| encode(f).expect("encode"))
            .collect();
        let mut decoder = FrameDecoder::new();
        let mut got = Vec::new();
        for byte in &stream {
            decoder.feed(std::slice::from_ref(byte));
            while let Some(frame) = decoder.poll_frame().expect("valid stream") {
                got.push(frame);
            }
        }
        assert_eq!(got, frames);
        assert_eq!(decoder.buffered(), 0);

        let mut decoder = FrameDecoder::new();
        decoder.feed(&stream);
        let mut got = Vec::new();
        while let Some(frame) = decoder.poll_frame().expect("valid stream") {
            got.push(frame);
        }
        assert_eq!(got, frames);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), chunk in 1usize..64) {
            let _ = decode(&bytes);
            let mut decoder = FrameDecoder::new();
            for piece in bytes.chunks(chunk) {
                decoder.feed(piece);
                while let Ok(Some(_)) = decoder.poll_frame() {}
                prop_assert!(decoder.buffered() <= MAX_FRAME_LEN + 4);
            }
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let bytes = frame_with_body(PROTOCOL_VERSION, &body);
            let _ = decode(&bytes);
            let mut decoder = FrameDecoder::new();
            decoder.feed(&bytes);
            let _ = decoder.poll_frame();
        }

        #[test]
        fn any_text_round_trips_sealed_and_framed(text in "\\PC{0,300}") {
            let (a, b) = (person(1), person(2));
            let frame = Frame::Envelope(envelope(&a, &[&b], &text));
            let bytes = encode(&frame).expect("encode");
            let (decoded, used) = decode(&bytes).expect("decode");
            prop_assert_eq!(used, bytes.len());
            let Frame::Envelope(envelope) = decoded else {
                return Err(TestCaseError::fail("not an envelope"));
            };
            let opened = envelope.open(&b.device).expect("open");
            prop_assert_eq!(opened.content, Content::Text { text });
        }
    }
}
