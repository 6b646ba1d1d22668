//! Which LAN peers a node keeps links to: a few ring neighbours, so the
//! links per node stay the same whether the LAN holds 20 desktops or 1,000.
//!
//! All devices a node believes present, itself included, sorted by device
//! id, form a ring of n. With a = ⌈∛n⌉, a node dials the devices 1, a and
//! a² places after it and so is dialled by those 1, a and a² places before
//! it: at most six links. Any distance on the ring is a sum of at most
//! about a/2 steps of each length, so a record crosses the LAN in about
//! 1.5·∛n hops (15 at 1,000 nodes, 9 at 200); the ±1 links alone form a
//! cycle, so the graph is connected. Every node computes the same ring once
//! their views agree, so both ends of a link want it.

use std::collections::BTreeSet;

use crate::DeviceId;

/// Ring offsets a node dials: 1, a and a² with a = ⌈∛n⌉.
fn offsets(n: usize) -> [usize; 3] {
    let mut a = 1;
    while a * a * a < n {
        a += 1;
    }
    [1, a, a * a]
}

/// The devices `me` dials, given everyone present (`me` may or may not be
/// in `present`).
pub fn targets(me: &DeviceId, present: &BTreeSet<DeviceId>) -> BTreeSet<DeviceId> {
    ring_at(me, present, true)
}

/// The devices `me` keeps links to: those it dials and those that dial it.
pub fn neighbours(me: &DeviceId, present: &BTreeSet<DeviceId>) -> BTreeSet<DeviceId> {
    let mut all = ring_at(me, present, true);
    all.extend(ring_at(me, present, false));
    all
}

fn ring_at(me: &DeviceId, present: &BTreeSet<DeviceId>, forward: bool) -> BTreeSet<DeviceId> {
    let mut ring: Vec<DeviceId> = present.iter().copied().collect();
    let i = match ring.binary_search(me) {
        Ok(i) => i,
        Err(i) => {
            ring.insert(i, *me);
            i
        }
    };
    let n = ring.len();
    let mut out = BTreeSet::new();
    if n < 2 {
        return out;
    }
    for k in offsets(n) {
        let k = k % n;
        if k == 0 {
            continue;
        }
        let j = if forward {
            (i + k) % n
        } else {
            (i + n - k) % n
        };
        if j != i {
            out.insert(ring[j]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> BTreeSet<DeviceId> {
        (0..n).map(|i| DeviceId([i; crate::id::ID_LEN])).collect()
    }

    /// Breadth-first from the first device over neighbour links: how many
    /// devices are reached, and in how many hops the last of them.
    fn flood(all: &BTreeSet<DeviceId>) -> (usize, usize) {
        let start = *all.iter().next().expect("nodes");
        let mut reached = BTreeSet::from([start]);
        let mut frontier = reached.clone();
        let mut hops = 0;
        loop {
            let mut next = BTreeSet::new();
            for d in &frontier {
                for x in neighbours(d, all) {
                    if reached.insert(x) {
                        next.insert(x);
                    }
                }
            }
            if next.is_empty() {
                return (reached.len(), hops);
            }
            frontier = next;
            hops += 1;
        }
    }

    #[test]
    fn small_lans_link_everyone() {
        let all = ids(4);
        for me in &all {
            let others: BTreeSet<_> = all.iter().filter(|d| *d != me).copied().collect();
            assert_eq!(neighbours(me, &all), others);
        }
    }

    #[test]
    fn links_per_node_stay_bounded_and_the_ring_is_connected() {
        for n in [5u8, 20, 50, 200] {
            let all = ids(n);
            for me in &all {
                assert!(neighbours(me, &all).len() <= 6, "n={n}");
            }
            assert_eq!(flood(&all).0, n as usize, "n={n}");
        }
    }

    #[test]
    fn a_record_crosses_a_large_lan_in_few_hops() {
        let all: BTreeSet<DeviceId> = (0..1000u32)
            .map(|i| {
                let mut id = [0u8; crate::id::ID_LEN];
                id[..4].copy_from_slice(&i.to_be_bytes());
                DeviceId(id)
            })
            .collect();
        let (reached, hops) = flood(&all);
        assert_eq!(reached, all.len());
        assert!(hops <= 16, "{hops} hops across 1,000 nodes");
    }

    #[test]
    fn dialling_is_mirrored_by_being_dialled() {
        let all = ids(37);
        for a in &all {
            for b in targets(a, &all) {
                assert!(neighbours(&b, &all).contains(a));
            }
        }
    }
}
