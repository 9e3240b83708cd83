//! Property tests over random bytes and strings: reading, claim splitting and the
//! server's request parsing never panic, every claim's span lies inside its
//! article's text, on character boundaries, and every byte that is not whitespace
//! is in a claim or in a piece dropped for a named reason. Case counts keep the
//! run short.

use proptest::prelude::*;

use stancemap::corpus::{decode, segment, ArticleText};
use stancemap::serve::api::parse_request;
use stancemap::Corpus;

/// Text like the seeds': Latin and Chinese words, digits, both kinds of
/// punctuation, bullets, citation marks and line breaks.
fn news_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.;:!?$%\\-\\[\\]#\\n\\r\\t。，；、！？“”（）·中国稀土管制美巴基斯坦协议亿美元年月日]{0,400}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(std::path::Path::new("random.txt"), &bytes);
    }

    #[test]
    fn claims_lie_inside_the_text(text in news_text(), base in 0usize..1000) {
        for span in segment::claims(&text, base) {
            prop_assert!(span.range.start >= base && span.range.end <= base + text.len());
            let local = span.range.start - base..span.range.end - base;
            prop_assert!(text.get(local).is_some(), "{:?} splits a character", span.range);
            prop_assert!(!span.text.trim().is_empty());
        }
    }

    #[test]
    fn every_byte_is_in_a_claim_or_dropped_for_a_reason(text in news_text(), base in 0usize..1000) {
        let pieces = segment::pieces(&text, base);
        let mut covered = base;
        for piece in &pieces {
            let range = piece.range.start - base..piece.range.end - base;
            prop_assert!(piece.range.start >= covered, "{:?} overlaps the piece before", piece);
            let skipped = text.get(covered - base..range.start);
            prop_assert!(
                skipped.is_some_and(|s| s.trim().is_empty()),
                "{:?} before {:?} is in no piece", skipped, piece
            );
            prop_assert!(text.get(range).is_some(), "{:?} splits a character", piece);
            covered = piece.range.end;
        }
        prop_assert!(text[covered - base..].trim().is_empty(), "the tail is in no piece");
        let claims: Vec<_> = segment::claims(&text, base).into_iter().map(|c| c.range).collect();
        let claim_pieces: Vec<_> = pieces
            .iter()
            .filter(|p| matches!(p.kind, segment::PieceKind::Claim(_)))
            .map(|p| p.range.clone())
            .collect();
        prop_assert_eq!(claims, claim_pieces);
    }

    #[test]
    fn every_byte_of_an_article_is_a_claim_context_or_boilerplate(
        title in "[a-zA-Z中国稀土 ]{0,30}",
        text in news_text(),
    ) {
        let article = ArticleText::plain("a", &format!("Workflow\n{title}\nSource·2025-10-09 12:00\n{text}"));
        let mut covered = 0;
        for piece in article.pieces() {
            let skipped = article.text.get(covered..piece.range.start);
            prop_assert!(
                skipped.is_some_and(|s| s.trim().is_empty()),
                "{:?} before {:?} is in no piece", skipped, piece
            );
            covered = piece.range.end;
        }
        prop_assert!(article.text[covered..].trim().is_empty(), "the tail is in no piece");
    }

    #[test]
    fn every_claim_spans_its_articles_text(text in news_text(), other in news_text()) {
        let mut corpus = Corpus::default();
        corpus.add_text("a", &text);
        corpus.add_text("a", &other);
        prop_assert_eq!(corpus.articles.len(), 2);
        prop_assert_ne!(&corpus.articles[0].id, &corpus.articles[1].id);
        for claim in &corpus.claims {
            let source = if claim.article == corpus.articles[0].id { &text } else { &other };
            prop_assert!(source.get(claim.start..claim.end).is_some());
        }
    }

    #[test]
    fn request_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_request(&bytes, 4);
    }

    #[test]
    fn json_requests_parse_or_say_why(
        input in prop_oneof![
            Just("\"a\"".to_string()),
            "\\[(\"[a-z]{0,5}\",?){0,6}\\]",
            "[0-9\\-.e]{0,6}",
            Just("null".to_string()),
        ],
        format in prop_oneof![Just("\"float\""), Just("\"base64\""), Just("7"), Just("null")],
        dimensions in prop_oneof![Just("384"), Just("-1"), Just("0"), Just("\"x\""), Just("null")],
    ) {
        let body = format!(
            "{{\"input\": {input}, \"encoding_format\": {format}, \"dimensions\": {dimensions}}}"
        );
        if let Err(e) = parse_request(body.as_bytes(), 4) {
            prop_assert!(matches!(e.status, 400 | 413), "{body}: {}", e.status);
            prop_assert!(!e.message.is_empty());
        }
    }
}
