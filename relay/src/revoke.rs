//! Revocation lists: any device of an organisation may hand the relay a
//! list signed by the organisation key. A list with a higher serial than
//! the stored one is stored durably, pushed to every connected device of
//! the organisation, and enforced: revoked users' devices are disconnected
//! ([`close::REVOKED`]), forgotten (directory, sites, mail) and refused on
//! their next Register.

use std::sync::Arc;

use tincan_core::wire::Frame;
use tincan_core::Revocations;

use crate::close;
use crate::server::{push, Peer, Shared};

/// `Revocations(list)` from `peer`.
pub async fn handle(shared: &Arc<Shared>, peer: &Peer, list: Revocations) -> Frame {
    if list.org_id() != peer.org {
        return Frame::Error(format!(
            "revocation list is signed for organisation {}, not {}",
            list.org_id(),
            peer.org
        ));
    }
    if let Err(e) = list.verify() {
        return Frame::Error(format!("revocation list refused: {e}"));
    }
    let current = shared
        .registry()
        .org(&peer.org)
        .and_then(|s| s.revocations.as_ref().map(|l| l.serial));
    if let Some(serial) = current.filter(|s| list.serial <= *s) {
        return Frame::Error(format!(
            "revocation list serial {} is not newer than the current serial {serial}",
            list.serial
        ));
    }
    let stored = list.clone();
    if let Err(e) = shared.engine.put_revocations(stored).await {
        tracing::error!(error = %e, "cannot store a revocation list");
        return Frame::Error("relay storage unavailable".into());
    }
    let now = shared.clock.mono_ms();
    let (revoked, conns, others) = {
        let mut registry = shared.registry();
        // Re-check under the lock: a concurrent newer list wins.
        let newer = registry
            .org(&peer.org)
            .and_then(|s| s.revocations.as_ref())
            .is_some_and(|l| l.serial >= list.serial);
        if newer {
            return Frame::Ack;
        }
        let (revoked, conns) = registry.revoke(now, list.clone());
        (revoked, conns, registry.connections(&peer.org))
    };
    tracing::info!(org = %peer.org, serial = list.serial, devices = revoked.len(), "revocation list applied");
    for conn in &conns {
        conn.close(close::REVOKED, b"revoked");
    }
    if !revoked.is_empty() {
        let org = peer.org;
        let ids = revoked.clone();
        if let Err(e) = shared.engine.remove_devices(org, ids).await {
            tracing::warn!(error = %e, "cannot forget revoked devices");
        }
    }
    for (device, conn) in others {
        if device != peer.device {
            tokio::spawn(push(conn, Frame::Revocations(list.clone())));
        }
    }
    shared.dirty(peer.org);
    Frame::Ack
}
