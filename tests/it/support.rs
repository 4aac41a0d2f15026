//! Running the binary.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vm-federation"));
    cmd.env_remove("VM_FEDERATION_DATA_DIR")
        .env("RUST_LOG", "warn");
    cmd
}

/// Runs the binary with `args` and `stdin`, returning its output.
pub fn run(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vm-federation");
    let mut input = child.stdin.take().expect("stdin");
    // The command may refuse and exit before reading its input; that is not a test failure.
    if let Err(e) = input.write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    drop(input);
    child.wait_with_output().expect("wait")
}

/// Runs and checks the exit code, returning stdout.
pub fn run_ok(args: &[&str], stdin: &str) -> String {
    let out = run(args, stdin);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Makes a mesh in `dir`.
pub fn init(dir: &Path, mesh: &str) -> String {
    run_ok(
        &[
            "init",
            "--data-dir",
            dir.to_str().expect("utf-8 path"),
            "--mesh",
            mesh,
            "--json",
        ],
        "",
    )
}
