//! Commits reach the disk off the event loop; what the node tells the
//! world about them waits until they have.
//!
//! The actor's SQLite connection runs in WAL mode with
//! `synchronous=NORMAL` ([`Store::defer_sync`](crate::store::Store::defer_sync)):
//! a COMMIT writes its pages into the WAL file and returns without waiting
//! for the disk. The operating system holds them, so a killed daemon loses
//! nothing; an OS crash or a power cut could still take back the last
//! commits. The wait for the disk (an `fdatasync` of the WAL) runs on the
//! [`Syncer`] thread instead of inside the actor's `select!`, where a slow
//! disk stalled every link, timer and request.
//!
//! A commit is a promise only once it is on disk, so everything the actor
//! would say about it (a signed receipt to a sender, the answer to a
//! request, an event for the desktop app) goes through [`Durability`]: it
//! is held until a sync that covers every write made so far has finished,
//! then released in the order it was made. The SQLite WAL is a log: a sync
//! that covers a commit covers every commit before it, so one mark (the
//! connection's count of changed rows) says how far the disk has come.
//! Many commits share one sync (group commit), and the loop goes on
//! reading, deciding and writing while the disk works.
//!
//! A store without a WAL file (an in-memory store, or a filesystem that
//! refused WAL and still syncs every commit itself) needs no syncer:
//! [`Durability::immediate`] releases everything at once.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::node::StartError;
use crate::store::Store;

/// Most answers and events held for the disk. A disk that no longer
/// syncs holds everything; past this many, the oldest are dropped (a
/// dropped receipt is no answer, so its sender retries; nobody is told a
/// write is safe that is not).
const MAX_HELD: usize = 65_536;

/// WAL size past which the syncer folds the log back into the database
/// (the actor's connection never checkpoints: that would sync in the
/// loop).
const CHECKPOINT_AFTER_BYTES: u64 = 4 * 1024 * 1024;

/// First and longest wait between tries of a failing sync.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Something to do once the writes before it are on disk.
type Held = Box<dyn FnOnce() + Send>;

/// The answers and events waiting for the disk, and how far it has come.
///
/// Marks are the store's [`write_mark`](crate::store::Store::write_mark):
/// they only grow, and a write made before another has a mark no greater.
pub(crate) struct Durability {
    /// Every write up to this mark is on disk.
    synced: u64,
    /// The mark of the sync the syncer is doing now.
    in_flight: Option<u64>,
    /// In the order they were made, each with the mark it waits for.
    held: VecDeque<(u64, Held)>,
    /// Where sync requests go; `None` when every commit is synced by
    /// SQLite itself.
    syncer: Option<std_mpsc::Sender<u64>>,
    /// Whether the queue overflowed since it was last empty (logged once).
    overflowed: bool,
    /// The WAL the syncer syncs (for the last sync at shutdown).
    wal: Option<PathBuf>,
}

impl Durability {
    /// For a store that syncs every commit itself: nothing is held.
    pub(crate) fn immediate() -> Durability {
        Durability {
            synced: u64::MAX,
            in_flight: None,
            held: VecDeque::new(),
            syncer: None,
            overflowed: false,
            wal: None,
        }
    }

    /// Defers `store`'s syncs to a [`Syncer`] for database `db` when the
    /// store has a WAL; the receiver reports finished syncs (it never
    /// yields when there is no syncer).
    pub(crate) fn start(
        store: &Store,
        db: &Path,
    ) -> Result<(Durability, mpsc::UnboundedReceiver<u64>), StartError> {
        let (done, synced) = mpsc::unbounded_channel();
        let Some(wal) = store.defer_sync()? else {
            return Ok((Durability::immediate(), synced));
        };
        let requests =
            Syncer::spawn(db.to_path_buf(), wal.clone(), done).map_err(StartError::SyncThread)?;
        let durable = Durability::with_syncer(requests, store.write_mark(), Some(wal));
        Ok((durable, synced))
    }

    /// Holds what is said about writes until `syncer` has synced them;
    /// `mark` is the store's mark now (everything before it is on disk:
    /// it was opened with full syncs); `wal` is synced once more at
    /// shutdown.
    pub(crate) fn with_syncer(
        syncer: std_mpsc::Sender<u64>,
        mark: u64,
        wal: Option<PathBuf>,
    ) -> Durability {
        Durability {
            synced: mark,
            in_flight: None,
            held: VecDeque::new(),
            syncer: Some(syncer),
            overflowed: false,
            wal,
        }
    }

    /// Runs `then` once every write up to `mark` is on disk: at once when
    /// it is and nothing made earlier is still waiting (order is kept).
    pub(crate) fn after(&mut self, mark: u64, then: impl FnOnce() + Send + 'static) {
        if self.held.is_empty() && mark <= self.synced {
            then();
            return;
        }
        if self.held.len() >= MAX_HELD {
            if !self.overflowed {
                tracing::error!(
                    held = self.held.len(),
                    "the disk has not confirmed a write for a long time: dropping the oldest held answers (their senders retry)"
                );
                self.overflowed = true;
            }
            self.held.pop_front();
        }
        // Later items never wait for less than earlier ones.
        let mark = self.held.back().map_or(mark, |(m, _)| mark.max(*m));
        self.held.push_back((mark, Box::new(then)));
    }

    /// Asks for a sync up to `mark` when writes are not on disk yet and
    /// none is under way (called at the end of every turn; a running sync
    /// takes the next request with it when it reports).
    pub(crate) fn request(&mut self, mark: u64) {
        let Some(syncer) = &self.syncer else { return };
        if self.in_flight.is_some() || mark <= self.synced {
            return;
        }
        if syncer.send(mark).is_err() {
            tracing::error!("the disk sync thread is gone; answers stay held");
            return;
        }
        self.in_flight = Some(mark);
    }

    /// The syncer finished a sync up to `mark`: releases what waited for
    /// it, in order.
    pub(crate) fn on_synced(&mut self, mark: u64) {
        self.synced = self.synced.max(mark);
        if self.in_flight.is_some_and(|m| m <= mark) {
            self.in_flight = None;
        }
        while self.held.front().is_some_and(|(m, _)| *m <= self.synced) {
            if let Some((_, then)) = self.held.pop_front() {
                then();
            }
        }
        if self.held.is_empty() {
            self.overflowed = false;
        }
    }

    /// At shutdown: syncs the WAL here and now and releases everything.
    pub(crate) fn flush(&mut self, mark: u64) {
        if let Some(wal) = &self.wal {
            if let Err(e) = sync_file(wal) {
                tracing::error!(error = %e, "cannot sync the database at shutdown; held answers are dropped");
                self.held.clear();
                return;
            }
        }
        self.on_synced(mark);
    }

    /// How many answers and events are waiting for the disk.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.len()
    }
}

/// The thread that syncs the WAL and folds it back into the database.
pub(crate) struct Syncer;

impl Syncer {
    /// Starts the thread for database `db`, whose WAL is `wal`. It takes
    /// marks on the returned sender, syncs (several requests that queued
    /// up become one sync) and reports each mark on `done` once it is on
    /// disk. It ends when the sender is dropped.
    pub(crate) fn spawn(
        db: PathBuf,
        wal: PathBuf,
        done: mpsc::UnboundedSender<u64>,
    ) -> std::io::Result<std_mpsc::Sender<u64>> {
        let (requests, rx) = std_mpsc::channel::<u64>();
        std::thread::Builder::new()
            .name("tincan-sync".into())
            .spawn(move || run(&db, &wal, &rx, &done))?;
        Ok(requests)
    }
}

fn run(
    db: &Path,
    wal: &Path,
    requests: &std_mpsc::Receiver<u64>,
    done: &mpsc::UnboundedSender<u64>,
) {
    let mut checkpointer: Option<rusqlite::Connection> = None;
    while let Ok(mut mark) = requests.recv() {
        while let Ok(later) = requests.try_recv() {
            mark = mark.max(later);
        }
        let mut wait = RETRY_FIRST;
        while let Err(e) = sync_file(wal) {
            // Never report a failed sync as done: what waits for it stays
            // held, and its senders retry.
            tracing::error!(error = %e, wal = %wal.display(), "cannot sync the database; retrying");
            std::thread::sleep(wait);
            wait = (wait * 2).min(RETRY_MAX);
        }
        if done.send(mark).is_err() {
            return;
        }
        if wal_len(wal) >= CHECKPOINT_AFTER_BYTES {
            checkpoint(db, &mut checkpointer);
        }
    }
}

/// `fdatasync` of `path` (the WAL), opened anew each time so a WAL that
/// SQLite removed and made again is the one synced. A missing WAL has
/// been folded into the database, which the checkpoint synced.
fn sync_file(path: &Path) -> std::io::Result<()> {
    match File::open(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn wal_len(wal: &Path) -> u64 {
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

/// Copies the WAL's pages into the database without waiting for readers
/// or the writer (`PASSIVE`); SQLite syncs the WAL before and the
/// database after, and the writer starts the WAL over at its next commit.
fn checkpoint(db: &Path, conn: &mut Option<rusqlite::Connection>) {
    if conn.is_none() {
        match rusqlite::Connection::open(db) {
            Ok(opened) => *conn = Some(opened),
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the database to checkpoint it");
                return;
            }
        }
    }
    let Some(conn) = conn else { return };
    let folded = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match folded {
        Ok((log, done)) => tracing::debug!(log, done, "checkpointed the WAL"),
        Err(e) => tracing::warn!(error = %e, "cannot checkpoint the WAL"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A durability whose syncer is the test: it reads the requests.
    fn held_by_test(mark: u64) -> (Durability, std_mpsc::Receiver<u64>) {
        let (tx, rx) = std_mpsc::channel();
        (Durability::with_syncer(tx, mark, None), rx)
    }

    fn log() -> (Arc<Mutex<Vec<&'static str>>>, impl Fn(&'static str) -> Held) {
        let said = Arc::new(Mutex::new(Vec::new()));
        let to = said.clone();
        let say = move |what: &'static str| -> Held {
            let to = to.clone();
            Box::new(move || to.lock().unwrap().push(what))
        };
        (said, say)
    }

    #[test]
    fn an_answer_about_a_write_waits_for_the_sync_that_covers_it() {
        let (mut durable, requests) = held_by_test(10);
        let (said, say) = log();
        // Nothing written since the last sync: said at once.
        durable.after(10, say("before"));
        assert_eq!(*said.lock().unwrap(), ["before"]);

        // A receipt for a message committed at mark 12.
        durable.after(12, say("receipt"));
        assert!(
            said.lock().unwrap().len() == 1,
            "held until the disk has it"
        );
        durable.request(12);
        assert_eq!(requests.try_recv().unwrap(), 12);

        // A sync that stops short releases nothing.
        durable.on_synced(11);
        assert_eq!(durable.held(), 1);
        durable.on_synced(12);
        assert_eq!(*said.lock().unwrap(), ["before", "receipt"]);
        assert_eq!(durable.held(), 0);
    }

    #[test]
    fn what_comes_after_a_held_answer_is_said_after_it_even_without_writes() {
        let (mut durable, _requests) = held_by_test(0);
        let (said, say) = log();
        durable.after(5, say("stored"));
        // A duplicate of the stored message: no write of its own, but its
        // receipt promises the first one's row.
        durable.after(0, say("duplicate"));
        durable.on_synced(4);
        assert!(said.lock().unwrap().is_empty());
        durable.on_synced(5);
        assert_eq!(*said.lock().unwrap(), ["stored", "duplicate"]);
    }

    #[test]
    fn requests_coalesce_while_a_sync_runs_and_the_next_one_takes_the_rest() {
        let (mut durable, requests) = held_by_test(0);
        let (said, say) = log();
        durable.after(1, say("a"));
        durable.request(1);
        durable.after(2, say("b"));
        durable.request(2);
        durable.after(3, say("c"));
        durable.request(3);
        assert_eq!(
            requests.try_iter().collect::<Vec<_>>(),
            [1],
            "one sync at a time"
        );
        durable.on_synced(1);
        assert_eq!(*said.lock().unwrap(), ["a"]);
        durable.request(3);
        assert_eq!(requests.try_iter().collect::<Vec<_>>(), [3]);
        durable.on_synced(3);
        assert_eq!(*said.lock().unwrap(), ["a", "b", "c"]);
        // Everything is on disk: no more requests.
        durable.request(3);
        assert!(requests.try_recv().is_err());
    }

    #[test]
    fn a_store_that_syncs_itself_holds_nothing() {
        let mut durable = Durability::immediate();
        let (said, say) = log();
        durable.after(u64::MAX - 1, say("now"));
        assert_eq!(*said.lock().unwrap(), ["now"]);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_keeps_order() {
        let (mut durable, _requests) = held_by_test(0);
        let (said, say) = log();
        for _ in 0..MAX_HELD {
            durable.after(1, say("old"));
        }
        durable.after(1, say("new"));
        assert_eq!(durable.held(), MAX_HELD);
        durable.on_synced(1);
        let said = said.lock().unwrap();
        assert_eq!(said.len(), MAX_HELD);
        assert_eq!(said.last(), Some(&"new"));
    }

    #[tokio::test]
    async fn the_syncer_reports_a_mark_once_the_wal_is_synced_and_folds_a_big_wal() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let store = crate::store::Store::open(&db).unwrap();
        let wal = store.defer_sync().unwrap().expect("a file store runs WAL");
        assert_eq!(wal, dir.path().join("t.db-wal"));
        let (done_tx, mut done) = mpsc::unbounded_channel();
        let requests = Syncer::spawn(db.clone(), wal.clone(), done_tx).unwrap();
        let before = store.write_mark();
        store.set_node_state("k", "v").unwrap();
        let mark = store.write_mark();
        assert!(mark > before, "a write moves the mark");
        requests.send(mark).unwrap();
        assert_eq!(done.recv().await, Some(mark));

        // Past the checkpoint size the syncer folds the WAL back.
        let filler = "x".repeat(64 * 1024);
        for i in 0..80 {
            store.set_node_state(&format!("k{i}"), &filler).unwrap();
        }
        assert!(wal_len(&wal) >= CHECKPOINT_AFTER_BYTES);
        requests.send(store.write_mark()).unwrap();
        done.recv().await.unwrap();
        // The thread checkpoints after it reports, so the next report
        // comes after that checkpoint.
        requests.send(store.write_mark()).unwrap();
        done.recv().await.unwrap();
        // The next commit starts the folded log over, cut back to its
        // size limit: the WAL does not grow without bound.
        store.set_node_state("after", "v").unwrap();
        assert!(
            wal_len(&wal) < CHECKPOINT_AFTER_BYTES,
            "the log was folded back: {} bytes",
            wal_len(&wal)
        );
    }
}
