//! Writing results: text for people, `--json` for programs, quiet on a closed pipe.

use std::io::{self, Write};

use serde::Serialize;

/// Where results go.
pub struct Output {
    out: Box<dyn Write>,
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
        writeln!(self.out, "{}", text.as_ref())?;
        Ok(())
    }

    /// One compact JSON value on its own line.
    pub fn json(&mut self, value: &impl Serialize) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    /// Flushes, so a reader of a stream sees what was written.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// True if the error is a write to a closed pipe (`vm-federation … | head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|e| e.io_error_kind())
                .is_some_and(|k| k == io::ErrorKind::BrokenPipe)
    })
}
