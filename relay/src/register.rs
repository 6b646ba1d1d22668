//! Registration: the first stream of a connection must carry `Register`
//! within [`REGISTER_TIMEOUT`]; the relay checks the membership chain
//! against the TLS certificate and the organisation's revocation list.
//!
//! Accepted → `Welcome{public_addr, lease_ttl_ms}`. Refused → `Error(reason)`
//! and the connection is closed with [`close::REFUSED`] and the same reason,
//! so the client sees why whichever arrives first. A device that connects
//! again replaces its older connection ([`close::REPLACED`]).

use std::sync::Arc;
use std::time::Instant;

use tincan_core::route::{Register, Welcome};
use tincan_core::wire::Frame;
use tincan_core::{DeviceCert, MembershipError, OrgId, Revocations};
use tincan_transport::rpc;

use crate::close;
use crate::registry::DirectConn;
use crate::server::{push, Peer, Shared, REGISTER_TIMEOUT};
use crate::store::StoredDevice;

/// Most LAN addresses one device may announce.
const MAX_LAN_ADDRS: usize = 16;

/// The address the relay sees `conn` come from, IPv4-mapped IPv6 shown
/// as IPv4 (a dual-stack listener reports IPv4 peers that way).
fn public_addr(conn: &quinn::Connection) -> std::net::SocketAddr {
    let remote = conn.remote_address();
    std::net::SocketAddr::new(remote.ip().to_canonical(), remote.port())
}

/// Checks a Register against the peer's certificate; the organisation or
/// the reason to refuse, worded for the user.
fn check(shared: &Shared, cert: &DeviceCert, reg: &Register) -> Result<OrgId, String> {
    let org = reg.membership.org_id();
    let revocations = {
        let registry = shared.registry();
        let Some(state) = registry.org(&org) else {
            return Err(format!("organisation {org} is not served by this relay"));
        };
        if state.is_removed(cert) {
            return Err(
                "device removed by its user (`tincan device remove`); pair it anew to use it"
                    .into(),
            );
        }
        let max = shared.config.max_devices_per_user;
        if registry.within_device_cap(&org, [cert], max) != [true] {
            return Err(too_many_devices(max));
        }
        state.revocations.clone()
    };
    check_register(cert, reg, revocations.as_ref(), shared.clock.wall_secs())
}

/// The checks of a Register that need no relay state: `reg` from the device
/// that presented `cert` in its TLS handshake, checked at `now_secs` against
/// its organisation's revocation list (verified already). The organisation,
/// or the reason to refuse, worded for the user. Pure, so that the fuzz
/// target `relay_request` runs it too.
pub fn check_register(
    cert: &DeviceCert,
    reg: &Register,
    revocations: Option<&Revocations>,
    now_secs: u64,
) -> Result<OrgId, String> {
    let org = reg
        .membership
        .admits(cert, now_secs, revocations)
        .map_err(|e| match e {
            MembershipError::Expired(at) => format!("membership expired (at unix time {at})"),
            MembershipError::Revoked(_) => "user revoked by the organisation".to_string(),
            other => format!("not a member: no valid membership ({other})"),
        })?;
    tincan_core::name::validate_name(&reg.name)
        .ok()
        .filter(|n| *n == reg.name)
        .ok_or_else(|| "invalid name: 1 to 64 characters, no control characters".to_string())?;
    if reg.lan_addrs.len() > MAX_LAN_ADDRS {
        return Err(format!("at most {MAX_LAN_ADDRS} lan addresses"));
    }
    Ok(org)
}

/// The refusal of a device beyond the per-user cap.
fn too_many_devices(max: usize) -> String {
    format!(
        "too many devices: a user may have at most {max} devices at this relay; remove one with `tincan device remove`"
    )
}

/// Refuses: answers `Error(reason)` on the stream, then closes.
async fn refuse(
    shared: &Shared,
    conn: &quinn::Connection,
    send: &mut quinn::SendStream,
    reason: &str,
) {
    shared.metrics.refused("register");
    tracing::info!(remote = %conn.remote_address(), %reason, "registration refused");
    let frame = Frame::Error(reason.to_string());
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(2), rpc::answer(send, &frame)).await;
    conn.close(close::REFUSED, reason.as_bytes());
}

/// Waits for and handles the first `Register`; the registered peer, or
/// `None` once the connection was refused and closed.
pub async fn first_register(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    cert: DeviceCert,
) -> Option<Peer> {
    let deadline = Instant::now() + REGISTER_TIMEOUT;
    let timed_out = || {
        shared.metrics.refused("register_timeout");
        conn.close(close::REGISTER_TIMEOUT, b"no register within 5 s");
    };
    let accepted = tokio::time::timeout_at(deadline.into(), conn.accept_bi()).await;
    let (mut send, mut recv) = match accepted {
        Ok(Ok(streams)) => streams,
        Ok(Err(_)) => return None,
        Err(_) => {
            timed_out();
            return None;
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let reg = match rpc::read_request(&mut recv, left).await {
        Ok(Frame::Register(reg)) => reg,
        Ok(other) => {
            let reason = format!("register first (got {})", other.name());
            refuse(shared, conn, &mut send, &reason).await;
            return None;
        }
        Err(rpc::RpcError::Timeout(_)) => {
            timed_out();
            return None;
        }
        Err(e) => {
            refuse(shared, conn, &mut send, &format!("bad register: {e}")).await;
            return None;
        }
    };
    let org = match check(shared, &cert, &reg) {
        Ok(org) => org,
        Err(reason) => {
            refuse(shared, conn, &mut send, &reason).await;
            return None;
        }
    };
    let device = cert.device_id();
    let peer = Peer {
        org,
        device,
        user: cert.user_id(),
        conn: conn.clone(),
    };
    let wall = shared.clock.wall_ms();
    let stored = StoredDevice {
        org,
        cert: cert.clone(),
        name: reg.name.clone(),
        last_seen_ms: wall,
    };
    if let Err(e) = shared.engine.upsert_devices(vec![stored]).await {
        tracing::warn!(error = %e, "cannot record device");
    }
    let registered = {
        let mut registry = shared.registry();
        // Re-check under the lock: a revocation list that arrived since
        // `check` has already swept the registry and would miss this one.
        let revoked_meanwhile = registry
            .org(&org)
            .and_then(|s| s.revocations.as_ref())
            .is_some_and(|l| l.is_revoked(&peer.user));
        // Two new devices of one user registering at once both passed
        // `check`; only those that still fit the cap become known.
        let max = shared.config.max_devices_per_user;
        if revoked_meanwhile {
            Err("user revoked by the organisation".to_string())
        } else if registry.within_device_cap(&org, [&cert], max) != [true] {
            Err(too_many_devices(max))
        } else {
            Ok(register_locked(&mut registry, org, cert, &reg, conn, wall))
        }
    };
    let (replaced, revocations) = match registered {
        Ok(done) => done,
        Err(reason) => {
            // Only a device new to the relay can be refused here; its row
            // (just written) goes, and it has no mail yet.
            let _ = shared.engine.remove_devices(org, vec![device]).await;
            refuse(shared, conn, &mut send, &reason).await;
            return None;
        }
    };
    match replaced {
        Some(old) => old.close(close::REPLACED, b"replaced by a newer connection"),
        None => {
            shared.metrics.devices_connected.inc();
        }
    }
    let welcome = Frame::Welcome(Welcome {
        public_addr: public_addr(conn),
        lease_ttl_ms: shared.config.lease_ttl_ms,
    });
    if let Err(e) = rpc::answer(&mut send, &welcome).await {
        tracing::debug!(%device, error = %e, "welcome not delivered");
    }
    if let Some(list) = revocations {
        tokio::spawn(push(conn.clone(), Frame::Revocations(list)));
    }
    after_change(shared, &peer, reg.lonely);
    Some(peer)
}

/// Records a checked registration in the registry (under its lock): the
/// connection it replaces, if any, and the organisation's revocation list.
fn register_locked(
    registry: &mut crate::registry::Registry,
    org: OrgId,
    cert: DeviceCert,
    reg: &Register,
    conn: &quinn::Connection,
    wall: u64,
) -> (Option<quinn::Connection>, Option<tincan_core::Revocations>) {
    let device = cert.device_id();
    registry.know(org, cert, reg.name.clone(), wall);
    let replaced = registry.register(
        org,
        device,
        DirectConn {
            conn: conn.clone(),
            remote: public_addr(conn),
            lan_addrs: reg.lan_addrs.clone(),
            lonely: reg.lonely,
            expires_at: reg.membership.expires_at,
            directory: Default::default(),
        },
    );
    let revocations = registry.org(&org).and_then(|s| s.revocations.clone());
    (replaced, revocations)
}

/// A second `Register` on a registered connection: updates the LAN data.
pub fn re_register(shared: &Arc<Shared>, peer: &Peer, reg: Register) -> Frame {
    let cert = match shared.registry().known(&peer.org, &peer.device) {
        Some(k) => k.cert.clone(),
        None => return Frame::Error("device is no longer known (revoked?)".into()),
    };
    match check(shared, &cert, &reg) {
        Ok(org) if org == peer.org => {}
        Ok(_) => return Frame::Error("a connection registers for one organisation".into()),
        Err(reason) => return Frame::Error(reason),
    }
    let lonely = reg.lonely;
    {
        let mut registry = shared.registry();
        registry.know(peer.org, cert, reg.name, shared.clock.wall_ms());
        registry.update_lan(
            &peer.org,
            &peer.device,
            reg.lan_addrs,
            reg.lonely,
            reg.membership.expires_at,
        );
    }
    after_change(shared, peer, lonely);
    Frame::Welcome(Welcome {
        public_addr: public_addr(&peer.conn),
        lease_ttl_ms: shared.config.lease_ttl_ms,
    })
}

/// Directory push, neighbour hints and a mail flush after a registration.
fn after_change(shared: &Arc<Shared>, peer: &Peer, lonely: bool) {
    shared.dirty(peer.org);
    crate::flush::flush_devices(shared, peer.org, &[peer.device]);
    if lonely {
        let pushes = shared.registry().neighbours(&peer.org, &peer.device);
        for (device, conn, list) in pushes {
            tracing::debug!(%device, n = list.len(), "telling probable lan neighbours");
            tokio::spawn(push(conn, Frame::Neighbours(list)));
        }
    }
}

/// The connection of `peer` ended.
pub fn departed(shared: &Arc<Shared>, peer: &Peer) {
    let now = shared.clock.mono_ms();
    let wall = shared.clock.wall_ms();
    let removed =
        shared
            .registry()
            .unregister(now, wall, peer.org, peer.device, peer.conn.stable_id());
    if removed {
        shared.metrics.devices_connected.dec();
        shared
            .limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&peer.device);
        shared
            .request_limits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&peer.device);
        let known = shared.registry().known(&peer.org, &peer.device).cloned();
        if let Some(k) = known {
            let stored = StoredDevice {
                org: peer.org,
                cert: k.cert,
                name: k.name,
                last_seen_ms: wall,
            };
            let engine = shared.engine.clone();
            tokio::spawn(async move {
                let _ = engine.upsert_devices(vec![stored]).await;
            });
        }
        shared.dirty(peer.org);
    }
}
