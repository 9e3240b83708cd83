//! k-means centroids of unit rows (linfa's `KMeans`, fitted on an even sample)
//! and each row's nearest ones: the regions the index order and the cell search
//! work by.

use linfa::prelude::*;
use linfa::DatasetBase;
use linfa_clustering::KMeans;
use ndarray::{s, Array1, Array2, Axis};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Rows per centroid: a centroid's rows take about 6 MB as f32.
const ROWS_PER_CENTROID: usize = 4_000;
/// Centroids at most, whatever the rows.
const MAX_CENTROIDS: usize = 512;
/// Sampled rows per centroid that k-means is fitted on.
const SAMPLE_PER_CENTROID: usize = 40;

/// Rows assigned to centroids at a time.
const BLOCK: usize = 4_096;

/// Centroids, with half their squared lengths (for nearest-by-products).
pub(crate) struct Centroids {
    centroids: Array2<f32>,
    half_norms: Array1<f32>,
}

impl Centroids {
    /// One centroid per [`ROWS_PER_CENTROID`] rows of `emb` (at most
    /// [`MAX_CENTROIDS`]); `None` when there are too few rows for two.
    pub(crate) fn fit(emb: &Array2<f32>) -> Result<Option<Self>> {
        let n = emb.nrows();
        let count = (n / ROWS_PER_CENTROID).min(MAX_CENTROIDS);
        if count < 2 {
            return Ok(None);
        }
        let step = (n / (count * SAMPLE_PER_CENTROID)).max(1);
        let sample = emb.slice(s![..;step, ..]).to_owned();
        let model = KMeans::params(count)
            .n_runs(1)
            .max_n_iterations(20)
            .tolerance(1e-3)
            .fit(&DatasetBase::from(sample))
            .map_err(|e| Error::Index(format!("k-means centroids of the rows: {e}")))?;
        let centroids = model.centroids().clone();
        let half_norms = centroids
            .rows()
            .into_iter()
            .map(|c| c.dot(&c) / 2.0)
            .collect();
        Ok(Some(Centroids {
            centroids,
            half_norms,
        }))
    }

    /// How many centroids.
    pub(crate) fn len(&self) -> usize {
        self.centroids.nrows()
    }

    /// Each row's `p` nearest centroids in Euclidean distance (the largest
    /// `row · c − |c|² / 2`), nearest first: row `i`'s at `[i·p .. (i+1)·p]`.
    pub(crate) fn nearest(&self, emb: &Array2<f32>, p: usize) -> Vec<u32> {
        let p = p.clamp(1, self.len());
        let blocks: Vec<_> = emb.axis_chunks_iter(Axis(0), BLOCK).collect();
        blocks
            .into_par_iter()
            .flat_map_iter(|block| {
                let scores = block.dot(&self.centroids.t()) - &self.half_norms;
                let mut nearest = Vec::with_capacity(block.nrows() * p);
                for row in scores.rows() {
                    let mut ranked: Vec<u32> = (0..row.len() as u32).collect();
                    let by_score = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]);
                    if p < ranked.len() {
                        ranked.select_nth_unstable_by(p - 1, by_score);
                    }
                    ranked.truncate(p);
                    ranked.sort_unstable_by(by_score);
                    nearest.extend(ranked);
                }
                nearest
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_lists_its_nearest_centroids_nearest_first() {
        let emb = super::super::near_duplicates(3_000, 4, 16, 0.05);
        let centroids = Centroids::fit(&emb)
            .unwrap()
            .expect("12,000 rows: three centroids");
        assert_eq!(centroids.len(), 3);
        let nearest = centroids.nearest(&emb, 2);
        assert_eq!(nearest.len(), 2 * emb.nrows());
        let distance = |row: usize, c: u32| {
            let d = &emb.row(row) - &centroids.centroids.row(c as usize);
            d.dot(&d)
        };
        for (row, pair) in nearest.chunks(2).enumerate() {
            assert_ne!(pair[0], pair[1]);
            let third = 3 - pair[0] - pair[1];
            assert!(distance(row, pair[0]) <= distance(row, pair[1]));
            assert!(distance(row, pair[1]) <= distance(row, third) + 1e-5);
        }
        assert!(Centroids::fit(&emb.slice(s![..7_999, ..]).to_owned())
            .unwrap()
            .is_none());
    }
}
