//! The anchor cycle's decisions (DESIGN §7, seed §4.1 steps 1–2), for the node and the
//! simulator alike: what goes into the batch (our roots, then the witnessed roots of
//! level-3+ peers not anchored at their size yet), and, once the backend anchored the batch
//! root, each scroll's notification, whom to notify (peers that witness that scroll) and the
//! cross-anchored roots for the engine (`Input::Anchored` → `fed_cross_anchor`).
//!
//! The drivers sign the roots (they own the scrolls and the key), call the backend (a local
//! signature, or a TSA round trip), store each notification as what `roots` serves, gossip
//! it, and send the notifications: they decide none of it.

use vm_receipts::documents::{AnchorNotification, SignedRoot};
use vm_receipts::{MeshId, Timestamp};

use crate::anchor::{AnchorError, BackendAnchor, Batch};
use crate::engine::{CrossAnchored, Engine, EngineError};

/// Why a cycle could not be planned or completed.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    /// The batch or a proof in it.
    #[error("anchor batch: {0}")]
    Anchor(#[from] AnchorError),
    /// The engine could not answer a query.
    #[error("{0}")]
    Engine(#[from] EngineError),
}

/// A cycle between its batch and its backend's answer.
#[derive(Debug)]
pub struct AnchorPlan {
    /// The batch: our roots first, then the peers' roots cross-anchored.
    pub batch: Batch,
    /// How many leaves are our own roots.
    pub own: usize,
    /// The peer of each cross-anchored leaf, in batch order after ours.
    pub cross: Vec<MeshId>,
    /// When the cycle began.
    pub started: Timestamp,
}

/// What a completed cycle asks the driver to do.
#[derive(Debug, Clone)]
pub struct Anchored {
    /// Each of our scrolls' notification (signed root + anchor proof): stored as what
    /// `roots` serves, and gossiped.
    pub notifications: Vec<AnchorNotification>,
    /// `(peer, index into notifications)`: every peer that witnesses that scroll.
    pub notify: Vec<(MeshId, usize)>,
    /// The peers' roots that went into the batch, for the engine.
    pub cross: Vec<CrossAnchored>,
}

/// The batch for our signed `own` roots at `now`, with the peer roots to cross-anchor.
pub fn plan(
    engine: &Engine,
    own: Vec<SignedRoot>,
    now: Timestamp,
) -> Result<AnchorPlan, CycleError> {
    let mut roots = own;
    let own = roots.len();
    let mut cross = Vec::new();
    for (peer, root) in engine.cross_anchor_candidates(now)? {
        cross.push(peer);
        roots.push(root);
    }
    Ok(AnchorPlan {
        batch: Batch::new(roots)?,
        own,
        cross,
        started: now,
    })
}

/// The backend anchored the plan's batch root: the notifications, their recipients and the
/// cross-anchored roots.
pub fn complete(
    engine: &Engine,
    plan: &AnchorPlan,
    anchor: &BackendAnchor,
    now: Timestamp,
) -> Result<Anchored, CycleError> {
    let mut notifications = Vec::with_capacity(plan.own);
    let mut notify = Vec::new();
    for (i, root) in plan.batch.roots().iter().take(plan.own).enumerate() {
        let proof = plan.batch.proof(i, anchor)?;
        for peer in engine.witnesses_of(&root.scroll, now)? {
            notify.push((peer, i));
        }
        notifications.push(AnchorNotification::new(root.clone(), proof));
    }
    let mut cross = Vec::with_capacity(plan.cross.len());
    for (j, peer) in plan.cross.iter().enumerate() {
        let index = plan.own + j;
        cross.push(CrossAnchored {
            peer: peer.clone(),
            root: plan.batch.roots()[index].clone(),
            proof: plan.batch.proof(index, anchor)?,
        });
    }
    Ok(Anchored {
        notifications,
        notify,
        cross,
    })
}
