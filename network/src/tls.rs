//! Mutual TLS for the federation HTTPS shim, pinned to mesh keys.
//!
//! Each mesh's TLS identity is a self-signed X.509 certificate for its **Ed25519 mesh key** (the
//! same key as its libp2p identity). There are no certificate authorities: a peer is trusted
//! because its certificate carries exactly the key pinned in the agreement or the discovery
//! record, and the server name is never used for trust.
//!
//! - [`TlsIdentity`] makes the certificate from the mesh key's seed.
//! - [`ed25519_key_of`] reads and checks a certificate: X.509 v3, Ed25519 key, valid
//!   self-signature, valid at a given time.
//! - [`server_config`], [`client_config`] and [`discovery_client_config`] build rustls
//!   configurations (ring provider, TLS 1.3 only, ALPN `http/1.1`, Ed25519 signatures only,
//!   session resumption off so every connection presents and checks its certificate).
//! - [`peer_key_of_server`] and [`peer_key_of_client`] give the key the peer proved.
//!
//! Time comes from a clock closure ([`TlsClock`], unix seconds), never from the OS clock, so
//! certificate validity follows the node's clock like everything else.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, PKCS_ED25519, SanType,
};
use ring::signature::{ED25519, UnparsedPublicKey};
use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::NoServerSessionStorage;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    DistinguishedName as RustlsDistinguishedName, OtherError, ServerConfig, ServerConnection,
    SignatureScheme,
};
use vm_receipts::PublicKey;
use x509_parser::oid_registry::OID_SIG_ED25519;
use x509_parser::x509::X509Version;
use zeroize::{Zeroize, Zeroizing};

/// The time source certificates are checked against: unix seconds (the node's clock).
pub type TlsClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The one application protocol the shim speaks (ALPN).
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// PKCS#8 v1 (RFC 8410) prefix of an Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

const SECONDS_PER_DAY: i64 = 86_400;

/// Why a certificate, a key or a TLS configuration was refused.
#[derive(thiserror::Error, Debug)]
pub enum TlsError {
    /// The certificate's subject key (or its signature algorithm) is not Ed25519.
    #[error("the certificate's key is not an Ed25519 key")]
    NotEd25519,
    /// The certificate is not signed by its own key, or its issuer is not its subject.
    #[error("the certificate is not self-signed by its own Ed25519 key")]
    NotSelfSigned,
    /// The certificate's validity ended before `now`.
    #[error("the certificate expired: not valid after {not_after} (unix), now {now}")]
    Expired {
        /// End of validity, unix seconds.
        not_after: i64,
        /// The time it was checked at, unix seconds.
        now: i64,
    },
    /// The certificate's validity starts after `now`.
    #[error("the certificate is not yet valid: not valid before {not_before} (unix), now {now}")]
    NotYetValid {
        /// Start of validity, unix seconds.
        not_before: i64,
        /// The time it was checked at, unix seconds.
        now: i64,
    },
    /// The bytes are not a well-formed certificate of the expected shape, or a parameter is
    /// out of range.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// The peer's certificate is valid but for another key than the pinned one.
    #[error("the peer's certificate key {found} is not the pinned key {expected}")]
    KeyMismatch {
        /// The pinned key (`ed25519:z…`, or hex if not a curve point).
        expected: String,
        /// The key in the certificate (same form).
        found: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(String),
    /// rcgen could not make the certificate.
    #[error("certificate generation: {0}")]
    Rcgen(String),
}

/// A mesh's TLS identity: a self-signed certificate for its Ed25519 key.
pub struct TlsIdentity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    public_key: [u8; 32],
}

impl TlsIdentity {
    /// From the 32-byte Ed25519 seed of the mesh key (`vm_receipts::MeshKey::seed_bytes()`), a
    /// self-signed certificate valid from `not_before_unix` for `validity_days` (at least 1),
    /// subject CN = the mesh id string, SAN = `dns_names` (an entry that parses as an IP
    /// address becomes an IP SAN, e.g. "127.0.0.1"). The certificate is deterministic: the
    /// same inputs give the same bytes.
    pub fn new(
        seed: &[u8; 32],
        mesh_id: &str,
        dns_names: &[String],
        not_before_unix: i64,
        validity_days: u32,
    ) -> Result<Self, TlsError> {
        if validity_days == 0 {
            return Err(TlsError::Malformed(
                "validity_days must be at least 1".into(),
            ));
        }
        let not_after_unix = i64::from(validity_days)
            .checked_mul(SECONDS_PER_DAY)
            .and_then(|span| not_before_unix.checked_add(span))
            .ok_or_else(|| TlsError::Malformed("validity end out of range".into()))?;
        let not_before = time::OffsetDateTime::from_unix_timestamp(not_before_unix)
            .map_err(|e| TlsError::Malformed(format!("not_before {not_before_unix}: {e}")))?;
        let not_after = time::OffsetDateTime::from_unix_timestamp(not_after_unix)
            .map_err(|e| TlsError::Malformed(format!("not_after {not_after_unix}: {e}")))?;

        let mut pkcs8 = Zeroizing::new(Vec::with_capacity(PKCS8_ED25519_PREFIX.len() + 32));
        pkcs8.extend_from_slice(&PKCS8_ED25519_PREFIX);
        pkcs8.extend_from_slice(seed);
        let key_der = PrivatePkcs8KeyDer::from(pkcs8.to_vec());
        let key_pair = KeyPair::from_pkcs8_der_and_sign_algo(&key_der, &PKCS_ED25519)
            .map_err(|e| TlsError::Rcgen(e.to_string()))?;
        let public_key: [u8; 32] = key_pair
            .public_key_raw()
            .try_into()
            .map_err(|_| TlsError::Rcgen("Ed25519 public key is not 32 bytes".into()))?;

        let mut params = CertificateParams::default();
        params.subject_alt_names = dns_names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => name
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(|e| TlsError::Rcgen(format!("subject alt name {name:?}: {e}"))),
            })
            .collect::<Result<_, _>>()?;
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, mesh_id);
        params.distinguished_name = subject;
        params.not_before = not_before;
        params.not_after = not_after;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params
            .self_signed(&key_pair)
            .map_err(|e| TlsError::Rcgen(e.to_string()))?;

        Ok(Self {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(key_der),
            public_key,
        })
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        self.cert.as_ref()
    }

    /// The Ed25519 public key the certificate is for (the mesh key).
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }
}

impl Clone for TlsIdentity {
    fn clone(&self) -> Self {
        Self {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
            public_key: self.public_key,
        }
    }
}

impl Drop for TlsIdentity {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("public_key", &key_text(&self.public_key))
            .field("certificate_len", &self.cert.as_ref().len())
            .finish_non_exhaustive()
    }
}

/// What a structurally valid, self-signed Ed25519 certificate says.
struct Inspected {
    key: [u8; 32],
    not_before: i64,
    not_after: i64,
}

impl Inspected {
    fn check_time(&self, now: i64) -> Result<(), TlsError> {
        if now < self.not_before {
            return Err(TlsError::NotYetValid {
                not_before: self.not_before,
                now,
            });
        }
        if now > self.not_after {
            return Err(TlsError::Expired {
                not_after: self.not_after,
                now,
            });
        }
        Ok(())
    }
}

/// Everything [`ed25519_key_of`] checks except the time.
fn inspect(cert_der: &[u8]) -> Result<Inspected, TlsError> {
    let (rest, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| TlsError::Malformed(format!("not an X.509 certificate: {e}")))?;
    if !rest.is_empty() {
        return Err(TlsError::Malformed(format!(
            "{} bytes after the certificate",
            rest.len()
        )));
    }
    let tbs = &cert.tbs_certificate;
    if tbs.version != X509Version::V3 {
        return Err(TlsError::Malformed(format!(
            "X.509 version {} (v3 required)",
            tbs.version.0 + 1
        )));
    }

    let spki = &tbs.subject_pki;
    if spki.algorithm.algorithm != OID_SIG_ED25519 {
        return Err(TlsError::NotEd25519);
    }
    if spki.algorithm.parameters.is_some() {
        return Err(TlsError::Malformed(
            "Ed25519 key algorithm identifier has parameters".into(),
        ));
    }
    if spki.subject_public_key.unused_bits != 0 {
        return Err(TlsError::Malformed(
            "Ed25519 public key bit string has unused bits".into(),
        ));
    }
    let key: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| {
            TlsError::Malformed(format!(
                "Ed25519 public key is {} bytes, not 32",
                spki.subject_public_key.data.len()
            ))
        })?;

    if cert.signature_algorithm.algorithm != OID_SIG_ED25519
        || tbs.signature.algorithm != OID_SIG_ED25519
    {
        return Err(TlsError::NotEd25519);
    }
    if cert.signature_algorithm.parameters.is_some() || tbs.signature.parameters.is_some() {
        return Err(TlsError::Malformed(
            "Ed25519 signature algorithm identifier has parameters".into(),
        ));
    }
    if tbs.issuer.as_raw() != tbs.subject.as_raw() {
        return Err(TlsError::NotSelfSigned);
    }
    if cert.signature_value.unused_bits != 0 {
        return Err(TlsError::NotSelfSigned);
    }
    UnparsedPublicKey::new(&ED25519, &key)
        .verify(tbs.as_ref(), cert.signature_value.data.as_ref())
        .map_err(|_| TlsError::NotSelfSigned)?;

    let validity = cert.validity();
    Ok(Inspected {
        key,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}

/// The Ed25519 public key (32 bytes) in a certificate, checked: parses as X.509 v3 (no
/// trailing bytes), key algorithm Ed25519, signature algorithm Ed25519, issuer = subject and
/// the self-signature valid under the certificate's own key, and valid at `now_unix`
/// (`not_before <= now <= not_after`).
pub fn ed25519_key_of(cert_der: &[u8], now_unix: i64) -> Result<[u8; 32], TlsError> {
    let inspected = inspect(cert_der)?;
    inspected.check_time(now_unix)?;
    Ok(inspected.key)
}

/// A key as the project writes it (`ed25519:z…`), or hex if the bytes are not a curve point.
fn key_text(key: &[u8; 32]) -> String {
    PublicKey::from_bytes(key).map_or_else(|_| format!("hex:{}", hex_of(key)), |k| k.to_string())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A [`TlsError`] as the rustls error the handshake fails with. Expiry uses rustls's own
/// variants so the peer gets the `certificate_expired` alert; everything else carries the
/// `TlsError` itself (`CertificateError::Other`), so its name shows in the error text.
fn to_rustls(err: TlsError) -> rustls::Error {
    let unix = |t: i64| {
        u64::try_from(t)
            .ok()
            .map(|s| UnixTime::since_unix_epoch(Duration::from_secs(s)))
    };
    let cert_err = match err {
        TlsError::Expired { not_after, now } => match (unix(now), unix(not_after)) {
            (Some(time), Some(not_after)) => CertificateError::ExpiredContext { time, not_after },
            _ => CertificateError::Other(OtherError(Arc::new(err))),
        },
        TlsError::NotYetValid { not_before, now } => match (unix(now), unix(not_before)) {
            (Some(time), Some(not_before)) => {
                CertificateError::NotValidYetContext { time, not_before }
            }
            _ => CertificateError::Other(OtherError(Arc::new(err))),
        },
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(cert_err)
}

fn check_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: i64,
) -> Result<[u8; 32], rustls::Error> {
    if !intermediates.is_empty() {
        return Err(to_rustls(TlsError::Malformed(format!(
            "{} extra certificates sent with a self-signed certificate",
            intermediates.len()
        ))));
    }
    ed25519_key_of(end_entity.as_ref(), now).map_err(to_rustls)
}

/// Verifies a TLS 1.3 CertificateVerify signature: Ed25519 only, under the certificate's key.
fn verify_handshake_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    let inspected = inspect(cert.as_ref()).map_err(to_rustls)?;
    UnparsedPublicKey::new(&ED25519, &inspected.key)
        .verify(message, dss.signature())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered)
}

/// The server's check of client certificates: optional, but a presented one must be a valid
/// self-signed Ed25519 certificate. Which key is acceptable is the caller's decision
/// ([`peer_key_of_server`]).
struct MeshClientVerifier {
    clock: TlsClock,
}

impl fmt::Debug for MeshClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MeshClientVerifier")
    }
}

impl ClientCertVerifier for MeshClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[RustlsDistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_chain(end_entity, intermediates, (self.clock)())?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// The client's check of the server certificate: a valid self-signed Ed25519 certificate,
/// for exactly `expected` when pinned. The server name plays no part.
struct MeshServerVerifier {
    expected: Option<[u8; 32]>,
    clock: TlsClock,
}

impl fmt::Debug for MeshServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshServerVerifier")
            .field("expected", &self.expected.as_ref().map(key_text))
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for MeshServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let found = check_chain(end_entity, intermediates, (self.clock)())?;
        if let Some(expected) = self.expected
            && found != expected
        {
            return Err(to_rustls(TlsError::KeyMismatch {
                expected: key_text(&expected),
                found: key_text(&found),
            }));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_handshake_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn rustls_error(err: rustls::Error) -> TlsError {
    TlsError::Rustls(err.to_string())
}

/// Server config: TLS 1.3 only, ALPN `http/1.1`, our identity. Client certificates are
/// requested but optional (`GET /federation/discovery` works without one); a presented one
/// must be a valid self-signed Ed25519 certificate at `clock()`, and the client's handshake
/// signature is verified (Ed25519 only). Session resumption is disabled (no session cache, no
/// tickets), so every connection presents its certificate and the pin check can never be
/// skipped. The caller decides which client keys it accepts, via [`peer_key_of_server`].
pub fn server_config(
    identity: &TlsIdentity,
    clock: TlsClock,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(rustls_error)?
        .with_client_cert_verifier(Arc::new(MeshClientVerifier { clock }))
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())
        .map_err(rustls_error)?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.max_early_data_size = 0;
    // The builder's ticketer never produces tickets; keep it that way.
    if config.ticketer.enabled() {
        return Err(TlsError::Rustls("session tickets are enabled".into()));
    }
    Ok(Arc::new(config))
}

fn client_builder(
    verifier: MeshServerVerifier,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>, TlsError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(rustls_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier)))
}

fn finish_client(mut config: ClientConfig) -> Arc<ClientConfig> {
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    config.resumption = Resumption::disabled();
    config.enable_early_data = false;
    Arc::new(config)
}

/// Client config: presents our identity as client certificate, and accepts the server only if
/// its certificate is a valid self-signed Ed25519 certificate at `clock()` for exactly
/// `expected_key` (pinning; no CA, the server name is not used for trust). TLS 1.3 only, ALPN
/// `http/1.1`, resumption disabled.
pub fn client_config(
    identity: &TlsIdentity,
    expected_key: [u8; 32],
    clock: TlsClock,
) -> Result<Arc<ClientConfig>, TlsError> {
    let config = client_builder(MeshServerVerifier {
        expected: Some(expected_key),
        clock,
    })?
    .with_client_auth_cert(vec![identity.cert.clone()], identity.key.clone_key())
    .map_err(rustls_error)?;
    Ok(finish_client(config))
}

/// Client config for `GET /federation/discovery` before we know the server's key: no client
/// certificate, any valid self-signed Ed25519 server certificate accepted. The caller reads
/// the key the server proved with [`peer_key_of_client`] and checks it against the record it
/// fetched.
pub fn discovery_client_config(clock: TlsClock) -> Result<Arc<ClientConfig>, TlsError> {
    let config = client_builder(MeshServerVerifier {
        expected: None,
        clock,
    })?
    .with_no_client_auth();
    Ok(finish_client(config))
}

/// The client's Ed25519 key on an established server-side connection; `None` if the client
/// presented no certificate (or the handshake is not finished).
pub fn peer_key_of_server(conn: &ServerConnection) -> Option<[u8; 32]> {
    peer_key(conn.peer_certificates())
}

/// The server's Ed25519 key on an established client-side connection.
pub fn peer_key_of_client(conn: &ClientConnection) -> Option<[u8; 32]> {
    peer_key(conn.peer_certificates())
}

fn peer_key(certs: Option<&[CertificateDer<'static>]>) -> Option<[u8; 32]> {
    let end_entity = certs?.first()?;
    inspect(end_entity.as_ref()).ok().map(|i| i.key)
}
