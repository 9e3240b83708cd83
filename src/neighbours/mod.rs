//! Cosine neighbours of unit-length embeddings. Up to [`EXACT_LIMIT`] rows: exact,
//! by blocked matrix products, so memory stays at one block of rows × n. Above it,
//! each row finds its [`ANN_NEIGHBOURS`] nearest rows approximately: by default
//! among the rows of its nearest k-means cells ([`cells`]), or from an HNSW index
//! ([`hnsw`]); their similarities are then computed exactly from the f32 rows.

mod cells;
mod centroids;
mod hnsw;
mod order;
mod recall;
mod top;

pub(crate) use recall::recall_at;
pub(crate) use top::Top;

use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::observer::Observer;
use order::Plan;

/// Rows of the similarity matrix computed at a time.
const BLOCK: usize = 1024;

/// Above this many rows, duplicate pairs come from the approximate search. Measured
/// with `bench scale` on synthetic 384-dim claims, 2 cores (README, *Scale*): at 10k
/// exact products take 4.3 s and the cells 0.5 s, finding the same groups; at 40k,
/// 60 s against 5.1 s, with 99.8% of the pairs. Below, exactness costs under 5 s.
pub const EXACT_LIMIT: usize = 10_000;

/// Nearest neighbours each row asks the approximate search for.
pub const ANN_NEIGHBOURS: usize = 64;

/// How the approximate search finds each row's nearest rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApproximateSearch {
    /// Exact products with the rows of the row's nearest k-means cells (`neighbours/cells.rs`).
    #[default]
    Cells,
    /// An HNSW index, rows added as a skeleton of every eighth row, then sorted by
    /// nearest k-means centroid, so near rows are read together (`neighbours/order.rs`).
    Hnsw,
    /// An HNSW index, rows added as they come.
    HnswInRowOrder,
}

impl ApproximateSearch {
    /// The name `bench scale --search` knows it by.
    pub fn name(self) -> &'static str {
        match self {
            ApproximateSearch::Cells => "cells",
            ApproximateSearch::Hnsw => "hnsw",
            ApproximateSearch::HnswInRowOrder => "hnsw-rows",
        }
    }
}

/// Two rows and their cosine similarity (`a < b`). Rows are `u32` so a pair takes
/// 12 bytes: a million claims have tens of millions of candidate pairs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pair {
    pub a: u32,
    pub b: u32,
    pub similarity: f32,
}

impl Pair {
    /// The pair of rows `i` and `j` (in either order).
    fn new(i: usize, j: usize, similarity: f32) -> Self {
        let row = |x: usize| u32::try_from(x).expect("rows are checked to fit u32");
        Pair {
            a: row(i.min(j)),
            b: row(i.max(j)),
            similarity,
        }
    }

    /// The two rows, as indices.
    pub fn rows(&self) -> (usize, usize) {
        (self.a as usize, self.b as usize)
    }
}

/// Calls `visit(i, similarities of row i to all rows)` for every row, a block at a time.
pub(crate) fn for_each_row(emb: ArrayView2<f32>, mut visit: impl FnMut(usize, &[f32])) {
    let n = emb.nrows();
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let block = emb.slice(s![start..end, ..]).dot(&emb.t());
        for (offset, row) in block.rows().into_iter().enumerate() {
            visit(start + offset, row.as_slice().expect("contiguous"));
        }
    }
}

/// Pairs with cosine ≥ `threshold` among each row's [`ANN_NEIGHBOURS`] nearest
/// rows, found as `search` says (similarities themselves are exact), in no
/// particular order; `observer` is told the progress.
pub fn approximate_pairs_above(
    emb: &Array2<f32>,
    threshold: f32,
    search: ApproximateSearch,
    observer: &dyn Observer,
) -> Result<Vec<Pair>> {
    let n = emb.nrows();
    if u32::try_from(n).is_err() {
        return Err(Error::Index(format!("{n} rows; at most 2^32")));
    }
    let neighbours = match search {
        ApproximateSearch::Cells => cells::nearest_in_cells::<ANN_NEIGHBOURS>(emb, observer)?,
        ApproximateSearch::Hnsw => {
            hnsw::nearest_in_index(emb, ANN_NEIGHBOURS, &Plan::clustered(emb)?, observer)?
        }
        ApproximateSearch::HnswInRowOrder => {
            hnsw::nearest_in_index(emb, ANN_NEIGHBOURS, &Plan::rows(n), observer)?
        }
    };
    Ok(pairs_among(emb, &neighbours, threshold))
}

/// Pairs with cosine ≥ `threshold` between each row and its `neighbours` (sorted
/// row numbers), each pair once, from its lower row.
fn pairs_among(emb: &Array2<f32>, neighbours: &[Vec<u32>], threshold: f32) -> Vec<Pair> {
    neighbours
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, keys)| {
            let found_from_below =
                move |j: usize| j < i && neighbours[j].binary_search(&(i as u32)).is_ok();
            keys.iter()
                .map(|&j| j as usize)
                .filter(move |&j| j != i && !found_from_below(j))
                .filter_map(move |j| {
                    let similarity = emb.row(i).dot(&emb.row(j));
                    (similarity >= threshold).then(|| Pair::new(i, j, similarity))
                })
        })
        .collect()
}

/// `groups` groups of `size` copies of random unit vectors in `dim` dimensions,
/// each copy moved by uniform noise of width `noise` (for tests).
#[cfg(test)]
pub(crate) fn near_duplicates(groups: usize, size: usize, dim: usize, noise: f32) -> Array2<f32> {
    let mut random = crate::random::uniform_from(0x2545_f491_4f6c_dd1d);
    let mut uniform = move || random() - 0.5;
    let mut emb = Array2::zeros((groups * size, dim));
    for g in 0..groups {
        let centre: Vec<f32> = (0..dim).map(|_| uniform()).collect();
        for c in 0..size {
            let mut row = emb.row_mut(g * size + c);
            for (x, m) in row.iter_mut().zip(&centre) {
                *x = m + noise * uniform();
            }
            let norm = row.dot(&row).sqrt();
            row /= norm;
        }
    }
    emb
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair with cosine ≥ `threshold`, by blocked products.
    fn exact_pairs_above(emb: &Array2<f32>, threshold: f32) -> Vec<Pair> {
        let mut pairs = Vec::new();
        for_each_row(emb.view(), |a, row| {
            for (b, &similarity) in row.iter().enumerate().skip(a + 1) {
                if similarity >= threshold {
                    pairs.push(Pair::new(a, b, similarity));
                }
            }
        });
        pairs
    }

    #[test]
    fn the_approximate_index_finds_the_exact_pairs() {
        // 12,000 rows: enough for the clustered order's three centroids.
        let emb = near_duplicates(1_500, 8, 64, 0.04);
        let exact = exact_pairs_above(&emb, 0.9);
        assert!(
            exact.len() >= 1_500 * 28 * 9 / 10,
            "{} exact pairs",
            exact.len()
        );
        let searches = [
            ApproximateSearch::Cells,
            ApproximateSearch::Hnsw,
            ApproximateSearch::HnswInRowOrder,
        ];
        for search in searches {
            let approximate = approximate_pairs_above(&emb, 0.9, search, &crate::Silent).unwrap();
            let found: std::collections::HashSet<(usize, usize)> =
                approximate.iter().map(Pair::rows).collect();
            let recall = exact.iter().filter(|p| found.contains(&p.rows())).count() as f64
                / exact.len() as f64;
            assert!(recall >= 0.99, "{search:?}: recall {recall}");
            assert!(approximate.iter().all(|p| p.a < p.b && p.similarity >= 0.9));
            assert_eq!(
                found.len(),
                approximate.len(),
                "{search:?}: duplicate pairs"
            );
        }
    }
}
