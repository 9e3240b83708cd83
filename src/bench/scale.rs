//! `stancemap bench scale`: the neighbour and grouping stages of the main job on
//! synthetic claims, from thousands to a million, with the time and peak memory
//! of each stage.
//!
//! The claims mimic a corpus about one story: every vector leans on one shared
//! topic direction, on one of [`SUBTOPICS`] sub-topics, and the members of a
//! planted point (1–6 claims) on their point's centre, so unrelated claims score a
//! cosine near 0.6, claims on one sub-topic near 0.75 and claims of one point near
//! 0.93, as e5 embeddings of news do. A third of the claims are Chinese, and each
//! claim's text is drawn from its point's words, so every feature of the
//! same-claim model takes part. The planted points give the groups a check.

use std::collections::HashMap;
use std::time::Instant;

use ndarray::{Array1, Array2};
use serde::Serialize;

use super::{peak_rss_mib, reset_peak_rss};
use crate::cluster::{Agglomerative, Algorithm, Clustering};
use crate::corpus::Lang;
use crate::error::Result;
use crate::neighbours::recall_at;
pub use crate::neighbours::{ApproximateSearch, EXACT_LIMIT};
use crate::observer::Observer;
use crate::random::Xorshift;
use crate::same_claim::{ClaimPairs, NeighbourSearch, PairScorer, SameClaimModel};

/// Dimensions of the synthetic vectors (multilingual-e5-small's).
pub const DIM: usize = 384;

/// Sub-topics every claim leans on one of.
pub const SUBTOPICS: usize = 50;

/// Shares of a claim vector's squared length: the topic, its sub-topic, its
/// point's centre, its own noise.
const TOPIC: f32 = 0.6;
const SUBTOPIC: f32 = 0.15;
const POINT: f32 = 0.18;
const NOISE: f32 = 0.07;

/// Claims whose nearest neighbours are checked against brute force.
const RECALL_QUERIES: usize = 1_000;

/// Words a point's claims draw from, and how many each claim takes.
const POINT_WORDS: usize = 8;
const WORDS_PER_CLAIM: usize = 5;
/// Distinct words in the synthetic vocabulary.
const VOCABULARY: u64 = 20_000;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct ScaleOptions {
    /// Synthetic claims.
    pub claims: usize,
    /// The grouping cut (a same-claim probability).
    pub cut: f32,
    /// Seed of the synthetic corpus.
    pub seed: u64,
    /// Above this many claims neighbours come from the approximate search
    /// (default [`EXACT_LIMIT`]).
    pub exact_limit: usize,
    /// How neighbours are found above `exact_limit`.
    pub approximate: ApproximateSearch,
}

/// One stage's time and the process's peak memory while it ran.
#[derive(Debug, Clone, Serialize)]
pub struct StageFigures {
    pub stage: &'static str,
    pub seconds: f64,
    pub peak_rss_mib: Option<f64>,
}

/// One corpus size's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleRun {
    pub claims: usize,
    pub planted_points: usize,
    pub cut: f32,
    /// How neighbours were found: `exact` (blocked products), else the
    /// approximate search's name (`cells`, `hnsw`, `hnsw-rows`).
    pub neighbours: &'static str,
    pub stages: Vec<StageFigures>,
    /// Pairs at or above the cut.
    pub pairs: usize,
    pub groups: usize,
    /// Components grouped on their pairs alone (too large for a matrix).
    pub grouped_on_pairs: Vec<usize>,
    /// Of the pairs the groups join, the share a planted point joins too; and of
    /// the planted points' pairs, the share the groups join.
    pub pair_precision: f64,
    pub pair_recall: f64,
    /// Above the exact limit: of the 10 nearest claims (exact) of 1,000 claims, the
    /// share among the candidates found.
    pub neighbour_recall_at_10: Option<f64>,
}

/// A synthetic corpus: unit rows, their texts and languages, and the point each
/// claim was planted in.
pub struct SyntheticClaims {
    pub embeddings: Array2<f32>,
    pub texts: Vec<String>,
    pub langs: Vec<Lang>,
    pub points: Vec<usize>,
}

/// Runs the neighbour, pair and grouping stages on `opts.claims` synthetic claims
/// with the same-claim `model`; `log` receives a line as each stage starts and
/// one with its figures as it ends, `observer` the neighbour search's progress.
pub fn run(
    opts: &ScaleOptions,
    model: &SameClaimModel,
    observer: &dyn Observer,
    log: &mut dyn FnMut(&str),
) -> Result<ScaleRun> {
    let grouping = Algorithm::Agglomerative(Agglomerative { cut: opts.cut }).check()?;
    let n = opts.claims;
    let mut stages = Vec::new();
    let clock = Stopwatch::start("synthetic claims", n, log);
    let corpus = SyntheticClaims::generate(n, opts.seed);
    stages.push(clock.stop(log));

    let clock = Stopwatch::start("neighbours", n, log);
    let texts: Vec<&str> = corpus.texts.iter().map(String::as_str).collect();
    let (embeddings, langs) = (corpus.embeddings, &corpus.langs);
    let search = NeighbourSearch {
        exact_limit: opts.exact_limit,
        approximate: opts.approximate,
        observer,
    };
    let pairs = ClaimPairs::with_search(embeddings, &texts, langs, None, search)?;
    stages.push(clock.stop(log));
    let neighbours = match pairs.candidates() {
        None => "exact",
        Some(_) => opts.approximate.name(),
    };
    let neighbour_recall_at_10 = pairs
        .candidates()
        .map(|found| recall_at(pairs.moved(), found, RECALL_QUERIES));
    let scorer = PairScorer::new(pairs, model);

    let clock = Stopwatch::start("pairs at the cut", n, log);
    let found = scorer.pairs_at_least(opts.cut);
    stages.push(clock.stop(log));

    let clock = Stopwatch::start("grouping", n, log);
    let clustering = grouping.fit_with_pairs(&scorer, &found, observer)?;
    stages.push(clock.stop(log));

    let (pair_precision, pair_recall) = pair_agreement(&clustering, &corpus.points);
    Ok(ScaleRun {
        claims: n,
        planted_points: corpus.points.iter().max().map_or(0, |&p| p + 1),
        cut: opts.cut,
        neighbours,
        stages,
        pairs: found.len(),
        groups: clustering.n_clusters,
        grouped_on_pairs: clustering.grouped_on_pairs,
        pair_precision,
        pair_recall,
        neighbour_recall_at_10,
    })
}

/// A stage's start, as the peak RSS is reset for it.
struct Stopwatch {
    stage: &'static str,
    claims: usize,
    start: Instant,
}

impl Stopwatch {
    /// Starts timing `stage` on `claims` claims, and says so to `log`.
    fn start(stage: &'static str, claims: usize, log: &mut dyn FnMut(&str)) -> Self {
        log(&format!("{claims} claims: {stage}"));
        reset_peak_rss();
        Stopwatch {
            stage,
            claims,
            start: Instant::now(),
        }
    }

    /// The stage's figures, also told to `log`.
    fn stop(self, log: &mut dyn FnMut(&str)) -> StageFigures {
        let figures = StageFigures {
            stage: self.stage,
            seconds: self.start.elapsed().as_secs_f64(),
            peak_rss_mib: peak_rss_mib(),
        };
        let rss = figures.peak_rss_mib.unwrap_or(f64::NAN);
        log(&format!(
            "{} claims: {} took {:.1} s, peak RSS {rss:.0} MiB",
            self.claims, self.stage, figures.seconds
        ));
        figures
    }
}

/// Pair precision and recall of `clustering` against the planted `points`.
fn pair_agreement(clustering: &Clustering, points: &[usize]) -> (f64, f64) {
    let pairs_of = |k: usize| (k * k.saturating_sub(1) / 2) as f64;
    let mut cells: HashMap<(usize, usize), usize> = HashMap::new();
    let mut found = vec![0usize; clustering.n_clusters];
    let mut planted: HashMap<usize, usize> = HashMap::new();
    for (label, &point) in clustering.labels.iter().zip(points) {
        *planted.entry(point).or_default() += 1;
        if let Some(c) = *label {
            found[c] += 1;
            *cells.entry((c, point)).or_default() += 1;
        }
    }
    let both: f64 = cells.values().map(|&k| pairs_of(k)).sum();
    let found: f64 = found.iter().map(|&k| pairs_of(k)).sum();
    let planted: f64 = planted.values().map(|&k| pairs_of(k)).sum();
    (both / found.max(1.0), both / planted.max(1.0))
}

impl SyntheticClaims {
    /// `n` claims in points of 1–6 claims, deterministic from `seed`.
    pub fn generate(n: usize, seed: u64) -> Self {
        let mut random = Xorshift::seeded(seed);
        let topic = random.unit(DIM);
        let subtopics: Vec<Array1<f32>> = (0..SUBTOPICS).map(|_| random.unit(DIM)).collect();
        let mut corpus = SyntheticClaims {
            embeddings: Array2::zeros((n, DIM)),
            texts: Vec::with_capacity(n),
            langs: Vec::with_capacity(n),
            points: Vec::with_capacity(n),
        };
        let mut point = 0;
        while corpus.texts.len() < n {
            let size = (1 + random.below(6)).min(n - corpus.texts.len());
            let subtopic = &subtopics[random.below(SUBTOPICS)];
            let centre = random.unit(DIM);
            let words: Vec<u64> = (0..POINT_WORDS)
                .map(|_| random.below(VOCABULARY as usize) as u64)
                .collect();
            for _ in 0..size {
                let row = corpus.texts.len();
                let mut v = random.unit(DIM) * NOISE.sqrt();
                v.scaled_add(TOPIC.sqrt(), &topic);
                v.scaled_add(SUBTOPIC.sqrt(), subtopic);
                v.scaled_add(POINT.sqrt(), &centre);
                v /= v.dot(&v).sqrt();
                corpus.embeddings.row_mut(row).assign(&v);
                let lang = if random.below(3) == 0 {
                    Lang::Zh
                } else {
                    Lang::En
                };
                corpus.texts.push(claim_text(&words, lang, &mut random));
                corpus.langs.push(lang);
                corpus.points.push(point);
            }
            point += 1;
        }
        corpus
    }
}

/// A claim's text: [`WORDS_PER_CLAIM`] of its point's words in a random order and
/// one word of its own; English words are letters, Chinese ones two characters.
fn claim_text(words: &[u64], lang: Lang, random: &mut Xorshift) -> String {
    let mut chosen: Vec<u64> = (0..WORDS_PER_CLAIM)
        .map(|_| words[random.below(words.len())])
        .collect();
    chosen.push(random.below(VOCABULARY as usize) as u64);
    let spelled: Vec<String> = chosen.iter().map(|&w| spell(w, lang)).collect();
    match lang {
        Lang::Zh => spelled.concat() + "。",
        _ => spelled.join(" ") + ".",
    }
}

/// Word `w` spelled in `lang`'s script (no digits, so no figures are read).
fn spell(w: u64, lang: Lang) -> String {
    match lang {
        Lang::Zh => [w % 2_000, w / 2_000 + 2_000]
            .iter()
            .filter_map(|&k| char::from_u32(0x4E00 + k as u32))
            .collect(),
        _ => {
            let mut s = String::new();
            let mut k = w + 26 * 26;
            while k > 0 {
                s.push(char::from(b'a' + (k % 26) as u8));
                k /= 26;
            }
            s
        }
    }
}

/// The runs as a Markdown table.
pub fn format_table(runs: &[ScaleRun]) -> String {
    let mut out = String::from(
        "| claims | neighbours | stage | seconds | peak RSS MiB |\n|---|---|---|---|---|\n",
    );
    for run in runs {
        let how = run.neighbours;
        for s in &run.stages {
            let rss = s.peak_rss_mib.map_or("—".into(), |m| format!("{m:.0}"));
            out += &format!(
                "| {} | {how} | {} | {:.2} | {rss} |\n",
                run.claims, s.stage, s.seconds
            );
        }
    }
    out += "\n| claims | pairs ≥ cut | groups | components on pairs alone (claims, largest) | pair precision | pair recall | neighbour recall@10 |\n|---|---|---|---|---|---|---|\n";
    for run in runs {
        let sizes = &run.grouped_on_pairs;
        let largest = sizes.iter().max().unwrap_or(&0);
        let recall = run
            .neighbour_recall_at_10
            .map_or("— (exact)".into(), |r| format!("{r:.3}"));
        out += &format!(
            "| {} | {} | {} | {} ({}, {largest}) | {:.3} | {:.3} | {recall} |\n",
            run.claims,
            run.pairs,
            run.groups,
            sizes.len(),
            sizes.iter().sum::<usize>(),
            run.pair_precision,
            run.pair_recall
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_claims_score_like_news_embeddings() {
        let corpus = SyntheticClaims::generate(600, 7);
        let e = &corpus.embeddings;
        let (mut same, mut other) = (Vec::new(), Vec::new());
        for a in 0..200 {
            for b in a + 1..200 {
                let cosine = e.row(a).dot(&e.row(b));
                if corpus.points[a] == corpus.points[b] {
                    same.push(cosine);
                } else {
                    other.push(cosine);
                }
            }
        }
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!((0.88..0.97).contains(&mean(&same)), "{}", mean(&same));
        assert!((0.55..0.7).contains(&mean(&other)), "{}", mean(&other));
        assert!(corpus.langs.contains(&Lang::Zh) && corpus.langs.contains(&Lang::En));
        assert!(corpus
            .texts
            .iter()
            .all(|t| !t.chars().any(|c| c.is_ascii_digit())));
    }

    #[test]
    fn the_scale_run_finds_the_planted_points() {
        let opts = ScaleOptions {
            claims: 3_000,
            cut: 0.5,
            seed: 3,
            exact_limit: EXACT_LIMIT,
            approximate: ApproximateSearch::default(),
        };
        let run = run(
            &opts,
            &SameClaimModel::built_in(),
            &crate::Silent,
            &mut |_| {},
        )
        .unwrap();
        let names: Vec<&str> = run.stages.iter().map(|s| s.stage).collect();
        assert_eq!(
            names,
            [
                "synthetic claims",
                "neighbours",
                "pairs at the cut",
                "grouping"
            ]
        );
        assert!(run.neighbours == "exact" && run.groups > 100, "{run:?}");
        assert!(run.pair_precision > 0.8, "{run:?}");
        assert!(run.pair_recall > 0.5, "{run:?}");
        // The approximate search on the same claims finds (nearly) the same groups.
        let approximate = ScaleOptions {
            exact_limit: 0,
            ..opts
        };
        let indexed = super::run(
            &approximate,
            &SameClaimModel::built_in(),
            &crate::Silent,
            &mut |_| {},
        )
        .unwrap();
        assert!(indexed.neighbours == "cells" && run.neighbour_recall_at_10.is_none());
        let recall = indexed.neighbour_recall_at_10.unwrap();
        assert!(recall > 0.95, "neighbour recall@10 {recall}");
        assert!(
            (indexed.pair_precision - run.pair_precision).abs() < 0.02,
            "{indexed:?}"
        );
        assert!(
            (indexed.pair_recall - run.pair_recall).abs() < 0.02,
            "{indexed:?}"
        );
    }
}
