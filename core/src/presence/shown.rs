//! How a peer device is shown to this user: online or not, its presence
//! and its note, from what this node knows of it.
//!
//! Without a live link, a LAN peer's own signed LAN record says what it
//! shows (the mesh spreads it); the note travels sealed, over links only,
//! so it is shown only while it belongs to that same presence. With a
//! link (or for a device elsewhere), its last sealed update says. A
//! device that chose to appear offline is shown offline even while its
//! messages arrive, and one that is not reachable is offline whatever it
//! said last.

use super::{PresenceUpdate, ShownPresence};

/// A peer device as this user sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shown {
    /// Whether it counts as online.
    pub online: bool,
    /// What it shows (`Offline` when not online).
    pub presence: ShownPresence,
    /// Its note, if it has one and is shown.
    pub note: Option<String>,
}

/// What this node knows about one peer device.
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    /// A path to it is live (a link, or the directory lists it online
    /// behind a live uplink).
    pub reachable: bool,
    /// It has a direct link to this node.
    pub linked: bool,
    /// What its signed LAN record says, if the mesh has one.
    pub lan_record: Option<ShownPresence>,
    /// Its last sealed presence update, if any.
    pub update: Option<&'a PresenceUpdate>,
}

/// How the device seen as `seen` is shown.
pub fn shown(seen: Seen<'_>) -> Shown {
    let offline = Shown {
        online: false,
        presence: ShownPresence::Offline,
        note: None,
    };
    let note_of = |update: &PresenceUpdate| (!update.note.is_empty()).then(|| update.note.clone());
    if let (false, Some(record)) = (seen.linked, seen.lan_record) {
        let online = seen.reachable && record != ShownPresence::Offline;
        let note = seen.update.filter(|u| u.shown == record).and_then(note_of);
        return Shown {
            online,
            presence: if online {
                record
            } else {
                ShownPresence::Offline
            },
            note,
        };
    }
    match seen.update {
        _ if !seen.reachable => offline,
        Some(u) if u.shown == ShownPresence::Offline => offline,
        Some(u) => Shown {
            online: true,
            presence: u.shown,
            note: note_of(u),
        },
        None => Shown {
            online: true,
            presence: ShownPresence::Online,
            note: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(shown: ShownPresence, note: &str) -> PresenceUpdate {
        PresenceUpdate {
            shown,
            note: note.into(),
            version: 1,
            ask: false,
        }
    }

    fn seen(
        reachable: bool,
        linked: bool,
        lan_record: Option<ShownPresence>,
        update: Option<&PresenceUpdate>,
    ) -> Shown {
        shown(Seen {
            reachable,
            linked,
            lan_record,
            update,
        })
    }

    #[test]
    fn an_unlinked_lan_peer_shows_its_lan_record_with_the_note_of_that_presence_only() {
        let busy = update(ShownPresence::Busy, "in a meeting");
        let s = seen(true, false, Some(ShownPresence::Busy), Some(&busy));
        assert_eq!((s.online, s.presence), (true, ShownPresence::Busy));
        assert_eq!(s.note.as_deref(), Some("in a meeting"));
        // The record moved on to away: the busy note no longer belongs.
        let s = seen(true, false, Some(ShownPresence::Away), Some(&busy));
        assert_eq!((s.presence, s.note), (ShownPresence::Away, None));
        // Unreachable: offline, though the record says away.
        let s = seen(false, false, Some(ShownPresence::Away), None);
        assert_eq!((s.online, s.presence), (false, ShownPresence::Offline));
    }

    #[test]
    fn a_linked_peer_shows_its_last_update_and_appear_offline_hides_it() {
        let away = update(ShownPresence::Away, "");
        // The link wins over a LAN record.
        let s = seen(true, true, Some(ShownPresence::Online), Some(&away));
        assert_eq!(
            (s.online, s.presence, s.note),
            (true, ShownPresence::Away, None)
        );
        let hidden = update(ShownPresence::Offline, "");
        assert!(!seen(true, true, None, Some(&hidden)).online);
        // Nothing said yet: online.
        assert_eq!(seen(true, true, None, None).presence, ShownPresence::Online);
        assert!(!seen(false, true, None, Some(&away)).online);
    }
}
