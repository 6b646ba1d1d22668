//! What the actor tells others (subscribers' events, answers to requests
//! and to peers) waits until the writes it speaks of are on disk: see
//! `node/durable.rs`. Every answer and event leaves through here.

use tokio::sync::oneshot;

use super::Actor;
use crate::event::NodeEvent;

impl Actor {
    /// Tells subscribers, once what this turn wrote so far is on disk.
    pub(super) fn emit(&self, event: NodeEvent) {
        let events = self.events.clone();
        // No subscribers is fine: events are also in the database.
        self.after_durable(move || {
            let _ = events.send(event);
        });
    }

    /// Runs `then` (an answer to a peer or a request, an event) once every
    /// write made so far is on disk, in the order they were made: a
    /// receipt or an answer is a promise about what was stored.
    pub(super) fn after_durable(&self, then: impl FnOnce() + Send + 'static) {
        let mark = self.store.write_mark();
        self.durable.borrow_mut().after(mark, then);
    }

    /// Answers `reply` with `answer` once what it speaks of is on disk.
    pub(super) fn answer<T: Send + 'static>(&self, reply: oneshot::Sender<T>, answer: T) {
        self.after_durable(move || {
            let _ = reply.send(answer);
        });
    }
}
