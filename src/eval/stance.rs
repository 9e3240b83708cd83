//! Stance quality on labelled sets (`{"target","text","label"}` JSONL, labels
//! `favor|against|none`): per target, a frame from the first half of its rows (at most
//! `max_examples`), scored on the rest; and the zero-shot case, a frame from one
//! target scored on another target's rows. With [`RowClaims`], each row's text
//! is split into claims as the main job splits an article, and the claim nearest
//! the target is scored alone or read in its [`Context`].

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use ndarray::{Array2, Axis};
use serde::Serialize;

use crate::corpus::{Article, ArticleText, Corpus, Lang};
use crate::error::{Error, Result};
use crate::stance::{claim_stances, Context, Label, Scorer, ScorerKind};

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
    /// What each row is read as: its whole text, or a claim alone or in context.
    pub view: String,
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
pub const TABLE_HEADER: &str = "| set | view | scorer | T | targets | train | scored | macro-F1 | F_avg | log-loss | ECE | zero-shot macro-F1 |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

impl StanceScores {
    /// One Markdown table row.
    pub fn table_row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            self.set,
            self.view,
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

    /// Each row's target.
    pub fn targets(&self) -> Vec<&str> {
        self.rows.iter().map(|r| r.target.as_str()).collect()
    }

    /// Scores the set with embeddings of [`texts`](Self::texts) (one row each).
    pub fn score(
        &self,
        emb: &Array2<f32>,
        kind: ScorerKind,
        temperature: f32,
        max_examples: usize,
    ) -> StanceScores {
        let view = "whole text".to_string();
        self.score_views(emb, emb, kind, temperature, max_examples, view)
    }

    /// Scores the set with frames fitted on the rows of `fit` and rows read as
    /// `test` (one row of each per set row), `view` naming what `test` holds.
    pub fn score_views(
        &self,
        fit: &Array2<f32>,
        test: &Array2<f32>,
        kind: ScorerKind,
        temperature: f32,
        max_examples: usize,
        view: String,
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
                fit.select(Axis(0), train).view(),
                &labels,
            )
        };
        let self_test = |rows: &[usize]| test.select(Axis(0), rows);
        let mut tally = Tally::default();
        let mut train_rows = 0;
        for &(train, test) in &splits {
            if train.is_empty() || test.is_empty() {
                continue;
            }
            train_rows += train.len();
            let p = fit(train).probabilities(self_test(test).view());
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
                let p = scorer.probabilities(self_test(test).view());
                zero_shot.add(&p, test.iter().map(|&i| self.rows[i].label));
            }
        }
        StanceScores {
            set: self.name.clone(),
            scorer: kind.to_string(),
            temperature,
            view,
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

/// A set's texts split into claims as the main job splits an article body.
pub struct RowClaims {
    /// Every distinct text's claims, text after text.
    pub claims: Vec<String>,
    /// The rows of `claims` that each distinct text holds.
    pub articles: Vec<Range<usize>>,
    /// Each set row's distinct text (an index into `articles`).
    pub text_of_row: Vec<usize>,
}

impl RowClaims {
    /// Splits `set`'s texts (each distinct text once; a text without a claim
    /// counts as one claim).
    pub fn split(set: &StanceSet) -> RowClaims {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut corpus = Corpus::default();
        let mut articles = Vec::new();
        let mut claims = Vec::new();
        let text_of_row = set
            .rows
            .iter()
            .map(|r| {
                *index.entry(r.text.as_str()).or_insert_with(|| {
                    let before = corpus.claims.len();
                    corpus.add(body_article(articles.len(), &r.text));
                    let mut found: Vec<String> = corpus.claims[before..]
                        .iter()
                        .map(|c| c.text.clone())
                        .collect();
                    if found.is_empty() {
                        found.push(r.text.clone());
                    }
                    articles.push(claims.len()..claims.len() + found.len());
                    claims.extend(found);
                    articles.len() - 1
                })
            })
            .collect();
        RowClaims {
            claims,
            articles,
            text_of_row,
        }
    }

    /// Per set row, the claim (a row of `claims`) nearest its target: `claim_emb`
    /// embeds `claims`, `target_emb` each set row's target.
    pub fn nearest_to_targets(
        &self,
        claim_emb: &Array2<f32>,
        target_emb: &Array2<f32>,
    ) -> Vec<usize> {
        self.text_of_row
            .iter()
            .zip(target_emb.rows())
            .map(|(&t, target)| {
                self.articles[t]
                    .clone()
                    .max_by(|&a, &b| {
                        let (ca, cb) =
                            (claim_emb.row(a).dot(&target), claim_emb.row(b).dot(&target));
                        ca.total_cmp(&cb)
                    })
                    .expect("every text has a claim")
            })
            .collect()
    }

    /// The rows `chosen` of the claims read in `context`.
    pub fn read(&self, claim_emb: &Array2<f32>, chosen: &[usize], context: Context) -> Array2<f32> {
        context
            .apply(claim_emb.view(), &self.articles)
            .select(Axis(0), chosen)
    }
}

/// A stance row's text as an article body without a title.
fn body_article(k: usize, text: &str) -> ArticleText {
    ArticleText {
        article: Article {
            id: format!("row{k}"),
            path: format!("row{k}"),
            title: String::new(),
            date: None,
            source: None,
            lang: Lang::detect(text),
        },
        text: text.to_string(),
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
    fn texts_are_split_once_and_read_at_the_claim_nearest_the_target() {
        let row = |target: &str, text: &str| Row {
            target: target.into(),
            text: text.into(),
            label: Label::Neutral,
        };
        let body = "Pakistan signed a rare-earth agreement with an American firm in September. \
                    The first shipment of samples left the port of Pasni in October.";
        let set = StanceSet {
            name: "t".into(),
            rows: vec![
                row("deal", body),
                row("ship", body),
                row("other", "美国公司与巴基斯坦签署了稀土协议。"),
            ],
        };
        let split = RowClaims::split(&set);
        assert_eq!(split.text_of_row, vec![0, 0, 1]);
        assert_eq!(split.articles, vec![0..2, 2..3], "{:?}", split.claims);
        let claim_emb = ndarray::array![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let target_emb = ndarray::array![[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.6, 0.0, 0.8]];
        let chosen = split.nearest_to_targets(&claim_emb, &target_emb);
        assert_eq!(chosen, vec![0, 1, 2]);
        let alone = split.read(&claim_emb, &chosen, Context::ALONE);
        assert_eq!(alone.row(1), claim_emb.row(1));
    }

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
