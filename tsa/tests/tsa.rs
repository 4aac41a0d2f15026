//! vm-tsa against a real TSA: `openssl ts -reply` behind loopback HTTP (feature `testing`),
//! plus hand-made misbehaving servers for the client's error paths.
//!
//! One test binary for the crate (link time on 2 cores). Every test starts its own TSA in
//! its own temporary directory, so tests are independent and run in parallel.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vm_tsa::testing::{OpensslTsa, TEST_POLICY, TsaKey};
use vm_tsa::{
    DEFAULT_MAX_SKEW_SECS, TsaClient, TsaError, TsaTrust, VerifiedToken, verify_token,
    verify_token_with_skew,
};

const TIMEOUT: Duration = Duration::from_secs(20);
const DATA: &[u8] = b"batch root 7f3a: the bytes a VaultMesh anchor time-stamps";

/// The OS clock, only to check that a real TSA's genTime is sane: the crate itself never
/// reads a clock (clippy.toml bans it), but this test is about an external process's clock.
#[allow(clippy::disallowed_methods)]
fn wall_clock_unix() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since_epoch.as_secs()).unwrap()
}

/// A running TSA with its directory, the trust store of its CA, and a client for it.
struct Fixture {
    tsa: OpensslTsa,
    trust: TsaTrust,
    client: TsaClient,
    dir: TempDir,
}

fn fixture(key: TsaKey) -> Fixture {
    let dir = TempDir::new().unwrap();
    let tsa = OpensslTsa::start_with(dir.path(), key).unwrap();
    let trust = TsaTrust::from_pem_files(&[tsa.ca_pem_path()]).unwrap();
    let client = TsaClient::new(&tsa.url(), TIMEOUT).unwrap();
    Fixture {
        tsa,
        trust,
        client,
        dir,
    }
}

/// Gets a token over [`DATA`], verifies it, and checks what it says.
async fn token_verifies(key: TsaKey) -> (Fixture, Vec<u8>, VerifiedToken) {
    let f = fixture(key);
    let before = wall_clock_unix();
    let token = f
        .client
        .timestamp(DATA, 0x0123_4567_89ab_cdef)
        .await
        .unwrap();
    let after = wall_clock_unix();
    let verified = verify_token(&token, DATA, &f.trust, after).unwrap();
    // openssl writes whole seconds; allow for the truncation and a slow machine.
    let gen_time = verified.gen_time_unix();
    assert!(
        (before - 2..=after + 2).contains(&gen_time),
        "genTime {gen_time} not within [{before}, {after}]"
    );
    assert_eq!(verified.policy, TEST_POLICY);
    assert!(
        verified.tsa_subject.contains("test TSA"),
        "{}",
        verified.tsa_subject
    );
    assert!(!verified.serial.is_empty());
    (f, token, verified)
}

#[tokio::test]
async fn ecdsa_p256_token_verifies() {
    let (f, token, verified) = token_verifies(TsaKey::EcP256Sha256).await;
    // The TSA certificate itself may be the trust anchor, instead of its CA.
    let leaf_trust = TsaTrust::from_pem_files(&[f.tsa.tsa_cert_pem_path()]).unwrap();
    let again = verify_token(&token, DATA, &leaf_trust, verified.gen_time_unix()).unwrap();
    assert_eq!(again, verified);
    // Serial numbers increase per token.
    let second = f.client.timestamp(DATA, 2).await.unwrap();
    let second = verify_token(&second, DATA, &f.trust, wall_clock_unix()).unwrap();
    assert_ne!(second.serial, verified.serial);
}

#[tokio::test]
async fn ecdsa_p384_token_verifies() {
    token_verifies(TsaKey::EcP384Sha384).await;
}

#[tokio::test]
async fn rsa_sha256_token_verifies() {
    token_verifies(TsaKey::Rsa2048Sha256).await;
}

#[tokio::test]
async fn rsa_sha512_token_verifies() {
    token_verifies(TsaKey::Rsa2048Sha512).await;
}

/// The position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    for key in [TsaKey::EcP256Sha256, TsaKey::Rsa2048Sha256] {
        let (f, token, _) = token_verifies(key).await;
        let now = wall_clock_unix();

        // The signature is the SignerInfo's last field, and openssl adds no unsigned
        // attributes: the token's last byte is the signature's.
        let mut bad_sig = token.clone();
        *bad_sig.last_mut().unwrap() ^= 0x01;
        assert!(
            matches!(
                verify_token(&bad_sig, DATA, &f.trust, now),
                Err(TsaError::BadSignature)
            ),
            "{key:?}"
        );

        // The imprint sits in the TSTInfo: changing it must break the signed digest.
        let mut bad_tst = token.clone();
        let at = find(&token, &sha256(DATA));
        bad_tst[at] ^= 0x01;
        assert!(
            matches!(
                verify_token(&bad_tst, DATA, &f.trust, now),
                Err(TsaError::ContentDigestMismatch)
            ),
            "{key:?}"
        );
    }
}

#[tokio::test]
async fn every_single_byte_change_is_refused_or_harmless() {
    let (f, token, verified) = token_verifies(TsaKey::EcP256Sha256).await;
    let now = verified.gen_time_unix();
    for i in 0..token.len() {
        let mut changed = token.clone();
        changed[i] ^= 0x20;
        // Some bytes are not covered by the signature (the CA copy in `certificates`, the
        // digestAlgorithms set): a change there may still verify, but must say the same.
        if let Ok(v) = verify_token(&changed, DATA, &f.trust, now) {
            assert_eq!(v, verified, "byte {i} changed what the token says");
        }
    }
}

#[tokio::test]
async fn malformed_tokens_are_refused_without_panic() {
    let (f, token, _) = token_verifies(TsaKey::EcP256Sha256).await;
    let now = wall_clock_unix();
    assert!(matches!(
        verify_token(&[], DATA, &f.trust, now),
        Err(TsaError::Malformed(_))
    ));
    for cut in 0..token.len() {
        assert!(
            verify_token(&token[..cut], DATA, &f.trust, now).is_err(),
            "cut {cut}"
        );
    }
    let mut extended = token.clone();
    extended.push(0);
    assert!(matches!(
        verify_token(&extended, DATA, &f.trust, now),
        Err(TsaError::Malformed(_))
    ));
    // Deterministic pseudo-random inputs (xorshift), some starting like a SEQUENCE.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..512usize {
        let mut bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        if len % 2 == 0 && len >= 2 {
            bytes[0] = 0x30;
        }
        assert!(verify_token(&bytes, DATA, &f.trust, now).is_err());
    }
}

#[tokio::test]
async fn wrong_data_is_an_imprint_mismatch() {
    let (f, token, verified) = token_verifies(TsaKey::EcP256Sha256).await;
    let result = verify_token(&token, b"other bytes", &f.trust, verified.gen_time_unix());
    assert!(
        matches!(result, Err(TsaError::ImprintMismatch)),
        "{result:?}"
    );
}

#[tokio::test]
async fn another_tsa_is_untrusted() {
    let (_f, token, verified) = token_verifies(TsaKey::EcP256Sha256).await;
    // Same key type, hence the same CA and TSA names: only the signatures tell them apart.
    let other = fixture(TsaKey::EcP256Sha256);
    let result = verify_token(&token, DATA, &other.trust, verified.gen_time_unix());
    assert!(
        matches!(result, Err(TsaError::UntrustedSigner(_))),
        "{result:?}"
    );
    // Trusting other TSAs' leaf certificates does not help either.
    let leaf = TsaTrust::from_pem_files(&[other.tsa.tsa_cert_pem_path()]).unwrap();
    let result = verify_token(&token, DATA, &leaf, verified.gen_time_unix());
    assert!(
        matches!(result, Err(TsaError::UntrustedSigner(_))),
        "{result:?}"
    );
    // An empty trust store trusts nothing.
    let result = verify_token(&token, DATA, &TsaTrust::default(), verified.gen_time_unix());
    assert!(
        matches!(result, Err(TsaError::UntrustedSigner(_))),
        "{result:?}"
    );
    // Both CAs together: the right one is found.
    let both = TsaTrust::from_pem_files(&[other.tsa.ca_pem_path(), _f.tsa.ca_pem_path()]).unwrap();
    assert_eq!(both.len(), 2);
    verify_token(&token, DATA, &both, verified.gen_time_unix()).unwrap();
}

#[tokio::test]
async fn a_token_from_the_future_is_refused() {
    let (f, token, verified) = token_verifies(TsaKey::EcP256Sha256).await;
    let gen_time = verified.gen_time_unix();
    // Exactly at the skew limit is fine; one second further is not.
    verify_token(&token, DATA, &f.trust, gen_time - DEFAULT_MAX_SKEW_SECS).unwrap();
    let result = verify_token(&token, DATA, &f.trust, gen_time - DEFAULT_MAX_SKEW_SECS - 1);
    assert!(
        matches!(result, Err(TsaError::FutureTime { .. })),
        "{result:?}"
    );
    let result = verify_token_with_skew(&token, DATA, &f.trust, gen_time - 1, 0);
    assert!(
        matches!(result, Err(TsaError::FutureTime { .. })),
        "{result:?}"
    );
    verify_token_with_skew(&token, DATA, &f.trust, gen_time, 0).unwrap();
}

#[test]
fn non_http_urls_are_refused() {
    for url in [
        "https://127.0.0.1/tsa",
        "ftp://127.0.0.1/",
        "127.0.0.1:318",
        "file:///tmp/x",
    ] {
        let result = TsaClient::new(url, TIMEOUT);
        assert!(
            matches!(result, Err(TsaError::InvalidUrl { .. })),
            "{url}: {result:?}"
        );
    }
}

/// A server that answers every connection with `response`, raw bytes, after reading the
/// request headers and body (or never answers, if `response` is `None`).
async fn fake_server(response: Option<Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read until the end of the headers plus Content-Length bytes of body.
                loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if request.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                match response {
                    Some(bytes) => {
                        let _ = stream.write_all(&bytes).await;
                        let _ = stream.shutdown().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            });
        }
    });
    format!("http://{addr}/tsa")
}

fn http_response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

/// DER `tag len contents` (test-side encoder, for hand-made responses).
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(contents);
    out
}

async fn timestamp_from(response: Option<Vec<u8>>, timeout: Duration) -> Result<Vec<u8>, TsaError> {
    let url = fake_server(response).await;
    TsaClient::new(&url, timeout)
        .unwrap()
        .timestamp(DATA, 7)
        .await
}

const REPLY: &str = "application/timestamp-reply";

#[tokio::test]
async fn garbage_answers_are_refused() {
    // A DER-less body with the right media type.
    let r = timestamp_from(
        Some(http_response("200 OK", REPLY, b"hello, not DER")),
        TIMEOUT,
    )
    .await;
    assert!(matches!(r, Err(TsaError::Malformed(_))), "{r:?}");
    // Not HTTP at all.
    let r = timestamp_from(Some(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()), TIMEOUT).await;
    assert!(matches!(r, Err(TsaError::Http(_))), "{r:?}");
    // An HTTP error.
    let r = timestamp_from(
        Some(http_response(
            "500 Internal Server Error",
            "text/plain",
            b"x",
        )),
        TIMEOUT,
    )
    .await;
    assert!(
        matches!(&r, Err(TsaError::Http(m)) if m.contains("500")),
        "{r:?}"
    );
    // The wrong media type.
    let r = timestamp_from(
        Some(http_response("200 OK", "text/html", b"<html>")),
        TIMEOUT,
    )
    .await;
    assert!(
        matches!(&r, Err(TsaError::Http(m)) if m.contains("text/html")),
        "{r:?}"
    );
    // Too large.
    let big = vec![0x30; vm_tsa::MAX_RESPONSE_BYTES + 1];
    let r = timestamp_from(Some(http_response("200 OK", REPLY, &big)), TIMEOUT).await;
    assert!(matches!(r, Err(TsaError::TooLarge { .. })), "{r:?}");
    // No answer at all.
    let short = Duration::from_millis(300);
    let r = timestamp_from(None, short).await;
    assert!(
        matches!(r, Err(TsaError::Timeout(t)) if t == short),
        "{r:?}"
    );
    // Nobody listening.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let r = TsaClient::new(&url, TIMEOUT)
        .unwrap()
        .timestamp(DATA, 1)
        .await;
    assert!(matches!(r, Err(TsaError::Http(_))), "{r:?}");
}

#[tokio::test]
async fn rejections_and_replayed_tokens_are_refused() {
    // status rejection (2), statusString "no", failInfo badAlg.
    let info = der(
        0x30,
        &[
            der(0x02, &[2]),
            der(0x30, &der(0x0c, b"no")),
            der(0x03, &[0x07, 0x80]),
        ]
        .concat(),
    );
    let rejection = der(0x30, &info);
    let r = timestamp_from(Some(http_response("200 OK", REPLY, &rejection)), TIMEOUT).await;
    match r {
        Err(TsaError::Rejected { status: 2, text }) => assert_eq!(text, "no; failInfo: badAlg"),
        other => panic!("{other:?}"),
    }

    // A genuine token for nonce 7 over DATA, replayed: fine for the same question, refused
    // for another nonce or other data.
    let f = fixture(TsaKey::EcP256Sha256);
    let token = f.client.timestamp(DATA, 7).await.unwrap();
    let granted = der(0x30, &[der(0x30, &der(0x02, &[0])), token.clone()].concat());
    let replay = Some(http_response("200 OK", REPLY, &granted));
    assert_eq!(
        timestamp_from(replay.clone(), TIMEOUT).await.unwrap(),
        token
    );
    let url = fake_server(replay).await;
    let client = TsaClient::new(&url, TIMEOUT).unwrap();
    let r = client.timestamp(DATA, 8).await;
    assert!(matches!(r, Err(TsaError::NonceMismatch)), "{r:?}");
    let r = client.timestamp(b"other", 7).await;
    assert!(matches!(r, Err(TsaError::ImprintMismatch)), "{r:?}");
}

/// The attack ESSCertID exists for: another certificate with the TSA's key, issuer and
/// serial number (here: other validity dates) put in the token instead of the real one.
/// The signature still verifies with its key; the signed certificate hash does not match.
#[tokio::test]
async fn a_substituted_signer_certificate_is_refused() {
    // RSA: fixed-size signatures, so the substitute has the same length and can be spliced
    // in without re-encoding the token. Rsa2048Sha256 uses ESSCertID v1, Rsa2048Sha512 v2.
    for key in [TsaKey::Rsa2048Sha256, TsaKey::Rsa2048Sha512] {
        let (f, token, verified) = token_verifies(key).await;
        let dir = f.dir.path();
        let substitute = dir.join("substitute.pem");
        let status = std::process::Command::new("openssl")
            .env("OPENSSL_CONF", dir.join("openssl.cnf"))
            .args([
                "x509",
                "-req",
                "-set_serial",
                "2",
                "-days",
                "1000",
                "-sha256",
            ])
            .args(["-extensions", "v3_tsa", "-extfile"])
            .arg(dir.join("openssl.cnf"))
            .arg("-in")
            .arg(dir.join("tsa.csr"))
            .arg("-CA")
            .arg(dir.join("ca.pem"))
            .arg("-CAkey")
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(&substitute)
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        let pem_der = |path| {
            let text = std::fs::read(path).unwrap();
            pem::parse(text).unwrap().into_contents()
        };
        let original = pem_der(f.tsa.tsa_cert_pem_path());
        let replacement = pem_der(substitute);
        assert_eq!(original.len(), replacement.len());
        assert_ne!(original, replacement);
        let at = find(&token, &original);
        let mut swapped = token.clone();
        swapped[at..at + original.len()].copy_from_slice(&replacement);
        let result = verify_token(&swapped, DATA, &f.trust, verified.gen_time_unix());
        assert!(
            matches!(result, Err(TsaError::SignerCertMismatch)),
            "{key:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn the_test_tsa_answers_only_timestamp_queries() {
    let f = fixture(TsaKey::EcP256Sha256);
    let addr = f
        .tsa
        .url()
        .trim_start_matches("http://")
        .trim_end_matches("/tsa")
        .to_owned();
    let send = |method: &'static str, content_type: &'static str, body: &'static [u8]| {
        let addr = addr.clone();
        async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let io = hyper_util::rt::TokioIo::new(stream);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let req = hyper::Request::builder()
                .method(method)
                .uri("/tsa")
                .header("content-type", content_type)
                .body(http_body_util::Full::new(hyper::body::Bytes::from_static(
                    body,
                )))
                .unwrap();
            let response = sender.send_request(req).await.unwrap();
            let status = response.status().as_u16();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap();
            (status, body.to_bytes().to_vec())
        }
    };
    let query = "application/timestamp-query";
    assert_eq!(send("GET", query, b"").await.0, 405);
    assert_eq!(send("POST", "text/plain", b"x").await.0, 415);
    // Not a TimeStampReq: openssl answers with a TimeStampResp of status rejection (2).
    let (status, body) = send("POST", query, b"junk").await;
    assert_eq!(status, 200);
    assert!(
        body.windows(3).take(8).any(|w| w == [0x02, 0x01, 0x02]),
        "{body:02x?}"
    );
}
