//! Writing results: text for people, `--json` for programs, quiet on a closed pipe.

use std::io::{self, Write};

use serde::Serialize;

/// Where results go.
pub struct Output {
    out: Box<dyn Write>,
}

/// Standard output was closed by its reader (`vm-federation … | head`): the command is not
/// at fault and exits 0. Only writes to standard output produce it: a broken pipe anywhere
/// else (the node's control socket closing mid-request) is an error like any other, or a
/// command whose request never reached the node would report success.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub struct StdoutClosed;

/// A failed write to standard output.
fn stdout_error(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(e).context("writing to standard output")
    }
}

impl Output {
    /// Standard output, line-buffered by the caller's flushes.
    pub fn stdout() -> Self {
        Self {
            out: Box::new(io::stdout().lock()),
        }
    }

    /// One line of text.
    pub fn line(&mut self, text: impl AsRef<str>) -> anyhow::Result<()> {
        writeln!(self.out, "{}", text.as_ref()).map_err(stdout_error)
    }

    /// One compact JSON value on its own line.
    pub fn json(&mut self, value: &impl Serialize) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, value).map_err(|e| match e.io_error_kind() {
            Some(kind) => stdout_error(io::Error::from(kind)),
            None => anyhow::Error::new(e),
        })?;
        self.out.write_all(b"\n").map_err(stdout_error)
    }

    /// Bytes as they are (a completion script).
    pub fn raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.out.write_all(bytes).map_err(stdout_error)
    }

    /// Flushes, so a reader of a stream sees what was written.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush().map_err(stdout_error)
    }
}

/// True if the error is standard output closed by its reader (and nothing else).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<StdoutClosed>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_standard_output_counts_as_a_quiet_exit() {
        assert!(is_broken_pipe(&stdout_error(io::Error::from(
            io::ErrorKind::BrokenPipe
        ))));
        // The node's control socket closing under a request is a failure of the command:
        // counting it as a closed stdout made an append whose request never arrived exit 0.
        let socket = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("the node closed the control connection");
        assert!(!is_broken_pipe(&socket));
        assert!(!is_broken_pipe(&stdout_error(io::Error::from(
            io::ErrorKind::PermissionDenied
        ))));
    }
}
