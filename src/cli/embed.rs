//! `stancemap embed`: passages to vectors.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use stancemap::{input, output, Role};

use super::args::EngineArgs;

/// Embed passages: FILES are .txt (one passage per line), .jsonl ({"id","text"}) or -.
#[derive(Args)]
pub struct EmbedArgs {
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
    pub engine: EngineArgs,
}

pub fn run(args: EmbedArgs) -> Result<()> {
    output::check_embeddings_path(&args.output)?;
    let passages = input::read_all(&args.files)?;
    let engine = args.engine.builder().build()?;
    let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    let role = if args.query {
        Role::Query
    } else {
        Role::Passage
    };
    let start = Instant::now();
    let vectors = engine.embed(&texts, role)?;
    let ids: Vec<String> = passages.into_iter().map(|p| p.id).collect();
    output::write_embeddings(&args.output, &ids, &vectors)?;
    eprintln!(
        "stancemap: embedded {} passages ({} × {}) in {:.2}s → {}",
        ids.len(),
        vectors.nrows(),
        vectors.ncols(),
        start.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(())
}
