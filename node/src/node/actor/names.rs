//! This user's own name, changed while the node runs: the identity file is
//! rewritten and the new name travels the way a presence change does (a
//! newly signed LAN record, passed from peer to peer), and in the hello of
//! every link opened from now on.

use std::sync::Arc;

use tincan_core::wire::Hello;

use super::Actor;
use crate::event::WhoAmI;
use crate::keystore;
use crate::node::names::NamesCommand;
use crate::node::NodeError;

impl Actor {
    pub(super) fn on_names_command(&mut self, cmd: NamesCommand) {
        match cmd {
            NamesCommand::SetName { name, reply } => {
                let _ = reply.send(self.set_own_name(&name));
            }
        }
    }

    /// Renames this user (see [`crate::NodeHandle::set_name`]).
    fn set_own_name(&mut self, name: &str) -> Result<WhoAmI, NodeError> {
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
        Ok(WhoAmI {
            user_id: self.identity.user_id().to_string(),
            device_id: self.identity.device_id().to_string(),
            name: self.identity.name.clone(),
        })
    }
}
