//! Sealed file content at the relay, over the real protocol: stored once
//! (a retried upload is acknowledged without a second copy), served to
//! devices of the uploader's organisation only, `Busy` before it is there,
//! refused over the organisation's quota, malformed uploads refused, and
//! durable across a relay restart (SIGKILL).

mod common;

use std::time::Duration;

use common::relay::Relay;
use common::{Client, Org};
use tincan_core::file::{FetchFault, FileRefusal, FileRequest, FileUpload, TransferId};
use tincan_transport::file_stream;

const STEP: Duration = Duration::from_secs(20);
const MIB: usize = 1024 * 1024;

fn sealed(seed: u8) -> Vec<u8> {
    (0..MIB + 16)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

async fn put(
    client: &Client,
    transfer: TransferId,
    item: Option<u64>,
    data: Vec<u8>,
) -> Result<(), FetchFault> {
    let header = FileUpload {
        transfer,
        item,
        len: data.len() as u32,
    };
    file_stream::upload(&client.conn, header, data, STEP).await
}

async fn get(client: &Client, transfer: TransferId, index: u64) -> Result<Vec<u8>, FetchFault> {
    let request = FileRequest::Chunk { transfer, index };
    file_stream::fetch(&client.conn, request, MIB + 16, STEP).await
}

#[tokio::test(flavor = "multi_thread")]
async fn file_items_are_stored_once_per_org_within_its_quota() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    let other = Org::new("Other");
    let orgs = [acme.id(), other.id()];
    let quota = ["--file-quota-bytes", "3MiB"];
    let mut relay = Relay::start(dir.path(), &orgs, &quota);
    let alice = acme.device("alice");
    let bob = acme.device("bob");
    let mallory = other.device("mallory");
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let b = Client::connect(relay.addr, &bob).await.expect("bob");
    let m = Client::connect(relay.addr, &mallory)
        .await
        .expect("mallory");
    let transfer = TransferId([5; 16]);

    // Not uploaded yet: ask again later.
    assert_eq!(
        get(&b, transfer, 0).await,
        Err(FetchFault::Refused(FileRefusal::Busy))
    );
    put(&a, transfer, Some(0), sealed(1)).await.expect("stored");
    put(&a, transfer, Some(0), sealed(1))
        .await
        .expect("a retry is acknowledged");
    assert_eq!(get(&b, transfer, 0).await.expect("served"), sealed(1));
    // Another organisation on the same relay sees nothing of it.
    assert_eq!(
        get(&m, transfer, 0).await,
        Err(FetchFault::Refused(FileRefusal::Busy))
    );
    // A malformed length is refused, nothing stored.
    let bad = FileUpload {
        transfer,
        item: Some(9),
        len: 3,
    };
    assert_eq!(
        file_stream::upload(&a.conn, bad, vec![1, 2, 3], STEP).await,
        Err(FetchFault::Refused(FileRefusal::BadRequest))
    );
    // The quota: two chunks fit in 3 MiB, the third does not (and the
    // other organisation's quota is its own).
    put(&a, transfer, Some(1), sealed(2))
        .await
        .expect("second fits");
    assert_eq!(
        put(&a, transfer, Some(2), sealed(3)).await,
        Err(FetchFault::Refused(FileRefusal::QuotaExceeded {
            limit: 3 << 20
        }))
    );
    put(&m, TransferId([6; 16]), Some(0), sealed(4))
        .await
        .expect("another org's quota is its own");
    let status = relay.status();
    let acme_status = status["orgs"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["org_id"] == acme.id().to_string()))
        .expect("acme in status")
        .clone();
    assert_eq!(acme_status["file_bytes"], 2 * (MIB as u64 + 16), "{status}");
    assert_eq!(
        get(&b, transfer, 2).await,
        Err(FetchFault::Refused(FileRefusal::Busy))
    );

    // Durable: a killed relay serves the same bytes after its restart.
    drop((a, b, m));
    relay.kill();
    let relay = Relay::start(dir.path(), &orgs, &quota);
    let b = Client::connect(relay.addr, &bob).await.expect("bob again");
    assert_eq!(get(&b, transfer, 1).await.expect("served"), sealed(2));
}

/// Every regular file under `dir`.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn file_items_are_deleted_at_their_ttl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acme = Org::new("Acme");
    // A TTL of zero days: every item is expired as soon as it is stored.
    let ttl = ["--mail-ttl-days", "0"];
    let mut relay = Relay::start(dir.path(), &[acme.id()], &ttl);
    let alice = acme.device("alice");
    let a = Client::connect(relay.addr, &alice).await.expect("alice");
    let transfer = TransferId([7; 16]);
    put(&a, transfer, Some(0), sealed(9)).await.expect("stored");
    let stored = dir.path().join("files");
    assert_eq!(files_under(&stored).len(), 1, "the item is on disk");
    // Expired items are never served.
    assert_eq!(
        get(&a, transfer, 0).await,
        Err(FetchFault::Refused(FileRefusal::Busy))
    );
    // The sweep (run at start, then every minute) deletes file and row.
    drop(a);
    relay.kill();
    let relay = Relay::start(dir.path(), &[acme.id()], &ttl);
    common::eventually("the expired item deleted", || {
        let left = files_under(&stored);
        async move { left.is_empty().then_some(()) }
    })
    .await;
    assert_eq!(relay.status()["orgs"][0]["file_bytes"], 0);
}
