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

#[test]
fn mail_dedupes_respects_quota_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("relay.db");
    let org = OrgId([1; 20]);
    let bob = DeviceId([2; 20]);
    let carol = DeviceId([3; 20]);
    {
        let mut db = Db::open(&path).expect("open");
        assert_eq!(db.schema_version().expect("version"), 4);
        let m = mail(org, vec![bob, carol], 1, MailKind::Envelope, 10);
        let out = db.put_mail(&m, 2, 1_000).expect("put");
        assert_eq!(
            out,
            vec![(bob, PutOutcome::Stored), (carol, PutOutcome::Stored)]
        );
        assert_eq!(
            db.put_mail(&m, 2, 1_000).expect("put again"),
            vec![(bob, PutOutcome::Duplicate), (carol, PutOutcome::Duplicate)]
        );
        // Same id and kind from another origin: a separate item.
        let other = NewMail {
            origin: DeviceId([8; 20]),
            ..mail(org, vec![carol], 1, MailKind::Envelope, 10)
        };
        assert_eq!(
            db.put_mail(&other, 5, 1_000).expect("put")[0].1,
            PutOutcome::Stored
        );
        // Same id, other kind: a separate item.
        let r = mail(org, vec![bob], 1, MailKind::Delivered, 10);
        assert_eq!(
            db.put_mail(&r, 2, 1_000).expect("put")[0].1,
            PutOutcome::Stored
        );
        // Item quota reached for bob; byte quota for carol.
        let m3 = mail(org, vec![bob], 3, MailKind::Envelope, 10);
        assert_eq!(
            db.put_mail(&m3, 2, 1_000).expect("put")[0].1,
            PutOutcome::Full
        );
        let big = mail(org, vec![carol], 4, MailKind::Envelope, 991);
        assert_eq!(
            db.put_mail(&big, 5, 1_000).expect("put")[0].1,
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
    db.replace_with_receipt(rows[0].id, &receipt, 10, 1_000)
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
    assert_eq!(db.schema_version().expect("version"), 4);
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
        db.put_mail(&m, 2, 1_000).expect("put");
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
