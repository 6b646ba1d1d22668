//! Names on the actor. This user's own name, changed while the node runs:
//! the identity file is rewritten and the new name travels the way a
//! presence change does (a newly signed LAN record, passed from peer to
//! peer), and in the hello of every link opened from now on. And
//! forgetting another user (`peers forget`): the peer book, the store, the
//! outbox and the LAN view drop them, and a tombstone per device keeps
//! their old record, still held by other peers, from bringing them back.

use std::sync::Arc;

use tincan_core::wire::Hello;
use tincan_core::DeviceId;

use super::Actor;
use crate::event::ForgottenView;
use crate::event::WhoAmI;
use crate::keystore;
use crate::node::NodeError;

/// `node_state` key of the forgotten devices: one `DEVICE VERSION` a line.
const FORGOTTEN_KEY: &str = "forgotten_devices";

/// Most tombstones kept (the oldest records go first): each is a line in
/// the store, and a forgotten device that stays silent this long is not
/// coming back anyway.
const MAX_FORGOTTEN: usize = 4096;

impl Actor {
    /// Renames this user (`Request::NameSet`).
    pub(super) fn set_own_name(&mut self, name: &str) -> Result<WhoAmI, NodeError> {
        let renamed = keystore::set_name(&self.home, name)?;
        tracing::info!(old = %self.identity.name, new = %renamed.name, "renamed");
        self.identity.name = renamed.name;
        self.hello = Arc::new(Hello {
            name: self.identity.name.clone(),
            ..(*self.hello).clone()
        });
        // As a presence change does (`drive_presence`): a newer record
        // reaches every LAN peer through the mesh's gossip.
        self.sign_own_record(0, false);
        Ok(self.whoami())
    }

    /// Who this node is now.
    pub(super) fn whoami(&self) -> WhoAmI {
        WhoAmI {
            user_id: self.identity.user_id().to_string(),
            device_id: self.identity.device_id().to_string(),
            name: self.identity.name.clone(),
        }
    }

    /// Forgets a user (`Request::PeerForget`).
    pub(super) fn forget_user(&mut self, peer: &str) -> Result<ForgottenView, NodeError> {
        let user = self.book.resolve(peer)?;
        if user == self.identity.user_id() {
            return Err(NodeError::ForgetSelf);
        }
        let name = self.book.display_name(&user);
        if self.book.devices_of(&user).any(|d| d.online) {
            return Err(NodeError::ForgetOnline(name));
        }
        self.store.forget_user(&user)?;
        let devices = self.book.forget_user(&user);
        let reason = format!("you forgot {name} (`tincan peers forget`)");
        let now = self.now;
        for device in &devices {
            let version = self.mesh.record(device).map_or(0, |r| r.version);
            self.mesh.forget(device);
            self.mesh_dials.forgotten.insert(*device, version);
            self.mesh_dials.unsaved.remove(device);
            self.certs.remove(device);
            self.outbox.cancel_device(now, device, &reason);
        }
        self.save_forgotten();
        tracing::info!(%user, %name, devices = devices.len(), "forgot a peer");
        Ok(ForgottenView {
            user_id: user.to_string(),
            name,
            devices: devices.iter().map(ToString::to_string).collect(),
        })
    }

    /// Whether the record of `device` at `version` is one of a forgotten
    /// user (a newer one means the device lives: it is learned again).
    pub(super) fn is_forgotten(&mut self, device: &DeviceId, version: u64) -> bool {
        match self.mesh_dials.forgotten.get(device) {
            Some(forgotten) if version <= *forgotten => true,
            Some(_) => {
                self.mesh_dials.forgotten.remove(device);
                self.save_forgotten();
                false
            }
            None => false,
        }
    }

    /// Loads the tombstones of forgotten devices (unreadable lines are
    /// skipped: at worst a ghost comes back and is forgotten again).
    pub(super) fn restore_forgotten(&mut self) {
        let text = match self.store.node_state(FORGOTTEN_KEY) {
            Ok(text) => text.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the forgotten peers");
                return;
            }
        };
        self.mesh_dials.forgotten = text
            .lines()
            .filter_map(|line| {
                let (device, version) = line.split_once(' ')?;
                Some((device.parse().ok()?, version.parse().ok()?))
            })
            .collect();
    }

    fn save_forgotten(&mut self) {
        let forgotten = &mut self.mesh_dials.forgotten;
        while forgotten.len() > MAX_FORGOTTEN {
            let Some(oldest) = forgotten.iter().min_by_key(|(_, v)| **v).map(|(d, _)| *d) else {
                break;
            };
            forgotten.remove(&oldest);
        }
        let text: String = forgotten
            .iter()
            .map(|(device, version)| format!("{device} {version}\n"))
            .collect();
        if let Err(e) = self.store.set_node_state(FORGOTTEN_KEY, &text) {
            tracing::warn!(error = %e, "cannot store the forgotten peers");
        }
    }
}
