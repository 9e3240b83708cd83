//! Quality on third-party labelled data (`../shared/eval/`, dev splits): pair sets
//! (similarity, paraphrase, claim matching) and clustering sets.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use ndarray::Array2;
use serde::Serialize;

use crate::align::LanguageOffset;
use crate::cluster::{root, Grouping};
use crate::corpus::Lang;
use crate::error::{Error, Result};
use crate::same_claim::fit::{in_calibration_part, LabelledSet};
use crate::same_claim::{ClaimPairs, PairScorer, ReadPairs, SameClaimModel};

/// Embeds passages (through the cache, when the caller has one).
pub type EmbedPassages<'a> = dyn FnMut(&[&str]) -> Result<Array2<f32>> + 'a;

pub mod stance;

/// Figures for one pair set.
#[derive(Debug, Clone, Serialize)]
pub struct PairScores {
    pub set: String,
    pub pairs: usize,
    pub spearman: f64,
    pub pearson: f64,
    /// Average precision of the positives (label 1, or 5 on 0–5 sets with a 3 level, else ≥ 4).
    pub average_precision: f64,
    pub best_f1: f64,
    pub best_f1_threshold: f32,
    /// Precision and recall at the duplicate threshold in use.
    pub precision_at_threshold: f64,
    pub recall_at_threshold: f64,
    /// On 0–5 sets with a same-topic level (Sohu: 5 same event, 3 same topic):
    /// the average precision of 5 against 3 alone.
    pub same_event_ap: Option<f64>,
    /// The share of the set's negatives at or above the duplicate threshold:
    /// on a set of negatives only, the one figure that means anything (on a set
    /// of positives only, that figure is `recall_at_threshold`).
    pub negatives_called_same: f64,
    /// How many rows are positives.
    pub positives: usize,
}

/// Figures for one clustering set and algorithm.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterScores {
    pub set: String,
    pub texts: usize,
    pub algorithm: String,
    pub clusters: usize,
    pub v_measure: f64,
    pub ari: f64,
}

impl PairScores {
    /// The Markdown table header, with the duplicate threshold in use.
    pub fn table_header(threshold: f32) -> String {
        format!(
            "| set | rows | Spearman | Pearson | AP | best F1 (at p) | P / R at p ≥ {threshold} |\n\
             |---|---|---|---|---|---|---|"
        )
    }

    /// One Markdown table row (two for a set with a same-topic level: the second
    /// is same event against same topic alone).
    pub fn table_row(&self) -> String {
        let one_label = match self.positives {
            0 => Some(("negatives", self.negatives_called_same)),
            n if n == self.pairs => Some(("positives", self.recall_at_threshold)),
            _ => None,
        };
        match one_label {
            Some((only, called)) => format!(
                "| {} ({only} only) | {} | | | | | called the same: {called:.3} |",
                self.set, self.pairs
            ),
            None => self.full_row(),
        }
    }

    /// The row of a set with both labels.
    fn full_row(&self) -> String {
        let same_event = self.same_event_ap.map_or(String::new(), |ap| {
            format!("\n| {} (5 vs 3) | | | | {ap:.3} | | |", self.set)
        });
        format!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} ({:.3}) | {:.3} / {:.3} |{same_event}",
            self.set,
            self.pairs,
            self.spearman,
            self.pearson,
            self.average_precision,
            self.best_f1,
            self.best_f1_threshold,
            self.precision_at_threshold,
            self.recall_at_threshold
        )
    }
}

impl ClusterScores {
    /// The Markdown table header.
    pub const TABLE_HEADER: &'static str =
        "| set | texts | algorithm | clusters | V-measure | ARI |\n|---|---|---|---|---|---|";

    /// One Markdown table row.
    pub fn table_row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {:.3} | {:.3} |",
            self.set, self.texts, self.algorithm, self.clusters, self.v_measure, self.ari
        )
    }
}

/// How a set is read and scored: the duplicate threshold (a probability), the
/// language offset and same-claim model that compare pairs, a row limit, and the
/// texts that something was fitted on (rows with one are left out; so are the
/// rows the same-claim model was fitted on).
pub struct EvalOptions<'a> {
    pub threshold: f32,
    pub offset: Option<&'a LanguageOffset>,
    pub same_claim: &'a SameClaimModel,
    pub limit: Option<usize>,
    pub held_out: HashSet<&'a str>,
    /// Reads the pairs in doubt again, two texts at a time (the engine's pair
    /// reader), if any.
    pub read_pairs: Option<&'a ReadPairs<'a>>,
}

impl EvalOptions<'_> {
    /// Whether a row of set `set` whose first text is `text1` is scored: not one
    /// the same-claim model was fitted on.
    fn scores_row(&self, set: &str, text1: &str) -> bool {
        !self.same_claim.fitted_on.iter().any(|s| s == set) || in_calibration_part(text1)
    }
}

/// Reads a TSV pair set's rows (`text1 text2 label`), leaving out those with a
/// `held_out` text.
fn read_pairs<'t>(
    path: &Path,
    text: &'t str,
    held_out: &HashSet<&str>,
) -> Result<Vec<(&'t str, &'t str, f64)>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 3 {
            return Err(Error::record(
                path,
                i + 1,
                "expected 3 tab-separated columns",
            ));
        }
        let label: f64 = cols[2]
            .trim()
            .parse()
            .map_err(|e| Error::record(path, i + 1, format_args!("label: {e}")))?;
        if !held_out.contains(cols[0]) && !held_out.contains(cols[1]) {
            rows.push((cols[0], cols[1], label));
        }
    }
    Ok(rows)
}

/// A pair set's rows as they are scored: held-out texts and the rows the
/// same-claim model was fitted on left out, up to the row limit.
fn scored_pairs<'t>(
    path: &Path,
    text: &'t str,
    opts: &EvalOptions,
) -> Result<Vec<(&'t str, &'t str, f64)>> {
    let set = set_name(path);
    let mut rows = read_pairs(path, text, &opts.held_out)?;
    rows.retain(|r| opts.scores_row(&set, r.0));
    rows.truncate(opts.limit.unwrap_or(usize::MAX));
    Ok(rows)
}

/// The distinct texts of `pairs` and, per pair, the index of each side.
pub(crate) fn distinct_texts<'t>(
    pairs: impl IntoIterator<Item = (&'t str, &'t str)>,
) -> (Vec<&'t str>, Vec<(usize, usize)>) {
    let sides: Vec<&str> = pairs.into_iter().flat_map(|(a, b)| [a, b]).collect();
    let (texts, rows) = crate::engine::distinct(&sides);
    (texts, rows.chunks(2).map(|r| (r[0], r[1])).collect())
}

/// The two texts of each row.
fn sides_of<'r, 't>(
    rows: &'r [(&'t str, &'t str, f64)],
) -> impl Iterator<Item = (&'t str, &'t str)> + 'r {
    rows.iter().map(|r| (r.0, r.1))
}

/// The pairs of `texts` in their own corpus, ready for the same-claim model.
fn claim_pairs(
    texts: &[&str],
    embed: &mut EmbedPassages,
    offset: Option<&LanguageOffset>,
) -> Result<ClaimPairs> {
    let emb = embed(texts)?;
    ClaimPairs::new(emb, texts, &languages(texts), offset)
}

/// Reads a pair set for fitting the same-claim model: every row (held-out texts
/// aside) with its features, whether it is the same claim (STS: ≥ 4 yes, ≤ 2 no,
/// between left out; 0–5 sets with a same-topic level: 5 yes) and whether it is in
/// the calibration part. Rows with a `held_out` text are left out; `offset`
/// moves Chinese texts.
pub fn labelled_pairs(
    path: &Path,
    embed: &mut EmbedPassages,
    offset: Option<&LanguageOffset>,
    held_out: &HashSet<&str>,
) -> Result<LabelledSet> {
    let text = read_set(path)?;
    let mut rows = read_pairs(path, &text, held_out)?;
    let labels: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let positive_at = positive_at(&labels);
    if positive_at == 4.0 {
        rows.retain(|r| r.2 >= 4.0 || r.2 <= 2.0);
    }
    let (texts, sides) = distinct_texts(sides_of(&rows));
    let pairs = claim_pairs(&texts, embed, offset)?;
    Ok(LabelledSet {
        name: set_name(path),
        features: sides.iter().map(|&(a, b)| pairs.features(a, b)).collect(),
        same: rows.iter().map(|r| r.2 >= positive_at).collect(),
        calibration: rows.iter().map(|r| in_calibration_part(r.0)).collect(),
        weight: 1.0,
    })
}

/// A labelled pair for training the encoder: its texts, whether they state the
/// same claim (as [`labelled_pairs`] decides) and whether the row is in the part
/// kept apart (never trained on).
pub struct TrainingPair {
    pub set: String,
    pub texts: (String, String),
    pub same: bool,
    pub kept_apart: bool,
}

/// Reads a pair set's rows as [`labelled_pairs`] does, without embedding them.
pub fn training_pairs(path: &Path, held_out: &HashSet<&str>) -> Result<Vec<TrainingPair>> {
    let text = read_set(path)?;
    let rows = read_pairs(path, &text, held_out)?;
    let labels: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let positive_at = positive_at(&labels);
    Ok(rows
        .iter()
        .filter(|r| positive_at != 4.0 || r.2 >= 4.0 || r.2 <= 2.0)
        .map(|r| TrainingPair {
            set: set_name(path),
            texts: (r.0.to_string(), r.1.to_string()),
            same: r.2 >= positive_at,
            kept_apart: in_calibration_part(r.0),
        })
        .collect())
}

/// Reads a TSV pair set (`text1 text2 label`), embeds its texts and scores each
/// pair's same-claim probability, the set's texts being its corpus.
pub fn pairs(path: &Path, embed: &mut EmbedPassages, opts: &EvalOptions) -> Result<PairScores> {
    let text = read_set(path)?;
    let rows = scored_pairs(path, &text, opts)?;
    let threshold = opts.threshold;
    let (texts, sides) = distinct_texts(sides_of(&rows));
    let scorer = PairScorer::new(claim_pairs(&texts, embed, opts.offset)?, opts.same_claim);
    let scorer = match opts.read_pairs {
        Some(read) => scorer.reread_among(&sides, &texts, read)?,
        None => scorer,
    };
    let scores: Vec<f32> = sides
        .iter()
        .map(|&(a, b)| scorer.probability(a, b))
        .collect();
    let labels: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let cosines: Vec<f64> = scores.iter().map(|&s| s as f64).collect();
    let positive_at = positive_at(&labels);
    let positive: Vec<bool> = labels.iter().map(|&l| l >= positive_at).collect();
    let (best_f1, best_f1_threshold) = best_f1(&scores, &positive);
    let called = AtThreshold::count(&scores, &positive, threshold);
    Ok(PairScores {
        set: set_name(path),
        pairs: rows.len(),
        spearman: spearman(&cosines, &labels),
        pearson: pearson(&cosines, &labels),
        average_precision: average_precision(&scores, &positive),
        best_f1,
        best_f1_threshold,
        precision_at_threshold: called.precision(),
        recall_at_threshold: called.recall(),
        same_event_ap: same_event_ap(&scores, &labels, positive_at),
        negatives_called_same: called.negatives_called_same(),
        positives: called.positives,
    })
}

/// On sets with a same-topic level (3) under the positive one (5): the average
/// precision of the positives against that level alone.
fn same_event_ap(scores: &[f32], labels: &[f64], positive_at: f64) -> Option<f64> {
    if positive_at != 5.0 {
        return None;
    }
    let (kept, positive): (Vec<f32>, Vec<bool>) = scores
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l == 5.0 || l == 3.0)
        .map(|(&s, &l)| (s, l == 5.0))
        .unzip();
    Some(average_precision(&kept, &positive))
}

/// Reads a clustering set (`{"text","label"}` lines), embeds it once and scores each
/// algorithm. A TSV pair set counts too: texts joined by positive pairs form the
/// gold groups (a sentence and its translation, say), the others stand alone.
pub fn clusters(
    path: &Path,
    embed: &mut EmbedPassages,
    algorithms: &[Grouping],
    opts: &EvalOptions,
) -> Result<Vec<ClusterScores>> {
    let text = read_set(path)?;
    let (texts, gold) = if path.extension().is_some_and(|e| e == "tsv") {
        groups_of_pairs(&scored_pairs(path, &text, opts)?)
    } else {
        read_groups(path, &text, opts.limit)?
    };
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let scorer = PairScorer::new(claim_pairs(&refs, embed, opts.offset)?, opts.same_claim);
    let scorer = match opts.read_pairs {
        Some(read) => scorer.reread(&refs, read)?,
        None => scorer,
    };
    let gold = to_ids(&gold);
    algorithms
        .iter()
        .map(|algorithm| {
            let c = algorithm.fit(&scorer)?;
            // Each singleton is its own cluster for the metrics.
            let predicted: Vec<usize> = c
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| l.unwrap_or(c.n_clusters + i))
                .collect();
            Ok(ClusterScores {
                set: set_name(path),
                texts: texts.len(),
                algorithm: algorithm.to_string(),
                clusters: c.n_clusters,
                v_measure: v_measure(&gold, &predicted),
                ari: adjusted_rand(&gold, &predicted),
            })
        })
        .collect()
}

/// Reads a whole evaluation set.
fn read_set(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, "cannot read", e))
}

/// Each text's language (a set has no corpus to take it from).
fn languages(texts: &[&str]) -> Vec<Lang> {
    texts.iter().map(|t| Lang::detect(t)).collect()
}

/// The label from which a pair is positive: 1 on 0/1 sets, 5 on sets labelled
/// 0, 3 and 5 only (Sohu: unrelated, same topic, same event), else 4 (STS).
fn positive_at(labels: &[f64]) -> f64 {
    let max = labels.iter().copied().fold(0.0, f64::max);
    if max <= 1.0 {
        1.0
    } else if labels.iter().all(|l| [0.0, 3.0, 5.0].contains(l)) {
        5.0
    } else {
        4.0
    }
}

/// Reads `{"text","label"}` lines: the texts and their gold groups.
fn read_groups(
    path: &Path,
    text: &str,
    limit: Option<usize>,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut texts = Vec::new();
    let mut gold = Vec::new();
    for (i, line) in text.lines().enumerate().take(limit.unwrap_or(usize::MAX)) {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| Error::record(path, i + 1, e))?;
        let (Some(t), Some(l)) = (v["text"].as_str(), v["label"].as_str()) else {
            return Err(Error::record(
                path,
                i + 1,
                "needs string \"text\" and \"label\"",
            ));
        };
        texts.push(t.to_string());
        gold.push(l.to_string());
    }
    Ok((texts, gold))
}

/// The distinct texts of a pair set and their gold groups: the texts that positive
/// pairs join (union-find); a text in no positive pair is a group of its own.
fn groups_of_pairs(rows: &[(&str, &str, f64)]) -> (Vec<String>, Vec<String>) {
    let (texts, sides) = distinct_texts(sides_of(rows));
    let labels: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let positive_at = positive_at(&labels);
    let mut parent: Vec<usize> = (0..texts.len()).collect();
    for (&(a, b), &label) in sides.iter().zip(&labels) {
        if label >= positive_at {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            parent[ra] = rb;
        }
    }
    let gold = (0..texts.len())
        .map(|i| root(&mut parent, i).to_string())
        .collect();
    (texts.into_iter().map(str::to_string).collect(), gold)
}

/// A set's name: its file name without the extension.
pub fn set_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn to_ids(labels: &[String]) -> Vec<usize> {
    let mut ids = HashMap::new();
    labels
        .iter()
        .map(|l| {
            let n = ids.len();
            *ids.entry(l.clone()).or_insert(n)
        })
        .collect()
}

fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            r[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman rank correlation (ties get mean ranks).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&ranks(x), &ranks(y))
}

/// Pearson correlation.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

fn by_score_desc(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// Average precision of ranking by score.
pub fn average_precision(scores: &[f32], positive: &[bool]) -> f64 {
    let total = positive.iter().filter(|&&p| p).count().max(1) as f64;
    let mut hits = 0.0;
    let mut sum = 0.0;
    for (rank, i) in by_score_desc(scores).into_iter().enumerate() {
        if positive[i] {
            hits += 1.0;
            sum += hits / (rank + 1) as f64;
        }
    }
    sum / total
}

/// The best F1 over thresholds, and the threshold.
pub fn best_f1(scores: &[f32], positive: &[bool]) -> (f64, f32) {
    let total = positive.iter().filter(|&&p| p).count() as f64;
    let (mut hits, mut best) = (0.0, (0.0, 1.0));
    for (rank, i) in by_score_desc(scores).into_iter().enumerate() {
        if positive[i] {
            hits += 1.0;
        }
        let f1 = 2.0 * hits / (rank as f64 + 1.0 + total);
        if f1 > best.0 {
            best = (f1, scores[i]);
        }
    }
    best
}

/// How a set's pairs fall at a threshold: the positives and negatives, and how
/// many of each are at or above it.
struct AtThreshold {
    positives: usize,
    negatives: usize,
    positives_called: usize,
    negatives_called: usize,
}

impl AtThreshold {
    fn count(scores: &[f32], positive: &[bool], threshold: f32) -> Self {
        let mut at = AtThreshold {
            positives: 0,
            negatives: 0,
            positives_called: 0,
            negatives_called: 0,
        };
        for (&s, &p) in scores.iter().zip(positive) {
            let called = usize::from(s >= threshold);
            if p {
                at.positives += 1;
                at.positives_called += called;
            } else {
                at.negatives += 1;
                at.negatives_called += called;
            }
        }
        at
    }

    /// 1 when nothing is called the same.
    fn precision(&self) -> f64 {
        let called = self.positives_called + self.negatives_called;
        if called == 0 {
            1.0
        } else {
            self.positives_called as f64 / called as f64
        }
    }

    fn recall(&self) -> f64 {
        self.positives_called as f64 / self.positives.max(1) as f64
    }

    fn negatives_called_same(&self) -> f64 {
        self.negatives_called as f64 / self.negatives.max(1) as f64
    }
}

fn contingency(a: &[usize], b: &[usize]) -> HashMap<(usize, usize), f64> {
    let mut t = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *t.entry((x, y)).or_insert(0.0) += 1.0;
    }
    t
}

fn entropy(labels: &[usize]) -> f64 {
    let n = labels.len() as f64;
    let mut counts: HashMap<usize, f64> = HashMap::new();
    for &l in labels {
        *counts.entry(l).or_insert(0.0) += 1.0;
    }
    counts.values().map(|&c| -(c / n) * (c / n).ln()).sum()
}

/// V-measure: harmonic mean of homogeneity and completeness.
pub fn v_measure(gold: &[usize], predicted: &[usize]) -> f64 {
    let n = gold.len() as f64;
    let table = contingency(gold, predicted);
    let mut gold_n: HashMap<usize, f64> = HashMap::new();
    let mut pred_n: HashMap<usize, f64> = HashMap::new();
    for (&(g, p), &c) in &table {
        *gold_n.entry(g).or_insert(0.0) += c;
        *pred_n.entry(p).or_insert(0.0) += c;
    }
    let h_gold_given_pred: f64 = table
        .iter()
        .map(|(&(_, p), &c)| -(c / n) * (c / pred_n[&p]).ln())
        .sum();
    let h_pred_given_gold: f64 = table
        .iter()
        .map(|(&(g, _), &c)| -(c / n) * (c / gold_n[&g]).ln())
        .sum();
    let (hg, hp) = (entropy(gold), entropy(predicted));
    let homogeneity = if hg == 0.0 {
        1.0
    } else {
        1.0 - h_gold_given_pred / hg
    };
    let completeness = if hp == 0.0 {
        1.0
    } else {
        1.0 - h_pred_given_gold / hp
    };
    if homogeneity + completeness == 0.0 {
        0.0
    } else {
        2.0 * homogeneity * completeness / (homogeneity + completeness)
    }
}

/// Adjusted Rand index.
pub fn adjusted_rand(gold: &[usize], predicted: &[usize]) -> f64 {
    let pairs = |x: f64| x * (x - 1.0) / 2.0;
    let table = contingency(gold, predicted);
    let mut gold_n: HashMap<usize, f64> = HashMap::new();
    let mut pred_n: HashMap<usize, f64> = HashMap::new();
    for (&(g, p), &c) in &table {
        *gold_n.entry(g).or_insert(0.0) += c;
        *pred_n.entry(p).or_insert(0.0) += c;
    }
    let index: f64 = table.values().map(|&c| pairs(c)).sum();
    let a: f64 = gold_n.values().map(|&c| pairs(c)).sum();
    let b: f64 = pred_n.values().map(|&c| pairs(c)).sum();
    let expected = a * b / pairs(gold.len() as f64);
    let max = (a + b) / 2.0;
    if max == expected {
        1.0
    } else {
        (index - expected) / (max - expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_known_cases() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 90.0]) - 1.0).abs() < 1e-12);
        // numpy: corrcoef([1,2,3],[10,20,90])[0,1] = 0.91766...
        assert!((pearson(&[1.0, 2.0, 3.0], &[10.0, 20.0, 90.0]) - 0.917663).abs() < 1e-5);
        assert!(
            (average_precision(&[0.9, 0.8, 0.1], &[true, false, true]) - (1.0 + 2.0 / 3.0) / 2.0)
                .abs()
                < 1e-12
        );
        let (f1, t) = best_f1(&[0.9, 0.8, 0.1], &[true, true, false]);
        assert_eq!((f1, t), (1.0, 0.8));
        assert!((v_measure(&[0, 0, 1, 1], &[5, 5, 7, 7]) - 1.0).abs() < 1e-12);
        assert!((adjusted_rand(&[0, 0, 1, 1], &[1, 1, 0, 0]) - 1.0).abs() < 1e-12);
        // sklearn: adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 0.5714...
        assert!((adjusted_rand(&[0, 0, 1, 1], &[0, 0, 1, 2]) - 0.571428).abs() < 1e-5);
        // sklearn: v_measure_score([0,0,1,1],[0,0,1,2]) = 0.8
        assert!((v_measure(&[0, 0, 1, 1], &[0, 0, 1, 2]) - 0.8).abs() < 1e-9);
    }

    #[test]
    fn pairs_at_a_threshold_give_precision_recall_and_negatives_called_the_same() {
        let at = AtThreshold::count(
            &[0.9, 0.6, 0.4, 0.7, 0.1],
            &[true, true, true, false, false],
            0.5,
        );
        assert_eq!((at.precision(), at.recall()), (2.0 / 3.0, 2.0 / 3.0));
        assert_eq!(at.negatives_called_same(), 0.5);
        let none = AtThreshold::count(&[0.1], &[false], 0.5);
        assert_eq!(
            (none.precision(), none.recall(), none.positives),
            (1.0, 0.0, 0)
        );
    }

    #[test]
    fn a_set_of_one_label_is_told_by_the_share_called_the_same() {
        let scores = PairScores {
            set: "one_story".into(),
            pairs: 4,
            spearman: f64::NAN,
            pearson: f64::NAN,
            average_precision: 0.0,
            best_f1: 0.0,
            best_f1_threshold: 1.0,
            precision_at_threshold: 0.0,
            recall_at_threshold: 0.0,
            same_event_ap: None,
            negatives_called_same: 0.25,
            positives: 0,
        };
        let row = scores.table_row();
        assert!(row.contains("one_story (negatives only) | 4 |"), "{row}");
        assert!(
            row.contains("called the same: 0.250") && !row.contains("NaN"),
            "{row}"
        );
        let restated = PairScores {
            set: "restated".into(),
            positives: 4,
            recall_at_threshold: 0.75,
            ..scores
        };
        let row = restated.table_row();
        assert!(
            row.contains("restated (positives only) | 4 |")
                && row.contains("called the same: 0.750")
                && !row.contains("NaN"),
            "{row}"
        );
    }

    #[test]
    fn positive_pairs_join_groups_and_other_texts_stand_alone() {
        let rows = [
            ("a", "b", 1.0),
            ("b", "c", 1.0),
            ("d", "a", 0.0),
            ("e", "d", 0.0),
        ];
        let (texts, gold) = groups_of_pairs(&rows);
        assert_eq!(texts, ["a", "b", "c", "d", "e"]);
        assert!(gold[0] == gold[1] && gold[1] == gold[2]);
        assert!(gold[3] != gold[0] && gold[4] != gold[0] && gold[3] != gold[4]);
    }
}
