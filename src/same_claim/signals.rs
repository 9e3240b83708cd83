//! What a claim's text says beyond its embedding, read once per claim: its words
//! (English words, Chinese character pairs), word order (word pairs), the figures
//! it names and its length. Tokens are kept as sorted
//! 64-bit hashes so that two claims compare by one merge.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;

use regex::Regex;

use crate::corpus::segment::is_cjk;
use crate::corpus::Lang;
use crate::money::{self, Money};

/// English words too common to say what a claim is about.
const STOP: &[&str] = &[
    "the", "and", "for", "with", "that", "this", "from", "are", "was", "were", "has", "have",
    "had", "its", "their", "which", "will", "would", "can", "could", "not", "but", "also", "been",
    "into", "than", "they", "them", "his", "her", "our", "who", "all", "any",
];

static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[a-z0-9]+").expect("valid pattern"));
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d[\d,]*(?:\.\d+)?").expect("valid pattern"));

/// One claim's signals.
#[derive(Debug, Clone, Default)]
pub struct TextSignals {
    /// English content words, or Chinese character pairs and Latin words.
    words: Vec<u64>,
    /// Adjacent pairs of English words or of Chinese characters (word order).
    word_pairs: Vec<u64>,
    /// Money amounts, in one notation.
    amounts: Vec<Money>,
    /// Other numbers, digits only.
    numbers: Vec<u64>,
    /// Length in characters.
    pub chars: usize,
    /// A hash of the text as written, case and spacing aside.
    wording: u64,
}

fn hash(token: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    token.hash(&mut h);
    h.finish()
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v.dedup();
    v
}

/// Jaccard overlap of two sorted, deduplicated token lists (0 when both are empty).
fn jaccard(a: &[u64], b: &[u64]) -> f32 {
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - common;
    if union == 0 {
        0.0
    } else {
        common as f32 / union as f32
    }
}

impl TextSignals {
    /// Reads `text`, written in `lang`.
    pub fn read(text: &str, lang: Lang) -> Self {
        let lower = text.to_lowercase();
        let latin_words: Vec<&str> = WORD
            .find_iter(&lower)
            .map(|m| m.as_str())
            .filter(|w| w.len() > 2 && !STOP.contains(w))
            .collect();
        let han: Vec<char> = text
            .chars()
            .filter(|&c| is_cjk(c) && c.is_alphabetic())
            .collect();
        let han_pairs = || han.windows(2).map(|w| hash((w[0], w[1])));
        let (words, word_pairs) = if lang == Lang::En {
            let all: Vec<&str> = WORD.find_iter(&lower).map(|m| m.as_str()).collect();
            (
                latin_words.iter().map(hash).collect(),
                all.windows(2).map(|w| hash((w[0], w[1]))).collect(),
            )
        } else {
            let pairs: Vec<u64> = han_pairs().collect();
            let words = pairs.iter().copied().chain(latin_words.iter().map(hash));
            (words.collect(), pairs)
        };
        TextSignals {
            words: sorted(words),
            word_pairs: sorted(word_pairs),
            amounts: money::amounts(text),
            numbers: sorted(
                NUMBER
                    .find_iter(text)
                    .map(|m| hash(m.as_str().replace(',', "")))
                    .collect(),
            ),
            chars: text.chars().count(),
            wording: hash(lower.split_whitespace().collect::<Vec<_>>()),
        }
    }

    /// Whether two claims are the same text, case and spacing aside (a copy).
    pub fn same_wording(&self, other: &Self) -> bool {
        self.wording == other.wording
    }

    /// Share of words two claims have in common.
    pub fn word_overlap(&self, other: &Self) -> f32 {
        jaccard(&self.words, &other.words)
    }

    /// Share of adjacent word (or character) pairs in common.
    pub fn order_overlap(&self, other: &Self) -> f32 {
        jaccard(&self.word_pairs, &other.word_pairs)
    }

    /// `Some(true)` when both name figures and share one (a money amount in any
    /// notation, or a number), `Some(false)` when both name figures but none in
    /// common, `None` when either names none.
    pub fn figures_agree(&self, other: &Self) -> Option<bool> {
        let has = |s: &Self| !s.amounts.is_empty() || !s.numbers.is_empty();
        if !has(self) || !has(other) {
            return None;
        }
        Some(
            money::share_an_amount(&self.amounts, &other.amounts)
                || jaccard(&self.numbers, &other.numbers) > 0.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_amount_in_two_notations_agrees_and_another_clashes() {
        let en = TextSignals::read("The US signed a $500 million deal.", Lang::En);
        let zh = TextSignals::read("美国签署了价值5亿美元的协议。", Lang::Zh);
        let other = TextSignals::read("美国签署了价值4.39亿美元的协议。", Lang::Zh);
        let none = TextSignals::read("美国签署了协议。", Lang::Zh);
        assert_eq!(en.figures_agree(&zh), Some(true));
        assert_eq!(zh.figures_agree(&other), Some(false));
        assert_eq!(zh.figures_agree(&none), None);
    }

    #[test]
    fn word_order_tells_a_swap_from_a_copy() {
        let a = TextSignals::read("Paris is the capital of France", Lang::En);
        let b = TextSignals::read("France is the capital of Paris", Lang::En);
        assert_eq!(a.word_overlap(&b), 1.0);
        assert!(a.order_overlap(&b) < 0.5, "{}", a.order_overlap(&b));
        assert_eq!(a.order_overlap(&a), 1.0);
    }

    #[test]
    fn chinese_compares_by_character_pairs_and_latin_words() {
        let a = TextSignals::read("美国与巴基斯坦在Pasni港签署协议", Lang::Zh);
        let b = TextSignals::read("Pasni港的协议由美国签署", Lang::Zh);
        assert!(a.word_overlap(&b) > 0.2);
        let c = TextSignals::read("中国控制稀土精炼", Lang::Zh);
        assert_eq!(a.word_overlap(&c), 0.0);
        assert_eq!(TextSignals::read("", Lang::En).word_overlap(&a), 0.0);
    }
}
