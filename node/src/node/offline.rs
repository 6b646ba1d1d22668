//! What the CLI reads while no node runs. `history` only reads SQLite, so
//! it should not need a daemon: the database is opened read-only (WAL lets
//! a node start meanwhile) and the peer is resolved from the stored peer
//! book exactly as the running node resolves it.

use std::collections::HashMap;

use tincan_core::peer_book::{PeerBook, PeerInfo, Via};
use tincan_core::{DeviceCert, DeviceId};

use super::NodeError;
use crate::event::MessageView;
use crate::home::Home;
use crate::store::{HistoryQuery, Store, StoreError};

/// A conversation read without a node, with the display names of the
/// users in the stored peer book (user id → name) to print authors.
#[derive(Debug)]
pub struct StoredHistory {
    /// The messages, oldest first, as `history --json` shows them.
    pub messages: Vec<MessageView>,
    /// Display names of known users, by user id.
    pub names: HashMap<String, String>,
}

/// Reads the conversation with `peer` from `home`'s database while no node
/// runs (the caller checked that none answers on the control socket).
pub fn read_history(
    home: &Home,
    peer: &str,
    query: &HistoryQuery,
) -> Result<StoredHistory, NodeError> {
    let path = home.database_path();
    if !path.exists() {
        return Err(NodeError::NoHistoryYet(home.root().display().to_string()));
    }
    let store = Store::open_read_only(&path)?;
    let (book, _) = stored_book(&store)?;
    let user = book.resolve(peer)?;
    let messages = store
        .history(&user, query)?
        .iter()
        .map(MessageView::from)
        .collect();
    let names = book
        .devices()
        .map(|d| (d.user.to_string(), book.display_name(&d.user)))
        .collect();
    Ok(StoredHistory { messages, names })
}

/// The peer book and device certificates as stored: name pins first (so
/// the first holder of a name keeps it), then every peer whose stored
/// certificate still verifies, offline and remembered.
pub(crate) fn stored_book(
    store: &Store,
) -> Result<(PeerBook, HashMap<DeviceId, DeviceCert>), StoreError> {
    let mut book = PeerBook::new();
    let mut certs = HashMap::new();
    for (name, user) in store.pins()? {
        book.restore_pin(&name, user);
    }
    for peer in store.peers()? {
        let Ok(cert) = DeviceCert::from_bytes(&peer.cert) else {
            tracing::warn!(device = %peer.device, "stored peer certificate is unreadable; skipped");
            continue;
        };
        if cert.verify().is_err() || cert.device_id() != peer.device {
            tracing::warn!(device = %peer.device, "stored peer certificate is invalid; skipped");
            continue;
        }
        certs.insert(peer.device, cert);
        book.learn(PeerInfo {
            device: peer.device,
            user: peer.user,
            name: peer.name,
            addrs: peer.addrs.iter().filter_map(|a| a.parse().ok()).collect(),
            online: false,
            via: Via::Remembered,
        });
    }
    Ok((book, certs))
}
