//! The request-response codec of `/vaultmesh/federation/1.0.0`: one JSON document per stream,
//! read to the end with a hard size limit, so an oversized or endless request costs the reader
//! at most the limit. Parsing the JSON is the node's job; this layer only frames bytes.

use std::io;

use libp2p::futures::prelude::*;
use libp2p::{StreamProtocol, request_response};

/// The federation protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/vaultmesh/federation/1.0.0");
/// Largest request body (DESIGN §8).
pub const MAX_REQUEST_BYTES: u64 = 1024 * 1024;
/// Largest response body (DESIGN §8).
pub const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

/// The marker in the I/O error an oversized message produces; the swarm counts these apart
/// from other stream failures.
pub const OVERSIZED: &str = "message exceeds the size limit";

/// Frames requests and responses as raw bytes with size limits.
#[derive(Debug, Clone, Default)]
pub struct BytesCodec;

async fn read_limited<T: AsyncRead + Unpin + Send>(io: &mut T, limit: u64) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::new();
    // One byte past the limit tells "exactly the limit" from "over it".
    io.take(limit + 1).read_to_end(&mut buffer).await?;
    if buffer.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{OVERSIZED} ({limit} bytes)"),
        ));
    }
    if buffer.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "empty message"));
    }
    Ok(buffer)
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_limited(io, MAX_REQUEST_BYTES).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_limited(io, MAX_RESPONSE_BYTES).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&request).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&response).await?;
        io.close().await
    }
}
