//! systemd's readiness protocol (`Type=notify`, sd_notify(3)): one datagram of `KEY=VALUE`
//! lines to the socket named by `$NOTIFY_SOCKET` (a path, or `@name` for an abstract
//! socket). Without the variable nothing is sent, so the node runs the same outside systemd.

use std::os::unix::net::UnixDatagram;

/// Tells the service manager `state` (`READY=1`, `RELOADING=1`, `STOPPING=1`, `STATUS=…`).
/// A failure is logged, never fatal: the node works without its manager knowing.
pub(super) fn notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&target, state) {
        tracing::warn!(socket = ?target, error = %e, "systemd notification not sent");
    }
}

fn send(target: &std::ffi::OsStr, state: &str) -> std::io::Result<usize> {
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    match target.as_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)
        }
        None => socket.send_to(state.as_bytes(), target),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_reaches_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).expect("bind");
        send(path.as_os_str(), "READY=1\nSTATUS=running").expect("send");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=running");
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("absent.sock");
        assert!(send(path.as_os_str(), "READY=1").is_err());
    }
}
