//! The peer book: which devices are known, whose they are, under which
//! name, whether they are reachable — and how a name typed by a user
//! resolves to exactly one person.
//!
//! Anti-spoofing rule: ids are hashes of keys, but display names are free
//! text, so anyone can call themselves "bob". The first user id seen under
//! a name keeps it (a *pin*, persisted by the driver). Another user using
//! the same name is shown as `bob (abcd-efgh)` and never wins a lookup for
//! plain `bob`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::{DeviceId, UserId};

mod resolve;

pub use resolve::{resolve, resolve_mention, Candidate, ResolveError};

/// How a peer was found; shown in `peers --json` as `via`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Announced over mDNS on the local network.
    Lan,
    /// Configured by address (`--peer HOST:PORT` or the config file).
    Static,
    /// Known from an earlier run, not seen yet in this one.
    Remembered,
    /// In another site, reached through this site's gateway.
    Gateway,
    /// In another site or roaming, reached through the relay directly.
    Relay,
}

/// What the book knows about one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The device.
    pub device: DeviceId,
    /// Its owner.
    pub user: UserId,
    /// The owner's display name as the device announced it.
    pub name: String,
    /// Addresses the device was last reachable at.
    pub addrs: Vec<SocketAddr>,
    /// Whether a live, authenticated connection exists.
    pub online: bool,
    /// How it was found.
    pub via: Via,
}

/// The outcome of [`PeerBook::learn`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LearnOutcome {
    /// A device not known before.
    New {
        /// Whether the device's name was just pinned to its user (a new pin to persist).
        pinned: bool,
    },
    /// A known device; its details were refreshed.
    Known,
    /// The device announces a name pinned to another user: a possible spoof.
    NameConflict {
        /// The contested name.
        name: String,
        /// The user who holds the name.
        holder: UserId,
        /// The user who also claims it.
        claimant: UserId,
    },
}

fn name_key(name: &str) -> String {
    crate::name::pin_key(name)
}

/// Most display names one user may hold pins for: a user who renames
/// keeps the pins of their earlier names (nobody else can take them), and
/// this bounds how many names one identity can reserve by renaming.
pub const MAX_PINS_PER_USER: usize = 4;

/// Known devices and name pins. Pure data; the driver persists changes.
#[derive(Debug, Default, Clone)]
pub struct PeerBook {
    devices: BTreeMap<DeviceId, PeerInfo>,
    pins: HashMap<String, UserId>,
}

impl PeerBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores a pin loaded from storage.
    pub fn restore_pin(&mut self, name: &str, user: UserId) {
        self.pins.entry(name_key(name)).or_insert(user);
    }

    /// Records (or refreshes) a device that proved its identity, applying the
    /// pin rule to its name.
    pub fn learn(&mut self, mut info: PeerInfo) -> LearnOutcome {
        info.name = crate::name::shown(&info.name);
        let key = name_key(&info.name);
        let mut pinned = false;
        let holder = match self.pins.get(&key) {
            Some(holder) => *holder,
            None if key.is_empty() => info.user,
            None => {
                let held = self.pins.values().filter(|u| **u == info.user).count();
                if held < MAX_PINS_PER_USER {
                    self.pins.insert(key, info.user);
                    pinned = true;
                }
                info.user
            }
        };
        let name = info.name.clone();
        let claimant = info.user;
        let known = match self.devices.get_mut(&info.device) {
            Some(existing) => {
                existing.name = info.name;
                if !info.addrs.is_empty() {
                    existing.addrs = info.addrs;
                }
                existing.online |= info.online;
                if existing.via == Via::Remembered || info.via == Via::Lan {
                    existing.via = info.via;
                }
                true
            }
            None => {
                self.devices.insert(info.device, info);
                false
            }
        };
        if holder != claimant {
            LearnOutcome::NameConflict {
                name,
                holder,
                claimant,
            }
        } else if known {
            LearnOutcome::Known
        } else {
            LearnOutcome::New { pinned }
        }
    }

    /// Marks a device online or offline; returns whether that changed anything.
    pub fn set_online(&mut self, device: &DeviceId, online: bool) -> bool {
        match self.devices.get_mut(device) {
            Some(info) if info.online != online => {
                info.online = online;
                true
            }
            _ => false,
        }
    }

    /// Forgets a user altogether, devices and pins (a stranger evicted to
    /// make room for another); returns the devices forgotten.
    pub fn forget_user(&mut self, user: &UserId) -> Vec<DeviceId> {
        let devices: Vec<DeviceId> = self.devices_of(user).map(|d| d.device).collect();
        for device in &devices {
            self.devices.remove(device);
        }
        self.pins.retain(|_, holder| holder != user);
        devices
    }

    /// Forgets a device (removed by its user); its name pin stays.
    pub fn forget(&mut self, device: &DeviceId) -> Option<PeerInfo> {
        self.devices.remove(device)
    }

    /// One device.
    pub fn device(&self, device: &DeviceId) -> Option<&PeerInfo> {
        self.devices.get(device)
    }

    /// All devices, in id order.
    pub fn devices(&self) -> impl Iterator<Item = &PeerInfo> {
        self.devices.values()
    }

    /// The devices of one user.
    pub fn devices_of<'a>(&'a self, user: &'a UserId) -> impl Iterator<Item = &'a PeerInfo> + 'a {
        self.devices.values().filter(move |d| d.user == *user)
    }

    /// Whether `user` owns the name it announces (false for an impostor).
    pub fn holds_name(&self, user: &UserId, name: &str) -> bool {
        self.pins
            .get(&name_key(name))
            .is_none_or(|holder| holder == user)
    }

    /// The name to show for a user: the plain name if the user holds it,
    /// `name (fingerprint)` otherwise.
    pub fn display_name(&self, user: &UserId) -> String {
        let Some(name) = self.devices_of(user).map(|d| d.name.clone()).next() else {
            return user.fingerprint();
        };
        if self.holds_name(user, &name) && !name.trim().is_empty() {
            name
        } else {
            format!("{} ({})", name, user.fingerprint())
        }
    }

    /// The users with at least one known device, each once, in id order.
    pub fn users(&self) -> Vec<UserId> {
        let mut users: Vec<UserId> = self.devices.values().map(|d| d.user).collect();
        users.sort();
        users.dedup();
        users
    }

    /// Resolves what a user typed (a name, a word or prefix of one, a
    /// disambiguated `name (fingerprint)`, a fingerprint or a user-id
    /// prefix) to exactly one user, by the rules of [`resolve()`].
    ///
    /// A pinned name resolves to its holder only, never to a newcomer using
    /// the same name.
    pub fn resolve(&self, query: &str) -> Result<UserId, ResolveError> {
        resolve(query, self.pin_holder(query), &self.candidates())
    }

    /// Resolves an `@name` in a message by the stricter rules of
    /// [`resolve_mention()`]: no prefixes, no fingerprints.
    pub fn resolve_mention(&self, token: &str) -> Option<UserId> {
        resolve_mention(token, self.pin_holder(token), &self.candidates())
    }

    fn pin_holder(&self, query: &str) -> Option<UserId> {
        self.pins.get(&name_key(query)).copied()
    }

    /// Every known user as a [`Candidate`] for resolving a typed name.
    fn candidates(&self) -> Vec<Candidate> {
        self.users()
            .into_iter()
            .filter_map(|user| {
                let name = self.devices_of(&user).next()?.name.clone();
                Some(Candidate {
                    user,
                    holds_name: self.holds_name(&user, &name),
                    name,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8, user: u8, name: &str) -> PeerInfo {
        PeerInfo {
            device: DeviceId::from_public_key(&[n; 32]),
            user: UserId::from_public_key(&[user; 32]),
            name: name.to_string(),
            addrs: Vec::new(),
            online: true,
            via: Via::Static,
        }
    }

    #[test]
    fn first_user_keeps_the_name_and_a_newcomer_is_disambiguated() {
        let mut book = PeerBook::new();
        let bob = peer(1, 1, "Bob");
        let fake = peer(2, 2, "bob");
        assert_eq!(book.learn(bob.clone()), LearnOutcome::New { pinned: true });
        assert!(matches!(
            book.learn(fake.clone()),
            LearnOutcome::NameConflict { .. }
        ));
        assert_eq!(book.resolve("BOB"), Ok(bob.user));
        assert_eq!(book.display_name(&bob.user), "Bob");
        let shown = book.display_name(&fake.user);
        assert_eq!(shown, format!("bob ({})", fake.user.fingerprint()));
        assert_eq!(book.resolve(&shown), Ok(fake.user));
    }

    #[test]
    fn an_id_prefix_resolves_whatever_its_skeleton() {
        // An id whose prefix has letters that skeletons rewrite (`m` ->
        // `rn`, `w` -> `vv`).
        let someone = (1..=255u8)
            .map(|n| peer(n, n, "Someone"))
            .find(|p| p.user.to_string()[..8].contains(['m', 'w']))
            .expect("some id has an m or a w in its first 8 characters");
        let mut book = PeerBook::new();
        book.learn(someone.clone());
        let id = someone.user.to_string();
        assert_eq!(book.resolve(&id[..8]), Ok(someone.user), "{id}");
        assert_eq!(
            book.resolve(&id[..8].to_uppercase()),
            Ok(someone.user),
            "{id}"
        );
    }

    #[test]
    fn a_user_pins_at_most_a_few_names_and_forgetting_them_frees_the_names() {
        let mut book = PeerBook::new();
        let renamer = peer(1, 1, "");
        let names: Vec<String> = (0..MAX_PINS_PER_USER + 2)
            .map(|i| format!("name {i}"))
            .collect();
        for name in &names {
            let mut renamed = renamer.clone();
            renamed.name = name.clone();
            book.learn(renamed);
        }
        for (i, name) in names.iter().enumerate() {
            let n = u8::try_from(i).unwrap() + 10;
            let outcome = book.learn(peer(n, n, name));
            if i < MAX_PINS_PER_USER {
                assert!(
                    matches!(outcome, LearnOutcome::NameConflict { .. }),
                    "{name}: {outcome:?}"
                );
            } else {
                // Past the bound the name stayed free for whoever came next.
                assert_eq!(outcome, LearnOutcome::New { pinned: true }, "{name}");
            }
        }
        assert_eq!(book.forget_user(&renamer.user), vec![renamer.device]);
        assert!(!book.users().contains(&renamer.user));
        assert_eq!(
            book.learn(peer(30, 30, &names[0])),
            LearnOutcome::New { pinned: true }
        );
    }

    #[test]
    fn look_alike_names_are_impostors_too() {
        let mut book = PeerBook::new();
        let bob = peer(1, 1, "Bob");
        assert_eq!(book.learn(bob.clone()), LearnOutcome::New { pinned: true });
        for (n, alike) in [
            "B\u{043E}b",                  // Cyrillic small o
            "Bob\u{200B}",                 // zero-width space
            "\u{202E}Bob\u{202C}",         // bidi override
            "\u{2066}B\u{2060}ob\u{2069}", // isolate + word joiner
        ]
        .into_iter()
        .enumerate()
        {
            let n = u8::try_from(n).unwrap() + 2;
            let fake = peer(n, n, alike);
            assert!(
                matches!(book.learn(fake.clone()), LearnOutcome::NameConflict { .. }),
                "{alike:?}"
            );
            let shown = book.display_name(&fake.user);
            assert!(
                shown.ends_with(&format!(" ({})", fake.user.fingerprint())),
                "{alike:?} shown as {shown:?}"
            );
            // Nothing that reorders or hides text reaches the screen.
            assert!(!shown.contains(['\u{202E}', '\u{2066}', '\u{2060}', '\u{200B}']));
            assert_eq!(book.resolve("Bob"), Ok(bob.user), "{alike:?}");
            assert_eq!(book.resolve(&shown), Ok(fake.user), "{alike:?}");
        }
        assert_eq!(book.display_name(&bob.user), "Bob");
    }

    #[test]
    fn restored_pin_beats_a_newcomer_seen_first_in_this_run() {
        let mut book = PeerBook::new();
        let bob = peer(1, 1, "bob");
        book.restore_pin("bob", bob.user);
        let fake = peer(2, 2, "bob");
        assert!(matches!(
            book.learn(fake.clone()),
            LearnOutcome::NameConflict { .. }
        ));
        // The holder is not present: "bob" must not silently pick the newcomer.
        assert!(matches!(
            book.resolve("bob"),
            Err(ResolveError::Ambiguous { .. })
        ));
        book.learn(bob.clone());
        assert_eq!(book.resolve("bob"), Ok(bob.user));
    }

    #[test]
    fn id_prefix_unknown_and_ambiguous() {
        let mut book = PeerBook::new();
        let a = peer(1, 1, "alice");
        let c = peer(3, 3, "carol");
        book.learn(a.clone());
        book.learn(c.clone());
        assert_eq!(book.resolve(&a.user.to_string()[..8]), Ok(a.user));
        match book.resolve("dave") {
            Err(ResolveError::Unknown { candidates, .. }) => assert_eq!(candidates.len(), 2),
            other => panic!("expected unknown, got {other:?}"),
        }
        // Two users whose ids share a (short) prefix cannot be told apart by it.
        let users = [a.user.to_string(), c.user.to_string()];
        let common = users[0]
            .chars()
            .zip(users[1].chars())
            .take_while(|(x, y)| x == y)
            .count();
        if common >= 4 {
            assert!(matches!(
                book.resolve(&users[0][..common]),
                Err(ResolveError::Ambiguous { .. })
            ));
        }
    }

    #[test]
    fn online_flag_changes_are_reported_once() {
        let mut book = PeerBook::new();
        let a = peer(1, 1, "alice");
        book.learn(a.clone());
        assert!(!book.set_online(&a.device, true));
        assert!(book.set_online(&a.device, false));
        assert!(!book.set_online(&a.device, false));
        assert!(!book.device(&a.device).is_some_and(|d| d.online));
    }
}
