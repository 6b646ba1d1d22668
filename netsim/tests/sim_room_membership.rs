//! Room membership in the simulator: core's room logs on every device,
//! changed by ops that travel through the outboxes like any message (the
//! daemon's rule: to the members before and after the op, the whole log
//! to users it adds), checked with `Sim::room_report`.
//!
//! - Changes reach members that were down or cut off when they were made,
//!   and room messages go to the members the sender's own log lists.
//! - Two gaps of the daemon's rule, found by the simulator and closed in
//!   core's rule that both now run (`tincan_core::inbound::room::take_ops`):
//!   a user added while another member made a concurrent change now gets
//!   that change from the members that take the add, and an op held for
//!   its parents is no longer acknowledged, so a crash cannot lose it for
//!   good: its sender retries until it is taken.

use std::time::Duration;

use tincan_core::room::RoomAction;
use tincan_core::{RoomId, UserId};
use tincan_netsim::sim::{NodeIdx, Sim, SimBuilder, SiteIdx};

/// Nine nodes over three sites (node `i` in site `i % 3`), settled, and a
/// room created by node 0 with nodes 1-6 (node 1 an admin too).
fn office(seed: u64) -> (Sim, RoomId, Vec<NodeIdx>) {
    let mut sim = SimBuilder::new().seed(seed).sites(3).loss(0.05).build();
    let nodes: Vec<NodeIdx> = (0..9)
        .map(|i| sim.add_node(SiteIdx(i % 3), &format!("n{i}")))
        .collect();
    sim.settle(Duration::from_secs(30)).expect("gateways");
    let with: Vec<UserId> = nodes[1..7].iter().map(|n| user(&sim, *n)).collect();
    let room = sim.create_room(nodes[0], "office", &with).expect("create");
    let promote = RoomAction::Promote {
        user: user(&sim, nodes[1]),
    };
    sim.room_change(nodes[0], room, promote).expect("promote");
    drain(&mut sim);
    assert!(sim.room_report().converged());
    (sim, room, nodes)
}

fn user(sim: &Sim, n: NodeIdx) -> UserId {
    sim.node(n).user_id()
}

fn drain(sim: &mut Sim) {
    sim.run_until(Sim::is_quiescent, Duration::from_secs(600))
        .expect("every op and message settled");
}

#[test]
fn changes_reach_members_that_were_down_or_cut_off() {
    let (mut sim, room, n) = office(1);
    // Node 4 is down and site 2 (nodes 2, 5, 8) cut off from site 0 while
    // the admin (node 0, site 0) invites node 8, removes node 3 and node 6
    // leaves.
    sim.crash(n[4]);
    sim.partition(SiteIdx(0), SiteIdx(2));
    let invite = RoomAction::Add {
        users: vec![user(&sim, n[8])],
    };
    sim.room_change(n[0], room, invite).expect("invite");
    sim.run_for(Duration::from_secs(5));
    let remove = RoomAction::Remove {
        user: user(&sim, n[3]),
    };
    sim.room_change(n[0], room, remove).expect("remove");
    sim.run_for(Duration::from_secs(5));
    let leave = RoomAction::Leave;
    sim.room_change(n[6], room, leave).expect("leave");
    sim.run_for(Duration::from_secs(20));
    assert!(!sim.node(n[8]).is_room_member(&room), "cut off: not yet");
    assert!(sim.node(n[4]).is_room_member(&room));
    sim.heal_all();
    sim.restart(n[4]);
    drain(&mut sim);
    let report = sim.room_report();
    assert!(report.converged(), "{:?}", report.diverged);
    assert_eq!((report.rooms, report.ops), (1, 6));
    let state = sim.node(n[8]).room(&room).expect("log").state().clone();
    let members: Vec<UserId> = [0, 1, 2, 4, 5, 8]
        .iter()
        .map(|i| user(&sim, n[*i]))
        .collect();
    assert_eq!(state.members, members.iter().copied().collect());
    assert_eq!(sim.node(n[4]).room(&room).expect("log").state(), &state);
    // A message goes to the members the sender's log lists: not the
    // removed or departed, but the newcomer.
    let id = sim
        .send_room(n[5], room, "hello")
        .expect("send")
        .expect("members");
    let sent = sim.sent().last().expect("sent").clone();
    assert_eq!(sent.id, id);
    assert_eq!(sent.to, vec![n[0], n[1], n[2], n[4], n[8]]);
    drain(&mut sim);
    assert!(sim.delivery_report().is_exactly_once());
    // The departed member may no longer post.
    assert!(sim.send_room(n[6], room, "still here?").is_err());
}

/// A gap the daemon had: node 0 (site 0) adds node 8 (site 2) while
/// node 1, the other admin, cut off from site 0, removes node 4. Node 0's
/// whole log to node 8 cannot hold the removal, and node 1 sends the
/// removal to the members its own log lists, which do not include node 8.
/// Now every member that takes the add (node 1 among them) hands node 8
/// the ops the add did not build on, so the room converges with node 4
/// removed everywhere.
#[test]
fn a_user_added_while_another_admin_changes_the_room_gets_that_change_too() {
    let (mut sim, room, n) = office(2);
    sim.partition(SiteIdx(0), SiteIdx(1));
    let add = RoomAction::Add {
        users: vec![user(&sim, n[8])],
    };
    sim.room_change(n[0], room, add).expect("add");
    let remove = RoomAction::Remove {
        user: user(&sim, n[4]),
    };
    let removal = sim.room_change(n[1], room, remove).expect("remove");
    sim.run_for(Duration::from_secs(10));
    sim.heal_all();
    drain(&mut sim);
    let report = sim.room_report();
    assert!(report.converged(), "{:?}", report.diverged);
    let log = sim.node(n[8]).room(&room).expect("node 8 has the log");
    assert!(log.order().contains(&removal), "node 8 got the removal");
    assert!(!log.state().members.contains(&user(&sim, n[4])));
    assert!(log.state().members.contains(&user(&sim, n[8])));
}

/// The daemon's other gap: an op whose parents have not arrived was
/// held by the log and acknowledged, but only the log's ops are stored,
/// so a member that got an admin's second op before the first and crashed
/// before the first arrived never got the second again. A held op is not
/// acknowledged now: its sender retries it after the crash.
#[test]
fn a_held_op_lost_in_a_crash_is_sent_again() {
    for seed in 0..40 {
        let (mut sim, room, n) = office(seed);
        // Node 3 (site 0) is cut off from node 1 (site 1) while node 1
        // writes two ops; once healed, both leave at once and may cross.
        sim.partition(SiteIdx(0), SiteIdx(1));
        for topic in ["first", "second"] {
            let topic = RoomAction::SetTopic {
                topic: topic.into(),
            };
            sim.room_change(n[1], room, topic).expect("topic");
        }
        sim.run_for(Duration::from_secs(5));
        sim.heal_all();
        let held = |sim: &Sim| {
            sim.node(n[3])
                .room(&room)
                .is_some_and(|l| l.pending_len() > 0)
        };
        let deadline = sim.elapsed() + Duration::from_secs(30);
        while !held(&sim) && sim.elapsed() < deadline && sim.step() {}
        if !held(&sim) {
            continue; // The ops came in order: try another seed.
        }
        sim.crash(n[3]);
        sim.run_for(Duration::from_secs(1));
        sim.restart(n[3]);
        drain(&mut sim);
        let report = sim.room_report();
        assert!(report.converged(), "seed {seed}: {:?}", report.diverged);
        let log = sim.node(n[3]).room(&room).expect("log");
        assert_eq!(log.state().topic, "second", "seed {seed}");
        assert_eq!(log.pending_len(), 0, "seed {seed}");
        return;
    }
    panic!("no seed in 0..40 delivered the second op first");
}
