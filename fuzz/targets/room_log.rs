//! Fuzz target `room_log`: room membership logs as a member receives them
//! (`tincan_core::room::RoomLog`).
//!
//! The first byte picks a mode, the rest is its input:
//! - 0: a whole log, `Vec<RoomOp>` in postcard (a stored log, or the log
//!   sent to a new member), rebuilt with [`RoomLog::from_ops`].
//! - 1..: a script. Four fixed users write validly signed ops of every
//!   kind, each on parents the script picks among all ops so far (so ops
//!   can be concurrent, stale or back-dated), whether or not the author
//!   holds the right. The ops are then given to one log as a whole
//!   ([`RoomLog::from_ops`]) and to another one by one in an order the
//!   script picks ([`RoomLog::handle_op`]).
//!
//! Checks: nothing panics; admins are members; and the two logs agree op
//! for op and state for state, since whether an op is taken must not
//! depend on the order ops arrive in.

use std::sync::OnceLock;

use tincan_core::identity::{DeviceCert, DeviceKey, UserKey};
use tincan_core::room::{OpHash, RoomAction, RoomOp, MAX_PENDING_OPS};
use tincan_core::{RoomLog, UserId};

/// How many users the scripts use.
pub const USERS: usize = 4;

/// One user's key, device and certificate.
pub struct Member {
    /// The user.
    pub user: UserKey,
    /// Their device.
    pub device: DeviceKey,
    /// Its certificate.
    pub cert: DeviceCert,
}

/// The fixed users (deterministic, so the seed generator uses them too).
pub fn members() -> &'static [Member] {
    static MEMBERS: OnceLock<Vec<Member>> = OnceLock::new();
    MEMBERS.get_or_init(|| {
        (0..USERS as u8)
            .map(|i| {
                let user = UserKey::from_bytes(&[50 + i; 32]);
                let device = DeviceKey::from_bytes(&[60 + i; 64]);
                Member {
                    cert: user.certify(&device, 1_700_000_000),
                    user,
                    device,
                }
            })
            .collect()
    })
}

/// The room every script starts from: created by user 0.
pub fn genesis() -> RoomOp {
    let creator = &members()[0];
    RoomOp::sign(
        &creator.device,
        &creator.cert,
        None,
        Vec::new(),
        1_700_000_000_000,
        RoomAction::Create {
            name: "fuzz".into(),
            nonce: [7; 16],
        },
    )
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    if mode == 0 {
        if let Ok(ops) = postcard::from_bytes::<Vec<RoomOp>>(body) {
            if let Ok((log, _refused)) = RoomLog::from_ops(ops) {
                check_state(&log);
            }
        }
        return;
    }
    run_script(body);
}

/// A cursor over the script bytes (zero once they run out).
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

/// Most ops one script writes: well under the pending bound, so the
/// one-by-one log never has to drop a held op, and few enough that a run
/// stays short while every op refolds the log (about 13 ms of CPU a run
/// at 24 ops).
const MAX_SCRIPT_OPS: usize = 24;
const _: () = assert!(MAX_SCRIPT_OPS < MAX_PENDING_OPS);

fn run_script(body: &[u8]) {
    let members = members();
    let genesis = genesis();
    let room = genesis.room_id();
    let mut ops = vec![genesis];
    let mut script = Script(body);
    let mut at_ms = 1_700_000_000_000u64;
    while !script.0.is_empty() && ops.len() <= MAX_SCRIPT_OPS {
        let head = script.byte();
        let author = &members[usize::from(head) % USERS];
        let target = members[usize::from(script.byte()) % USERS].user.id();
        let action = match (head / 4) % 10 {
            0 => RoomAction::Add {
                users: vec![target],
            },
            1 => RoomAction::Join,
            2 => RoomAction::Leave,
            3 => RoomAction::Remove { user: target },
            4 => RoomAction::Promote { user: target },
            5 => RoomAction::Demote { user: target },
            6 => RoomAction::SetTopic {
                topic: format!("t{}", ops.len()),
            },
            7 => RoomAction::SetName {
                name: format!("n{}", ops.len()),
            },
            8 => RoomAction::Disable,
            _ => RoomAction::Add {
                users: members.iter().map(|m| m.user.id()).collect(),
            },
        };
        // Parents: the ops picked by a bit mask over the last eight (the
        // newest alone when the mask picks none).
        let mask = script.byte();
        let window = ops.len().saturating_sub(8);
        let mut parents: Vec<OpHash> = ops[window..]
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, op)| op.hash())
            .collect();
        if parents.is_empty() {
            parents.push(ops[ops.len() - 1].hash());
        }
        // Time may go back as well as forward (clocks differ; back-dating).
        let step = u64::from(script.byte());
        at_ms = if step >= 128 {
            at_ms.saturating_sub((step - 128) * 1_000)
        } else {
            at_ms + step * 1_000
        };
        ops.push(RoomOp::sign(
            &author.device,
            &author.cert,
            room,
            parents,
            at_ms,
            action,
        ));
    }

    let (whole, _refused) = RoomLog::from_ops(ops.clone()).expect("the genesis is valid");
    check_state(&whole);

    // One by one, after the genesis, in a rotated and interleaved order.
    let rest = &ops[1..];
    let mut order: Vec<usize> = (0..rest.len()).collect();
    if !order.is_empty() {
        let rotate = usize::from(script.byte()) % order.len();
        order.rotate_left(rotate);
        if script.byte() % 2 == 1 {
            order.reverse();
        }
    }
    let mut single = RoomLog::from_ops(vec![ops[0].clone()])
        .expect("the genesis is valid")
        .0;
    for i in order {
        let _ = single.handle_op(rest[i].clone());
        check_state(&single);
    }
    // Ops that name a refused op as parent wait in both logs alike.
    assert_eq!(single.pending_len(), whole.pending_len(), "held ops differ");
    assert_eq!(
        single.order(),
        whole.order(),
        "the order ops arrived in changed the log"
    );
    assert_eq!(
        single.state(),
        whole.state(),
        "the order ops arrived in changed the room"
    );
}

/// What must hold in every state a log folds to.
fn check_state(log: &RoomLog) {
    let state = log.state();
    let stray: Vec<&UserId> = state.admins.difference(&state.members).collect();
    assert!(stray.is_empty(), "admins who are not members: {stray:?}");
    assert!(
        log.members_at(&state.epoch).is_some(),
        "the current epoch has no member list"
    );
}
