//! The main job: corpus → claim embeddings → same-claim probabilities of pairs →
//! duplicate pairs → clusters with labels and keywords → stance of claims and
//! clusters → report.

use ndarray::Array2;

use crate::align::LanguageOffset;
use crate::cluster::components::MAX_EXACT_COMPONENT;
use crate::cluster::{Algorithm, Grouping};
use crate::corpus::{Corpus, Lang};
use crate::error::{Error, Result};
use crate::figures::{self, Figure};
use crate::keywords;
use crate::money::{self, Money};
use crate::observer::{Event, Observer};
use crate::report::{
    project_2d, ClaimOut, ClusterOut, DuplicateOut, MemberEvidence, ModelInfo, Report, TargetInfo,
};
use crate::same_claim::{ClaimPairs, NeighbourSearch, PairScorer, ScoredPair};
use crate::stance::{aggregate, ClaimStance, Context, StanceModel};

/// Thresholds of the main job, checked once when made.
#[derive(Debug, Clone, Copy)]
pub struct ClusterOptions {
    /// How claims are grouped.
    pub grouping: Grouping,
    /// Same-claim probability at or above which two claims are duplicates.
    pub duplicate_probability: f32,
    /// Keep only duplicate pairs from different articles.
    pub cross_article_only: bool,
    /// How much of its article a claim's stance is read with.
    pub stance_context: Context,
}

impl ClusterOptions {
    /// Checks the grouping parameters, the duplicate threshold (a probability
    /// in (0, 1]) and the stance context's weight (finite, at least 0).
    pub fn new(
        algorithm: Algorithm,
        duplicate_probability: f32,
        cross_article_only: bool,
        stance_context: Context,
    ) -> Result<Self> {
        if !(stance_context.weight.is_finite() && stance_context.weight >= 0.0) {
            return Err(Error::Invalid {
                option: "the stance context's weight",
                why: format!(
                    "must be a finite number at least 0 (0 reads each claim alone), not {}",
                    stance_context.weight
                ),
            });
        }
        if !(duplicate_probability > 0.0 && duplicate_probability <= 1.0) {
            return Err(Error::Invalid {
                option: "the duplicate threshold",
                why: format!(
                    "must be a same-claim probability in (0, 1], not {duplicate_probability}"
                ),
            });
        }
        Ok(ClusterOptions {
            grouping: algorithm.check()?,
            duplicate_probability,
            cross_article_only,
            stance_context,
        })
    }
}

/// How `corpus`'s claims compare in pairs: the offset moves Chinese ones;
/// `observer` is told the progress of a neighbour search over many claims.
pub fn claim_pairs(
    corpus: &Corpus,
    emb: Array2<f32>,
    offset: Option<&LanguageOffset>,
    observer: &dyn Observer,
) -> Result<ClaimPairs> {
    let texts: Vec<&str> = corpus.claims.iter().map(|c| c.text.as_str()).collect();
    let langs: Vec<Lang> = corpus.claims.iter().map(|c| c.lang).collect();
    let search = NeighbourSearch {
        observer,
        ..NeighbourSearch::default()
    };
    ClaimPairs::with_search(emb, &texts, &langs, offset, search)
}

/// Above this many duplicate pairs a claim, copies aside, a corpus restates one
/// subject many times over (the seeds have 0.5, the workload 0.6, ATEC 10.9),
/// and there the same-claim probability overstates (README, *Copies, and a
/// corpus about one thing*).
const DENSE_PAIRS_PER_CLAIM: f64 = 2.0;

/// Duplicate claim pairs (row indices), most probable first; `observer` is told
/// when they are dense.
pub fn duplicates(
    corpus: &Corpus,
    scorer: &PairScorer,
    opts: &ClusterOptions,
    observer: &dyn Observer,
) -> Vec<ScoredPair> {
    let found = duplicates_among(
        corpus,
        &scorer.pairs_at_least(opts.duplicate_probability),
        opts,
    );
    tell_if_dense(scorer, &found, observer);
    found
}

/// Tells `observer` when `duplicates`, copies aside, are more than
/// [`DENSE_PAIRS_PER_CLAIM`] a claim.
fn tell_if_dense(scorer: &PairScorer, duplicates: &[ScoredPair], observer: &dyn Observer) {
    let claims = scorer.pairs().len();
    let pairs = duplicates
        .iter()
        .filter(|p| !scorer.pairs().copies(p.a, p.b))
        .count();
    if pairs as f64 > DENSE_PAIRS_PER_CLAIM * claims as f64 {
        observer.event(&Event::DenseDuplicates { pairs, claims });
    }
}

/// The duplicates among `pairs` (every pair at or above a probability no higher
/// than the duplicate threshold, most probable first).
fn duplicates_among(
    corpus: &Corpus,
    pairs: &[ScoredPair],
    opts: &ClusterOptions,
) -> Vec<ScoredPair> {
    pairs
        .iter()
        .filter(|p| p.probability >= opts.duplicate_probability)
        .filter(|p| {
            !opts.cross_article_only || corpus.claims[p.a].article != corpus.claims[p.b].article
        })
        .copied()
        .collect()
}

/// Each claim's stance toward `stance`'s target, read in its context (its
/// embedding `emb`, unmoved, with its neighbours').
pub fn claim_stances(
    corpus: &Corpus,
    emb: &Array2<f32>,
    stance: &StanceModel,
    opts: &ClusterOptions,
) -> Vec<ClaimStance> {
    let read = opts
        .stance_context
        .apply(emb.view(), &corpus.claim_ranges());
    stance.score(read.view())
}

/// Clusters the claims as `scorer` compares them and builds the report with
/// their `claim_stances` toward `stance`'s target; tells `observer` of
/// components grouped approximately.
pub fn analyse(
    corpus: &Corpus,
    claim_stances: Vec<ClaimStance>,
    scorer: &PairScorer,
    model: ModelInfo,
    stance: &StanceModel,
    opts: &ClusterOptions,
    observer: &dyn Observer,
) -> Result<Report> {
    // One pass over the pairs serves the grouping's components and the duplicates.
    let floor = opts
        .grouping
        .cut()
        .map_or(opts.duplicate_probability, |cut| {
            cut.min(opts.duplicate_probability)
        });
    let pairs = scorer.pairs_at_least(floor);
    let clustering = opts.grouping.fit_with_pairs(scorer, &pairs, observer)?;
    if !clustering.grouped_on_pairs.is_empty() {
        observer.event(&Event::GroupedOnPairs {
            sizes: clustering.grouped_on_pairs.clone(),
            limit: MAX_EXACT_COMPONENT,
        });
    }
    // One space for whatever compares members of a cluster, and for the map.
    let space = scorer.pairs().moved();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); clustering.n_clusters];
    for (i, label) in clustering.labels.iter().enumerate() {
        if let Some(c) = label {
            members[*c].push(i);
        }
    }
    let probability = |a: usize, b: usize| scorer.probability(a, b);
    let clusters = summaries(corpus, &members, space, &claim_stances, &probability);
    let duplicates = duplicates_among(corpus, &pairs, opts);
    tell_if_dense(scorer, &duplicates, observer);
    let duplicates = duplicates
        .into_iter()
        .map(|p| DuplicateOut {
            a: corpus.claims[p.a].id.clone(),
            b: corpus.claims[p.b].id.clone(),
            probability: p.probability,
            cosine: p.cosine,
        })
        .collect();
    let claims = corpus
        .claims
        .iter()
        .zip(&clustering.labels)
        .zip(claim_stances)
        .map(|((c, &cluster), stance)| ClaimOut {
            claim: c.clone(),
            cluster,
            stance,
        })
        .collect();
    Ok(Report {
        version: crate::report::REPORT_VERSION,
        model,
        target: TargetInfo {
            name: stance.frame.name.clone(),
            description: stance.frame.description.clone(),
            scorer: stance.kind().to_string(),
            context: opts.stance_context.to_string(),
        },
        articles: corpus.articles.clone(),
        claims,
        clusters,
        duplicates,
        map: project_2d(space),
    })
}

/// Each cluster's articles, label (its medoid claim), keywords, members and
/// stance; `members` are claim rows per cluster, `space` the rows they compare in.
fn summaries(
    corpus: &Corpus,
    members: &[Vec<usize>],
    space: &Array2<f32>,
    claim_stances: &[ClaimStance],
    probability: &dyn Fn(usize, usize) -> f32,
) -> Vec<ClusterOut> {
    let texts: Vec<Vec<&str>> = members
        .iter()
        .map(|m| m.iter().map(|&i| corpus.claims[i].text.as_str()).collect())
        .collect();
    let keywords = keywords::Tokenizer::default().cluster_keywords(&texts, 6);
    members
        .iter()
        .zip(keywords)
        .enumerate()
        .map(|(id, (m, keywords))| {
            let mut articles: Vec<String> = m
                .iter()
                .map(|&i| corpus.claims[i].article.clone())
                .collect();
            articles.sort();
            articles.dedup();
            let member_stances: Vec<_> = m.iter().map(|&i| claim_stances[i]).collect();
            let evidence = evidence(corpus, m, probability);
            // Every member's fit is its mean over the group's other members, so
            // their mean is the mean over the group's pairs.
            let coherence = evidence.iter().map(|e| e.fit).sum::<f32>() / m.len() as f32;
            ClusterOut {
                id,
                size: m.len(),
                articles,
                label: corpus.claims[medoid(space, m)].text.clone(),
                keywords,
                members: m.iter().map(|&i| corpus.claims[i].id.clone()).collect(),
                stance: aggregate(&member_stances, &centroid_similarities(space, m)),
                coherence,
                evidence,
                shared_amounts: shared_amounts(corpus, m),
                shared_numbers: shared_numbers(corpus, m),
            }
        })
        .collect()
}

/// Each member's mean probability with the others and its likeliest fellow member.
fn evidence(
    corpus: &Corpus,
    members: &[usize],
    probability: &dyn Fn(usize, usize) -> f32,
) -> Vec<MemberEvidence> {
    members
        .iter()
        .map(|&i| {
            let others: Vec<(usize, f32)> = members
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| (j, probability(i, j)))
                .collect();
            let fit = others.iter().map(|o| o.1).sum::<f32>() / others.len().max(1) as f32;
            let (tied, tie) = others
                .iter()
                .copied()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .expect("groups have two members or more");
            MemberEvidence {
                claim: corpus.claims[i].id.clone(),
                fit,
                tied_to: corpus.claims[tied].id.clone(),
                tie,
            }
        })
        .collect()
}

/// Money amounts named by two or more of the members, in one notation, in
/// order of amount.
fn shared_amounts(corpus: &Corpus, members: &[usize]) -> Vec<String> {
    let amounts = |i: usize| money::amounts(&corpus.claims[i].text);
    let mut shared = named_by_two_or_more(members, amounts, |m: &Money| *m);
    shared.sort();
    shared.iter().map(Money::to_string).collect()
}

/// Numbers, percentages and dates (money aside) named by two or more of the
/// members, as first written, in the order first named.
fn shared_numbers(corpus: &Corpus, members: &[usize]) -> Vec<String> {
    let named = |i: usize| figures::figures(&corpus.claims[i].text);
    named_by_two_or_more(members, named, |f: &Figure| f.form.clone())
        .into_iter()
        .map(|f| f.written)
        .collect()
}

/// What two or more of `members` name (each member counted once per `key`),
/// as first named, in the order first named.
fn named_by_two_or_more<T, K: PartialEq>(
    members: &[usize],
    named: impl Fn(usize) -> Vec<T>,
    key: impl Fn(&T) -> K,
) -> Vec<T> {
    let mut seen: Vec<(T, usize)> = Vec::new();
    for &i in members {
        let mut in_this_claim: Vec<K> = Vec::new();
        for item in named(i) {
            let k = key(&item);
            if in_this_claim.contains(&k) {
                continue;
            }
            match seen.iter_mut().find(|(s, _)| key(s) == k) {
                Some((_, n)) => *n += 1,
                None => seen.push((item, 1)),
            }
            in_this_claim.push(k);
        }
    }
    seen.into_iter()
        .filter(|&(_, n)| n >= 2)
        .map(|(item, _)| item)
        .collect()
}

/// Each member's cosine to the members' normalised mean.
fn centroid_similarities(emb: &Array2<f32>, members: &[usize]) -> Vec<f32> {
    let rows = emb.select(ndarray::Axis(0), members);
    let mut centre = rows.sum_axis(ndarray::Axis(0));
    let norm = centre.dot(&centre).sqrt().max(1e-12);
    centre /= norm;
    rows.dot(&centre).to_vec()
}

/// The member with the highest mean similarity to the others.
fn medoid(emb: &Array2<f32>, members: &[usize]) -> usize {
    let score = |i: usize| {
        members
            .iter()
            .map(|&j| emb.row(i).dot(&emb.row(j)))
            .sum::<f32>()
    };
    *members
        .iter()
        .max_by(|&&a, &&b| score(a).total_cmp(&score(b)))
        .expect("clusters have members")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::same_claim::SameClaimModel;
    use std::sync::Mutex;

    /// Keeps every dense-duplicates event.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(usize, usize)>>);

    impl Observer for Recorder {
        fn event(&self, event: &Event) {
            if let Event::DenseDuplicates { pairs, claims } = event {
                self.0.lock().unwrap().push((*pairs, *claims));
            }
        }
    }

    /// What `tell_if_dense` says of `groups` groups of `size` near copies, and
    /// how many duplicate pairs they have.
    fn told(groups: usize, size: usize) -> (Vec<(usize, usize)>, usize) {
        let model = SameClaimModel::built_in();
        let emb = crate::neighbours::near_duplicates(groups, size, 64, 0.05);
        // One word each, shared with no other claim.
        let texts: Vec<String> = (0..emb.nrows()).map(|i| format!("note{i}")).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let langs = vec![Lang::En; texts.len()];
        let pairs = ClaimPairs::new(emb, &texts, &langs, None).unwrap();
        let scorer = PairScorer::new(pairs, &model);
        let recorder = Recorder::default();
        let found = scorer.pairs_at_least(0.5);
        tell_if_dense(&scorer, &found, &recorder);
        (recorder.0.into_inner().unwrap(), found.len())
    }

    #[test]
    fn many_restatements_of_one_subject_are_told() {
        // Groups of 3: at most one pair a claim. Groups of 8: 3.5 a claim.
        let (sparse, found) = told(20, 3);
        assert_eq!(sparse, vec![]);
        assert!(found >= 40, "{found} pairs in groups of 3");
        let (dense, _) = told(10, 8);
        assert_eq!(dense.len(), 1);
        assert_eq!(dense[0].1, 80);
        assert!(dense[0].0 > 160, "{dense:?}");
    }
}
