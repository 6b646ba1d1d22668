//! Revocation lists: any device of an organisation may hand the relay a
//! list signed by the organisation key. A list with a higher serial than
//! the stored one is stored durably, pushed to every connected device of
//! the organisation, and enforced: revoked users' devices are disconnected
//! ([`close::REVOKED`]), forgotten (directory, sites, mail) and refused on
//! their next Register.

use std::sync::Arc;

use tincan_core::wire::Frame;
use tincan_core::{DeviceId, Revocations};

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
    apply(shared, list, Some(peer.device)).await;
    Frame::Ack
}

/// Enforces a verified, stored `list` on this node: disconnects and
/// forgets the revoked users' devices and passes the list to every other
/// connected device of the organisation (`from` already has it). A list
/// no newer than the one applied is ignored, so a list that arrives both
/// from a device and from the cluster is applied once.
pub async fn apply(shared: &Arc<Shared>, list: Revocations, from: Option<DeviceId>) {
    let org = list.org_id();
    let now = shared.clock.mono_ms();
    let (revoked, conns, others) = {
        let mut registry = shared.registry();
        // Re-check under the lock: a concurrent newer list wins.
        let newer = registry
            .org(&org)
            .and_then(|s| s.revocations.as_ref())
            .is_some_and(|l| l.serial >= list.serial);
        if newer || registry.org(&org).is_none() {
            return;
        }
        let (revoked, conns) = registry.revoke(now, list.clone());
        (revoked, conns, registry.connections(&org))
    };
    tracing::info!(%org, serial = list.serial, devices = revoked.len(), "revocation list applied");
    for conn in &conns {
        conn.close(close::REVOKED, b"revoked");
    }
    if !revoked.is_empty() {
        if let Err(e) = shared.engine.remove_devices(org, revoked).await {
            tracing::warn!(error = %e, "cannot forget revoked devices");
        }
    }
    for (device, conn) in others {
        if Some(device) != from {
            tokio::spawn(push(conn, Frame::Revocations(list.clone())));
        }
    }
    shared.dirty(org);
}
