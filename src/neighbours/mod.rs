//! Cosine neighbours of unit-length embeddings. Up to [`EXACT_LIMIT`] rows: exact,
//! by blocked matrix products, so memory stays at one block of rows × n. Above it:
//! an HNSW index (usearch, its vectors stored as bf16), so the cost grows near
//! n·log n instead of n²; each row then finds at most [`ANN_NEIGHBOURS`] partners,
//! whose similarities are computed again exactly from the f32 rows. Rows are added
//! and searched in an order that keeps near rows together ([`order`]).

mod order;
mod recall;
mod top;

pub(crate) use recall::recall_at;
pub(crate) use top::Top;

use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;
use serde::Serialize;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use crate::error::{Error, Result};
use crate::observer::{Observer, Stage, StageProgress};
use order::Plan;

/// Rows of the similarity matrix computed at a time.
const BLOCK: usize = 1024;

/// Above this many rows, duplicate pairs come from the approximate index. Measured
/// with `bench scale` on synthetic 384-dim claims, 2 cores (README, *Scale*): at 10k
/// exact products take 4.9 s and the index 1.5 s, finding the same groups; at 40k,
/// 66 s against 5.9 s, with 99.8% of the pairs. Below, exactness costs under 5 s.
pub const EXACT_LIMIT: usize = 10_000;

/// Nearest neighbours each row asks the approximate index for.
pub const ANN_NEIGHBOURS: usize = 64;

/// The index's graph: links per node (twice as many on the lowest layer), and the
/// candidates kept while adding and while searching (usearch's `connectivity`,
/// `expansion_add`, `expansion_search`); measured in benches/ann (README, *Scale*):
/// with bf16 vectors, searching 256 candidates instead of 128 lifts recall@10 from
/// 0.967 to 0.984 at 100k for 1.6× the search time.
const ANN_LINKS: usize = 16;
const ANN_EF_CONSTRUCTION: usize = 100;
const ANN_EF_SEARCH: usize = 256;

/// The order rows are added to and searched in the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IndexOrder {
    /// A skeleton of every eighth row first, then the rest sorted by nearest
    /// k-means centroid, so near rows are read together ([`order`]).
    #[default]
    Clustered,
    /// As the rows come (to measure what the order gains).
    Rows,
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

fn index_error(e: cxx::Exception) -> Error {
    Error::Index(e.what().to_string())
}

/// An HNSW index over every row of `emb` (inner product; rows added phase after
/// phase, in parallel within a phase).
fn build_index(emb: &Array2<f32>, phases: &[Vec<u32>], observer: &dyn Observer) -> Result<Index> {
    let options = IndexOptions {
        dimensions: emb.ncols(),
        metric: MetricKind::IP,
        quantization: ScalarKind::BF16,
        connectivity: ANN_LINKS,
        expansion_add: ANN_EF_CONSTRUCTION,
        expansion_search: ANN_EF_SEARCH,
        multi: false,
    };
    let index = Index::new(&options).map_err(index_error)?;
    index
        .reserve_capacity_and_threads(emb.nrows(), rayon::current_num_threads())
        .map_err(index_error)?;
    let progress = StageProgress::new(observer, Stage::Indexing, emb.nrows());
    for phase in phases {
        phase.par_iter().try_for_each(|&i| {
            let row = emb.row(i as usize);
            let row = row.as_slice().expect("contiguous rows");
            index.add(u64::from(i), row).map_err(index_error)?;
            progress.advance(1);
            Ok::<(), Error>(())
        })?;
    }
    Ok(index)
}

/// Pairs with cosine ≥ `threshold` among each row's `k` nearest neighbours in an
/// HNSW index (similarities themselves are exact), in no particular order; rows
/// go into the index in `order`; `observer` is told the progress of indexing and
/// searching.
pub fn approximate_pairs_above(
    emb: &Array2<f32>,
    threshold: f32,
    k: usize,
    order: IndexOrder,
    observer: &dyn Observer,
) -> Result<Vec<Pair>> {
    if u32::try_from(emb.nrows()).is_err() {
        return Err(Error::Index(format!("{} rows; at most 2^32", emb.nrows())));
    }
    let plan = match order {
        IndexOrder::Clustered => Plan::clustered(emb)?,
        IndexOrder::Rows => Plan::rows(emb.nrows()),
    };
    let index = build_index(emb, &plan.phases, observer)?;
    let progress = StageProgress::new(observer, Stage::Searching, emb.nrows());
    let found: Vec<Vec<u32>> = plan
        .search
        .par_iter()
        .map(|&i| {
            progress.advance(1);
            let row = emb.row(i as usize);
            let found = index.search(row.as_slice().expect("contiguous rows"), k + 1);
            let mut keys: Vec<u32> = found
                .map_err(index_error)?
                .keys
                .into_iter()
                .map(|key| key as u32)
                .collect();
            keys.sort_unstable();
            Ok(keys)
        })
        .collect::<Result<_>>()?;
    drop(index);
    let mut neighbours = vec![Vec::new(); emb.nrows()];
    for (&i, keys) in plan.search.iter().zip(found) {
        neighbours[i as usize] = keys;
    }
    // Each pair once, from its lower row (a pair found from both sides counts once).
    let lists = &neighbours;
    let pairs: Vec<Pair> = neighbours
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, keys)| {
            let found_from_below =
                move |j: usize| j < i && lists[j].binary_search(&(i as u32)).is_ok();
            keys.iter()
                .map(|&j| j as usize)
                .filter(move |&j| j != i && !found_from_below(j))
                .filter_map(move |j| {
                    let similarity = emb.row(i).dot(&emb.row(j));
                    (similarity >= threshold).then(|| Pair::new(i, j, similarity))
                })
        })
        .collect();
    Ok(pairs)
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
        for order in [IndexOrder::Clustered, IndexOrder::Rows] {
            let approximate =
                approximate_pairs_above(&emb, 0.9, ANN_NEIGHBOURS, order, &crate::Silent).unwrap();
            let found: std::collections::HashSet<(usize, usize)> =
                approximate.iter().map(Pair::rows).collect();
            let recall = exact.iter().filter(|p| found.contains(&p.rows())).count() as f64
                / exact.len() as f64;
            assert!(recall >= 0.99, "{order:?}: recall {recall}");
            assert!(approximate.iter().all(|p| p.a < p.b && p.similarity >= 0.9));
            assert_eq!(found.len(), approximate.len(), "{order:?}: duplicate pairs");
        }
    }
}
