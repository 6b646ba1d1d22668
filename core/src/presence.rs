//! Presence: what a user says about being reachable, what the others are
//! shown, automatic away after idle time, and the latest-wins view of the
//! other devices' presence. Also the per-key [`RateLimiter`] that keeps
//! typing notifications to one per interval.
//!
//! # Model
//! - A user picks a [`PresenceState`] (`online`, `away`, `busy`,
//!   `on-the-phone`, `out-to-lunch`, `appear-offline`) and a short note.
//! - [`Presence`] (this device's own) turns a chosen `online` into `away`
//!   once no activity was reported for the configured idle time, and back
//!   on the next activity. Time is always an argument (`now`, Unix ms).
//! - Others are sent a [`PresenceUpdate`] with a [`ShownPresence`]:
//!   `appear-offline` is shown as plain `offline` without a note, so an
//!   invisible user cannot be told from one whose device is off. A blocked
//!   user is sent exactly the same `offline` update.
//! - A device that does not know a receiver's presence sets `ask` in its
//!   update, and the receiver answers with its own: restarted devices and
//!   late joiners learn everyone's presence without any polling.
//! - Every change bumps a version (`max(previous + 1, now)`, so it also
//!   grows across restarts when persisted); [`PeerPresences`] keeps only
//!   the highest version per device, so late or replayed copies (presence
//!   travels once, unacknowledged, on several paths) never undo a newer one.
//!
//! Updates travel inside sealed, signed envelopes: the envelope signature
//! binds an update to the sending device, so nobody can forge another
//! device's presence, and the note stays end-to-end encrypted.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DeviceId;

/// Longest presence note, in characters.
pub const MAX_NOTE_CHARS: usize = 256;

/// What a user sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PresenceState {
    /// Available.
    Online,
    /// Away from the desk (also set automatically after idle time).
    Away,
    /// Busy / do not disturb.
    Busy,
    /// On the phone.
    OnThePhone,
    /// Out to lunch.
    OutToLunch,
    /// Connected, but shown to everyone as offline.
    AppearOffline,
}

impl PresenceState {
    /// Every state, in the order the CLI lists them.
    pub const ALL: [PresenceState; 6] = [
        PresenceState::Online,
        PresenceState::Away,
        PresenceState::Busy,
        PresenceState::OnThePhone,
        PresenceState::OutToLunch,
        PresenceState::AppearOffline,
    ];

    /// The name used on the CLI and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceState::Online => "online",
            PresenceState::Away => "away",
            PresenceState::Busy => "busy",
            PresenceState::OnThePhone => "on-the-phone",
            PresenceState::OutToLunch => "out-to-lunch",
            PresenceState::AppearOffline => "appear-offline",
        }
    }

    /// What the others see of it.
    pub fn shown(self) -> ShownPresence {
        match self {
            PresenceState::Online => ShownPresence::Online,
            PresenceState::Away => ShownPresence::Away,
            PresenceState::Busy => ShownPresence::Busy,
            PresenceState::OnThePhone => ShownPresence::OnThePhone,
            PresenceState::OutToLunch => ShownPresence::OutToLunch,
            PresenceState::AppearOffline => ShownPresence::Offline,
        }
    }
}

impl fmt::Display for PresenceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PresenceState {
    type Err = PresenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        PresenceState::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(PresenceError::UnknownState(s))
    }
}

/// What the others are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShownPresence {
    /// Available.
    Online,
    /// Away.
    Away,
    /// Busy / do not disturb.
    Busy,
    /// On the phone.
    OnThePhone,
    /// Out to lunch.
    OutToLunch,
    /// Not online (appear-offline, or blocked): shown as not online.
    Offline,
}

impl ShownPresence {
    /// The name used in JSON (`offline` for the last).
    pub fn as_str(self) -> &'static str {
        match self {
            ShownPresence::Online => "online",
            ShownPresence::Away => "away",
            ShownPresence::Busy => "busy",
            ShownPresence::OnThePhone => "on-the-phone",
            ShownPresence::OutToLunch => "out-to-lunch",
            ShownPresence::Offline => "offline",
        }
    }
}

impl fmt::Display for ShownPresence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One device's presence as it is sent to others (sealed content).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceUpdate {
    /// What to show.
    pub shown: ShownPresence,
    /// The note (at most [`MAX_NOTE_CHARS`], no control characters; empty
    /// when `shown` is `Offline`).
    pub note: String,
    /// Grows with every change; the highest wins.
    pub version: u64,
    /// The sender does not know the receiver's presence yet (it started,
    /// or just met the receiver): please send yours. Answered once, with
    /// `ask` false, so it never loops; this is how a restarted device or
    /// a late joiner learns everyone's presence.
    pub ask: bool,
}

impl PresenceUpdate {
    /// Checks what a receiver must refuse: a note too long, with control
    /// characters or untrimmed, or a note on an offline update.
    pub fn check(&self) -> Result<(), PresenceError> {
        if validate_note(&self.note)? != self.note {
            return Err(PresenceError::Untrimmed);
        }
        if self.shown == ShownPresence::Offline && !self.note.is_empty() {
            return Err(PresenceError::NoteWhileOffline);
        }
        Ok(())
    }
}

/// Why a presence value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// Not one of the six states.
    #[error("unknown presence {0:?} (expected online, away, busy, on-the-phone, out-to-lunch or appear-offline)")]
    UnknownState(String),
    /// The note is longer than [`MAX_NOTE_CHARS`].
    #[error("the note has {chars} characters, more than {max}")]
    NoteTooLong {
        /// Its length in characters.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// The note contains control characters (newlines included).
    #[error("the note contains control characters")]
    NoteControl,
    /// The note contains a text-direction control or an invisible
    /// character (see [`crate::name`]), which could reorder or hide what
    /// is shown next to it.
    #[error("the note contains a text-direction control or invisible character (U+{0:04X})")]
    NoteHidden(u32),
    /// A received note has leading or trailing white space.
    #[error("the note is not trimmed")]
    Untrimmed,
    /// An offline update carries a note.
    #[error("an offline presence carries a note")]
    NoteWhileOffline,
}

/// Trims `note` and checks it like a display name: at most
/// [`MAX_NOTE_CHARS`] characters, no control, bidi or invisible
/// characters. Empty is fine
/// (no note).
pub fn validate_note(note: &str) -> Result<String, PresenceError> {
    let note = note.trim();
    let chars = note.chars().count();
    if chars > MAX_NOTE_CHARS {
        return Err(PresenceError::NoteTooLong {
            chars,
            max: MAX_NOTE_CHARS,
        });
    }
    if note.chars().any(char::is_control) {
        return Err(PresenceError::NoteControl);
    }
    if let Some(c) = note
        .chars()
        .find(|c| crate::name::is_bidi_control(*c) || crate::name::is_invisible(*c))
    {
        return Err(PresenceError::NoteHidden(c.into()));
    }
    Ok(note.to_string())
}

/// The idle time before auto-away, in ms, from the configured seconds
/// (`away_after_secs`): `0` turns auto-away off (`None`).
pub fn away_after_from_secs(secs: u64) -> Option<u64> {
    (secs > 0).then(|| secs.saturating_mul(1000))
}

/// What [`Presence::poll_event`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresenceEvent {
    /// What the others are shown (or the version) changed: send the new
    /// [`Presence::update`] to everyone, and persist the state.
    Changed,
}

/// This device's own presence, with auto-away.
#[derive(Clone, Debug)]
pub struct Presence {
    chosen: PresenceState,
    note: String,
    version: u64,
    last_activity: u64,
    away_after_ms: Option<u64>,
    auto_away: bool,
    events: VecDeque<PresenceEvent>,
}

impl Presence {
    /// Starts with what was persisted (`version` = the last one used, 0 if
    /// none); the first version is bumped past it, so peers that remember
    /// the old one take the new. Starting counts as activity.
    /// `away_after_ms = None` never sets away automatically.
    pub fn new(
        now: u64,
        chosen: PresenceState,
        note: String,
        version: u64,
        away_after_ms: Option<u64>,
    ) -> Self {
        Presence {
            chosen,
            note,
            version: next_version(version, now),
            last_activity: now,
            away_after_ms,
            auto_away: false,
            events: VecDeque::new(),
        }
    }

    /// The user sets a state and note (the note is validated and trimmed).
    /// Counts as activity; clears auto-away.
    pub fn set(&mut self, now: u64, state: PresenceState, note: &str) -> Result<(), PresenceError> {
        let note = validate_note(note)?;
        self.chosen = state;
        self.note = note;
        self.auto_away = false;
        self.last_activity = now;
        self.bump(now);
        Ok(())
    }

    /// The user did something (sent, read, typed): clears auto-away.
    pub fn handle_activity(&mut self, now: u64) {
        self.last_activity = self.last_activity.max(now);
        if self.auto_away {
            self.auto_away = false;
            self.bump(now);
        }
    }

    /// Applies auto-away when the idle time has passed.
    pub fn handle_timeout(&mut self, now: u64) {
        if let Some(at) = self.poll_timeout() {
            if now >= at {
                self.auto_away = true;
                self.bump(now);
            }
        }
    }

    /// When auto-away is due, if it can happen (chosen `online`, not away
    /// yet, an idle time configured).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let after = self.away_after_ms?;
        (self.chosen == PresenceState::Online && !self.auto_away)
            .then(|| self.last_activity.saturating_add(after))
    }

    /// The next thing to act on.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PresenceEvent> {
        self.events.pop_front()
    }

    /// Forces a new version (and a [`PresenceEvent::Changed`]): for when
    /// who is shown what changed (a user blocked or unblocked), so every
    /// receiver takes the next update.
    pub fn bump(&mut self, now: u64) {
        self.version = next_version(self.version, now);
        if !self.events.contains(&PresenceEvent::Changed) {
            self.events.push_back(PresenceEvent::Changed);
        }
    }

    /// The state in effect: `away` while auto-away holds, else the chosen.
    pub fn effective(&self) -> PresenceState {
        if self.auto_away {
            PresenceState::Away
        } else {
            self.chosen
        }
    }

    /// What the user chose (persisted; auto-away is not).
    pub fn chosen(&self) -> PresenceState {
        self.chosen
    }

    /// The note.
    pub fn note(&self) -> &str {
        &self.note
    }

    /// The current version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether away was set automatically.
    pub fn is_auto_away(&self) -> bool {
        self.auto_away
    }

    /// How long no activity was reported, ms.
    pub fn idle_ms(&self, now: u64) -> u64 {
        now.saturating_sub(self.last_activity)
    }

    /// The configured idle time before auto-away, ms.
    pub fn away_after_ms(&self) -> Option<u64> {
        self.away_after_ms
    }

    /// The update everyone (but blocked users) is sent.
    pub fn update(&self) -> PresenceUpdate {
        let shown = self.effective().shown();
        PresenceUpdate {
            shown,
            note: if shown == ShownPresence::Offline {
                String::new()
            } else {
                self.note.clone()
            },
            version: self.version,
            ask: false,
        }
    }

    /// The update blocked users are sent: offline, no note, the same version.
    pub fn offline_update(&self) -> PresenceUpdate {
        PresenceUpdate {
            shown: ShownPresence::Offline,
            note: String::new(),
            version: self.version,
            ask: false,
        }
    }
}

fn next_version(previous: u64, now: u64) -> u64 {
    previous.saturating_add(1).max(now)
}

/// Whether [`PeerPresences::handle_update`] took an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerUpdate {
    /// Newer than what was known; the previous value, if any.
    Applied(Option<PresenceUpdate>),
    /// Not newer than what is known: ignored.
    Stale,
}

/// The latest presence of each other device.
#[derive(Clone, Debug, Default)]
pub struct PeerPresences {
    known: BTreeMap<DeviceId, PresenceUpdate>,
}

impl PeerPresences {
    /// Nothing known.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `update` from `device` (already checked and authenticated) if
    /// its version is higher than the known one.
    pub fn handle_update(&mut self, device: DeviceId, update: PresenceUpdate) -> PeerUpdate {
        match self.known.get(&device) {
            Some(known) if known.version >= update.version => PeerUpdate::Stale,
            _ => PeerUpdate::Applied(self.known.insert(device, update)),
        }
    }

    /// The latest update of `device`.
    pub fn get(&self, device: &DeviceId) -> Option<&PresenceUpdate> {
        self.known.get(device)
    }

    /// Whether `device` said it is to be shown offline.
    pub fn hides(&self, device: &DeviceId) -> bool {
        self.get(device)
            .is_some_and(|p| p.shown == ShownPresence::Offline)
    }

    /// Forgets `device` (a blocked user's).
    pub fn forget(&mut self, device: &DeviceId) {
        self.known.remove(device);
    }
}

/// At most one event per key per interval (typing notifications).
#[derive(Clone, Debug)]
pub struct RateLimiter<K: Ord> {
    interval_ms: u64,
    last: BTreeMap<K, u64>,
}

/// Keys kept before old ones are pruned.
const LIMITER_PRUNE_AT: usize = 1024;

impl<K: Ord + Clone> RateLimiter<K> {
    /// A limiter allowing one event per key every `interval_ms`.
    pub fn new(interval_ms: u64) -> Self {
        Self {
            interval_ms,
            last: BTreeMap::new(),
        }
    }

    /// Whether an event for `key` may happen at `now`; if so, it is counted.
    pub fn allow(&mut self, now: u64, key: &K) -> bool {
        if let Some(last) = self.last.get(key) {
            if now < last.saturating_add(self.interval_ms) {
                return false;
            }
        }
        if self.last.len() >= LIMITER_PRUNE_AT {
            let interval = self.interval_ms;
            self.last.retain(|_, at| now < at.saturating_add(interval));
        }
        self.last.insert(key.clone(), now);
        true
    }
}

pub mod shown;
pub mod spread;

#[cfg(test)]
mod tests;
