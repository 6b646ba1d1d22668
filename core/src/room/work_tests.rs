//! Folding is incremental and bounded: measured in ops visited
//! ([`RoomLog::work`]), never in time.

use super::*;
use crate::entropy::SeededEntropy;
use crate::identity::Identity;

fn person(name: &str, seed: u64) -> Identity {
    Identity::generate(name, 1_700_000_000, &mut SeededEntropy::new(seed))
}

fn topic(who: &Identity, room: RoomId, parents: Vec<OpHash>, n: u64) -> RoomOp {
    RoomOp::sign(
        &who.device,
        &who.cert,
        Some(room),
        parents,
        n,
        RoomAction::SetTopic {
            topic: format!("t{n}"),
        },
    )
}

/// The star of the issue: a stranger's own room whose 20,000 ops (19,999
/// `SetTopic`)
/// ops all hang off the genesis (the previous fold visited every op again
/// for each op taken: about 2 * 10^8 visits).
#[test]
fn a_star_of_20000_ops_folds_in_bounded_work() {
    let eve = person("eve", 1);
    let (log, genesis) = RoomLog::create(
        &eve.device,
        &eve.cert,
        "Star",
        1,
        &mut SeededEntropy::new(2),
    )
    .unwrap();
    let mut ops = vec![genesis.clone()];
    ops.extend((0..19_999).map(|n| topic(&eve, log.id(), vec![genesis.hash()], n)));
    let (star, errors) = RoomLog::from_ops(ops).unwrap();
    assert_eq!(
        star.order().len(),
        1 + MAX_WIDTH,
        "one layer holds MAX_WIDTH ops"
    );
    assert_eq!(errors.len(), 19_999 - MAX_WIDTH);
    assert!(errors.iter().all(|e| matches!(e, RoomError::TooMany(_))));
    // MAX_WIDTH^2 / 2 for the layer, the rest refused at once.
    assert!(star.work() < 100_000, "{} ops visited", star.work());
}

/// A long log: each op written on the heads folds in O(1), a reload
/// folds it again in bounded work per op, and a concurrent op that lands
/// in the middle refolds only the ops above the final base.
#[test]
fn a_10000_op_chain_folds_each_op_in_bounded_work() {
    let ann = person("ann", 1);
    let (mut log, _) = RoomLog::create(
        &ann.device,
        &ann.cert,
        "Long",
        1,
        &mut SeededEntropy::new(2),
    )
    .unwrap();
    let n = 10_000u64;
    let mut heads_at = Vec::new();
    for i in 0..n - 1 {
        heads_at.push(log.heads());
        log.author(
            &ann.device,
            &ann.cert,
            RoomAction::SetTopic {
                topic: format!("t{i}"),
            },
            i,
        )
        .unwrap();
    }
    // Amortised: moving the base up refolds at most 4 * LAG ops once
    // every LAG layers.
    assert!(log.work() < 8 * n, "{} ops visited", log.work());
    let (again, errors) = RoomLog::from_ops(log.ops_in_order()).unwrap();
    assert!(errors.is_empty());
    assert_eq!(again.state(), log.state());
    assert!(
        again.work() < 8 * n,
        "{} ops visited on reload",
        again.work()
    );
    // An op written 10 layers back lands in the middle of the last ones.
    let before = log.work();
    let back = heads_at[heads_at.len() - 10].clone();
    log.handle_op(topic(&ann, log.id(), back, 7)).unwrap();
    let cost = log.work() - before;
    assert!(
        cost < 10 * LAG * 4,
        "{cost} ops visited for one concurrent op"
    );
    // One written further back than LAG layers is refused, in O(1).
    let far = heads_at[heads_at.len() - 1 - LAG as usize].clone();
    assert_eq!(
        log.handle_op(topic(&ann, log.id(), far, 8)),
        Err(RoomError::TooFarBehind)
    );
}
