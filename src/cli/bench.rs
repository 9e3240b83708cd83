//! `stancemap bench`: speed per precision, or side by side with other engines.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use stancemap::bench::{self, BenchOptions};
use stancemap::compare::{self, CompareOptions, Peer};
use stancemap::{cpu, model, output, Precision};

use super::args::EngineArgs;
use super::progress::Terminal;

/// Measure embedding speed per precision, or with --against side by side with other
/// engines over HTTP; prints the machine and a table, writes JSON.
#[derive(Args)]
pub struct BenchArgs {
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

pub fn run(args: BenchArgs) -> Result<()> {
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

fn run_against(args: BenchArgs) -> Result<()> {
    let options = CompareOptions {
        workload: args.workload,
        limit: args.limit,
        batch_size: args.engine.batch_size,
        concurrency: args.concurrency,
        threads: args.engine.threads(),
    };
    let engine = args.engine.builder().build()?;
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
