//! The relay's lease grants, signed and checked on a worker thread.
//!
//! A grant costs two ed25519 operations: the relay signs it and the node
//! it is for checks the signature (core's [`VerifiedGrant::new`]). In a
//! 2,000-node run (186,000 grants: a renewal every 400 ms per site, and
//! retries) that was about a third of the run, done in line. Both are pure
//! functions of the grant's fields and the relay's key, so the relay hands
//! them to a worker thread when it grants (at the claim's arrival) and the
//! node collects the result when the answer reaches it: one WAN hop later
//! in virtual time, some thousands of events later in wall time, by when
//! the worker is usually done. The node then calls core's
//! `handle_verified_grant`, which is `handle_lease_granted` after the
//! check. Nothing else moves: the same grant arrives at the same virtual
//! time, so a seed still gives one run.
//!
//! # Invariants
//! - Each grant is signed and checked once, by whichever comes first: the
//!   worker, or the node that needs it while the worker has not started
//!   on it (a loaded machine may leave the worker waiting for a CPU; the
//!   simulation then does the job itself rather than wait).
//! - [`PendingGrant::wait`] always returns: it waits only for a job the
//!   worker has started, and the worker never waits for the simulation.

use std::fmt;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tincan_core::lease::GrantError;
use tincan_core::{DeviceId, DeviceKey, LeaseGrant, RelayId, SiteId, VerifiedGrant};

/// The relay's key and id, shared by the worker and every pending grant.
struct Keys {
    key: DeviceKey,
    id: RelayId,
}

/// How far a grant is.
enum State {
    Queued,
    Working,
    Done(Result<VerifiedGrant, GrantError>),
}

/// One grant to sign and check, and its result once there.
struct Slot {
    keys: Arc<Keys>,
    site: SiteId,
    epoch: u64,
    holder: DeviceId,
    expires_at: u64,
    state: Mutex<State>,
    ready: Condvar,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the job if nobody has yet; `true`: the caller must do it.
    fn take(&self) -> bool {
        let mut state = self.lock();
        let queued = matches!(*state, State::Queued);
        if queued {
            *state = State::Working;
        }
        queued
    }

    /// Does the job (taken) and publishes its result.
    fn run(&self) -> Result<VerifiedGrant, GrantError> {
        let keys = &self.keys;
        let grant = LeaseGrant::sign(
            &keys.key,
            self.site,
            self.epoch,
            self.holder,
            self.expires_at,
        );
        let result = VerifiedGrant::new(grant, &keys.id);
        *self.lock() = State::Done(result.clone());
        self.ready.notify_all();
        result
    }
}

/// A grant being signed by the relay and checked against it.
#[derive(Clone)]
pub(crate) struct PendingGrant(Arc<Slot>);

impl fmt::Debug for PendingGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingGrant")
    }
}

impl PendingGrant {
    /// The grant, checked against the relay that signed it (an error only
    /// if the check failed, which a sound relay key never makes it do).
    /// Does the job here if the worker has not started on it, else waits
    /// for the worker to finish it.
    pub(crate) fn wait(&self) -> Result<VerifiedGrant, GrantError> {
        if self.0.take() {
            return self.0.run();
        }
        let mut state = self.0.lock();
        loop {
            if let State::Done(result) = &*state {
                return result.clone();
            }
            state = self
                .0
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Signs the relay's grants off the simulation's thread.
pub(crate) struct Signer {
    keys: Arc<Keys>,
    /// `None` when no thread could be started: then every grant is done
    /// when it is needed.
    jobs: Option<Sender<Arc<Slot>>>,
    worker: Option<JoinHandle<()>>,
}

impl Signer {
    /// A signer for the relay with `key` (whose id is `id`).
    pub(crate) fn new(key: DeviceKey, id: RelayId) -> Self {
        let (jobs, queue) = channel::<Arc<Slot>>();
        let worker = std::thread::Builder::new()
            .name("sim-grants".into())
            .spawn(move || {
                for slot in queue {
                    // The result stays in the slot for `wait`.
                    if slot.take() {
                        let _ = slot.run();
                    }
                }
            })
            .ok();
        Self {
            keys: Arc::new(Keys { key, id }),
            jobs: worker.is_some().then_some(jobs),
            worker,
        }
    }

    /// Starts signing the grant of `site` at `epoch` to `holder` until
    /// `expires_at`.
    pub(crate) fn grant(
        &self,
        site: SiteId,
        epoch: u64,
        holder: DeviceId,
        expires_at: u64,
    ) -> PendingGrant {
        let slot = Arc::new(Slot {
            keys: Arc::clone(&self.keys),
            site,
            epoch,
            holder,
            expires_at,
            state: Mutex::new(State::Queued),
            ready: Condvar::new(),
        });
        // A job the worker never gets (no worker, or one gone) stays
        // queued and is done by `wait`.
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Arc::clone(&slot));
        }
        PendingGrant(slot)
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        // Closing the channel ends the worker once it drained its queue.
        self.jobs = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
