//! Grouping claims that say the same thing: agglomerative clustering with average
//! linkage on cosine distance, cut at a distance threshold (kodama computes the
//! dendrogram). Exposed through linfa's `Fit` trait. Singletons are no cluster.

use linfa::traits::Fit;
use linfa::DatasetBase;
use ndarray::Array2;

use crate::neighbours::condensed_distances;

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

/// Errors from clustering.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
    #[error("max_distance must be in [0, 2], got {0}")]
    BadThreshold(f32),
}

impl<T> Fit<Array2<f32>, T, ClusterError> for Agglomerative {
    type Object = Clustering;

    fn fit(&self, dataset: &DatasetBase<Array2<f32>, T>) -> Result<Clustering, ClusterError> {
        if !(0.0..=2.0).contains(&self.max_distance) {
            return Err(ClusterError::BadThreshold(self.max_distance));
        }
        let records = &dataset.records;
        let n = records.nrows();
        if n < 2 {
            return Ok(Clustering {
                labels: vec![None; n],
                n_clusters: 0,
            });
        }
        let mut distances = condensed_distances(records);
        let dendrogram = kodama::linkage(&mut distances, n, kodama::Method::Average);
        // Union the merges under the threshold; step i creates cluster n + i.
        let mut parent: Vec<usize> = (0..n + dendrogram.len()).collect();
        fn root(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
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
        let roots: Vec<usize> = (0..n).map(|i| root(&mut parent, i)).collect();
        let mut sizes = std::collections::HashMap::new();
        for &r in &roots {
            *sizes.entry(r).or_insert(0usize) += 1;
        }
        let mut groups: Vec<(usize, usize)> = sizes.into_iter().filter(|&(_, s)| s >= 2).collect();
        groups.sort_by_key(|&(r, s)| (std::cmp::Reverse(s), roots.iter().position(|&x| x == r)));
        let number: std::collections::HashMap<usize, usize> = groups
            .iter()
            .enumerate()
            .map(|(k, &(r, _))| (r, k))
            .collect();
        Ok(Clustering {
            labels: roots.iter().map(|r| number.get(r).copied()).collect(),
            n_clusters: groups.len(),
        })
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
    fn bad_threshold_is_an_error() {
        let emb = Array2::<f32>::eye(3);
        assert!(Agglomerative { max_distance: 3.0 }
            .fit(&DatasetBase::from(emb))
            .is_err());
    }
}
