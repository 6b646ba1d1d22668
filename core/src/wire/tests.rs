//! Tests of the frame codec: round trips, golden bytes, truncation, oversize and hostile input.

use proptest::prelude::*;

use super::*;
use crate::entropy::SeededEntropy;
use crate::envelope::Content;
use crate::identity::Identity;
use crate::receipt::ReceiptKind;
use crate::route::{Answer, Routed};

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
            membership: None,
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
        Frame::Route(Route {
            to: vec![b.device_id()],
            item: Routed::Envelope(Box::new(envelope(&a, &[&b], "routed"))),
        }),
        Frame::Answers(vec![
            DeviceAnswer {
                device: b.device_id(),
                answer: Answer::Custody,
            },
            DeviceAnswer {
                device: a.device_id(),
                answer: Answer::Failed("no path".into()),
            },
        ]),
        Frame::LeaseClaim {
            site: SiteId([7; 16]),
            epoch: 3,
        },
        Frame::LeaseGranted {
            site: SiteId([7; 16]),
            epoch: 3,
            ttl_ms: 1_200,
            grant: Box::new(crate::lease::LeaseGrant::sign(
                &a.device,
                SiteId([7; 16]),
                3,
                b.device_id(),
                9,
            )),
        },
        Frame::LeaseRefused {
            site: SiteId([7; 16]),
            epoch: 3,
            current_epoch: 4,
            holder: Some(b.device_id()),
        },
        Frame::Ack,
        Frame::Error("nope".into()),
        Frame::Devices(crate::device::Roster {
            certs: vec![a.cert.clone()],
            revocations: vec![crate::device::DeviceRevocation::sign(
                a.user.as_ref().expect("user key"),
                b.device_id(),
                9,
            )],
            labels: vec![(a.device_id(), "laptop".into())],
        }),
        Frame::Pair(crate::pairing::PairMessage::Start {
            spake: vec![0x42; 33],
        }),
        Frame::Pair(crate::pairing::PairMessage::Challenge {
            spake: vec![0x41; 33],
            confirm: [5; 32],
        }),
        Frame::Pair(crate::pairing::PairMessage::Confirm {
            confirm: [6; 32],
            label: "desktop".into(),
        }),
        Frame::Pair(crate::pairing::PairMessage::Granted(Box::new(
            crate::pairing::PairGrant {
                cert: b.cert.clone(),
                name: "alice".into(),
                membership: None,
                relay: Some("relay.example:7443#abcd".into()),
                roster: crate::device::Roster::default(),
            },
        ))),
        Frame::Pair(crate::pairing::PairMessage::Refused(
            crate::pairing::PairRefusal::WrongCode,
        )),
        Frame::DirectoryVersions,
        Frame::DirectoryUpdate(crate::route::directory::DirectoryUpdate {
            base: 4,
            version: 9,
            part: 1,
            last: true,
            entries: vec![DirectoryEntry {
                cert: b.cert.clone(),
                name: "bob".into(),
                online: true,
                site: Some(SiteId([7; 16])),
            }],
            gone: vec![a.device_id()],
        }),
    ];
    for reason in [
        RefuseReason::NotForThisDevice,
        RefuseReason::Undecryptable,
        RefuseReason::BadSignature,
        RefuseReason::TooLarge,
        RefuseReason::Blocked,
        RefuseReason::Other("full".into()),
        RefuseReason::DeviceRemoved,
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
    // length 2 | version 2 | postcard variant index 4 (Goodbye)
    assert_eq!(encode(&Frame::Goodbye), Ok(vec![0, 0, 0, 2, 2, 4]));
    assert_eq!(decode(&[0, 0, 0, 2, 2, 4, 0xaa]), Ok((Frame::Goodbye, 6)));
    // variant index 18 (Ack)
    assert_eq!(encode(&Frame::Ack), Ok(vec![0, 0, 0, 2, 2, 18]));
}

#[test]
fn directory_versioning_golden_bytes() {
    // Appended after Lan (27): old peers fail to decode them (and answer
    // an error), nothing else moves.
    assert_eq!(
        encode(&Frame::DirectoryVersions),
        Ok(vec![0, 0, 0, 2, 2, 28])
    );
    let whole = Frame::DirectoryUpdate(crate::route::directory::DirectoryUpdate {
        base: 0,
        version: 3,
        part: 0,
        last: true,
        entries: vec![],
        gone: vec![],
    });
    // variant 29 | base 0 | version 3 | part 0 | last | no entries | none gone
    assert_eq!(
        encode(&whole),
        Ok(vec![0, 0, 0, 8, 2, 29, 0, 3, 0, 1, 0, 0])
    );
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
    decoder.feed(&[0, 0, 0, 2, 2, 4]);
    decoder.feed(&prefix);
    decoder.feed(&vec![0u8; 100_000]);
    assert_eq!(decoder.buffered(), 6);
    assert_eq!(decoder.poll_frame(), Ok(Some(Frame::Goodbye)));
    assert_eq!(decoder.poll_frame().map(|_| ()), oversize.map(|_| ()));
    assert_eq!(decoder.buffered(), 0);
    decoder.feed(&[0, 0, 0, 2, 2, 4]);
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
        decode(&frame_with_body(PROTOCOL_VERSION, &[0xff, 0xff])),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode(&frame_with_body(PROTOCOL_VERSION, &[])),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode(&[0, 0, 0, 0]),
        Err(DecodeError::Malformed(_))
    ));
    assert_eq!(
        decode(&frame_with_body(PROTOCOL_VERSION, &[4, 0])),
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
