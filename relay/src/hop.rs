//! One hop between the relay nodes of a cluster: a node that cannot reach
//! some devices of an item itself (their gateway or their own connection
//! is at another node) asks the other nodes alive to deliver them, before
//! it takes the rest into custody.
//!
//! The asking node has checked the item (signatures, membership,
//! recipients) and keeps custody of whatever no node settled, so the node
//! asked only delivers: to its own connections, never onward and never
//! into custody ([`Reach::ThisNode`]), which also rules out loops. Only
//! relay nodes reach the engine's subjects (the operator's NATS servers),
//! so a request is trusted as a node's. Every other node is asked at once;
//! a node that died has no subscriber and answers "no responders" at once.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tincan_core::route::custody::settles;
use tincan_core::route::{Answer, Routed};
use tincan_core::{DeviceId, OrgId};

use crate::engine::ForwardHandler;
use crate::router::{route_item, Reach, HOP_TIMEOUT};
use crate::server::Shared;

/// What a node asks another to deliver.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forward {
    /// The organisation of the devices.
    pub org: OrgId,
    /// The devices the asking node cannot reach.
    pub to: Vec<DeviceId>,
    /// The checked item.
    pub item: Routed,
}

/// What the node asked settled, per device.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Settled {
    /// Settling answers only (a receipt, `Accepted`, a refusal).
    pub answers: Vec<(DeviceId, Answer)>,
}

/// Asks every other node alive to deliver `to`; the answers that settle.
pub async fn forward(
    shared: &Arc<Shared>,
    org: OrgId,
    to: Vec<DeviceId>,
    item: &Routed,
) -> HashMap<DeviceId, Answer> {
    let mut settled = HashMap::new();
    let Some(link) = shared.engine.cluster_link() else {
        return settled;
    };
    let nodes = match shared.engine.cluster(shared.clock.wall_ms()).await {
        Ok(nodes) => nodes,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the cluster's nodes; not forwarding");
            return settled;
        }
    };
    let request = Forward {
        org,
        to: to.clone(),
        item: item.clone(),
    };
    let Ok(bytes) = postcard::to_allocvec(&request) else {
        return settled;
    };
    let others = nodes.iter().filter(|n| n.node_id != shared.node_id);
    let asked = others.map(|n| link.forward(&n.node_id, bytes.clone(), HOP_TIMEOUT));
    for reply in futures_util::future::join_all(asked).await {
        let reply = match reply {
            Ok(Some(reply)) => reply,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "a relay node did not take a forward");
                continue;
            }
        };
        let Ok(got) = postcard::from_bytes::<Settled>(&reply) else {
            tracing::warn!("a relay node answered a forward with something else");
            continue;
        };
        for (device, answer) in got.answers {
            if settles(&answer) && to.contains(&device) {
                settled.entry(device).or_insert(answer);
            }
        }
    }
    if !settled.is_empty() {
        shared.metrics.forwarded.inc_by(settled.len() as u64);
    }
    settled
}

/// Serves the forwards other nodes send this one.
pub async fn serve(shared: &Arc<Shared>) -> Result<(), crate::engine::EngineError> {
    let Some(link) = shared.engine.cluster_link() else {
        return Ok(());
    };
    let weak = Arc::downgrade(shared);
    let handler: ForwardHandler = Arc::new(move |bytes: Vec<u8>| {
        let weak = weak.clone();
        Box::pin(async move {
            let Some(shared) = weak.upgrade() else {
                return Vec::new();
            };
            let settled = deliver(&shared, &bytes).await;
            postcard::to_allocvec(&settled).unwrap_or_default()
        })
    });
    link.serve_forwards(&shared.node_id, handler).await
}

/// Delivers a forward to this node's own connections.
async fn deliver(shared: &Arc<Shared>, bytes: &[u8]) -> Settled {
    let Ok(forward) = postcard::from_bytes::<Forward>(bytes) else {
        tracing::warn!("an undecodable forward from another relay node");
        return Settled::default();
    };
    if !shared.registry().serves(&forward.org) {
        return Settled::default();
    }
    let answers = route_item(
        shared,
        forward.org,
        forward.to,
        forward.item,
        Reach::ThisNode,
    )
    .await;
    Settled {
        answers: answers.into_iter().filter(|(_, a)| settles(a)).collect(),
    }
}
