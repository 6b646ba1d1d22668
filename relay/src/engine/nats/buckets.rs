//! Devices, revocations and site epochs in JetStream KV buckets.
//!
//! Reads of a single key may be answered by a follower and be a little
//! behind; every write that must not go backwards is therefore a
//! compare-and-set on the revision it read, retried on a conflict, so a
//! stale read costs a retry, never a lost update.

use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use async_nats::jetstream::{self, stream};
use async_nats::Client;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tincan_core::lease::LeaseState;
use tincan_core::site::SiteId;
use tincan_core::{DeviceId, DeviceRevocation, OrgId, Revocations};

use super::scan::{scan, ScanMode};
use super::{cert_for, encode, hex, id_hex, NatsError};
use futures_util::StreamExt;

use crate::cluster::ClusterNode;
use crate::engine::{DeviceFeed, RevocationEvent, RevocationFeed};
use crate::store::StoredDevice;

/// Tries of one compare-and-set before the write is reported failed
/// (each conflict means another node wrote the key in between).
const CAS_TRIES: usize = 16;

/// Most keys one listing reads (far above any real organisation).
const LIST_LIMIT: usize = 10_000_000;

/// Keys that never age out.
const FOREVER: Duration = Duration::ZERO;

/// A relay node's heartbeat is dropped this long after it was written
/// (the listing only shows nodes heard from in the last seconds).
const NODE_FORGOTTEN: Duration = Duration::from_secs(3600);

/// A device as the `tincan_devices` bucket holds it.
#[derive(Serialize, Deserialize)]
struct DeviceRecord {
    cert: Vec<u8>,
    name: String,
    last_seen_ms: u64,
}

/// The three buckets.
#[derive(Debug)]
pub(super) struct Buckets {
    devices: Bucket,
    revocations: Bucket,
    epochs: Bucket,
    nodes: Bucket,
    leases: Bucket,
}

/// One bucket and the stream under it (listings read the stream).
#[derive(Debug)]
struct Bucket {
    name: &'static str,
    kv: kv::Store,
    stream: stream::Stream,
}

impl Bucket {
    async fn open(
        js: &jetstream::Context,
        name: &'static str,
        replicas: usize,
        max_age: Duration,
    ) -> Result<Bucket, NatsError> {
        let kv = js
            .create_or_update_key_value(kv::Config {
                bucket: name.into(),
                history: 1,
                num_replicas: replicas,
                storage: stream::StorageType::File,
                max_age,
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::setup(name, e))?;
        let stream = js
            .get_stream(format!("KV_{name}"))
            .await
            .map_err(|e| NatsError::setup(name, e))?;
        Ok(Bucket { name, kv, stream })
    }

    /// The live value of `key` and its revision (0: none).
    async fn read(&self, key: &str) -> Result<(Option<Bytes>, u64), NatsError> {
        let entry = self
            .kv
            .entry(key)
            .await
            .map_err(|e| NatsError::request("read a key", e))?;
        Ok(match entry {
            Some(e) if e.operation == Operation::Put => (Some(e.value), e.revision),
            Some(e) => (None, e.revision),
            None => (None, 0),
        })
    }

    /// Writes `f(current value)` if the key is still at the revision read;
    /// `None` from `f` leaves the key alone. Retries on a conflict.
    async fn cas(
        &self,
        key: &str,
        f: impl Fn(Option<&Bytes>) -> Option<Bytes>,
    ) -> Result<(), NatsError> {
        for _ in 0..CAS_TRIES {
            let (value, revision) = self.read(key).await?;
            let Some(next) = f(value.as_ref()) else {
                return Ok(());
            };
            let written = if value.is_none() {
                self.kv.create(key, next).await.map(|_| ()).map_err(|e| {
                    (
                        e.kind() == kv::CreateErrorKind::AlreadyExists,
                        e.to_string(),
                    )
                })
            } else {
                self.kv
                    .update(key, next, revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        (
                            e.kind() == kv::UpdateErrorKind::WrongLastRevision,
                            e.to_string(),
                        )
                    })
            };
            match written {
                Ok(()) => return Ok(()),
                Err((true, _)) => continue,
                Err((false, message)) => {
                    return Err(NatsError::Request {
                        op: "compare-and-set a key",
                        message,
                    })
                }
            }
        }
        Err(NatsError::Request {
            op: "compare-and-set a key",
            message: format!("{}: still conflicting after {CAS_TRIES} tries", self.name),
        })
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<(), NatsError> {
        self.kv
            .put(key, value)
            .await
            .map(|_| ())
            .map_err(|e| NatsError::request("write a key", e))
    }

    async fn delete(&self, key: &str) -> Result<(), NatsError> {
        self.kv
            .purge(key)
            .await
            .map_err(|e| NatsError::request("delete a key", e))
    }

    /// Every value written from now on (and those stored already, first),
    /// decoded by `decode` from its key and bytes, until the watch breaks;
    /// `what` names the values in the log.
    async fn watch<T: Send + 'static>(
        &self,
        what: &'static str,
        decode: fn(&str, &[u8]) -> Option<T>,
    ) -> Result<futures_util::stream::BoxStream<'static, T>, NatsError> {
        let watch = self
            .kv
            .watch_with_history(">")
            .await
            .map_err(|e| NatsError::request("watch a bucket", e))?;
        let feed = watch.filter_map(move |entry| async move {
            let entry = match entry {
                Ok(entry) if entry.operation == Operation::Put => entry,
                Ok(_) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, what, "watch failed");
                    return None;
                }
            };
            let value = decode(&entry.key, &entry.value);
            if value.is_none() {
                tracing::warn!(key = %entry.key, what, "skipping a corrupt entry");
            }
            value
        });
        Ok(Box::pin(feed))
    }

    /// Every live (key, value) under `prefix` (a key prefix ending in `.`,
    /// or empty for all).
    async fn list(&self, client: &Client, prefix: &str) -> Result<Vec<(String, Bytes)>, NatsError> {
        let head = format!("$KV.{}.", self.name);
        let found = scan(
            client,
            &self.stream,
            vec![format!("{head}{prefix}>")],
            ScanMode {
                last_per_subject: true,
                headers_only: false,
            },
            LIST_LIMIT,
        )
        .await?;
        Ok(found
            .into_iter()
            .filter(|m| m.headers.get("KV-Operation").is_none())
            .filter_map(|m| Some((m.subject.strip_prefix(&head)?.to_string(), m.payload)))
            .collect())
    }
}

/// A device from its key (`<org>.<device>`) and value.
fn device_entry(key: &str, value: &[u8]) -> Option<StoredDevice> {
    let (org, device) = key.split_once('.')?;
    let org = id_hex(org)?;
    let device = id_hex(device)?;
    let record = postcard::from_bytes::<DeviceRecord>(value).ok()?;
    let cert = cert_for(&device, &record.cert)?;
    Some(StoredDevice {
        org: OrgId(org),
        cert,
        name: record.name,
        last_seen_ms: record.last_seen_ms,
    })
}

/// A revocation from its key (`list.<org>` or `device.<org>.<device>`)
/// and value; lists must verify.
fn revocation_entry(key: &str, value: &[u8]) -> Option<RevocationEvent> {
    if key.starts_with("list.") {
        let list = Revocations::from_bytes(value).ok()?;
        list.verify().ok()?;
        return Some(RevocationEvent::List(list));
    }
    let (org, revocation) = device_revocation_entry(key, value)?;
    revocation.verify().ok()?;
    Some(RevocationEvent::Device(org, revocation))
}

/// A device revocation from its key (`device.<org>.<device>`) and value.
fn device_revocation_entry(key: &str, value: &[u8]) -> Option<(OrgId, DeviceRevocation)> {
    let (org, _) = key.strip_prefix("device.")?.split_once('.')?;
    Some((OrgId(id_hex(org)?), DeviceRevocation::from_bytes(value)?))
}

/// `<org>.<device>` and the like.
fn key2(a: &[u8], b: &[u8]) -> String {
    format!("{}.{}", hex(a), hex(b))
}

impl Buckets {
    /// Creates or opens the buckets with `replicas` copies each.
    pub(super) async fn open(
        js: &jetstream::Context,
        replicas: usize,
    ) -> Result<Buckets, NatsError> {
        Ok(Buckets {
            devices: Bucket::open(js, "tincan_devices", replicas, FOREVER).await?,
            revocations: Bucket::open(js, "tincan_revocations", replicas, FOREVER).await?,
            epochs: Bucket::open(js, "tincan_epochs", replicas, FOREVER).await?,
            nodes: Bucket::open(js, "tincan_nodes", replicas, NODE_FORGOTTEN).await?,
            leases: Bucket::open(js, "tincan_leases", replicas, FOREVER).await?,
        })
    }

    /// Stores a device; a newer sighting already stored is kept.
    pub(super) async fn upsert_device(&self, device: &StoredDevice) -> Result<(), NatsError> {
        let key = key2(&device.org.0, &device.cert.device_id().0);
        self.devices
            .cas(&key, |old| {
                let seen_before = old
                    .and_then(|b| postcard::from_bytes::<DeviceRecord>(b).ok())
                    .map_or(0, |r| r.last_seen_ms);
                Some(encode(&DeviceRecord {
                    cert: device.cert.to_bytes(),
                    name: device.name.clone(),
                    last_seen_ms: seen_before.max(device.last_seen_ms),
                }))
            })
            .await
    }

    /// Every stored device (undecodable values skipped with a warning).
    pub(super) async fn devices(&self, client: &Client) -> Result<Vec<StoredDevice>, NatsError> {
        let mut out = Vec::new();
        for (key, value) in self.devices.list(client, "").await? {
            match device_entry(&key, &value) {
                Some(device) => out.push(device),
                None => tracing::warn!(%key, "skipping a corrupt device entry"),
            }
        }
        Ok(out)
    }

    /// Every device written from now on, by any node (and those stored
    /// already, first), until the watch breaks.
    pub(super) async fn watch_devices(&self) -> Result<DeviceFeed, NatsError> {
        self.devices.watch("device", device_entry).await
    }

    /// Forgets one device.
    pub(super) async fn remove_device(
        &self,
        org: OrgId,
        device: DeviceId,
    ) -> Result<(), NatsError> {
        self.devices.delete(&key2(&org.0, &device.0)).await
    }

    /// Every revocation written from now on, by any node (and those stored
    /// already, first), until the watch breaks.
    pub(super) async fn watch_revocations(&self) -> Result<RevocationFeed, NatsError> {
        self.revocations.watch("revocation", revocation_entry).await
    }

    /// Stores a device revocation.
    pub(super) async fn put_device_revocation(
        &self,
        org: OrgId,
        revocation: &DeviceRevocation,
    ) -> Result<(), NatsError> {
        let key = format!("device.{}", key2(&org.0, &revocation.device.0));
        self.revocations
            .put(&key, Bytes::from(revocation.to_bytes()))
            .await
    }

    /// Every stored device revocation.
    pub(super) async fn device_revocations(
        &self,
        client: &Client,
    ) -> Result<Vec<(OrgId, DeviceRevocation)>, NatsError> {
        let mut out = Vec::new();
        for (key, value) in self.revocations.list(client, "device.").await? {
            match device_revocation_entry(&key, &value) {
                Some(entry) => out.push(entry),
                None => tracing::warn!(%key, "skipping a corrupt device revocation"),
            }
        }
        Ok(out)
    }

    /// Stores `list` as its organisation's list unless a higher serial is
    /// stored already.
    pub(super) async fn put_revocations(&self, list: &Revocations) -> Result<(), NatsError> {
        let key = format!("list.{}", hex(&list.org_id().0));
        self.revocations
            .cas(&key, |old| {
                let stored = old.and_then(|b| Revocations::from_bytes(b).ok());
                match stored {
                    Some(s) if s.serial > list.serial => None,
                    _ => Some(Bytes::from(list.to_bytes())),
                }
            })
            .await
    }

    /// Every stored revocation list that verifies.
    pub(super) async fn revocations(&self, client: &Client) -> Result<Vec<Revocations>, NatsError> {
        let mut out = Vec::new();
        for (key, value) in self.revocations.list(client, "list.").await? {
            match Revocations::from_bytes(&value) {
                Ok(list) if list.verify().is_ok() => out.push(list),
                _ => tracing::warn!(%key, "skipping a corrupt revocation list"),
            }
        }
        Ok(out)
    }

    /// Raises a site's stored epoch to `epoch` (never lowers it).
    pub(super) async fn put_epoch(
        &self,
        org: OrgId,
        site: SiteId,
        epoch: u64,
    ) -> Result<(), NatsError> {
        self.epochs
            .cas(&key2(&org.0, &site.0), |old| {
                let stored = old.and_then(|b| postcard::from_bytes::<u64>(b).ok());
                match stored {
                    Some(s) if s >= epoch => None,
                    _ => Some(encode(&epoch)),
                }
            })
            .await
    }

    /// Forgets a site's epoch.
    pub(super) async fn delete_epoch(&self, org: OrgId, site: SiteId) -> Result<(), NatsError> {
        self.epochs.delete(&key2(&org.0, &site.0)).await
    }

    /// Every stored site epoch.
    pub(super) async fn epochs(
        &self,
        client: &Client,
    ) -> Result<Vec<(OrgId, SiteId, u64)>, NatsError> {
        let mut out = Vec::new();
        for (key, value) in self.epochs.list(client, "").await? {
            let decoded = key.split_once('.').and_then(|(org, site)| {
                let org = id_hex(org)?;
                let site = id_hex(site)?;
                let epoch = postcard::from_bytes::<u64>(&value).ok()?;
                Some((OrgId(org), SiteId(site), epoch))
            });
            match decoded {
                Some(e) => out.push(e),
                None => tracing::warn!(%key, "skipping a corrupt epoch"),
            }
        }
        Ok(out)
    }

    /// Writes a relay node's heartbeat.
    pub(super) async fn beat(&self, node: &ClusterNode) -> Result<(), NatsError> {
        self.nodes.put(&node.node_id, encode(node)).await
    }

    /// Every relay node's last heartbeat.
    pub(super) async fn nodes(&self, client: &Client) -> Result<Vec<ClusterNode>, NatsError> {
        let mut out = Vec::new();
        for (key, value) in self.nodes.list(client, "").await? {
            match postcard::from_bytes::<ClusterNode>(&value) {
                Ok(node) if node.node_id == key => out.push(node),
                _ => tracing::warn!(%key, "skipping a corrupt node heartbeat"),
            }
        }
        Ok(out)
    }

    /// Decides a change of one site's lease with `decide` (core's rule, on
    /// the state stored now) and writes it by compare-and-set on the
    /// revision read, so two nodes deciding at once cannot both win: the
    /// loser decides again on the winner's state. Returns what `decide`
    /// said about the state that was written (or that refused).
    pub(super) async fn change_lease<T: Clone + Send>(
        &self,
        org: OrgId,
        site: SiteId,
        decide: impl Fn(&LeaseState) -> (Option<LeaseState>, T) + Send + Sync,
    ) -> Result<T, NatsError> {
        let outcome = std::sync::Mutex::new(None);
        self.leases
            .cas(&key2(&org.0, &site.0), |old| {
                let state = old
                    .and_then(|b| postcard::from_bytes::<LeaseState>(b).ok())
                    .unwrap_or_default();
                let (next, said) = decide(&state);
                if let Ok(mut o) = outcome.lock() {
                    *o = Some(said);
                }
                next.map(|n| encode(&n))
            })
            .await?;
        outcome
            .into_inner()
            .ok()
            .flatten()
            .ok_or_else(|| NatsError::request("decide a lease", "no decision"))
    }
}
