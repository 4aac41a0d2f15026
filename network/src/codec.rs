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

/// The marker in the I/O error an oversized response produces.
pub const OVERSIZED: &str = "message exceeds the size limit";

/// An inbound request as read. libp2p drops a request whose read fails without telling the
/// behaviour (it only logs at debug level), so an oversized request is not an error here but a
/// frame of its own: the swarm can count it, penalise the sender and answer with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The body, within the limit.
    Body(Vec<u8>),
    /// More than [`MAX_REQUEST_BYTES`] came; the rest was not read.
    Oversized,
}

/// The response sent for an oversized request, in the federation's error form.
pub fn oversized_response() -> Vec<u8> {
    format!(
        r#"{{"response":"error","error":"oversized","message":"request exceeds {MAX_REQUEST_BYTES} bytes","permanent":true}}"#
    )
    .into_bytes()
}

/// Frames requests and responses as raw bytes with size limits.
#[derive(Debug, Clone, Default)]
pub struct BytesCodec;

/// Reads to the end or to one byte past `limit`; `None` when over the limit.
async fn read_limited<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: u64,
) -> io::Result<Option<Vec<u8>>> {
    let mut buffer = Vec::new();
    // One byte past the limit tells "exactly the limit" from "over it".
    io.take(limit + 1).read_to_end(&mut buffer).await?;
    Ok((buffer.len() as u64 <= limit).then_some(buffer))
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(match read_limited(io, MAX_REQUEST_BYTES).await? {
            Some(body) => Frame::Body(body),
            None => Frame::Oversized,
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_limited(io, MAX_RESPONSE_BYTES).await?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{OVERSIZED} ({MAX_RESPONSE_BYTES} bytes)"),
            )
        })
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Frame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if let Frame::Body(body) = request {
            io.write_all(&body).await?;
        }
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
