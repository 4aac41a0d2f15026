//! TCP that dials from a fresh local port.
//!
//! libp2p dials TCP from the listening port by default (`PortUse::Reuse`, meant for NAT
//! hole punching, which this node does not do). Then every connection to a given peer
//! address has the same four-tuple, and a dial made while an earlier connection with that
//! tuple is still in `TIME_WAIT` (up to a minute after it closed, on either of two nodes that
//! talked before, or on a node that restarted on the same ports) fails with "address already
//! in use". libp2p-tcp retries from a new port only for `EADDRNOTAVAIL`, so such a dial is
//! lost: a witness request or a notification to a federated peer fails for no reason the
//! operator can act on. Dialing from an ephemeral port gives each connection its own tuple.
//! Listening is unchanged.

use std::pin::Pin;
use std::task::{Context, Poll};

use libp2p::core::transport::{DialOpts, ListenerId, PortUse, TransportError, TransportEvent};
use libp2p::{Multiaddr, Transport};

/// Wraps a transport so that every dial asks for a new local port.
pub(crate) struct NewPortDials<T>(pub(crate) T);

impl<T: Transport + Unpin> Transport for NewPortDials<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.0.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.0.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        self.0.dial(
            addr,
            DialOpts {
                port_use: PortUse::New,
                ..opts
            },
        )
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.0).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use libp2p::core::Endpoint;
    use libp2p::multiaddr::Protocol;
    use libp2p::tcp;

    use super::*;

    // A transport listening on a port dials from another one, even when the swarm asks to
    // reuse the listening port (its default), so two connections to one address never share
    // a four-tuple.
    #[tokio::test]
    async fn dials_leave_from_a_fresh_port_not_the_listening_one() {
        let mut transport = NewPortDials(tcp::tokio::Transport::new(tcp::Config::default()));
        transport
            .listen_on(ListenerId::next(), "/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        // The listener's address is its first event.
        let listen_port = match std::future::poll_fn(|cx| Pin::new(&mut transport).poll(cx)).await {
            TransportEvent::NewAddress { listen_addr, .. } => match listen_addr.iter().nth(1) {
                Some(Protocol::Tcp(port)) => port,
                other => panic!("a TCP listen address, not {other:?}"),
            },
            other => panic!("the listener's address first, not {other:?}"),
        };
        let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", target.local_addr().unwrap().port())
            .parse()
            .unwrap();
        for _ in 0..2 {
            let dial = transport
                .dial(
                    to.clone(),
                    DialOpts {
                        role: Endpoint::Dialer,
                        port_use: PortUse::Reuse,
                    },
                )
                .unwrap();
            let (dialed, accepted) = tokio::join!(dial, target.accept());
            dialed.unwrap();
            let (_, from) = accepted.unwrap();
            assert_ne!(
                from.port(),
                listen_port,
                "the dial reused the listening port"
            );
        }
    }
}
