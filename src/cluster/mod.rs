//! Grouping claims that say the same thing:
//! - [`Agglomerative`] (the default): average linkage on 1 − the same-claim
//!   probability ([`crate::same_claim`]), cut where a merged group's pairs would
//!   average under the cut probability, one connected component of the pairs at
//!   or above the cut at a time ([`components`]; kodama computes each dendrogram);
//!   then [`refine`] moves claims to the group they fit best and dissolves groups
//!   whose members do not agree;
//! - [`Dbscan`]: linfa-clustering's DBSCAN (behind linfa's `Fit`), on the aligned
//!   vectors, with a cosine-distance radius;
//! - [`Hdbscan`]: the hdbscan crate (linfa has none), clusters of varying density.
//!
//! On unit vectors Euclidean distance is `sqrt(2 · cosine distance)`, so DBSCAN and
//! HDBSCAN run on Euclidean distance with the same neighbourhoods. Singletons and
//! noise are no cluster; clusters are numbered largest first.

pub mod components;
pub mod refine;
mod sparse_linkage;

use std::collections::HashMap;

use linfa::traits::{Fit, Transformer};
use linfa::{DatasetBase, ParamGuard};
use ndarray::Array2;

use crate::observer::{Observer, Silent};
use crate::same_claim::{PairScorer, ScoredPair};

/// Parameters: merge groups while their pairs' average same-claim probability is
/// at least `cut` (in (0, 1]); groups whose pairs average under it at the end
/// become singletons.
#[derive(Debug, Clone, Copy)]
pub struct Agglomerative {
    pub cut: f32,
}

/// Cluster of each row (`None` for rows left alone), clusters numbered largest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    pub labels: Vec<Option<usize>>,
    pub n_clusters: usize,
    /// Average linkage only: sizes of the components too large for an exact
    /// distance matrix, grouped on the pairs of near neighbours alone.
    pub grouped_on_pairs: Vec<usize>,
}

/// DBSCAN: rows with at least `min_points` rows (themselves included) within cosine
/// distance `max_distance` are cores; clusters are cores and what they reach.
#[derive(Debug, Clone, Copy)]
pub struct Dbscan {
    /// `None`: the default of the encoder the engine loads (see
    /// [`Grouping::with_default_radius`]); fitting without a radius is an error.
    pub max_distance: Option<f32>,
    pub min_points: usize,
}

/// HDBSCAN: the most stable clusters of at least `min_cluster_size` rows.
#[derive(Debug, Clone, Copy)]
pub struct Hdbscan {
    pub min_cluster_size: usize,
}

/// Errors from clustering.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
    #[error("max_distance must be a cosine distance in [0, 2], got {0}")]
    BadThreshold(f32),
    #[error("the grouping cut must be a probability in (0, 1], got {0}")]
    BadCut(f32),
    #[error("DBSCAN was given no radius (max_distance)")]
    NoRadius,
    #[error("DBSCAN: {0}")]
    Dbscan(#[from] linfa_clustering::DbscanParamsError),
    #[error("HDBSCAN: {0}")]
    Hdbscan(String),
    #[error("{what} must be at least 2, got {got}")]
    TooSmall { what: &'static str, got: usize },
}

/// Which algorithm groups claims, with its parameters as given (unchecked):
/// [`check`](Algorithm::check) turns it into a [`Grouping`] before any slow work.
#[derive(Debug, Clone, Copy)]
pub enum Algorithm {
    Agglomerative(Agglomerative),
    Dbscan(Dbscan),
    Hdbscan(Hdbscan),
}

/// An [`Algorithm`] whose parameters have been checked, ready to fit (in the way of
/// linfa's `ParamGuard`: checked once, never again).
#[derive(Debug, Clone, Copy)]
pub struct Grouping(Algorithm);

impl Algorithm {
    /// Checks the parameters (before any slow work).
    pub fn check(self) -> Result<Grouping, ClusterError> {
        match &self {
            Algorithm::Agglomerative(a) => check_cut(a.cut)?,
            Algorithm::Dbscan(d) => {
                d.max_distance.map(check_radius).transpose()?;
                check_at_least_2("min_points", d.min_points)?
            }
            Algorithm::Hdbscan(h) => check_at_least_2("min_cluster_size", h.min_cluster_size)?,
        }
        Ok(Grouping(self))
    }
}

impl Grouping {
    /// The checked algorithm and parameters.
    pub fn algorithm(&self) -> &Algorithm {
        &self.0
    }

    /// This grouping with DBSCAN's radius, where none was given, set to
    /// `radius` (checked like a given one).
    pub fn with_default_radius(self, radius: f32) -> Result<Grouping, ClusterError> {
        match self.0 {
            Algorithm::Dbscan(
                d @ Dbscan {
                    max_distance: None, ..
                },
            ) => Algorithm::Dbscan(Dbscan {
                max_distance: Some(radius),
                ..d
            })
            .check(),
            _ => Ok(self),
        }
    }

    /// Clusters the claims `scorer` compares. Average linkage takes its
    /// probabilities; DBSCAN and HDBSCAN, which work on vectors, take its aligned
    /// rows (Chinese ones moved next to English).
    pub fn fit(&self, scorer: &PairScorer) -> Result<Clustering, ClusterError> {
        let pairs = self
            .cut()
            .map_or_else(Vec::new, |cut| scorer.pairs_at_least(cut));
        self.fit_with_pairs(scorer, &pairs, &Silent)
    }

    /// The probability average linkage cuts at (`None` for DBSCAN and HDBSCAN,
    /// which need no pairs).
    pub fn cut(&self) -> Option<f32> {
        match self.0 {
            Algorithm::Agglomerative(a) => Some(a.cut),
            Algorithm::Dbscan(_) | Algorithm::Hdbscan(_) => None,
        }
    }

    /// [`fit`](Self::fit) with `pairs` already found: every pair at or above a
    /// probability no higher than the [`cut`](Self::cut), as
    /// [`PairScorer::pairs_at_least`] lists them; `observer` is told the progress
    /// of average linkage over the components.
    pub fn fit_with_pairs(
        &self,
        scorer: &PairScorer,
        pairs: &[ScoredPair],
        observer: &dyn Observer,
    ) -> Result<Clustering, ClusterError> {
        let space = scorer.pairs().moved();
        match &self.0 {
            Algorithm::Agglomerative(a) => Ok(a.linkage(scorer, pairs, observer)),
            Algorithm::Dbscan(d) => d.cluster(space),
            Algorithm::Hdbscan(h) => h.cluster(space),
        }
    }
}

impl std::fmt::Display for Grouping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Algorithm::Agglomerative(a) => write!(f, "agglomerative, cut p ≥ {}", a.cut),
            Algorithm::Dbscan(d) => match d.max_distance {
                Some(radius) => write!(f, "dbscan, radius {radius}, min {}", d.min_points),
                None => write!(f, "dbscan, default radius, min {}", d.min_points),
            },
            Algorithm::Hdbscan(h) => write!(f, "hdbscan, min {}", h.min_cluster_size),
        }
    }
}

fn check_cut(cut: f32) -> Result<(), ClusterError> {
    if cut > 0.0 && cut <= 1.0 {
        Ok(())
    } else {
        Err(ClusterError::BadCut(cut))
    }
}

fn check_distance(max_distance: f32) -> Result<(), ClusterError> {
    if (0.0..=2.0).contains(&max_distance) {
        Ok(())
    } else {
        Err(ClusterError::BadThreshold(max_distance))
    }
}

/// DBSCAN's radius: a cut of 0 would be a neighbourhood of nothing.
fn check_radius(max_distance: f32) -> Result<(), ClusterError> {
    check_distance(max_distance)?;
    if max_distance > 0.0 {
        Ok(())
    } else {
        Err(ClusterError::BadThreshold(max_distance))
    }
}

fn check_at_least_2(what: &'static str, got: usize) -> Result<(), ClusterError> {
    if got >= 2 {
        Ok(())
    } else {
        Err(ClusterError::TooSmall { what, got })
    }
}

/// The root of `x` in a union-find forest (`parent[r] == r` at roots), halving
/// paths on the way.
pub(crate) fn root(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

impl Clustering {
    /// Numbers the groups of `groups` (one key or none per row): groups of two or
    /// more rows become clusters, largest first, ties by first row.
    fn from_groups(groups: impl IntoIterator<Item = Option<usize>>) -> Clustering {
        let groups: Vec<Option<usize>> = groups.into_iter().collect();
        let mut sizes: HashMap<usize, (usize, usize)> = HashMap::new();
        for (row, g) in groups.iter().enumerate() {
            if let Some(g) = g {
                sizes.entry(*g).or_insert((0, row)).0 += 1;
            }
        }
        let mut kept: Vec<(usize, (usize, usize))> =
            sizes.into_iter().filter(|&(_, (n, _))| n >= 2).collect();
        kept.sort_by_key(|&(_, (n, first))| (std::cmp::Reverse(n), first));
        let number: HashMap<usize, usize> =
            kept.iter().enumerate().map(|(k, &(g, _))| (g, k)).collect();
        Clustering {
            labels: groups
                .iter()
                .map(|g| g.and_then(|g| number.get(&g).copied()))
                .collect(),
            n_clusters: kept.len(),
            grouped_on_pairs: Vec::new(),
        }
    }
}

impl Agglomerative {
    /// Average linkage on 1 − probability, component by component, then
    /// [`refine`]. The parameters are checked by the caller.
    fn linkage(
        &self,
        scorer: &PairScorer,
        pairs: &[ScoredPair],
        observer: &dyn Observer,
    ) -> Clustering {
        let grouped = components::group(scorer, pairs, self.cut, observer);
        let probability = |a: usize, b: usize| scorer.probability(a, b);
        let refined = refine::refine(
            grouped.group_of,
            &probability,
            scorer.pairs().nearest(),
            self.cut,
        );
        Clustering {
            grouped_on_pairs: grouped.approximated,
            ..Clustering::from_groups(refined)
        }
    }
}

impl<T> Fit<Array2<f32>, T, ClusterError> for Dbscan {
    type Object = Clustering;

    fn fit(&self, dataset: &DatasetBase<Array2<f32>, T>) -> Result<Clustering, ClusterError> {
        let radius = self.max_distance.ok_or(ClusterError::NoRadius)?;
        check_radius(radius)?;
        check_at_least_2("min_points", self.min_points)?;
        self.cluster(&dataset.records)
    }
}

impl Dbscan {
    /// DBSCAN on Euclidean distance; the parameters are checked by the caller.
    fn cluster(&self, records: &Array2<f32>) -> Result<Clustering, ClusterError> {
        let radius = self.max_distance.ok_or(ClusterError::NoRadius)?;
        let labels = linfa_clustering::Dbscan::params(self.min_points)
            .tolerance((2.0 * radius).sqrt())
            .check()?
            .transform(records);
        Ok(Clustering::from_groups(labels))
    }
}

impl<T> Fit<Array2<f32>, T, ClusterError> for Hdbscan {
    type Object = Clustering;

    fn fit(&self, dataset: &DatasetBase<Array2<f32>, T>) -> Result<Clustering, ClusterError> {
        check_at_least_2("min_cluster_size", self.min_cluster_size)?;
        self.cluster(&dataset.records)
    }
}

impl Hdbscan {
    /// HDBSCAN on Euclidean distance; the parameters are checked by the caller.
    fn cluster(&self, records: &Array2<f32>) -> Result<Clustering, ClusterError> {
        let n = records.nrows();
        if n <= self.min_cluster_size {
            return Ok(Clustering::from_groups(vec![None; n]));
        }
        let rows: Vec<Vec<f32>> = records.rows().into_iter().map(|r| r.to_vec()).collect();
        let params = hdbscan::HdbscanHyperParams::builder()
            .min_cluster_size(self.min_cluster_size)
            .nn_algorithm(hdbscan::NnAlgorithm::BruteForce)
            .build();
        let labels = hdbscan::Hdbscan::new(&rows, params)
            .cluster()
            .map_err(|e| ClusterError::Hdbscan(e.to_string()))?;
        Ok(Clustering::from_groups(
            labels.into_iter().map(|l| usize::try_from(l).ok()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::same_claim::{numbered_claims, SameClaimModel};

    fn unit_rows<const D: usize>(rows: &[[f32; D]]) -> Array2<f32> {
        let mut emb: Array2<f32> = ndarray::arr2(rows);
        for mut r in emb.rows_mut() {
            let n: f32 = r.dot(&r).sqrt();
            r /= n;
        }
        emb
    }

    /// Average linkage with probabilities from the cosine alone (½ at 0.95).
    fn agglomerative(emb: &Array2<f32>, cut: f32) -> Clustering {
        let model = SameClaimModel::cosine_only(100.0, 0.95);
        let scorer = PairScorer::new(numbered_claims(emb.clone()), &model);
        Algorithm::Agglomerative(Agglomerative { cut })
            .check()
            .unwrap()
            .fit(&scorer)
            .unwrap()
    }

    #[test]
    fn close_rows_group_and_far_rows_stay_alone() {
        let s = 0.6f32.sqrt();
        let emb = unit_rows(&[
            [1.0, 0.0, 0.0],
            [0.99, 0.141, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, s, 0.8f32.sqrt() * 0.5f32.sqrt()],
        ]);
        let c = agglomerative(&emb, 0.5);
        assert_eq!(c.labels[..2], [Some(0), Some(0)]);
        assert_eq!(c.labels[2..], [None, None]);
        assert_eq!(c.n_clusters, 1);
    }

    #[test]
    fn every_algorithm_finds_two_tight_groups() {
        // Two tight groups of three unit vectors (cosine distance < 0.01 within, ~1
        // between) and one outlier.
        let emb = unit_rows(&[
            [1.0, 0.05, 0.0, 0.0],
            [1.0, 0.0, 0.05, 0.0],
            [1.0, 0.0, 0.0, 0.05],
            [0.0, 1.0, 0.05, 0.0],
            [0.05, 1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.05],
            [0.0, 0.0, 0.0, 1.0],
        ]);
        let want = [Some(0), Some(0), Some(0), Some(1), Some(1), Some(1), None];
        let a = agglomerative(&emb, 0.5);
        let data = DatasetBase::from(emb);
        let d = Dbscan {
            max_distance: Some(0.05),
            min_points: 2,
        }
        .fit(&data)
        .unwrap();
        assert_eq!((a.labels.as_slice(), a.n_clusters), (&want[..], 2));
        assert_eq!((d.labels.as_slice(), d.n_clusters), (&want[..], 2));
        // Too tight a radius: all noise.
        let none = Dbscan {
            max_distance: Some(0.0001),
            min_points: 2,
        }
        .fit(&data)
        .unwrap();
        assert_eq!(none.n_clusters, 0);
        let h = Hdbscan {
            min_cluster_size: 3,
        }
        .fit(&data)
        .unwrap();
        assert_eq!(h.n_clusters, 2, "{:?}", h.labels);
        assert_eq!(h.labels[0], h.labels[2]);
        assert_ne!(h.labels[0], h.labels[3]);
    }

    #[test]
    fn a_cut_outside_the_probabilities_is_refused() {
        for cut in [0.0, -0.5, 1.5, f32::NAN] {
            let err = Algorithm::Agglomerative(Agglomerative { cut })
                .check()
                .unwrap_err();
            assert!(err.to_string().contains("probability in (0, 1]"), "{err}");
        }
        assert!(Algorithm::Agglomerative(Agglomerative { cut: 1.0 })
            .check()
            .is_ok());
    }
}
