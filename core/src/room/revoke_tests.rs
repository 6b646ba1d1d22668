//! Removal wins: a removed or demoted admin cannot win back a right or a
//! key with an op signed on parents older than their removal, whatever
//! hash they grind; and any set of concurrent ops folds the same in any
//! arrival order, incrementally or from scratch.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::entropy::SeededEntropy;
use crate::identity::Identity;
use crate::UserId;

fn person(name: &str, seed: u64) -> Identity {
    Identity::generate(name, 1_700_000_000, &mut SeededEntropy::new(seed))
}

fn act(log: &mut RoomLog, who: &Identity, action: RoomAction) -> RoomOp {
    log.author(&who.device, &who.cert, action, 2_000).unwrap()
}

/// Signs `action` by `who` on `parents`, grinding `at_ms` until its hash
/// sorts before `beat`'s (what an attacker does to be ordered first).
fn grind(
    room: RoomId,
    who: &Identity,
    parents: &[OpHash],
    action: RoomAction,
    beat: &OpHash,
) -> RoomOp {
    (0u64..)
        .map(|at| {
            RoomOp::sign(
                &who.device,
                &who.cert,
                Some(room),
                parents.to_vec(),
                at,
                action.clone(),
            )
        })
        .find(|op| op.hash() < *beat)
        .unwrap()
}

/// Ann (creator) and Xav are admins, Bob a member. Returns the log, the
/// heads before Ann removes Xav, and the removal.
fn xav_removed(
    ann: &Identity,
    bob: &Identity,
    xav: &Identity,
    demote: bool,
) -> (RoomLog, Vec<OpHash>, RoomOp) {
    let (mut log, _) =
        RoomLog::create(&ann.device, &ann.cert, "Ops", 1, &mut SeededEntropy::new(9)).unwrap();
    act(
        &mut log,
        ann,
        RoomAction::Add {
            users: vec![bob.user_id(), xav.user_id()],
        },
    );
    act(
        &mut log,
        ann,
        RoomAction::Promote {
            user: xav.user_id(),
        },
    );
    let before = log.heads();
    let revoke = if demote {
        RoomAction::Demote {
            user: xav.user_id(),
        }
    } else {
        RoomAction::Remove {
            user: xav.user_id(),
        }
    };
    let removal = act(&mut log, ann, revoke);
    (log, before, removal)
}

#[test]
fn a_removed_admin_cannot_back_date_their_way_back_in() {
    let (ann, bob, xav, cat) = (
        person("ann", 1),
        person("bob", 2),
        person("xav", 3),
        person("cat", 4),
    );
    let attacks = [
        RoomAction::Remove {
            user: ann.user_id(),
        },
        RoomAction::Demote {
            user: ann.user_id(),
        },
        RoomAction::Disable,
        RoomAction::Promote {
            user: bob.user_id(),
        },
        RoomAction::Add {
            users: vec![cat.user_id()],
        },
        RoomAction::SetTopic {
            topic: "xav was here".into(),
        },
    ];
    for attack in attacks {
        let (mut log, before, removal) = xav_removed(&ann, &bob, &xav, false);
        // Ann goes on: a new member, so a new key epoch without Xav.
        act(
            &mut log,
            &ann,
            RoomAction::SetName {
                name: "Ops 2".into(),
            },
        );
        let dan = person("dan", 5);
        act(
            &mut log,
            &ann,
            RoomAction::Add {
                users: vec![dan.user_id()],
            },
        );
        let op = grind(log.id(), &xav, &before, attack.clone(), &removal.hash());
        // Signed on parents where Xav was an admin: taken, but void. (A
        // back-dated removal or demotion of Ann does stand, like any two
        // concurrent removals: it takes rights, it never gives Xav any.)
        let _ = log.handle_op(op.clone());
        let state = log.state();
        assert!(
            !state.members.contains(&xav.user_id()),
            "{attack:?}: Xav is back"
        );
        assert!(!state.admins.contains(&xav.user_id()), "{attack:?}");
        assert!(state.removed.contains(&xav.user_id()), "{attack:?}");
        let epoch = log.members_at(&state.epoch).unwrap();
        assert!(
            !epoch.contains(&xav.user_id()),
            "{attack:?}: the epoch lists Xav"
        );
        assert_eq!(
            log.check_sender(&state.epoch, &xav.user_id()),
            Err(RoomError::SenderNotMember)
        );
        assert!(
            !log.is_skipped(&removal.hash()),
            "{attack:?}: the removal was skipped"
        );
        if !matches!(
            attack,
            RoomAction::Remove { .. } | RoomAction::Demote { .. }
        ) {
            assert!(log.is_skipped(&op.hash()), "{attack:?} took effect");
            assert!(
                epoch.contains(&dan.user_id()),
                "{attack:?}: Ann's later add was undone"
            );
            assert_eq!(state.name, "Ops 2", "{attack:?}");
            assert!(!state.disabled, "{attack:?}");
            assert!(!state.members.contains(&cat.user_id()), "{attack:?}");
            assert!(!state.admins.contains(&bob.user_id()), "{attack:?}");
        }
        // Every replica ends the same, whatever came first.
        let (again, errors) = RoomLog::from_ops(log.ops_in_order()).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(again.state(), log.state(), "{attack:?}");
    }
}

#[test]
fn a_demoted_admin_cannot_back_date_admin_ops() {
    let (ann, bob, xav, cat) = (
        person("ann", 1),
        person("bob", 2),
        person("xav", 3),
        person("cat", 4),
    );
    for attack in [
        RoomAction::Promote {
            user: bob.user_id(),
        },
        RoomAction::Add {
            users: vec![cat.user_id()],
        },
        RoomAction::Remove {
            user: ann.user_id(),
        },
    ] {
        let (mut log, before, demotion) = xav_removed(&ann, &bob, &xav, true);
        let promoted_self = grind(log.id(), &xav, &before, attack.clone(), &demotion.hash());
        let _ = log.handle_op(promoted_self);
        let state = log.state();
        assert!(
            state.members.contains(&xav.user_id()),
            "demoted, still a member"
        );
        assert!(
            !state.admins.contains(&xav.user_id()),
            "{attack:?}: Xav is admin again"
        );
        assert!(!state.members.contains(&cat.user_id()), "{attack:?}");
        assert!(!state.admins.contains(&bob.user_id()), "{attack:?}");
    }
}

/// Every ancestor of `hash` in `log`.
fn ancestors(log: &RoomLog, hash: &OpHash) -> BTreeSet<OpHash> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![*hash];
    while let Some(h) = stack.pop() {
        if let Some(op) = log.op(&h) {
            for p in &op.parents {
                if seen.insert(*p) {
                    stack.push(*p);
                }
            }
        }
    }
    seen
}

/// Whether `user` got `right` back after `revocation`: by an applied
/// grant of another admin that does not precede it (concurrent grants by
/// other admins are their call), or a rejoin of their own after it.
fn regranted(log: &RoomLog, revocation: &OpHash, user: &UserId, admin: bool) -> bool {
    log.order().iter().any(|h| {
        let Some(op) = log.op(h) else { return false };
        let by_other = op.author_user() != *user && !ancestors(log, revocation).contains(h);
        let grants = match &op.action {
            RoomAction::Promote { user: u } => admin && u == user && by_other,
            RoomAction::Add { users } => !admin && users.contains(user) && by_other,
            RoomAction::Join => {
                !admin && op.author_user() == *user && ancestors(log, h).contains(revocation)
            }
            _ => false,
        };
        grants && !log.is_skipped(h)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random concurrent ops (removals, demotions, promotions, rejoins,
    /// back-dated ops on old heads, by anyone who could sign them there):
    /// no revoked user regains a right or a key, every arrival order
    /// folds to the same state, and the incremental fold equals a fold
    /// from scratch.
    #[test]
    fn removal_wins_over_any_concurrent_op_set(
        steps in prop::collection::vec((0usize..4, 0u8..8, 0usize..4, 0usize..4, 0u64..1_000), 1..24),
        shuffle in any::<u64>(),
    ) {
        let people: Vec<Identity> = (0..5).map(|i| person(&format!("p{i}"), 10 + i as u64)).collect();
        let (mut log, _) = RoomLog::create(&people[0].device, &people[0].cert, "R", 1, &mut SeededEntropy::new(1)).unwrap();
        let all: Vec<UserId> = people[1..4].iter().map(Identity::user_id).collect();
        act(&mut log, &people[0], RoomAction::Add { users: all });
        act(&mut log, &people[0], RoomAction::Promote { user: people[1].user_id() });
        act(&mut log, &people[0], RoomAction::Promote { user: people[2].user_id() });
        let mut snapshots = vec![log.clone()];
        let mut taken = Vec::new();
        for (who, what, target, back, at) in steps {
            let target = people[target].user_id();
            let action = match what {
                0 => RoomAction::Remove { user: target },
                1 => RoomAction::Demote { user: target },
                2 => RoomAction::Promote { user: target },
                3 => RoomAction::Add { users: vec![target] },
                4 => RoomAction::Leave,
                5 => RoomAction::Join,
                6 => RoomAction::Disable,
                _ => RoomAction::SetTopic { topic: format!("t{at}") },
            };
            // Back-dated: written on the heads of an older snapshot.
            let index = snapshots.len().saturating_sub(1 + back);
            let mut view = snapshots[index].clone();
            let Ok(op) = view.author(&people[who].device, &people[who].cert, action, at) else {
                continue;
            };
            if log.handle_op(op.clone()).is_ok() {
                taken.push(op);
            }
            snapshots.push(log.clone());
        }
        // Safety: a revocation its author had the right to write (every
        // stored op) is undone only by a later grant that descends from it.
        for h in log.order() {
            // Every stored op was valid where its author wrote it.
            let Some(op) = log.op(&h) else { continue };
            let (user, admin_only) = match &op.action {
                RoomAction::Remove { user } => (*user, false),
                RoomAction::Demote { user } => (*user, true),
                _ => continue,
            };
            let state = log.state();
            if !regranted(&log, &h, &user, true) {
                prop_assert!(!state.admins.contains(&user), "{user} is admin again after {h:?}");
            }
            if !admin_only && !regranted(&log, &h, &user, false) {
                prop_assert!(!state.members.contains(&user), "{user} is a member again after {h:?}");
                prop_assert!(!log.members_at(&state.epoch).unwrap().contains(&user));
            }
        }
        prop_assert_eq!(log.members_at(&log.state().epoch), Some(&log.state().members));
        // Convergence: any arrival order, and a fold from scratch.
        let mut order = taken.clone();
        let mut rng = SeededEntropy::new(shuffle);
        for i in (1..order.len()).rev() {
            let j = (crate::Entropy::bytes32(&mut rng)[0] as usize) % (i + 1);
            order.swap(i, j);
        }
        let mut other = snapshots[0].clone();
        for op in order {
            other.handle_op(op).unwrap();
        }
        prop_assert_eq!(other.pending_len(), 0);
        prop_assert_eq!(other.state(), log.state());
        prop_assert_eq!(other.order(), log.order());
        let (scratch, errors) = RoomLog::from_ops(log.ops_in_order()).unwrap();
        prop_assert!(errors.is_empty(), "{:?}", errors);
        prop_assert_eq!(scratch.state(), log.state());
        for h in log.order() {
            prop_assert_eq!(scratch.is_skipped(&h), log.is_skipped(&h));
            prop_assert_eq!(other.is_skipped(&h), log.is_skipped(&h));
        }
    }
}
