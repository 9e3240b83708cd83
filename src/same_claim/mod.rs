//! Whether two claims state the same fact or judgement, as a calibrated
//! probability: a logistic regression ([`SameClaimModel`]) over features of the
//! pair in its corpus ([`ClaimPairs`]), fitted on the evaluation dev splits
//! ([`fit`]). Duplicates are the pairs at or above a probability, and groups are
//! cut at one: a number with one meaning in every language.

pub mod fit;
mod model;
mod pairs;
mod signals;

use ndarray::Axis;
use rayon::prelude::*;
use serde::Serialize;

pub use model::{Calibration, SameClaimError, SameClaimModel, FORMAT, PROBE_TEXT};
#[cfg(test)]
pub(crate) use pairs::numbered_claims;
pub use pairs::{ClaimPairs, Features, NeighbourSearch, FEATURES};

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

/// A corpus's claim pairs and the model that scores them.
pub struct PairScorer<'m> {
    pairs: ClaimPairs,
    model: &'m SameClaimModel,
}

impl<'m> PairScorer<'m> {
    /// Scores `pairs` with `model`.
    pub fn new(pairs: ClaimPairs, model: &'m SameClaimModel) -> Self {
        PairScorer { pairs, model }
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
