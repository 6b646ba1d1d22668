//! The floor of the messages bench: per message, what no implementation
//! can skip, with core's real functions, in one thread; and the disk's
//! `fdatasync`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tincan_core::{Content, Envelope, Identity, MessageId, Receipt, ReceiptKind};
use tincan_transport::entropy::OsEntropy;

use super::bench::cpu_time;
use super::{text, COMMIT_EVERY};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The floor's run.
pub struct Floor {
    count: usize,
    wall: Duration,
    /// The part of `wall` spent in SQLite (inserts and commits).
    store: Duration,
    /// CPU time this process spent meanwhile (nothing else runs in it).
    cpu: Duration,
}

impl Floor {
    pub fn per_s(&self) -> f64 {
        self.count as f64 / self.wall.as_secs_f64()
    }

    /// Time per message outside SQLite (the cryptography), in µs.
    pub fn crypto_us_each(&self) -> f64 {
        (self.wall - self.store).as_secs_f64() * 1e6 / self.count as f64
    }

    /// CPU time per message, in µs: on a busy machine, what the wall time
    /// would be with a core to itself.
    pub fn cpu_us_each(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.count as f64
    }

    /// Time per commit of [`COMMIT_EVERY`] messages, in ms.
    pub fn commit_ms(&self) -> f64 {
        let commits = self.count.div_ceil(COMMIT_EVERY);
        self.store.as_secs_f64() * 1000.0 / commits as f64
    }
}

/// The floor: per message, seal (and sign) for Bob's device, verify the
/// signature, open as Bob, sign Bob's receipt and verify it; one SQLite
/// commit per [`COMMIT_EVERY`] messages.
pub fn floor(dir: &Path, count: usize) -> Floor {
    let mut entropy = OsEntropy;
    let now = now_ms();
    let alice = Identity::generate("Alice", now / 1000, &mut entropy);
    let bob = Identity::generate("Bob", now / 1000, &mut entropy);
    let mut db = rusqlite::Connection::open(dir.join("floor.sqlite")).expect("open sqlite");
    let mode: String = db
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .expect("journal_mode");
    assert!(mode.eq_ignore_ascii_case("wal"), "journal_mode {mode}");
    db.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    db.execute_batch(
        "CREATE TABLE messages (id BLOB PRIMARY KEY, peer BLOB NOT NULL, \
         at_ms INTEGER NOT NULL, body TEXT NOT NULL, state INTEGER NOT NULL)",
    )
    .expect("create table");
    let mut batch: Vec<(MessageId, String)> = Vec::with_capacity(COMMIT_EVERY);
    let mut store = Duration::ZERO;
    let start = (Instant::now(), cpu_time("self"));
    for i in 0..count {
        let id = MessageId::random(&mut entropy);
        let at = now_ms();
        let content = Content::Text { text: text(i) };
        let envelope = Envelope::seal(
            &alice.device,
            &alice.cert,
            std::slice::from_ref(&bob.cert),
            id,
            at,
            &content,
            &mut entropy,
        )
        .expect("seal");
        envelope.verify_signature().expect("verify");
        let opened = envelope.open(&bob.device).expect("open");
        let receipt = Receipt::sign(
            &bob.device,
            opened.id,
            opened.sender.device_id(),
            ReceiptKind::Delivered,
            at,
        );
        receipt.verify(&bob.cert).expect("receipt");
        let Content::Text { text } = opened.content else {
            panic!("opened something else");
        };
        batch.push((id, text));
        if batch.len() == COMMIT_EVERY || i + 1 == count {
            let began = Instant::now();
            let tx = db.transaction().expect("begin");
            {
                let mut insert = tx
                    .prepare_cached("INSERT INTO messages VALUES (?1, ?2, ?3, ?4, 1)")
                    .expect("prepare");
                for (id, body) in batch.drain(..) {
                    insert
                        .execute(rusqlite::params![
                            &id.0[..],
                            &bob.device_id().0[..],
                            at as i64,
                            body
                        ])
                        .expect("insert");
                }
            }
            tx.commit().expect("commit");
            store += began.elapsed();
        }
    }
    Floor {
        count,
        wall: start.0.elapsed(),
        store,
        cpu: cpu_time("self").saturating_sub(start.1),
    }
}

/// `count` timed `fdatasync`s, each after rewriting the first 4 KiB of
/// `fdatasync.bin` in `dir` (after a few untimed ones: the first allocate
/// the block).
pub fn fdatasyncs(dir: &Path, count: usize) -> Vec<Duration> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("fdatasync.bin"))
        .expect("create");
    let block = [0x5au8; 4096];
    let mut samples = Vec::new();
    for i in 0..count + 5 {
        file.write_all_at(&block, 0).expect("write");
        let start = Instant::now();
        file.sync_data().expect("fdatasync");
        if i >= 5 {
            samples.push(start.elapsed());
        }
    }
    samples
}
