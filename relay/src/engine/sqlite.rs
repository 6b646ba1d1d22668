//! The single-host engine: [`RelayStore`] over the relay's SQLite store,
//! each call run on the blocking pool with the one connection.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tincan_core::site::SiteId;
use tincan_core::{DeviceId, DeviceRevocation, OrgId, Revocations};

use super::{EngineError, RelayStore};
use crate::cluster::{ClusterNode, ALIVE_FOR_MS};
use crate::store::{ExpiredMail, MailQuota, MailRow, NewMail, PutOutcome, Store, StoredDevice};

/// A relay on one host: `HOME/relay.db`.
#[derive(Clone, Debug)]
pub struct SqliteEngine {
    store: Store,
    /// The one node of this cluster of one, as it last said it was alive.
    me: Arc<Mutex<Option<ClusterNode>>>,
}

impl SqliteEngine {
    /// Wraps an open store.
    pub fn new(store: Store) -> Self {
        SqliteEngine {
            store,
            me: Arc::new(Mutex::new(None)),
        }
    }

    /// The store itself (blobs and metrics still read it directly).
    pub fn store(&self) -> &Store {
        &self.store
    }
}

#[async_trait]
impl RelayStore for SqliteEngine {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn put_mail(
        &self,
        mail: NewMail,
        quota: MailQuota,
    ) -> Result<Vec<(DeviceId, PutOutcome)>, EngineError> {
        Ok(self.store.run(move |db| db.put_mail(&mail, &quota)).await?)
    }

    async fn mail_for_devices(
        &self,
        devices: Vec<DeviceId>,
        limit: usize,
    ) -> Result<Vec<MailRow>, EngineError> {
        Ok(self
            .store
            .run(move |db| db.mail_for_devices(&devices, limit))
            .await?)
    }

    async fn delete_mail(&self, ids: Vec<i64>) -> Result<(), EngineError> {
        Ok(self.store.run(move |db| db.delete_mail(&ids)).await?)
    }

    async fn replace_with_receipt(
        &self,
        id: i64,
        receipt: NewMail,
        quota: MailQuota,
    ) -> Result<Vec<(DeviceId, PutOutcome)>, EngineError> {
        Ok(self
            .store
            .run(move |db| db.replace_with_receipt(id, &receipt, &quota))
            .await?)
    }

    async fn devices_with_mail(&self) -> Result<Vec<(OrgId, DeviceId)>, EngineError> {
        Ok(self.store.run(|db| db.devices_with_mail()).await?)
    }

    async fn mail_counts(&self) -> Result<Vec<(OrgId, u64)>, EngineError> {
        Ok(self.store.run(|db| db.mail_counts()).await?)
    }

    async fn expire(&self, now_ms: u64) -> Result<Vec<ExpiredMail>, EngineError> {
        Ok(self.store.run(move |db| db.expire(now_ms)).await?)
    }

    async fn upsert_devices(&self, devices: Vec<StoredDevice>) -> Result<(), EngineError> {
        Ok(self
            .store
            .run(move |db| devices.iter().try_for_each(|d| db.upsert_device(d)))
            .await?)
    }

    async fn devices(&self) -> Result<Vec<StoredDevice>, EngineError> {
        Ok(self.store.run(|db| db.devices()).await?)
    }

    async fn remove_devices(&self, org: OrgId, devices: Vec<DeviceId>) -> Result<(), EngineError> {
        Ok(self
            .store
            .run(move |db| db.remove_devices(org, &devices))
            .await?)
    }

    async fn put_device_revocation(
        &self,
        org: OrgId,
        revocation: DeviceRevocation,
    ) -> Result<(), EngineError> {
        Ok(self
            .store
            .run(move |db| db.put_device_revocation(org, &revocation))
            .await?)
    }

    async fn device_revocations(&self) -> Result<Vec<(OrgId, DeviceRevocation)>, EngineError> {
        Ok(self.store.run(|db| db.device_revocations()).await?)
    }

    async fn put_revocations(&self, list: Revocations) -> Result<(), EngineError> {
        Ok(self.store.run(move |db| db.put_revocations(&list)).await?)
    }

    async fn revocations(&self) -> Result<Vec<Revocations>, EngineError> {
        Ok(self.store.run(|db| db.revocations()).await?)
    }

    async fn put_epoch(&self, org: OrgId, site: SiteId, epoch: u64) -> Result<(), EngineError> {
        Ok(self
            .store
            .run(move |db| db.put_epoch(org, site, epoch))
            .await?)
    }

    async fn delete_epoch(&self, org: OrgId, site: SiteId) -> Result<(), EngineError> {
        Ok(self.store.run(move |db| db.delete_epoch(org, site)).await?)
    }

    async fn epochs(&self) -> Result<Vec<(OrgId, SiteId, u64)>, EngineError> {
        Ok(self.store.run(|db| db.epochs()).await?)
    }

    async fn watch_revocations(&self) -> Result<Option<super::RevocationFeed>, EngineError> {
        Ok(None)
    }

    async fn watch_devices(&self) -> Result<Option<super::DeviceFeed>, EngineError> {
        Ok(None)
    }

    async fn beat(&self, node: ClusterNode) -> Result<(), EngineError> {
        *self.me.lock().unwrap_or_else(|e| e.into_inner()) = Some(node);
        Ok(())
    }

    async fn cluster(&self, now_ms: u64) -> Result<Vec<ClusterNode>, EngineError> {
        let me = self.me.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(me
            .filter(|n| n.seen_ms.saturating_add(ALIVE_FOR_MS) >= now_ms)
            .into_iter()
            .collect())
    }
}
