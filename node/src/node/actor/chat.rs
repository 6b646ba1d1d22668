//! The messenger features' state in the actor and their requests: the
//! block list, search and export.
//! Presence and typing are in `presence.rs`, read receipts in
//! `receipts.rs`.
//!
//! Blocking: envelopes from a blocked user are refused after the signature
//! check (`RefuseReason::Blocked`, so their outbox stops and they see the
//! message `failed`); nothing of theirs is stored, shown or notified; they
//! are sent the same `offline` presence an appear-offline user sends, so
//! to them this user looks offline; nothing is sent to them (messages,
//! typing, read receipts) until they are unblocked.

use std::collections::BTreeSet;

use tincan_core::presence::spread::PresenceSpread;
use tincan_core::{DeviceId, PeerPresences, Presence, PresenceState, RateLimiter, UserId};

use super::Actor;
use crate::event::{BlockedView, MessageView, SearchHitView};
use crate::export::{ExportConversation, ExportView, EXPORT_FORMAT, EXPORT_VERSION};
use crate::node::NodeError;
use crate::store::{BlockedRecord, HistoryQuery, SearchQuery, Store, StoreError};

/// Store keys of the persisted own presence.
pub(super) const PRESENCE_KEY: &str = "presence";
pub(super) const PRESENCE_NOTE_KEY: &str = "presence_note";
pub(super) const PRESENCE_VERSION_KEY: &str = "presence_version";
/// At most one typing notification per peer user this often (sending).
const TYPING_SEND_INTERVAL_MS: u64 = 3_000;
/// At most one typing event per peer device this often (receiving).
const TYPING_EVENT_INTERVAL_MS: u64 = 1_000;
/// Search hits returned when no limit is given.
const DEFAULT_SEARCH_LIMIT: u32 = 100;

/// The messenger features' part of the actor.
pub(super) struct ChatState {
    /// This user's presence (auto-away included).
    pub(super) presence: Presence,
    /// The latest presence of every other device.
    pub(super) peers: PeerPresences,
    /// Who holds the current version of our presence.
    pub(super) spread: PresenceSpread,
    pub(super) typing_out: RateLimiter<UserId>,
    pub(super) typing_in: RateLimiter<DeviceId>,
    /// Users whose envelopes are refused.
    pub(super) blocked: BTreeSet<UserId>,
    /// Whether `tincan read` sends read receipts.
    pub(super) read_receipts: bool,
    /// When new messages raise notifications.
    pub(super) notify: tincan_core::NotifyRule,
    /// A client window has the focus (no notifications meanwhile).
    pub(super) focused: bool,
    /// Notifications are shown on the desktop too (not only as events).
    pub(super) desktop_notifications: bool,
}

impl ChatState {
    /// Loads the persisted presence and block list.
    pub(super) fn load(
        store: &Store,
        now: u64,
        away_after_secs: u64,
        read_receipts: bool,
    ) -> Result<Self, StoreError> {
        let chosen = store
            .node_state(PRESENCE_KEY)?
            .and_then(|s| s.parse::<PresenceState>().ok())
            .unwrap_or(PresenceState::Online);
        let note = store
            .node_state(PRESENCE_NOTE_KEY)?
            .and_then(|n| tincan_core::presence::validate_note(&n).ok())
            .unwrap_or_default();
        let version = store
            .node_state(PRESENCE_VERSION_KEY)?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let away_after_ms = tincan_core::presence::away_after_from_secs(away_after_secs);
        let blocked = store.blocked_users()?.into_iter().map(|b| b.user).collect();
        Ok(ChatState {
            presence: Presence::new(now, chosen, note, version, away_after_ms),
            peers: PeerPresences::new(),
            spread: PresenceSpread::new(),
            typing_out: RateLimiter::new(TYPING_SEND_INTERVAL_MS),
            typing_in: RateLimiter::new(TYPING_EVENT_INTERVAL_MS),
            blocked,
            read_receipts,
            notify: tincan_core::NotifyRule::default(),
            focused: false,
            desktop_notifications: crate::notifier::desktop_available(),
        })
    }
}

impl Actor {
    /// The user did something that counts as activity (sent, read,
    /// searched, typed, or a GUI said so): clears auto-away.
    pub(super) fn note_activity(&mut self) {
        self.chat.presence.handle_activity(self.now);
    }

    /// Whether messages from (and to) `user` are blocked.
    pub(super) fn is_blocked(&self, user: &UserId) -> bool {
        self.chat.blocked.contains(user)
    }

    /// A user by name, id prefix, or full id (for users not in the book).
    fn resolve_user(&self, text: &str) -> Result<UserId, NodeError> {
        match self.book.resolve(text) {
            Ok(user) => Ok(user),
            Err(e) => text.trim().parse::<UserId>().map_err(|_| e.into()),
        }
    }

    pub(super) fn block(&mut self, text: &str) -> Result<BlockedView, NodeError> {
        let user = self.resolve_user(text)?;
        if user == self.identity.user_id() {
            return Err(NodeError::BlockSelf);
        }
        let record = BlockedRecord {
            user,
            name: self.book.display_name(&user),
            blocked_at_ms: self.now,
        };
        if self.store.block_user(&record)? {
            tracing::info!(%user, "blocked");
        }
        self.chat.blocked.insert(user);
        let devices: Vec<DeviceId> = self.book.devices_of(&user).map(|d| d.device).collect();
        for device in devices {
            self.chat.peers.forget(&device);
        }
        // A new version: their devices take the offline one.
        self.chat.presence.bump(self.now);
        self.blocked_views()?
            .into_iter()
            .find(|b| b.user_id == user.to_string())
            .ok_or_else(|| NodeError::NotBlocked(record.name))
    }

    pub(super) fn unblock(&mut self, text: &str) -> Result<BlockedView, NodeError> {
        let list = self.store.blocked_users()?;
        let by_name = list
            .iter()
            .find(|b| b.name.eq_ignore_ascii_case(text.trim()))
            .map(|b| b.user);
        let user = match by_name {
            Some(user) => user,
            None => self.resolve_user(text)?,
        };
        let Some(record) = list.into_iter().find(|b| b.user == user) else {
            return Err(NodeError::NotBlocked(self.book.display_name(&user)));
        };
        self.store.unblock_user(&user)?;
        self.chat.blocked.remove(&user);
        tracing::info!(%user, "unblocked");
        // A new version: their devices take the real one again.
        self.chat.presence.bump(self.now);
        Ok(blocked_view(&record))
    }

    pub(super) fn blocked_views(&self) -> Result<Vec<BlockedView>, NodeError> {
        Ok(self
            .store
            .blocked_users()?
            .iter()
            .map(blocked_view)
            .collect())
    }

    pub(super) fn search(
        &self,
        words: &str,
        peer: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<SearchHitView>, NodeError> {
        let peer = peer.map(|p| self.book.resolve(p)).transpose()?;
        let query = SearchQuery {
            words: words.to_string(),
            peer,
            room: None,
            limit: Some(limit.unwrap_or(DEFAULT_SEARCH_LIMIT)),
        };
        Ok(self
            .store
            .search(&query)?
            .into_iter()
            .map(|hit| SearchHitView {
                message: MessageView::from(&hit.record),
                highlight: hit.highlight,
            })
            .collect())
    }

    pub(super) fn export(&self, peer: Option<&str>) -> Result<ExportView, NodeError> {
        let peers = match peer {
            Some(peer) => vec![self.book.resolve(peer)?],
            None => self.store.conversation_peers()?,
        };
        let mut conversations = Vec::with_capacity(peers.len());
        for user in peers {
            let messages = self
                .store
                .history(&user, &HistoryQuery::default())?
                .iter()
                .map(MessageView::from)
                .collect();
            conversations.push(ExportConversation {
                peer: user.to_string(),
                name: self.book.display_name(&user),
                messages,
            });
        }
        Ok(ExportView {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            exported_at: self.now,
            user_id: self.identity.user_id().to_string(),
            name: self.identity.name.clone(),
            conversations,
            rooms: if peer.is_some() {
                Vec::new()
            } else {
                self.export_rooms()?
            },
        })
    }
}

fn blocked_view(b: &BlockedRecord) -> BlockedView {
    BlockedView {
        user_id: b.user.to_string(),
        name: b.name.clone(),
        blocked_at: b.blocked_at_ms,
    }
}
