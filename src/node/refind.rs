//! Finding federated peers again (issue 17, item 1). Addresses go stale: a peer restarts on
//! other ports, moves host, or we restarted and it did. When a call to a federated peer
//! fails at the transport (a message, a notification, a witness request), its signed
//! discovery record is looked up again (the DHT by mesh id, as `discover` does), and again
//! on a timer until the peer is heard from, with backoff per peer (2 s doubling to an hour;
//! reset when the peer is heard from). Once a record is
//! found, the messages waiting for the peer are sent again, its shared scrolls are checked
//! and it is told our latest anchored roots, so witnessing resumes at once. Our own record is published again
//! when a connection comes up after a publication found no peer to store it (the first
//! publication at start usually runs before the bootstrap connection).

use std::collections::HashMap;

use vm_receipts::MeshId;
use vm_storage::{AgreementRecord, AnchoredRoot};

use super::Node;
use crate::engine::Command;

/// First wait before looking a peer up again (a peer restarting publishes its new record
/// within a second or two of starting).
const FIRST_MS: u64 = 2_000;
/// Longest wait between lookups of one peer.
const MAX_MS: u64 = 3_600_000;
/// Least time between two republications of our record on new connections.
const REPUBLISH_MS: u64 = 5_000;

/// Per peer: when the next lookup may run, and the wait after that.
#[derive(Debug, Default)]
pub(super) struct Refind {
    next: HashMap<MeshId, (u64, u64)>,
    /// Peers being looked up now (their completion says so).
    pending: std::collections::HashSet<MeshId>,
    /// Federated peers not heard from since a call to them failed: looked up again when
    /// their backoff allows, until they are.
    unresolved: std::collections::BTreeSet<MeshId>,
    /// Whether our last publication reached a peer, and when it was tried.
    published: bool,
    published_at_ms: u64,
}

impl Node {
    /// A call to `peer` failed at the transport: look its record up again if it is
    /// federated and its backoff allows.
    pub(super) fn unreachable(&mut self, peer: &MeshId, error: &str) {
        let now = self.now();
        let federated = self.all::<AgreementRecord>().is_ok_and(|all| {
            all.iter()
                .any(|a| a.status.in_force(now) && a.agreement.parties.contains(peer))
        });
        if !federated || peer == self.dir.mesh_id() {
            return;
        }
        if self.refind.unresolved.insert(peer.clone()) {
            tracing::info!(%peer, %error, "a federated peer is unreachable at its known addresses; looking up its record again until it answers");
        }
        self.lookup_if_due(peer);
    }

    /// Looks `peer` up if its backoff allows and no lookup is running.
    fn lookup_if_due(&mut self, peer: &MeshId) {
        let now_ms = self.now_ms();
        let entry = self
            .refind
            .next
            .entry(peer.clone())
            .or_insert((0, FIRST_MS));
        if now_ms < entry.0 || self.refind.pending.contains(peer) {
            return;
        }
        entry.0 = now_ms.saturating_add(entry.1);
        let wait = entry.1;
        entry.1 = entry.1.saturating_mul(2).min(MAX_MS);
        tracing::debug!(%peer, next_in_ms = wait, "looking up the record of an unreachable peer");
        self.refind.pending.insert(peer.clone());
        self.discover(Some(peer.to_string()), None);
    }

    /// The timer: unreachable peers whose backoff has run out are looked up again.
    pub(super) fn refind_due(&mut self) {
        let due: Vec<MeshId> = self.refind.unresolved.iter().cloned().collect();
        for peer in due {
            self.lookup_if_due(&peer);
        }
    }

    /// The peer was heard from: its addresses work again. If it had been unreachable,
    /// witnessing picks up where it stopped (what we sent meanwhile was lost).
    pub(super) fn reachable(&mut self, peer: &MeshId) {
        self.refind.next.remove(peer);
        if self.refind.unresolved.remove(peer) {
            tracing::info!(%peer, "the peer answers again; resending what waits for it");
            let _ = self.command(Command::RetryOutbox {
                to: Some(peer.clone()),
                topic: None,
            });
            self.resync_with(peer);
        }
    }

    /// A lookup started by [`Node::unreachable`] ended; on success the messages waiting for
    /// the peer go out now instead of at their backoff.
    pub(super) fn refound(&mut self, target: &str, found: bool) {
        let Ok(peer) = MeshId::parse_flexible(target) else {
            return;
        };
        if !self.refind.pending.remove(&peer) {
            return;
        }
        if !found {
            tracing::debug!(%peer, "no newer record of the peer found; trying again later");
            return;
        }
        tracing::debug!(%peer, "found the peer's record; trying it");
        // Nothing waiting is fine: a witness check or notification failed, not a message.
        let _ = self.command(Command::RetryOutbox {
            to: Some(peer.clone()),
            topic: None,
        });
        // Its (possibly new) addresses are tried at once: an answer makes it reachable.
        self.resync_with(&peer);
    }

    /// Witnessing with `peer` picks up where it stopped: its roots of every scroll we share
    /// are checked now, and it is told our latest anchored roots of those it witnesses.
    fn resync_with(&mut self, peer: &MeshId) {
        let now = self.now();
        let Ok(agreements) = self.all::<AgreementRecord>() else {
            return;
        };
        let shared: std::collections::BTreeSet<vm_receipts::ScrollName> = agreements
            .iter()
            .filter(|a| a.status.working(now) && a.agreement.parties.contains(peer))
            .flat_map(|a| a.agreement.terms.scrolls_shared.iter().cloned())
            .collect();
        let ours: Vec<AnchoredRoot> = self.all::<AnchoredRoot>().unwrap_or_default();
        for scroll in &shared {
            self.witness_due(peer, scroll, None);
            if let Some(root) = ours.iter().find(|r| &r.notification.scroll == scroll) {
                self.notify(peer, &root.notification);
            }
        }
    }

    /// Our record was published (`ok`: some peer stored it).
    pub(super) fn published(&mut self, ok: bool) {
        self.refind.published = ok;
    }

    /// A connection came up: if our last publication reached nobody, publish again.
    pub(super) fn on_connected(&mut self) {
        let now_ms = self.now_ms();
        if self.refind.published
            || now_ms < self.refind.published_at_ms.saturating_add(REPUBLISH_MS)
        {
            return;
        }
        self.refind.published_at_ms = now_ms;
        let now = self.now();
        if let Ok(record) = self.engine.discovery_record(now) {
            self.publish(&record);
        }
    }
}
