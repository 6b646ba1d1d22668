//! Route handling: checks a device's `Route`, forwards one copy per
//! location (a direct device, or a site's gateway carrying all that site's
//! devices), and takes custody of what could not be handed over.
//!
//! # Rules
//! - Destinations must be known devices of the sender's organisation
//!   (`Refused(UnknownDevice)`), at most [`MAX_ROUTE_DEVICES`].
//! - An envelope must carry a valid signature by a known device of the
//!   organisation (`Refused(BadSignature)`); a destination it does not
//!   address is `Refused(NotForThisDevice)`.
//! - A receipt goes to exactly its `sender_device` and must verify against
//!   the known certificate of its `recipient_device`.
//! - Answers `Receipt`, `Refused`, `Accepted` pass through; a `Failed`, a
//!   missing answer or no location means the item is stored durably and
//!   answered `Custody` (or `Refused(MailboxFull)` over the device's
//!   quota, `Refused(Other(ORG_FULL))` over the organisation's, which
//!   senders retry). Only a committed write produces `Custody`.
//!
//! Which devices go where, which answers settle a device and what the
//! sender is told for a stored copy are core's custody rule
//! (`tincan_core::route::custody`), which the simulator's relay runs too;
//! this module does the I/O around it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tincan_core::route::custody::{self, plan_route, settles};
use tincan_core::route::{Answer, DeviceAnswer, Route, Routed, MAX_ROUTE_DEVICES};
use tincan_core::wire::{self, Frame, RefuseReason};
use tincan_core::{DeviceId, OrgId};
use tincan_transport::rpc;

use crate::server::{Peer, Shared};
use crate::store::{MailKind, NewMail, PutOutcome};

pub use tincan_core::route::custody::ORG_FULL;

/// Longest the relay waits for a hop's answers.
pub const HOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A token bucket: `rate` tokens per second, at most `2 * rate` saved.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, now: Instant) -> Self {
        Self {
            tokens: 2.0 * f64::from(rate.max(1)),
            last: now,
        }
    }

    /// Whether the bucket has refilled completely by `now` (then it holds
    /// nothing worth remembering).
    pub fn is_full(&self, rate: u32, now: Instant) -> bool {
        let rate = f64::from(rate.max(1));
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * rate >= 2.0 * rate
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, rate: u32, now: Instant) -> bool {
        let rate = f64::from(rate.max(1));
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(2.0 * rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn answer_kind(a: &Answer) -> &'static str {
    match a {
        Answer::Receipt(_) => "receipt",
        Answer::Custody => "custody",
        Answer::Refused(_) => "refused",
        Answer::Failed(_) => "failed",
        Answer::Accepted => "accepted",
    }
}

/// Handles a `Route` request of `peer`; the answer frame.
pub async fn handle_route(shared: &Arc<Shared>, peer: &Peer, route: Route) -> Frame {
    shared.metrics.routes.inc();
    let mut to = route.to;
    let mut seen = std::collections::HashSet::new();
    to.retain(|d| seen.insert(*d));
    if to.is_empty() {
        return Frame::Error("route names no destination device".into());
    }
    if to.len() > MAX_ROUTE_DEVICES {
        return Frame::Error(format!(
            "route names {} devices, at most {MAX_ROUTE_DEVICES} allowed",
            to.len()
        ));
    }
    let allowed = {
        let mut limits = shared.limits.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        limits
            .entry(peer.device)
            .or_insert_with(|| TokenBucket::new(shared.config.rate, now))
            .take(shared.config.rate, now)
    };
    if !allowed {
        shared.metrics.rate_limited.inc();
        let answers = to
            .into_iter()
            .map(|device| DeviceAnswer {
                device,
                answer: Answer::Failed("rate limited".into()),
            })
            .collect::<Vec<_>>();
        count(shared, &answers);
        return Frame::Answers(answers);
    }
    if let Routed::Receipt(r) = &route.item {
        if to != [r.sender_device] {
            return Frame::Error("a routed receipt goes to exactly its sender device".into());
        }
    }
    let answers = route_checked(shared, peer.org, to, route.item).await;
    count(shared, &answers);
    Frame::Answers(answers)
}

fn count(shared: &Shared, answers: &[DeviceAnswer]) {
    for a in answers {
        shared.metrics.answer(answer_kind(&a.answer));
    }
}

/// Refuses what the item's checks refuse, then routes the rest.
async fn route_checked(
    shared: &Arc<Shared>,
    org: OrgId,
    to: Vec<DeviceId>,
    item: Routed,
) -> Vec<DeviceAnswer> {
    let mut verdict: HashMap<DeviceId, Answer> = HashMap::new();
    {
        let registry = shared.registry();
        let item_ok = match &item {
            Routed::Envelope(e) => {
                e.verify_signature().is_ok()
                    && registry
                        .known(&org, &e.sender.device_id())
                        .is_some_and(|k| k.cert == e.sender)
            }
            Routed::Receipt(r) => registry
                .known(&org, &r.recipient_device)
                .is_some_and(|k| r.verify(&k.cert).is_ok()),
            Routed::Room(e) => {
                e.verify_signature().is_ok()
                    && registry
                        .known(&org, &e.sender.device_id())
                        .is_some_and(|k| k.cert == e.sender)
            }
        };
        for d in &to {
            let refusal = if registry.known(&org, d).is_none() {
                Some(RefuseReason::UnknownDevice)
            } else if !item_ok {
                Some(RefuseReason::BadSignature)
            } else if let Routed::Envelope(e) = &item {
                (!e.recipient_devices().any(|r| r == *d)).then_some(RefuseReason::NotForThisDevice)
            } else if let Routed::Room(e) = &item {
                (!e.recipient_devices().any(|r| r == *d)).then_some(RefuseReason::NotForThisDevice)
            } else {
                None
            };
            if let Some(reason) = refusal {
                verdict.insert(*d, Answer::Refused(reason));
            }
        }
    }
    let open: Vec<DeviceId> = to
        .iter()
        .filter(|d| !verdict.contains_key(d))
        .copied()
        .collect();
    if !open.is_empty() {
        verdict.extend(route_item(shared, org, open, item, Reach::Cluster).await);
    }
    to.into_iter()
        .map(|device| DeviceAnswer {
            answer: verdict
                .remove(&device)
                .unwrap_or_else(|| Answer::Failed("no answer".into())),
            device,
        })
        .collect()
}

/// How far a relay node goes for the devices of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Its own connections, then the other nodes of its cluster, then
    /// custody: an item from a device.
    Cluster,
    /// Its own connections only, no custody: an item another node
    /// forwarded (that node takes custody of what is not settled here).
    ThisNode,
}

/// Forwards a checked item to the locations of `to` (one stream per
/// connection); with [`Reach::Cluster`], hands what is left to the other
/// nodes of the cluster and stores what none of them settled.
pub async fn route_item(
    shared: &Arc<Shared>,
    org: OrgId,
    to: Vec<DeviceId>,
    item: Routed,
    reach: Reach,
) -> HashMap<DeviceId, Answer> {
    let now = shared.clock.mono_ms();
    let mut conns: HashMap<usize, quinn::Connection> = HashMap::new();
    let plan = {
        let registry = shared.registry();
        plan_route(to, |d| {
            let location = registry.locate(now, &org, d);
            let conn = location.conn()?;
            let id = conn.stable_id();
            conns.entry(id).or_insert_with(|| conn.clone());
            Some(id)
        })
    };
    let mut unreachable = plan.custody;
    let groups = plan
        .forward
        .into_iter()
        .filter_map(|(id, devices)| Some((conns.remove(&id)?, devices)));
    let mut tasks = tokio::task::JoinSet::new();
    for (conn, devices) in groups {
        let frame = Frame::Route(Route {
            to: devices.clone(),
            item: item.clone(),
        });
        tasks.spawn(async move {
            let result = rpc::request(&conn, &frame, HOP_TIMEOUT).await;
            (devices, result)
        });
    }
    let mut answers: HashMap<DeviceId, Answer> = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((devices, result)) = joined else {
            continue;
        };
        let got = match result {
            Ok(Frame::Answers(list)) => list,
            Ok(other) => {
                tracing::debug!(
                    answer = other.name(),
                    "hop answered a route with no answers"
                );
                Vec::new()
            }
            Err(e) => {
                tracing::debug!(error = %e, "hop did not answer a route");
                Vec::new()
            }
        };
        for a in got {
            if settles(&a.answer) && devices.contains(&a.device) {
                answers.entry(a.device).or_insert(a.answer);
            }
        }
        unreachable.extend(devices.into_iter().filter(|d| !answers.contains_key(d)));
    }
    if reach == Reach::ThisNode {
        return answers;
    }
    if !unreachable.is_empty() {
        answers.extend(crate::hop::forward(shared, org, unreachable.clone(), &item).await);
        unreachable.retain(|d| !answers.contains_key(d));
    }
    if !unreachable.is_empty() {
        answers.extend(custody(shared, org, unreachable, &item).await);
    }
    answers
}

/// Stores `item` for `devices`; `Custody` only for committed copies.
pub async fn custody(
    shared: &Arc<Shared>,
    org: OrgId,
    devices: Vec<DeviceId>,
    item: &Routed,
) -> Vec<(DeviceId, Answer)> {
    let Ok(bytes) = postcard::to_allocvec(item) else {
        return devices
            .into_iter()
            .map(|d| (d, Answer::Failed("item cannot be encoded".into())))
            .collect();
    };
    let now = shared.clock.wall_ms();
    let ttl = u64::try_from(shared.config.mail_ttl.as_millis()).unwrap_or(u64::MAX);
    let mail = NewMail {
        org,
        devices: devices.clone(),
        message_id: item.message_id(),
        kind: MailKind::of(item),
        origin: custody::origin(item),
        item: bytes,
        now_ms: now,
        expires_ms: now.saturating_add(ttl),
    };
    let quota = shared.config.mail_quota();
    match shared.engine.put_mail(mail, quota).await {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|(d, outcome)| {
                if outcome == PutOutcome::Stored {
                    shared.metrics.mail_stored.inc();
                    shared.metrics.mail_items.inc();
                }
                (d, outcome.answer())
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot store mail; answering Failed");
            devices
                .into_iter()
                .map(|d| (d, Answer::Failed("relay storage unavailable".into())))
                .collect()
        }
    }
}

/// Encodes a Route frame once (used by the mail flush).
pub fn encode_route(to: Vec<DeviceId>, item: Routed) -> Result<Vec<u8>, wire::EncodeError> {
    wire::encode(&Frame::Route(Route { to, item }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(5, t0);
        let taken = (0..20).filter(|_| b.take(5, t0)).count();
        assert_eq!(taken, 10);
        assert!(!b.take(5, t0));
        assert!(b.take(5, t0 + Duration::from_millis(250)));
    }
}
