//! `stancemap cluster`: the main job.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use stancemap::report::JsonScope;
use stancemap::stance::{Context, Reach};
use stancemap::{output, tables};

use super::args::{AlignArgs, EngineArgs, GroupingArgs, ReaderArgs, StanceArgs};
use super::read_corpus;

/// Read articles, split claims, find duplicates and groups, score their stance,
/// write report.json, report.md and report.html, and the tables claims.parquet,
/// groups.parquet and pairs.parquet.
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
    reader: ReaderArgs,
    #[command(flatten)]
    stance: StanceArgs,
    /// Read each claim's stance with this many claims on either side of it in its
    /// article, or `article` for the whole article (measured: README, *Stance in
    /// context*).
    #[arg(long, default_value = "2", value_name = "N|article")]
    context_reach: Reach,
    /// How much the context counts: the claim's embedding plus W × the mean of
    /// its context's; 0 reads each claim alone.
    #[arg(long, default_value_t = 1.0, value_name = "W")]
    context_weight: f32,
    /// Also write each claim's embedding (384 float32) into claims.parquet.
    #[arg(long)]
    parquet_embeddings: bool,
    /// List every claim, group and pair in report.json whatever the corpus's size.
    /// Without it, above 20,000 claims report.json is a summary (the 1,000 largest
    /// groups, the 1,000 most probable pairs and the claims they name) and the
    /// Parquet tables hold every row.
    #[arg(long)]
    complete_json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: ClusterArgs) -> Result<()> {
    let start = Instant::now();
    let builder = args
        .reader
        .apply(args.engine.builder())
        .stance_context(Context {
            reach: args.context_reach,
            weight: args.context_weight,
        });
    let settings = args
        .stance
        .apply(args.align.apply(args.grouping.apply(builder)))
        .check()?;
    output::check_dir(&args.output)?;
    let corpus = read_corpus(&args.inputs)?;
    let engine = settings.load()?;
    // The embeddings are copied only when the table needs them.
    let (report, embeddings) = if args.parquet_embeddings {
        let (report, embeddings) = engine.analyse_keeping_embeddings(&corpus)?;
        (report, Some(embeddings))
    } else {
        (engine.analyse(&corpus)?, None)
    };
    let scope = if args.complete_json {
        JsonScope::Complete
    } else {
        JsonScope::Auto
    };
    report.write_scoped(&args.output, scope)?;
    tables::write(&report, embeddings.as_ref(), &args.output)?;
    eprintln!(
        "stancemap: {} clusters, {} duplicate pairs in {:.1}s → {} (report.json, .md, .html; claims, groups, pairs .parquet)",
        report.clusters.len(),
        report.duplicates.len(),
        start.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(())
}
