//! Opening incoming envelopes off the event loop.
//!
//! Opening an envelope (checking its signature, an X25519 agreement,
//! decrypting) was about a third of the receiving actor's time under load
//! (`perf` at 64 messages in flight), and it needs nothing but this
//! device's key. So a few worker threads open what links deliver and hand
//! the result back to the actor as [`LinkEvent::Opened`]; the actor then
//! judges it with its tables of that moment (core's
//! [`tincan_core::inbound::judge`]), stores it and answers. Nothing is
//! decided here.
//!
//! The queue to the workers is bounded: when it is full the actor opens
//! the envelope itself, so a flood slows the actor down (and, through the
//! links' channel, the peers) instead of piling up work.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tincan_core::wire::Frame;
use tincan_core::{DeviceId, DeviceKey, Envelope};
use tokio::sync::{mpsc, oneshot};

use super::link::LinkEvent;

/// Envelopes waiting for a worker, at most.
const QUEUE: usize = 64;
/// Most worker threads (more cores than this gain little: the actor
/// stores and answers every envelope one at a time).
const MAX_WORKERS: usize = 4;

/// An envelope a link delivered, with the stream's answer channel.
pub(super) struct Delivered {
    pub(super) device: DeviceId,
    pub(super) envelope: Box<Envelope>,
    pub(super) reply: oneshot::Sender<Frame>,
}

/// The workers' queue (they stop when it is dropped).
pub(super) struct Opener {
    jobs: SyncSender<Delivered>,
}

impl Opener {
    /// Starts the workers, which open with `key` and send their results
    /// to the actor on `results`.
    pub(super) fn start(
        key: &DeviceKey,
        results: &mpsc::Sender<LinkEvent>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = sync_channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_WORKERS);
        for i in 0..workers {
            let (key, results, queue) = (key.clone(), results.clone(), Arc::clone(&queue));
            std::thread::Builder::new()
                .name(format!("tincan-open-{i}"))
                .spawn(move || work(&key, &results, &queue))?;
        }
        Ok(Opener { jobs })
    }

    /// Queues `delivered` for a worker; gives it back when the queue is
    /// full (or the workers are gone), for the caller to open itself.
    pub(super) fn submit(&self, delivered: Delivered) -> Result<(), Delivered> {
        self.jobs.try_send(delivered).map_err(|e| match e {
            TrySendError::Full(d) | TrySendError::Disconnected(d) => d,
        })
    }
}

/// A worker: opens envelopes until the queue is dropped or the actor is
/// gone.
fn work(key: &DeviceKey, results: &mpsc::Sender<LinkEvent>, queue: &Mutex<Receiver<Delivered>>) {
    loop {
        // The lock is held only while waiting for the next job; the
        // opening itself runs unlocked, in parallel with the others.
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(Delivered {
            device,
            envelope,
            reply,
        }) = next
        else {
            return;
        };
        let opened = envelope.open(key);
        let event = LinkEvent::Opened {
            device,
            message_id: envelope.id,
            opened: Box::new(opened),
            reply,
        };
        if results.blocking_send(event).is_err() {
            return;
        }
    }
}
