//! Splitting article text into claims: the smallest units that assert one thing.
//!
//! A claim is a title line, a bullet, or a sentence's assertion (a sentence that
//! joins independent assertions is split, see `corpus/assertions.rs`). Chinese sentences end at
//! 。！？； (and ASCII `!?` before a Chinese character); English ones at `.!?`
//! followed by a space and a capital, digit or quote — not after `U.S.` or inside
//! `$2.5`. Bullets (` - `) start a new claim, and the short section headers that
//! precede them (`Group 2: U.S. Military Needs`, `Core Viewpoint`, even glued
//! after a citation mark) are context, not claims. Citation marks such as `[1][3]`
//! are dropped from the claim text but stay inside its byte span.

use std::ops::Range;

use super::assertions;

/// Longest run of words a section header may have.
const MAX_HEADER_WORDS: usize = 7;
/// Claims shorter than this many characters (after cleaning) are dropped.
const MIN_CLAIM_CHARS: usize = 6;

/// A claim's cleaned text and its byte span in the article text.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub text: String,
    pub range: Range<usize>,
}

/// What a stretch of text became: every byte that is not whitespace lies in one
/// piece, so nothing is dropped without a reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub range: Range<usize>,
    pub kind: PieceKind,
}

/// The kinds of [`Piece`].
#[derive(Debug, Clone, PartialEq)]
pub enum PieceKind {
    /// A claim, with its cleaned text.
    Claim(String),
    /// A Markdown heading line: context for what follows.
    Heading,
    /// A short section header before a bullet (`Core Viewpoint`): context.
    Header,
    /// A bullet marker (`- `), with the blank stretches between bullets.
    Marker,
    /// The connector between two assertions of one sentence (`, while`, `，而`).
    Connector,
    /// A sentence or assertion too short to stand as a claim.
    TooShort,
    /// Site boilerplate or the byline (`Source·date`), as the article reader
    /// marks them ([`crate::corpus::ArticleText::pieces`]).
    Boilerplate,
}

/// Splits the body `text` (which starts at byte `base` of the article) into claims.
pub fn claims(text: &str, base: usize) -> Vec<Span> {
    pieces(text, base)
        .into_iter()
        .filter_map(|piece| match piece.kind {
            PieceKind::Claim(text) => Some(Span {
                text,
                range: piece.range,
            }),
            _ => None,
        })
        .collect()
}

/// Every piece of the body `text` (which starts at byte `base` of the article),
/// in order: claims and what was not made a claim, with why.
pub fn pieces(text: &str, base: usize) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut push = |range: Range<usize>, kind| {
        out.push(Piece {
            range: base + range.start..base + range.end,
            kind,
        })
    };
    for (line_start, line) in lines_with_offsets(text) {
        if heading_text(line) != line.trim() {
            push(line_start..line_start + line.len(), PieceKind::Heading);
            continue;
        }
        let mut marked = 0;
        for piece in bullet_pieces(line) {
            if piece.start > marked {
                push(
                    line_start + marked..line_start + piece.start,
                    PieceKind::Marker,
                );
            }
            marked = piece.end;
            let piece_start = line_start + piece.start;
            let body = strip_header(&line[piece.clone()], piece.end < line.len());
            for (range, kind) in body_pieces(&text[piece_start..piece_start + body.len()]) {
                push(piece_start + range.start..piece_start + range.end, kind);
            }
            if body.len() < piece.len() {
                push(
                    piece_start + body.len()..line_start + piece.end,
                    PieceKind::Header,
                );
            }
        }
        // A marker with nothing after it (`- ` ending the line).
        if !line[marked..].trim().is_empty() {
            push(
                line_start + marked..line_start + line.len(),
                PieceKind::Marker,
            );
        }
    }
    out
}

/// The pieces of one bullet's (or line's) body: its sentences' assertions, and
/// the connectors between them.
fn body_pieces(body: &str) -> Vec<(Range<usize>, PieceKind)> {
    let mut out = Vec::new();
    for sentence in sentences(body) {
        let at = sentence.start;
        let mut previous_end = None;
        for part in assertions::split(&body[sentence]) {
            let (start, end) = (at + part.start, at + part.end);
            if let Some(previous) = previous_end.filter(|&p| p < start) {
                out.push((previous..start, PieceKind::Connector));
            }
            previous_end = Some(end);
            let cleaned = clean(&body[start..end]);
            let kind = if is_header(&cleaned) {
                PieceKind::Header
            } else if cleaned.chars().count() < MIN_CLAIM_CHARS {
                PieceKind::TooShort
            } else {
                PieceKind::Claim(cleaned)
            };
            out.push((start..end, kind));
        }
    }
    out
}

/// The text of a Markdown ATX heading (`#` to `######`, then a space) without its
/// marks; any other line as it is, trimmed.
pub fn heading_text(line: &str) -> &str {
    let line = line.trim();
    let marks = line.len() - line.trim_start_matches('#').len();
    match line[marks..].strip_prefix(' ') {
        Some(rest) if (1..=6).contains(&marks) => rest.trim(),
        _ => line,
    }
}

fn lines_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    text.split_inclusive('\n').map(move |raw| {
        let start = offset;
        offset += raw.len();
        (start, raw.trim_end_matches(['\n', '\r']))
    })
}

/// Byte ranges of a line split at bullet markers (` - ` and a leading `- `).
fn bullet_pieces(line: &str) -> Vec<Range<usize>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    if line.starts_with("- ") {
        start = 2;
    }
    let mut search = start;
    while let Some(pos) = line[search..].find(" - ") {
        let at = search + pos;
        pieces.push(start..at);
        start = at + 3;
        search = start;
    }
    pieces.push(start..line.len());
    pieces.retain(|r| !line[r.clone()].trim().is_empty());
    pieces
}

/// Removes a trailing section header (the context of the next bullet) from a
/// piece: the shortest tail after a sentence end or citation mark that is a
/// short, title-like phrase.
fn strip_header(body: &str, followed_by_bullet: bool) -> &str {
    if !followed_by_bullet {
        return body;
    }
    let is_mark = |c: char| matches!(c, ']' | '.' | '。' | '!' | '?' | '！' | '？' | '；' | ';');
    let cuts = std::iter::once(0).chain(
        body.char_indices()
            .filter(|&(_, c)| is_mark(c))
            .map(|(i, c)| i + c.len_utf8()),
    );
    for cut in cuts {
        let tail = body[cut..].trim_start_matches(|c: char| is_mark(c) || c.is_whitespace());
        if !tail.is_empty() && is_header(tail.trim_end()) {
            return &body[..body.len() - tail.len()];
        }
    }
    body
}

/// A short title-like phrase (`Group 2: U.S. Military Needs`, `Core Viewpoint`).
fn is_header(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() || words.len() > MAX_HEADER_WORDS {
        return false;
    }
    if text.chars().any(is_cjk) || !text.starts_with(char::is_alphabetic) {
        return false;
    }
    let ends_like_sentence = text.ends_with(['.', '!', '?']);
    let capitalised = words
        .iter()
        .filter(|w| w.chars().next().is_some_and(|c| c.is_alphabetic()))
        .all(|w| {
            w.chars().next().is_some_and(char::is_uppercase)
                || matches!(
                    *w,
                    "and" | "of" | "the" | "in" | "on" | "for" | "to" | "with" | "vs"
                )
        });
    !ends_like_sentence && capitalised
}

/// Byte ranges of the sentences of `text`.
fn sentences(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(pos, c)) in chars.iter().enumerate() {
        let end = pos + c.len_utf8();
        let next = chars.get(i + 1).map(|&(_, n)| n);
        let boundary = match c {
            '。' | '！' | '？' | '；' => true,
            '!' | '?' => next.is_none_or(|n| is_cjk(n) || n.is_whitespace()),
            '.' => {
                let after = chars.get(i + 2).map(|&(_, n)| n);
                next.is_some_and(char::is_whitespace)
                    && after.is_some_and(|a| {
                        a.is_uppercase() || a.is_ascii_digit() || matches!(a, '"' | '“' | '\'')
                    })
                    && !is_abbreviation(&text[start..pos])
            }
            _ => false,
        };
        if boundary {
            // Keep closing quotes and brackets with the sentence they end.
            let mut end = end;
            for &(p, n) in &chars[i + 1..] {
                if matches!(n, '”' | '」' | '』' | '）' | ')' | '"') {
                    end = p + n.len_utf8();
                } else {
                    break;
                }
            }
            if !text[start..end].trim().is_empty() {
                out.push(start..end);
            }
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(start..text.len());
    }
    out
}

/// Whether the word before a period is an abbreviation (`U.S`, `Mr`, `e.g`).
fn is_abbreviation(before: &str) -> bool {
    let word = before.rsplit(char::is_whitespace).next().unwrap_or("");
    let word = word.trim_start_matches(['(', '"', '“']);
    const KNOWN: [&str; 14] = [
        "Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Inc", "Ltd", "Co", "Corp", "vs", "etc", "No", "Jr",
    ];
    if KNOWN.contains(&word) {
        return true;
    }
    // Initialisms: U.S, U.K, e.g, i.e, a single capital.
    let parts: Vec<&str> = word.split('.').collect();
    !word.is_empty() && parts.iter().all(|p| p.chars().count() == 1)
}

/// Claim text: citation marks removed, whitespace collapsed, bullet dashes trimmed.
pub fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close)
                if after[..close]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',') =>
            {
                rest = &after[close + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    collapsed
        .trim_matches(|c: char| c == '-' || c.is_whitespace())
        .replace(" .", ".")
        .to_string()
}

/// Whether `c` is a CJK ideograph or CJK punctuation.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0xF900..=0xFAFF | 0x3000..=0x303F | 0xFF00..=0xFFEF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_ending_a_line_is_a_piece() {
        let p = pieces("- \t", 0);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].range, 0..3);
        assert!(matches!(p[0].kind, PieceKind::Marker));
    }

    fn texts(body: &str) -> Vec<String> {
        claims(body, 0).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn what_is_not_a_claim_is_a_piece_with_a_reason() {
        let body = "## Supply\nCore Viewpoint - China controls most of the refining, while the U.S. has lacked plants for decades. - Ok.";
        let kinds: Vec<(&str, PieceKind)> = pieces(body, 0)
            .into_iter()
            .map(|p| (&body[p.range], p.kind))
            .collect();
        let claim = |t: &str| PieceKind::Claim(t.to_string());
        assert_eq!(
            kinds,
            [
                ("## Supply", PieceKind::Heading),
                ("Core Viewpoint", PieceKind::Header),
                (" - ", PieceKind::Marker),
                (
                    "China controls most of the refining",
                    claim("China controls most of the refining")
                ),
                (", while ", PieceKind::Connector),
                (
                    "the U.S. has lacked plants for decades.",
                    claim("the U.S. has lacked plants for decades.")
                ),
                (" - ", PieceKind::Marker),
                ("Ok.", PieceKind::TooShort),
            ]
        );
    }

    #[test]
    fn english_bullets_headers_and_citations() {
        let body = "Core Viewpoint - The U.S. seeks rare earths for military use [1][3]. Group 1: Economic Context - Pakistan faces a severe crisis [1]. - The U.S. is providing $500 million in investment [3]. Group 2: U.S. Military Needs - Delays followed China's export controls [4][6].";
        assert_eq!(
            texts(body),
            [
                "The U.S. seeks rare earths for military use.",
                "Pakistan faces a severe crisis.",
                "The U.S. is providing $500 million in investment.",
                "Delays followed China's export controls.",
            ]
        );
    }

    #[test]
    fn header_glued_after_citation_mark() {
        let body = "Pakistan signed a memorandum [1] Economic Context - Pakistan is facing fiscal pressures [1]";
        assert_eq!(
            texts(body),
            [
                "Pakistan signed a memorandum",
                "Pakistan is facing fiscal pressures"
            ]
        );
    }

    #[test]
    fn chinese_sentences() {
        let body = "美国一直试图摆脱依赖。稀土元素不可或缺！巴基斯坦怎么办？";
        assert_eq!(
            texts(body),
            [
                "美国一直试图摆脱依赖。",
                "稀土元素不可或缺！",
                "巴基斯坦怎么办？"
            ]
        );
    }

    #[test]
    fn spans_point_into_the_text() {
        let body = "第一句话很重要。Second sentence is here [2]. Third one follows.";
        for span in claims(body, 10) {
            let raw = &body[span.range.start - 10..span.range.end - 10];
            assert_eq!(clean(raw), span.text);
        }
    }

    #[test]
    fn no_split_inside_numbers_or_initialisms() {
        assert_eq!(
            texts("Prices rose to $2.5 billion in the U.S. Army budget. Then they fell."),
            [
                "Prices rose to $2.5 billion in the U.S. Army budget.",
                "Then they fell."
            ]
        );
    }
}
