//! File transfers across branches, in the actor.
//!
//! # Path of the bytes
//! - **Sender**: when some recipient device has no direct LAN connection
//!   and an uplink exists, the sender uploads the sealed manifest and
//!   chunks once (`FileUpload`) over its uplink: straight to the relay as
//!   gateway or roaming device, else to its gateway, which pipes them to
//!   the relay. The WAN cap (`wan_upload_limit`) applies where the bytes
//!   leave for the WAN: on the node holding the relay connection. What
//!   the relay stored is persisted (`uploaded`), so an upload resumes.
//! - **Receiver** ([`Actor::holder_for`]): the sender directly when on
//!   the LAN; else, as member, its gateway; as gateway, its own cache of
//!   the relay's copy; as roaming device, the relay. The same sealed bytes
//!   come from any of them, so a pull resumes on whichever path is up
//!   (gateway failover, roam, restart) from its last verified chunk.
//! - **Gateway** ([`Actor::serve_from_relay`]): serves its members'
//!   requests for transfers it does not send itself from its cache
//!   (`crate::file::cache`), fetching each item once from the relay.
//!
//! # Several recipients
//! A transfer offered to several users is one transfer (one id, one key,
//! one upload). Each user answers on their own; the sender's transfer
//! ends once all did: `done` if anyone received it (the others' answers
//! in `recipients`), else the first answer.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tincan_core::file::{
    crypt, file_name, ChunkSet, FetchFault, FileAction, FileRefusal, FileRequest, FileUpload,
    TransferId,
};
use tincan_core::site::Role;
use tincan_core::{DeviceId, UserId};

use super::Key;
use crate::node::actor::Actor;
use crate::node::file_task::{self, Holder, UploadJob};
use crate::store::{Direction, TransferRecord, TransferState};

/// Items of one sender's uploads in flight at once (over all transfers).
pub(super) const UPLOAD_WINDOW: usize = 4;
/// Longest pause between upload attempts after failures (ms).
const MAX_UPLOAD_BACKOFF_MS: u64 = 10_000;

/// The sender's upload of one transfer to the relay.
pub(super) struct Upload {
    /// Stored at the relay: chunk bits, then the manifest's bit.
    done: ChunkSet,
    in_flight: BTreeSet<Option<u64>>,
    hold_until: u64,
    streak: u32,
    /// Plaintext bytes of the chunks stored at the relay.
    bytes: u64,
}

impl Upload {
    fn bit(&self, item: Option<u64>) -> u64 {
        item.unwrap_or(self.done.len().saturating_sub(1))
    }

    /// The next item not stored and not in flight: the manifest first.
    fn next(&self) -> Option<Option<u64>> {
        let manifest_bit = self.done.len().saturating_sub(1);
        if !self.done.contains(manifest_bit) && !self.in_flight.contains(&None) {
            return Some(None);
        }
        self.done
            .missing_from(0)
            .find(|i| *i < manifest_bit && !self.in_flight.contains(&Some(*i)))
            .map(Some)
    }

    fn complete(&self) -> bool {
        self.done.is_full()
    }
}

/// One recipient's answer to a transfer offered to several users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Outcome {
    pub(super) state: TransferState,
    pub(super) error: Option<String>,
}

/// The stored JSON of the recipients map.
pub(super) fn encode_recipients(map: &BTreeMap<UserId, Option<Outcome>>) -> String {
    let map: BTreeMap<String, &Option<Outcome>> =
        map.iter().map(|(u, o)| (u.to_string(), o)).collect();
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}

/// Reads [`encode_recipients`]; unreadable entries are dropped.
pub(super) fn decode_recipients(json: &str) -> BTreeMap<UserId, Option<Outcome>> {
    let map: BTreeMap<String, Option<Outcome>> = serde_json::from_str(json).unwrap_or_default();
    map.into_iter()
        .filter_map(|(u, o)| u.parse::<UserId>().ok().map(|u| (u, o)))
        .collect()
}

impl Actor {
    /// Where an incoming transfer's bytes come from now (see the module
    /// docs), or `None` while no path is up.
    pub(in crate::node::actor) fn holder_for(&self, record: &TransferRecord) -> Option<Holder> {
        let sender = record.devices.first()?;
        if let Some(conn) = self.conns.get(sender).and_then(|c| c.last()) {
            return Some(Holder::Conn(conn.clone()));
        }
        self.membership.as_ref()?;
        match self.election.role() {
            Role::Gateway => self
                .relay
                .conn
                .clone()
                .map(|relay| Holder::Cache(self.files.cache.clone(), relay)),
            Role::Member | Role::Roaming => self.uplink_conn().map(Holder::Conn),
            Role::Standalone => None,
        }
    }

    /// As gateway, serves a member's request for a transfer this node does
    /// not send from the cache of the relay's copy. Gives `send` back when
    /// this node is no gateway for `from`.
    pub(in crate::node::actor) fn serve_from_relay(
        &self,
        from: DeviceId,
        request: &FileRequest,
        send: quinn::SendStream,
    ) -> Option<quinn::SendStream> {
        let relay = self.relay.conn.clone();
        match relay {
            Some(relay)
                if self.election.role() == Role::Gateway && self.org_peers.contains_key(&from) =>
            {
                tracing::debug!(transfer = %request.transfer(), item = ?request.item(), %from, "serving a member from the relay's copy");
                file_task::serve_cached(
                    send,
                    self.files.cache.clone(),
                    relay,
                    request.clone(),
                    self.files.permits.clone(),
                );
                None
            }
            _ => Some(send),
        }
    }

    /// As gateway, pipes a member's upload to the relay; anyone else is
    /// told to try again (its uplink changes soon, e.g. after a failover).
    pub(in crate::node::actor) fn on_member_upload(
        &mut self,
        from: DeviceId,
        header: FileUpload,
        mut send: quinn::SendStream,
        recv: quinn::RecvStream,
        now: u64,
    ) {
        let relay = self.relay.conn.clone();
        match relay {
            Some(relay)
                if self.election.role() == Role::Gateway && self.org_peers.contains_key(&from) =>
            {
                let delay = self.files.wan_bucket.reserve(now, u64::from(header.len));
                tracing::debug!(transfer = %header.transfer, item = ?header.item, %from, delay_ms = delay, "forwarding a member's upload to the relay");
                file_task::forward_upload(relay, header, send, recv, delay);
            }
            _ => {
                tokio::spawn(async move {
                    crate::file::stream::answer_refusal(&mut send, FileRefusal::Busy).await;
                });
            }
        }
    }

    /// Starts the uploads that outgoing transfers to remote devices need.
    pub(in crate::node::actor) fn drive_uploads(&mut self, now: u64) {
        if self.membership.is_none() {
            return;
        }
        let Some(conn) = self.uplink_conn() else {
            return;
        };
        // The bytes leave for the WAN here only when this node holds the
        // relay connection; a member's gateway applies the cap for it.
        let capped = matches!(self.election.role(), Role::Gateway | Role::Roaming);
        let keys: Vec<Key> = self
            .files
            .transfers
            .iter()
            .filter(|(k, t)| {
                k.1 == Direction::Out
                    && !t.record.state.is_final()
                    && t.upload.as_ref().is_none_or(|u| !u.complete())
                    && t.record.devices.iter().any(|d| !self.conns.contains_key(d))
            })
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.drive_upload(&key, &conn, capped, now);
        }
    }

    fn drive_upload(&mut self, key: &Key, conn: &quinn::Connection, capped: bool, now: u64) {
        if self
            .files
            .transfers
            .get(key)
            .is_some_and(|t| t.manifest.is_none())
        {
            if let Some(mut t) = self.files.transfers.remove(key) {
                self.load_manifest(&mut t);
                self.files.transfers.insert(*key, t);
            }
        }
        let needs_state = self
            .files
            .transfers
            .get(key)
            .is_some_and(|t| t.upload.is_none());
        let stored = if needs_state {
            self.store.transfer_uploaded(&key.0).unwrap_or_default()
        } else {
            Vec::new()
        };
        let tx = self.link_tx.clone();
        let permits = self.files.upload_permits.clone();
        let Some(t) = self.files.transfers.get_mut(key) else {
            return;
        };
        let (Some(manifest), Some(layout), Some(sources)) = (&t.manifest, &t.layout, &t.sources)
        else {
            return;
        };
        let upload = t.upload.get_or_insert_with(|| {
            tracing::info!(transfer = %key.0, "a recipient is on another branch; uploading the sealed file once to the relay");
            let done = ChunkSet::from_bytes(layout.chunks() + 1, &stored);
            let bytes = (0..layout.chunks())
                .filter(|i| done.contains(*i))
                .filter_map(|i| layout.place(i))
                .map(|p| u64::from(p.len))
                .sum();
            Upload {
                done,
                in_flight: BTreeSet::new(),
                hold_until: 0,
                streak: 0,
                bytes,
            }
        });
        if now < upload.hold_until {
            return;
        }
        while upload.in_flight.len() < UPLOAD_WINDOW {
            let Some(item) = upload.next() else { break };
            let (chunk, sealed, len) = match item {
                None => {
                    let sealed = crypt::seal_manifest(&t.offer.key, &key.0, manifest.to_bytes());
                    let len = sealed.len() as u64;
                    (None, Some(sealed), len)
                }
                Some(index) => {
                    let Some(place) = layout.place(index) else {
                        break;
                    };
                    let file = &manifest.files[place.file as usize];
                    let local = (index - layout.file_chunks(place.file).start) as usize;
                    let source = sources[place.file as usize].clone();
                    let len = u64::from(place.len);
                    (Some((source, place, file.chunks[local])), None, len)
                }
            };
            let delay_ms = if capped {
                self.files.wan_bucket.reserve(now, len)
            } else {
                0
            };
            upload.in_flight.insert(item);
            let job = UploadJob {
                transfer: key.0,
                item,
                key: t.offer.key,
                chunk,
                manifest: sealed,
                delay_ms,
            };
            file_task::upload_item(conn.clone(), job, permits.clone(), tx.clone());
        }
    }

    /// One item of an upload ended.
    pub(in crate::node::actor) fn on_uploaded(
        &mut self,
        transfer: TransferId,
        item: Option<u64>,
        result: Result<(), FetchFault>,
        now: u64,
    ) {
        let key = (transfer, Direction::Out);
        let Some(t) = self.files.transfers.get_mut(&key) else {
            return;
        };
        let Some(upload) = t.upload.as_mut() else {
            return;
        };
        upload.in_flight.remove(&item);
        match result {
            Ok(()) => {
                upload.streak = 0;
                let bit = upload.bit(item);
                if upload.done.insert(bit) {
                    if let (Some(index), Some(layout)) = (item, &t.layout) {
                        let len = layout.place(index).map_or(0, |p| u64::from(p.len));
                        t.record.bytes_total += len;
                        upload.bytes += len;
                        // Sent at least once (to the relay): the sender's progress.
                        t.record.bytes_done = t.record.bytes_done.max(upload.bytes);
                        t.meter.handle_progress(now, t.record.bytes_done);
                    }
                    let bitmap = upload.done.as_bytes().to_vec();
                    if upload.complete() {
                        tracing::info!(%transfer, "the relay holds the whole file now");
                    }
                    if let Err(e) = self.store.set_transfer_uploaded(&transfer, &bitmap) {
                        tracing::warn!(%transfer, error = %e, "cannot store upload progress");
                    }
                    if let Err(e) = self.store.update_transfer(&t.record) {
                        tracing::warn!(%transfer, error = %e, "cannot store transfer counters");
                    }
                    if item.is_some()
                        && matches!(
                            t.record.state,
                            TransferState::Offered | TransferState::Accepted
                        )
                    {
                        self.set_transfer_state(&key, TransferState::Transferring, None);
                    }
                }
            }
            Err(FetchFault::Refused(refusal)) if !refusal.is_transient() => {
                if t.record.state.is_final() {
                    return;
                }
                let reason = match &refusal {
                    FileRefusal::QuotaExceeded { .. } => format!(
                        "the relay refused the upload: {}",
                        refusal.describe(|f| format!("file #{f}"))
                    ),
                    other => other
                        .describe_own(|f| file_name(t.manifest.as_deref(), f))
                        .unwrap_or_else(|| format!("the relay refused the upload: {other:?}")),
                };
                tracing::warn!(%transfer, %reason, "upload to the relay failed for good");
                t.upload = None;
                self.set_transfer_state(&key, TransferState::Failed, Some(reason.clone()));
                self.tell_peer(&key, FileAction::Failed(reason));
            }
            Err(fault) => {
                upload.streak = upload.streak.saturating_add(1);
                let pause = (250u64 << upload.streak.min(8)).min(MAX_UPLOAD_BACKOFF_MS);
                upload.hold_until = upload.hold_until.max(now + pause);
                tracing::debug!(%transfer, ?item, ?fault, pause_ms = pause, "upload item not stored; retrying");
            }
        }
    }

    /// A recipient of a transfer offered to several users answered.
    /// Returns false when the transfer has a single recipient (the caller
    /// applies the answer to the whole transfer).
    pub(in crate::node::actor) fn recipient_answered(
        &mut self,
        key: &Key,
        user: UserId,
        action: &FileAction,
    ) -> bool {
        let Some(t) = self.files.transfers.get_mut(key) else {
            return false;
        };
        if t.recipients.len() < 2 {
            return false;
        }
        let outcome = match action {
            FileAction::Done => Outcome {
                state: TransferState::Done,
                error: None,
            },
            FileAction::Rejected => Outcome {
                state: TransferState::Rejected,
                error: None,
            },
            FileAction::Cancelled => Outcome {
                state: TransferState::Cancelled,
                error: None,
            },
            FileAction::Failed(reason) => Outcome {
                state: TransferState::Failed,
                error: Some(format!("the recipient failed: {reason}")),
            },
            _ => return true,
        };
        match t.recipients.get_mut(&user) {
            Some(slot @ None) => *slot = Some(outcome),
            _ => return true, // not a recipient, or answered already
        }
        let json = encode_recipients(&t.recipients);
        if let Err(e) = self.store.set_transfer_recipients(&key.0, &json) {
            tracing::warn!(transfer = %key.0, error = %e, "cannot store a recipient's answer");
        }
        let answers: Vec<Outcome> = t.recipients.values().flatten().cloned().collect();
        if answers.len() < t.recipients.len() {
            self.emit_transfer(key);
            return true;
        }
        let done = answers.iter().any(|o| o.state == TransferState::Done);
        if done {
            t.record.bytes_done = t.offer.size;
            self.set_transfer_state(key, TransferState::Done, None);
        } else {
            let first = answers[0].clone();
            self.set_transfer_state(key, first.state, first.error);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_round_trip_and_skip_garbage() {
        let a = UserId([1; 20]);
        let b = UserId([2; 20]);
        let mut map = BTreeMap::new();
        map.insert(a, None);
        map.insert(
            b,
            Some(Outcome {
                state: TransferState::Rejected,
                error: None,
            }),
        );
        assert_eq!(decode_recipients(&encode_recipients(&map)), map);
        assert!(decode_recipients("not json").is_empty());
        assert!(decode_recipients(r#"{"nope": null}"#).is_empty());
    }

    #[test]
    fn uploads_send_the_manifest_first_then_missing_chunks() {
        let mut up = Upload {
            done: ChunkSet::new(4),
            in_flight: BTreeSet::new(),
            hold_until: 0,
            streak: 0,
            bytes: 0,
        };
        assert_eq!(up.next(), Some(None));
        up.in_flight.insert(None);
        assert_eq!(up.next(), Some(Some(0)));
        up.done.insert(up.bit(None));
        up.done.insert(0);
        up.in_flight.clear();
        up.in_flight.insert(Some(1));
        assert_eq!(up.next(), Some(Some(2)));
        up.done.insert(1);
        up.done.insert(2);
        assert!(up.complete());
        assert_eq!(up.next(), None);
    }
}
