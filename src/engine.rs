//! The library's front door: an [`Engine`] holds a loaded model with everything
//! the main job needs around it (embedding cache, stance target, grouping options,
//! cross-language alignment) and runs each job on a [`Corpus`].
//!
//! [`EngineBuilder::build`] checks every option and reads every file it names
//! before the model is loaded, so bad input fails in milliseconds.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use ndarray::{Array2, Axis};

use crate::align::{self, LanguageOffset, ParallelPairs};
use crate::cache::{self, EmbeddingCache};
use crate::cluster::{Agglomerative, Algorithm};
use crate::corpus::{Corpus, Lang};
use crate::embed::{EmbedOptions, Embedder, Precision, Role};
use crate::error::{Error, Result};
use crate::eval::TrainingPair;
use crate::memory;
use crate::model;
use crate::observer::{Event, Observer, Silent};
use crate::observer::{Stage, StageProgress};
use crate::pipeline::{self, ClusterOptions};
use crate::report::{DuplicateRow, ModelInfo, Report};
use crate::same_claim::reader::ReaderFile;
use crate::same_claim::{self, PairReader, PairScorer, ReaderError, SameClaimModel, PROBE_TEXT};
use crate::stance::{ClaimStance, Context, Frame, ScorerKind, StanceModel, DEFAULT_FRAME};
use crate::tune::{self, Adapter, TrainEvent, TrainOptions};

/// Default duplicate threshold (same-claim probability), chosen on the
/// evaluation data (README).
pub const DEFAULT_DUPLICATE_THRESHOLD: f32 = 0.5;
/// Default grouping cut (the same-claim probability a group's pairs must average).
pub const DEFAULT_CUT: f32 = 0.5;
/// DBSCAN's default radius (cosine distance between aligned vectors) for the
/// encoder as published or with an adapter from a file.
pub const DEFAULT_MAX_DISTANCE: f32 = 0.10;
/// DBSCAN's default radius with the built-in adapter for claims, which spreads
/// claims apart: on four dev pair sets (README, *Tuning the encoder*) its mean
/// ARI is 0.474 here against 0.379 at 0.10, where the seeds form no group.
pub const DEFAULT_MAX_DISTANCE_FOR_CLAIMS: f32 = 0.18;

/// Where the engine keeps claim embeddings between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// No cache: every text is embedded afresh.
    Off,
    /// `$STANCEMAP_CACHE`, else `cache/` in the models folder.
    Default,
    /// This folder.
    Dir(PathBuf),
}

/// Which parallel sentences bring Chinese claims next to English ones.
#[derive(Debug, Clone)]
pub enum AlignmentSource {
    /// Compare claims as the encoder places them.
    Off,
    /// The built-in `models/align/en-zh.tsv`.
    Default,
    /// A TSV file of `en<TAB>zh` pairs, read when the engine is built.
    File(PathBuf),
}

/// Which same-claim model scores claim pairs.
#[derive(Debug, Clone)]
pub enum SameClaimSource {
    /// The built-in `models/same-claim/e5-small.json` (for multilingual-e5-small).
    Default,
    /// A model file written by `stancemap eval fit-same-claim`.
    File(PathBuf),
}

/// Which low-rank adapter, if any, is merged into the encoder's weights.
#[derive(Debug, Clone)]
pub enum AdapterSource {
    /// The encoder as published (the vectors every other engine gives).
    None,
    /// The built-in `models/adapter/e5-small-claims.safetensors`, tuned for
    /// telling claims apart (README, *Tuning the encoder for claims*); applied to
    /// multilingual-e5-small, and left out for any other model.
    ForClaims,
    /// A file written by `stancemap eval fit-adapter`.
    File(PathBuf),
}

/// Which pair reader, if any, reads the claim pairs in doubt together
/// ([`PairReader`]).
#[derive(Debug, Clone)]
pub enum ReaderSource {
    /// The same-claim model alone.
    None,
    /// The built-in `models/pair-reader/e5-small-claims.safetensors`, for
    /// multilingual-e5-small (left out for any other model).
    ForClaims,
    /// A file written by `benches/eval/fit_pair_reader.py`.
    File(PathBuf),
}

/// A pair reader's file read and checked, and whether it is the built-in one.
struct ReaderRead {
    file: ReaderFile,
    built_in: bool,
}

impl ReaderSource {
    fn read(&self) -> Result<Option<ReaderRead>> {
        let (bytes, origin, built_in): (Cow<'static, [u8]>, _, _) = match self {
            ReaderSource::None => return Ok(None),
            ReaderSource::ForClaims => (
                Cow::Borrowed(same_claim::reader::FOR_CLAIMS),
                PathBuf::from(format!("built-in {}", same_claim::reader::FOR_CLAIMS_PATH)),
                true,
            ),
            ReaderSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| ReaderError::Bad {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
                (Cow::Owned(bytes), path.clone(), false)
            }
        };
        Ok(Some(ReaderRead {
            file: ReaderFile::parse(&bytes, &origin)?,
            built_in,
        }))
    }
}

/// An adapter read: where from, whether it is the built-in one, and the sha256 of
/// its bytes (part of the cache's identity and of the same-claim model's).
struct AdapterRead {
    adapter: Arc<Adapter>,
    origin: PathBuf,
    built_in: bool,
    sha256: String,
}

impl AdapterSource {
    fn read(&self) -> Result<Option<AdapterRead>> {
        let (bytes, origin, built_in): (Cow<'static, [u8]>, _, _) = match self {
            AdapterSource::None => return Ok(None),
            AdapterSource::ForClaims => (
                Cow::Borrowed(tune::FOR_CLAIMS),
                PathBuf::from(format!("built-in {}", tune::FOR_CLAIMS_PATH)),
                true,
            ),
            AdapterSource::File(path) => (Cow::Owned(Adapter::read(path)?), path.clone(), false),
        };
        Ok(Some(AdapterRead {
            adapter: Arc::new(Adapter::from_bytes(&bytes, &origin)?),
            origin,
            built_in,
            sha256: cache::sha256_hex(&bytes),
        }))
    }
}

/// A same-claim model read, and where from.
struct PairModel {
    model: SameClaimModel,
    origin: String,
}

/// Options for an [`Engine`]; [`build`](Self::build) checks them all before any
/// slow work.
pub struct EngineBuilder {
    model: Option<PathBuf>,
    precision: Precision,
    batch_size: usize,
    threads: Option<usize>,
    cache: CacheLocation,
    target: Option<PathBuf>,
    scorer: ScorerKind,
    algorithm: Algorithm,
    duplicate_threshold: f32,
    cross_article_only: bool,
    stance_context: Context,
    alignment: AlignmentSource,
    same_claim: SameClaimSource,
    adapter: AdapterSource,
    reader: ReaderSource,
    observer: Arc<dyn Observer>,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            model: None,
            precision: Precision::F32,
            batch_size: 32,
            threads: None,
            cache: CacheLocation::Off,
            target: None,
            scorer: ScorerKind::Blend,
            algorithm: Algorithm::Agglomerative(Agglomerative { cut: DEFAULT_CUT }),
            duplicate_threshold: DEFAULT_DUPLICATE_THRESHOLD,
            cross_article_only: false,
            stance_context: Context::DEFAULT,
            alignment: AlignmentSource::Default,
            same_claim: SameClaimSource::Default,
            adapter: AdapterSource::ForClaims,
            reader: ReaderSource::None,
            observer: Arc::new(Silent),
        }
    }
}

impl EngineBuilder {
    /// A local model folder (`config.json`, `tokenizer.json`, `model.safetensors`)
    /// of the BERT or XLM-R family. Default: multilingual-e5-small, fetched into
    /// the models folder when missing.
    pub fn model_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.model = Some(dir.into());
        self
    }

    /// Numeric precision of the dense layers (default f32, the reference).
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Sequences per encoder batch (default 32).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Runs the engine's work on a pool of its own with this many threads
    /// (default: the global rayon pool).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Where embeddings are cached between runs (default: off).
    pub fn cache(mut self, cache: CacheLocation) -> Self {
        self.cache = cache;
        self
    }

    /// A stance target frame file (TOML; see `models/stance/`). Default: China's
    /// rare-earth position.
    pub fn target_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.target = Some(path.into());
        self
    }

    /// How claims are scored against the frame's examples (default blend).
    pub fn scorer(mut self, scorer: ScorerKind) -> Self {
        self.scorer = scorer;
        self
    }

    /// How claims are grouped (default: average linkage on same-claim
    /// probabilities cut at [`DEFAULT_CUT`]).
    pub fn grouping(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Same-claim probability at or above which two claims are duplicates, in
    /// (0, 1] (default [`DEFAULT_DUPLICATE_THRESHOLD`]).
    pub fn duplicate_threshold(mut self, threshold: f32) -> Self {
        self.duplicate_threshold = threshold;
        self
    }

    /// List only duplicate pairs whose claims come from different articles.
    pub fn cross_article_only(mut self, yes: bool) -> Self {
        self.cross_article_only = yes;
        self
    }

    /// How much of its article `analyse` reads each claim's stance with (default
    /// [`Context::DEFAULT`]: its two claims on either side at full weight).
    pub fn stance_context(mut self, context: Context) -> Self {
        self.stance_context = context;
        self
    }

    /// Which parallel sentences align Chinese with English (default: built in).
    pub fn alignment(mut self, source: AlignmentSource) -> Self {
        self.alignment = source;
        self
    }

    /// Which same-claim model scores claim pairs (default: built in).
    pub fn same_claim(mut self, source: SameClaimSource) -> Self {
        self.same_claim = source;
        self
    }

    /// Which adapter is merged into the encoder's weights at load. Default: the
    /// built-in one for claims ([`AdapterSource::ForClaims`]); choose
    /// [`AdapterSource::None`] for the vectors the published model gives.
    pub fn adapter(mut self, source: AdapterSource) -> Self {
        self.adapter = source;
        self
    }

    /// Which pair reader reads the claim pairs in doubt together (those the
    /// same-claim model gives at least [`same_claim::READ_FLOOR`]), its log-odds
    /// weighed with the model's ([`same_claim::READ_WEIGHT`]). Default: none.
    pub fn pair_reader(mut self, source: ReaderSource) -> Self {
        self.reader = source;
        self
    }

    /// Receives progress and notices (default: [`Silent`]).
    pub fn observer(mut self, observer: impl Observer + 'static) -> Self {
        self.observer = Arc::new(observer);
        self
    }

    /// Checks the options, reads the files they name, then loads (or fetches) the
    /// model and opens the cache: [`check`](Self::check) then
    /// [`EngineSettings::load`].
    pub fn build(self) -> Result<Engine> {
        self.check()?.load()
    }

    /// Checks every option and reads the files they name (frame, parallel
    /// sentences, same-claim model), without loading the encoder: what fails
    /// here fails fast.
    pub fn check(self) -> Result<EngineSettings> {
        let options = ClusterOptions::new(
            self.algorithm,
            self.duplicate_threshold,
            self.cross_article_only,
            self.stance_context,
        )?;
        let at_least_one = |option, n: usize| match n {
            0 => Err(Error::Invalid {
                option,
                why: "must be at least 1".into(),
            }),
            _ => Ok(()),
        };
        crate::embed::isa::check_env().map_err(|why| Error::Invalid {
            option: "the kernel path",
            why,
        })?;
        at_least_one("the batch size", self.batch_size)?;
        at_least_one("the thread count", self.threads.unwrap_or(1))?;
        let frame = match &self.target {
            Some(path) => Frame::load(path)?,
            None => Frame::parse(DEFAULT_FRAME, "built-in frame china-rare-earth")?,
        };
        let alignment = self.read_alignment()?;
        let same_claim = match &self.same_claim {
            SameClaimSource::Default if matches!(self.adapter, AdapterSource::None) => PairModel {
                model: SameClaimModel::built_in(),
                origin: "built-in models/same-claim/e5-small.json".into(),
            },
            SameClaimSource::Default => PairModel {
                model: SameClaimModel::built_in_for_claims(),
                origin: "built-in models/same-claim/e5-small-claims.json".into(),
            },
            SameClaimSource::File(path) => PairModel {
                model: SameClaimModel::load(path)?,
                origin: path.display().to_string(),
            },
        };
        let adapter = self.adapter.read()?;
        let reader = self.reader.read()?;
        let pool = self
            .threads
            .map(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build())
            .transpose()
            .map_err(|e| Error::Invalid {
                option: "the thread count",
                why: e.to_string(),
            })?;
        Ok(EngineSettings {
            model: self.model,
            embed: EmbedOptions {
                precision: self.precision,
                batch_size: self.batch_size,
                adapter: None,
            },
            adapter,
            reader,
            pool,
            cache: self.cache,
            frame,
            scorer: self.scorer,
            options,
            alignment,
            same_claim,
            observer: self.observer,
        })
    }

    fn read_alignment(&self) -> Result<Option<ParallelPairs>> {
        let pairs = match &self.alignment {
            AlignmentSource::Off => return Ok(None),
            AlignmentSource::Default => {
                ParallelPairs::parse(align::DEFAULT_PAIRS, "built-in models/align/en-zh.tsv")?
            }
            AlignmentSource::File(path) => ParallelPairs::load(path)?,
        };
        Ok(Some(pairs))
    }
}

/// Checked options, with the files they name already read: [`load`](Self::load)
/// is all that is left.
pub struct EngineSettings {
    model: Option<PathBuf>,
    /// Everything but the adapter, which is added once the model is known.
    embed: EmbedOptions,
    adapter: Option<AdapterRead>,
    reader: Option<ReaderRead>,
    pool: Option<rayon::ThreadPool>,
    cache: CacheLocation,
    frame: Frame,
    scorer: ScorerKind,
    options: ClusterOptions,
    alignment: Option<ParallelPairs>,
    same_claim: PairModel,
    observer: Arc<dyn Observer>,
}

impl EngineSettings {
    /// Loads (or fetches) the model and opens the cache.
    pub fn load(mut self) -> Result<Engine> {
        let files = model::resolve(self.model.as_deref(), self.observer.as_ref())?;
        let adapter = match self.adapter.take() {
            Some(read) if read.built_in && read.adapter.encoder != files.id => None,
            other => other,
        };
        if let Some(read) = &adapter {
            read.adapter.check_model(&files.id, &read.origin)?;
        }
        let embed = EmbedOptions {
            adapter: adapter.as_ref().map(|read| read.adapter.clone()),
            ..self.embed.clone()
        };
        let embedder = Embedder::load(files, embed)?;
        let reader = self.load_reader(&embedder)?;
        let adapter = adapter.map(|read| AdapterIdentity {
            origin: read.origin.display().to_string(),
            sha256: read.sha256,
            built_in: read.built_in,
        });
        self.options.grouping = self
            .options
            .grouping
            .with_default_radius(default_max_distance(adapter.as_ref()))?;
        let cache = self.open_cache(&embedder, adapter.as_ref().map(|a| a.sha256.as_str()))?;
        Ok(Engine {
            embedder: Arc::new(embedder),
            cache: cache.map(Mutex::new),
            pool: self.pool,
            frame: self.frame,
            scorer: self.scorer,
            stance: OnceLock::new(),
            options: self.options,
            alignment: self.alignment,
            offset: OnceLock::new(),
            same_claim: self.same_claim,
            same_claim_checked: OnceLock::new(),
            adapter,
            reader,
            observer: self.observer,
        })
    }

    /// Loads the pair reader asked for beside `embedder`'s encoder (the built-in
    /// one is left out for a model it was not made for).
    fn load_reader(&mut self, embedder: &Embedder) -> Result<Option<PairReader>> {
        let files = embedder.files();
        match self.reader.take() {
            None => Ok(None),
            Some(read) if read.built_in && read.file.encoder() != files.id => Ok(None),
            Some(read) => Ok(Some(PairReader::load(
                read.file,
                embedder.encoder(),
                files,
                self.embed.precision,
            )?)),
        }
    }

    /// Opens the cache of this model identity: its files, `adapter` (the sha256
    /// of the adapter merged in, if any), the precision and the kernel path.
    fn open_cache(
        &self,
        embedder: &Embedder,
        adapter: Option<&str>,
    ) -> Result<Option<EmbeddingCache>> {
        let dir = match &self.cache {
            CacheLocation::Off => return Ok(None),
            CacheLocation::Default => std::env::var_os("STANCEMAP_CACHE")
                .map_or_else(|| model::models_root().join("cache"), PathBuf::from),
            CacheLocation::Dir(dir) => dir.clone(),
        };
        let files = embedder.files();
        let config = files.dir.join("config.json");
        let mut identity = vec![config.as_path(), &files.tokenizer, &files.weights];
        if embedder.options().precision == Precision::Q4 {
            identity.extend(files.q4_weights.as_deref());
        }
        let fingerprint = cache::fingerprint(
            &identity,
            adapter,
            &embedder.numerics(),
            &crate::embed::isa::features().describe(),
        )?;
        let cache = EmbeddingCache::open(&dir, embedder.model_id(), &fingerprint, embedder.dim())?;
        if let Some(repair) = cache.repaired() {
            self.observer.event(&Event::CacheRepaired {
                path: cache.path().to_path_buf(),
                skipped_bytes: repair.skipped_bytes,
                cut_at: repair.cut_at,
            });
        }
        Ok(Some(cache))
    }
}

/// A loaded model and the main job's settings: embeds texts, analyses corpora,
/// lists duplicates and scores stance.
///
/// ```
/// use stancemap::{Corpus, Engine, Role};
///
/// let engine = Engine::builder().build()?;
/// let vectors = engine.embed(&["稀土出口管制", "rare-earth export controls"], Role::Passage)?;
/// assert_eq!(vectors.shape(), &[2, 384]);
///
/// let mut corpus = Corpus::default();
/// corpus.add_text("a", "Rare earths\nChina controls most rare-earth refining. Pakistan signed a $500 million deal.");
/// corpus.add_text("b", "稀土\n巴基斯坦与美国签署了价值5亿美元的稀土协议。中国控制着大部分稀土精炼。");
/// let report = engine.analyse(&corpus)?;
/// assert_eq!(report.claims.len(), corpus.claims.len());
/// for group in &report.clusters {
///     println!("{} claims from {:?}: {}", group.size, group.articles, group.label);
/// }
/// # Ok::<(), stancemap::Error>(())
/// ```
pub struct Engine {
    embedder: Arc<Embedder>,
    cache: Option<Mutex<EmbeddingCache>>,
    pool: Option<rayon::ThreadPool>,
    frame: Frame,
    scorer: ScorerKind,
    stance: OnceLock<StanceModel>,
    options: ClusterOptions,
    alignment: Option<ParallelPairs>,
    offset: OnceLock<Option<LanguageOffset>>,
    same_claim: PairModel,
    same_claim_checked: OnceLock<()>,
    /// The adapter merged into the encoder, if any.
    adapter: Option<AdapterIdentity>,
    /// The pair reader, if any.
    reader: Option<PairReader>,
    observer: Arc<dyn Observer>,
}

/// Where an adapter merged into the encoder came from, and the sha256 (hex) of
/// its bytes.
struct AdapterIdentity {
    origin: String,
    sha256: String,
    built_in: bool,
}

/// DBSCAN's default radius with `adapter` merged into the encoder.
fn default_max_distance(adapter: Option<&AdapterIdentity>) -> f32 {
    match adapter {
        Some(a) if a.built_in => DEFAULT_MAX_DISTANCE_FOR_CLAIMS,
        _ => DEFAULT_MAX_DISTANCE,
    }
}

impl Engine {
    /// Options with their defaults; see [`EngineBuilder`].
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The model's name (its folder name).
    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.embedder.dim()
    }

    /// The precision the encoder runs at.
    pub fn precision(&self) -> Precision {
        self.embedder.options().precision
    }

    /// The stance target.
    pub fn target(&self) -> &Frame {
        &self.frame
    }

    /// The checked grouping and duplicate options.
    pub fn options(&self) -> &ClusterOptions {
        &self.options
    }

    /// Token ids of each text (e5 prefix and special tokens included, never
    /// truncated: longer texts are embedded in windows).
    pub fn token_ids(&self, texts: &[&str], role: Role) -> Result<Vec<Vec<u32>>> {
        Ok(self.embedder.token_ids(texts, role)?)
    }

    /// Embeds `texts`: one unit-length row each, through the cache when it is on.
    pub fn embed(&self, texts: &[&str], role: Role) -> Result<Array2<f32>> {
        let (emb, cached) = self.embed_counted(texts, role)?;
        if cached > 0 {
            self.observer.event(&Event::CacheHits {
                cached,
                total: texts.len(),
            });
        }
        Ok(emb)
    }

    /// Groups the corpus's claims, lists duplicates and scores every claim's and
    /// group's stance toward the target.
    pub fn analyse(&self, corpus: &Corpus) -> Result<Report> {
        self.analyse_with(corpus, false).map(|(report, _)| report)
    }

    /// [`analyse`](Self::analyse), also returning the claims' embeddings (a row
    /// per claim, as the report lists them), e.g. for
    /// [`tables::write`](crate::tables::write).
    pub fn analyse_keeping_embeddings(&self, corpus: &Corpus) -> Result<(Report, Array2<f32>)> {
        let (report, kept) = self.analyse_with(corpus, true)?;
        Ok((report, kept.expect("kept when asked")))
    }

    /// [`analyse`](Self::analyse), with a copy of the embeddings when `keep` (the
    /// pairs take the embeddings over, moving Chinese rows).
    fn analyse_with(&self, corpus: &Corpus, keep: bool) -> Result<(Report, Option<Array2<f32>>)> {
        self.check_fits(corpus)?;
        let emb = self.embed_claims(corpus)?;
        let offset = self.offset_for(corpus)?;
        let same_claim = self.same_claim_model()?;
        let stance = self.stance_model()?;
        let model = ModelInfo {
            id: self.model_id().to_string(),
            dim: self.dim(),
            precision: self.precision().to_string(),
            adapter: self.adapter.as_ref().map(|a| a.origin.clone()),
            pair_reader: self
                .reader
                .as_ref()
                .map(|r| r.origin().display().to_string()),
        };
        self.run(|| {
            let observer = self.observer.as_ref();
            let stances = pipeline::claim_stances(corpus, &emb, stance, &self.options);
            let kept = keep.then(|| emb.clone());
            let pairs = pipeline::claim_pairs(corpus, emb, offset, observer)?;
            let scorer = self.reread(PairScorer::new(pairs, same_claim), corpus)?;
            let options = &self.options;
            let report =
                pipeline::analyse(corpus, stances, &scorer, model, stance, options, observer)?;
            Ok((report, kept))
        })
    }

    /// The corpus's duplicate claim pairs, most probable first.
    pub fn duplicates(&self, corpus: &Corpus) -> Result<Vec<DuplicateRow>> {
        self.check_fits(corpus)?;
        let emb = self.embed_claims(corpus)?;
        let offset = self.offset_for(corpus)?;
        let same_claim = self.same_claim_model()?;
        let pairs = self.run(|| {
            let observer = self.observer.as_ref();
            let pairs = pipeline::claim_pairs(corpus, emb, offset, observer)?;
            let scorer = self.reread(PairScorer::new(pairs, same_claim), corpus)?;
            Ok::<_, Error>(pipeline::duplicates(
                corpus,
                &scorer,
                &self.options,
                observer,
            ))
        })?;
        Ok(pairs
            .into_iter()
            .map(|p| {
                let (a, b) = (&corpus.claims[p.a], &corpus.claims[p.b]);
                DuplicateRow {
                    a: a.id.clone(),
                    b: b.id.clone(),
                    probability: p.probability,
                    cosine: p.cosine,
                    article_a: a.article.clone(),
                    article_b: b.article.clone(),
                    text_a: a.text.clone(),
                    text_b: b.text.clone(),
                }
            })
            .collect())
    }

    /// The stance of each text toward the target.
    pub fn stance(&self, texts: &[&str]) -> Result<Vec<ClaimStance>> {
        let emb = self.embed(texts, Role::Passage)?;
        Ok(self.stance_model()?.score(emb.view()))
    }

    /// The offset that brings Chinese embeddings next to English ones, measured
    /// once from the parallel sentences (`None` with alignment off).
    pub fn language_offset(&self) -> Result<Option<&LanguageOffset>> {
        if let Some(offset) = self.offset.get() {
            return Ok(offset.as_ref());
        }
        let measured = match &self.alignment {
            Some(alignment) => Some(self.measure_offset(alignment)?),
            None => None,
        };
        Ok(self.offset.get_or_init(|| measured).as_ref())
    }

    /// The parallel sentences the offset is measured on (an evaluation leaves
    /// them out).
    pub fn alignment_sentences(&self) -> HashSet<&str> {
        self.alignment
            .as_ref()
            .map(ParallelPairs::sentences)
            .unwrap_or_default()
    }

    /// Whether the engine reads pairs in doubt with a pair reader.
    pub fn has_pair_reader(&self) -> bool {
        self.reader.is_some()
    }

    /// The probability that each pair of texts states the same claim, as the pair
    /// reader reads them together (progress told as [`Stage::ReadingPairs`]);
    /// `None` when the engine has no reader.
    pub fn read_pairs(&self, pairs: &[(&str, &str)]) -> Result<Option<Vec<f32>>> {
        let Some(reader) = &self.reader else {
            return Ok(None);
        };
        let observer = self.observer.as_ref();
        let progress = StageProgress::new(observer, Stage::ReadingPairs, pairs.len());
        let mut told = 0;
        let logits = self.run(|| {
            reader.logits(&self.embedder, pairs, &mut |done, _| {
                progress.advance(done - told);
                told = done;
            })
        })?;
        progress.finish();
        Ok(Some(logits.into_iter().map(same_claim::sigmoid).collect()))
    }

    /// `scorer` with the pairs in doubt read again by the pair reader, if any
    /// (`corpus`'s claims being the scorer's rows).
    fn reread<'m>(&self, scorer: PairScorer<'m>, corpus: &Corpus) -> Result<PairScorer<'m>> {
        if self.reader.is_none() {
            return Ok(scorer);
        }
        let texts: Vec<&str> = corpus.claims.iter().map(|c| c.text.as_str()).collect();
        scorer.reread(&texts, &|pairs: &[(&str, &str)]| {
            Ok(self.read_pairs(pairs)?.unwrap_or_default())
        })
    }

    /// The same-claim model, checked at first use against this encoder (a model
    /// fitted for another is refused).
    pub fn same_claim_model(&self) -> Result<&SameClaimModel> {
        if self.same_claim_checked.get().is_none() {
            let probe = self.probe()?;
            let pair = &self.same_claim;
            let adapter = self.adapter_digest();
            pair.model.check_encoder(&probe, adapter, &pair.origin)?;
            self.same_claim_checked.get_or_init(|| ());
        }
        Ok(&self.same_claim.model)
    }

    /// DBSCAN's default radius for this engine's encoder:
    /// [`DEFAULT_MAX_DISTANCE_FOR_CLAIMS`] with the built-in adapter merged in,
    /// else [`DEFAULT_MAX_DISTANCE`].
    pub fn default_max_distance(&self) -> f32 {
        default_max_distance(self.adapter.as_ref())
    }

    /// The sha256 (hex) of the adapter merged into the encoder; `None` when it
    /// runs as published.
    pub fn adapter_digest(&self) -> Option<&str> {
        self.adapter.as_ref().map(|a| a.sha256.as_str())
    }

    /// The embedding of the same-claim model's probe sentence under this encoder.
    pub fn probe(&self) -> Result<Vec<f32>> {
        let (emb, _) = self.embed_counted(&[PROBE_TEXT], Role::Passage)?;
        Ok(emb.row(0).to_vec())
    }

    /// Trains a low-rank adapter for this engine's encoder on labelled pairs
    /// ([`tune`](crate::tune)); the engine must run the untuned encoder at f32.
    pub fn train_adapter(
        &self,
        pairs: &[TrainingPair],
        options: &TrainOptions,
        trained_by: &str,
        report: &mut (dyn FnMut(TrainEvent) + Send),
    ) -> Result<Adapter> {
        if self.embedder.options().adapter.is_some() {
            return Err(Error::Invalid {
                option: "the adapter",
                why: "is trained on the untuned encoder: run with --adapter none".into(),
            });
        }
        if self.precision() != Precision::F32 {
            return Err(Error::Invalid {
                option: "the precision",
                why: "an adapter is trained on the f32 encoder".into(),
            });
        }
        let weights = crate::embed::encoder::open_weights(self.embedder.files())?;
        self.run(|| tune::train(&self.embedder, &weights, pairs, options, trained_by, report))
            .map_err(|e| Error::Train(e.to_string()))
    }

    /// The encoder, for the server and the side-by-side benchmark.
    pub(crate) fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// Where the engine's notices go.
    pub(crate) fn observer(&self) -> &Arc<dyn Observer> {
        &self.observer
    }

    /// Refuses a corpus whose claims would not fit in the memory available now
    /// ([`memory`](crate::memory)), before any embedding.
    fn check_fits(&self, corpus: &Corpus) -> Result<()> {
        memory::check_fits(corpus.claims.len(), self.dim(), memory::available_bytes())
    }

    /// Embeds the claims, telling the observer how many came from the cache.
    fn embed_claims(&self, corpus: &Corpus) -> Result<Array2<f32>> {
        let texts: Vec<&str> = corpus.claims.iter().map(|c| c.text.as_str()).collect();
        self.embed(&texts, Role::Passage)
    }

    /// Embeds through the cache when it is on; also returns how many texts came
    /// from it.
    fn embed_counted(&self, texts: &[&str], role: Role) -> Result<(Array2<f32>, usize)> {
        let observer = self.observer.as_ref();
        let mut progress = |done, total| observer.event(&Event::Progress { done, total });
        let result = self.run(|| match &self.cache {
            Some(cache) => {
                let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
                cache.embed(&self.embedder, texts, role, &mut progress)
            }
            None => {
                let (distinct, rows) = distinct(texts);
                let emb = self.embedder.embed(&distinct, role, &mut progress)?;
                let all = if distinct.len() == texts.len() {
                    emb
                } else {
                    emb.select(Axis(0), &rows)
                };
                Ok((all, 0))
            }
        });
        observer.event(&Event::Embedded { texts: texts.len() });
        result
    }

    /// The language offset, when the corpus has claims that are not English.
    fn offset_for(&self, corpus: &Corpus) -> Result<Option<&LanguageOffset>> {
        if corpus.claims.iter().all(|c| c.lang == Lang::En) {
            return Ok(None);
        }
        self.language_offset()
    }

    fn measure_offset(&self, alignment: &ParallelPairs) -> Result<LanguageOffset> {
        let pairs = &alignment.pairs;
        let english: Vec<&str> = pairs.iter().map(|(en, _)| en.as_str()).collect();
        let chinese: Vec<&str> = pairs.iter().map(|(_, zh)| zh.as_str()).collect();
        let (english, _) = self.embed_counted(&english, Role::Passage)?;
        let (chinese, _) = self.embed_counted(&chinese, Role::Passage)?;
        let offset = LanguageOffset::fit(english.view(), chinese.view());
        self.observer.event(&Event::LanguageOffset {
            pairs: pairs.len(),
            translation_floor: offset.translation_floor(),
        });
        Ok(offset)
    }

    /// The stance model, fitted on the frame's examples at first use.
    fn stance_model(&self) -> Result<&StanceModel> {
        if let Some(model) = self.stance.get() {
            return Ok(model);
        }
        let (examples, _) = self.embed_counted(&self.frame.example_texts(), Role::Passage)?;
        let model = StanceModel::fit(self.frame.clone(), examples.view(), self.scorer);
        Ok(self.stance.get_or_init(|| model))
    }

    /// Runs `work` on the engine's own pool when it has one.
    fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        match &self.pool {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }
}

/// The distinct texts of `texts` (each embedded once: wire copies are common in
/// news) and, per text, its row among them.
pub(crate) fn distinct<'t>(texts: &[&'t str]) -> (Vec<&'t str>, Vec<usize>) {
    let mut row_of: HashMap<&str, usize> = HashMap::new();
    let mut distinct = Vec::new();
    let rows = texts
        .iter()
        .map(|&t| {
            *row_of.entry(t).or_insert_with(|| {
                distinct.push(t);
                distinct.len() - 1
            })
        })
        .collect();
    (distinct, rows)
}
