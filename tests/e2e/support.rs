//! Processes for the end-to-end tests: the binary, daemons that are killed when their test
//! ends (also when it panics, printing their logs first), CLI calls with a deadline, and
//! bounded polls.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

/// How long one CLI command may take before it is killed and the test fails.
const CLI_DEADLINE: Duration = Duration::from_secs(20);

/// How long a daemon may take to print its listen addresses, or to exit after SIGTERM.
const DAEMON_DEADLINE: Duration = Duration::from_secs(15);

/// The binary under test, with a clean environment.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vm-federation"));
    cmd.env_remove("VM_FEDERATION_DATA_DIR")
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn");
    cmd
}

/// Runs the binary with `args` and returns its output; fails the test if it runs past
/// [`CLI_DEADLINE`].
pub fn run(args: &[&str]) -> Output {
    let child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vm-federation");
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    match done_rx.recv_timeout(CLI_DEADLINE) {
        Ok(output) => output.expect("wait for vm-federation"),
        Err(_) => {
            signal(pid, "KILL");
            panic!(
                "`vm-federation {}` did not finish within {CLI_DEADLINE:?}",
                args.join(" ")
            );
        }
    }
}

/// Sends `SIG<name>` to `pid` (through kill(1): the workspace forbids unsafe code).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill(1)");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// `GET path` over plain HTTP/1.1 on `addr`: status, headers (lower-cased names) and body.
pub fn http_get(addr: &str, path: &str) -> (u16, String, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(CLI_DEADLINE))
        .expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_lowercase(), body.to_owned())
}

/// A command's stdout and stderr, for failure messages.
pub fn shown(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `attempt` every `every`, at most `tries` times, until it gives a value; otherwise
/// fails the test naming `what` was awaited and the last thing `attempt` saw.
pub fn poll_n<T>(
    what: &str,
    tries: u32,
    every: Duration,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let mut last = String::new();
    for i in 0..tries {
        match attempt() {
            Ok(value) => return value,
            Err(seen) => last = seen,
        }
        if i + 1 < tries {
            thread::sleep(every);
        }
    }
    panic!("timed out waiting for {what} ({tries} tries, {every:?} apart); last seen: {last}");
}

/// [`poll_n`] with 40 tries 250 ms apart: 10 s.
pub fn poll<T>(what: &str, attempt: impl FnMut() -> Result<T, String>) -> T {
    poll_n(what, 40, Duration::from_millis(250), attempt)
}

/// One `vm-federation node run` on its own data directory. Dropping it kills the process
/// (SIGKILL, then wait); when the test is panicking it prints the daemon's logs first.
pub struct Daemon {
    /// The mesh name (`did:vm:mesh:<name>`).
    pub name: String,
    /// The data directory.
    pub dir: PathBuf,
    /// Where stdout and stderr of each start go.
    logs: PathBuf,
    child: Option<Child>,
    starts: u32,
    /// Extra environment for `node run` (e.g. libfaketime's).
    pub env: Vec<(String, String)>,
    /// The libp2p peer id, once started.
    pub peer_id: String,
    /// The TCP listen address with `/p2p/<peer id>`, as of the latest start.
    pub tcp: String,
    /// Its port.
    pub tcp_port: u16,
    /// The federation API's base URL (`https://127.0.0.1:PORT`), when `[http] listen` is set.
    pub https: String,
    /// A temporary directory the daemon owns, removed after the process is killed.
    _tmp: Option<tempfile::TempDir>,
}

impl Daemon {
    /// A daemon for mesh `name` with data directory `<root>/<name>`; nothing runs yet.
    pub fn new(root: &Path, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            dir: root.join(name),
            logs: root.to_owned(),
            child: None,
            starts: 0,
            env: Vec::new(),
            peer_id: String::new(),
            tcp: String::new(),
            tcp_port: 0,
            https: String::new(),
            _tmp: None,
        }
    }

    /// A daemon for mesh `name` in a temporary directory of its own; nothing runs yet.
    pub fn in_tempdir(name: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut d = Self::new(tmp.path(), name);
        d._tmp = Some(tmp);
        d
    }

    /// The mesh id.
    pub fn mesh_id(&self) -> String {
        format!("did:vm:mesh:{}", self.name)
    }

    /// The data directory as a string.
    pub fn d(&self) -> &str {
        self.dir.to_str().expect("utf-8 path")
    }

    /// `vm-federation init` on the data directory.
    pub fn init(&self) {
        let out = run(&["init", "--data-dir", self.d(), "--mesh", &self.name]);
        assert_eq!(out.status.code(), Some(0), "init: {}", shown(&out));
    }

    /// Appends `text` to config.toml.
    pub fn append_config(&self, text: &str) {
        let mut file = OpenOptions::new()
            .append(true)
            .open(self.dir.join("config.toml"))
            .expect("open config.toml");
        file.write_all(text.as_bytes())
            .expect("append to config.toml");
    }

    fn log_path(&self, start: u32, stream: &str) -> PathBuf {
        self.logs
            .join(format!("{}.{start}.{stream}.log", self.name))
    }

    /// Spawns `node run` (stderr to a log file, `RUST_LOG=info` or `$E2E_RUST_LOG`) and waits
    /// until it prints its TCP and QUIC listen addresses.
    pub fn start(&mut self) {
        self.start_with(true);
    }

    /// As [`Daemon::start`]; with `p2p` false the node has no libp2p listeners and the test
    /// waits for its HTTPS line instead (an HTTP-only mesh).
    pub fn start_with(&mut self, p2p: bool) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        self.starts += 1;
        let stdout_path = self.log_path(self.starts, "stdout");
        let stderr_path = self.log_path(self.starts, "stderr");
        let child = bin()
            .args([
                "node",
                "run",
                "--init",
                "--data-dir",
                self.d(),
                "--mesh",
                &self.name,
            ])
            .env(
                "RUST_LOG",
                std::env::var("E2E_RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("stdout log"))
            .stderr(File::create(&stderr_path).expect("stderr log"))
            .spawn()
            .expect("spawn node run");
        self.child = Some(child);
        let name = self.name.clone();
        let tries = u32::try_from(DAEMON_DEADLINE.as_millis() / 50).unwrap_or(u32::MAX);
        let (peer_id, tcp, https) = poll_n(
            &format!("{name} to print its listen addresses"),
            tries,
            Duration::from_millis(50),
            || {
                if let Some(status) = self.try_wait() {
                    panic!(
                        "{name} exited with {status} before listening:\n{}",
                        self.logs_text()
                    );
                }
                let out = fs::read_to_string(&stdout_path).unwrap_or_default();
                let peer = out
                    .lines()
                    .find_map(|l| l.split("; peer id ").nth(1))
                    .and_then(|rest| rest.split(';').next());
                let tcp = out
                    .lines()
                    .find_map(|l| l.strip_prefix("listening on /ip4/127.0.0.1/tcp/"));
                let quic = out.lines().any(|l| l.contains("/quic-v1/"));
                let https = out
                    .lines()
                    .find_map(|l| l.strip_prefix("federation API on "))
                    .map(str::to_owned);
                match (peer, tcp, quic, https) {
                    (Some(peer), Some(tcp), true, https) if p2p => Ok((
                        peer.to_owned(),
                        format!("/ip4/127.0.0.1/tcp/{tcp}"),
                        https.unwrap_or_default(),
                    )),
                    (Some(peer), None, _, Some(https)) if !p2p => {
                        Ok((peer.to_owned(), String::new(), https))
                    }
                    _ => Err(out),
                }
            },
        );
        self.https = https;
        if !p2p {
            self.peer_id = peer_id;
            return;
        }
        let port = tcp
            .trim_start_matches("/ip4/127.0.0.1/tcp/")
            .split('/')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a TCP port in the listen address");
        assert!(
            tcp.ends_with(&format!("/p2p/{peer_id}")),
            "{tcp} does not name peer {peer_id}"
        );
        self.peer_id = peer_id;
        self.tcp = tcp;
        self.tcp_port = port;
    }

    /// The process id of the running daemon.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Its exit status if it has exited.
    /// Whether a `node run` of this daemon was started and not yet stopped by the test.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().expect("try_wait"))
    }

    /// SIGKILL, and reap the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the exit status (the test fails if it does not exit in time).
    pub fn terminate(&mut self) -> ExitStatus {
        signal(self.pid(), "TERM");
        let tries = u32::try_from(DAEMON_DEADLINE.as_millis() / 50).unwrap_or(u32::MAX);
        let name = self.name.clone();
        let status = poll_n(
            &format!("{name} to exit after SIGTERM"),
            tries,
            Duration::from_millis(50),
            || self.try_wait().ok_or_else(|| "still running".to_owned()),
        );
        self.child = None;
        status
    }

    /// Runs a CLI command against this data directory (`--data-dir` is appended).
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--data-dir", self.d()]);
        run(&all)
    }

    /// Runs a command with `--json`, requires exit 0, and returns the parsed answer.
    pub fn json(&self, args: &[&str]) -> Value {
        self.try_json(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Daemon::json`], with a failure as an error describing the command and its output.
    pub fn try_json(&self, args: &[&str]) -> Result<Value, String> {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli(&all);
        if out.status.code() != Some(0) {
            return Err(format!(
                "{}: `{}` failed: {}",
                self.name,
                all.join(" "),
                shown(&out)
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "{}: `{}` printed no JSON ({e}): {}",
                self.name,
                all.join(" "),
                shown(&out)
            )
        })
    }

    /// The receipts of the Federation scroll, one JSON object per line.
    pub fn federation_receipts(&self) -> Vec<Value> {
        let path = self.dir.join("receipts/federation/federation_events.jsonl");
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .lines()
            .map(|l| serde_json::from_str(l).expect("a receipt is one JSON object per line"))
            .collect()
    }

    /// The `[metrics]` listener's address (`127.0.0.1:PORT`) as the latest start printed it.
    pub fn metrics_addr(&self) -> String {
        let out = fs::read_to_string(self.log_path(self.starts, "stdout")).unwrap_or_default();
        out.lines()
            .find_map(|l| l.strip_prefix("metrics on http://"))
            .and_then(|rest| rest.split('/').next())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("{} printed no metrics address:\n{out}", self.name))
    }

    /// Every log of every start, for failure messages.
    pub fn logs_text(&self) -> String {
        let mut text = String::new();
        for start in 1..=self.starts {
            for stream in ["stdout", "stderr"] {
                let path = self.log_path(start, stream);
                let body = fs::read_to_string(&path).unwrap_or_else(|e| format!("({e})\n"));
                text.push_str(&format!(
                    "===== {} start {start} {stream} ({}) =====\n{body}",
                    self.name,
                    path.display()
                ));
            }
        }
        text
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!("{}", self.logs_text());
        }
    }
}
