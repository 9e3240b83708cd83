//! Whether two claims state the same fact or judgement, as a calibrated
//! probability: a logistic regression ([`SameClaimModel`]) over features of the
//! pair in its corpus ([`ClaimPairs`]), fitted on the evaluation dev splits
//! ([`fit`]). Duplicates are the pairs at or above a probability, and groups are
//! cut at one: a number with one meaning in every language.

pub mod fit;
mod model;
mod pairs;
pub mod reader;
mod signals;

use ndarray::Axis;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;

pub use model::{sigmoid, Calibration, SameClaimError, SameClaimModel, FORMAT, PROBE_TEXT};
#[cfg(test)]
pub(crate) use pairs::numbered_claims;
pub use pairs::{ClaimPairs, Features, NeighbourSearch, FEATURES};
pub use reader::{PairReader, ReaderError};

use crate::error::Result;
use crate::neighbours::for_each_row;

/// Below this probability a pair's text features are not read when every pair is
/// scored (they could not lift it above): its probability is then off by less.
const NEGLIGIBLE: f32 = 1e-3;

/// Two claims (`a < b`), the probability they state the same claim, and their
/// cosine (Chinese rows moved by the language offset).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoredPair {
    pub a: usize,
    pub b: usize,
    pub probability: f32,
    pub cosine: f32,
}

/// The pairs a pair reader reads: those the model gives at least this probability.
pub const READ_FLOOR: f32 = 0.05;

/// The most pairs a pair reader reads in one corpus (about 25 minutes on two
/// cores at q8); past it, those whose probability is nearest the midpoint.
pub const READ_MOST: usize = 100_000;

/// The reader's share of a re-read pair's log-odds, the model's being the rest:
/// chosen on the dev pair sets' quarter kept apart (README, *The pair reader*).
pub const READ_WEIGHT: f32 = 0.7;

/// Reads pairs of texts together: each pair's probability of stating the same
/// claim ([`PairReader`] through the engine that loaded it).
pub type ReadPairs<'a> = dyn Fn(&[(&str, &str)]) -> Result<Vec<f32>> + Sync + 'a;

/// A reader's probability weighed with the model's: their log-odds averaged,
/// [`READ_WEIGHT`] to the reader's.
fn weighed(read: f32, model: f32) -> f32 {
    let logit = |p: f32| model::logit_of(p.clamp(1e-6, 1.0 - 1e-6));
    sigmoid(READ_WEIGHT * logit(read) + (1.0 - READ_WEIGHT) * logit(model))
}

/// A corpus's claim pairs and the model that scores them.
pub struct PairScorer<'m> {
    pairs: ClaimPairs,
    model: &'m SameClaimModel,
    /// The pairs a reader re-read (`a < b`) and the probability it gave.
    reread: FxHashMap<(usize, usize), f32>,
}

impl<'m> PairScorer<'m> {
    /// Scores `pairs` with `model`.
    pub fn new(pairs: ClaimPairs, model: &'m SameClaimModel) -> Self {
        PairScorer {
            pairs,
            model,
            reread: FxHashMap::default(),
        }
    }

    /// The scorer with the pairs of `texts` (this corpus's claims, in row order)
    /// that the model gives at least [`READ_FLOOR`] read again by `read`, whose
    /// probability is then weighed with the model's ([`READ_WEIGHT`]; copies stay
    /// at 1). At most [`READ_MOST`] pairs are read, those nearest probability 0.5
    /// first.
    pub fn reread(self, texts: &[&str], read: &ReadPairs) -> Result<Self> {
        let mut doubtful: Vec<(usize, usize, f32)> = self
            .pairs_at_least(READ_FLOOR)
            .into_iter()
            .filter(|p| !self.pairs.copies(p.a, p.b))
            .map(|p| (p.a, p.b, p.probability))
            .collect();
        if doubtful.len() > READ_MOST {
            doubtful.sort_by(|x, y| (x.2 - 0.5).abs().total_cmp(&(y.2 - 0.5).abs()));
            doubtful.truncate(READ_MOST);
        }
        self.read_again(&doubtful, texts, read)
    }

    /// As [`reread`](Self::reread), but only among `wanted` (rows of `texts`):
    /// what the reader would give those pairs in a whole-corpus run, without
    /// reading the rest.
    pub fn reread_among(
        self,
        wanted: &[(usize, usize)],
        texts: &[&str],
        read: &ReadPairs,
    ) -> Result<Self> {
        let mut pairs: Vec<(usize, usize)> = wanted
            .iter()
            .map(|&(a, b)| (a.min(b), a.max(b)))
            .filter(|&(a, b)| a != b && !self.pairs.copies(a, b))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let doubtful: Vec<(usize, usize, f32)> = pairs
            .into_iter()
            .map(|(a, b)| (a, b, self.probability(a, b)))
            .filter(|&(_, _, p)| p >= READ_FLOOR)
            .collect();
        self.read_again(&doubtful, texts, read)
    }

    /// Reads `pairs` (`a < b`, rows of `texts`, the model's probability) with
    /// `read`, its probabilities weighed with the model's standing for them from
    /// then on.
    fn read_again(
        mut self,
        pairs: &[(usize, usize, f32)],
        texts: &[&str],
        read: &ReadPairs,
    ) -> Result<Self> {
        let sides: Vec<(&str, &str)> = pairs
            .iter()
            .map(|&(a, b, _)| (texts[a], texts[b]))
            .collect();
        let read = read(&sides)?;
        self.reread = pairs
            .iter()
            .zip(read)
            .map(|(&(a, b, model), read)| ((a, b), weighed(read, model)))
            .collect();
        Ok(self)
    }

    /// How many pairs a reader re-read.
    pub fn pairs_reread(&self) -> usize {
        self.reread.len()
    }

    /// The claims compared.
    pub fn pairs(&self) -> &ClaimPairs {
        &self.pairs
    }

    /// The probability that claims `a` and `b` state the same claim: 1 for
    /// copies (wire copies, repeated boilerplate), else the model's.
    pub fn probability(&self, a: usize, b: usize) -> f32 {
        // No pair is surely below probability 0, so every feature is read.
        self.probability_from(a, b, self.pairs.cosine(a, b), 0.0)
            .expect("no floor to fall under")
    }

    /// The probability of `a` and `b` from their moved `cosine`, or `None` when it
    /// is surely below `floor` (the text features are read only when they could
    /// lift it to `floor`).
    fn probability_from(&self, a: usize, b: usize, cosine: f32, floor: f32) -> Option<f32> {
        if self.pairs.copies(a, b) {
            return Some(1.0);
        }
        if !self.reread.is_empty() {
            if let Some(&p) = self.reread.get(&(a.min(b), a.max(b))) {
                return Some(p);
            }
        }
        let mut f = self.pairs.embedding_features(a, b, cosine);
        let logit = self.model.logit(&f);
        if logit + self.model.largest_text_gain() < model::logit_of(floor) {
            return None;
        }
        self.pairs.add_text_features(a, b, &mut f);
        Some(self.model.probability(&f))
    }

    /// `a` and `b`, whose moved cosine is `cosine`, scored if their probability
    /// is at least `floor`.
    pub fn scored_from(&self, a: usize, b: usize, cosine: f32, floor: f32) -> Option<ScoredPair> {
        self.probability_from(a, b, cosine, floor)
            .filter(|&p| p >= floor)
            .map(|probability| ScoredPair {
                a,
                b,
                probability,
                cosine,
            })
    }

    /// Every pair with probability ≥ `threshold` (in (0, 1]), most probable first:
    /// exact up to `EXACT_LIMIT` (10k) claims, among
    /// each claim's approximate nearest neighbours above ([`ClaimPairs::candidates`]).
    pub fn pairs_at_least(&self, threshold: f32) -> Vec<ScoredPair> {
        let score = |a: usize, b: usize, cosine: f32| self.scored_from(a, b, cosine, threshold);
        let mut found: Vec<ScoredPair> = match self.pairs.candidates() {
            None => {
                let mut found = Vec::new();
                for_each_row(self.pairs.moved().view(), |a, row| {
                    let above = row.iter().enumerate().skip(a + 1);
                    found.extend(above.filter_map(|(b, &cosine)| score(a, b, cosine)));
                });
                found
            }
            Some(candidates) => candidates
                .par_iter()
                .filter_map(|p| {
                    let (a, b) = p.rows();
                    score(a, b, p.similarity)
                })
                .collect(),
        };
        found.sort_by(|x, y| y.probability.total_cmp(&x.probability));
        found
    }

    /// The condensed matrix of 1 − probability among `rows` (upper triangle,
    /// row-major, in the order of `rows`), as hierarchical clustering takes it.
    pub fn condensed_distances(&self, rows: &[usize]) -> Vec<f32> {
        let m = rows.len();
        let moved = self.pairs.moved().select(Axis(0), rows);
        let mut out = Vec::with_capacity(m * m.saturating_sub(1) / 2);
        for_each_row(moved.view(), |i, row| {
            let a = rows[i];
            let tail: Vec<f32> = row[i + 1..]
                .par_iter()
                .zip(&rows[i + 1..])
                .map(|(&cosine, &b)| {
                    let p = self.probability_from(a, b, cosine, NEGLIGIBLE);
                    1.0 - p.unwrap_or_else(|| {
                        self.model
                            .probability(&self.pairs.embedding_features(a, b, cosine))
                    })
                })
                .collect();
            out.extend(tail);
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Lang;

    #[test]
    fn pairs_above_a_probability_are_those_the_matrix_holds() {
        let model = SameClaimModel::built_in();
        let emb = crate::neighbours::near_duplicates(20, 3, 384, 0.1);
        let words = [
            "ore", "port", "deal", "mine", "tax", "ship", "loan", "dam", "oil", "gas",
        ];
        let texts: Vec<String> = (0..60)
            .map(|i| format!("{} {}", words[i % 10], words[(i / 10) % 10]))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let scorer = PairScorer::new(
            ClaimPairs::new(emb, &refs, &[Lang::En; 60], None).unwrap(),
            &model,
        );
        let all: Vec<usize> = (0..60).collect();
        let d = scorer.condensed_distances(&all);
        assert_eq!(d.len(), 60 * 59 / 2);
        assert!(d.iter().all(|x| (0.0..=1.0).contains(x)));
        let pairs = scorer.pairs_at_least(0.5);
        let in_matrix = d.iter().filter(|&&x| 1.0 - x >= 0.5).count();
        assert_eq!(pairs.len(), in_matrix);
        assert!(pairs
            .windows(2)
            .all(|w| w[0].probability >= w[1].probability));
        assert!(!pairs.is_empty(), "near copies are the same claim");
    }

    #[test]
    fn a_reader_rereads_the_pairs_in_doubt_and_leaves_copies_and_the_rest() {
        let model = SameClaimModel::built_in();
        let emb = crate::neighbours::near_duplicates(4, 3, 64, 0.1);
        let texts: Vec<String> = (0..emb.nrows()).map(|i| format!("claim {i}")).collect();
        let mut texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        texts[1] = texts[0]; // a copy
        let langs = vec![Lang::En; texts.len()];
        let scorer = || {
            PairScorer::new(
                ClaimPairs::new(emb.clone(), &texts, &langs, None).unwrap(),
                &model,
            )
        };
        let before = scorer();
        let asked = std::sync::Mutex::new(Vec::new());
        let read = |pairs: &[(&str, &str)]| {
            asked
                .lock()
                .unwrap()
                .extend(pairs.iter().map(|p| p.0.len()));
            Ok(vec![0.25; pairs.len()])
        };
        let after = scorer().reread(&texts, &read).unwrap();
        let doubtful = before
            .pairs_at_least(READ_FLOOR)
            .into_iter()
            .filter(|p| !before.pairs().copies(p.a, p.b))
            .count();
        assert!(doubtful > 0);
        assert_eq!(after.pairs_reread(), doubtful);
        assert_eq!(asked.lock().unwrap().len(), doubtful);
        assert_eq!(after.probability(0, 1), 1.0, "a copy stays certain");
        for a in 0..texts.len() {
            for b in a + 1..texts.len() {
                let (was, now) = (before.probability(a, b), after.probability(a, b));
                if before.pairs().copies(a, b) {
                    assert_eq!(now, 1.0);
                } else if was >= READ_FLOOR {
                    let logit = |p: f32| model::logit_of(p.clamp(1e-6, 1.0 - 1e-6));
                    let weighed = READ_WEIGHT * logit(0.25) + (1.0 - READ_WEIGHT) * logit(was);
                    assert!(
                        (now - sigmoid(weighed)).abs() < 1e-6,
                        "pair {a} {b} was {was}"
                    );
                    assert!(now < was.max(0.25) && now > was.min(0.25), "{now} between");
                } else {
                    assert_eq!(now, was, "pair {a} {b} under the floor");
                }
            }
        }
    }

    #[test]
    fn copies_are_the_same_claim_whatever_their_vectors() {
        let model = SameClaimModel::built_in();
        // Orthogonal rows: the model alone would call no pair the same claim.
        let emb = ndarray::Array2::eye(4);
        let texts = [
            "Scroll down for video",
            "scroll  down for Video ",
            "Scroll down for videos",
            "China mines most rare earths.",
        ];
        let scorer = PairScorer::new(
            ClaimPairs::new(emb, &texts, &[Lang::En; 4], None).unwrap(),
            &model,
        );
        assert_eq!(scorer.probability(0, 1), 1.0);
        assert!(scorer.probability(0, 2) < 0.5);
        let pairs = scorer.pairs_at_least(0.5);
        assert_eq!(pairs.len(), 1);
        assert_eq!((pairs[0].a, pairs[0].b, pairs[0].probability), (0, 1, 1.0));
        assert_eq!(scorer.condensed_distances(&[0, 1, 2])[0], 0.0);
    }
}
