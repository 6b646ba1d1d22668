//! The JSON shape of a transfer, shared by `tincan file list --json`, the
//! control socket and events.

use serde::{Deserialize, Serialize};

use tincan_core::file::TransferState;

/// One transfer as `tincan file list --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferView {
    /// Transfer id (32 hex characters; commands take a unique prefix).
    pub id: String,
    /// `in` (we receive) or `out` (we send).
    pub direction: String,
    /// The other user's id.
    pub peer: String,
    /// The other user's display name.
    pub peer_name: String,
    /// The file or folder name (`NAME and N more` for several items).
    pub name: String,
    /// Total bytes.
    pub size: u64,
    /// Number of files.
    pub count: u32,
    /// Bytes verified (in) or served at least once (out).
    pub bytes_done: u64,
    /// `offered`, `accepted`, `transferring`, `paused`, `done`, `failed`,
    /// `rejected` or `cancelled`.
    pub state: TransferState,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Bytes per second over the last seconds, while transferring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    /// Estimated seconds left, while transferring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<u64>,
    /// In: every chunk byte received, repeats (re-fetches) included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_received_total: Option<u64>,
    /// Out: every chunk byte sent, repeats included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_sent_total: Option<u64>,
    /// In: the destination folder, once accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
    /// In: where the items were saved, once done.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saved_as: Vec<String>,
    /// When the transfer was created, Unix ms.
    pub created_at: u64,
    /// Out, offered to several users at once: each one's answer (`state`
    /// null while they have not finished).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RecipientView>,
}

/// One recipient of a transfer offered to several users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientView {
    /// The user id.
    pub user: String,
    /// Their display name.
    pub name: String,
    /// `done`, `rejected`, `failed` or `cancelled` once they answered.
    pub state: Option<TransferState>,
    /// Why it failed for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
