//! Cluster keywords by class-based TF-IDF (as BERTopic does): a term scores by its
//! frequency in the cluster times log(1 + mean cluster size in terms / its
//! frequency over all clusters). Chinese is segmented into words by jieba, English
//! split on non-letters; stop words and one-character tokens are dropped.

use std::collections::HashMap;

use jieba_rs::Jieba;

use crate::corpus::segment::is_cjk;

const STOP_EN: &[&str] = &[
    "the", "and", "for", "with", "that", "this", "from", "are", "was", "were", "has", "have",
    "had", "its", "their", "which", "while", "will", "would", "can", "could", "may", "not", "but",
    "also", "been", "into", "such", "than", "more", "most", "other", "these", "those", "there",
    "they", "them", "about", "over", "due", "being", "both", "any", "all", "some", "what", "when",
    "where", "who", "how", "why", "our", "his", "her", "one", "two", "out", "after", "before",
    "through",
];
const STOP_ZH: &[&str] = &[
    "我们", "他们", "这个", "那个", "一个", "没有", "因为", "所以", "但是", "而且", "以及", "已经",
    "可以", "进行", "对于", "这些", "那些", "其中", "如果", "就是", "还是", "不是", "自己", "什么",
];

/// Segments text into keyword candidates.
pub struct Tokenizer {
    jieba: Jieba,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Self {
            jieba: Jieba::new(),
        }
    }
}

impl Tokenizer {
    /// Lower-cased content words of `text`.
    pub fn words(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for word in self.jieba.cut(text, false) {
            let word = word.word.trim();
            if word.chars().any(is_cjk) {
                if word.chars().count() >= 2 && word.chars().all(is_cjk) && !STOP_ZH.contains(&word)
                {
                    out.push(word.to_string());
                }
            } else {
                for w in word.split(|c: char| !c.is_alphanumeric()) {
                    let w = w.to_lowercase();
                    if w.chars().count() >= 3
                        && w.chars().any(char::is_alphabetic)
                        && !STOP_EN.contains(&w.as_str())
                    {
                        out.push(w);
                    }
                }
            }
        }
        out
    }

    /// The `top` keywords of each cluster, given each cluster's member texts.
    pub fn cluster_keywords(&self, clusters: &[Vec<&str>], top: usize) -> Vec<Vec<String>> {
        let counts: Vec<HashMap<String, usize>> = clusters
            .iter()
            .map(|texts| {
                let mut c = HashMap::new();
                for t in texts {
                    for w in self.words(t) {
                        *c.entry(w).or_insert(0) += 1;
                    }
                }
                c
            })
            .collect();
        let mut total: HashMap<&str, usize> = HashMap::new();
        for c in &counts {
            for (w, &n) in c {
                *total.entry(w.as_str()).or_insert(0) += n;
            }
        }
        let mean_size = counts
            .iter()
            .map(|c| c.values().sum::<usize>())
            .sum::<usize>() as f64
            / counts.len().max(1) as f64;
        counts
            .iter()
            .map(|c| {
                let size = c.values().sum::<usize>().max(1) as f64;
                let mut scored: Vec<(&String, f64)> = c
                    .iter()
                    .map(|(w, &n)| {
                        let idf = (1.0 + mean_size / total[w.as_str()] as f64).ln();
                        (w, n as f64 / size * idf)
                    })
                    .collect();
                scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
                scored
                    .into_iter()
                    .take(top)
                    .map(|(w, _)| w.clone())
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_segmented_into_words() {
        let words = Tokenizer::default().words("中国稀土出口管制 and the export controls");
        assert!(words.contains(&"稀土".to_string()), "{words:?}");
        assert!(words.contains(&"export".to_string()));
        assert!(!words.iter().any(|w| w == "the"));
        assert!(words.iter().all(|w| w.chars().count() >= 2));
    }

    #[test]
    fn distinctive_terms_rank_first() {
        let t = Tokenizer::default();
        let kw = t.cluster_keywords(
            &[
                vec!["rare earth magnets", "rare earth mines"],
                vec!["oil port", "oil reserves"],
            ],
            1,
        );
        assert_eq!(kw, [vec!["earth".to_string()], vec!["oil".to_string()]]);
    }
}
