//! Language alignment. A multilingual encoder places a Chinese sentence and its
//! English translation apart by a nearly constant offset (for multilingual-e5-small
//! a translation pair scores 0.85 on average, a same-language paraphrase 0.9 and
//! more), so one threshold cannot group both. The offset is the mean English
//! embedding minus the mean Chinese one over parallel sentences; adding it to
//! Chinese rows (half of it to mixed ones) and re-normalising brings them into
//! English's neighbourhood. Chinese sentences also sit closer together than
//! English ones (unrelated pairs: 0.83 vs 0.74 mean cosine), so clustering puts
//! Chinese distances on English's scale. Both are measured per model from a
//! parallel file (the two sides say the same things), so they do not depend on
//! what a corpus happens to be about.

use std::collections::HashSet;
use std::path::Path;

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::corpus::Lang;
use crate::money::{self, Money};

/// The built-in parallel sentences (`models/align/en-zh.tsv`).
pub const DEFAULT_PAIRS: &str = include_str!("../models/align/en-zh.tsv");

/// Why parallel sentences could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AlignError {
    #[error("cannot read parallel sentences {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}:{line}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        message: String,
    },
}

/// English–Chinese sentence pairs: one per line, `english<TAB>chinese`, after an
/// `en<TAB>zh` header; `#` lines are comments.
#[derive(Debug, Clone)]
pub struct ParallelPairs {
    pub pairs: Vec<(String, String)>,
}

/// Pairs needed for a stable mean (the offset from 25 pairs already reaches 95%
/// of the translation recall of 500 on PAWS-X).
pub const MIN_PAIRS: usize = 20;

impl ParallelPairs {
    /// Reads a parallel file.
    pub fn load(path: &Path) -> Result<Self, AlignError> {
        let text = std::fs::read_to_string(path).map_err(|source| AlignError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses parallel sentences; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, AlignError> {
        let invalid = |line: usize, message: &str| AlignError::Invalid {
            origin: origin.to_string(),
            line,
            message: message.to_string(),
        };
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty());
        match lines.next() {
            Some((_, header)) if header.trim() == "en\tzh" => {}
            Some((n, _)) => return Err(invalid(n, "expected the header `en<TAB>zh`")),
            None => return Err(invalid(1, "no sentences")),
        }
        let mut pairs = Vec::new();
        for (n, line) in lines {
            let Some((en, zh)) = line.split_once('\t') else {
                return Err(invalid(n, "expected `english<TAB>chinese`"));
            };
            let (en, zh) = (en.trim(), zh.trim());
            if zh.contains('\t') {
                return Err(invalid(n, "more than two tab-separated columns"));
            }
            // Chinese sentences may carry Latin names, so only a swap is refused.
            if Lang::detect(en) == Lang::Zh || Lang::detect(zh) == Lang::En {
                return Err(invalid(
                    n,
                    "the first column must be English, the second Chinese",
                ));
            }
            pairs.push((en.to_string(), zh.to_string()));
        }
        if pairs.len() < MIN_PAIRS {
            return Err(invalid(
                text.lines().count(),
                &format!("{} pairs; at least {MIN_PAIRS} are needed", pairs.len()),
            ));
        }
        Ok(ParallelPairs { pairs })
    }

    /// Every sentence in the file, to keep them out of an evaluation.
    pub fn sentences(&self) -> HashSet<&str> {
        self.pairs
            .iter()
            .flat_map(|(en, zh)| [en.as_str(), zh.as_str()])
            .collect()
    }
}

/// The percentile of parallel-pair cosines the margin lifts to the duplicate
/// threshold: 3 (in-sample recall 97%) gives held-out PAWS-X translations a recall
/// of 0.95 at 0.91, the goal; 5 gave 0.92.
const FLOOR_PERCENT: usize = 3;

/// What a money amount named by both claims of a cross-language pair adds to its
/// score: the encoder reads `$500 million` and `5亿美元` as different tokens. On
/// cross-lingual STS-B dev pairs (an English sentence against the Chinese
/// translation of its partner), 0.04 gave the best average precision for pairs of
/// the same event (gold ≥ 3.5); see the README.
pub const SHARED_AMOUNT_BONUS: f32 = 0.04;

/// The offset that moves Chinese embeddings next to their English translations,
/// how close translations then are, and how much closer Chinese sentences sit.
#[derive(Debug, Clone)]
pub struct LanguageOffset {
    offset: Array1<f32>,
    /// The cosine that 97% of the parallel pairs reach once moved.
    translation_floor: f32,
    /// Mean cosine distance between unrelated English sentences over that between
    /// their Chinese translations.
    chinese_distance_scale: f32,
    /// What a shared money amount adds across languages.
    amount_bonus: f32,
}

/// Mean cosine between different rows of `m` (unit vectors).
fn mean_pair_cosine(m: ArrayView2<f32>) -> f32 {
    let n = m.nrows() as f32;
    let sum = m.sum_axis(Axis(0));
    (sum.dot(&sum) - n) / (n * (n - 1.0))
}

/// The share of the offset a text's row gets: 1 for Chinese, ½ for mixed, 0 for
/// English.
fn share(lang: Lang) -> f32 {
    match lang {
        Lang::Zh => 1.0,
        Lang::Mixed => 0.5,
        Lang::En => 0.0,
    }
}

impl LanguageOffset {
    /// Mean of `english` rows minus mean of `chinese` rows (embeddings of the same
    /// parallel pairs, row for row).
    pub fn fit(english: ArrayView2<f32>, chinese: ArrayView2<f32>) -> Self {
        assert_eq!(english.nrows(), chinese.nrows(), "parallel rows");
        let mean = |m: ArrayView2<f32>| m.mean_axis(Axis(0)).expect("pairs are not empty");
        let offset = mean(english) - mean(chinese);
        let mut cosines: Vec<f32> = english
            .rows()
            .into_iter()
            .zip(chinese.rows())
            .map(|(en, zh)| {
                let moved = &zh + &offset;
                en.dot(&moved) / moved.dot(&moved).sqrt().max(1e-12)
            })
            .collect();
        cosines.sort_by(f32::total_cmp);
        let chinese_distance_scale =
            (1.0 - mean_pair_cosine(english)) / (1.0 - mean_pair_cosine(chinese)).max(1e-6);
        LanguageOffset {
            offset,
            translation_floor: cosines[cosines.len() * FLOOR_PERCENT / 100],
            chinese_distance_scale,
            amount_bonus: SHARED_AMOUNT_BONUS,
        }
    }

    /// The same offset with `bonus` for a money amount both claims of a
    /// cross-language pair name (0 turns the signal off).
    pub fn with_amount_bonus(self, bonus: f32) -> Self {
        LanguageOffset {
            amount_bonus: bonus,
            ..self
        }
    }

    /// The cosine that 97% of the parallel pairs reach once moved.
    pub fn translation_floor(&self) -> f32 {
        self.translation_floor
    }

    /// How many times farther apart unrelated English sentences are than Chinese ones.
    pub fn chinese_distance_scale(&self) -> f32 {
        self.chinese_distance_scale
    }
}

/// How claims are compared across languages and how clustering sees distances
/// within one. A pair in one language keeps the encoder's cosine (for duplicate
/// pairs) and its distance on English's scale (for clustering: Chinese distances
/// times [`LanguageOffset::chinese_distance_scale`]). A pair across languages is
/// compared after the Chinese side is moved by the offset, plus a margin: even
/// moved, a translation scores below a same-language paraphrase, so the margin is
/// what the 3rd-percentile parallel pair lacks to reach the duplicate threshold
/// (scaled by how far apart the two texts' languages are), and a bonus when both
/// name the same money amount.
#[derive(Debug, Clone)]
pub struct CrossLingual {
    moved: Array2<f32>,
    shares: Vec<f32>,
    /// Each row's dot product with the offset, and its length once moved: with
    /// them a moved cosine follows from the plain one (no second matrix product).
    projections: Vec<f32>,
    moved_norms: Vec<f32>,
    offset_norm2: f32,
    margin: f32,
    chinese_distance_scale: f32,
    /// The money amounts each row's text names, and what sharing one adds.
    amounts: Vec<Vec<Money>>,
    amount_bonus: f32,
}

impl CrossLingual {
    /// For `emb` (rows of `texts`, in languages `langs`) at duplicate threshold
    /// `threshold`; `None` when every text is English (nothing to move or rescale).
    pub fn new(
        offset: &LanguageOffset,
        emb: &Array2<f32>,
        texts: &[&str],
        langs: &[Lang],
        threshold: f32,
    ) -> Option<Self> {
        let shares: Vec<f32> = langs.iter().map(|&l| share(l)).collect();
        if shares.iter().all(|&s| s == 0.0) {
            return None;
        }
        let offset_norm2 = offset.offset.dot(&offset.offset);
        let projections: Vec<f32> = emb
            .rows()
            .into_iter()
            .map(|r| r.dot(&offset.offset))
            .collect();
        let moved_norms: Vec<f32> = emb
            .rows()
            .into_iter()
            .zip(&shares)
            .zip(&projections)
            .map(|((r, &s), &a)| {
                (r.dot(&r) + 2.0 * s * a + s * s * offset_norm2)
                    .sqrt()
                    .max(1e-12)
            })
            .collect();
        // Each row plus its share of the offset (Chinese all of it, mixed half,
        // English none), over its moved length.
        let mut moved = emb.clone();
        for ((mut row, &s), &norm) in moved.rows_mut().into_iter().zip(&shares).zip(&moved_norms) {
            if s != 0.0 {
                row.scaled_add(s, &offset.offset);
                row /= norm;
            }
        }
        Some(CrossLingual {
            moved,
            shares,
            projections,
            moved_norms,
            offset_norm2,
            margin: (threshold - offset.translation_floor).max(0.0),
            chinese_distance_scale: offset.chinese_distance_scale,
            amounts: texts.iter().map(|t| money::amounts(t)).collect(),
            amount_bonus: offset.amount_bonus,
        })
    }

    /// The rows with Chinese ones moved next to English: one space for the map.
    pub fn moved(&self) -> &Array2<f32> {
        &self.moved
    }

    /// The rows that vectors of `emb` are compared as: the moved ones when `cross`
    /// mixes languages, else `emb` itself.
    pub fn space<'a>(cross: Option<&'a CrossLingual>, emb: &'a Array2<f32>) -> &'a Array2<f32> {
        cross
            .filter(|c| c.mixes_languages())
            .map_or(emb, CrossLingual::moved)
    }

    /// The most a cross-language pair's score can gain over its moved cosine:
    /// the margin (between English and Chinese) plus the amount bonus.
    pub fn largest_lift(&self) -> f32 {
        self.margin + self.amount_bonus
    }

    /// Whether the rows are in more than one language.
    pub fn mixes_languages(&self) -> bool {
        self.shares.iter().any(|&s| s != self.shares[0])
    }

    /// Whether rows `a` and `b` are in different languages.
    pub fn crosses(&self, a: usize, b: usize) -> bool {
        self.shares[a] != self.shares[b]
    }

    /// The duplicate score of rows `a` and `b` from their plain `cosine`: the cosine
    /// in one language; across languages, the moved cosine plus the margin, plus
    /// the amount bonus when both name the same money amount (at most 1).
    pub fn similarity(&self, a: usize, b: usize, cosine: f32) -> f32 {
        if !self.crosses(a, b) {
            return cosine;
        }
        let (sa, sb) = (self.shares[a], self.shares[b]);
        // (x_a + s_a·o)·(x_b + s_b·o), over the moved lengths.
        let moved = (cosine
            + sa * self.projections[b]
            + sb * self.projections[a]
            + sa * sb * self.offset_norm2)
            / (self.moved_norms[a] * self.moved_norms[b]);
        let bonus = if money::share_an_amount(&self.amounts[a], &self.amounts[b]) {
            self.amount_bonus
        } else {
            0.0
        };
        (moved + self.margin * (sa - sb).abs() + bonus).min(1.0)
    }

    /// The clustering distance of rows `a` and `b` from their plain `cosine`: on
    /// English's scale in one language, 1 − [`similarity`](Self::similarity) across.
    pub fn distance(&self, a: usize, b: usize, cosine: f32) -> f32 {
        if self.crosses(a, b) {
            return (1.0 - self.similarity(a, b, cosine)).max(0.0);
        }
        let scale = 1.0 + self.shares[a] * (self.chinese_distance_scale - 1.0);
        ((1.0 - cosine) * scale).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn built_in_pairs_parse() {
        let pairs = ParallelPairs::parse(DEFAULT_PAIRS, "en-zh.tsv").unwrap();
        assert_eq!(pairs.pairs.len(), 360);
        assert!(pairs.sentences().contains("本周金价创下新高。"));
    }

    #[test]
    fn bad_files_name_the_line() {
        let e = ParallelPairs::parse("en\tzh\nHello there.\n", "p.tsv").unwrap_err();
        assert_eq!(e.to_string(), "p.tsv:2: expected `english<TAB>chinese`");
        let e = ParallelPairs::parse("# c\nzh\ten\n", "p.tsv").unwrap_err();
        assert_eq!(e.to_string(), "p.tsv:2: expected the header `en<TAB>zh`");
        let e = ParallelPairs::parse("en\tzh\n你好。\tHello.\n", "p.tsv").unwrap_err();
        assert!(
            e.to_string().starts_with("p.tsv:2: the first column"),
            "{e}"
        );
        let e = ParallelPairs::parse("en\tzh\nGood morning.\t早上好。\n", "p.tsv").unwrap_err();
        assert!(e.to_string().contains("1 pairs; at least 20"), "{e}");
    }

    fn detect(texts: &[&str]) -> Vec<Lang> {
        texts.iter().map(|t| Lang::detect(t)).collect()
    }

    #[test]
    fn chinese_rows_move_english_rows_stay() {
        let english = array![[1.0f32, 0.0], [0.8, 0.6]];
        let chinese = array![[0.0f32, 1.0], [0.6, 0.8]];
        let offset = LanguageOffset::fit(english.view(), chinese.view());
        let plain = array![[0.0f32, 1.0], [1.0, 0.0]];
        let cross = CrossLingual::new(
            &offset,
            &plain,
            &["你好世界", "hello world"],
            &[Lang::Zh, Lang::En],
            0.9,
        )
        .unwrap();
        let emb = cross.moved();
        // (0,1) + (0.6,-0.6) = (0.6,0.4), normalised.
        let n = (0.36f32 + 0.16).sqrt();
        assert!((emb[[0, 0]] - 0.6 / n).abs() < 1e-6 && (emb[[0, 1]] - 0.4 / n).abs() < 1e-6);
        assert_eq!(emb.row(1).to_vec(), vec![1.0, 0.0]);
        // Moved, the parallel rows score (1,0)·(0.6,0.4)/n and (0.8,0.6)·(1.2,0.2)/m.
        assert!((offset.translation_floor() - 0.6 / n).abs() < 1e-6);
        // English rows: cosine 0.8, distance 0.2; Chinese rows: cosine 0.8 too.
        assert!((offset.chinese_distance_scale() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn pairs_across_languages_are_compared_moved_with_a_margin() {
        let english = array![[1.0f32, 0.0], [0.8, 0.6]];
        let chinese = array![[0.0f32, 1.0], [0.6, 0.8]];
        let offset = LanguageOffset::fit(english.view(), chinese.view());
        let emb = array![[0.0f32, 1.0], [1.0, 0.0], [0.0, 1.0]];
        let texts = ["你好世界", "hello world", "再见世界"];
        let cross = CrossLingual::new(&offset, &emb, &texts, &detect(&texts), 0.9).unwrap();
        assert!(cross.mixes_languages());
        assert!(
            CrossLingual::new(&offset, &emb, &["one", "two", "three"], &[Lang::En; 3], 0.9)
                .is_none()
        );
        let margin = 0.9 - offset.translation_floor();
        assert!((cross.largest_lift() - margin - SHARED_AMOUNT_BONUS).abs() < 1e-6);
        let cosine = |a: usize, b: usize| emb.row(a).dot(&emb.row(b));
        // One language: the encoder's cosine, untouched by the offset.
        assert!(!cross.crosses(0, 2));
        assert_eq!(cross.similarity(0, 2, cosine(0, 2)), 1.0);
        // Across: (0.6,0.4)/n · (1,0) plus the margin, the same as the moved rows'
        // own product.
        let n = (0.36f32 + 0.16).sqrt();
        assert!((cross.similarity(0, 1, cosine(0, 1)) - (0.6 / n + margin)).abs() < 1e-6);
        let moved = cross.moved().row(0).dot(&cross.moved().row(1));
        assert!((cross.similarity(0, 1, cosine(0, 1)) - (moved + margin)).abs() < 1e-6);
    }

    #[test]
    fn a_shared_money_amount_adds_the_bonus_across_languages_only() {
        let english = array![[1.0f32, 0.0], [0.8, 0.6]];
        let chinese = array![[0.0f32, 1.0], [0.6, 0.8]];
        let offset = LanguageOffset::fit(english.view(), chinese.view());
        let emb = array![[0.0f32, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]];
        let texts = [
            "签署价值5亿美元的备忘录",
            "a $500 million memorandum",
            "a $439 million memorandum",
            "a memorandum worth $500 million",
        ];
        let score = |offset: &LanguageOffset, a: usize, b: usize| {
            let cross = CrossLingual::new(offset, &emb, &texts, &detect(&texts), 0.9).unwrap();
            cross.similarity(a, b, emb.row(a).dot(&emb.row(b)))
        };
        let plain = offset.clone().with_amount_bonus(0.0);
        // The same amount across languages: the bonus; another amount: none.
        let bonus = score(&offset, 0, 1) - score(&plain, 0, 1);
        assert!((bonus - SHARED_AMOUNT_BONUS).abs() < 1e-6);
        assert_eq!(score(&offset, 0, 2), score(&plain, 0, 2));
        // In one language the encoder already sees the figure: no bonus.
        assert_eq!(score(&offset, 1, 3), score(&plain, 1, 3));
    }

    #[test]
    fn chinese_distances_are_put_on_englishs_scale() {
        // English rows 90° apart (mean cosine 0), Chinese ones 60° apart (0.5).
        let english = array![[1.0f32, 0.0], [0.0, 1.0]];
        let h = 0.75f32.sqrt();
        let chinese = array![[1.0f32, 0.0], [0.5, h]];
        let offset = LanguageOffset::fit(english.view(), chinese.view());
        assert!((offset.chinese_distance_scale() - 2.0).abs() < 1e-5);
        let emb = array![[1.0f32, 0.0], [0.5, h]];
        let cross =
            CrossLingual::new(&offset, &emb, &["你好", "再见"], &[Lang::Zh; 2], 0.9).unwrap();
        assert!(!cross.mixes_languages());
        assert!((cross.distance(0, 1, 0.9) - 0.2).abs() < 1e-6);
    }
}
