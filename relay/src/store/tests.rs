use super::*;
use tincan_core::entropy::SeededEntropy;
use tincan_core::{Identity, MessageId, OrgKey};

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("relay.db")).expect("open");
    (dir, db)
}

fn mail(org: OrgId, devices: Vec<DeviceId>, id: u8, kind: MailKind, size: usize) -> NewMail {
    NewMail {
        org,
        devices,
        message_id: MessageId([id; 16]),
        kind,
        origin: DeviceId([9; 20]),
        item: vec![id; size],
        now_ms: 1_000,
        expires_ms: 5_000,
    }
}

/// Per-device limits, no organisation limit.
fn quota(items: u64, bytes: u64) -> MailQuota {
    MailQuota {
        items,
        bytes,
        org_bytes: u64::MAX,
    }
}

#[test]
fn mail_dedupes_respects_quota_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("relay.db");
    let org = OrgId([1; 20]);
    let bob = DeviceId([2; 20]);
    let carol = DeviceId([3; 20]);
    {
        let mut db = Db::open(&path).expect("open");
        assert_eq!(db.schema_version().expect("version"), 5);
        let m = mail(org, vec![bob, carol], 1, MailKind::Envelope, 10);
        let out = db.put_mail(&m, &quota(2, 1_000)).expect("put");
        assert_eq!(
            out,
            vec![(bob, PutOutcome::Stored), (carol, PutOutcome::Stored)]
        );
        assert_eq!(
            db.put_mail(&m, &quota(2, 1_000)).expect("put again"),
            vec![(bob, PutOutcome::Duplicate), (carol, PutOutcome::Duplicate)]
        );
        // Same id and kind from another origin: a separate item.
        let other = NewMail {
            origin: DeviceId([8; 20]),
            ..mail(org, vec![carol], 1, MailKind::Envelope, 10)
        };
        assert_eq!(
            db.put_mail(&other, &quota(5, 1_000)).expect("put")[0].1,
            PutOutcome::Stored
        );
        // Same id, other kind: a separate item.
        let r = mail(org, vec![bob], 1, MailKind::Delivered, 10);
        assert_eq!(
            db.put_mail(&r, &quota(2, 1_000)).expect("put")[0].1,
            PutOutcome::Stored
        );
        // Item quota reached for bob; byte quota for carol.
        let m3 = mail(org, vec![bob], 3, MailKind::Envelope, 10);
        assert_eq!(
            db.put_mail(&m3, &quota(2, 1_000)).expect("put")[0].1,
            PutOutcome::Full
        );
        let big = mail(org, vec![carol], 4, MailKind::Envelope, 991);
        assert_eq!(
            db.put_mail(&big, &quota(5, 1_000)).expect("put")[0].1,
            PutOutcome::Full
        );
    }
    let mut db = Db::open(&path).expect("reopen");
    let rows = db.mail_for(bob, 10).expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].kind, MailKind::Envelope);
    assert_eq!(rows[0].origin, DeviceId([9; 20]));
    assert_eq!(rows[1].kind, MailKind::Delivered);
    assert_eq!(db.mail_counts().expect("counts"), vec![(org, 4)]);
    let both = db.mail_for_devices(&[carol, bob], 2).expect("rows");
    assert_eq!(both.len(), 2);
    assert!(both[0].id < both[1].id);
    assert_eq!(
        db.mail_for_devices(&[carol, bob], 10).expect("rows").len(),
        4
    );
    assert_eq!(db.devices_with_mail().expect("with mail").len(), 2);

    let receipt = mail(org, vec![DeviceId([9; 20])], 1, MailKind::Delivered, 5);
    db.replace_with_receipt(rows[0].id, &receipt, &quota(10, 1_000))
        .expect("replace");
    assert_eq!(db.mail_for(bob, 10).expect("rows").len(), 1);
    assert_eq!(db.mail_for(DeviceId([9; 20]), 10).expect("rows").len(), 1);
    assert_eq!(db.expire(4_999).expect("expire").len(), 0);
    assert_eq!(db.expire(5_000).expect("expire").len(), 4);
    assert!(db.devices_with_mail().expect("with mail").is_empty());
}

#[test]
fn devices_revocations_and_epochs_round_trip() {
    let (_dir, mut db) = db();
    let mut entropy = SeededEntropy::new(1);
    let acme = OrgKey::generate(&mut entropy);
    let alice = Identity::generate("alice", 1, &mut entropy);
    let dev = StoredDevice {
        org: acme.id(),
        cert: alice.cert.clone(),
        name: "alice".into(),
        last_seen_ms: 10,
    };
    db.upsert_device(&dev).expect("upsert");
    db.upsert_device(&StoredDevice {
        name: "alice2".into(),
        last_seen_ms: 5,
        ..dev.clone()
    })
    .expect("upsert");
    let devices = db.devices().expect("devices");
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].name, "alice2");
    assert_eq!(devices[0].last_seen_ms, 10);
    db.remove_devices(acme.id(), &[alice.device_id()])
        .expect("remove");
    assert!(db.devices().expect("devices").is_empty());

    let list = acme.revoke(3, vec![alice.user_id()], 1);
    db.put_revocations(&list).expect("put");
    assert_eq!(db.revocations().expect("lists"), vec![list]);

    let site = SiteId([4; 16]);
    db.put_epoch(acme.id(), site, 7).expect("epoch");
    db.put_epoch(acme.id(), site, 3).expect("epoch");
    assert_eq!(db.epoch(acme.id(), site).expect("epoch"), Some(7));
    assert_eq!(db.epochs().expect("epochs"), vec![(acme.id(), site, 7)]);
}

#[test]
fn version_1_mail_is_migrated_with_its_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("relay.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(MIGRATIONS[0].sql).expect("v1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        conn.execute(
            "INSERT INTO mail (org, device, message_id, kind, sender, item, stored_ms, expires_ms)
             VALUES (?1, ?2, ?3, 0, ?4, x'01', 1, 9)",
            rusqlite::params![
                [1u8; 20].as_slice(),
                [2u8; 20].as_slice(),
                [3u8; 16].as_slice(),
                [4u8; 20].as_slice()
            ],
        )
        .expect("insert");
    }
    let db = Db::open(&path).expect("migrate");
    assert_eq!(db.schema_version().expect("version"), 5);
    let rows = db.mail_for(DeviceId([2; 20]), 10).expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].origin, DeviceId([4; 20]));
}

#[test]
fn a_device_revocation_is_kept_and_takes_the_device_and_its_mail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("relay.db");
    let org = OrgId([1; 20]);
    let alice = Identity::generate("alice", 1, &mut SeededEntropy::new(1));
    let user = alice.user.clone().expect("user key");
    let device = alice.device_id();
    let revocation = tincan_core::DeviceRevocation::sign(&user, device, 5);
    {
        let mut db = Db::open(&path).expect("open");
        let m = mail(org, vec![device], 1, MailKind::Envelope, 10);
        db.put_mail(&m, &quota(2, 1_000)).expect("put");
        db.put_device_revocation(org, &revocation).expect("revoke");
        db.put_device_revocation(org, &revocation)
            .expect("idempotent");
        assert!(db.mail_for(device, 10).expect("rows").is_empty());
    }
    let db = Db::open(&path).expect("reopen");
    assert_eq!(
        db.device_revocations().expect("rows"),
        vec![(org, revocation)]
    );
}

/// 1,024 distinct device ids.
fn many_devices(n: u32) -> Vec<DeviceId> {
    (0..n)
        .map(|i| {
            let mut id = [7u8; 20];
            id[..4].copy_from_slice(&i.to_be_bytes());
            DeviceId(id)
        })
        .collect()
}

#[test]
fn an_envelope_for_1024_offline_devices_is_stored_once() {
    let (_dir, mut db) = db();
    let org = OrgId([1; 20]);
    let devices = many_devices(1024);
    let size = 256 * 1024;
    let before = db.used_bytes().expect("size");
    let m = mail(org, devices.clone(), 1, MailKind::Envelope, size);
    let out = db.put_mail(&m, &quota(10, 1 << 20)).expect("put");
    assert!(out.iter().all(|(_, o)| *o == PutOutcome::Stored));
    let grown = db.used_bytes().expect("size") - before;
    eprintln!("one {size}-byte envelope for 1024 devices grew the database by {grown} bytes");
    // One copy of the body plus a small row per device, not 1,024 copies.
    assert!(grown < 4 * size as u64, "grew by {grown} bytes");
    for d in [devices[0], devices[1023]] {
        let rows = db.mail_for(d, 10).expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].item, vec![1u8; size]);
    }
}

#[test]
fn a_body_goes_with_its_last_row_and_the_org_quota_counts_it_once() {
    let (_dir, mut db) = db();
    let org = OrgId([1; 20]);
    let devices = many_devices(4);
    let q = MailQuota {
        items: 10,
        bytes: 1_000,
        org_bytes: 150,
    };
    let m = mail(org, devices[..3].to_vec(), 1, MailKind::Envelope, 100);
    let out = db.put_mail(&m, &q).expect("put");
    assert!(out.iter().all(|(_, o)| *o == PutOutcome::Stored));
    assert_eq!(db.mail_bytes(org).expect("bytes"), 100);
    // A second item would pass 150 bytes for the organisation: refused.
    let m2 = mail(org, vec![devices[0]], 2, MailKind::Envelope, 100);
    assert_eq!(db.put_mail(&m2, &q).expect("put")[0].1, PutOutcome::OrgFull);
    // Another organisation has its own quota.
    let elsewhere = mail(
        OrgId([2; 20]),
        vec![DeviceId([0xee; 20])],
        2,
        MailKind::Envelope,
        100,
    );
    assert_eq!(
        db.put_mail(&elsewhere, &q).expect("put")[0].1,
        PutOutcome::Stored
    );
    // The stored item for one more device costs no new body.
    let more = mail(org, vec![devices[3]], 1, MailKind::Envelope, 100);
    assert_eq!(
        db.put_mail(&more, &q).expect("put")[0].1,
        PutOutcome::Stored
    );
    assert_eq!(db.mail_bytes(org).expect("bytes"), 100);

    let rows = db.mail_for_devices(&devices, 10).expect("rows");
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.body == rows[0].body));
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    db.delete_mail(&ids[..3]).expect("deliver three");
    assert_eq!(db.mail_bytes(org).expect("bytes"), 100);
    assert_eq!(
        db.mail_for(devices[3], 10).expect("rows")[0].item,
        vec![1; 100]
    );
    db.delete_mail(&ids[3..]).expect("deliver the last");
    assert_eq!(db.mail_bytes(org).expect("bytes"), 0);
    // Room again: the refused item now fits.
    assert_eq!(db.put_mail(&m2, &q).expect("put")[0].1, PutOutcome::Stored);
    // Expiry takes rows and bodies alike.
    assert_eq!(db.expire(5_000).expect("expire").len(), 2);
    assert_eq!(db.mail_bytes(org).expect("bytes"), 0);
    assert_eq!(db.mail_bytes(OrgId([2; 20])).expect("bytes"), 0);
}

#[test]
fn version_4_mail_is_kept_with_one_body_per_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("relay.db");
    let org = OrgId([1; 20]);
    let (bob, carol) = (DeviceId([2; 20]), DeviceId([3; 20]));
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        for m in &MIGRATIONS[..4] {
            conn.execute_batch(m.sql).expect("old schema");
        }
        conn.pragma_update(None, "user_version", 4)
            .expect("version");
        // One envelope stored for bob and carol (two copies), one for bob.
        for (device, id, item) in [
            (bob, 1u8, [5u8; 50]),
            (carol, 1, [5; 50]),
            (bob, 2, [6; 50]),
        ] {
            conn.execute(
                "INSERT INTO mail (org, device, message_id, kind, origin, item, stored_ms, expires_ms)
                 VALUES (?1, ?2, ?3, 0, ?4, ?5, 1, 9)",
                rusqlite::params![
                    org.0.as_slice(),
                    device.0.as_slice(),
                    [id; 16].as_slice(),
                    [4u8; 20].as_slice(),
                    item.as_slice()
                ],
            )
            .expect("insert");
        }
    }
    let mut db = Db::open(&path).expect("migrate");
    assert_eq!(db.schema_version().expect("version"), 5);
    let for_bob = db.mail_for(bob, 10).expect("rows");
    let for_carol = db.mail_for(carol, 10).expect("rows");
    assert_eq!(for_bob.len(), 2);
    assert_eq!(for_bob[0].item, vec![5; 50]);
    assert_eq!(for_bob[1].item, vec![6; 50]);
    assert_eq!(for_carol.len(), 1);
    assert_eq!(for_carol[0].body, for_bob[0].body);
    assert_eq!(db.mail_bytes(org).expect("bytes"), 100);
    // Later copies of the migrated item share its body.
    let again = NewMail {
        origin: DeviceId([4; 20]),
        item: vec![5; 50],
        ..mail(org, vec![DeviceId([8; 20])], 1, MailKind::Envelope, 50)
    };
    assert_eq!(
        db.put_mail(&again, &quota(10, 1_000)).expect("put")[0].1,
        PutOutcome::Stored
    );
    assert_eq!(db.mail_bytes(org).expect("bytes"), 100);
    assert_eq!(db.expire(9).expect("expire").len(), 3);
    assert_eq!(db.mail_bytes(org).expect("bytes"), 50);
}
