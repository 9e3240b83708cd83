//! The `stancemap` command line: flags parsed once into each command's
//! arguments, the thread pool set up once, then one short `run` per command that
//! builds an [`stancemap::Engine`] and prints.

mod args;
mod bench;
mod cluster;
mod dedup;
mod embed;
mod eval;
mod model;
mod progress;
mod serve;
mod stance;

use anyhow::Result;
use clap::{Parser, Subcommand};

use args::EngineArgs;

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
    Model(model::ModelCommand),
    /// Embed passages: FILES are .txt (one passage per line), .jsonl ({"id","text"}) or -.
    Embed(embed::EmbedArgs),
    /// The main job: read articles, split claims, find duplicates and clusters, score
    /// their stance, write report.json, report.md and report.html.
    Cluster(cluster::ClusterArgs),
    /// Score the stance of passages toward a target: FILES are .txt (one passage per
    /// line), .jsonl ({"id","text"}) or -. Writes JSONL
    /// ({"id","text","label","score","probabilities"}).
    Stance(stance::StanceCommandArgs),
    /// List duplicate claim pairs (cross-lingual ones included) as JSONL.
    Dedup(dedup::DedupArgs),
    /// Quality on labelled data: pair sets (.tsv) and clustering sets (.jsonl);
    /// `eval stance` for stance sets.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Eval(eval::EvalArgs),
    /// Serve embeddings over HTTP with the OpenAI API (POST /v1/embeddings,
    /// GET /v1/models, GET /health) until SIGTERM or Ctrl-C.
    Serve(serve::ServeArgs),
    /// Measure embedding speed per precision, or with --against side by side with other
    /// engines over HTTP; prints the machine and a table, writes JSON. `bench
    /// scale` times the neighbour and grouping stages on synthetic corpora.
    #[command(args_conflicts_with_subcommands = true)]
    Bench(bench::BenchArgs),
}

impl Command {
    /// The encoder options, for commands that run the encoder.
    fn engine(&self) -> Option<&EngineArgs> {
        match self {
            Command::Model(_) => None,
            Command::Embed(a) => Some(&a.engine),
            Command::Cluster(a) => Some(&a.engine),
            Command::Stance(a) => Some(&a.engine),
            Command::Dedup(a) => Some(&a.engine),
            Command::Eval(a) => Some(a.engine()),
            Command::Serve(a) => Some(&a.engine),
            Command::Bench(a) => Some(&a.engine),
        }
    }
}

/// Parses the command line and runs it; errors are printed as one line.
pub fn main() {
    let cli = Cli::parse();
    if let Some(engine) = cli.command.engine() {
        set_threads(engine.threads());
    }
    if let Err(err) = run(cli.command) {
        eprintln!("stancemap: error: {err:#}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Model(c) => model::run(c),
        Command::Embed(a) => embed::run(a),
        Command::Cluster(a) => cluster::run(a),
        Command::Stance(a) => stance::run(a),
        Command::Dedup(a) => dedup::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Bench(a) => bench::run(a),
    }
}

/// Sizes the global rayon pool, which the engine's kernels use, once, before any
/// work; candle reads `RAYON_NUM_THREADS` for its matrix products.
fn set_threads(threads: usize) {
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
}

/// Passages `embed` and `stance` take at a time: memory holds one batch of
/// texts and vectors, however large the input.
const PASSAGE_BATCH: usize = 16_384;

/// The next batch of passages for `embed` and `stance`, warning about any bytes
/// that had to be replaced.
fn next_batch(
    reader: &mut stancemap::input::PassageReader,
) -> Result<Vec<stancemap::input::Passage>> {
    let batch = reader.next_batch(PASSAGE_BATCH)?;
    for warning in reader.take_warnings() {
        eprintln!("stancemap: warning: {warning}");
    }
    Ok(batch)
}

/// Reads the corpus, telling the user what the reading passed over or changed
/// and how many articles and claims it found.
fn read_corpus(inputs: &[std::path::PathBuf]) -> Result<stancemap::Corpus> {
    let corpus = stancemap::Corpus::read_observed(inputs, &progress::Terminal::default())?;
    for warning in &corpus.warnings {
        eprintln!("stancemap: warning: {warning}");
    }
    eprintln!(
        "stancemap: {} articles, {} claims",
        corpus.articles.len(),
        corpus.claims.len()
    );
    Ok(corpus)
}
