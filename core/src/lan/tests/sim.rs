//! Many meshes on a tiny lossless network, linked only by the dials they
//! ask for. Apart from the one-mesh tests because it checks what no single
//! mesh shows: that the rules together let a whole LAN converge.

use super::*;

/// A tiny lossless network for mesh tests: links come up when a node asks
/// to dial, gossip is delivered in rounds.
struct SimLan {
    pub meshes: Vec<LanMesh>,
    index: BTreeMap<DeviceId, usize>,
}

impl SimLan {
    pub fn new(ids: &[Identity]) -> Self {
        let meshes = ids
            .iter()
            .enumerate()
            .map(|(i, id)| mesh(id, i as u64))
            .collect();
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.device_id(), i))
            .collect();
        Self { meshes, index }
    }

    /// Runs `rounds` rounds of dialling, gossip and timers from `now`.
    pub fn run(&mut self, now: u64, rounds: usize) {
        for round in 0..rounds {
            let t = now + round as u64 * 100;
            let mut dials = Vec::new();
            for (i, m) in self.meshes.iter_mut().enumerate() {
                for (d, _) in m.poll_dials(t) {
                    if let Some(&j) = self.index.get(&d) {
                        dials.push((i, j));
                    }
                }
            }
            for (i, j) in dials {
                let (di, dj) = (self.meshes[i].me, self.meshes[j].me);
                self.meshes[i].handle_link_up(t, dj);
                self.meshes[j].handle_link_up(t, di);
            }
            let mut mail = Vec::new();
            for m in &mut self.meshes {
                while let Some((to, g)) = m.poll_transmit() {
                    mail.push((m.me, to, g));
                }
            }
            for (from, to, g) in mail {
                if let Some(&j) = self.index.get(&to) {
                    self.meshes[j]
                        .handle_gossip(t, from, g)
                        .expect("valid gossip");
                }
            }
            let mut closes = Vec::new();
            for m in &mut self.meshes {
                assert!(m.hint_index_is_sound());
                m.handle_timeout(t);
                while let Some(e) = m.poll_event() {
                    if let LanEvent::Close(d) = e {
                        closes.push((m.me, d));
                    }
                }
            }
            // Both ends see a close in the same round.
            for (a, b) in closes {
                for (x, y) in [(a, b), (b, a)] {
                    if let Some(&i) = self.index.get(&x) {
                        self.meshes[i].handle_link_down(t, y, LinkEnd::Closed);
                    }
                }
            }
        }
    }
}

/// Many meshes joined only by the links they ask for, with every node
/// knowing only one other at the start (as with multicast lost): everyone
/// learns everyone, and nobody keeps more than six links.
#[test]
fn one_peer_each_is_enough_to_learn_a_whole_lan() {
    let n = 60;
    let ids: Vec<Identity> = (0..n)
        .map(|i| identity(100 + i, &format!("N{i}")))
        .collect();
    let mut net = SimLan::new(&ids);
    for i in 1..n as usize {
        // Each knows only the node before it.
        let prev = ids[i - 1].device_id();
        net.meshes[i].handle_hint(prev, vec![addr(i as u64 - 1)]);
    }
    // 50 rounds of 100 ms: everyone knows everyone.
    net.run(0, 50);
    for (i, m) in net.meshes.iter().enumerate() {
        assert_eq!(
            m.devices().count(),
            n as usize - 1,
            "node {i} knows everyone"
        );
    }
    // After the idle time, only ring links are left.
    net.run(5_000, 400);
    for (i, m) in net.meshes.iter().enumerate() {
        assert!(
            m.link_count() <= 6,
            "node {i} holds {} links",
            m.link_count()
        );
        assert_eq!(
            m.devices().filter(|r| m.is_online(&r.device())).count(),
            n as usize - 1
        );
    }
}
