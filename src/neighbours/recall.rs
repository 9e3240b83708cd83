//! How many of some rows' true nearest neighbours the approximate search found: the check
//! `bench scale` reports beside its times.

use std::collections::HashSet;

use ndarray::{Array2, Axis};
use rayon::prelude::*;

use super::{Pair, Top};

/// Rows compared against all rows at a time.
const BLOCK: usize = 4_096;

/// True nearest neighbours each query's recall counts.
pub(crate) const RECALL_AT: usize = 10;

/// Of the [`RECALL_AT`] nearest rows (exact cosine; `rows` are unit) of about
/// `queries` evenly spaced rows, the share that `candidates` pair with them.
pub(crate) fn recall_at(rows: &Array2<f32>, candidates: &[Pair], queries: usize) -> f64 {
    let n = rows.nrows();
    let step = (n / queries.max(1)).max(1);
    let asked: Vec<usize> = (0..n).step_by(step).collect();
    let truth = nearest_rows(rows, &asked);
    let is_asked = |row: u32| (row as usize).is_multiple_of(step);
    let found: HashSet<(u32, u32)> = candidates
        .iter()
        .filter(|p| is_asked(p.a) || is_asked(p.b))
        .flat_map(|p| [(p.a, p.b), (p.b, p.a)])
        .collect();
    let hits = asked
        .iter()
        .zip(&truth)
        .flat_map(|(&q, top)| top.seen().map(move |(_, r)| (q as u32, r as u32)))
        .filter(|pair| found.contains(pair))
        .count();
    hits as f64 / (asked.len() * RECALL_AT).max(1) as f64
}

/// Each asked row's [`RECALL_AT`] nearest other rows, by blocked products.
fn nearest_rows(rows: &Array2<f32>, asked: &[usize]) -> Vec<Top<RECALL_AT>> {
    let queries = rows.select(Axis(0), asked);
    let empty = || vec![Top::<RECALL_AT>::new(); asked.len()];
    let blocks: Vec<_> = rows.axis_chunks_iter(Axis(0), BLOCK).enumerate().collect();
    blocks
        .into_par_iter()
        .fold(empty, |mut tops, (b, block)| {
            let sims = queries.dot(&block.t());
            for ((top, sim), &q) in tops.iter_mut().zip(sims.rows()).zip(asked) {
                for (offset, &s) in sim.iter().enumerate() {
                    let row = b * BLOCK + offset;
                    if row != q {
                        top.push(s, row);
                    }
                }
            }
            tops
        })
        .reduce(empty, |mut a, b| {
            for (x, y) in a.iter_mut().zip(b) {
                y.seen().for_each(|(s, row)| x.push(s, row));
            }
            a
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_counts_the_true_neighbours_the_candidates_pair() {
        let rows = super::super::near_duplicates(50, 12, 16, 0.05);
        let every: Vec<usize> = (0..rows.nrows()).collect();
        let truth = nearest_rows(&rows, &every);
        let first = |k: usize| -> Vec<Pair> {
            let pairs = truth
                .iter()
                .enumerate()
                .flat_map(|(q, top)| top.seen().take(k).map(move |(s, r)| Pair::new(q, r, s)));
            pairs.collect()
        };
        assert_eq!(recall_at(&rows, &first(RECALL_AT), 600), 1.0);
        assert_eq!(recall_at(&rows, &first(RECALL_AT), 60), 1.0);
        assert_eq!(recall_at(&rows, &[], 60), 0.0);
        // Each row's five nearest: half, and more where a pair is found from
        // its other row.
        let half = recall_at(&rows, &first(RECALL_AT / 2), 600);
        assert!(half > 0.5 && half < 1.0, "{half}");
    }
}
