//! Average linkage over a sparse graph of pairs, for a component too large for a
//! full distance matrix: pairs not given count as probability 0. That can only
//! lower a merge's average, so every merge it makes is one the full matrix would
//! allow (groups stay at or above the cut); it may stop short of some the full
//! matrix would make. Memory grows with the pairs, not with the rows squared.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::same_claim::ScoredPair;

/// A candidate merge: two groups and their pairs' mean probability when it was
/// computed (stale once either group has changed since).
struct Merge {
    average: f64,
    a: usize,
    b: usize,
}

impl PartialEq for Merge {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Merge {}

impl PartialOrd for Merge {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Merge {
    /// The highest average first; ties by the lower groups, so the order is fixed.
    fn cmp(&self, other: &Self) -> Ordering {
        self.average
            .total_cmp(&other.average)
            .then_with(|| (other.a, other.b).cmp(&(self.a, self.b)))
    }
}

/// Groups (one key per position of `rows`: the position of a member) from average
/// linkage over `edges` between `rows`, merging while the best pair of groups
/// averages at least `cut`.
pub fn average_linkage(
    rows: &[usize],
    edges: impl IntoIterator<Item = ScoredPair>,
    cut: f32,
) -> Vec<usize> {
    let position: FxHashMap<usize, usize> = rows.iter().enumerate().map(|(k, &r)| (r, k)).collect();
    let m = rows.len();
    let mut size = vec![1usize; m];
    // Per group: the sum of its pairs' probabilities with each linked group.
    let mut links: Vec<FxHashMap<usize, f64>> = vec![FxHashMap::default(); m];
    for e in edges {
        let (a, b) = (position[&e.a], position[&e.b]);
        let p = f64::from(e.probability);
        *links[a].entry(b).or_default() += p;
        *links[b].entry(a).or_default() += p;
    }
    let mut heap: BinaryHeap<Merge> = BinaryHeap::new();
    for (a, l) in links.iter().enumerate() {
        heap.extend(l.iter().filter(|&(&b, _)| a < b).map(|(&b, &sum)| Merge {
            average: sum,
            a,
            b,
        }));
    }
    let mut merged_into: Vec<usize> = (0..m).collect();
    while let Some(Merge { average, a, b }) = heap.pop() {
        if average < f64::from(cut) {
            break;
        }
        let current = links[a].get(&b).map(|s| s / (size[a] * size[b]) as f64);
        if current != Some(average) {
            continue; // stale: a or b has merged since
        }
        // Keep the group with more links; fold the other into it.
        let (keep, gone) = if links[a].len() >= links[b].len() {
            (a, b)
        } else {
            (b, a)
        };
        merged_into[gone] = keep;
        size[keep] += size[gone];
        size[gone] = 0;
        let folded = std::mem::take(&mut links[gone]);
        links[keep].remove(&gone);
        for (k, sum) in folded.into_iter().filter(|&(k, _)| k != keep) {
            let back = links[k].remove(&gone).unwrap_or(0.0);
            *links[k].entry(keep).or_default() += back;
            *links[keep].entry(k).or_default() += sum;
        }
        for (&k, &sum) in &links[keep] {
            heap.push(Merge {
                average: sum / (size[keep] * size[k]) as f64,
                a: keep.min(k),
                b: keep.max(k),
            });
        }
    }
    (0..m)
        .map(|mut k| {
            while merged_into[k] != k {
                k = merged_into[k];
            }
            k
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: usize, b: usize, probability: f32) -> ScoredPair {
        ScoredPair {
            a,
            b,
            probability,
            cosine: probability,
        }
    }

    #[test]
    fn merges_on_the_average_and_missing_pairs_count_zero() {
        // 10–11 is one claim; 12 is tied to 11 alone: with 10 it averages 0.45.
        let rows = [10, 11, 12, 13];
        let edges = [pair(10, 11, 0.95), pair(11, 12, 0.9), pair(12, 13, 0.2)];
        let g = average_linkage(&rows, edges, 0.5);
        assert_eq!(g[0], g[1]);
        assert_ne!(g[2], g[1]);
        assert_ne!(g[3], g[2]);
        let looser = average_linkage(&rows, edges, 0.4);
        assert_eq!((looser[0], looser[1]), (looser[2], looser[2]));
        assert_ne!(looser[3], looser[2]);
    }

    #[test]
    fn with_every_pair_it_is_exact_average_linkage() {
        let mut uniform = crate::random::uniform_from(0x9e37_79b9_7f4a_7c15);
        for _ in 0..10 {
            let points: Vec<f32> = (0..40).map(|_| uniform() * 4.0).collect();
            let p = |a: usize, b: usize| (1.0 - (points[a] - points[b]).abs()).clamp(0.0, 1.0);
            let rows: Vec<usize> = (0..40).collect();
            let edges: Vec<ScoredPair> = (0..40)
                .flat_map(|a| (a + 1..40).map(move |b| (a, b)))
                .map(|(a, b)| pair(a, b, p(a, b)))
                .collect();
            let sparse = average_linkage(&rows, edges.iter().copied(), 0.6);
            let mut condensed: Vec<f32> = edges.iter().map(|e| 1.0 - e.probability).collect();
            let exact = crate::cluster::components::cut_linkage(&mut condensed, 40, 0.6);
            for a in 0..40 {
                for b in 0..40 {
                    assert_eq!(sparse[a] == sparse[b], exact[a] == exact[b], "{a} {b}");
                }
            }
        }
    }
}
