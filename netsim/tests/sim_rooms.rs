//! Issue 5's room requirement, driven through core alone: a 200-member
//! room over 10 sites (20 members each), with seeded randomness and
//! virtual time. Membership ops travel in pairwise-sealed envelopes
//! (`Content::RoomOps`), sender keys likewise (`Content::RoomKey`), and
//! room messages as `RoomEnvelope`s sealed once with the sender key.
//! Routing is the design's: same site → direct; other sites → own
//! gateway → relay → one copy into each destination site → LAN fan-out,
//! each hop with a random latency, so items overtake each other.
//!
//! Checked: every member ends with the same membership log (same order,
//! same state), including two admins removing each other at the same
//! time and a concurrent topic change; every member receives every
//! message exactly once; a removed member gets none of the later ones;
//! and exactly one copy of each room message enters each remote site.
//!
//! Model: a receiver holds an item it cannot take yet (its key or op is
//! still travelling) and retries it when something new arrives, where the
//! node's outbox would retry from the sender; so the WAN counts here are
//! those of the first attempt, which is what the design promises.
//!
//! This model stays for what the simulator (`tincan_netsim::sim`) does not
//! do yet: sender keys and room envelopes sealed once. Membership changes
//! under loss, partitions and crashes, through the real outboxes, are
//! `sim_room_membership.rs` and the standard workload (`sim_scenario.rs`).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

use tincan_core::entropy::SeededEntropy;
use tincan_core::room::{OpHash, RoomAction, RoomContent, RoomKeyGrant, RoomOp, SenderKey};
use tincan_core::wire::{self, Frame};
use tincan_core::{
    Content, DeviceCert, Envelope, Identity, MessageId, RoomEnvelope, RoomError, RoomId, RoomLog,
    UserId,
};
use tincan_netsim::sim::{check_seeds, SimRng};

const SITES: usize = 10;
const PER_SITE: usize = 20;
const MEMBERS: usize = SITES * PER_SITE;
const START_MS: u64 = 1_700_000_000_000;

#[derive(Clone)]
enum Item {
    Pairwise(Arc<Envelope>),
    Room(Arc<RoomEnvelope>),
}

struct Member {
    identity: Identity,
    log: Option<RoomLog>,
    keys: HashMap<(OpHash, usize), SenderKey>,
    held: Vec<Item>,
    shown: BTreeMap<MessageId, usize>,
    refused: usize,
}

struct World {
    seed: u64,
    now: u64,
    seq: u64,
    rng: SimRng,
    crypto: SeededEntropy,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    items: HashMap<u64, Item>,
    members: Vec<Member>,
    by_user: HashMap<UserId, usize>,
    /// Room-message copies into each site, per message.
    room_in: BTreeMap<(usize, MessageId), u64>,
    /// Pairwise (ops, keys) envelope copies into each site.
    pairwise_in: Vec<u64>,
    room_bytes: u64,
}

fn site(n: usize) -> usize {
    n / PER_SITE
}

impl World {
    fn new(seed: u64) -> World {
        let mut crypto = SeededEntropy::new(seed);
        let members: Vec<Member> = (0..MEMBERS)
            .map(|i| Member {
                identity: Identity::generate(&format!("m{i}"), START_MS / 1000, &mut crypto),
                log: None,
                keys: HashMap::new(),
                held: Vec::new(),
                shown: BTreeMap::new(),
                refused: 0,
            })
            .collect();
        let by_user = members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.identity.user_id(), i))
            .collect();
        World {
            seed,
            now: START_MS,
            seq: 0,
            rng: SimRng::new(seed, 7),
            crypto,
            queue: BinaryHeap::new(),
            items: HashMap::new(),
            members,
            by_user,
            room_in: BTreeMap::new(),
            pairwise_in: vec![0; SITES],
            room_bytes: 0,
        }
    }

    fn hop(&mut self) -> u64 {
        self.rng.in_range(5..60)
    }

    fn user(&self, n: usize) -> UserId {
        self.members[n].identity.user_id()
    }

    fn cert(&self, n: usize) -> DeviceCert {
        self.members[n].identity.cert.clone()
    }

    /// Sends `item` from `from` to the nodes `to`: one copy per hop.
    fn route(&mut self, from: usize, to: &[usize], item: Item) {
        let mut by_site: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for n in to.iter().copied().filter(|n| *n != from) {
            by_site.entry(site(n)).or_default().push(n);
        }
        for (s, nodes) in by_site {
            let at_site = if s == site(from) {
                self.now
            } else {
                match &item {
                    Item::Room(e) => *self.room_in.entry((s, e.id)).or_default() += 1,
                    Item::Pairwise(_) => self.pairwise_in[s] += 1,
                }
                // Sender → gateway → relay → destination gateway.
                self.now + self.hop() + self.hop() + self.hop()
            };
            for n in nodes {
                let at = at_site + self.hop();
                self.seq += 1;
                self.items.insert(self.seq, item.clone());
                self.queue.push(Reverse((at, self.seq, n)));
            }
        }
    }

    fn seal_pairwise(&mut self, from: usize, to: &[usize], content: &Content) {
        let to: Vec<usize> = to.iter().copied().filter(|n| *n != from).collect();
        if to.is_empty() {
            return;
        }
        let certs: Vec<DeviceCert> = to.iter().map(|n| self.cert(*n)).collect();
        let id = MessageId::random(&mut self.crypto);
        let sender = &self.members[from].identity;
        let envelope = Envelope::seal(
            &sender.device,
            &sender.cert,
            &certs,
            id,
            self.now,
            content,
            &mut self.crypto,
        )
        .expect("seal pairwise");
        self.route(from, &to, Item::Pairwise(Arc::new(envelope)));
    }

    fn nodes_of(&self, users: &BTreeSet<UserId>) -> Vec<usize> {
        users
            .iter()
            .filter_map(|u| self.by_user.get(u))
            .copied()
            .collect()
    }

    /// `author` writes an op and sends it: the op to the members before
    /// and after, the whole log to those it adds.
    fn author(&mut self, author: usize, action: RoomAction) -> RoomOp {
        let identity = self.members[author].identity.clone();
        let log = self.members[author]
            .log
            .as_mut()
            .expect("author has the room");
        let before = log.state().members.clone();
        let op = log
            .author(&identity.device, &identity.cert, action, self.now)
            .expect("authorised op");
        let after = log.state().members.clone();
        let room = log.id();
        let full = log.ops_in_order();
        let new: BTreeSet<UserId> = after.difference(&before).copied().collect();
        let old: BTreeSet<UserId> = before.union(&after).copied().collect::<BTreeSet<_>>();
        let old: BTreeSet<UserId> = old.difference(&new).copied().collect();
        let (old, new) = (self.nodes_of(&old), self.nodes_of(&new));
        self.seal_pairwise(
            author,
            &old,
            &Content::RoomOps {
                room,
                ops: vec![op.clone()],
                log_len: 0,
            },
        );
        let log_len = full.len() as u32;
        self.seal_pairwise(
            author,
            &new,
            &Content::RoomOps {
                room,
                ops: full,
                log_len,
            },
        );
        op
    }

    /// `from` sends a text to the room's current members.
    fn send(&mut self, from: usize, text: &str) -> MessageId {
        let log = self.members[from]
            .log
            .as_ref()
            .expect("sender has the room");
        let (room, epoch) = (log.id(), log.state().epoch);
        let members = self.nodes_of(&log.state().members.clone());
        let key = match self.members[from].keys.get(&(epoch, from)) {
            Some(key) => key.clone(),
            None => {
                let key = SenderKey::generate(&mut self.crypto);
                self.members[from].keys.insert((epoch, from), key.clone());
                let grant = Content::RoomKey(RoomKeyGrant {
                    room,
                    epoch,
                    key: key.clone(),
                });
                self.seal_pairwise(from, &members, &grant);
                key
            }
        };
        let to: Vec<usize> = members.iter().copied().filter(|n| *n != from).collect();
        let devices = to
            .iter()
            .map(|n| self.members[*n].identity.device_id())
            .collect();
        let id = MessageId::random(&mut self.crypto);
        let sender = &self.members[from].identity;
        let envelope = RoomEnvelope::seal(
            &sender.device,
            &sender.cert,
            room,
            epoch,
            &key,
            devices,
            id,
            self.now,
            &RoomContent::Text { text: text.into() },
            &mut self.crypto,
        )
        .expect("seal room message");
        self.room_bytes = wire::encode(&Frame::RoomEnvelope(envelope.clone()))
            .expect("encode")
            .len() as u64;
        self.route(from, &to, Item::Room(Arc::new(envelope)));
        id
    }

    /// Takes `item` at node `n`; `false` if it must wait.
    fn take(&mut self, n: usize, item: &Item) -> bool {
        let me = &mut self.members[n];
        match item {
            Item::Pairwise(envelope) => {
                let opened = envelope.open(&me.identity.device).expect("opens");
                let sender = self.by_user[&opened.sender.user_id()];
                match opened.content {
                    Content::RoomOps { room, ops, .. } => match &mut me.log {
                        // A later op overtook the whole log: wait for it.
                        None if !ops
                            .iter()
                            .any(|op| matches!(op.action, RoomAction::Create { .. })) =>
                        {
                            false
                        }
                        None => {
                            let (log, errors) = RoomLog::from_ops(ops).expect("a valid log");
                            assert!(errors.is_empty(), "{errors:?}");
                            assert_eq!(log.id(), room);
                            me.log = Some(log);
                            true
                        }
                        Some(log) => {
                            for op in ops {
                                log.handle_op(op).expect("valid op");
                            }
                            true
                        }
                    },
                    Content::RoomKey(grant) => {
                        let Some(members) =
                            me.log.as_ref().and_then(|l| l.members_at(&grant.epoch))
                        else {
                            return false;
                        };
                        assert!(members.contains(&opened.sender.user_id()));
                        me.keys.insert((grant.epoch, sender), grant.key);
                        true
                    }
                    other => panic!("unexpected content {other:?}"),
                }
            }
            Item::Room(envelope) => {
                envelope.verify_signature().expect("signed");
                let Some(log) = &me.log else {
                    return false;
                };
                match log.check_sender(&envelope.epoch, &envelope.sender.user_id()) {
                    Ok(()) => {}
                    Err(RoomError::UnknownEpoch) => return false,
                    Err(_) => {
                        me.refused += 1;
                        return true;
                    }
                }
                let sender = self.by_user[&envelope.sender.user_id()];
                let Some(key) = me.keys.get(&(envelope.epoch, sender)) else {
                    return false;
                };
                envelope.open(key).expect("opens with the sender key");
                *me.shown.entry(envelope.id).or_default() += 1;
                true
            }
        }
    }

    /// Runs every scheduled arrival.
    fn run(&mut self) {
        while let Some(Reverse((at, seq, n))) = self.queue.pop() {
            self.now = self.now.max(at);
            let item = self.items.remove(&seq).expect("scheduled item");
            if !self.take(n, &item) {
                self.members[n].held.push(item);
                continue;
            }
            // Something new arrived: retry what waited for it.
            loop {
                let held = std::mem::take(&mut self.members[n].held);
                let before = held.len();
                let mut still = Vec::new();
                for item in held {
                    if !self.take(n, &item) {
                        still.push(item);
                    }
                }
                let progress = still.len() < before;
                self.members[n].held = still;
                if !progress {
                    break;
                }
            }
        }
        let held: usize = self.members.iter().map(|m| m.held.len()).sum();
        assert_eq!(held, 0, "seed {}: items never taken", self.seed);
    }

    fn assert_converged(&self) -> RoomId {
        let first = self.members[0].log.as_ref().expect("log");
        for (i, m) in self.members.iter().enumerate() {
            let log = m
                .log
                .as_ref()
                .unwrap_or_else(|| panic!("member {i} has no log"));
            assert_eq!(log.pending_len(), 0, "member {i}");
            assert_eq!(log.order(), first.order(), "member {i}: log order");
            assert_eq!(log.state(), first.state(), "member {i}: state");
        }
        first.id()
    }
}

#[test]
fn a_200_member_room_over_10_sites_converges_with_one_wan_copy_per_site() {
    check_seeds(0..3, |seed| {
        let mut w = World::new(seed);
        let creator = 0;
        let identity = w.members[creator].identity.clone();
        let (log, _) = RoomLog::create(
            &identity.device,
            &identity.cert,
            "All hands",
            w.now,
            &mut w.crypto,
        )
        .expect("create");
        w.members[creator].log = Some(log);
        let everyone: Vec<UserId> = (1..MEMBERS).map(|n| w.user(n)).collect();
        w.author(creator, RoomAction::Add { users: everyone });
        let (a, b) = (PER_SITE, 2 * PER_SITE);
        let (ua, ub) = (w.user(a), w.user(b));
        w.author(creator, RoomAction::Promote { user: ua });
        w.author(creator, RoomAction::Promote { user: ub });
        w.run();
        let room = w.assert_converged();
        assert_eq!(
            w.members[7].log.as_ref().unwrap().state().members.len(),
            MEMBERS
        );
        println!(
            "seed {seed}: room {room} with {MEMBERS} members; pairwise copies into each site: {:?}",
            w.pairwise_in
        );

        // Concurrent admin ops on three sites: a and b remove each other,
        // the creator sets the topic, all before hearing of the others.
        w.author(a, RoomAction::Remove { user: ub });
        w.author(b, RoomAction::Remove { user: ua });
        w.author(
            creator,
            RoomAction::SetTopic {
                topic: "quarterly".into(),
            },
        );
        w.run();
        w.assert_converged();
        let state = w.members[0].log.as_ref().unwrap().state().clone();
        // Removal wins: both are removed, whichever op sorts first.
        let removed = [a, b];
        for n in removed {
            assert!(!state.members.contains(&w.user(n)), "seed {seed}");
        }
        assert_eq!(state.topic, "quarterly");
        assert_eq!(state.members.len(), MEMBERS - 2);

        // Messages from random members; the removed ones get none.
        let mut sent = Vec::new();
        for i in 0..6 {
            let from = loop {
                let n = w.rng.below(MEMBERS as u64) as usize;
                if !removed.contains(&n) {
                    break n;
                }
            };
            sent.push((w.send(from, &format!("update {i}")), from));
            w.now += w.rng.in_range(0..200);
        }
        w.run();
        for (id, from) in &sent {
            for (n, m) in w.members.iter().enumerate() {
                let times = m.shown.get(id).copied().unwrap_or(0);
                let expected = usize::from(n != *from && !removed.contains(&n));
                assert_eq!(times, expected, "seed {seed}: member {n}, message {id}");
            }
            for s in 0..SITES {
                let copies = w.room_in.get(&(s, *id)).copied().unwrap_or(0);
                let expected = u64::from(s != site(*from));
                assert_eq!(
                    copies, expected,
                    "seed {seed}: site {s} got {copies} copies of {id}"
                );
            }
        }
        assert!(w.members.iter().all(|m| m.refused == 0));
        // For comparison: the same text as a pairwise envelope (a content
        // key wrapped per device).
        let certs: Vec<DeviceCert> = (2..MEMBERS).map(|n| w.cert(n)).collect();
        let pairwise = Envelope::seal(
            &identity.device,
            &identity.cert,
            &certs,
            MessageId([0; 16]),
            w.now,
            &Content::Text {
                text: "update 0".into(),
            },
            &mut w.crypto,
        )
        .expect("seal");
        let pairwise_bytes = wire::encode(&Frame::Envelope(pairwise))
            .expect("encode")
            .len();
        assert!((w.room_bytes as usize) < pairwise_bytes);
        println!(
            "seed {seed}: {} messages, one {}-byte room envelope each (sealed once for {} devices; a pairwise envelope would be {pairwise_bytes} bytes), one copy into each remote site",
            sent.len(),
            w.room_bytes,
            MEMBERS - 2
        );
    });
}
