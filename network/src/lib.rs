//! `vm-network` will own the transports: the libp2p swarm (Kademlia, gossipsub,
//! request-response, identify, ping), DNS SRV/TXT discovery, and the HTTP shim server and client
//! (mutual TLS, signed requests), with codecs and size limits. It turns bytes into typed
//! messages and back; it never decides protocol outcomes.
