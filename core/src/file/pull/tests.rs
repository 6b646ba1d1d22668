//! The pull state machine on a virtual clock, with a fake holder.

use super::*;
use crate::file::crypt::seal_manifest;
use crate::file::{FileEntry, TransferId};

const KEY: [u8; 32] = [5; 32];
const T: TransferId = TransferId([2; 16]);

/// A manifest of files of the given sizes (chunk size 4), its offer and
/// the sealed manifest bytes.
fn setup(sizes: &[u64]) -> (FileOffer, Manifest, Vec<u8>) {
    let files = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| FileEntry {
            path: format!("dir/f{i}"),
            size,
            hash: [i as u8; 32],
            chunks: (0..size.div_ceil(4)).map(|c| [c as u8; 32]).collect(),
        })
        .collect();
    let manifest = Manifest {
        chunk_size: 4,
        dirs: vec![],
        files,
    };
    let encoded = manifest.to_bytes();
    let offer = FileOffer {
        transfer: T,
        name: "dir".into(),
        size: manifest.total_size(),
        count: sizes.len() as u32,
        chunk_size: 4,
        manifest_hash: *blake3::hash(&encoded).as_bytes(),
        manifest_len: encoded.len() as u32,
        key: KEY,
    };
    let sealed = seal_manifest(&KEY, &T, encoded);
    (offer, manifest, sealed)
}

fn config(window: usize) -> PullConfig {
    PullConfig {
        window,
        ..PullConfig::default()
    }
}

fn chunks(fetches: &[Fetch]) -> Vec<u64> {
    fetches
        .iter()
        .filter_map(|f| match f {
            Fetch::Chunk { index, .. } => Some(*index),
            Fetch::Manifest => None,
        })
        .collect()
}

fn drain_fetches(pull: &mut Pull, now: u64) -> Vec<Fetch> {
    std::iter::from_fn(|| pull.poll_fetch(now)).collect()
}

fn drain_events(pull: &mut Pull) -> Vec<PullEvent> {
    std::iter::from_fn(|| pull.poll_event()).collect()
}

/// Gets a pull past the manifest and preparation.
fn running(sizes: &[u64], window: usize) -> Pull {
    let (offer, _, sealed) = setup(sizes);
    let mut pull = Pull::new(offer, config(window));
    assert_eq!(pull.poll_fetch(0), None, "nothing before the link is up");
    pull.handle_link(0, true);
    assert_eq!(drain_fetches(&mut pull, 0), [Fetch::Manifest]);
    pull.handle_manifest(1, Ok(sealed));
    assert_eq!(drain_events(&mut pull), [PullEvent::ManifestReady]);
    assert_eq!(pull.state(), &PullState::Preparing);
    pull.handle_prepared(Ok(vec![]));
    assert_eq!(pull.state(), &PullState::Running);
    pull
}

#[test]
fn fetches_in_a_window_and_finishes() {
    // Chunks: f0 = 0,1,2 (10 bytes), f1 = 3 (4 bytes), f2 = none (empty).
    let mut pull = running(&[10, 4, 0], 2);
    let first = drain_fetches(&mut pull, 2);
    assert_eq!(chunks(&first), [0, 1], "window of two");
    match first[0] {
        Fetch::Chunk { place, hash, .. } => {
            assert_eq!((place.file, place.offset, place.len), (0, 0, 4));
            assert_eq!(hash, [0; 32]);
        }
        Fetch::Manifest => panic!("chunk expected"),
    }
    pull.handle_chunk(3, 1, Ok(()));
    assert_eq!(chunks(&drain_fetches(&mut pull, 3)), [2]);
    pull.handle_chunk(3, 0, Ok(()));
    pull.handle_chunk(3, 2, Ok(()));
    let fetched = drain_fetches(&mut pull, 3);
    assert_eq!(chunks(&fetched), [3]);
    match fetched[0] {
        Fetch::Chunk { place, .. } => assert_eq!((place.file, place.len), (1, 4)),
        Fetch::Manifest => panic!("chunk expected"),
    }
    assert_eq!(pull.bytes_done(), 10);
    pull.handle_chunk(4, 3, Ok(()));
    let events = drain_events(&mut pull);
    assert_eq!(events.last(), Some(&PullEvent::Finished));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, PullEvent::Verified { .. }))
            .count(),
        4
    );
    assert_eq!(pull.bytes_done(), 14);
    assert_eq!(pull.state(), &PullState::Finishing);
    assert_eq!(pull.poll_fetch(5), None);
    pull.handle_finished(Ok(()));
    assert_eq!(pull.state(), &PullState::Done);
}

#[test]
fn a_corrupt_chunk_is_fetched_again_then_fails_for_good() {
    let mut pull = running(&[8], 4);
    assert_eq!(chunks(&drain_fetches(&mut pull, 0)), [0, 1]);
    pull.handle_chunk(1, 1, Err(FetchFault::Corrupt(ChunkError::Decrypt)));
    assert_eq!(chunks(&drain_fetches(&mut pull, 1)), [1], "re-fetched");
    pull.handle_chunk(2, 0, Ok(()));
    for attempt in 2..=5 {
        pull.handle_chunk(2, 1, Err(FetchFault::Corrupt(ChunkError::Hash)));
        if attempt < 5 {
            assert_eq!(chunks(&drain_fetches(&mut pull, 2)), [1]);
        }
    }
    match pull.state() {
        PullState::Failed(reason) => {
            assert!(
                reason.contains("dir/f0") && reason.contains("5 times"),
                "{reason}"
            )
        }
        other => panic!("expected failure, got {other:?}"),
    }
    assert!(matches!(
        drain_events(&mut pull).last(),
        Some(PullEvent::Failed { .. })
    ));
    assert_eq!(pull.poll_fetch(3), None);
}

#[test]
fn link_loss_pauses_and_resumes_without_counting() {
    let mut pull = running(&[16], 4);
    assert_eq!(chunks(&drain_fetches(&mut pull, 0)), [0, 1, 2, 3]);
    pull.handle_chunk(1, 0, Ok(()));
    pull.handle_link(2, false);
    assert_eq!(pull.in_flight(), 0);
    assert_eq!(pull.poll_fetch(2), None, "paused while the link is down");
    // Late errors of the dead connection are ignored.
    pull.handle_chunk(3, 1, Err(FetchFault::Lost("reset".into())));
    pull.handle_link(10, true);
    let again = chunks(&drain_fetches(&mut pull, 10));
    assert_eq!(again, [1, 2, 3], "only the unverified chunks");
}

#[test]
fn lost_fetches_back_off_and_time_out() {
    let mut pull = running(&[8], 1);
    assert_eq!(chunks(&drain_fetches(&mut pull, 0)), [0]);
    pull.handle_chunk(5, 0, Err(FetchFault::Lost("reset".into())));
    assert_eq!(pull.poll_fetch(5), None, "pausing after a loss");
    let resume = pull.poll_timeout().expect("a wake-up");
    assert!(resume > 5);
    assert_eq!(chunks(&drain_fetches(&mut pull, resume)), [0]);
    // A fetch with no answer times out and is retried.
    let deadline = pull.poll_timeout().expect("deadline");
    pull.handle_timeout(deadline);
    assert_eq!(pull.in_flight(), 0);
    let later = pull.poll_timeout().expect("pause");
    assert_eq!(chunks(&drain_fetches(&mut pull, later)), [0]);
    // A busy holder is a pause too, never a failure.
    pull.handle_chunk(later, 0, Err(FetchFault::Refused(FileRefusal::Busy)));
    assert_eq!(pull.state(), &PullState::Running);
}

/// A holder that has nothing yet (a gateway whose relay copy is still
/// being uploaded) refuses a whole window at once: one step of backoff,
/// not one per refused chunk.
#[test]
fn a_refused_window_is_one_backoff_step() {
    let mut pull = running(&[64], 16);
    assert_eq!(drain_fetches(&mut pull, 0).len(), 16);
    for index in 0..16 {
        pull.handle_chunk(10, index, Err(FetchFault::Refused(FileRefusal::Busy)));
    }
    let first = pull.poll_timeout().expect("a pause") - 10;
    assert!(first <= 1_000, "paused {first} ms after one refused window");
    let resume = first + 10;
    assert_eq!(drain_fetches(&mut pull, resume).len(), 16);
    for index in 0..16 {
        pull.handle_chunk(resume, index, Err(FetchFault::Refused(FileRefusal::Busy)));
    }
    let second = pull.poll_timeout().expect("a pause") - resume;
    assert!(
        second > first && second <= 2 * first,
        "{first} then {second}"
    );
}

#[test]
fn refusals_and_disk_errors_fail_at_once() {
    let mut pull = running(&[8], 2);
    let _ = drain_fetches(&mut pull, 0);
    pull.handle_chunk(
        1,
        0,
        Err(FetchFault::Refused(FileRefusal::Changed { file: 0 })),
    );
    match pull.state() {
        PullState::Failed(reason) => assert!(reason.contains("dir/f0 changed"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let mut pull = running(&[8], 2);
    let _ = drain_fetches(&mut pull, 0);
    pull.handle_chunk(
        1,
        1,
        Err(FetchFault::Disk("no space left on device".into())),
    );
    assert_eq!(
        pull.state(),
        &PullState::Failed("no space left on device".into())
    );
}

#[test]
fn a_bad_manifest_is_refused() {
    let (offer, _, sealed) = setup(&[8]);
    let mut pull = Pull::new(offer.clone(), config(2));
    pull.handle_link(0, true);
    let _ = drain_fetches(&mut pull, 0);
    let mut bad = sealed.clone();
    bad[0] ^= 1;
    pull.handle_manifest(1, Err(FetchFault::Lost("x".into())));
    let t = pull.poll_timeout().unwrap();
    assert_eq!(drain_fetches(&mut pull, t), [Fetch::Manifest]);
    pull.handle_manifest(t, Ok(bad));
    assert_eq!(pull.state(), &PullState::Manifest, "corrupt: asked again");
    assert_eq!(drain_fetches(&mut pull, t), [Fetch::Manifest]);
    // A manifest that does not match the offer fails the transfer.
    let lying = Manifest {
        chunk_size: 4,
        dirs: vec![],
        files: vec![FileEntry {
            path: "../evil".into(),
            size: 8,
            hash: [0; 32],
            chunks: vec![[0; 32]; 2],
        }],
    };
    let encoded = lying.to_bytes();
    let offer = FileOffer {
        manifest_hash: *blake3::hash(&encoded).as_bytes(),
        ..offer
    };
    let mut pull = Pull::new(offer, config(2));
    pull.handle_link(0, true);
    let _ = drain_fetches(&mut pull, 0);
    pull.handle_manifest(1, Ok(seal_manifest(&KEY, &T, encoded)));
    assert!(matches!(pull.state(), PullState::Failed(r) if r.contains("unsafe path")));
}

#[test]
fn a_manifest_saving_other_names_than_shown_fails_the_transfer() {
    let (offer, _, _) = setup(&[8]);
    // Shown as `dir` (what `setup` offers), but the files are a dot file.
    let hidden = Manifest {
        chunk_size: 4,
        dirs: vec![],
        files: vec![FileEntry {
            path: ".bash_profile".into(),
            size: 8,
            hash: [0; 32],
            chunks: vec![[0; 32]; 2],
        }],
    };
    let encoded = hidden.to_bytes();
    let offer = FileOffer {
        manifest_hash: *blake3::hash(&encoded).as_bytes(),
        manifest_len: encoded.len() as u32,
        ..offer
    };
    let mut pull = Pull::new(offer, config(2));
    pull.handle_link(0, true);
    let _ = drain_fetches(&mut pull, 0);
    pull.handle_manifest(1, Ok(seal_manifest(&KEY, &T, encoded)));
    assert!(
        matches!(pull.state(), PullState::Failed(r)
            if r.contains(r#"shown as "dir" but its files are ".bash_profile""#)),
        "{:?}",
        pull.state()
    );
    assert!(pull.manifest().is_none(), "nothing to write");
}

#[test]
fn resume_fetches_only_what_is_missing() {
    let (offer, manifest, _) = setup(&[16, 8]);
    // Chunks 0..4 = f0, 4..6 = f1; have 0, 1 and 4.
    let mut pull = Pull::resume(offer.clone(), manifest.clone(), &[0b1_0011], config(8));
    assert_eq!(pull.state(), &PullState::Preparing);
    assert_eq!(pull.bytes_done(), 12);
    pull.handle_link(0, true);
    assert_eq!(pull.poll_fetch(0), None, "not before the staging is ready");
    pull.handle_prepared(Ok(vec![]));
    assert_eq!(chunks(&drain_fetches(&mut pull, 0)), [2, 3, 5]);

    // Staged bytes of f1 vanished: its chunks come again.
    let mut pull = Pull::resume(offer.clone(), manifest.clone(), &[0b1_0011], config(8));
    pull.handle_link(0, true);
    pull.handle_prepared(Ok(vec![1]));
    assert_eq!(chunks(&drain_fetches(&mut pull, 0)), [2, 3, 4, 5]);

    // Everything there already: straight to the final check.
    let mut pull = Pull::resume(offer, manifest, &[0b11_1111], config(8));
    pull.handle_prepared(Ok(vec![]));
    assert_eq!(drain_events(&mut pull), [PullEvent::Finished]);
    // The final check finds a chunk damaged on disk: one more round.
    pull.handle_finished(Err(FinishFault::BadChunks(vec![3])));
    assert_eq!(pull.state(), &PullState::Running);
    pull.handle_link(1, true);
    assert_eq!(chunks(&drain_fetches(&mut pull, 1)), [3]);
    pull.handle_chunk(2, 3, Ok(()));
    assert!(drain_events(&mut pull).contains(&PullEvent::Finished));
    pull.handle_finished(Err(FinishFault::BadChunks(vec![3])));
    assert!(matches!(pull.state(), PullState::Failed(_)), "only once");
}

#[test]
fn an_empty_transfer_finishes_at_once() {
    let (offer, _, sealed) = setup(&[0, 0]);
    let mut pull = Pull::new(offer, config(4));
    pull.handle_link(0, true);
    assert_eq!(drain_fetches(&mut pull, 0), [Fetch::Manifest]);
    pull.handle_manifest(1, Ok(sealed));
    pull.handle_prepared(Ok(vec![]));
    assert_eq!(pull.state(), &PullState::Finishing);
    assert_eq!(
        drain_events(&mut pull),
        [PullEvent::ManifestReady, PullEvent::Finished]
    );
    assert_eq!(pull.bytes_done(), 0);
}
