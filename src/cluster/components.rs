//! Average linkage one connected component at a time. Two groups merge only when
//! their pairs average at least the cut, so at least one pair between them reaches
//! it: a dendrogram cut at that level never joins claims that no chain of pairs at
//! or above the cut links. Grouping each connected component of that graph on its
//! own therefore gives the same groups as grouping the whole corpus, with one
//! distance matrix per component instead of one of n²/2 for all claims.
//!
//! A component of more than [`MAX_EXACT_COMPONENT`] claims is grouped by
//! `sparse_linkage` on the pairs of its near neighbours,
//! each scored, those under the cut included.

use rayon::prelude::*;

use crate::observer::{Observer, Stage, StageProgress};
use crate::same_claim::{PairScorer, ScoredPair};

use super::root;
use super::sparse_linkage;

/// The most claims one component may have for exact average linkage, which
/// scores every pair of its claims (m²/2 same-claim probabilities and as many
/// floats of matrix: 12.5M and 48 MB at 5,000). Larger components, which a
/// corpus of a million claims has (README, *Scale*), are grouped on the pairs of
/// near neighbours only, so no component costs more than this.
pub const MAX_EXACT_COMPONENT: usize = 5_000;

/// In a component grouped on its pairs, pairs scoring under this count as 0
/// (the full matrix would count them for what they score; near 0 that changes
/// no merge, and leaving them out keeps memory to the pairs that matter).
const SPARSE_FLOOR: f32 = 0.05;

/// What grouping a corpus component by component did.
pub struct ComponentGroups {
    /// A group key per claim (a member's row; a claim alone keys itself).
    pub group_of: Vec<usize>,
    /// Sizes of the components too large for an exact matrix, grouped on the
    /// pairs of their near neighbours.
    pub approximated: Vec<usize>,
}

/// The connected components of `n` rows joined by `edges`, those of two rows or
/// more, each listing its rows in ascending order, ordered by their first row.
pub fn components(n: usize, edges: &[ScoredPair]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..n).collect();
    for e in edges {
        let (ra, rb) = (root(&mut parent, e.a), root(&mut parent, e.b));
        if ra != rb {
            parent[ra.max(rb)] = ra.min(rb);
        }
    }
    let mut slot_of_root = vec![usize::MAX; n];
    let mut out: Vec<Vec<usize>> = Vec::new();
    for row in 0..n {
        let r = root(&mut parent, row);
        if slot_of_root[r] == usize::MAX {
            slot_of_root[r] = out.len();
            out.push(Vec::new());
        }
        out[slot_of_root[r]].push(row);
    }
    out.retain(|c| c.len() >= 2);
    out
}

/// Average linkage on 1 − probability over the claims `scorer` compares, cut at
/// `cut`, one component of the pairs at or above `cut` at a time; `pairs` holds
/// every pair at or above `cut` (lower ones are passed over).
pub fn group(
    scorer: &PairScorer,
    pairs: &[ScoredPair],
    cut: f32,
    observer: &dyn Observer,
) -> ComponentGroups {
    group_within(scorer, pairs, cut, MAX_EXACT_COMPONENT, observer)
}

/// [`group`], with components of more than `max_exact` claims grouped on the
/// pairs of near neighbours.
fn group_within(
    scorer: &PairScorer,
    pairs: &[ScoredPair],
    cut: f32,
    max_exact: usize,
    observer: &dyn Observer,
) -> ComponentGroups {
    let n = scorer.pairs().len();
    let edges: Vec<ScoredPair> = pairs
        .iter()
        .filter(|p| p.probability >= cut)
        .copied()
        .collect();
    let components = components(n, &edges);
    let in_components = components.iter().map(Vec::len).sum();
    let progress = StageProgress::new(observer, Stage::Grouping, in_components);
    let large_of = large_component_of(n, &components, max_exact);
    let floor = SPARSE_FLOOR.min(cut);
    // Components are independent: grouped in parallel, each as a whole.
    let locals: Vec<Vec<usize>> = components
        .par_iter()
        .enumerate()
        .map(|(k, rows)| {
            let local = if rows.len() <= max_exact {
                exact_groups(scorer, rows, cut)
            } else {
                let scored = near_pairs_in(scorer, &large_of, k, &edges)
                    .filter_map(|(a, b, cosine)| scorer.scored_from(a, b, cosine, floor));
                sparse_linkage::average_linkage(rows, scored, cut)
            };
            progress.advance(rows.len());
            local
        })
        .collect();
    let mut group_of: Vec<usize> = (0..n).collect();
    for (rows, local) in components.iter().zip(&locals) {
        for (&row, &g) in rows.iter().zip(local) {
            group_of[row] = rows[g];
        }
    }
    let approximated = components
        .iter()
        .map(Vec::len)
        .filter(|&size| size > max_exact)
        .collect();
    ComponentGroups {
        group_of,
        approximated,
    }
}

/// Each claim's component, its position in `components`, where that component
/// has more than `max_exact` claims (`usize::MAX` for every other claim).
fn large_component_of(n: usize, components: &[Vec<usize>], max_exact: usize) -> Vec<usize> {
    let mut large_of = vec![usize::MAX; n];
    for (k, rows) in components.iter().enumerate() {
        if rows.len() > max_exact {
            rows.iter().for_each(|&row| large_of[row] = k);
        }
    }
    large_of
}

/// The pairs of near neighbours inside the `k`th component (`large_of[row] ==
/// k`), each once with its moved cosine: the approximate search's candidates
/// (one pass over them for each large component; no list is kept, so memory
/// does not grow with them), or, where there is no index, each claim and its 8
/// nearest and the `edges` at the cut.
fn near_pairs_in<'p>(
    scorer: &'p PairScorer,
    large_of: &'p [usize],
    k: usize,
    edges: &[ScoredPair],
) -> Box<dyn Iterator<Item = (usize, usize, f32)> + 'p> {
    let inside = move |a: usize, b: usize| large_of[a] == k && large_of[b] == k;
    match scorer.pairs().candidates() {
        Some(candidates) => Box::new(candidates.iter().filter_map(move |p| {
            let (a, b) = p.rows();
            inside(a, b).then_some((a, b, p.similarity))
        })),
        None => {
            let mut pairs = nearest_pairs(scorer, edges);
            pairs.retain(|&(a, b)| inside(a, b));
            let claims = scorer.pairs();
            Box::new(pairs.into_iter().map(|(a, b)| (a, b, claims.cosine(a, b))))
        }
    }
}

/// Each pair (`a < b`) of a claim and one of its nearest, and the `edges`, once.
fn nearest_pairs(scorer: &PairScorer, edges: &[ScoredPair]) -> Vec<(usize, usize)> {
    let ordered = |a: usize, b: usize| (a.min(b), a.max(b));
    let nearest = scorer.pairs().nearest().iter().enumerate();
    let mut pairs: Vec<(usize, usize)> = nearest
        .flat_map(|(a, near)| near.iter().map(move |&b| ordered(a, b)))
        .chain(edges.iter().map(|e| ordered(e.a, e.b)))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// Exact average linkage of `rows` (kodama on their condensed matrix), cut at
/// `cut`: a group per row, as the position in `rows` of a member.
pub fn exact_groups(scorer: &PairScorer, rows: &[usize], cut: f32) -> Vec<usize> {
    let mut distances = scorer.condensed_distances(rows);
    cut_linkage(&mut distances, rows.len(), cut)
}

/// Average linkage of `m` rows on the condensed matrix `distances` (1 − p; kodama
/// overwrites it), cut where merges would average under `cut`: a group per row,
/// as the position of its first member.
pub(super) fn cut_linkage(distances: &mut [f32], m: usize, cut: f32) -> Vec<usize> {
    let dendrogram = kodama::linkage(distances, m, kodama::Method::Average);
    // Union the merges under the cut; step i creates cluster m + i.
    let mut parent: Vec<usize> = (0..m + dendrogram.len()).collect();
    for (i, step) in dendrogram.steps().iter().enumerate() {
        if 1.0 - step.dissimilarity < cut {
            break;
        }
        for c in [step.cluster1, step.cluster2] {
            let r = root(&mut parent, c);
            parent[r] = m + i;
        }
    }
    let mut first = vec![usize::MAX; m + dendrogram.len()];
    (0..m)
        .map(|k| {
            let r = root(&mut parent, k);
            if first[r] == usize::MAX {
                first[r] = k;
            }
            first[r]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::same_claim::{numbered_claims, ClaimPairs, SameClaimModel};

    /// 40 groups of 6 near copies in 8 dimensions (some groups lie close, so
    /// components hold several groups), as numbered English claims.
    fn near_duplicate_claims(noise: f32) -> ClaimPairs {
        numbered_claims(crate::neighbours::near_duplicates(40, 6, 8, noise))
    }

    /// The same partition, whatever the keys.
    fn same_partition(a: &[usize], b: &[usize]) -> bool {
        let mut map = std::collections::HashMap::new();
        let mut back = std::collections::HashMap::new();
        a.iter()
            .zip(b)
            .all(|(x, y)| *map.entry(x).or_insert(y) == y && *back.entry(y).or_insert(x) == x)
    }

    #[test]
    fn components_follow_chains_of_pairs() {
        let pair = |a, b| ScoredPair {
            a,
            b,
            probability: 0.9,
            cosine: 0.9,
        };
        let c = components(7, &[pair(0, 4), pair(4, 6), pair(2, 3)]);
        assert_eq!(c, vec![vec![0, 4, 6], vec![2, 3]]);
    }

    #[test]
    fn grouping_by_components_equals_linkage_of_the_whole_corpus() {
        for noise in [0.2, 0.35, 0.5] {
            let model = SameClaimModel::cosine_only(40.0, 0.85);
            let scorer = PairScorer::new(near_duplicate_claims(noise), &model);
            let n = scorer.pairs().len();
            for cut in [0.3, 0.5, 0.7] {
                let all: Vec<usize> = (0..n).collect();
                let whole = exact_groups(&scorer, &all, cut);
                let by_parts = group(&scorer, &scorer.pairs_at_least(cut), cut, &crate::Silent);
                assert!(by_parts.approximated.is_empty());
                assert!(
                    same_partition(&whole, &by_parts.group_of),
                    "noise {noise}, cut {cut}"
                );
                // Some component holds two groups or more: the cut, not the
                // components, split it.
                let edges = scorer.pairs_at_least(cut);
                let split = components(n, &edges).iter().any(|rows| {
                    let mut keys: Vec<usize> = rows.iter().map(|&r| whole[r]).collect();
                    keys.sort_unstable();
                    keys.dedup();
                    keys.len() >= 2
                });
                assert!(split, "noise {noise}, cut {cut}");
            }
        }
    }

    #[test]
    fn components_too_large_are_grouped_on_their_pairs_and_stay_coherent() {
        let model = SameClaimModel::cosine_only(40.0, 0.85);
        let scorer = PairScorer::new(near_duplicate_claims(0.35), &model);
        let n = scorer.pairs().len();
        let pairs = scorer.pairs_at_least(0.4);
        let grouped = group_within(&scorer, &pairs, 0.5, 1, &crate::Silent);
        let sizes: Vec<usize> = components(n, &scorer.pairs_at_least(0.5))
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(grouped.approximated, sizes);
        let mut members: std::collections::HashMap<usize, Vec<usize>> = Default::default();
        for (row, &g) in grouped.group_of.iter().enumerate() {
            members.entry(g).or_default().push(row);
        }
        let mut merged = 0;
        for m in members.values().filter(|m| m.len() >= 2) {
            merged += 1;
            let (mut sum, mut count) = (0.0, 0);
            for (k, &a) in m.iter().enumerate() {
                for &b in &m[k + 1..] {
                    sum += scorer.probability(a, b);
                    count += 1;
                }
            }
            assert!(sum / count as f32 >= 0.5, "{m:?}");
        }
        assert!(merged >= 10, "{merged} groups");
    }

    /// How many pairs of claims one grouping puts together and the other apart.
    fn pairs_placed_differently(a: &[usize], b: &[usize]) -> usize {
        let together = |g: &[usize], x: usize, y: usize| g[x] == g[y];
        (0..a.len())
            .flat_map(|x| (x + 1..a.len()).map(move |y| (x, y)))
            .filter(|&(x, y)| together(a, x, y) != together(b, x, y))
            .count()
    }

    #[test]
    fn components_grouped_on_their_pairs_agree_with_the_full_matrix() {
        let model = SameClaimModel::cosine_only(40.0, 0.85);
        for noise in [0.2, 0.35, 0.5] {
            let scorer = PairScorer::new(near_duplicate_claims(noise), &model);
            let n = scorer.pairs().len();
            let all: Vec<usize> = (0..n).collect();
            let whole = exact_groups(&scorer, &all, 0.5);
            let pairs = scorer.pairs_at_least(0.5);
            let grouped = group_within(&scorer, &pairs, 0.5, 1, &crate::Silent);
            assert!(!grouped.approximated.is_empty());
            // Pairs under the cut count for what they score, so the groups are
            // (nearly) the full matrix's: at most 1 pair of claims in 1,000
            // placed otherwise (5 of 28,680 at noise 0.35; 0 at 0.2 and 0.5).
            let differ = pairs_placed_differently(&whole, &grouped.group_of);
            assert!(differ * 1000 <= n * (n - 1) / 2, "noise {noise}: {differ}");
        }
    }
}
