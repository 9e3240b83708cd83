//! How the command line shows the engine's events: a progress bar over tokens
//! on stderr (hidden when stderr is not a terminal) and one line per notice.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use stancemap::{Event, Observer, Stage};

/// Renders events on stderr.
#[derive(Default)]
pub struct Terminal {
    bar: Mutex<Option<ProgressBar>>,
}

impl Observer for Terminal {
    fn event(&self, event: &Event) {
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Progress { done, total } => {
                let bar = bar.get_or_insert_with(token_bar);
                bar.set_length(*total as u64);
                bar.set_position(*done as u64);
            }
            Event::Working { stage, done, total } => {
                let shown = bar.get_or_insert_with(|| stage_bar(*stage));
                shown.set_length(*total as u64);
                shown.set_position(*done as u64);
                if done >= total {
                    if let Some(finished) = bar.take() {
                        finished.finish_and_clear();
                    }
                }
            }
            Event::Embedded { .. } => {
                if let Some(bar) = bar.take() {
                    bar.finish_and_clear();
                }
            }
            _ => eprintln!("stancemap: {event}"),
        }
    }
}

/// A progress bar over the items of a stage on stderr, with its rate and ETA.
fn stage_bar(stage: Stage) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let counts = match stage {
        Stage::Reading => "{bytes}/{total_bytes}  {bytes_per_sec}",
        Stage::ReadingPairs => "{pos}/{len} pairs  {per_sec}",
        _ => "{pos}/{len} claims  {per_sec}",
    };
    let template = format!("{stage:<20} {{bar:40}} {counts}  eta {{eta}}");
    bar.set_style(ProgressStyle::with_template(&template).expect("template"));
    bar
}

/// A progress bar over tokens on stderr.
fn token_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tokens  {per_sec}  eta {eta}")
            .expect("template"),
    );
    bar
}
