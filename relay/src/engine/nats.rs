//! The cluster engine: the relay's state in NATS JetStream, shared by
//! every relay node of a cluster.
//!
//! # Layout
//! - Mail: the stream `TINCAN_MAIL`, one subject per held item,
//!   `tincan.mail.<org>.<device>.<key>` (`key` a digest of message id,
//!   kind and origin), at most one message per subject. A publish expects
//!   the subject to be empty, so a retried item is a `Duplicate` decided by
//!   the stream itself, whichever relay node took it. The item's facts
//!   travel in headers, so quota checks read headers only.
//! - Devices, revocation lists, device revocations and site epochs: KV
//!   buckets (`tincan_devices`, `tincan_revocations`, `tincan_epochs`).
//!   Writes that must not go backwards (a device's last sighting, an
//!   epoch) are compare-and-set loops on the key's revision.
//!
//! Every stream and bucket has `replicas` copies (3 in a real cluster).
//! The servers must run with `sync_interval: always`: with the default
//! lazy fsync an acknowledged write can be lost (Jepsen, NATS 2.12.1).
//!
//! # Differences from the SQLite engine
//! - An item sent to several devices is stored once per device (SQLite
//!   shares one body); the organisation's quota counts every copy.
//! - The organisation's stored bytes come from a scan that each relay
//!   node repeats at most every [`ORG_BYTES_FRESH`]; in between, other
//!   nodes' writes are not counted, so a cluster may overshoot an
//!   organisation's quota by what it stores in that time.
//! - An item also carries a server-side TTL an hour past its expiry, so
//!   mail expires even if no relay node runs housekeeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use async_nats::Client;
use async_trait::async_trait;
use bytes::Bytes;
use data_encoding::HEXLOWER;
use tincan_core::lease::{LeaseRefusal, LeaseState};
use tincan_core::site::SiteId;
use tincan_core::{DeviceCert, DeviceId, DeviceRevocation, OrgId, Revocations};

use super::{ClusterLink, EngineError, ForwardHandler, RelayStore, SharedLeases};
use crate::cluster::{ClusterNode, ALIVE_FOR_MS};
use crate::store::{ExpiredMail, MailQuota, MailRow, NewMail, PutOutcome, StoredDevice};

mod buckets;
mod mail;
mod scan;

/// How long a scanned organisation byte count is trusted.
pub const ORG_BYTES_FRESH: Duration = Duration::from_secs(5);

/// Longest wait for one JetStream request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the NATS engine failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// No server of the cluster could be reached.
    #[error("cannot connect to the NATS engine at {urls}: {message}")]
    Connect {
        /// The addresses tried.
        urls: String,
        /// What the client reported.
        message: String,
    },
    /// A stream or bucket could not be created or opened.
    #[error("cannot set up JetStream {what}: {message}")]
    Setup {
        /// The stream or bucket.
        what: String,
        /// What the server reported.
        message: String,
    },
    /// A request failed.
    #[error("JetStream {op} failed: {message}")]
    Request {
        /// What was being done.
        op: &'static str,
        /// What the client or server reported.
        message: String,
    },
    /// No answer in time.
    #[error("JetStream did not answer ({op})")]
    Timeout {
        /// What was being done.
        op: &'static str,
    },
}

impl NatsError {
    /// A failed request, with the client's or server's words.
    pub(crate) fn request(op: &'static str, e: impl std::fmt::Display) -> NatsError {
        NatsError::Request {
            op,
            message: e.to_string(),
        }
    }

    fn setup(what: &str, e: impl std::fmt::Display) -> NatsError {
        NatsError::Setup {
            what: what.to_string(),
            message: e.to_string(),
        }
    }
}

/// Where the cluster is and how many copies it keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsEngineConfig {
    /// `nats://HOST:PORT` of one or more servers of the cluster.
    pub urls: Vec<String>,
    /// Copies of every stream and bucket (3 in a cluster; 1 for a single
    /// test server).
    pub replicas: usize,
}

/// The relay's state in NATS JetStream.
#[derive(Debug)]
pub struct NatsEngine {
    client: Client,
    js: jetstream::Context,
    mail: stream::Stream,
    buckets: buckets::Buckets,
    /// Organisation bytes as last scanned, and when.
    org_bytes: Mutex<HashMap<OrgId, (Instant, u64)>>,
}

impl NatsEngine {
    /// Connects to the cluster and creates (or opens) the streams and
    /// buckets. Fails at once if no server answers; the relay's `run`
    /// calls this again until one does.
    pub async fn connect(config: &NatsEngineConfig) -> Result<NatsEngine, NatsError> {
        let urls = config.urls.join(",");
        let addrs = config
            .urls
            .iter()
            .map(|u| u.parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| NatsError::Connect {
                urls: urls.clone(),
                message: e.to_string(),
            })?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(REQUEST_TIMEOUT)
            .request_timeout(Some(REQUEST_TIMEOUT))
            .connect(addrs)
            .await
            .map_err(|e| NatsError::Connect {
                urls,
                message: e.to_string(),
            })?;
        let js = jetstream::new(client.clone());
        let mail = js
            .get_or_create_stream(stream::Config {
                name: "TINCAN_MAIL".into(),
                subjects: vec!["tincan.mail.>".into()],
                max_messages_per_subject: 1,
                num_replicas: config.replicas,
                storage: stream::StorageType::File,
                allow_message_ttl: true,
                ..Default::default()
            })
            .await
            .map_err(|e| NatsError::setup("stream TINCAN_MAIL", e))?;
        let buckets = buckets::Buckets::open(&js, config.replicas).await?;
        Ok(NatsEngine {
            client,
            js,
            mail,
            buckets,
            org_bytes: Mutex::new(HashMap::new()),
        })
    }
}

impl NatsEngine {
    /// The server that leads the mail stream's replicas now (its
    /// `server_name`), if the engine runs as a cluster.
    pub async fn mail_leader(&self) -> Result<Option<String>, NatsError> {
        let mut stream = self.mail.clone();
        let info = stream
            .info()
            .await
            .map_err(|e| NatsError::request("read the mail stream's state", e))?;
        Ok(info.cluster.as_ref().and_then(|c| c.leader.clone()))
    }
}

/// Lower-case hex of an id, as keys and subjects spell it.
fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

/// An `N`-byte id from its hex spelling (keys, subjects and headers).
fn id_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    HEXLOWER.decode(s.as_bytes()).ok()?.try_into().ok()
}

#[async_trait]
impl RelayStore for NatsEngine {
    fn name(&self) -> &'static str {
        "nats"
    }

    async fn put_mail(
        &self,
        mail: NewMail,
        quota: MailQuota,
    ) -> Result<Vec<(DeviceId, PutOutcome)>, EngineError> {
        Ok(mail::put(self, &mail, &quota).await?)
    }

    async fn mail_for_devices(
        &self,
        devices: Vec<DeviceId>,
        limit: usize,
    ) -> Result<Vec<MailRow>, EngineError> {
        Ok(mail::for_devices(self, &devices, limit).await?)
    }

    async fn delete_mail(&self, ids: Vec<i64>) -> Result<(), EngineError> {
        Ok(mail::delete(self, &ids).await?)
    }

    async fn replace_with_receipt(
        &self,
        id: i64,
        receipt: NewMail,
        quota: MailQuota,
    ) -> Result<Vec<(DeviceId, PutOutcome)>, EngineError> {
        // The receipt first: a crash in between delivers the item twice
        // (the device drops the copy) instead of losing the receipt.
        let out = mail::put(self, &receipt, &quota).await?;
        mail::delete(self, &[id]).await?;
        Ok(out)
    }

    async fn devices_with_mail(&self) -> Result<Vec<(OrgId, DeviceId)>, EngineError> {
        Ok(mail::holders(self)
            .await?
            .into_iter()
            .map(|(org, device, _)| (org, device))
            .collect())
    }

    async fn mail_counts(&self) -> Result<Vec<(OrgId, u64)>, EngineError> {
        let mut counts: HashMap<OrgId, u64> = HashMap::new();
        for (org, _, n) in mail::holders(self).await? {
            *counts.entry(org).or_default() += n;
        }
        let mut out: Vec<_> = counts.into_iter().collect();
        out.sort();
        Ok(out)
    }

    async fn expire(&self, now_ms: u64) -> Result<Vec<ExpiredMail>, EngineError> {
        Ok(mail::expire(self, now_ms).await?)
    }

    async fn upsert_devices(&self, devices: Vec<StoredDevice>) -> Result<(), EngineError> {
        for device in devices {
            self.buckets.upsert_device(&device).await?;
        }
        Ok(())
    }

    async fn devices(&self) -> Result<Vec<StoredDevice>, EngineError> {
        Ok(self.buckets.devices(&self.client).await?)
    }

    async fn remove_devices(&self, org: OrgId, devices: Vec<DeviceId>) -> Result<(), EngineError> {
        for device in devices {
            self.buckets.remove_device(org, device).await?;
            mail::purge_device(self, org, device).await?;
        }
        Ok(())
    }

    async fn put_device_revocation(
        &self,
        org: OrgId,
        revocation: DeviceRevocation,
    ) -> Result<(), EngineError> {
        let device = revocation.device;
        self.buckets.put_device_revocation(org, &revocation).await?;
        self.buckets.remove_device(org, device).await?;
        mail::purge_device(self, org, device).await?;
        Ok(())
    }

    async fn device_revocations(&self) -> Result<Vec<(OrgId, DeviceRevocation)>, EngineError> {
        Ok(self.buckets.device_revocations(&self.client).await?)
    }

    async fn put_revocations(&self, list: Revocations) -> Result<(), EngineError> {
        Ok(self.buckets.put_revocations(&list).await?)
    }

    async fn revocations(&self) -> Result<Vec<Revocations>, EngineError> {
        Ok(self.buckets.revocations(&self.client).await?)
    }

    async fn put_epoch(&self, org: OrgId, site: SiteId, epoch: u64) -> Result<(), EngineError> {
        Ok(self.buckets.put_epoch(org, site, epoch).await?)
    }

    async fn delete_epoch(&self, org: OrgId, site: SiteId) -> Result<(), EngineError> {
        Ok(self.buckets.delete_epoch(org, site).await?)
    }

    async fn epochs(&self) -> Result<Vec<(OrgId, SiteId, u64)>, EngineError> {
        Ok(self.buckets.epochs(&self.client).await?)
    }

    fn shared_leases(&self) -> Option<&dyn SharedLeases> {
        Some(self)
    }

    fn cluster_link(&self) -> Option<&dyn ClusterLink> {
        Some(self)
    }

    async fn watch_revocations(&self) -> Result<Option<super::RevocationFeed>, EngineError> {
        Ok(Some(self.buckets.watch_revocations().await?))
    }

    async fn watch_devices(&self) -> Result<Option<super::DeviceFeed>, EngineError> {
        Ok(Some(self.buckets.watch_devices().await?))
    }

    async fn beat(&self, node: ClusterNode) -> Result<(), EngineError> {
        Ok(self.buckets.beat(&node).await?)
    }

    async fn cluster(&self, now_ms: u64) -> Result<Vec<ClusterNode>, EngineError> {
        let mut nodes = self.buckets.nodes(&self.client).await?;
        nodes.retain(|n| n.seen_ms.saturating_add(ALIVE_FOR_MS) >= now_ms);
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        Ok(nodes)
    }
}

/// The subject a relay node serves forwarded requests on.
fn forward_subject(node: &str) -> String {
    format!("tincan.forward.{node}")
}

#[async_trait]
impl ClusterLink for NatsEngine {
    async fn forward(
        &self,
        node: &str,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let sent = self
            .client
            .request(forward_subject(node), Bytes::from(request));
        match tokio::time::timeout(timeout, sent).await {
            Err(_) => Ok(None),
            Ok(Ok(reply)) => Ok(Some(reply.payload.to_vec())),
            Ok(Err(e)) => match e.kind() {
                async_nats::RequestErrorKind::NoResponders
                | async_nats::RequestErrorKind::TimedOut => Ok(None),
                _ => Err(NatsError::request("forward to a relay node", e).into()),
            },
        }
    }

    async fn serve_forwards(&self, node: &str, handler: ForwardHandler) -> Result<(), EngineError> {
        let mut requests = self
            .client
            .subscribe(forward_subject(node))
            .await
            .map_err(|e| NatsError::request("serve forwards", e))?;
        let client = self.client.clone();
        tokio::spawn(async move {
            while let Some(request) = futures_util::StreamExt::next(&mut requests).await {
                let Some(reply) = request.reply else {
                    continue;
                };
                let (client, handler) = (client.clone(), handler.clone());
                tokio::spawn(async move {
                    let answer = handler(request.payload.to_vec()).await;
                    if let Err(e) = client.publish(reply, Bytes::from(answer)).await {
                        tracing::warn!(error = %e, "cannot answer a forwarded route");
                    }
                });
            }
        });
        Ok(())
    }
}

#[async_trait]
impl SharedLeases for NatsEngine {
    async fn claim_lease(
        &self,
        org: OrgId,
        site: SiteId,
        holder: DeviceId,
        epoch: u64,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<Result<LeaseState, LeaseRefusal>, EngineError> {
        Ok(self
            .buckets
            .change_lease(org, site, |state| {
                match state.claim(now_ms, holder, epoch, ttl_ms) {
                    Ok(granted) => (Some(granted), Ok(granted)),
                    Err(refusal) => (None, Err(refusal)),
                }
            })
            .await?)
    }

    async fn release_lease(
        &self,
        org: OrgId,
        site: SiteId,
        holder: DeviceId,
        epoch: u64,
        now_ms: u64,
    ) -> Result<bool, EngineError> {
        Ok(self
            .buckets
            .change_lease(org, site, |state| {
                let released = state.release(now_ms, holder, epoch);
                (released, released.is_some())
            })
            .await?)
    }
}

/// Decodes a stored certificate, checking it names `device`.
fn cert_for(device: &[u8; 20], bytes: &[u8]) -> Option<DeviceCert> {
    DeviceCert::from_bytes(bytes)
        .ok()
        .filter(|cert| &cert.device_id().0 == device)
}

/// `Bytes` of a postcard encoding (encoding owned data cannot fail; an
/// empty value would be refused on read).
fn encode<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(postcard::to_allocvec(value).unwrap_or_default())
}
