//! Presence and typing in the actor: sending this user's presence to every
//! reachable device (LAN peers directly, devices of other sites as one
//! routed copy through the uplink) when it changes and to every device
//! that becomes reachable (so late joiners learn it), taking the others'
//! presence, and typing notifications both ways.
//!
//! Presence and typing are ephemeral: sealed like any content (the note
//! is typed by a person), sent once without the outbox, never stored.
//! Others see an appear-offline user, and blocked users see this user,
//! with `online: false`; messages still arrive and are acknowledged.

use std::collections::BTreeSet;

use tincan_core::presence::PeerUpdate;
use tincan_core::wire::RefuseReason;
use tincan_core::{
    Content, DeviceCert, DeviceId, Opened, PresenceEvent, PresenceState, PresenceUpdate,
    ShownPresence,
};

use super::chat::{PRESENCE_KEY, PRESENCE_NOTE_KEY, PRESENCE_VERSION_KEY};
use super::inbound::Rejection;
use super::Actor;
use crate::event::{NodeEvent, PresenceView, TypingView};
use crate::node::NodeError;

/// A typing notification older than this (by the sender's clock) is
/// dropped: it was held somewhere and means nothing any more.
const TYPING_STALE_MS: u64 = 30_000;

/// How a peer device is shown: `(online, presence, note)`.
pub(super) type Shown = (bool, String, Option<String>);

impl Actor {
    pub(super) fn presence_view(&self) -> PresenceView {
        let p = &self.chat.presence;
        PresenceView {
            presence: p.effective().to_string(),
            note: (!p.note().is_empty()).then(|| p.note().to_string()),
            auto_away: p.is_auto_away(),
            chosen: p.chosen().to_string(),
            shown: p.update().shown.to_string(),
            idle_secs: p.idle_ms(self.now) / 1000,
            away_after_secs: p.away_after_ms().map(|ms| ms / 1000),
        }
    }

    pub(super) fn set_presence(
        &mut self,
        state: PresenceState,
        note: Option<String>,
    ) -> Result<PresenceView, NodeError> {
        let note = note.unwrap_or_else(|| self.chat.presence.note().to_string());
        self.chat.presence.set(self.now, state, &note)?;
        tracing::info!(presence = %state, "presence set");
        Ok(self.presence_view())
    }

    /// How `device` is shown, given whether a path to it is live.
    pub(super) fn presence_of(&self, device: &DeviceId, reachable: bool) -> Shown {
        // Without a link, a LAN peer's presence is what its own signed LAN
        // record says (the note travels sealed, over links only).
        if !self.conns.contains_key(device) {
            if let Some(shown) = self.mesh.shown(device) {
                let online = reachable && shown != ShownPresence::Offline;
                let note = self
                    .chat
                    .peers
                    .get(device)
                    .filter(|p| p.shown == shown && !p.note.is_empty())
                    .map(|p| p.note.clone());
                return (
                    online,
                    if online {
                        shown
                    } else {
                        ShownPresence::Offline
                    }
                    .to_string(),
                    note,
                );
            }
        }
        match self.chat.peers.get(device) {
            _ if !reachable => (false, ShownPresence::Offline.to_string(), None),
            Some(p) if p.shown == ShownPresence::Offline => {
                (false, ShownPresence::Offline.to_string(), None)
            }
            Some(p) => (
                true,
                p.shown.to_string(),
                (!p.note.is_empty()).then(|| p.note.clone()),
            ),
            None => (true, ShownPresence::Online.to_string(), None),
        }
    }

    /// Applies presence events (persist, re-send to all) and sends the
    /// current presence to every reachable device that lacks it. Called
    /// after every turn of the loop.
    pub(super) fn drive_presence(&mut self) {
        while let Some(event) = self.chat.presence.poll_event() {
            if let PresenceEvent::Changed = event {
                self.persist_presence();
                self.chat.presence_sent.clear();
                self.sign_own_record(0, false);
            }
        }
        let uplink = self.uplink_conn().is_some();
        let reachable: BTreeSet<DeviceId> = self
            .conns
            .keys()
            .copied()
            .chain(
                self.remote
                    .iter()
                    .filter(|(_, r)| uplink && r.online)
                    .map(|(d, _)| *d),
            )
            .collect();
        self.chat.presence_sent.retain(|d| reachable.contains(d));
        // Those whose presence we do not know are asked for it.
        let (mut known, mut unknown, mut hidden) = (Vec::new(), Vec::new(), Vec::new());
        for device in reachable.difference(&self.chat.presence_sent) {
            let Some(cert) = self.certs.get(device) else {
                continue;
            };
            if self.is_blocked(&cert.user_id()) {
                hidden.push(cert.clone());
            } else if self.chat.peers.get(device).is_some() {
                known.push(cert.clone());
            } else {
                unknown.push(cert.clone());
            }
        }
        if known.is_empty() && unknown.is_empty() && hidden.is_empty() {
            return;
        }
        let update = self.chat.presence.update();
        tracing::debug!(presence = %update.shown, known = known.len(), asked = unknown.len(), blocked = hidden.len(), "sending presence");
        let asking = PresenceUpdate {
            ask: true,
            ..update.clone()
        };
        self.send_presence(update, &known);
        self.send_presence(asking, &unknown);
        self.send_presence(self.chat.presence.offline_update(), &hidden);
    }

    /// A blocked user's device asked for our presence (it restarted): it
    /// gets the offline one again, though its envelope is refused.
    pub(super) fn on_blocked_content(&mut self, opened: &Opened) {
        if let Content::Presence(PresenceUpdate { ask: true, .. }) = opened.content {
            self.chat.presence_sent.remove(&opened.sender.device_id());
        }
    }

    fn send_presence(&mut self, update: PresenceUpdate, certs: &[DeviceCert]) {
        if certs.is_empty() {
            return;
        }
        self.send_ephemeral(&Content::Presence(update), certs);
        self.chat
            .presence_sent
            .extend(certs.iter().map(DeviceCert::device_id));
    }

    fn persist_presence(&self) {
        let p = &self.chat.presence;
        let facts = [
            (PRESENCE_KEY, p.chosen().to_string()),
            (PRESENCE_NOTE_KEY, p.note().to_string()),
            (PRESENCE_VERSION_KEY, p.version().to_string()),
        ];
        for (key, value) in facts {
            if let Err(e) = self.store.set_node_state(key, &value) {
                tracing::warn!(error = %e, "cannot persist presence");
            }
        }
    }

    /// A device's presence arrived (the envelope signature proved it is
    /// theirs).
    pub(super) fn on_presence(
        &mut self,
        opened: &Opened,
        update: PresenceUpdate,
    ) -> Result<(), Rejection> {
        let device = opened.sender.device_id();
        if let Err(e) = update.check() {
            tracing::warn!(%device, error = %e, "refused an invalid presence");
            return Err(Rejection::Refuse(RefuseReason::Other(format!(
                "invalid presence: {e}"
            ))));
        }
        if update.ask {
            // It does not know ours: send it again (next turn of the loop).
            self.chat.presence_sent.remove(&device);
        }
        let reachable = self.book.device(&device).is_some_and(|d| d.online);
        let before = self.presence_of(&device, reachable);
        if let PeerUpdate::Stale = self.chat.peers.handle_update(device, update) {
            return Ok(());
        }
        let after = self.presence_of(&device, reachable);
        if before == after {
            return Ok(());
        }
        tracing::info!(%device, presence = %after.1, "peer presence");
        if let Some(info) = self.book.device(&device) {
            let peer = self.peer_view(info);
            if before.0 != after.0 {
                self.emit(if after.0 {
                    NodeEvent::PeerOnline { peer: peer.clone() }
                } else {
                    NodeEvent::PeerOffline { peer: peer.clone() }
                });
            }
            self.emit(NodeEvent::Presence { peer });
        }
        Ok(())
    }

    pub(super) fn send_typing(&mut self, peer: &str) -> Result<TypingView, NodeError> {
        let user = self.book.resolve(peer)?;
        if self.is_blocked(&user) {
            return Err(NodeError::Blocked(self.book.display_name(&user)));
        }
        let certs: Vec<DeviceCert> = self.device_certs_of(&user);
        if certs.is_empty() {
            return Err(NodeError::NoDevices(self.book.display_name(&user)));
        }
        // Typing would give an invisible user away.
        let visible = self.chat.presence.update().shown != ShownPresence::Offline;
        let sent = visible
            && self.chat.typing_out.allow(self.now, &user)
            && self.send_ephemeral(&Content::Typing, &certs) > 0;
        Ok(TypingView {
            peer: user.to_string(),
            sent,
        })
    }

    pub(super) fn on_typing(&mut self, opened: &Opened, now: u64) -> Result<(), Rejection> {
        let device = opened.sender.device_id();
        if now.saturating_sub(opened.created_at_ms) > TYPING_STALE_MS
            || !self.chat.typing_in.allow(now, &device)
        {
            return Ok(());
        }
        let user = opened.sender.user_id();
        self.emit(NodeEvent::Typing {
            from: user.to_string(),
            from_name: self.book.display_name(&user),
            device_id: device.to_string(),
        });
        Ok(())
    }
}
