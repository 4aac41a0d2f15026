//! The simulated network: what happens to one message. Latency with jitter (so messages
//! overtake each other: reordering), loss, duplication, and partitions that cut a direction
//! (one-way) or both (symmetric). The simulator asks [`Network::fate`] once per message, with
//! its one RNG, so the same seed gives the same fates.

use rand::RngExt;
use rand_chacha::ChaCha20Rng;

/// Link behaviour for every pair of meshes.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// One-way latency, milliseconds.
    pub latency_ms: u64,
    /// Up to this much extra, uniformly (milliseconds).
    pub jitter_ms: u64,
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a delivered message is delivered twice.
    pub duplicate: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            latency_ms: 40,
            jitter_ms: 60,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// A cut between two groups of meshes, for a while.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// From (milliseconds of simulated time).
    pub from_ms: u64,
    /// Until (the heal).
    pub until_ms: u64,
    /// Membership: `side[i]` is true for meshes on side A.
    pub side_a: Vec<bool>,
    /// Only messages from A to B are cut (B still reaches A).
    pub one_way: bool,
}

impl Partition {
    /// Whether it cuts `from → to` at `now_ms`.
    pub fn cuts(&self, now_ms: u64, from: usize, to: usize) -> bool {
        if now_ms < self.from_ms || now_ms >= self.until_ms {
            return false;
        }
        let a = |i: usize| self.side_a.get(i).copied().unwrap_or(false);
        match (a(from), a(to)) {
            (true, false) => true,
            (false, true) => !self.one_way,
            _ => false,
        }
    }
}

/// What becomes of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Lost (loss or a partition).
    Dropped,
    /// Delivered after these milliseconds (and again after the second, if duplicated).
    Delivered(u64, Option<u64>),
}

/// The network: links and partitions.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// Every link.
    pub link: LinkConfig,
    /// Scheduled partitions.
    pub partitions: Vec<Partition>,
}

impl Network {
    /// Whether a partition cuts `from → to` at `now_ms`.
    pub fn cut(&self, now_ms: u64, from: usize, to: usize) -> bool {
        self.partitions.iter().any(|p| p.cuts(now_ms, from, to))
    }

    /// The fate of a message sent now.
    pub fn fate(&self, rng: &mut ChaCha20Rng, now_ms: u64, from: usize, to: usize) -> Fate {
        if self.cut(now_ms, from, to) {
            return Fate::Dropped;
        }
        let l = &self.link;
        if l.loss > 0.0 && rng.random_bool(l.loss.min(1.0)) {
            return Fate::Dropped;
        }
        let delay = |rng: &mut ChaCha20Rng| l.latency_ms + rng.random_range(0..=l.jitter_ms);
        let first = delay(rng);
        let second =
            (l.duplicate > 0.0 && rng.random_bool(l.duplicate.min(1.0))).then(|| delay(rng));
        Fate::Delivered(first, second)
    }

    /// The last heal: when the last partition ends.
    pub fn last_heal_ms(&self) -> Option<u64> {
        self.partitions.iter().map(|p| p.until_ms).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn partitions_cut_one_or_both_ways_only_while_they_last() {
        let p = Partition {
            from_ms: 10,
            until_ms: 20,
            side_a: vec![true, false],
            one_way: true,
        };
        let net = Network {
            link: LinkConfig::default(),
            partitions: vec![p.clone()],
        };
        assert!(net.cut(15, 0, 1));
        assert!(!net.cut(15, 1, 0), "one way: B still reaches A");
        assert!(!net.cut(20, 0, 1), "healed");
        let both = Network {
            partitions: vec![Partition {
                one_way: false,
                ..p
            }],
            ..net
        };
        assert!(both.cut(15, 1, 0));
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        assert_eq!(both.fate(&mut rng, 15, 1, 0), Fate::Dropped);
    }

    #[test]
    fn loss_and_duplication_follow_their_rates() {
        let net = Network {
            link: LinkConfig {
                loss: 0.1,
                duplicate: 0.05,
                ..LinkConfig::default()
            },
            partitions: Vec::new(),
        };
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (mut lost, mut dup) = (0, 0);
        for _ in 0..10_000 {
            match net.fate(&mut rng, 0, 0, 1) {
                Fate::Dropped => lost += 1,
                Fate::Delivered(d, again) => {
                    assert!((40..=100).contains(&d));
                    dup += usize::from(again.is_some());
                }
            }
        }
        assert!((800..1200).contains(&lost), "{lost}");
        assert!((300..650).contains(&dup), "{dup}");
    }
}
