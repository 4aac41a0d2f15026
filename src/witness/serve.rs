//! Serving evidence (what a witness asks of the mesh it witnesses), over any log that can
//! prove itself: the node's scroll files, and the simulator's scrolls in memory.

use vm_receipts::Blake3Hash;
use vm_receipts::proof::{ConsistencyProofJson, InclusionProofJson};
use vm_receipts::scroll::Scroll;

use super::{Consistency, Evidence, EvidenceRequest, Sample};

/// A log that can serve evidence of itself.
pub trait ProvingLog {
    /// Receipts held (the tree size).
    fn size(&self) -> u64;
    /// The root at `size`.
    fn root_at(&self, size: u64) -> Result<Blake3Hash, String>;
    /// Consistency from `old` to `new`.
    fn prove_consistency(&self, old: u64, new: u64) -> Result<ConsistencyProofJson, String>;
    /// The stored line of receipt `sequence`.
    fn line(&self, sequence: u64) -> Result<String, String>;
    /// Inclusion of `sequence` in the tree of `size`.
    fn prove_inclusion(&self, sequence: u64, size: u64) -> Result<InclusionProofJson, String>;
}

impl ProvingLog for Scroll {
    fn size(&self) -> u64 {
        Scroll::len(self)
    }
    fn root_at(&self, size: u64) -> Result<Blake3Hash, String> {
        Scroll::root_at(self, size).map_err(|e| e.to_string())
    }
    fn prove_consistency(&self, old: u64, new: u64) -> Result<ConsistencyProofJson, String> {
        Scroll::prove_consistency(self, old, new).map_err(|e| e.to_string())
    }
    fn line(&self, sequence: u64) -> Result<String, String> {
        self.read_line(sequence)
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .map_err(|e| e.to_string())
    }
    fn prove_inclusion(&self, sequence: u64, size: u64) -> Result<InclusionProofJson, String> {
        Scroll::prove_inclusion(self, sequence, size).map_err(|e| e.to_string())
    }
}

/// Why evidence was not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServeRefusal {
    /// No honest witness asks this ([`EvidenceRequest::check`]).
    #[error("{0}")]
    BadRequest(String),
    /// The log is shorter than the size asked about.
    #[error("the scroll has {len} receipts, not {asked}")]
    BeyondTree {
        /// Receipts held.
        len: u64,
        /// The size asked.
        asked: u64,
    },
    /// The samples would not fit in one response.
    #[error("the samples asked for exceed one response; ask for fewer")]
    TooLarge,
    /// The log failed to prove itself.
    #[error("{0}")]
    Internal(String),
}

impl ServeRefusal {
    /// The wire error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::BeyondTree { .. } => "beyond_tree",
            Self::TooLarge => "too_large",
            Self::Internal(_) => "internal",
        }
    }

    /// Whether asking again the same way cannot succeed.
    pub fn permanent(&self) -> bool {
        matches!(self, Self::BadRequest(_) | Self::TooLarge)
    }
}

/// The evidence `ask` wants from `log`: a consistency proof from the old size (when one is
/// asked and it is below the new one) and each sample with its inclusion proof, the samples'
/// lines at most `max_bytes` together.
pub fn serve_evidence(
    log: &impl ProvingLog,
    ask: &EvidenceRequest,
    max_bytes: usize,
) -> Result<Evidence, ServeRefusal> {
    ask.check().map_err(ServeRefusal::BadRequest)?;
    if ask.new_size > log.size() {
        return Err(ServeRefusal::BeyondTree {
            len: log.size(),
            asked: ask.new_size,
        });
    }
    let consistency = match ask.old_size {
        Some(old) if old > 0 && old < ask.new_size => Some(Consistency {
            old_root: log.root_at(old).map_err(ServeRefusal::Internal)?,
            proof: log
                .prove_consistency(old, ask.new_size)
                .map_err(ServeRefusal::Internal)?,
        }),
        _ => None,
    };
    let mut samples = Vec::with_capacity(ask.samples.len());
    let mut bytes = 0usize;
    for &sequence in &ask.samples {
        let line = log.line(sequence).map_err(ServeRefusal::Internal)?;
        bytes += line.len();
        if bytes > max_bytes {
            return Err(ServeRefusal::TooLarge);
        }
        let inclusion = log
            .prove_inclusion(sequence, ask.new_size)
            .map_err(ServeRefusal::Internal)?;
        samples.push(Sample {
            sequence,
            line,
            inclusion,
        });
    }
    Ok(Evidence {
        scroll: ask.scroll.clone(),
        new_size: ask.new_size,
        consistency,
        samples,
    })
}
