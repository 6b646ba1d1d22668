//! Presence as the window shows it: a colleague's state (from the node's
//! `presence` field of their devices) and the states this user picks in
//! the header. The words and the order live here, the colours in `style`.

use tincan_core::PresenceState;

/// What a colleague shows, best over their devices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Presence {
    /// Available.
    Online,
    /// On the phone.
    OnThePhone,
    /// Busy / do not disturb.
    Busy,
    /// Out to lunch.
    OutToLunch,
    /// Away from the desk (also after idle time).
    Away,
    /// No device reachable (or appearing offline: the same to others).
    Offline,
}

impl Presence {
    /// From a peer view's `presence` (`online`, `away`, `busy`,
    /// `on-the-phone`, `out-to-lunch`, `offline`); an unknown word from a
    /// newer node counts as online, since the device is connected.
    pub fn from_shown(shown: &str, online: bool) -> Self {
        if !online {
            return Self::Offline;
        }
        match shown {
            "away" => Self::Away,
            "busy" => Self::Busy,
            "on-the-phone" => Self::OnThePhone,
            "out-to-lunch" => Self::OutToLunch,
            "offline" => Self::Offline,
            _ => Self::Online,
        }
    }

    /// The word shown next to the dot.
    pub fn label(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Away => "away",
            Self::Busy => "busy",
            Self::OnThePhone => "on the phone",
            Self::OutToLunch => "out to lunch",
            Self::Offline => "offline",
        }
    }

    /// Whether the contact can be reached now (for ordering the list).
    pub fn is_online(self) -> bool {
        self != Self::Offline
    }
}

/// One entry of the header's presence picker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice(pub PresenceState);

impl Choice {
    /// The picker's entries, in the CLI's order.
    pub const ALL: [Choice; 6] = [
        Choice(PresenceState::Online),
        Choice(PresenceState::Away),
        Choice(PresenceState::Busy),
        Choice(PresenceState::OnThePhone),
        Choice(PresenceState::OutToLunch),
        Choice(PresenceState::AppearOffline),
    ];

    /// The entry for a `presence` word of [`tincan_node::PresenceView`].
    pub fn parse(word: &str) -> Option<Self> {
        word.parse().ok().map(Self)
    }

    /// How the own dot looks for this state.
    pub fn dot(self) -> Presence {
        match self.0 {
            PresenceState::Online => Presence::Online,
            PresenceState::Away => Presence::Away,
            PresenceState::Busy => Presence::Busy,
            PresenceState::OnThePhone => Presence::OnThePhone,
            PresenceState::OutToLunch => Presence::OutToLunch,
            PresenceState::AppearOffline => Presence::Offline,
        }
    }

    /// Whether new messages stay quiet (no notification, no attention).
    pub fn is_do_not_disturb(self) -> bool {
        self.0 == PresenceState::Busy
    }
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            PresenceState::Online => "Online",
            PresenceState::Away => "Away",
            PresenceState::Busy => "Busy — do not disturb",
            PresenceState::OnThePhone => "On the phone",
            PresenceState::OutToLunch => "Out to lunch",
            PresenceState::AppearOffline => "Appear offline",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_map_both_ways() {
        assert_eq!(Presence::from_shown("busy", true), Presence::Busy);
        assert_eq!(Presence::from_shown("busy", false), Presence::Offline);
        assert_eq!(Presence::from_shown("dancing", true), Presence::Online);
        for choice in Choice::ALL {
            assert_eq!(Choice::parse(choice.0.as_str()), Some(choice));
        }
        assert!(Choice::parse("busy").expect("busy").is_do_not_disturb());
        assert_eq!(Choice::parse("nope"), None);
    }
}
