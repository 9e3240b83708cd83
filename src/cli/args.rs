//! Flag groups shared by several commands, each turned once into the library's
//! checked form (an [`EngineBuilder`]).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use stancemap::{
    Agglomerative, Algorithm, AlignmentSource, CacheLocation, Dbscan, Engine, EngineBuilder,
    Hdbscan, Precision, ScorerKind, DEFAULT_DUPLICATE_THRESHOLD, DEFAULT_MAX_DISTANCE,
};

use super::progress::Terminal;

/// Options shared by every command that runs the encoder.
#[derive(Args)]
pub struct EngineArgs {
    /// A local model folder (config.json, tokenizer.json, model.safetensors) of the
    /// BERT or XLM-R family; default: multilingual-e5-small, fetched if missing.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Weight precision of the dense layers: f32 (the reference), bf16, q8 (the
    /// fastest on AVX-512 VNNI CPUs) or q4.
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Compute threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl EngineArgs {
    /// The thread count asked for, or every core.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// An engine builder with these options and a terminal observer.
    pub fn builder(&self) -> EngineBuilder {
        let builder = Engine::builder()
            .precision(self.precision)
            .batch_size(self.batch_size)
            .observer(Terminal::default());
        match &self.model {
            Some(dir) => builder.model_dir(dir),
            None => builder,
        }
    }
}

/// Thresholds of grouping and duplicate detection.
#[derive(Args)]
pub struct GroupingArgs {
    /// Cosine similarity at or above which two claims are duplicates.
    #[arg(long, default_value_t = DEFAULT_DUPLICATE_THRESHOLD)]
    pub threshold: f32,
    /// Cosine distance cut: under it groups merge (agglomerative, average linkage)
    /// or rows are neighbours (DBSCAN).
    #[arg(long, default_value_t = DEFAULT_MAX_DISTANCE)]
    pub max_distance: f32,
    /// How claims are grouped.
    #[arg(long, value_enum, default_value_t = AlgorithmKind::Agglomerative)]
    pub algorithm: AlgorithmKind,
    /// DBSCAN: neighbours (itself included) that make a core claim; HDBSCAN: the
    /// least cluster size.
    #[arg(long, default_value_t = 2)]
    pub min_points: usize,
    /// Only list duplicate pairs whose claims come from different articles.
    #[arg(long)]
    pub cross_article_only: bool,
    /// Embed every claim afresh instead of using the on-disk cache
    /// ($STANCEMAP_CACHE, default models/cache).
    #[arg(long)]
    pub no_cache: bool,
}

impl GroupingArgs {
    /// `builder` with these thresholds and the cache unless turned off.
    pub fn apply(&self, builder: EngineBuilder) -> EngineBuilder {
        builder
            .grouping(self.algorithm.with(self.max_distance, self.min_points))
            .duplicate_threshold(self.threshold)
            .cross_article_only(self.cross_article_only)
            .cache(cache_unless(self.no_cache))
    }
}

/// The default cache, unless `no_cache`.
pub fn cache_unless(no_cache: bool) -> CacheLocation {
    if no_cache {
        CacheLocation::Off
    } else {
        CacheLocation::Default
    }
}

/// A grouping algorithm, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AlgorithmKind {
    Agglomerative,
    Dbscan,
    Hdbscan,
}

impl AlgorithmKind {
    /// The algorithm with its parameters (unchecked: the engine checks them).
    pub fn with(self, max_distance: f32, min_points: usize) -> Algorithm {
        match self {
            AlgorithmKind::Agglomerative => {
                Algorithm::Agglomerative(Agglomerative { max_distance })
            }
            AlgorithmKind::Dbscan => Algorithm::Dbscan(Dbscan {
                max_distance,
                min_points,
            }),
            AlgorithmKind::Hdbscan => Algorithm::Hdbscan(Hdbscan {
                min_cluster_size: min_points,
            }),
        }
    }
}

/// Which parallel sentences align Chinese with English embeddings.
#[derive(Args)]
pub struct AlignArgs {
    /// Parallel English–Chinese sentences (TSV `en<TAB>zh`) that measure the
    /// language offset added to Chinese claims. Default: models/align/en-zh.tsv.
    #[arg(long, value_name = "FILE")]
    pub align: Option<PathBuf>,
    /// Compare claims as the encoder places them, without the language offset.
    #[arg(long, conflicts_with = "align")]
    pub no_align: bool,
    /// What a money amount named by both claims of an English–Chinese pair adds
    /// to its score ($500 million = 5亿美元); 0 turns it off.
    #[arg(long, default_value_t = stancemap::align::SHARED_AMOUNT_BONUS, value_name = "SCORE")]
    pub amount_bonus: f32,
}

impl AlignArgs {
    /// `builder` with this alignment.
    pub fn apply(&self, builder: EngineBuilder) -> EngineBuilder {
        let source = match (&self.align, self.no_align) {
            (_, true) => AlignmentSource::Off,
            (Some(path), false) => AlignmentSource::File(path.clone()),
            (None, false) => AlignmentSource::Default,
        };
        builder.alignment(source).amount_bonus(self.amount_bonus)
    }
}

/// The stance target and scorer.
#[derive(Args)]
pub struct StanceArgs {
    /// A target frame (TOML: name, description, examples per label; see
    /// models/stance/china-rare-earth.toml). Default: China's rare-earth position.
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// How claims are scored against the frame's examples: prototype, kernel,
    /// logistic or blend.
    #[arg(long, default_value = "blend")]
    pub scorer: ScorerKind,
}

impl StanceArgs {
    /// `builder` with this target and scorer.
    pub fn apply(&self, builder: EngineBuilder) -> EngineBuilder {
        let builder = builder.scorer(self.scorer);
        match &self.target {
            Some(path) => builder.target_file(path),
            None => builder,
        }
    }
}
