//! `stancemap embed`: passages to vectors.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use stancemap::input::PassageReader;
use stancemap::{output, Role};

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
    let mut reader = PassageReader::new(&args.files);
    // The first batch is read before the model loads, so bad input fails fast.
    let mut batch = super::next_batch(&mut reader)?;
    let engine = args.engine.builder_as_published().build()?;
    let role = if args.query {
        Role::Query
    } else {
        Role::Passage
    };
    let start = Instant::now();
    let mut writer = output::EmbeddingsWriter::create(&args.output, engine.dim())?;
    let mut passages = 0;
    while !batch.is_empty() {
        let texts: Vec<&str> = batch.iter().map(|p| p.text.as_str()).collect();
        let vectors = engine.embed(&texts, role)?;
        let ids: Vec<String> = batch.into_iter().map(|p| p.id).collect();
        writer.push(&ids, &vectors)?;
        passages += ids.len();
        batch = super::next_batch(&mut reader)?;
    }
    writer.finish()?;
    eprintln!(
        "stancemap: embedded {passages} passages ({passages} × {}) in {:.2}s → {}",
        engine.dim(),
        start.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(())
}
