//! `stancemap stance`: the stance of passages toward a target, as JSONL.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use stancemap::report::StanceRow;
use stancemap::{input, output};

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
    let passages = input::read_all(&args.files)?;
    let engine = settings.load()?;
    let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    let rows: Vec<StanceRow> = passages
        .iter()
        .zip(engine.stance(&texts)?)
        .map(|(p, stance)| StanceRow {
            id: p.id.clone(),
            text: p.text.clone(),
            stance,
        })
        .collect();
    output::write_json_lines(&args.output, &rows)?;
    eprintln!(
        "stancemap: {} passages scored toward {}",
        rows.len(),
        engine.target().name
    );
    Ok(())
}
