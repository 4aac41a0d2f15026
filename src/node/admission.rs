//! Which HTTPS connections the server keeps (issue 16, item 1). Strangers may connect, so
//! connections are a resource an attacker can hoard: idle TLS sessions, sockets that never
//! finish a handshake, request heads trickled a byte at a time. Three rules keep service
//! for everyone else:
//!
//! - **A cap per address** ([`PER_ADDRESS`]): one host cannot hold more than its share; a
//!   connection beyond it is closed at once.
//! - **Deadlines** (in `https.rs`): the handshake, each request head, and the wait for the
//!   next request on a kept-alive connection are bounded, so a slot held by silence frees
//!   itself.
//! - **When full, shed the oldest idle**: at [`MAX_CONNECTIONS`] a new connection is still
//!   accepted, and the connection that has been idle (handshaking, or between requests)
//!   the longest is closed to make room; one serving a request is never shed. Only when
//!   every slot is busy is the newcomer refused. An attacker holding many idle connections
//!   thus loses the oldest of them to every newcomer instead of locking newcomers out.
//!
//! Pure bookkeeping: the accept loop asks [`Admission::admit`], connection tasks report
//! their state, and a shed connection's task is told through its [`Shed`] handle.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Connections served at once.
pub(super) const MAX_CONNECTIONS: usize = 256;
/// Connections one address may hold at once.
pub(super) const PER_ADDRESS: usize = 32;

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for its TLS handshake, or for its next request head, since `since` (a
    /// sequence number: lower is older).
    Idle { since: u64 },
    /// Serving `n` requests now (HTTP/1.1: one at a time, but counted to be safe).
    Busy { n: u32 },
}

#[derive(Debug)]
struct Entry {
    remote: IpAddr,
    state: State,
    shed: Arc<Notify>,
}

#[derive(Debug, Default)]
struct Table {
    entries: HashMap<u64, Entry>,
    per_address: HashMap<IpAddr, usize>,
    /// Ids and idle stamps both come from here: monotonically increasing.
    clock: u64,
}

/// The connection table, shared by the accept loop and the connection tasks.
#[derive(Debug, Clone)]
pub(super) struct Admission {
    table: Arc<Mutex<Table>>,
    max: usize,
    per_address: usize,
}

/// Why a connection was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// Its address already holds [`PER_ADDRESS`] connections.
    AddressFull,
    /// Every slot is serving a request.
    AllBusy,
}

/// A connection's place in the table: reports its state, frees its slot when dropped, and
/// is told when it is shed.
#[derive(Debug)]
pub(super) struct Slot {
    admission: Admission,
    id: u64,
    /// Notified when this connection is shed to make room.
    pub(super) shed: Arc<Notify>,
}

impl Default for Admission {
    fn default() -> Self {
        Self::new(MAX_CONNECTIONS, PER_ADDRESS)
    }
}

impl Admission {
    /// A table of at most `max` connections, `per_address` from one address.
    pub(super) fn new(max: usize, per_address: usize) -> Self {
        Self {
            table: Arc::new(Mutex::new(Table::default())),
            max: max.max(1),
            per_address: per_address.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table holds counts only: a panic elsewhere leaves nothing half-updated that
        // matters more than serving on.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new connection from `remote`: its slot, or why not. Making room sheds the
    /// connection idle longest.
    pub(super) fn admit(&self, remote: IpAddr) -> Result<Slot, Refused> {
        let mut t = self.lock();
        if t.per_address.get(&remote).copied().unwrap_or(0) >= self.per_address {
            return Err(Refused::AddressFull);
        }
        if t.entries.len() >= self.max {
            let oldest = t
                .entries
                .iter()
                .filter_map(|(id, e)| match e.state {
                    State::Idle { since } => Some((since, *id)),
                    State::Busy { .. } => None,
                })
                .min();
            let Some((_, victim)) = oldest else {
                return Err(Refused::AllBusy);
            };
            // Out of the table now (its task closes it when notified), so the newcomer
            // has its slot at once.
            if let Some(e) = t.entries.remove(&victim) {
                release(&mut t.per_address, e.remote);
                e.shed.notify_one();
            }
        }
        t.clock += 1;
        let id = t.clock;
        let shed = Arc::new(Notify::new());
        t.entries.insert(
            id,
            Entry {
                remote,
                state: State::Idle { since: id },
                shed: shed.clone(),
            },
        );
        *t.per_address.entry(remote).or_default() += 1;
        Ok(Slot {
            admission: self.clone(),
            id,
            shed,
        })
    }

    /// Connections held now (all, and from `remote`).
    #[cfg(test)]
    pub(super) fn held(&self, remote: IpAddr) -> (usize, usize) {
        let t = self.lock();
        (
            t.entries.len(),
            t.per_address.get(&remote).copied().unwrap_or(0),
        )
    }
}

fn release(per_address: &mut HashMap<IpAddr, usize>, remote: IpAddr) {
    if let Some(n) = per_address.get_mut(&remote) {
        *n -= 1;
        if *n == 0 {
            per_address.remove(&remote);
        }
    }
}

impl Slot {
    /// A request started on this connection: it cannot be shed until it ends.
    pub(super) fn busy(&self) {
        let mut t = self.admission.lock();
        if let Some(e) = t.entries.get_mut(&self.id) {
            e.state = match e.state {
                State::Busy { n } => State::Busy { n: n + 1 },
                State::Idle { .. } => State::Busy { n: 1 },
            };
        }
    }

    /// A request ended: idle again (and now the youngest idle connection).
    pub(super) fn idle(&self) {
        let mut t = self.admission.lock();
        t.clock += 1;
        let now = t.clock;
        if let Some(e) = t.entries.get_mut(&self.id) {
            e.state = match e.state {
                State::Busy { n } if n > 1 => State::Busy { n: n - 1 },
                _ => State::Idle { since: now },
            };
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.admission.lock();
        if let Some(e) = t.entries.remove(&self.id) {
            release(&mut t.per_address, e.remote);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn one_address_is_capped_and_its_slots_come_back() {
        let a = Admission::new(10, 2);
        let s1 = a.admit(ip(2)).expect("first");
        let _s2 = a.admit(ip(2)).expect("second");
        assert_eq!(a.admit(ip(2)).expect_err("capped"), Refused::AddressFull);
        assert!(a.admit(ip(3)).is_ok(), "another address is not affected");
        drop(s1);
        assert!(a.admit(ip(2)).is_ok(), "a closed connection frees its slot");
    }

    #[test]
    fn when_full_the_oldest_idle_is_shed_and_busy_ones_never() {
        let a = Admission::new(3, 10);
        let oldest = a.admit(ip(2)).expect("1");
        let busy = a.admit(ip(2)).expect("2");
        let younger = a.admit(ip(2)).expect("3");
        busy.busy();
        // Full: the newcomer gets in and the connection idle longest is told to go.
        let newcomer = a.admit(ip(1)).expect("a newcomer is admitted");
        assert!(ready(oldest.shed.notified()), "the oldest idle one is shed");
        assert!(!ready(younger.shed.notified()));
        assert_eq!(a.held(ip(2)), (3, 2));
        // A connection that just served a request is idle since then: the newcomer, idle
        // since it came, is now the one idle longest.
        younger.busy();
        younger.idle();
        let fourth = a.admit(ip(4)).expect("admitted");
        assert!(
            ready(newcomer.shed.notified()),
            "the next idle longest is shed"
        );
        assert!(!ready(younger.shed.notified()));
        // Every slot busy: a newcomer is refused and nobody is shed.
        younger.busy();
        fourth.busy();
        assert_eq!(a.admit(ip(5)).expect_err("all busy"), Refused::AllBusy);
        assert!(!ready(busy.shed.notified()));
        assert_eq!(a.held(ip(5)), (3, 0));
        // A shed slot dropped by its task changes no count twice.
        drop(oldest);
        drop(newcomer);
        assert_eq!(a.held(ip(2)), (3, 2));
    }

    /// Whether `f` is ready without waiting (a stored `notify_one` permit).
    fn ready(f: impl std::future::Future<Output = ()>) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        f.as_mut().poll(&mut cx).is_ready()
    }
}
