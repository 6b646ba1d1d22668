//! The CI smoke of the fuzzing (see fuzz/README.md): every corpus input and
//! every kept crash of the core targets runs through the very target bodies
//! libFuzzer runs (`fuzz/targets/*.rs`), on the normal test build.
//!
//! `cargo test -p tincan-core --test fuzz_replay -- --ignored write_seeds`
//! writes the seed corpus from real encoded values.

#[path = "../../fuzz/targets/cert_chain.rs"]
mod cert_chain;
#[path = "../../fuzz/targets/envelope.rs"]
mod envelope;
#[path = "../../fuzz/targets/frame.rs"]
mod frame;
#[path = "../../fuzz/targets/replay.rs"]
mod replay;
#[path = "../../fuzz/targets/room_log.rs"]
mod room_log;

use tincan_core::entropy::SeededEntropy;
use tincan_core::identity::Identity;
use tincan_core::receipt::{Receipt, ReceiptKind};
use tincan_core::room::{RoomAction, RoomContent, RoomEnvelope};
use tincan_core::route::{Register, Route, Routed, Welcome};
use tincan_core::site::SiteId;
use tincan_core::wire::{self, Frame, Hello, RefuseReason};
use tincan_core::{Content, DeviceRevocation, Envelope, MessageId, RoomLog, Roster};

#[test]
fn frame_corpus_replays() {
    replay::replay("frame", frame::run);
}

#[test]
fn envelope_corpus_replays() {
    replay::replay("envelope", envelope::run);
}

#[test]
fn cert_chain_corpus_replays() {
    replay::replay("cert_chain", cert_chain::run);
}

#[test]
fn room_log_corpus_replays() {
    replay::replay("room_log", room_log::run);
}

fn postcard<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("seed values encode")
}

fn with_mode(mode: u8, body: Vec<u8>) -> Vec<u8> {
    [vec![mode], body].concat()
}

fn sealed_envelope(content: &Content) -> Envelope {
    let keys = envelope::keys();
    Envelope::seal(
        &keys.sender,
        &keys.sender_cert,
        std::slice::from_ref(&keys.receiver_cert),
        MessageId([1; 16]),
        1_700_000_000_000,
        content,
        &mut SeededEntropy::new(1),
    )
    .expect("seed envelope seals")
}

fn sealed_room_envelope() -> RoomEnvelope {
    let keys = envelope::keys();
    RoomEnvelope::seal(
        &keys.sender,
        &keys.sender_cert,
        envelope::ROOM,
        envelope::EPOCH,
        &keys.room_key,
        vec![keys.receiver.id()],
        MessageId([2; 16]),
        1_700_000_000_000,
        &RoomContent::Text {
            text: "lunch?".into(),
        },
        &mut SeededEntropy::new(2),
    )
    .expect("seed room envelope seals")
}

/// A real room log: created, members added, one promoted, one removed,
/// a topic, a leave.
fn room_ops() -> Vec<tincan_core::room::RoomOp> {
    let m = room_log::members();
    let genesis = room_log::genesis();
    let (mut log, _) = RoomLog::from_ops(vec![genesis]).expect("genesis");
    let mut at = 1_700_000_001_000;
    let mut write = |log: &mut RoomLog, who: usize, action: RoomAction| {
        at += 1_000;
        log.author(&m[who].device, &m[who].cert, action, at)
            .expect("seed op is allowed");
    };
    let users: Vec<_> = m.iter().map(|m| m.user.id()).collect();
    write(
        &mut log,
        0,
        RoomAction::Add {
            users: users[1..].to_vec(),
        },
    );
    write(&mut log, 0, RoomAction::Promote { user: users[1] });
    write(
        &mut log,
        1,
        RoomAction::SetTopic {
            topic: "plans".into(),
        },
    );
    write(&mut log, 1, RoomAction::Remove { user: users[2] });
    write(&mut log, 3, RoomAction::Leave);
    write(&mut log, 0, RoomAction::Demote { user: users[1] });
    log.ops_in_order()
}

#[test]
#[ignore = "writes the seed corpus; run by hand after a format change"]
fn write_seeds() {
    let env_keys = envelope::keys();
    let chain = cert_chain::keys();
    let text = Content::Text {
        text: "hello".into(),
    };
    let envelope = sealed_envelope(&text);
    let room_envelope = sealed_room_envelope();
    let membership = chain
        .org
        .issue("Acme", chain.user.id(), 1_700_000_000, 1_800_000_000)
        .expect("membership");
    let revocations = chain
        .org
        .revoke(3, vec![env_keys.receiver_cert.user_id()], 1_700_000_000);
    let removal = DeviceRevocation::sign(&chain.user, env_keys.sender.id(), 1_700_000_500);
    let mut roster = Roster::default();
    roster.certs.push(chain.cert.clone());
    roster.revocations.push(removal.clone());
    let receipt = Receipt::sign(
        &env_keys.receiver,
        envelope.id,
        env_keys.sender.id(),
        ReceiptKind::Delivered,
        1_700_000_000_100,
    );
    let site = SiteId([9; tincan_core::site::SITE_ID_LEN]);

    let frames = [
        Frame::Hello(Hello {
            name: "Alice".into(),
            listen_port: 7_700,
            cert: chain.cert.clone(),
            membership: Some(membership.clone()),
        }),
        Frame::Envelope(envelope.clone()),
        Frame::Receipt(receipt.clone()),
        Frame::Refused {
            message_id: envelope.id,
            reason: RefuseReason::Other("full".into()),
        },
        Frame::Goodbye,
        Frame::Route(Route {
            to: vec![env_keys.receiver.id()],
            item: Routed::Envelope(Box::new(envelope.clone())),
        }),
        Frame::Register(Register {
            name: "Alice".into(),
            membership: membership.clone(),
            lan_addrs: vec!["192.168.1.20:7700".parse().expect("address")],
            lonely: true,
        }),
        Frame::Welcome(Welcome {
            public_addr: "203.0.113.5:40000".parse().expect("address"),
            lease_ttl_ms: 1_200,
        }),
        Frame::LeaseClaim { site, epoch: 4 },
        Frame::Revocations(revocations.clone()),
        Frame::Ack,
        Frame::Error("no".into()),
        Frame::FileData { len: 4_096 },
        Frame::Devices(roster.clone()),
        Frame::RoomEnvelope(room_envelope.clone()),
    ];
    let encoded: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| wire::encode(f).expect("seed frame encodes"))
        .collect();
    let mut frame_seeds = encoded.clone();
    // A stream of several frames, and one cut short.
    frame_seeds.push(encoded[..5].concat());
    frame_seeds.push(encoded[1][..encoded[1].len() / 2].to_vec());
    replay::write_seeds("frame", &frame_seeds);

    replay::write_seeds(
        "envelope",
        &[
            with_mode(0, postcard(&envelope)),
            with_mode(1, postcard(&room_envelope)),
            with_mode(2, postcard(&text)),
            with_mode(2, postcard(&Content::Typing)),
            with_mode(3, postcard(&RoomContent::Text { text: "hi".into() })),
        ],
    );

    let identity = Identity::generate("Alice", 1_700_000_000, &mut SeededEntropy::new(3));
    replay::write_seeds(
        "cert_chain",
        &[
            with_mode(
                0,
                postcard(&(
                    membership.clone(),
                    chain.cert.clone(),
                    Some(revocations.clone()),
                )),
            ),
            with_mode(
                0,
                postcard(&(membership.clone(), chain.cert.clone(), None::<()>)),
            ),
            with_mode(1, membership.to_text().into_bytes()),
            with_mode(2, postcard(&roster)),
            with_mode(3, chain.cert.to_bytes()),
            with_mode(3, removal.to_bytes()),
            with_mode(3, revocations.to_bytes()),
            with_mode(3, identity.to_bytes()),
        ],
    );

    let ops = room_ops();
    replay::write_seeds(
        "room_log",
        &[
            with_mode(0, postcard(&ops)),
            // Scripts: byte 1 is the author and action, then a target, a
            // parent mask and a time step (see fuzz/targets/room_log.rs).
            with_mode(
                1,
                vec![0x24, 1, 1, 1, 0, 2, 1, 1, 0x0d, 1, 2, 1, 0x11, 3, 4, 130],
            ),
            with_mode(
                1,
                vec![
                    0x00, 1, 1, 1, 0x0c, 1, 2, 2, 0x15, 0, 3, 1, 0x0d, 2, 4, 255, 7, 1,
                ],
            ),
            with_mode(
                1,
                vec![
                    0x24, 0, 1, 1, 0x11, 1, 2, 1, 0x16, 0, 6, 1, 0x0e, 1, 1, 200, 0x21, 0, 8, 1,
                ],
            ),
        ],
    );
}
