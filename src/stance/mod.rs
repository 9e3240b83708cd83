//! Stance toward a target position: per-claim probabilities over
//! `supports` / `challenges` / `neutral` from a [`Frame`] of labelled examples, and
//! their aggregation over a cluster.

pub mod context;
pub mod frame;
pub mod scorer;

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayView2};
use serde::Serialize;

pub use context::{Context, Reach};
pub use frame::{Frame, FrameError};
pub use scorer::{Scorer, ScorerKind};

/// The default frame, *China's rare-earth position*, built into the binary.
pub const DEFAULT_FRAME: &str = include_str!("../../models/stance/china-rare-earth.toml");

/// A stance label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Supports,
    Challenges,
    Neutral,
}

impl Label {
    /// Every label, in the order of probability columns.
    pub const ALL: [Label; 3] = [Label::Supports, Label::Challenges, Label::Neutral];

    /// The label's probability column.
    pub fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Label::Supports => "supports",
            Label::Challenges => "challenges",
            Label::Neutral => "neutral",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Label {
    type Err = String;

    /// Reads a label; the stance sets' `favor` / `against` / `none` map onto ours.
    fn from_str(s: &str) -> Result<Label, String> {
        match s {
            "supports" | "favor" => Ok(Label::Supports),
            "challenges" | "against" => Ok(Label::Challenges),
            "neutral" | "none" => Ok(Label::Neutral),
            other => Err(format!("unknown stance label `{other}`")),
        }
    }
}

/// Probabilities of the three labels (they sum to 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Distribution {
    pub supports: f32,
    pub challenges: f32,
    pub neutral: f32,
}

impl Distribution {
    fn from_row(p: [f32; 3]) -> Distribution {
        Distribution {
            supports: p[0],
            challenges: p[1],
            neutral: p[2],
        }
    }

    /// The probabilities in [`Label::ALL`] order.
    pub fn to_array(self) -> [f32; 3] {
        [self.supports, self.challenges, self.neutral]
    }

    /// The most probable label and its probability.
    pub fn best(self) -> (Label, f32) {
        let p = self.to_array();
        let i = (0..3).fold(0, |b, i| if p[i] > p[b] { i } else { b });
        (Label::ALL[i], p[i])
    }
}

/// One claim's stance: the most probable label, its probability, and all three.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClaimStance {
    pub label: Label,
    pub score: f32,
    pub probabilities: Distribution,
}

/// A cluster's stance, from its members weighted by similarity to the centroid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClusterStance {
    pub label: Label,
    /// The weighted probability of `label`.
    pub confidence: f32,
    pub distribution: Distribution,
    /// At least [`CONTESTED_SHARE`] of the member weight votes `supports` and as much
    /// votes `challenges`.
    pub contested: bool,
}

/// The least weight share each side needs for a cluster to be contested.
pub const CONTESTED_SHARE: f32 = 0.25;

/// A frame with its embedded examples, ready to score claims.
pub struct StanceModel {
    pub frame: Frame,
    scorer: Scorer,
}

impl StanceModel {
    /// Fits the scorer on `examples`, the passage embeddings of the frame's
    /// [`example_texts`](Frame::example_texts), one row each.
    pub fn fit(frame: Frame, examples: ArrayView2<f32>, kind: ScorerKind) -> Self {
        let labels: Vec<Label> = frame.examples.iter().map(|(l, _)| *l).collect();
        let scorer = Scorer::fit(kind, examples, &labels);
        StanceModel { frame, scorer }
    }

    /// Which scorer labels claims.
    pub fn kind(&self) -> ScorerKind {
        self.scorer.kind()
    }

    /// The stance of each row of `claims` (L2-normalised passage embeddings).
    pub fn score(&self, claims: ArrayView2<f32>) -> Vec<ClaimStance> {
        claim_stances(&self.scorer.probabilities(claims))
    }
}

/// Turns rows of probabilities into claim stances.
pub fn claim_stances(p: &Array2<f32>) -> Vec<ClaimStance> {
    p.rows()
        .into_iter()
        .map(|r| {
            let probabilities = Distribution::from_row([r[0], r[1], r[2]]);
            let (label, score) = probabilities.best();
            ClaimStance {
                label,
                score,
                probabilities,
            }
        })
        .collect()
}

/// Aggregates member stances, each weighted by `weights` (negative weights count 0;
/// all-zero weights count every member equally).
pub fn aggregate(members: &[ClaimStance], weights: &[f32]) -> ClusterStance {
    let mut w: Vec<f32> = weights.iter().map(|w| w.max(0.0)).collect();
    if w.iter().sum::<f32>() <= 0.0 {
        w = vec![1.0; members.len()];
    }
    let total: f32 = w.iter().sum();
    let mut dist = [0.0f32; 3];
    let mut votes = [0.0f32; 3];
    for (m, w) in members.iter().zip(&w) {
        for (d, p) in dist.iter_mut().zip(m.probabilities.to_array()) {
            *d += w * p / total;
        }
        votes[m.label.index()] += w / total;
    }
    let distribution = Distribution::from_row(dist);
    let (label, confidence) = distribution.best();
    ClusterStance {
        label,
        confidence,
        distribution,
        contested: votes[0] >= CONTESTED_SHARE && votes[1] >= CONTESTED_SHARE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(p: [f32; 3]) -> ClaimStance {
        claim_stances(&Array2::from_shape_vec((1, 3), p.to_vec()).unwrap())[0]
    }

    #[test]
    fn aggregation_weights_members() {
        let a = claim([0.8, 0.1, 0.1]);
        let b = claim([0.1, 0.7, 0.2]);
        let one_sided = aggregate(&[a, a, b], &[1.0, 1.0, 0.2]);
        assert_eq!(one_sided.label, Label::Supports);
        assert!(!one_sided.contested);
        let sum: f32 = one_sided.distribution.to_array().iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!((one_sided.confidence - (0.8 * 2.0 + 0.1 * 0.2) / 2.2).abs() < 1e-6);
        let split = aggregate(&[a, b, b], &[1.0, 1.0, 1.0]);
        assert_eq!(split.label, Label::Challenges);
        assert!(split.contested);
        let unweighted = aggregate(&[a, b], &[0.0, -1.0]);
        assert!((unweighted.distribution.supports - 0.45).abs() < 1e-6);
    }

    #[test]
    fn labels_read_the_eval_names() {
        assert_eq!("favor".parse(), Ok(Label::Supports));
        assert_eq!("none".parse(), Ok(Label::Neutral));
        assert!("maybe".parse::<Label>().is_err());
    }

    #[test]
    fn the_default_frame_is_valid() {
        let frame = Frame::parse(DEFAULT_FRAME, "default").unwrap();
        assert!(frame.counts().iter().all(|&n| n >= 20));
    }
}
