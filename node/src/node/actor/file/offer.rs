//! Offering files: the user's `file send` is checked, the files are
//! scanned and hashed off the actor (`node::file_task::scan`), and the
//! offer (names, sizes, the sealed manifest's key) is sealed to every
//! device of the recipients and queued in the durable outbox with the
//! transfer's row, in one transaction.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tincan_core::file::{ChunkSet, FileOffer, Layout, TransferId, CHUNK_SIZE, MAX_MANIFEST_LEN};
use tincan_core::{Content, DeviceCert, MessageId, UserId};

use super::{wan, Transfer};
use crate::file::source::{ScanError, Scanned};
use crate::file::TransferView;
use crate::keystore::OsEntropy;
use crate::node::actor::{Actor, MESSAGE_TTL_MS};
use crate::node::file_task::{self, SendJob};
use crate::node::{NodeError, Responder};
use crate::request::Response;
use crate::store::{Direction, OutboxEntry, TransferManifest, TransferRecord};

impl Actor {
    /// Offers files and folders (absolute paths) to `peer`: answers on
    /// `reply` once they are hashed (off the actor) and the offer is in
    /// the outbox.
    pub(in crate::node::actor) fn file_send(
        &mut self,
        peer: &str,
        paths: Vec<PathBuf>,
        reply: Responder,
    ) {
        if paths.iter().any(|p| !p.is_absolute()) {
            let error = "paths must be absolute (the node runs in another directory)";
            self.answer(reply, Err(NodeError::Transfer(error.into())));
            return;
        }
        match self.start_send(peer) {
            Ok((users, certs)) => {
                let job = SendJob {
                    to: users[0],
                    users,
                    certs,
                    reply,
                };
                file_task::scan(paths, CHUNK_SIZE, job, self.link_tx.clone());
            }
            Err(e) => {
                self.answer(reply, Err(e));
            }
        }
    }

    /// The users of `peer` (`bob` or `bob,carol,dave`: one transfer, one
    /// offer sealed to all their devices, one upload across branches) and
    /// their devices.
    fn start_send(&self, peer: &str) -> Result<(Vec<UserId>, Vec<DeviceCert>), NodeError> {
        // A room's name or id offers the files to its current members.
        let users = match self.resolve_users(peer) {
            Ok(users) => users,
            Err(peer_error) => match self.resolve_room(peer) {
                Ok(room) => {
                    let me = self.identity.user_id();
                    let members: Vec<UserId> = self
                        .room_members(&room)
                        .into_iter()
                        .filter(|u| *u != me)
                        .collect();
                    if members.is_empty() {
                        return Err(NodeError::Transfer(format!(
                            "room {peer:?} has no other members to offer files to"
                        )));
                    }
                    members
                }
                Err(_) => return Err(peer_error),
            },
        };
        let certs = self.certs_of(&users)?;
        Ok((users, certs))
    }

    /// The scan of a `file send` ended: seal and queue the offer.
    pub(in crate::node::actor) fn on_scanned(
        &mut self,
        job: SendJob,
        result: Result<Box<Scanned>, ScanError>,
    ) {
        let outcome = result
            .map_err(|e| NodeError::Transfer(e.to_string()))
            .and_then(|scanned| self.queue_offer(&job, *scanned));
        self.answer(job.reply, outcome.map(Response::from));
    }

    fn queue_offer(&mut self, job: &SendJob, scanned: Scanned) -> Result<TransferView, NodeError> {
        let encoded = scanned.manifest.to_bytes();
        if encoded.len() > MAX_MANIFEST_LEN as usize {
            return Err(NodeError::Transfer(
                "too many files for one transfer; send them in parts".into(),
            ));
        }
        let now = self.now;
        let id = TransferId::random(&mut OsEntropy);
        let offer = FileOffer {
            transfer: id,
            name: scanned.name.clone(),
            size: scanned.manifest.total_size(),
            count: scanned.manifest.files.len() as u32,
            chunk_size: scanned.manifest.chunk_size,
            manifest_hash: *blake3::hash(&encoded).as_bytes(),
            manifest_len: encoded.len() as u32,
            key: tincan_core::Entropy::bytes32(&mut OsEntropy),
        };
        let layout = Layout::new(&scanned.manifest);
        let devices = job.certs.iter().map(DeviceCert::device_id).collect();
        let offer_bytes =
            postcard::to_allocvec(&offer).map_err(|e| NodeError::Seal(e.to_string()))?;
        let record = TransferRecord::offered(id, Direction::Out, job.to, devices, offer_bytes, now);
        let message_id = MessageId::random(&mut OsEntropy);
        let frame = self.seal_frame(
            message_id,
            now,
            &Content::FileOffer(offer.clone()),
            &job.certs,
        )?;
        let expires = now + MESSAGE_TTL_MS;
        let entries: Vec<OutboxEntry> = job
            .certs
            .iter()
            .map(|c| OutboxEntry::fresh(message_id, c.device_id(), frame.clone(), now, expires))
            .collect();
        let stored = TransferManifest {
            manifest: encoded,
            sources: serde_json::to_string(&scanned.sources).ok(),
        };
        self.store.queue_offer(&record, &stored, &entries)?;
        let recipients: BTreeMap<UserId, Option<wan::Outcome>> = if job.users.len() > 1 {
            job.users.iter().map(|u| (*u, None)).collect()
        } else {
            BTreeMap::new()
        };
        if !recipients.is_empty() {
            self.store
                .set_transfer_recipients(&id, &wan::encode_recipients(&recipients))?;
        }
        self.deliveries.insert(
            message_id,
            Arc::new(frame),
            job.to,
            job.certs.iter().map(DeviceCert::device_id),
        );
        for cert in &job.certs {
            self.outbox
                .push(now, message_id, cert.device_id(), expires, 0);
        }
        tracing::info!(transfer = %id, to = %job.to, files = offer.count, size = offer.size, "file offer queued");
        let key = (id, Direction::Out);
        self.files.transfers.insert(
            key,
            Transfer {
                served: ChunkSet::new(layout.chunks()),
                manifest: Some(Arc::new(scanned.manifest)),
                layout: Some(Arc::new(layout)),
                sources: Some(Arc::new(scanned.sources)),
                recipients,
                ..Transfer::new(record, offer)
            },
        );
        self.emit_transfer(&key);
        self.transfer_view(&key)
            .ok_or_else(|| NodeError::Transfer("transfer vanished".into()))
    }
}
