//! Language alignment. A multilingual encoder places a Chinese sentence and its
//! English translation apart by a nearly constant offset (for multilingual-e5-small
//! a translation pair scores 0.85 on average, a same-language paraphrase 0.9 and
//! more). The offset is the mean English embedding minus the mean Chinese one over
//! parallel sentences; adding it to Chinese rows (half of it to mixed ones) and
//! re-normalising brings them into English's neighbourhood. It is measured per
//! model from a parallel file (the two sides say the same things), so it does not
//! depend on what a corpus is about; the same-claim model
//! ([`crate::same_claim`]) compares claims after it.

use std::collections::HashSet;
use std::path::Path;

use ndarray::{Array1, ArrayView2, Axis};

use crate::corpus::Lang;

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

/// The percentile of parallel-pair cosines reported as how close translations
/// come once moved.
const FLOOR_PERCENT: usize = 3;

/// The offset that moves Chinese embeddings next to their English translations,
/// and how close translations then are.
#[derive(Debug, Clone)]
pub struct LanguageOffset {
    offset: Array1<f32>,
    /// The cosine that 97% of the parallel pairs reach once moved.
    translation_floor: f32,
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
        LanguageOffset {
            offset,
            translation_floor: cosines[cosines.len() * FLOOR_PERCENT / 100],
        }
    }

    /// The offset itself (added to a Chinese row before it is re-normalised).
    pub fn vector(&self) -> &Array1<f32> {
        &self.offset
    }

    /// The cosine that 97% of the parallel pairs reach once moved.
    pub fn translation_floor(&self) -> f32 {
        self.translation_floor
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

    #[test]
    fn the_offset_moves_chinese_rows_next_to_their_translations() {
        let english = array![[1.0f32, 0.0], [0.8, 0.6]];
        let chinese = array![[0.0f32, 1.0], [0.6, 0.8]];
        let offset = LanguageOffset::fit(english.view(), chinese.view());
        // Mean English (0.9, 0.3) minus mean Chinese (0.3, 0.9).
        let v = offset.vector();
        assert!(
            (v[0] - 0.6).abs() < 1e-6 && (v[1] + 0.6).abs() < 1e-6,
            "{v}"
        );
        // Moved, the first pair scores (1,0)·(0.6,0.4)/|(0.6,0.4)|.
        let n = (0.36f32 + 0.16).sqrt();
        assert!((offset.translation_floor() - 0.6 / n).abs() < 1e-6);
    }
}
