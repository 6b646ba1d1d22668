//! Device removals: a device hands the relay `Devices(roster)` with
//! revocations signed by user keys (`tincan device remove`). Each one that
//! verifies, and names a device of the organisation certified by the same
//! user key (or one the relay has not seen, handed in by a device of that
//! user), is stored durably and
//! enforced: the device is disconnected ([`close::DEVICE_REMOVED`]),
//! forgotten (directory, sites, mail), refused on its next Register, and
//! the removal is pushed to every other connected device of the
//! organisation. Certificates in a roster are ignored: the relay learns
//! devices only from their own registration or their gateway.

use std::sync::Arc;

use tincan_core::device::Roster;
use tincan_core::wire::Frame;

use crate::close;
use crate::server::{push, Peer, Shared};

/// `Devices(roster)` from `peer`.
pub async fn handle(shared: &Arc<Shared>, peer: &Peer, roster: Roster) -> Frame {
    if roster.revocations.len() > tincan_core::device::MAX_ROSTER {
        return Frame::Error("device roster too large".into());
    }
    let mut applied = Vec::new();
    for revocation in roster.revocations {
        if let Err(e) = revocation.verify() {
            return Frame::Error(format!("device revocation refused: {e}"));
        }
        let removed = {
            let mut registry = shared.registry();
            registry.remove_device(
                shared.clock.mono_ms(),
                peer.org,
                revocation.clone(),
                Some(peer.user),
            )
        };
        let Some(conn) = removed else {
            continue;
        };
        let (org, stored) = (peer.org, revocation.clone());
        if let Err(e) = shared.engine.put_device_revocation(org, stored).await {
            tracing::error!(error = %e, "cannot store a device revocation");
            return Frame::Error("relay storage unavailable".into());
        }
        tracing::info!(org = %peer.org, device = %revocation.device, "device removed by its user");
        if let Some(conn) = conn {
            conn.close(close::DEVICE_REMOVED, b"device removed by its user");
        }
        applied.push(revocation);
    }
    if !applied.is_empty() {
        let others = shared.registry().connections(&peer.org);
        let frame = Frame::Devices(Roster {
            certs: Vec::new(),
            revocations: applied,
            labels: Vec::new(),
        });
        for (device, conn) in others {
            if device != peer.device {
                tokio::spawn(push(conn, frame.clone()));
            }
        }
        shared.dirty(peer.org);
    }
    Frame::Ack
}
