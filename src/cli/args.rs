//! Flag groups shared by several commands, each turned once into the library's
//! checked form (an [`EngineBuilder`]).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use stancemap::{
    AdapterSource, Agglomerative, Algorithm, AlignmentSource, CacheLocation, Dbscan, Engine,
    EngineBuilder, Hdbscan, Precision, ReaderSource, SameClaimSource, ScorerKind, DEFAULT_CUT,
    DEFAULT_DUPLICATE_THRESHOLD,
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
    /// The low-rank adapter merged into the encoder's weights at load: `claims`
    /// (the built-in one, tuned to tell claims apart), `none` (the encoder as
    /// published), or a file from `stancemap eval fit-adapter` (pass a same-claim
    /// model fitted with it too). Default: claims for cluster, dedup, stance and
    /// eval; none for embed, serve and bench, which give the published model's
    /// vectors.
    #[arg(long, value_name = "claims|none|FILE")]
    pub adapter: Option<String>,
}

impl EngineArgs {
    /// The thread count asked for, or every core.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// An engine builder for the claim jobs (the adapter for claims unless
    /// `--adapter` says otherwise) with a terminal observer.
    pub fn builder(&self) -> EngineBuilder {
        self.builder_with(AdapterSource::ForClaims)
    }

    /// An engine builder for jobs that give the published model's vectors
    /// (no adapter unless `--adapter` asks for one).
    pub fn builder_as_published(&self) -> EngineBuilder {
        self.builder_with(AdapterSource::None)
    }

    fn builder_with(&self, default_adapter: AdapterSource) -> EngineBuilder {
        let adapter = match self.adapter.as_deref() {
            None => default_adapter,
            Some("none") => AdapterSource::None,
            Some("claims") => AdapterSource::ForClaims,
            Some(path) => AdapterSource::File(path.into()),
        };
        let builder = Engine::builder()
            .precision(self.precision)
            .batch_size(self.batch_size)
            .adapter(adapter)
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
    /// Same-claim probability (0–1] at or above which two claims are duplicates.
    #[arg(long, default_value_t = DEFAULT_DUPLICATE_THRESHOLD, value_name = "P")]
    pub threshold: f32,
    /// Agglomerative: groups merge while their pairs' mean same-claim probability
    /// is at least P (0–1]; groups that end under it are dissolved.
    #[arg(long, default_value_t = DEFAULT_CUT, value_name = "P")]
    pub cut: f32,
    /// DBSCAN: cosine distance (0–2] within which aligned claims are neighbours.
    /// Default: 0.18 with the built-in adapter, 0.10 with `--adapter none` or a
    /// file (the tuned encoder spreads claims apart).
    #[arg(long)]
    pub max_distance: Option<f32>,
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
            .grouping(
                self.algorithm
                    .with(self.cut, self.max_distance, self.min_points),
            )
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
    /// The algorithm with its parameters (unchecked: the engine checks them);
    /// DBSCAN's radius `None` is the engine's default for its encoder.
    pub fn with(self, cut: f32, max_distance: Option<f32>, min_points: usize) -> Algorithm {
        match self {
            AlgorithmKind::Agglomerative => Algorithm::Agglomerative(Agglomerative { cut }),
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

/// Whether the pairs in doubt are read again, two claims at a time.
#[derive(Args)]
pub struct ReaderArgs {
    /// The pair reader: the encoder read as a cross-encoder, two claims at a
    /// time, re-reading every pair the same-claim model gives at least 0.05 (its
    /// log-odds then weigh 0.7 against the model's 0.3; far slower than the
    /// model, and sharper on pairs that share their words but not their meaning,
    /// such as swapped names). `claims` (the built-in one), `none`, or a file
    /// from benches/eval/fit_pair_reader.py. Default: none.
    #[arg(long, value_name = "claims|none|FILE")]
    pub pair_reader: Option<String>,
}

impl ReaderArgs {
    /// `builder` with this pair reader.
    pub fn apply(&self, builder: EngineBuilder) -> EngineBuilder {
        let reader = match self.pair_reader.as_deref() {
            None | Some("none") => ReaderSource::None,
            Some("claims") => ReaderSource::ForClaims,
            Some(path) => ReaderSource::File(path.into()),
        };
        builder.pair_reader(reader)
    }
}

/// How claims are compared: the parallel sentences that align Chinese with
/// English embeddings, and the same-claim model.
#[derive(Args)]
pub struct AlignArgs {
    /// Parallel English–Chinese sentences (TSV `en<TAB>zh`) that measure the
    /// language offset added to Chinese claims. Default: models/align/en-zh.tsv.
    #[arg(long, value_name = "FILE")]
    pub align: Option<PathBuf>,
    /// Compare claims as the encoder places them, without the language offset.
    #[arg(long, conflicts_with = "align")]
    pub no_align: bool,
    /// A same-claim model (JSON from `stancemap eval fit-same-claim`) that gives
    /// the probability two claims state the same thing. Default: the built-in
    /// one for multilingual-e5-small and its adapter
    /// (models/same-claim/e5-small-claims.json with `--adapter claims`,
    /// models/same-claim/e5-small.json with `--adapter none`).
    #[arg(long, value_name = "FILE")]
    pub same_claim: Option<PathBuf>,
}

impl AlignArgs {
    /// `builder` with this alignment and same-claim model.
    pub fn apply(&self, builder: EngineBuilder) -> EngineBuilder {
        let source = match (&self.align, self.no_align) {
            (_, true) => AlignmentSource::Off,
            (Some(path), false) => AlignmentSource::File(path.clone()),
            (None, false) => AlignmentSource::Default,
        };
        let same_claim = self
            .same_claim
            .clone()
            .map_or(SameClaimSource::Default, SameClaimSource::File);
        builder.alignment(source).same_claim(same_claim)
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
