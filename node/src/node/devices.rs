//! Several devices per user, on the [`NodeHandle`]: show a pairing code,
//! list this user's devices, remove one. One [`Command::Device`] carries
//! them to the actor (`actor/devices.rs`). Enrolling the *new* device is
//! not a node command: it runs before that device has a node
//! (`crate::pair`).

use tokio::sync::oneshot;

use super::{Command, NodeError, NodeHandle};
use crate::event::{DeviceView, PairingView};

/// Replies of fallible device commands.
type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

/// Requests of [`Command::Device`].
pub(crate) enum DeviceCommand {
    Pair(Reply<PairingView>),
    List(Reply<Vec<DeviceView>>),
    Remove {
        device: String,
        reply: Reply<DeviceView>,
    },
}

impl NodeHandle {
    async fn device<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> DeviceCommand,
    ) -> Result<T, NodeError> {
        self.ask(|reply| Command::Device(make(reply))).await
    }

    /// Shows a fresh pairing code (replacing one shown before). Watch for
    /// `DevicePaired` or `PairingFailed` events for the outcome. Needs the
    /// user key (the first device of the user holds it).
    pub async fn pair_device(&self) -> Result<PairingView, NodeError> {
        self.device(DeviceCommand::Pair).await?
    }

    /// This user's devices, this one included.
    pub async fn devices(&self) -> Result<Vec<DeviceView>, NodeError> {
        self.device(DeviceCommand::List).await?
    }

    /// Removes a device of this user (id or unique prefix of at least 4
    /// characters, or its label): signs the revocation with the user key
    /// and spreads it to every peer, own device, gateway and the relay.
    pub async fn remove_device(&self, device: &str) -> Result<DeviceView, NodeError> {
        let device = device.to_string();
        self.device(|reply| DeviceCommand::Remove { device, reply })
            .await?
    }
}
