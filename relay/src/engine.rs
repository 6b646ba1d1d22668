//! What the relay keeps, behind one trait with two engines.
//!
//! A relay on one host keeps its state in SQLite ([`SqliteEngine`], the
//! `HOME/relay.db` of [`crate::store`]). The nodes of a relay cluster
//! share it through NATS JetStream ([`NatsEngine`]): replicated streams
//! and key-value buckets that every node reads and writes, so a node that
//! dies takes no mail and no device with it. The relay's logic (routing,
//! custody, flushing, housekeeping) speaks only [`RelayStore`]; one test
//! suite (`relay/tests/engine_suite.rs`) runs against both engines.
//!
//! # Invariants every engine keeps
//! - A write that returned is durable: the relay answers `Custody` right
//!   after [`RelayStore::put_mail`] returns.
//! - Mail is deduplicated on (device, message id, kind, origin) while it
//!   is held, so a sender retrying after a lost answer stores no second
//!   copy.
//! - Replacing a delivered item by its receipt never loses both: at worst
//!   the item is delivered twice (devices deduplicate).
//! - Organisations are apart: every key names its organisation.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tincan_core::lease::{LeaseRefusal, LeaseState};
use tincan_core::site::SiteId;
use tincan_core::{DeviceId, DeviceRevocation, OrgId, Revocations};

use crate::cluster::ClusterNode;
use crate::store::{ExpiredMail, MailQuota, MailRow, NewMail, PutOutcome, Store, StoredDevice};

mod nats;
mod sqlite;

pub use nats::{NatsEngine, NatsEngineConfig, NatsError};
pub use sqlite::SqliteEngine;

/// How long `run --engine` waits between tries while no JetStream server
/// answers (first and longest).
const CONNECT_RETRY_FIRST: Duration = Duration::from_millis(500);
const CONNECT_RETRY_MAX: Duration = Duration::from_secs(5);

/// The engine `config` asks for: the cluster's NATS JetStream (retried
/// until it answers: a relay node started before its engine waits for
/// it instead of exiting), else this host's SQLite `store`.
pub async fn open(config: Option<&NatsEngineConfig>, store: &Store) -> Arc<dyn RelayStore> {
    let Some(config) = config else {
        return Arc::new(SqliteEngine::new(store.clone()));
    };
    let mut wait = CONNECT_RETRY_FIRST;
    loop {
        match NatsEngine::connect(config).await {
            Ok(engine) => {
                tracing::info!(urls = %config.urls.join(","), replicas = config.replicas, "engine: NATS JetStream");
                return Arc::new(engine);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "engine not ready");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(CONNECT_RETRY_MAX);
            }
        }
    }
}

/// Gateway leases decided by the engine for every relay node of a
/// cluster (a single host decides them in its registry's table).
///
/// Times are Unix ms (each node's wall clock: the nodes of a cluster must
/// keep their clocks in step, as NTP does, since a lease granted by one
/// node may be renewed or taken over at another).
#[async_trait]
pub trait SharedLeases: Send + Sync {
    /// A claim (first claim or renewal) by `holder` of `org`'s `site` at
    /// `epoch`, decided by core's rule on the state every node sees.
    async fn claim_lease(
        &self,
        org: OrgId,
        site: SiteId,
        holder: DeviceId,
        epoch: u64,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<Result<LeaseState, LeaseRefusal>, EngineError>;

    /// Ends `holder`'s lease of `epoch` early; whether it held it.
    async fn release_lease(
        &self,
        org: OrgId,
        site: SiteId,
        holder: DeviceId,
        epoch: u64,
        now_ms: u64,
    ) -> Result<bool, EngineError>;
}

/// Answers a forwarded request (the bytes of a [`crate::hop::Forward`])
/// with the bytes of the reply.
pub type ForwardHandler =
    Arc<dyn Fn(Vec<u8>) -> futures_util::future::BoxFuture<'static, Vec<u8>> + Send + Sync>;

/// Requests between the relay nodes of a cluster: a node hands another
/// the devices it cannot reach itself (their gateway or connection is at
/// the other node).
#[async_trait]
pub trait ClusterLink: Send + Sync {
    /// Sends `request` to relay node `node`; `None` when no such node
    /// listens (it died) or it did not answer within `timeout`.
    async fn forward(
        &self,
        node: &str,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, EngineError>;

    /// Serves the requests other nodes send to `node` with `handler`, each
    /// in its own task, until the connection to the engine ends.
    async fn serve_forwards(&self, node: &str, handler: ForwardHandler) -> Result<(), EngineError>;
}

/// A revocation some relay node of the cluster stored.
#[derive(Clone, Debug)]
pub enum RevocationEvent {
    /// An organisation's revocation list.
    List(Revocations),
    /// A device removed by its user.
    Device(OrgId, DeviceRevocation),
}

/// A feed of revocations stored anywhere in the cluster.
pub type RevocationFeed = futures_util::stream::BoxStream<'static, RevocationEvent>;

/// A feed of devices written anywhere in the cluster.
pub type DeviceFeed = futures_util::stream::BoxStream<'static, StoredDevice>;

/// What a starting relay loads into its registry.
pub type Restored = (
    Vec<StoredDevice>,
    Vec<Revocations>,
    Vec<(OrgId, SiteId, u64)>,
    Vec<(OrgId, DeviceRevocation)>,
);

/// Reads devices, revocation lists, epochs and device revocations.
pub async fn restore(engine: &dyn RelayStore) -> Result<Restored, EngineError> {
    Ok((
        engine.devices().await?,
        engine.revocations().await?,
        engine.epochs().await?,
        engine.device_revocations().await?,
    ))
}

/// Why an engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The single-host SQLite store failed.
    #[error(transparent)]
    Sqlite(#[from] crate::store::StoreError),
    /// The NATS JetStream cluster failed or did not answer.
    #[error(transparent)]
    Nats(#[from] NatsError),
}

/// The relay's durable state: mailboxes, devices, revocations, epochs.
///
/// Methods take owned values so that an engine may move them to another
/// thread (SQLite's blocking pool) or onto the network (NATS).
#[async_trait]
pub trait RelayStore: Send + Sync + std::fmt::Debug {
    /// `"sqlite"` or `"nats"`, for `status --json`.
    fn name(&self) -> &'static str;

    /// Stores `mail` for each of its devices, respecting `quota`; one
    /// outcome per device.
    async fn put_mail(
        &self,
        mail: NewMail,
        quota: MailQuota,
    ) -> Result<Vec<(DeviceId, PutOutcome)>, EngineError>;

    /// Up to `limit` items for any of `devices`, oldest first.
    async fn mail_for_devices(
        &self,
        devices: Vec<DeviceId>,
        limit: usize,
    ) -> Result<Vec<MailRow>, EngineError>;

    /// Deletes mail rows by id (ids already gone are no error).
    async fn delete_mail(&self, ids: Vec<i64>) -> Result<(), EngineError>;

    /// Deletes the delivered row `id` and stores the receipt that travels
    /// back to the sender; neither is lost by a crash in between.
    async fn replace_with_receipt(
        &self,
        id: i64,
        receipt: NewMail,
        quota: MailQuota,
    ) -> Result<Vec<(DeviceId, PutOutcome)>, EngineError>;

    /// Every (organisation, device) with stored mail.
    async fn devices_with_mail(&self) -> Result<Vec<(OrgId, DeviceId)>, EngineError>;

    /// Stored items per organisation.
    async fn mail_counts(&self) -> Result<Vec<(OrgId, u64)>, EngineError>;

    /// Deletes mail whose TTL passed at `now_ms`; returns what went.
    async fn expire(&self, now_ms: u64) -> Result<Vec<ExpiredMail>, EngineError>;

    /// Stores devices (newer `last_seen_ms` wins).
    async fn upsert_devices(&self, devices: Vec<StoredDevice>) -> Result<(), EngineError>;

    /// Every stored device.
    async fn devices(&self) -> Result<Vec<StoredDevice>, EngineError>;

    /// Forgets devices of `org` together with their mail.
    async fn remove_devices(&self, org: OrgId, devices: Vec<DeviceId>) -> Result<(), EngineError>;

    /// Stores a device revocation and forgets the device and its mail.
    async fn put_device_revocation(
        &self,
        org: OrgId,
        revocation: DeviceRevocation,
    ) -> Result<(), EngineError>;

    /// Every stored device revocation.
    async fn device_revocations(&self) -> Result<Vec<(OrgId, DeviceRevocation)>, EngineError>;

    /// Stores `list` as its organisation's current revocation list.
    async fn put_revocations(&self, list: Revocations) -> Result<(), EngineError>;

    /// Every stored revocation list (lists that do not verify skipped).
    async fn revocations(&self) -> Result<Vec<Revocations>, EngineError>;

    /// Records the newest epoch of a site (never lowers it).
    async fn put_epoch(&self, org: OrgId, site: SiteId, epoch: u64) -> Result<(), EngineError>;

    /// Forgets the epoch of a site the lease table evicted.
    async fn delete_epoch(&self, org: OrgId, site: SiteId) -> Result<(), EngineError>;

    /// Every stored site epoch.
    async fn epochs(&self) -> Result<Vec<(OrgId, SiteId, u64)>, EngineError>;

    /// Devices that other relay nodes of the cluster write, as they come
    /// (those stored already first); `None` on a single host, where no
    /// one else writes.
    async fn watch_devices(&self) -> Result<Option<DeviceFeed>, EngineError>;

    /// Revocations that relay nodes of the cluster store, as they come
    /// (those stored already first); `None` on a single host.
    async fn watch_revocations(&self) -> Result<Option<RevocationFeed>, EngineError>;

    /// Requests to the other nodes of the cluster; `None` on a single host.
    fn cluster_link(&self) -> Option<&dyn ClusterLink> {
        None
    }

    /// The cluster's shared leases; `None` on a single host.
    fn shared_leases(&self) -> Option<&dyn SharedLeases> {
        None
    }

    /// Says that relay node `node` is alive (sent every
    /// [`BEAT_EVERY`](crate::cluster::BEAT_EVERY)).
    async fn beat(&self, node: ClusterNode) -> Result<(), EngineError>;

    /// The relay nodes heard from within
    /// [`ALIVE_FOR_MS`](crate::cluster::ALIVE_FOR_MS) of `now_ms`, by node id.
    async fn cluster(&self, now_ms: u64) -> Result<Vec<ClusterNode>, EngineError>;
}
