//! Mutual TLS pinned to mesh keys (`vm_network::tls`): real TCP sockets on 127.0.0.1 with
//! tokio-rustls on both ends, plus unit cases of the certificate check.
//!
//! Time is a fixed clock (`NOW`), the same for both ends; certificates are made relative to it.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, HandshakeKind, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use vm_network::tls::{
    TlsClock, TlsError, TlsIdentity, client_config, discovery_client_config, ed25519_key_of,
    peer_key_of_client, peer_key_of_server, server_config,
};
use vm_receipts::MeshKey;
use x509_parser::extensions::GeneralName;

/// 2026-09-21T…Z; any fixed instant works, both ends read it.
const NOW: i64 = 1_790_000_000;
const DAY: i64 = 86_400;

fn clock() -> TlsClock {
    Arc::new(|| NOW)
}

fn names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into()]
}

fn seed(n: u8) -> [u8; 32] {
    [n; 32]
}

/// A mesh identity valid from an hour before `NOW` for 30 days.
fn identity(n: u8) -> TlsIdentity {
    TlsIdentity::new(
        &seed(n),
        &format!("did:vm:mesh:mesh-{n}"),
        &names(),
        NOW - 3600,
        30,
    )
    .unwrap()
}

/// The mesh key's public half, computed independently (ed25519-dalek via vm-receipts).
fn mesh_public(n: u8) -> [u8; 32] {
    MeshKey::from_seed(&seed(n)).public_key().to_bytes()
}

/// One end's view of a finished connection: the peer's key, the kind of handshake, the bytes
/// received; or the handshake/IO error text.
type EndResult = Result<(Option<[u8; 32]>, HandshakeKind, Vec<u8>), String>;

/// What each end saw of one connection.
struct Outcome {
    /// Server side: the client's key and the bytes it received, or the handshake/IO error.
    server: EndResult,
    /// Client side: the server's key and the bytes it received, or the error.
    client: EndResult,
}

/// One TCP connection over 127.0.0.1: the client sends "hello", the server answers "world".
async fn connect_once(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(server);
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let key = peer_key_of_server(tls.get_ref().1);
        let kind = tls.get_ref().1.handshake_kind().unwrap();
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(b"world").await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((key, kind, buf.to_vec()))
    });
    let client_side = async move {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = TlsConnector::from(client)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let key = peer_key_of_client(tls.get_ref().1);
        let kind = tls.get_ref().1.handshake_kind().unwrap();
        tls.write_all(b"hello").await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((key, kind, buf.to_vec()))
    };
    let run = async move {
        let client = client_side.await;
        let server = server_task.await.unwrap();
        Outcome { server, client }
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the connection neither completed nor failed")
}

/// An Ed25519 signing key for rustls (to build deliberately mismatched cert/key pairs).
fn ed25519_signing_key(n: u8) -> Arc<dyn rustls::sign::SigningKey> {
    let mut pkcs8 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    pkcs8.extend_from_slice(&seed(n));
    rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)))
        .unwrap()
}

/// A self-signed certificate for a fresh ECDSA P-256 key, made by rcgen.
fn ecdsa_certificate() -> CertificateDer<'static> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(names()).unwrap();
    params.not_before = time::OffsetDateTime::from_unix_timestamp(NOW - DAY).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(NOW + DAY).unwrap();
    params.self_signed(&key).unwrap().der().clone()
}

fn certified(cert: CertificateDer<'static>, key_of: u8) -> Arc<SingleCertAndKey> {
    Arc::new(SingleCertAndKey::from(CertifiedKey::new(
        vec![cert],
        ed25519_signing_key(key_of),
    )))
}

// ---------------------------------------------------------------------------------------------
// Handshakes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn pinned_mutual_handshake_exchanges_bytes_and_both_sides_see_the_keys() {
    let (server_id, client_id) = (identity(1), identity(2));
    assert_eq!(server_id.public_key(), mesh_public(1));
    let server = server_config(&server_id, clock()).unwrap();
    let client = client_config(&client_id, mesh_public(1), clock()).unwrap();

    let out = connect_once(server, client).await;
    let (client_key, kind, got) = out.server.unwrap();
    assert_eq!(client_key, Some(mesh_public(2)));
    assert_eq!(kind, HandshakeKind::Full);
    assert_eq!(got, b"hello");
    let (server_key, _, got) = out.client.unwrap();
    assert_eq!(server_key, Some(mesh_public(1)));
    assert_eq!(got, b"world");
}

#[tokio::test]
async fn without_a_client_certificate_the_handshake_succeeds_anonymously() {
    let server = server_config(&identity(1), clock()).unwrap();
    let client = discovery_client_config(clock()).unwrap();

    let out = connect_once(server, client).await;
    let (client_key, _, got) = out.server.unwrap();
    assert_eq!(client_key, None);
    assert_eq!(got, b"hello");
    // The discovery client learns the server's key, to check against the record it fetches.
    let (server_key, _, _) = out.client.unwrap();
    assert_eq!(server_key, Some(mesh_public(1)));
}

#[tokio::test]
async fn a_client_pinning_another_key_refuses_the_server() {
    let server = server_config(&identity(1), clock()).unwrap();
    let client = client_config(&identity(2), mesh_public(3), clock()).unwrap();

    let out = connect_once(server, client).await;
    let client_err = out.client.unwrap_err();
    assert!(client_err.contains("KeyMismatch"), "{client_err}");
    let pinned = MeshKey::from_seed(&seed(3)).public_key().to_string();
    let found = MeshKey::from_seed(&seed(1)).public_key().to_string();
    assert!(client_err.contains(&pinned), "{client_err}");
    assert!(client_err.contains(&found), "{client_err}");
    let server_err = out.server.unwrap_err();
    assert!(server_err.contains("alert"), "{server_err}");
}

#[tokio::test]
async fn an_expired_client_certificate_is_refused_by_the_server() {
    let server = server_config(&identity(1), clock()).unwrap();
    let expired =
        TlsIdentity::new(&seed(2), "did:vm:mesh:mesh-2", &names(), NOW - 10 * DAY, 1).unwrap();
    let client = client_config(&expired, mesh_public(1), clock()).unwrap();

    let out = connect_once(server, client).await;
    let server_err = out.server.unwrap_err();
    assert!(server_err.contains("certificate expired"), "{server_err}");
    // TLS 1.3: the client's side of the handshake ends first; it learns of the refusal from
    // the server's alert at its first read.
    let client_err = out.client.unwrap_err();
    assert!(client_err.contains("CertificateExpired"), "{client_err}");
}

#[tokio::test]
async fn a_not_yet_valid_client_certificate_is_refused_by_the_server() {
    let server = server_config(&identity(1), clock()).unwrap();
    let early = TlsIdentity::new(&seed(2), "did:vm:mesh:mesh-2", &names(), NOW + DAY, 30).unwrap();
    let client = client_config(&early, mesh_public(1), clock()).unwrap();

    let out = connect_once(server, client).await;
    let server_err = out.server.unwrap_err();
    assert!(server_err.contains("not valid yet"), "{server_err}");
    assert!(out.client.is_err());
}

#[tokio::test]
async fn an_expired_server_certificate_is_refused_by_the_client() {
    let expired =
        TlsIdentity::new(&seed(1), "did:vm:mesh:mesh-1", &names(), NOW - 10 * DAY, 1).unwrap();
    let server = server_config(&expired, clock()).unwrap();
    let client = client_config(&identity(2), mesh_public(1), clock()).unwrap();

    let out = connect_once(server, client).await;
    let client_err = out.client.unwrap_err();
    assert!(client_err.contains("certificate expired"), "{client_err}");
    let server_err = out.server.unwrap_err();
    assert!(server_err.contains("CertificateExpired"), "{server_err}");
}

#[tokio::test]
async fn a_client_certificate_for_an_ecdsa_key_is_refused_by_the_server() {
    let server = server_config(&identity(1), clock()).unwrap();
    // A client that presents an ECDSA certificate (signing the handshake with some Ed25519 key,
    // since the server accepts only Ed25519 signatures): the certificate itself is refused.
    let mut client = (*client_config(&identity(2), mesh_public(1), clock()).unwrap()).clone();
    client.client_auth_cert_resolver = certified(ecdsa_certificate(), 2);

    let out = connect_once(server, Arc::new(client)).await;
    let server_err = out.server.unwrap_err();
    assert!(server_err.contains("NotEd25519"), "{server_err}");
    assert!(out.client.is_err());
}

#[tokio::test]
async fn a_server_certificate_for_an_ecdsa_key_is_refused_by_the_client() {
    let mut server = (*server_config(&identity(1), clock()).unwrap()).clone();
    server.cert_resolver = certified(ecdsa_certificate(), 1);
    let client = discovery_client_config(clock()).unwrap();

    let out = connect_once(Arc::new(server), client).await;
    let client_err = out.client.unwrap_err();
    assert!(client_err.contains("NotEd25519"), "{client_err}");
    assert!(out.server.is_err());
}

#[tokio::test]
async fn a_client_presenting_someone_elses_certificate_fails_the_handshake_signature() {
    let server = server_config(&identity(1), clock()).unwrap();
    // Mesh 3's valid certificate, but the handshake signed with mesh 2's key.
    let mut client = (*client_config(&identity(2), mesh_public(1), clock()).unwrap()).clone();
    client.client_auth_cert_resolver = certified(identity(3).certificate_der().to_vec().into(), 2);

    let out = connect_once(server, Arc::new(client)).await;
    let server_err = out.server.unwrap_err();
    assert!(server_err.contains("BadSignature"), "{server_err}");
    assert!(out.client.is_err());
}

#[tokio::test]
async fn a_server_presenting_someone_elses_certificate_fails_the_handshake_signature() {
    let mut server = (*server_config(&identity(1), clock()).unwrap()).clone();
    // The pinned key's certificate, but the handshake signed with another key.
    server.cert_resolver = certified(identity(1).certificate_der().to_vec().into(), 4);
    let client = client_config(&identity(2), mesh_public(1), clock()).unwrap();

    let out = connect_once(Arc::new(server), client).await;
    let client_err = out.client.unwrap_err();
    assert!(client_err.contains("BadSignature"), "{client_err}");
    assert!(out.server.is_err());
}

#[tokio::test]
async fn every_connection_is_a_full_handshake_that_presents_and_checks_the_certificate() {
    // Count how often the server checks a client certificate (each check reads the clock once).
    let checks = Arc::new(AtomicUsize::new(0));
    let counting: TlsClock = {
        let checks = Arc::clone(&checks);
        Arc::new(move || {
            checks.fetch_add(1, Ordering::SeqCst);
            NOW
        })
    };
    let server = server_config(&identity(1), counting).unwrap();
    assert_eq!(server.send_tls13_tickets, 0);
    assert!(!server.ticketer.enabled());
    let client = client_config(&identity(2), mesh_public(1), clock()).unwrap();

    for round in 1..=2 {
        // Same configs (and so the same session stores) for both connections.
        let out = connect_once(Arc::clone(&server), Arc::clone(&client)).await;
        let (client_key, server_kind, _) = out.server.unwrap();
        let (_, client_kind, _) = out.client.unwrap();
        assert_eq!(client_key, Some(mesh_public(2)), "connection {round}");
        assert_eq!(server_kind, HandshakeKind::Full, "connection {round}");
        assert_eq!(client_kind, HandshakeKind::Full, "connection {round}");
        assert_eq!(checks.load(Ordering::SeqCst), round, "connection {round}");
    }
}

#[tokio::test]
async fn configs_speak_tls13_and_http11_only() {
    let server = server_config(&identity(1), clock()).unwrap();
    let client = client_config(&identity(2), mesh_public(1), clock()).unwrap();
    assert_eq!(server.alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert_eq!(client.alpn_protocols, vec![b"http/1.1".to_vec()]);

    // A client that offers only TLS 1.2 gets nowhere (refused at version negotiation, before
    // any certificate is looked at).
    let tls12_client =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
    let out = connect_once(server, Arc::new(tls12_client)).await;
    assert!(out.server.is_err());
    assert!(out.client.is_err());
}

// ---------------------------------------------------------------------------------------------
// The certificate itself
// ---------------------------------------------------------------------------------------------

#[test]
fn the_certificate_carries_the_mesh_key_id_and_names() {
    let id = identity(7);
    assert_eq!(
        ed25519_key_of(id.certificate_der(), NOW).unwrap(),
        mesh_public(7)
    );

    let (_, cert) = x509_parser::parse_x509_certificate(id.certificate_der()).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "did:vm:mesh:mesh-7");
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names = &san.value.general_names;
    assert!(names.contains(&GeneralName::DNSName("localhost")));
    assert!(names.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
    assert!(!names.contains(&GeneralName::DNSName("127.0.0.1")));
    assert_eq!(cert.validity().not_before.timestamp(), NOW - 3600);
    assert_eq!(cert.validity().not_after.timestamp(), NOW - 3600 + 30 * DAY);

    // Deterministic: the same inputs give the same certificate.
    assert_eq!(identity(7).certificate_der(), id.certificate_der());
}

#[test]
fn garbage_is_malformed() {
    for bytes in [
        &b""[..],
        b"not a certificate",
        &[0x30, 0x82, 0xff, 0xff, 0x00],
    ] {
        let err = ed25519_key_of(bytes, NOW).unwrap_err();
        assert!(matches!(err, TlsError::Malformed(_)), "{err:?}");
    }
    // Trailing bytes after a valid certificate.
    let mut der = identity(1).certificate_der().to_vec();
    der.push(0);
    assert!(matches!(
        ed25519_key_of(&der, NOW),
        Err(TlsError::Malformed(_))
    ));
}

#[test]
fn a_tampered_signature_or_body_is_not_self_signed() {
    let der = identity(1).certificate_der().to_vec();

    let mut bad_signature = der.clone();
    *bad_signature.last_mut().unwrap() ^= 0x01;
    let err = ed25519_key_of(&bad_signature, NOW).unwrap_err();
    assert!(matches!(err, TlsError::NotSelfSigned), "{err:?}");

    // Flip a byte of the subject CN (inside the signed body), keeping the DER valid.
    let at = der
        .windows(b"mesh-1".len())
        .position(|w| w == b"mesh-1")
        .unwrap();
    let mut bad_body = der.clone();
    bad_body[at] = b'n';
    let err = ed25519_key_of(&bad_body, NOW).unwrap_err();
    assert!(
        matches!(err, TlsError::NotSelfSigned | TlsError::Malformed(_)),
        "{err:?}"
    );
}

#[test]
fn a_certificate_for_an_ecdsa_key_is_not_ed25519() {
    let err = ed25519_key_of(ecdsa_certificate().as_ref(), NOW).unwrap_err();
    assert!(matches!(err, TlsError::NotEd25519), "{err:?}");
}

#[test]
fn validity_bounds_are_inclusive() {
    let not_before = NOW - 3600;
    let not_after = not_before + 30 * DAY;
    let der = identity(1).certificate_der().to_vec();
    assert!(ed25519_key_of(&der, not_before).is_ok());
    assert!(ed25519_key_of(&der, not_after).is_ok());
    assert!(matches!(
        ed25519_key_of(&der, not_before - 1),
        Err(TlsError::NotYetValid { not_before: nb, now }) if nb == not_before && now == not_before - 1
    ));
    assert!(matches!(
        ed25519_key_of(&der, not_after + 1),
        Err(TlsError::Expired { not_after: na, now }) if na == not_after && now == not_after + 1
    ));
}

#[test]
fn bad_identity_parameters_are_refused() {
    assert!(matches!(
        TlsIdentity::new(&seed(1), "did:vm:mesh:m", &names(), NOW, 0),
        Err(TlsError::Malformed(_))
    ));
    assert!(matches!(
        TlsIdentity::new(&seed(1), "did:vm:mesh:m", &names(), i64::MAX - 10, 1),
        Err(TlsError::Malformed(_))
    ));
    assert!(matches!(
        TlsIdentity::new(
            &seed(1),
            "did:vm:mesh:m",
            &["bad name\u{e9}".into()],
            NOW,
            1
        ),
        Err(TlsError::Rcgen(_))
    ));
}
