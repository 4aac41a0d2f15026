//! The federation HTTP API's wire rules (seed §5, DESIGN §8), without I/O: how requests are
//! signed and checked ([`signing`]), and how each federation request and response looks over
//! HTTP ([`routes`]). The node's HTTPS server and client (`crate::node::https`) use both; the
//! same request handler serves libp2p and HTTP.

pub mod client;
pub mod openapi;
pub mod routes;
pub mod signing;
