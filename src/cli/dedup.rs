//! `stancemap dedup`: duplicate claim pairs as JSONL.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use stancemap::output;

use super::args::{AlignArgs, EngineArgs, GroupingArgs, ReaderArgs};
use super::read_corpus;

/// List duplicate claim pairs (cross-lingual ones included) as JSONL.
#[derive(Args)]
pub struct DedupArgs {
    /// Files or folders of articles.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// JSONL output ({"a","b","probability","cosine","article_a","article_b","text_a","text_b"});
    /// - for stdout.
    #[arg(short, long, default_value = "-")]
    output: PathBuf,
    #[command(flatten)]
    grouping: GroupingArgs,
    #[command(flatten)]
    align: AlignArgs,
    #[command(flatten)]
    reader: ReaderArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: DedupArgs) -> Result<()> {
    let settings = args
        .align
        .apply(
            args.grouping
                .apply(args.reader.apply(args.engine.builder())),
        )
        .check()?;
    output::check_file(&args.output)?;
    let corpus = read_corpus(&args.inputs)?;
    let pairs = settings.load()?.duplicates(&corpus)?;
    output::write_json_lines(&args.output, &pairs)?;
    eprintln!(
        "stancemap: {} duplicate pairs among {} claims",
        pairs.len(),
        corpus.claims.len()
    );
    Ok(())
}
