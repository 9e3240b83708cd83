//! Stance quality on labelled sets (`{"target","text","label"}` JSONL, labels
//! `favor|against|none`): per target, a frame from the first half of its rows (at most
//! `max_examples`), scored on the rest; and the zero-shot case, a frame from one
//! target scored on another target's rows.

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array2, Axis};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::stance::{claim_stances, Label, Scorer, ScorerKind};

/// One labelled row.
struct Row {
    target: String,
    text: String,
    label: Label,
}

/// A stance set: its rows grouped by target, in file order.
pub struct StanceSet {
    pub name: String,
    rows: Vec<Row>,
}

/// Figures for one set and scorer.
#[derive(Debug, Clone, Serialize)]
pub struct StanceScores {
    pub set: String,
    pub scorer: String,
    pub temperature: f32,
    pub targets: usize,
    /// Rows that fitted frames, and rows scored (targets with a frame).
    pub train: usize,
    pub scored: usize,
    /// Mean F1 over the labels present in the scored rows.
    pub macro_f1: f64,
    /// Mean F1 of `supports` (favor) and `challenges` (against): NLPCC-2016's F_avg.
    pub f_avg: f64,
    /// Mean log-loss of the gold label.
    pub log_loss: f64,
    /// Expected calibration error of the top label (10 bins).
    pub ece: f64,
    /// Macro-F1 of frames from one target scored on another's rows (targets with at
    /// least `ZERO_SHOT_MIN` training rows), `None` when fewer than two qualify.
    pub zero_shot_macro_f1: Option<f64>,
}

/// The Markdown table header of [`StanceScores::table_row`].
pub const TABLE_HEADER: &str = "| set | scorer | T | targets | train | scored | macro-F1 | F_avg | log-loss | ECE | zero-shot macro-F1 |\n|---|---|---|---|---|---|---|---|---|---|---|";

impl StanceScores {
    /// One Markdown table row.
    pub fn table_row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            self.set,
            self.scorer,
            self.temperature,
            self.targets,
            self.train,
            self.scored,
            self.macro_f1,
            self.f_avg,
            self.log_loss,
            self.ece,
            self.zero_shot_macro_f1
                .map_or("–".to_string(), |f| format!("{f:.3}"))
        )
    }
}

/// The fewest training rows a target needs to take part in the zero-shot figure.
pub const ZERO_SHOT_MIN: usize = 20;

impl StanceSet {
    /// Reads a set; errors name the file and line.
    pub fn read(path: &Path, limit: Option<usize>) -> Result<StanceSet> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "cannot read", e))?;
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate().take(limit.unwrap_or(usize::MAX)) {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| Error::record(path, i + 1, e))?;
            let (Some(target), Some(text), Some(label)) = (
                v["target"].as_str(),
                v["text"].as_str(),
                v["label"].as_str(),
            ) else {
                return Err(Error::record(
                    path,
                    i + 1,
                    "needs string \"target\", \"text\" and \"label\"",
                ));
            };
            let label = label
                .parse()
                .map_err(|e: String| Error::record(path, i + 1, e))?;
            rows.push(Row {
                target: target.to_string(),
                text: text.to_string(),
                label,
            });
        }
        Ok(StanceSet {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            rows,
        })
    }

    /// The texts to embed (as passages), one per row.
    pub fn texts(&self) -> Vec<&str> {
        self.rows.iter().map(|r| r.text.as_str()).collect()
    }

    /// Scores the set with embeddings of [`texts`](Self::texts) (one row each).
    pub fn score(
        &self,
        emb: &Array2<f32>,
        kind: ScorerKind,
        temperature: f32,
        max_examples: usize,
    ) -> StanceScores {
        let mut by_target: Vec<(&str, Vec<usize>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, r) in self.rows.iter().enumerate() {
            let slot = *index.entry(&r.target).or_insert_with(|| {
                by_target.push((&r.target, Vec::new()));
                by_target.len() - 1
            });
            by_target[slot].1.push(i);
        }
        let splits: Vec<(&[usize], &[usize])> = by_target
            .iter()
            .map(|(_, rows)| {
                let (train, test) = rows.split_at(rows.len() / 2);
                (&train[..train.len().min(max_examples)], test)
            })
            .collect();
        let fit = |train: &[usize]| {
            let labels: Vec<Label> = train.iter().map(|&i| self.rows[i].label).collect();
            Scorer::fit_with(
                kind,
                temperature,
                emb.select(Axis(0), train).view(),
                &labels,
            )
        };
        let mut tally = Tally::default();
        let mut train_rows = 0;
        for &(train, test) in &splits {
            if train.is_empty() || test.is_empty() {
                continue;
            }
            train_rows += train.len();
            let p = fit(train).probabilities(emb.select(Axis(0), test).view());
            tally.add(&p, test.iter().map(|&i| self.rows[i].label));
        }
        let mut zero_shot = Tally::default();
        let eligible: Vec<usize> = (0..splits.len())
            .filter(|&t| splits[t].0.len() >= ZERO_SHOT_MIN && !splits[t].1.is_empty())
            .collect();
        for &a in &eligible {
            let scorer = fit(splits[a].0);
            for &b in eligible.iter().filter(|&&b| b != a) {
                let test = splits[b].1;
                let p = scorer.probabilities(emb.select(Axis(0), test).view());
                zero_shot.add(&p, test.iter().map(|&i| self.rows[i].label));
            }
        }
        StanceScores {
            set: self.name.clone(),
            scorer: kind.to_string(),
            temperature,
            targets: by_target.len(),
            train: train_rows,
            scored: tally.gold.len(),
            macro_f1: tally.macro_f1(),
            f_avg: (tally.f1(Label::Supports) + tally.f1(Label::Challenges)) / 2.0,
            log_loss: tally.log_loss / tally.gold.len().max(1) as f64,
            ece: tally.ece(),
            zero_shot_macro_f1: (eligible.len() >= 2).then(|| zero_shot.macro_f1()),
        }
    }
}

/// Gold labels with predictions and their probabilities.
#[derive(Default)]
struct Tally {
    gold: Vec<Label>,
    predicted: Vec<Label>,
    confidence: Vec<f32>,
    log_loss: f64,
}

impl Tally {
    fn add(&mut self, p: &Array2<f32>, gold: impl Iterator<Item = Label>) {
        for (stance, (gold, row)) in claim_stances(p).into_iter().zip(gold.zip(p.rows())) {
            self.log_loss -= (row[gold.index()].max(1e-6) as f64).ln();
            self.gold.push(gold);
            self.predicted.push(stance.label);
            self.confidence.push(stance.score);
        }
    }

    fn f1(&self, label: Label) -> f64 {
        let count = |f: &dyn Fn(Label, Label) -> bool| {
            self.gold
                .iter()
                .zip(&self.predicted)
                .filter(|(&g, &p)| f(g, p))
                .count() as f64
        };
        let hits = count(&|g, p| g == label && p == label);
        let gold = count(&|g, _| g == label);
        let predicted = count(&|_, p| p == label);
        if gold + predicted == 0.0 {
            0.0
        } else {
            2.0 * hits / (gold + predicted)
        }
    }

    fn macro_f1(&self) -> f64 {
        let present: Vec<Label> = Label::ALL
            .into_iter()
            .filter(|l| self.gold.contains(l))
            .collect();
        present.iter().map(|&l| self.f1(l)).sum::<f64>() / present.len().max(1) as f64
    }

    fn ece(&self) -> f64 {
        let mut bins = [(0.0f64, 0.0f64, 0.0f64); 10];
        for ((&c, g), p) in self.confidence.iter().zip(&self.gold).zip(&self.predicted) {
            let b = &mut bins[((c * 10.0) as usize).min(9)];
            b.0 += 1.0;
            b.1 += c as f64;
            b.2 += f64::from(u8::from(g == p));
        }
        let n = self.gold.len().max(1) as f64;
        bins.iter().map(|(_, c, a)| (c - a).abs() / n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_and_calibration_on_a_known_case() {
        let mut t = Tally::default();
        let p = ndarray::array![[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.1, 0.8, 0.1]];
        t.add(
            &p,
            [Label::Supports, Label::Challenges, Label::Challenges].into_iter(),
        );
        assert!((t.f1(Label::Supports) - 2.0 / 3.0).abs() < 1e-12);
        assert!((t.f1(Label::Challenges) - 2.0 / 3.0).abs() < 1e-12);
        assert!((t.macro_f1() - 2.0 / 3.0).abs() < 1e-12);
        // bin 0.9: confidence 1.8 vs 1 correct; bin 0.8: 0.8 vs 1.
        assert!((t.ece() - (0.8 + 0.2) / 3.0).abs() < 1e-6);
    }
}
