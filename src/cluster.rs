//! Grouping claims that say the same thing, behind linfa's `Fit` trait:
//! - [`Agglomerative`] (the default): average linkage on cosine distance, cut at a
//!   distance threshold (kodama computes the dendrogram);
//! - [`Dbscan`]: linfa-clustering's DBSCAN, with the cut as the neighbourhood radius;
//! - [`Hdbscan`]: the hdbscan crate (linfa has none), clusters of varying density.
//!
//! On unit vectors Euclidean distance is `sqrt(2 · cosine distance)`, so DBSCAN and
//! HDBSCAN run on Euclidean distance with the same neighbourhoods. Singletons and
//! noise are no cluster; clusters are numbered largest first.

use std::collections::HashMap;

use linfa::traits::{Fit, Transformer};
use linfa::{DatasetBase, ParamGuard};
use ndarray::Array2;

use crate::align::CrossLingual;
use crate::neighbours::condensed_distances;

/// The most memory average linkage's condensed distance matrix may take.
pub const MAX_LINKAGE_GIB: f64 = 4.0;

/// Parameters: merge groups while their average cosine distance is ≤ `max_distance`.
#[derive(Debug, Clone, Copy)]
pub struct Agglomerative {
    pub max_distance: f32,
}

/// Cluster of each row (`None` for rows left alone), clusters numbered largest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    pub labels: Vec<Option<usize>>,
    pub n_clusters: usize,
}

/// DBSCAN: rows with at least `min_points` rows (themselves included) within cosine
/// distance `max_distance` are cores; clusters are cores and what they reach.
#[derive(Debug, Clone, Copy)]
pub struct Dbscan {
    pub max_distance: f32,
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
    #[error("max_distance must be in [0, 2], got {0}")]
    BadThreshold(f32),
    #[error("DBSCAN: {0}")]
    Dbscan(#[from] linfa_clustering::DbscanParamsError),
    #[error("HDBSCAN: {0}")]
    Hdbscan(String),
    #[error("{what} must be at least 2, got {got}")]
    TooSmall { what: &'static str, got: usize },
    #[error(
        "average linkage over {rows} claims needs {gib:.1} GiB for its distance matrix \
         (the limit is {MAX_LINKAGE_GIB} GiB); group a corpus this large with DBSCAN"
    )]
    TooLarge { rows: usize, gib: f64 },
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
            Algorithm::Agglomerative(a) => check_distance(a.max_distance)?,
            Algorithm::Dbscan(d) => {
                check_radius(d.max_distance)?;
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

    /// Checks that `rows` rows fit the algorithm (before they are embedded).
    pub fn check_rows(&self, rows: usize) -> Result<(), ClusterError> {
        match self.0 {
            Algorithm::Agglomerative(_) => check_linkage_memory(rows),
            Algorithm::Dbscan(_) | Algorithm::Hdbscan(_) => Ok(()),
        }
    }

    /// Clusters the rows (unit vectors). Average linkage takes distances as
    /// `cross` says; DBSCAN and HDBSCAN, which work on the vectors themselves,
    /// take the moved rows when languages mix (no margin, no rescaling).
    pub fn fit(
        &self,
        emb: &Array2<f32>,
        cross: Option<&CrossLingual>,
    ) -> Result<Clustering, ClusterError> {
        let space = CrossLingual::space(cross, emb);
        match &self.0 {
            Algorithm::Agglomerative(a) => a.linkage(emb, cross),
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
            Algorithm::Agglomerative(a) => write!(f, "agglomerative, cut {}", a.max_distance),
            Algorithm::Dbscan(d) => {
                write!(f, "dbscan, radius {}, min {}", d.max_distance, d.min_points)
            }
            Algorithm::Hdbscan(h) => write!(f, "hdbscan, min {}", h.min_cluster_size),
        }
    }
}

/// Refuses average linkage whose distance matrix would pass [`MAX_LINKAGE_GIB`].
fn check_linkage_memory(rows: usize) -> Result<(), ClusterError> {
    let gib = rows as f64 * (rows as f64 - 1.0) / 2.0 * 4.0 / f64::from(1u32 << 30);
    if gib > MAX_LINKAGE_GIB {
        Err(ClusterError::TooLarge { rows, gib })
    } else {
        Ok(())
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
        }
    }
}

impl<T> Fit<Array2<f32>, T, ClusterError> for Agglomerative {
    type Object = Clustering;

    fn fit(&self, dataset: &DatasetBase<Array2<f32>, T>) -> Result<Clustering, ClusterError> {
        check_distance(self.max_distance)?;
        self.linkage(&dataset.records, None)
    }
}

impl Agglomerative {
    /// Average linkage on cosine distance, pairs across languages scored as
    /// `cross` says. The parameters are checked by the caller.
    fn linkage(
        &self,
        records: &Array2<f32>,
        cross: Option<&CrossLingual>,
    ) -> Result<Clustering, ClusterError> {
        let n = records.nrows();
        check_linkage_memory(n)?;
        if n < 2 {
            return Ok(Clustering {
                labels: vec![None; n],
                n_clusters: 0,
            });
        }
        let mut distances = condensed_distances(records, cross);
        let dendrogram = kodama::linkage(&mut distances, n, kodama::Method::Average);
        // Union the merges under the threshold; step i creates cluster n + i.
        let mut parent: Vec<usize> = (0..n + dendrogram.len()).collect();
        for (i, step) in dendrogram.steps().iter().enumerate() {
            if step.dissimilarity > self.max_distance {
                break;
            }
            let new = n + i;
            for c in [step.cluster1, step.cluster2] {
                let r = root(&mut parent, c);
                parent[r] = new;
            }
        }
        Ok(Clustering::from_groups(
            (0..n).map(|i| Some(root(&mut parent, i))),
        ))
    }
}

impl<T> Fit<Array2<f32>, T, ClusterError> for Dbscan {
    type Object = Clustering;

    fn fit(&self, dataset: &DatasetBase<Array2<f32>, T>) -> Result<Clustering, ClusterError> {
        check_radius(self.max_distance)?;
        check_at_least_2("min_points", self.min_points)?;
        self.cluster(&dataset.records)
    }
}

impl Dbscan {
    /// DBSCAN on Euclidean distance; the parameters are checked by the caller.
    fn cluster(&self, records: &Array2<f32>) -> Result<Clustering, ClusterError> {
        let labels = linfa_clustering::Dbscan::params(self.min_points)
            .tolerance((2.0 * self.max_distance).sqrt())
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

    #[test]
    fn close_rows_group_and_far_rows_stay_alone() {
        let s = 0.6f32.sqrt();
        let emb = ndarray::arr2(&[
            [1.0, 0.0, 0.0],
            [0.99, 0.141, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, s, 0.8f32.sqrt() * 0.5f32.sqrt()],
        ]);
        let emb = &emb
            / &emb
                .map_axis(ndarray::Axis(1), |r| r.dot(&r).sqrt())
                .insert_axis(ndarray::Axis(1));
        let c = Agglomerative { max_distance: 0.05 }
            .fit(&DatasetBase::from(emb))
            .unwrap();
        assert_eq!(c.labels[..2], [Some(0), Some(0)]);
        assert_eq!(c.labels[2..], [None, None]);
        assert_eq!(c.n_clusters, 1);
    }

    #[test]
    fn every_algorithm_finds_two_tight_groups() {
        // Two tight groups of three unit vectors (cosine distance < 0.01 within, ~1
        // between) and one outlier.
        let rows = [
            [1.0, 0.05, 0.0, 0.0],
            [1.0, 0.0, 0.05, 0.0],
            [1.0, 0.0, 0.0, 0.05],
            [0.0, 1.0, 0.05, 0.0],
            [0.05, 1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.05],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let mut emb: Array2<f32> = ndarray::arr2(&rows);
        for mut r in emb.rows_mut() {
            let n: f32 = r.dot(&r).sqrt();
            r /= n;
        }
        let data = DatasetBase::from(emb);
        let want = [Some(0), Some(0), Some(0), Some(1), Some(1), Some(1), None];
        let a = Agglomerative { max_distance: 0.05 }.fit(&data).unwrap();
        let d = Dbscan {
            max_distance: 0.05,
            min_points: 2,
        }
        .fit(&data)
        .unwrap();
        assert_eq!((a.labels.as_slice(), a.n_clusters), (&want[..], 2));
        assert_eq!((d.labels.as_slice(), d.n_clusters), (&want[..], 2));
        // Too tight a radius: all noise.
        let none = Dbscan {
            max_distance: 0.0001,
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
    fn average_linkage_refuses_a_matrix_past_the_memory_limit() {
        let a = Algorithm::Agglomerative(Agglomerative { max_distance: 0.1 })
            .check()
            .unwrap();
        assert!(a.check_rows(40_000).is_ok());
        let err = a.check_rows(60_000).unwrap_err().to_string();
        assert!(err.contains("60000 claims needs 6.7 GiB"), "{err}");
        assert!(Algorithm::Dbscan(Dbscan {
            max_distance: 0.1,
            min_points: 2
        })
        .check()
        .unwrap()
        .check_rows(60_000)
        .is_ok());
    }

    #[test]
    fn bad_threshold_is_an_error() {
        let emb = Array2::<f32>::eye(3);
        assert!(Agglomerative { max_distance: 3.0 }
            .fit(&DatasetBase::from(emb))
            .is_err());
    }
}
