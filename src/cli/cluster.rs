//! `stancemap cluster`: the main job.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use stancemap::output;

use super::args::{AlignArgs, EngineArgs, GroupingArgs, StanceArgs};
use super::read_corpus;

/// Read articles, split claims, find duplicates and groups, score their stance,
/// write report.json, report.md and report.html.
#[derive(Args)]
pub struct ClusterArgs {
    /// Files or folders of .txt, .md, .jsonl, .csv articles.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder.
    #[arg(short, long, default_value = "out")]
    output: PathBuf,
    #[command(flatten)]
    grouping: GroupingArgs,
    #[command(flatten)]
    align: AlignArgs,
    #[command(flatten)]
    stance: StanceArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: ClusterArgs) -> Result<()> {
    let start = Instant::now();
    let builder = args.engine.builder();
    let settings = args
        .stance
        .apply(args.align.apply(args.grouping.apply(builder)))
        .check()?;
    output::check_dir(&args.output)?;
    let corpus = read_corpus(&args.inputs)?;
    let engine = settings.load()?;
    let report = engine.analyse(&corpus)?;
    report.write(&args.output)?;
    eprintln!(
        "stancemap: {} clusters, {} duplicate pairs in {:.1}s → {} (report.json, report.md, report.html)",
        report.clusters.len(),
        report.duplicates.len(),
        start.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(())
}
