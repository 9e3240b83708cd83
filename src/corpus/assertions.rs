//! One claim per assertion: a sentence that joins independent assertions is split
//! where a comma is followed by a connector that starts a clause of its own —
//! English `but`, `while`, `whereas`, `and` (when a subject and a verb follow),
//! or a semicolon; Chinese `而` and `同时` (`；` already ends a sentence) — and only
//! when both sides stand as a claim (a verb in English, enough characters in
//! Chinese). Chinese `但` is left alone: what follows it usually drops the subject
//! it shares (`美国试图复制模式，但缺乏核心技术`), so neither side would stand. A
//! subordinate clause stays whole (`Although …, …`; `不是…而是…`, `而非`), so do
//! quotations, and numbers never split (the comma must be followed by a space or be
//! a Chinese comma). The connector itself belongs to neither side.

use std::ops::Range;

use super::segment::is_cjk;

/// Fewest words each English side needs.
const MIN_WORDS: usize = 5;
/// Fewest Chinese characters each Chinese side needs.
const MIN_HAN: usize = 8;

/// English connectors after `, ` that start an independent clause; `and` only
/// when [`starts_clause`] holds.
const EN_CONNECTORS: [&str; 4] = ["but ", "while ", "whereas ", "and "];
/// Chinese connectors after a comma.
const ZH_CONNECTORS: [&str; 2] = ["同时", "而"];
/// What may follow `而` without it being a connector (`而是`, `而非`, `而言`,
/// `而已`; `而且` joins two predicates of one subject).
const NOT_AFTER_ER: [char; 5] = ['是', '非', '言', '已', '且'];

/// Subjects that may open a clause after `, and`.
const SUBJECTS: [&str; 14] = [
    "it", "they", "he", "she", "we", "the", "this", "these", "those", "its", "their", "there",
    "china", "pakistan",
];
/// Finite verbs that make a side a clause (with any word ending in `ed`): the
/// auxiliaries, and common verbs of news reports, irregular pasts among them.
const VERBS: [&str; 44] = [
    "is", "are", "was", "were", "has", "have", "had", "will", "would", "can", "could", "may",
    "must", "should", "remains", "remain", "says", "said", "controls", "control", "lacks", "needs",
    "holds", "takes", "took", "left", "made", "sent", "began", "went", "came", "rose", "fell",
    "won", "lost", "built", "met", "became", "grew", "gave", "set", "held", "sold", "bought",
];

/// Byte ranges of `sentence`'s assertions (the whole sentence when it is one).
pub fn split(sentence: &str) -> Vec<Range<usize>> {
    let han = sentence.chars().filter(|&c| is_cjk(c)).count();
    let candidates = if han * 2 > sentence.chars().count() {
        chinese_cuts(sentence)
    } else {
        english_cuts(sentence)
    };
    let mut parts = Vec::new();
    let mut start = 0;
    for (comma, after) in candidates {
        let (left, right) = (&sentence[start..comma], &sentence[after..]);
        if stands(left) && stands(right) && !inside_quotes(&sentence[..comma]) {
            parts.push(start..comma);
            start = after;
        }
    }
    parts.push(start..sentence.len());
    parts
}

/// Each candidate split as (the comma's byte offset, where the next side starts).
fn english_cuts(s: &str) -> Vec<(usize, usize)> {
    let mut cuts = Vec::new();
    for (comma, _) in s.match_indices(", ") {
        let rest = &s[comma + 2..];
        for connector in EN_CONNECTORS {
            if rest.starts_with(connector)
                && (connector != "and " || starts_clause(&rest[connector.len()..]))
            {
                cuts.push((comma, comma + 2 + connector.len()));
            }
        }
    }
    for (semicolon, _) in s.match_indices("; ") {
        cuts.push((semicolon, semicolon + 2));
    }
    cuts.sort_unstable();
    cuts
}

/// Each candidate split in Chinese text, as [`english_cuts`].
fn chinese_cuts(s: &str) -> Vec<(usize, usize)> {
    let mut cuts = Vec::new();
    for (comma, c) in s.char_indices().filter(|&(_, c)| c == '，' || c == ',') {
        let at = comma + c.len_utf8();
        let rest = &s[at..];
        let Some(connector) = ZH_CONNECTORS.iter().find(|k| rest.starts_with(*k)) else {
            continue;
        };
        let after = at + connector.len();
        let next = s[after..].chars().next();
        let er_not_connector =
            *connector == "而" && next.is_some_and(|n| NOT_AFTER_ER.contains(&n));
        if !er_not_connector {
            cuts.push((comma, after));
        }
    }
    cuts
}

/// Whether English text after `and` opens a clause: a subject word (a known one or
/// a capitalised name) with a finite verb among the next few words, before any
/// comma (`…, and Africa, indicating …` is the end of a list).
fn starts_clause(rest: &str) -> bool {
    let first = rest.split_whitespace().next().unwrap_or("");
    let subject = SUBJECTS.contains(&first.to_lowercase().trim_end_matches("'s"))
        || first.starts_with(char::is_uppercase);
    let head: Vec<&str> = rest
        .split(',')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .take(6)
        .collect();
    subject && has_verb(&head.join(" "))
}

fn has_verb(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .any(|w| VERBS.contains(&w.as_str()) || (w.len() > 3 && w.ends_with("ed")))
}

/// Whether a side can be a claim of its own.
fn stands(side: &str) -> bool {
    let han = side
        .chars()
        .filter(|&c| is_cjk(c) && c.is_alphabetic())
        .count();
    if han > 0 {
        han >= MIN_HAN
    } else {
        side.split_whitespace().count() >= MIN_WORDS && has_verb(side)
    }
}

/// Whether `before` leaves a quotation open.
fn inside_quotes(before: &str) -> bool {
    let count = |c: char| before.chars().filter(|&x| x == c).count();
    count('“') > count('”') || count('「') > count('」') || count('"') % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> Vec<&str> {
        split(s).into_iter().map(|r| &s[r]).collect()
    }

    #[test]
    fn english_clauses_joined_by_but_while_or_and_are_split() {
        assert_eq!(
            parts("China controls most of the refining capacity, while the U.S. has only one separation plant."),
            ["China controls most of the refining capacity", "the U.S. has only one separation plant."]
        );
        assert_eq!(
            parts("The first shipment left Pasni in October, and the U.S. company said more would follow."),
            ["The first shipment left Pasni in October", "the U.S. company said more would follow."]
        );
        assert_eq!(
            parts("Pakistan signed the memorandum worth $500 million; China announced new export controls."),
            ["Pakistan signed the memorandum worth $500 million", "China announced new export controls."]
        );
    }

    #[test]
    fn seed_and_workload_sentences_split_where_they_join_two_assertions() {
        // seeds/002: a figure and a barrier.
        let s = "The Pentagon has invested $439 million to rebuild the domestic rare earth \
                 supply chain, but the lack of essential processing technology remains a \
                 significant barrier [10][12].";
        assert_eq!(parts(s).len(), 2, "{:?}", parts(s));
        assert!(parts(s)[0].ends_with("supply chain"));
        // benches/workload.jsonl (Chinese news): a score and the ball; a habit and
        // what it does.
        let s = "布克站上罚球线3罚全中，同时深圳队还有球权，所以发球之后比赛直接结束。";
        assert_eq!(
            parts(s),
            [
                "布克站上罚球线3罚全中",
                "深圳队还有球权，所以发球之后比赛直接结束。"
            ]
        );
        let s = "他们沉迷在各种短视频、游戏、娱乐节目中，而这种碎片化的精神娱乐让人逐渐上瘾，无法自拔。";
        assert_eq!(parts(s).len(), 2, "{:?}", parts(s));
    }

    #[test]
    fn one_english_assertion_stays_whole() {
        for s in [
            // A list of nouns, a subordinate clause, a number with its unit, a quotation.
            "The deal covers rare earths, copper, and antimony from Balochistan.",
            "Although the U.S. has promised security support, history shows otherwise.",
            "The U.S. produced 14.3% of the world's rare earths in 2023, about 43,000 tons.",
            "\"We will build the refinery, but only with partners,\" the minister said.",
            "Experts say it will take years, and billions of dollars.",
            "It seeks partners in Australia, Northern Europe, and Africa, indicating a broader strategy than a focused effort.",
        ] {
            assert_eq!(parts(s), [s], "{s}");
        }
    }

    #[test]
    fn chinese_clauses_joined_by_er_or_tongshi_are_split() {
        assert_eq!(
            parts("中国控制着全球大部分稀土精炼产能，而美国本土只剩少数企业专注轻稀土。"),
            [
                "中国控制着全球大部分稀土精炼产能",
                "美国本土只剩少数企业专注轻稀土。"
            ]
        );
        assert_eq!(
            parts("巴基斯坦向美国运送了首批稀土样品,同时中国宣布扩大稀土出口管制范围。"),
            [
                "巴基斯坦向美国运送了首批稀土样品",
                "中国宣布扩大稀土出口管制范围。"
            ]
        );
    }

    #[test]
    fn one_chinese_assertion_stays_whole() {
        for s in [
            "巴基斯坦虽获短期资金,但长远风险高,无法平衡大国关系。",
            "美国试图在巴基斯坦复制模式,但缺乏核心技术,产业链配套不全。",
            "特朗普威胁额外100%关税,但中方回应强调合作需互利。",
            "中国在稀土领域的优势不是单纯资源占有，而是完整产业链和规则主导。",
            "中国通过国际合作维护主导,而非被动回应。",
            "美国试图摆脱依赖，而且投入了大量资金建设本土产业链。",
            "他说：“我们会继续合作，但需要时间。”",
        ] {
            assert_eq!(parts(s), [s], "{s}");
        }
    }
}
