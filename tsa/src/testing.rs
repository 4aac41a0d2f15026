//! A real RFC 3161 TSA for tests: `openssl ts -reply` behind a loopback HTTP/1.1 server.
//!
//! Why a real one: a TSA we wrote ourselves would share our reading of the RFC, mistakes
//! included. OpenSSL's `ts` is an independent implementation, so a token it signs and we
//! verify (and the reverse, our request it accepts) tests the wire format for real.
//!
//! [`OpensslTsa::start`] makes, in the directory it is given, a root CA and a TSA
//! certificate signed by it (`extendedKeyUsage = critical, timeStamping`), then serves
//! `POST` requests on `127.0.0.1:<free port>` from its own thread and tokio runtime, so it
//! works the same from sync tests and from any async runtime. Each request is written to a
//! fresh file, answered by one `openssl ts -reply` run (at most [`OPENSSL_TIMEOUT`], killed
//! after), and the reply returned as `application/timestamp-reply`. Requests are answered
//! one at a time, because `openssl ts -reply` increments the serial number file in place.
//! Dropping the [`OpensslTsa`] stops the server and joins its thread; an `openssl` still
//! running is killed.
//!
//! Each instance has its own CA, so a second instance is an *untrusted* TSA for the first.
//!
//! Files in the directory, for tests that issue more certificates: `openssl.cnf` (sections
//! `v3_ca`, `v3_tsa`, `tsa_config`), `ca.key`, `ca.pem`, `tsa.key`, `tsa.csr`, `tsa.pem`
//! (serial number 2), `tsaserial`, and `request-N.tsq`/`.tsr` while request N is answered.
//!
//! Requires the `openssl` command (OpenSSL 1.1.1 or 3.x) on `PATH`.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{Mutex, Semaphore, oneshot};

/// The longest one `openssl` run may take before it is killed (key generation included).
pub const OPENSSL_TIMEOUT: Duration = Duration::from_secs(20);

/// The largest request body the test TSA reads.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// At most this many connections are served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 16;

/// The TSA's key, which also decides its signature hash and its ESSCertID flavour, so the
/// variants between them exercise every verification path OpenSSL can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsaKey {
    /// ECDSA P-256, SHA-256 signatures, ESSCertIDv2 with the default SHA-256 hash.
    EcP256Sha256,
    /// ECDSA P-384, SHA-384 signatures, ESSCertIDv2 with an explicit SHA-384 hash.
    EcP384Sha384,
    /// RSA 2048, PKCS#1 v1.5 SHA-256 signatures, ESSCertID v1 (SHA-1 certificate hash).
    Rsa2048Sha256,
    /// RSA 2048, PKCS#1 v1.5 SHA-512 signatures, ESSCertIDv2 with SHA-256.
    Rsa2048Sha512,
}

impl TsaKey {
    fn genpkey_args(self) -> &'static [&'static str] {
        match self {
            Self::EcP256Sha256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Self::EcP384Sha384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            Self::Rsa2048Sha256 | Self::Rsa2048Sha512 => {
                &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
            }
        }
    }

    /// The hash for the certificates and the token signature.
    fn cert_digest(self) -> &'static str {
        match self {
            Self::EcP384Sha384 => "sha384",
            _ => "sha256",
        }
    }

    fn signer_digest(self) -> &'static str {
        match self {
            Self::EcP384Sha384 => "sha384",
            Self::Rsa2048Sha512 => "sha512",
            _ => "sha256",
        }
    }

    /// `ess_cert_id_alg`: sha1 makes OpenSSL write a v1 ESSCertID, others a v2.
    fn ess_cert_id_alg(self) -> &'static str {
        match self {
            Self::EcP384Sha384 => "sha384",
            Self::Rsa2048Sha256 => "sha1",
            _ => "sha256",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::EcP256Sha256 => "ec-p256",
            Self::EcP384Sha384 => "ec-p384",
            Self::Rsa2048Sha256 => "rsa-sha256",
            Self::Rsa2048Sha512 => "rsa-sha512",
        }
    }
}

/// The TSA policy OID the test TSA puts in its tokens.
pub const TEST_POLICY: &str = "1.2.3.4.1";

/// Where the test TSA keeps its files.
#[derive(Clone, Debug)]
struct Files {
    dir: PathBuf,
    config: PathBuf,
    ca_key: PathBuf,
    ca_cert: PathBuf,
    tsa_key: PathBuf,
    tsa_csr: PathBuf,
    tsa_cert: PathBuf,
}

impl Files {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            config: dir.join("openssl.cnf"),
            ca_key: dir.join("ca.key"),
            ca_cert: dir.join("ca.pem"),
            tsa_key: dir.join("tsa.key"),
            tsa_csr: dir.join("tsa.csr"),
            tsa_cert: dir.join("tsa.pem"),
        }
    }
}

/// A running `openssl ts` TSA on loopback; stops when dropped. See the module doc.
#[derive(Debug)]
pub struct OpensslTsa {
    addr: SocketAddr,
    files: Files,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OpensslTsa {
    /// Starts a TSA with an ECDSA P-256 key ([`TsaKey::EcP256Sha256`]) in `dir`.
    ///
    /// Blocking (it runs `openssl` a few times, about 50 ms for EC keys, a few hundred for
    /// RSA); callable from sync code and from inside a tokio runtime alike.
    pub fn start(dir: &Path) -> io::Result<Self> {
        Self::start_with(dir, TsaKey::EcP256Sha256)
    }

    /// Starts a TSA whose CA and TSA keys are of kind `key` in `dir` (which must exist; the
    /// caller owns it, typically a `tempfile::TempDir`).
    pub fn start_with(dir: &Path, key: TsaKey) -> io::Result<Self> {
        let files = Files::new(dir);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<io::Result<SocketAddr>>(1);
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let thread_files = files.clone();
        let thread = std::thread::Builder::new()
            .name(format!("openssl-tsa-{}", key.label()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let setup = async {
                        make_pki(&thread_files, key).await?;
                        let listener = TcpListener::bind("127.0.0.1:0").await?;
                        let addr = listener.local_addr()?;
                        io::Result::Ok((listener, addr))
                    };
                    match setup.await {
                        Ok((listener, addr)) => {
                            if ready_tx.send(Ok(addr)).is_ok() {
                                serve(listener, Arc::new(thread_files), shutdown_rx).await;
                            }
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                // Dropping the runtime here cancels in-flight requests; their `openssl`
                // children were spawned with kill_on_drop.
            })?;
        let addr = ready_rx
            .recv()
            .map_err(|_| io::Error::other("the test TSA thread ended before it was ready"))??;
        Ok(Self {
            addr,
            files,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// The URL to give [`crate::TsaClient::new`].
    pub fn url(&self) -> String {
        format!("http://{}/tsa", self.addr)
    }

    /// The root CA certificate (PEM): the trust anchor for this TSA's tokens.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.files.ca_cert.clone()
    }

    /// The TSA's own certificate (PEM), signed by the root CA.
    pub fn tsa_cert_pem_path(&self) -> PathBuf {
        self.files.tsa_cert.clone()
    }
}

impl Drop for OpensslTsa {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The OpenSSL configuration: certificate extensions for `req`/`x509`, and the `[tsa]`
/// section `openssl ts -reply` reads.
fn config_text(files: &Files, key: TsaKey) -> String {
    let serial = files.dir.join("tsaserial");
    format!(
        r#"# Written by vm_tsa::testing for a test TSA; not for production.
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
CN = unused

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[v3_tsa]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[tsa]
default_tsa = tsa_config

[tsa_config]
serial = {serial}
crypto_device = builtin
signer_digest = {signer_digest}
default_policy = {TEST_POLICY}
other_policies = 1.2.3.4.5
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = {ess}
"#,
        serial = serial.display(),
        signer_digest = key.signer_digest(),
        ess = key.ess_cert_id_alg(),
    )
}

/// Writes the config and makes the CA and the TSA certificate.
async fn make_pki(files: &Files, key: TsaKey) -> io::Result<()> {
    tokio::fs::write(&files.config, config_text(files, key)).await?;
    tokio::fs::write(files.dir.join("tsaserial"), "01\n").await?;
    let digest = format!("-{}", key.cert_digest());
    let label = key.label();

    let mut cmd = openssl(files);
    cmd.arg("genpkey").args(key.genpkey_args());
    cmd.arg("-out").arg(&files.ca_key);
    run(cmd, "genpkey (CA)").await?;

    let mut cmd = openssl(files);
    cmd.args([
        "req",
        "-x509",
        "-new",
        "-days",
        "3650",
        "-extensions",
        "v3_ca",
        &digest,
    ]);
    cmd.arg("-subj")
        .arg(format!("/O=vm-tsa tests/CN=test root {label}"));
    cmd.arg("-key").arg(&files.ca_key);
    cmd.arg("-out").arg(&files.ca_cert);
    run(cmd, "req -x509 (CA)").await?;

    let mut cmd = openssl(files);
    cmd.arg("genpkey").args(key.genpkey_args());
    cmd.arg("-out").arg(&files.tsa_key);
    run(cmd, "genpkey (TSA)").await?;

    let mut cmd = openssl(files);
    cmd.args(["req", "-new"]);
    cmd.arg("-subj")
        .arg(format!("/O=vm-tsa tests/CN=test TSA {label}"));
    cmd.arg("-key").arg(&files.tsa_key);
    cmd.arg("-out").arg(&files.tsa_csr);
    run(cmd, "req -new (TSA)").await?;

    let mut cmd = openssl(files);
    cmd.args([
        "x509",
        "-req",
        "-set_serial",
        "2",
        "-days",
        "3650",
        "-extensions",
        "v3_tsa",
    ]);
    cmd.arg(&digest);
    cmd.arg("-in").arg(&files.tsa_csr);
    cmd.arg("-CA").arg(&files.ca_cert);
    cmd.arg("-CAkey").arg(&files.ca_key);
    cmd.arg("-extfile").arg(&files.config);
    cmd.arg("-out").arg(&files.tsa_cert);
    run(cmd, "x509 -req (TSA)").await
}

/// An `openssl` command with our config, in our directory, killed if dropped unfinished.
fn openssl(files: &Files) -> Command {
    let mut cmd = Command::new("openssl");
    cmd.env("OPENSSL_CONF", &files.config)
        .current_dir(&files.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `cmd` within [`OPENSSL_TIMEOUT`]; an error names `what` and carries stderr.
async fn run(mut cmd: Command, what: &str) -> io::Result<()> {
    let child = cmd.spawn()?;
    let output = tokio::time::timeout(OPENSSL_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            io::Error::new(io::ErrorKind::TimedOut, format!("openssl {what} timed out"))
        })??;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "openssl {what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// What the request handlers share.
struct State {
    files: Arc<Files>,
    /// `openssl ts -reply` rewrites the serial file: one run at a time.
    one_at_a_time: Mutex<()>,
    /// Names each request's files uniquely.
    next_request: AtomicU64,
}

/// Accepts connections until `shutdown` fires (or its sender is dropped).
async fn serve(listener: TcpListener, files: Arc<Files>, mut shutdown: oneshot::Receiver<()>) {
    let state = Arc::new(State {
        files,
        one_at_a_time: Mutex::new(()),
        next_request: AtomicU64::new(0),
    });
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return,
            permit = connections.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else { return };
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue, // e.g. too many open files: try the next one
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = |status, msg: &str| Ok(reply(status, "text/plain", msg.as_bytes().to_vec()));
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "POST a TimeStampReq");
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/timestamp-query" {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected application/timestamp-query",
        );
    }
    let query = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "request too large or cut"),
    };
    match answer(&state, &query).await {
        Ok(der) => Ok(reply(StatusCode::OK, "application/timestamp-reply", der)),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// One `openssl ts -reply` run over `query`, in files of its own, removed afterwards.
async fn answer(state: &State, query: &[u8]) -> io::Result<Vec<u8>> {
    let files = &state.files;
    let n = state.next_request.fetch_add(1, Ordering::Relaxed);
    let query_path = files.dir.join(format!("request-{n}.tsq"));
    let reply_path = files.dir.join(format!("request-{n}.tsr"));
    let _one = state.one_at_a_time.lock().await;
    tokio::fs::write(&query_path, query).await?;
    let mut cmd = openssl(files);
    cmd.args(["ts", "-reply", "-section", "tsa_config"]);
    cmd.arg("-config").arg(&files.config);
    cmd.arg("-queryfile").arg(&query_path);
    cmd.arg("-inkey").arg(&files.tsa_key);
    cmd.arg("-signer").arg(&files.tsa_cert);
    cmd.arg("-chain").arg(&files.ca_cert);
    cmd.arg("-out").arg(&reply_path);
    let result = run(cmd, "ts -reply").await;
    let reply = match result {
        Ok(()) => tokio::fs::read(&reply_path).await,
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&query_path).await;
    let _ = tokio::fs::remove_file(&reply_path).await;
    reply
}
