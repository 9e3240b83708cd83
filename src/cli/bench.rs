//! `stancemap bench`: speed per precision, or side by side with other engines.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};

use stancemap::bench::scale::{self, ScaleOptions};
use stancemap::bench::{self, BenchOptions};
use stancemap::compare::{self, CompareOptions, Peer};
use stancemap::same_claim::SameClaimModel;
use stancemap::{cpu, model, output, Precision};

use super::args::EngineArgs;
use super::progress::Terminal;

/// Measure embedding speed per precision, or with --against side by side with other
/// engines over HTTP; prints the machine and a table, writes JSON.
#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    /// JSONL workload ({"id","text"} per line).
    #[arg(long, default_value = "benches/workload.jsonl")]
    workload: PathBuf,
    /// Precisions to run, comma-separated (f32, bf16, q4, q8).
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
    pub engine: EngineArgs,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time the neighbour, pair and grouping stages of `cluster` (no embedding)
    /// on synthetic clustered claims of each size, with peak memory per stage;
    /// prints a table, writes JSON.
    Scale(ScaleArgs),
}

#[derive(Args)]
struct ScaleArgs {
    /// Corpus sizes to run, comma-separated (e.g. 10000,100000,1000000).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    claims: Vec<usize>,
    /// The grouping cut (same-claim probability, 0–1].
    #[arg(long, default_value_t = stancemap::DEFAULT_CUT)]
    cut: f32,
    /// Seed of the synthetic corpora.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Above this many claims, neighbours come from the approximate search instead of
    /// exact products (to measure the switch; `cluster` uses the default).
    #[arg(long, default_value_t = scale::EXACT_LIMIT)]
    exact_limit: usize,
    /// How neighbours are found above --exact-limit: `cells` compares each claim
    /// exactly with the claims of its 8 nearest k-means cells; `hnsw` searches an
    /// HNSW index built in a cache-friendly order; `hnsw-rows` one built as the
    /// claims come.
    #[arg(long, value_enum, default_value_t = SearchKind::Cells)]
    search: SearchKind,
    /// Write the figures as JSON here.
    #[arg(long, default_value = "bench-scale.json")]
    json: PathBuf,
}

/// `bench scale --search`: how neighbours are found above the exact limit.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SearchKind {
    Cells,
    Hnsw,
    HnswRows,
}

impl From<SearchKind> for scale::ApproximateSearch {
    fn from(kind: SearchKind) -> Self {
        match kind {
            SearchKind::Cells => Self::Cells,
            SearchKind::Hnsw => Self::Hnsw,
            SearchKind::HnswRows => Self::HnswInRowOrder,
        }
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    if let Some(BenchCommand::Scale(scale)) = args.command {
        return run_scale(scale);
    }
    output::check_file(&args.json)?;
    if !args.against.is_empty() {
        output::check_file(&args.chart)?;
    }
    eprintln!("CPU: {}", cpu::CpuInfo::detect());
    if !args.against.is_empty() {
        return run_against(args);
    }
    let files = model::resolve(args.engine.model.as_deref(), &Terminal::default())?;
    let opts = BenchOptions {
        workload: args.workload,
        precisions: args.precisions,
        batch_size: args.engine.batch_size,
        threads: args.engine.threads(),
        limit: args.limit,
        stock_baseline: args.stock,
        query_runs: args.query_runs,
    };
    let report = bench::run(&files, &opts, &mut |line| eprintln!("{line}"))?;
    println!("{}", bench::format_table(&report));
    write(&args.json, &serde_json::to_string_pretty(&report)?)?;
    eprintln!("stancemap: report written to {}", args.json.display());
    Ok(())
}

fn run_scale(args: ScaleArgs) -> Result<()> {
    output::check_file(&args.json)?;
    if let Some(&n) = args.claims.iter().find(|&&n| n < 2) {
        bail!("--claims: each size must be at least 2 claims, got {n}");
    }
    let options: Vec<ScaleOptions> = args
        .claims
        .iter()
        .map(|&claims| ScaleOptions {
            claims,
            cut: args.cut,
            seed: args.seed,
            exact_limit: args.exact_limit,
            approximate: args.search.into(),
        })
        .collect();
    eprintln!("CPU: {}", cpu::CpuInfo::detect());
    let model = SameClaimModel::built_in();
    let observer = super::progress::Terminal::default();
    let mut runs = Vec::new();
    for opts in &options {
        runs.push(scale::run(opts, &model, &observer, &mut |line| {
            eprintln!("{line}")
        })?);
    }
    println!("{}", scale::format_table(&runs));
    let report = serde_json::json!({ "cpu": cpu::CpuInfo::detect(), "runs": runs });
    write(&args.json, &serde_json::to_string_pretty(&report)?)?;
    eprintln!("stancemap: figures written to {}", args.json.display());
    Ok(())
}

fn run_against(args: BenchArgs) -> Result<()> {
    let options = CompareOptions {
        workload: args.workload,
        limit: args.limit,
        batch_size: args.engine.batch_size,
        concurrency: args.concurrency,
        threads: args.engine.threads(),
    };
    let engine = args.engine.builder_as_published().build()?;
    let report = compare::run(&engine, &args.against, &options, &mut |line| {
        eprintln!("{line}")
    })?;
    println!("{}", compare::format_table(&report));
    write(&args.json, &serde_json::to_string_pretty(&report)?)?;
    write(&args.chart, &compare::chart::svg(&report))?;
    eprintln!(
        "stancemap: report written to {} and {}",
        args.json.display(),
        args.chart.display()
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    Ok(output::write_atomically(path, |out| {
        out.write_all(text.as_bytes())
    })?)
}
