//! Cosine neighbours of unit-length embeddings: exact, by blocked matrix
//! products, so memory stays at one block of rows × n.

use ndarray::{s, Array2, ArrayView2};
use serde::Serialize;

/// Rows of the similarity matrix computed at a time.
const BLOCK: usize = 1024;

/// Two rows and their cosine similarity (`a < b`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pair {
    pub a: usize,
    pub b: usize,
    pub similarity: f32,
}

/// Calls `visit(i, similarities of row i to all rows)` for every row, a block at a time.
fn for_each_row(emb: ArrayView2<f32>, mut visit: impl FnMut(usize, &[f32])) {
    let n = emb.nrows();
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let block = emb.slice(s![start..end, ..]).dot(&emb.t());
        for (offset, row) in block.rows().into_iter().enumerate() {
            visit(start + offset, row.as_slice().expect("contiguous"));
        }
    }
}

/// Every pair with cosine ≥ `threshold`, most similar first.
pub fn pairs_above(emb: &Array2<f32>, threshold: f32) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for_each_row(emb.view(), |i, row| {
        for (j, &similarity) in row.iter().enumerate().skip(i + 1) {
            if similarity >= threshold {
                pairs.push(Pair {
                    a: i,
                    b: j,
                    similarity,
                });
            }
        }
    });
    pairs.sort_by(|x, y| y.similarity.total_cmp(&x.similarity));
    pairs
}

/// The condensed cosine-distance matrix (upper triangle, row-major), as
/// hierarchical clustering takes it.
pub fn condensed_distances(emb: &Array2<f32>) -> Vec<f32> {
    let n = emb.nrows();
    let mut out = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for_each_row(emb.view(), |i, row| {
        out.extend(row[i + 1..].iter().map(|&s| (1.0 - s).max(0.0)));
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_distances_agree() {
        let emb = ndarray::arr2(&[[1.0, 0.0], [0.6, 0.8], [1.0, 0.0]]);
        let pairs = pairs_above(&emb, 0.5);
        assert_eq!(
            pairs[0],
            Pair {
                a: 0,
                b: 2,
                similarity: 1.0
            }
        );
        assert_eq!(pairs.len(), 3);
        let d = condensed_distances(&emb);
        assert_eq!(d.len(), 3);
        assert!((d[0] - 0.4).abs() < 1e-6 && d[1].abs() < 1e-6);
    }
}
