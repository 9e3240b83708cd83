//! After the cut: average linkage commits to each merge once, so a claim can end
//! in a group it fits worse than a neighbouring one, and a group merged through
//! one strong pair can hold members that do not agree. This pass moves a claim to
//! the group of a near neighbour (or out on its own) whenever that raises the
//! total fit, and then dissolves groups whose pairs average under the cut.
//!
//! A claim's fit is its mean probability with the other members of its group; a
//! group's total fit is the sum over its members, 2·S / (size − 1) for S the sum
//! of its pairs' probabilities (0 for a claim alone). Every move raises the sum
//! over groups, so the pass ends.

use std::collections::HashMap;

/// Passes over the claims at most (each move raises the total fit; few are needed).
const ROUNDS: usize = 5;

/// Moves that raise the total fit by less than this are not made.
const GAIN: f64 = 1e-6;

/// The total fit of a group with pair sum `sum` and `size` members.
fn total_fit(sum: f64, size: usize) -> f64 {
    if size < 2 {
        0.0
    } else {
        2.0 * sum / (size - 1) as f64
    }
}

/// A claim's move to group `to`: what it raises the total fit by, and its ties
/// (sums of probabilities) with its new and its old group.
struct Move {
    gain: f64,
    to: usize,
    tie_to: f64,
    tie_from: f64,
}

/// Groups as member lists with their pair sums.
struct Groups<'p> {
    members: HashMap<usize, Vec<usize>>,
    sums: HashMap<usize, f64>,
    group_of: Vec<usize>,
    probability: &'p dyn Fn(usize, usize) -> f32,
}

impl<'p> Groups<'p> {
    fn new(group_of: Vec<usize>, probability: &'p dyn Fn(usize, usize) -> f32) -> Self {
        let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
        for (claim, &g) in group_of.iter().enumerate() {
            members.entry(g).or_default().push(claim);
        }
        let mut groups = Groups {
            members,
            sums: HashMap::new(),
            group_of,
            probability,
        };
        let keys: Vec<usize> = groups.members.keys().copied().collect();
        for g in keys {
            let m = &groups.members[&g];
            let sum = m
                .iter()
                .enumerate()
                .flat_map(|(k, &a)| m[k + 1..].iter().map(move |&b| (a, b)))
                .map(|(a, b)| f64::from(probability(a, b)))
                .sum();
            groups.sums.insert(g, sum);
        }
        groups
    }

    /// The sum of `claim`'s probabilities with the members of `g` (itself left out).
    fn ties(&self, claim: usize, g: usize) -> f64 {
        self.members.get(&g).map_or(0.0, |m| {
            m.iter()
                .filter(|&&j| j != claim)
                .map(|&j| f64::from((self.probability)(claim, j)))
                .sum()
        })
    }

    fn size(&self, g: usize) -> usize {
        self.members.get(&g).map_or(0, Vec::len)
    }

    fn sum(&self, g: usize) -> f64 {
        self.sums.get(&g).copied().unwrap_or(0.0)
    }

    /// The whole partition's total fit.
    fn total(&self) -> f64 {
        self.members
            .keys()
            .map(|&g| total_fit(self.sum(g), self.size(g)))
            .sum()
    }

    /// The best move for `claim` among `candidates` (a new group of its own
    /// among them), if any raises the total fit and the claim agrees with its new
    /// group at `cut` on average.
    fn best_move(&self, claim: usize, candidates: &[usize], cut: f64) -> Option<Move> {
        let from = self.group_of[claim];
        let (tie_from, size_from) = (self.ties(claim, from), self.size(from));
        let leave = total_fit(self.sum(from) - tie_from, size_from - 1)
            - total_fit(self.sum(from), size_from);
        candidates
            .iter()
            .filter(|&&g| g != from)
            .map(|&to| {
                let (tie_to, size) = (self.ties(claim, to), self.size(to));
                let join =
                    total_fit(self.sum(to) + tie_to, size + 1) - total_fit(self.sum(to), size);
                Move {
                    gain: leave + join,
                    to,
                    tie_to,
                    tie_from,
                }
            })
            .filter(|m| {
                let size = self.size(m.to);
                m.gain > GAIN && (size == 0 || m.tie_to / size as f64 >= cut)
            })
            .max_by(|a, b| a.gain.total_cmp(&b.gain))
    }

    fn apply(&mut self, claim: usize, m: &Move) {
        let from = self.group_of[claim];
        *self.sums.entry(from).or_default() -= m.tie_from;
        if let Some(members) = self.members.get_mut(&from) {
            members.retain(|&j| j != claim);
            if members.is_empty() {
                self.members.remove(&from);
                self.sums.remove(&from);
            }
        }
        self.members.entry(m.to).or_default().push(claim);
        *self.sums.entry(m.to).or_default() += m.tie_to;
        self.group_of[claim] = m.to;
    }
}

/// Refines `group_of` (a group key per claim): moves claims to the groups of
/// their `nearest` neighbours (or out alone) while that raises the total fit,
/// then leaves alone the members of groups whose pairs average under `cut`.
pub fn refine(
    group_of: Vec<usize>,
    probability: &dyn Fn(usize, usize) -> f32,
    nearest: &[Vec<usize>],
    cut: f32,
) -> Vec<Option<usize>> {
    let n = group_of.len();
    let mut groups = Groups::new(group_of, probability);
    // Keys above every existing one stand for a new group of one.
    let mut fresh = groups.group_of.iter().copied().max().map_or(0, |m| m + 1);
    for _ in 0..ROUNDS {
        let mut moved = false;
        for (claim, near) in nearest.iter().enumerate().take(n) {
            let mut candidates: Vec<usize> = near.iter().map(|&j| groups.group_of[j]).collect();
            candidates.sort_unstable();
            candidates.dedup();
            candidates.push(fresh);
            if let Some(m) = groups.best_move(claim, &candidates, f64::from(cut)) {
                groups.apply(claim, &m);
                fresh += usize::from(m.to == fresh);
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    dissolve_incoherent(&groups, f64::from(cut))
}

/// Each claim's group, `None` for members of groups whose pairs average under `cut`.
fn dissolve_incoherent(groups: &Groups, cut: f64) -> Vec<Option<usize>> {
    groups
        .group_of
        .iter()
        .map(|&g| {
            let size = groups.size(g);
            let pairs = (size * size.saturating_sub(1) / 2).max(1) as f64;
            (size >= 2 && groups.sum(g) / pairs >= cut).then_some(g)
        })
        .collect()
}

/// The total fit of a partition (for tests and measurements).
pub fn partition_fit(group_of: &[usize], probability: &dyn Fn(usize, usize) -> f32) -> f64 {
    Groups::new(group_of.to_vec(), probability).total()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probabilities from points on a line: near points are the same claim.
    fn line(points: &[f32]) -> impl Fn(usize, usize) -> f32 + '_ {
        move |a, b| (1.0 - (points[a] - points[b]).abs()).clamp(0.0, 1.0)
    }

    fn everyone_near(n: usize) -> Vec<Vec<usize>> {
        (0..n)
            .map(|i| (0..n).filter(|&j| j != i).collect())
            .collect()
    }

    #[test]
    fn a_claim_in_the_wrong_group_moves_to_the_right_one() {
        // Claim 2 sits at 0.95, next to 3 and 4, but starts with 0 and 1.
        let points = [0.0, 0.05, 0.95, 1.0, 1.02];
        let p = line(&points);
        let start = vec![0, 0, 0, 1, 1];
        let before = partition_fit(&start, &p);
        let out = refine(start, &p, &everyone_near(5), 0.5);
        assert_eq!(out[0], out[1]);
        assert_eq!(out[2], out[3]);
        assert_eq!(out[3], out[4]);
        assert_ne!(out[0], out[2]);
        let after: Vec<usize> = out.iter().map(|g| g.unwrap()).collect();
        assert!(partition_fit(&after, &p) > before);
    }

    #[test]
    fn refining_never_lowers_the_total_fit_and_leaves_no_group_under_the_cut() {
        let mut uniform = crate::random::uniform_from(0x1234_5678_9abc_def1);
        for _ in 0..20 {
            let points: Vec<f32> = (0..30).map(|_| uniform() * 3.0).collect();
            let p = line(&points);
            let start: Vec<usize> = (0..30).map(|_| (uniform() * 6.0) as usize).collect();
            let before = partition_fit(&start, &p);
            let mut groups = Groups::new(start.clone(), &p);
            let moved = refine(start, &p, &everyone_near(30), 0.6);
            // The moves alone (before dissolving) never lower the total fit.
            let mut fresh = 100;
            for claim in 0..30 {
                let mut c: Vec<usize> = (0..30).map(|j| groups.group_of[j]).collect();
                c.push(fresh);
                if let Some(m) = groups.best_move(claim, &c, 0.6) {
                    assert!(m.gain > 0.0);
                    groups.apply(claim, &m);
                    fresh += 1;
                }
            }
            assert!(groups.total() >= before - 1e-9);
            // No group left averages under the cut.
            let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
            for (i, g) in moved.iter().enumerate() {
                if let Some(g) = g {
                    members.entry(*g).or_default().push(i);
                }
            }
            for m in members.values() {
                let pairs: Vec<f32> = m
                    .iter()
                    .enumerate()
                    .flat_map(|(k, &a)| m[k + 1..].iter().map(move |&b| (a, b)))
                    .map(|(a, b)| p(a, b))
                    .collect();
                let mean = pairs.iter().sum::<f32>() / pairs.len() as f32;
                assert!(m.len() >= 2 && mean >= 0.6 - 1e-6, "{m:?} {mean}");
            }
        }
    }
}
