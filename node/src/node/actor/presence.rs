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

use tincan_core::presence::shown::{self, Seen, Shown};
use tincan_core::presence::spread::Audience;
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

    /// How `device` is shown, given whether a path to it is live (core's
    /// rule, with what this node knows of it).
    pub(super) fn presence_of(&self, device: &DeviceId, reachable: bool) -> Shown {
        shown::shown(Seen {
            reachable,
            linked: self.conns.contains_key(device),
            lan_record: self.mesh.shown(device),
            update: self.chat.peers.get(device),
        })
    }

    /// Applies presence events (persist, re-send to all) and sends the
    /// current presence to every reachable device that lacks it (core's
    /// [`PresenceSpread`](tincan_core::presence::spread::PresenceSpread)
    /// decides who). Called after every turn of the loop.
    pub(super) fn drive_presence(&mut self) {
        while let Some(event) = self.chat.presence.poll_event() {
            if let PresenceEvent::Changed = event {
                self.persist_presence();
                self.chat.spread.handle_changed();
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
        // Taken out for the call: the ranking reads the rest of the actor.
        let mut spread = std::mem::take(&mut self.chat.spread);
        let audience = |device: &DeviceId| match self.certs.get(device) {
            None => Audience::Unsealable,
            Some(cert) if self.is_blocked(&cert.user_id()) => Audience::Blocked,
            Some(_) if self.chat.peers.get(device).is_some() => Audience::Known,
            Some(_) => Audience::Unknown,
        };
        let plan = spread.plan(&reachable, audience);
        self.chat.spread = spread;
        if plan.is_empty() {
            return;
        }
        let update = self.chat.presence.update();
        tracing::debug!(presence = %update.shown, known = plan.known.len(), asked = plan.unknown.len(), blocked = plan.blocked.len(), "sending presence");
        let asking = PresenceUpdate {
            ask: true,
            ..update.clone()
        };
        let offline = self.chat.presence.offline_update();
        self.send_presence(update, &plan.known);
        self.send_presence(asking, &plan.unknown);
        self.send_presence(offline, &plan.blocked);
    }

    /// A blocked user's device asked for our presence (it restarted): it
    /// gets the offline one again, though its envelope is refused.
    pub(super) fn on_blocked_content(&mut self, opened: &Opened) {
        if let Content::Presence(PresenceUpdate { ask: true, .. }) = opened.content {
            self.chat.spread.handle_asked(&opened.sender.device_id());
        }
    }

    fn send_presence(&mut self, update: PresenceUpdate, devices: &[DeviceId]) {
        let certs: Vec<DeviceCert> = devices
            .iter()
            .filter_map(|d| self.certs.get(d).cloned())
            .collect();
        if !certs.is_empty() {
            self.send_ephemeral(&Content::Presence(update), &certs);
        }
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
            self.chat.spread.handle_asked(&device);
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
        tracing::info!(%device, presence = %after.presence, "peer presence");
        if let Some(info) = self.book.device(&device) {
            let peer = self.peer_view(info);
            if before.online != after.online {
                self.emit(if after.online {
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
