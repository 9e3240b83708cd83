//! The library's one error type: a variant per stage, each naming the file (and
//! line) where there is one. The binary adds context with anyhow; the library
//! never prints.

use std::path::{Path, PathBuf};

use crate::align::AlignError;
use crate::cluster::ClusterError;
use crate::corpus::CorpusError;
use crate::embed::EmbedError;
use crate::input::InputError;
use crate::model::ModelError;
use crate::same_claim::SameClaimError;
use crate::stance::FrameError;
use crate::tune::AdapterError;

/// Everything that can go wrong in stancemap's library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Locating, fetching or reading the model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Tokenizing or running the encoder.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// Reading articles.
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    /// Reading passages to embed or score.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Reading parallel sentences.
    #[error(transparent)]
    Align(#[from] AlignError),
    /// Grouping parameters or the grouping itself.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Reading a stance target frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The corpus would not fit in memory (checked before embedding).
    #[error("{claims} claims need about {needed_mib} MiB to analyse (see src/memory.rs for what was measured) and {available_mib} MiB are available; split the corpus or use a machine with more memory")]
    TooLarge {
        claims: usize,
        needed_mib: u64,
        available_mib: u64,
    },
    /// The disk has no room for the vectors about to be stored (checked before embedding).
    #[error("{path}: storing {records} new vectors needs {needed_mib} MiB and the disk has {available_mib} MiB free; free some space, point STANCEMAP_CACHE at a folder on a larger disk, or run with --no-cache")]
    NoSpace {
        path: PathBuf,
        records: usize,
        needed_mib: u64,
        available_mib: u64,
    },
    /// Reading or checking the same-claim model.
    #[error(transparent)]
    SameClaim(#[from] SameClaimError),
    /// Fitting the same-claim model.
    #[error("fitting the same-claim model: {0}")]
    Fit(String),
    /// Reading or checking an encoder adapter.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    /// Reading or loading a pair reader.
    #[error(transparent)]
    Reader(#[from] crate::same_claim::ReaderError),
    /// Training an encoder adapter.
    #[error("training the adapter: {0}")]
    Train(String),
    /// An option out of its range, refused before any work.
    #[error("{option} {why}")]
    Invalid { option: &'static str, why: String },
    /// Reading or writing a file (cache, report, output).
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    /// A row of a data file (an evaluation set, a workload) that cannot be used.
    #[error("{path}:{line}: {why}")]
    Record {
        path: PathBuf,
        line: usize,
        why: String,
    },
    /// A data file with nothing usable in it.
    #[error("{path}: {why}")]
    Data { path: PathBuf, why: String },
    /// Another engine (a peer in `bench --against`) answered wrongly or not at all.
    #[error("{engine}: {why}")]
    Peer { engine: String, why: String },
    /// The embeddings server.
    /// The approximate-neighbour index (usearch) failed, e.g. out of memory.
    #[error("the nearest-neighbour index: {0}")]
    Index(String),
    #[error("server: {0}")]
    Serve(String),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Embed(EmbedError::Encode(e))
    }
}

/// `Result` with stancemap's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path` while doing `what` ("cannot write", ...).
    pub(crate) fn io(path: &Path, what: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    }

    /// A bad row `line` (1-based) of `path`.
    pub(crate) fn record(path: &Path, line: usize, why: impl std::fmt::Display) -> Self {
        Error::Record {
            path: path.to_path_buf(),
            line,
            why: why.to_string(),
        }
    }
}
