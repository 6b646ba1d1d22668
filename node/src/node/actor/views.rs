//! What the actor shows of its state: a peer, the status, a conversation
//! (the views requests answer with; no decision is made here).

use tincan_core::peer_book::{PeerInfo, Via};
use tincan_core::site::Role;

use super::Actor;
use crate::event::{GatewayView, MessageView, PeerView, RelayView, StatusView};
use crate::node::NodeError;
use crate::store::HistoryQuery;

impl Actor {
    pub(super) fn peer_view(&self, info: &PeerInfo) -> PeerView {
        let shown = self.presence_of(&info.device, info.online);
        let (online, presence, note) = (shown.online, shown.presence.to_string(), shown.note);
        PeerView {
            name: self.book.display_name(&info.user),
            user_id: info.user.to_string(),
            device_id: info.device.to_string(),
            addrs: info.addrs.iter().map(ToString::to_string).collect(),
            online,
            via: match info.via {
                Via::Lan => "lan",
                Via::Static => "static",
                Via::Remembered => "remembered",
                Via::Gateway | Via::Relay if self.election.role() == Role::Member => "gateway",
                Via::Gateway | Via::Relay => "relay",
            }
            .to_string(),
            presence,
            note,
            blocked: self.is_blocked(&info.user),
        }
    }

    /// The node's status (`Request::Status`).
    pub(super) fn status_view(&self) -> StatusView {
        StatusView {
            user_id: self.identity.user_id().to_string(),
            device_id: self.identity.device_id().to_string(),
            name: self.identity.name.clone(),
            listen: crate::addr::canonical(self.listen).to_string(),
            peers_online: self.book.devices().filter(|d| d.online).count(),
            peers_known: self.book.devices().count(),
            outbox: self.outbox.len(),
            mdns: self.mdns,
            org: self.membership.as_ref().map(|m| m.org_id().to_string()),
            role: self.election.role().as_str().to_string(),
            site: self.election.site().map(|s| s.to_string()),
            gateway: self.election.gateway().map(|g| GatewayView {
                device_id: g.device.to_string(),
                epoch: g.epoch,
            }),
            relay: self.relay_addr.as_ref().map(|addr| RelayView {
                addr: self.relay.conn.as_ref().and(self.relay.node.clone()),
                addrs: addr.host_ports.clone(),
                fingerprint: addr.fingerprint.to_string(),
                connected: self.relay.conn.is_some(),
                error: self.relay.error.clone().or_else(|| {
                    self.membership
                        .is_none()
                        .then(|| crate::org::OrgError::NotJoined.to_string())
                }),
            }),
        }
    }

    /// Every known peer device (`Request::Peers`).
    pub(super) fn peer_views(&self) -> Vec<PeerView> {
        self.book.devices().map(|d| self.peer_view(d)).collect()
    }

    /// The conversation with `peer`, oldest first (`Request::History`).
    pub(super) fn history(
        &self,
        peer: &str,
        query: &HistoryQuery,
    ) -> Result<Vec<MessageView>, NodeError> {
        let user = self.book.resolve(peer)?;
        let rows = self.store.history(&user, query)?;
        Ok(rows.iter().map(MessageView::from).collect())
    }
}
