//! Views of a user's devices, with stable JSON shapes: `device pair`,
//! `device add`, `device list` and `device remove`; and the devices of a
//! peer dropped by `peers forget`.

use serde::{Deserialize, Serialize};

/// A pairing code being shown (`tincan device pair --json`, first line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingView {
    /// The code to type on the new device (`ABCDE-FGHJK`).
    pub code: String,
    /// When it stops working, Unix ms.
    pub expires_at: u64,
}

/// One of this user's devices (`tincan device list --json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    /// The device id.
    pub device_id: String,
    /// What it was called when paired (the first device: its host name).
    pub label: String,
    /// Whether it is the device answering.
    pub this: bool,
    /// Whether it is connected now (the device answering always is).
    pub online: bool,
    /// When it was added, Unix ms (from its certificate).
    pub added_at: u64,
}

/// What `tincan device add --json` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinedView {
    /// The user this device now belongs to.
    pub user_id: String,
    /// This device (its key stays; only its certificate is new).
    pub device_id: String,
    /// The user's display name.
    pub name: String,
    /// This device's label.
    pub label: String,
    /// The organisation joined with the user, if any.
    pub org: Option<String>,
    /// Whether a relay was configured from the other device.
    pub relay: bool,
    /// The user's devices now, this one included.
    pub devices: usize,
}

/// A user removed by `tincan peers forget` (`--json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgottenView {
    /// The user's id.
    pub user_id: String,
    /// The name they were shown under.
    pub name: String,
    /// Their devices that were forgotten.
    pub devices: Vec<String>,
}
