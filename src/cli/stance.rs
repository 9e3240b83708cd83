//! `stancemap stance`: the stance of passages toward a target, as JSONL.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use stancemap::input::PassageReader;
use stancemap::output;
use stancemap::report::StanceRow;

use super::args::{EngineArgs, StanceArgs};

/// Score the stance of passages toward a target: FILES are .txt (one passage per
/// line), .jsonl ({"id","text"}) or -. Writes JSONL
/// ({"id","text","label","score","probabilities"}).
#[derive(Args)]
pub struct StanceCommandArgs {
    /// Input files (`-` reads lines from stdin).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// JSONL output; - for stdout.
    #[arg(short, long, default_value = "-")]
    output: PathBuf,
    #[command(flatten)]
    stance: StanceArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: StanceCommandArgs) -> Result<()> {
    let settings = args.stance.apply(args.engine.builder()).check()?;
    output::check_file(&args.output)?;
    let mut reader = PassageReader::new(&args.files);
    // The first batch is read before the model loads, so bad input fails fast.
    let mut batch = super::next_batch(&mut reader)?;
    let engine = settings.load()?;
    let mut writer = output::JsonLinesWriter::create(&args.output)?;
    let mut passages = 0;
    while !batch.is_empty() {
        let texts: Vec<&str> = batch.iter().map(|p| p.text.as_str()).collect();
        let stances = engine.stance(&texts)?;
        let rows: Vec<StanceRow> = batch
            .into_iter()
            .zip(stances)
            .map(|(p, stance)| StanceRow {
                id: p.id,
                text: p.text,
                stance,
            })
            .collect();
        writer.push(&rows)?;
        passages += rows.len();
        batch = super::next_batch(&mut reader)?;
    }
    writer.finish()?;
    eprintln!(
        "stancemap: {passages} passages scored toward {}",
        engine.target().name
    );
    Ok(())
}
