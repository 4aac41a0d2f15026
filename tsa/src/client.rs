//! The RFC 3161 client: one HTTP/1.1 POST per time stamp (RFC 3161 §3.4).

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::crypto::DigestAlg;
use crate::der::AlgorithmId;
use crate::token::{self, STATUS_GRANTED, STATUS_GRANTED_WITH_MODS};
use crate::{MAX_RESPONSE_BYTES, MAX_TOKEN_BYTES, TsaError, der, oid};

/// The media types of RFC 3161 §3.4.
const QUERY_TYPE: &str = "application/timestamp-query";
const REPLY_TYPE: &str = "application/timestamp-reply";

/// Asks one TSA for time-stamp tokens.
///
/// Plain `http://` only: a token is self-authenticating (it is signed, and the verifier
/// checks it against the certificates it trusts), so TLS would add nothing to its
/// integrity, and public TSAs are served over plain HTTP. The client checks that the
/// answer belongs to the question (status, nonce, imprint); whether the TSA is trusted is
/// [`crate::verify_token`]'s job.
///
/// Each request opens its own connection: time stamps are requested once per anchor cycle,
/// so a connection pool would only add state.
#[derive(Clone, Debug)]
pub struct TsaClient {
    /// The URL as given, for messages.
    url: String,
    /// `host[:port]`, for the Host header.
    authority: String,
    /// The host to connect to (IPv6 brackets removed).
    host: String,
    port: u16,
    /// Path and query of the POST.
    path: String,
    timeout: Duration,
}

impl TsaClient {
    /// A client for the TSA at `url`, e.g. `http://timestamp.example.org/tsa`. Every
    /// request (connect, send, receive) must finish within `timeout`.
    ///
    /// Refuses other schemes (`https` included, see the type's doc), URLs without a host,
    /// and URLs with user info (credentials in a URL end up in logs).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, TsaError> {
        let invalid = |reason| TsaError::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => {}
            Some(_) => return Err(invalid("only http:// is supported (RFC 3161 over HTTP)")),
            None => return Err(invalid("no scheme: expected http://host[:port]/path")),
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user info in the URL is not supported"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        Ok(Self {
            url: url.to_owned(),
            authority: authority.as_str().to_owned(),
            host,
            port: uri.port_u16().unwrap_or(80),
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path
            },
            timeout,
        })
    }

    /// The URL this client posts to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests a token over SHA-256(`data`), with `nonce` (the caller's randomness: this
    /// crate reads no RNG) and certReq set so the token carries the TSA certificate.
    ///
    /// Checks that the TSA granted the request (status granted or grantedWithMods, else
    /// [`TsaError::Rejected`] with its text), that the token is well formed, and that its
    /// nonce and imprint are the request's ([`TsaError::NonceMismatch`],
    /// [`TsaError::ImprintMismatch`]). Returns the token's DER (the ContentInfo, without
    /// the response's status), ready for [`crate::verify_token`].
    ///
    /// Must run inside a tokio runtime with the time driver enabled.
    pub async fn timestamp(&self, data: &[u8], nonce: u64) -> Result<Vec<u8>, TsaError> {
        let imprint = DigestAlg::Sha256.digest(data);
        let request = token::encode_request(imprint.as_ref(), nonce);
        let body = tokio::time::timeout(self.timeout, self.post(request))
            .await
            .map_err(|_| TsaError::Timeout(self.timeout))??;
        check_response(&body, imprint.as_ref(), nonce)
    }

    /// One POST over a fresh connection; the body of a 200 reply with the right media type.
    async fn post(&self, request: Vec<u8>) -> Result<Bytes, TsaError> {
        let http = |what: &str, e: &dyn std::fmt::Display| {
            TsaError::Http(format!("{what} {}: {e}", self.url))
        };
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| http("connect to", &e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| http("handshake with", &e))?;
        // The connection future drives the socket; it ends when the request is done and the
        // sender dropped, or is aborted with this guard when we return early.
        let _connection = AbortOnDrop(tokio::spawn(connection));

        let req = Request::builder()
            .method(Method::POST)
            .uri(self.path.as_str())
            .header(HOST, self.authority.as_str())
            .header(CONTENT_TYPE, QUERY_TYPE)
            .header(ACCEPT, REPLY_TYPE)
            .body(Full::new(Bytes::from(request)))
            .map_err(|e| http("build request for", &e))?;
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| http("request to", &e))?;

        if response.status() != StatusCode::OK {
            return Err(TsaError::Http(format!(
                "{} answered HTTP {}",
                self.url,
                response.status()
            )));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case(REPLY_TYPE) {
            return Err(TsaError::Http(format!(
                "{} answered content type {content_type:?}, not {REPLY_TYPE}",
                self.url
            )));
        }
        let collected = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    TsaError::TooLarge {
                        what: "TSA response",
                        len: MAX_RESPONSE_BYTES + 1,
                        max: MAX_RESPONSE_BYTES,
                    }
                } else {
                    TsaError::Http(format!("reading the answer of {}: {e}", self.url))
                }
            })?;
        Ok(collected.to_bytes())
    }
}

/// Aborts a spawned task when dropped, so no connection outlives its request.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Checks a TimeStampResp against the request; returns the token DER.
fn check_response(body: &[u8], imprint: &[u8], nonce: u64) -> Result<Vec<u8>, TsaError> {
    let response = token::parse_response(body)?;
    if response.status != STATUS_GRANTED && response.status != STATUS_GRANTED_WITH_MODS {
        return Err(TsaError::Rejected {
            status: response.status,
            text: response.text,
        });
    }
    let token_der = response
        .token
        .ok_or_else(|| der::malformed("TimeStampResp", "granted without a token"))?;
    if token_der.len() > MAX_TOKEN_BYTES {
        return Err(TsaError::TooLarge {
            what: "time-stamp token",
            len: token_der.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    let token = token::parse_token(token_der)?;
    let tst = token::parse_tst_info(token.tst_info)?;
    if tst.nonce != Some(der::uint_contents(nonce).as_slice()) {
        return Err(TsaError::NonceMismatch);
    }
    if !is_sha256(&tst.imprint_alg) || tst.imprint != imprint {
        return Err(TsaError::ImprintMismatch);
    }
    Ok(token_der.to_vec())
}

fn is_sha256(alg: &AlgorithmId<'_>) -> bool {
    alg.oid == oid::SHA256 && alg.params_absent_or_null()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn urls() {
        let t = Duration::from_secs(1);
        let c = TsaClient::new("http://127.0.0.1:8080/tsa?x=1", t).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.path.as_str()),
            ("127.0.0.1", 8080, "/tsa?x=1")
        );
        assert_eq!(c.authority, "127.0.0.1:8080");
        let c = TsaClient::new("HTTP://tsa.example", t).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.path.as_str()),
            ("tsa.example", 80, "/")
        );
        let c = TsaClient::new("http://[::1]:3180/", t).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 3180));
        for bad in [
            "https://tsa.example/",
            "ftp://tsa.example/",
            "tsa.example",
            "/tsa",
            "",
            "http://user:pw@tsa.example/",
            "http:///path",
        ] {
            assert!(
                matches!(TsaClient::new(bad, t), Err(TsaError::InvalidUrl { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejected_and_empty_responses() {
        let info = der::encode(der::tag::SEQUENCE, &der::encode(der::tag::INTEGER, &[2]));
        let resp = der::encode(der::tag::SEQUENCE, &info);
        assert!(matches!(
            check_response(&resp, &[0; 32], 1),
            Err(TsaError::Rejected { status: 2, .. })
        ));
        let granted = der::encode(
            der::tag::SEQUENCE,
            &der::encode(der::tag::SEQUENCE, &der::encode(der::tag::INTEGER, &[0])),
        );
        assert!(matches!(
            check_response(&granted, &[0; 32], 1),
            Err(TsaError::Malformed(_))
        ));
        assert!(matches!(
            check_response(b"", &[0; 32], 1),
            Err(TsaError::Malformed(_))
        ));
    }
}
