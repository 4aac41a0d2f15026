//! The peer manager: keeps the number of connected peers near a target and penalises peers
//! that send bad input.
//!
//! Gossipsub keeps every connection it sees open (it wants them as mesh candidates), and
//! Kademlia dials whoever a query turns up, so without this a node in a large swarm ends up
//! connected to everyone: ~20k connections and several GB for 200 nodes in one process. Every
//! tick the manager ranks connected peers and closes the lowest-ranked beyond the target:
//! protected peers (federated meshes, bootstrap nodes) and peers with requests in flight are
//! never closed; then gossipsub mesh members, then peers in our Kademlia routing table rank
//! above strangers; then recent activity. It is generic over the peer key so its policy is tested without a swarm.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// How a peer ranks when the manager must choose whom to disconnect (fields in order of
/// weight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    /// In our gossipsub mesh: closing it costs a mesh repair and slows gossip.
    pub mesh: bool,
    /// In our Kademlia routing table (a DHT neighbour).
    pub routing: bool,
    /// Tick of the last useful exchange with the peer.
    pub last_active: u64,
}

/// What the manager knows about peers.
#[derive(Debug)]
pub struct PeerManager<P> {
    target: usize,
    ban_after: u32,
    protected: HashSet<P>,
    /// Never struck: federated meshes (a bootstrap node is kept connected, but its bad
    /// input counts like anyone's).
    immune: HashSet<P>,
    connected: HashMap<P, u64>,
    busy: HashMap<P, u32>,
    /// Strikes and the tick of the latest; forgotten after `strike_window` ticks without
    /// one, so rare failures (a request cut by a lossy link) never add up to a ban.
    strikes: HashMap<P, (u32, u64)>,
    /// Banned peers and the tick their ban ends.
    bans: HashMap<P, u64>,
    /// How many times each peer was banned: each ban lasts twice the one before (up to
    /// 64 times the first), so a peer that comes back to offend again stays out longer.
    offences: HashMap<P, u32>,
    strike_window: u64,
    ban_ticks: u64,
}

/// What to do after a strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the peer; the strike is counted.
    Keep,
    /// The peer reached the strike limit: disconnect and block it.
    Ban,
}

impl<P: Eq + Hash + Clone> PeerManager<P> {
    /// A manager holding about `target` peers that bans after `ban_after` strikes (each
    /// within 3,600 ticks of the previous one) for 3,600 ticks.
    pub fn new(target: usize, ban_after: u32) -> Self {
        Self {
            target,
            ban_after: ban_after.max(1),
            protected: HashSet::new(),
            immune: HashSet::new(),
            connected: HashMap::new(),
            busy: HashMap::new(),
            strikes: HashMap::new(),
            bans: HashMap::new(),
            offences: HashMap::new(),
            strike_window: 3_600,
            ban_ticks: 3_600,
        }
    }

    /// Strikes older than `strike_window` ticks are forgotten; a ban lasts `ban_ticks`.
    pub fn with_ban_timing(mut self, strike_window: u64, ban_ticks: u64) -> Self {
        self.strike_window = strike_window.max(1);
        self.ban_ticks = ban_ticks.max(1);
        self
    }

    /// A peer connected (or reconnected) at `tick`.
    pub fn connected(&mut self, peer: P, tick: u64) {
        self.connected.entry(peer).or_insert(tick);
    }

    /// The peer's last connection closed.
    pub fn disconnected(&mut self, peer: &P) {
        self.connected.remove(peer);
        self.busy.remove(peer);
    }

    /// Something useful came from or went to `peer` at `tick`.
    pub fn active(&mut self, peer: &P, tick: u64) {
        if let Some(last) = self.connected.get_mut(peer) {
            *last = tick;
        }
    }

    /// A request to or from `peer` started; it is not disconnected until it ends.
    pub fn begin(&mut self, peer: &P) {
        *self.busy.entry(peer.clone()).or_default() += 1;
    }

    /// A request to or from `peer` ended.
    pub fn end(&mut self, peer: &P) {
        if let Some(n) = self.busy.get_mut(peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.busy.remove(peer);
            }
        }
    }

    /// Never disconnect `peer` (a federated mesh, a bootstrap node).
    pub fn protect(&mut self, peer: P) {
        self.protected.insert(peer);
    }

    /// Never strike or ban `peer` (a federated mesh: its bad messages are the engine's to
    /// judge, and a ban must not be a way to cut two federated meshes apart). Also protected.
    pub fn make_immune(&mut self, peer: P) {
        self.protected.insert(peer.clone());
        self.immune.insert(peer);
    }

    /// Whether `peer` is protected.
    pub fn is_protected(&self, peer: &P) -> bool {
        self.protected.contains(peer)
    }

    /// Counts a strike against `peer` (bad input) at `tick` and says whether it is now
    /// banned (for the ban's length, doubled for each earlier ban of the peer;
    /// [`Self::expired_bans`] says when it ends).
    /// An immune peer ([`Self::make_immune`]) is never struck.
    pub fn strike(&mut self, peer: &P, tick: u64) -> Verdict {
        if self.immune.contains(peer) {
            return Verdict::Keep;
        }
        let window = self.strike_window;
        let (count, last) = self.strikes.entry(peer.clone()).or_insert((0, tick));
        if tick.saturating_sub(*last) > window {
            *count = 0;
        }
        *count += 1;
        *last = tick;
        if *count >= self.ban_after {
            self.strikes.remove(peer);
            let offences = self.offences.entry(peer.clone()).or_default();
            let length = self.ban_ticks.saturating_mul(1 << (*offences).min(6));
            *offences += 1;
            self.bans.insert(peer.clone(), tick.saturating_add(length));
            Verdict::Ban
        } else {
            Verdict::Keep
        }
    }

    /// Whether `peer` is banned now.
    pub fn is_banned(&self, peer: &P) -> bool {
        self.bans.contains_key(peer)
    }

    /// The bans that end at `tick` (removed; the caller unblocks them), and strikes too old
    /// to count (forgotten, so the table stays small).
    pub fn expired_bans(&mut self, tick: u64) -> Vec<P> {
        let window = self.strike_window;
        self.strikes
            .retain(|_, (_, last)| tick.saturating_sub(*last) <= window);
        let ended: Vec<P> = self
            .bans
            .iter()
            .filter(|(_, until)| **until <= tick)
            .map(|(p, _)| p.clone())
            .collect();
        for p in &ended {
            self.bans.remove(p);
        }
        ended
    }

    /// How many peers are connected.
    pub fn connected_count(&self) -> usize {
        self.connected.len()
    }

    /// The peers to disconnect now to come back to the target, lowest-ranked first.
    /// `standing` says of a peer whether it is in our gossip mesh and in our routing table.
    pub fn excess(&self, standing: impl Fn(&P) -> (bool, bool)) -> Vec<P> {
        let over = self.connected.len().saturating_sub(self.target);
        if over == 0 {
            return Vec::new();
        }
        let mut candidates: Vec<(Rank, &P)> = self
            .connected
            .iter()
            .filter(|(p, _)| !self.protected.contains(*p) && !self.busy.contains_key(*p))
            .map(|(p, last)| {
                let (mesh, routing) = standing(p);
                (
                    Rank {
                        mesh,
                        routing,
                        last_active: *last,
                    },
                    p,
                )
            })
            .collect();
        candidates.sort_by_key(|(rank, _)| *rank);
        candidates
            .into_iter()
            .take(over)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_strangers_before_neighbours_and_never_protected_or_busy_peers() {
        let mut m = PeerManager::new(3, 3);
        for (peer, tick) in [(1, 10), (2, 20), (3, 30), (4, 40), (5, 50), (6, 5)] {
            m.connected(peer, tick);
        }
        m.protect(6);
        m.begin(&1);
        // 6 connected, target 3: three go. 1 is busy, 6 protected; 5 is a DHT neighbour.
        let gone = m.excess(|p| (false, *p == 5));
        assert_eq!(gone, vec![2, 3, 4]);
        m.end(&1);
        let gone = m.excess(|p| (false, *p == 5));
        assert_eq!(gone, vec![1, 2, 3]);
        // A gossip mesh member outranks a DHT neighbour.
        let gone = m.excess(|p| (*p == 2, *p == 5));
        assert_eq!(gone, vec![1, 3, 4]);
    }

    #[test]
    fn nothing_to_close_at_or_below_target() {
        let mut m = PeerManager::new(3, 3);
        m.connected(1, 0);
        m.connected(2, 0);
        assert!(m.excess(|_| (false, false)).is_empty());
        m.disconnected(&1);
        assert_eq!(m.connected_count(), 1);
    }

    #[test]
    fn bans_on_the_limit_strike() {
        let mut m = PeerManager::new(3, 2);
        assert_eq!(m.strike(&7, 0), Verdict::Keep);
        assert_eq!(m.strike(&7, 1), Verdict::Ban);
        assert_eq!(m.strike(&8, 1), Verdict::Keep);
        assert!(m.is_banned(&7));
    }

    #[test]
    fn strikes_decay_bans_end_and_protected_peers_are_never_struck() {
        let mut m = PeerManager::new(3, 3).with_ban_timing(10, 100);
        // Three strikes far apart (a lossy link now and then): no ban.
        for tick in [0, 20, 40, 60] {
            assert_eq!(m.strike(&1, tick), Verdict::Keep, "tick {tick}");
        }
        // Three close together: banned for 100 ticks.
        assert_eq!(m.strike(&2, 100), Verdict::Keep);
        assert_eq!(m.strike(&2, 105), Verdict::Keep);
        assert_eq!(m.strike(&2, 110), Verdict::Ban);
        assert!(m.expired_bans(150).is_empty());
        assert!(m.is_banned(&2));
        assert_eq!(m.expired_bans(210), vec![2]);
        assert!(!m.is_banned(&2));
        // Back after its ban, it starts again from no strikes; a second ban lasts twice as
        // long (200 ticks).
        assert_eq!(m.strike(&2, 211), Verdict::Keep);
        assert_eq!(m.strike(&2, 212), Verdict::Keep);
        assert_eq!(m.strike(&2, 213), Verdict::Ban);
        assert!(m.expired_bans(412).is_empty());
        assert_eq!(m.expired_bans(413), vec![2]);
        // A federated peer is never struck; a merely protected one (a bootstrap node) is.
        m.protect(4);
        assert_eq!(m.strike(&4, 300), Verdict::Keep);
        assert_eq!(m.strike(&4, 301), Verdict::Keep);
        assert_eq!(m.strike(&4, 302), Verdict::Ban);
        m.make_immune(3);
        for tick in 0..10 {
            assert_eq!(m.strike(&3, tick), Verdict::Keep);
        }
        assert!(!m.is_banned(&3));
    }
}
