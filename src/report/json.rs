//! `report.json`: the whole analysis for a corpus a reader can take in, a summary
//! (the largest groups, the most probable pairs and the claims they name) for a
//! larger one, whose every row is in the Parquet tables. Written as a stream, so a
//! complete report of a million claims is never one string in memory.

use std::collections::BTreeSet;
use std::io::Write;

use serde::Serialize;

use super::{ClaimOut, ClusterOut, DuplicateOut, ModelInfo, Report, TargetInfo};
use crate::corpus::Article;

/// Up to this many claims `report.json` lists everything (the seeds, the
/// benchmark workload); above, [`JsonScope::Auto`] writes a summary.
pub const COMPLETE_JSON_CLAIMS: usize = 20_000;
/// The most groups a summary lists (the largest).
pub const SUMMARY_GROUPS: usize = 1_000;
/// The most duplicate pairs a summary lists (the most probable).
pub const SUMMARY_DUPLICATES: usize = 1_000;

/// How much of the analysis `report.json` lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JsonScope {
    /// Everything up to [`COMPLETE_JSON_CLAIMS`] claims, else a summary.
    #[default]
    Auto,
    /// Every article, claim, group and pair, whatever the corpus's size.
    Complete,
}

/// How many of each the analysis found (a summary lists fewer).
#[derive(Debug, Serialize)]
struct Totals {
    articles: usize,
    claims: usize,
    clusters: usize,
    duplicates: usize,
}

/// The file's shape (docs/ARCHITECTURE.md): the report, or the part of it a
/// summary keeps, borrowed.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    version: u32,
    complete: bool,
    totals: Totals,
    model: &'a ModelInfo,
    target: &'a TargetInfo,
    articles: Vec<&'a Article>,
    claims: Vec<&'a ClaimOut>,
    clusters: &'a [ClusterOut],
    duplicates: &'a [DuplicateOut],
}

/// The complete report in the `report.json` contract, for a caller's own serde
/// output (`report.json` itself may be a summary: [`Report::write_json`]).
impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json_view(JsonScope::Complete).serialize(serializer)
    }
}

impl Report {
    /// Writes `report.json`'s content to `out` (pretty-printed), complete or
    /// summarised as `scope` says.
    pub fn write_json(&self, out: &mut dyn Write, scope: JsonScope) -> serde_json::Result<()> {
        serde_json::to_writer_pretty(out, &self.json_view(scope))
    }

    /// Whether `report.json` written with `scope` lists everything.
    pub(super) fn json_is_complete(&self, scope: JsonScope) -> bool {
        scope == JsonScope::Complete || self.claims.len() <= COMPLETE_JSON_CLAIMS
    }

    fn json_view(&self, scope: JsonScope) -> JsonReport<'_> {
        let complete = self.json_is_complete(scope);
        let totals = Totals {
            articles: self.articles.len(),
            claims: self.claims.len(),
            clusters: self.clusters.len(),
            duplicates: self.duplicates.len(),
        };
        let (clusters, duplicates) = if complete {
            (&self.clusters[..], &self.duplicates[..])
        } else {
            let groups = self.clusters.len().min(SUMMARY_GROUPS);
            let pairs = self.duplicates.len().min(SUMMARY_DUPLICATES);
            (&self.clusters[..groups], &self.duplicates[..pairs])
        };
        let (articles, claims) = if complete {
            (self.articles.iter().collect(), self.claims.iter().collect())
        } else {
            self.named_by(clusters, duplicates)
        };
        JsonReport {
            version: self.version,
            complete,
            totals,
            model: &self.model,
            target: &self.target,
            articles,
            claims,
            clusters,
            duplicates,
        }
    }

    /// The claims that `clusters` and `duplicates` name, and their articles, in
    /// the report's order.
    fn named_by(
        &self,
        clusters: &[ClusterOut],
        duplicates: &[DuplicateOut],
    ) -> (Vec<&Article>, Vec<&ClaimOut>) {
        let members = clusters.iter().flat_map(|c| &c.members);
        let sides = duplicates.iter().flat_map(|d| [&d.a, &d.b]);
        let indices: BTreeSet<usize> = members
            .chain(sides)
            .map(|id| self.claim_index(id))
            .collect();
        let claims: Vec<&ClaimOut> = indices.iter().map(|&i| &self.claims[i]).collect();
        let named: BTreeSet<&str> = claims.iter().map(|c| c.claim.article.as_str()).collect();
        let articles = self
            .articles
            .iter()
            .filter(|a| named.contains(a.id.as_str()))
            .collect();
        (articles, claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::test_report;

    /// `claims` claims, two to an article; the first four in two groups; pairs
    /// (0, 1), (2, 3) and (last, 5).
    fn report(claims: usize) -> Report {
        test_report(
            claims / 2,
            2,
            &[0..2, 2..4],
            &[(0, 1), (2, 3), (claims - 1, 5)],
        )
    }

    fn written(report: &Report, scope: JsonScope) -> serde_json::Value {
        let mut out = Vec::new();
        report.write_json(&mut out, scope).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn a_small_corpus_is_listed_whole() {
        let json = written(&report(10), JsonScope::Auto);
        assert_eq!(json["complete"], true);
        assert_eq!(json["claims"].as_array().unwrap().len(), 10);
        assert_eq!(json["articles"].as_array().unwrap().len(), 5);
        assert_eq!(json["totals"]["duplicates"], 3);
    }

    #[test]
    fn a_large_corpus_is_summarised_by_the_claims_its_groups_and_pairs_name() {
        let big = report(COMPLETE_JSON_CLAIMS + 2);
        let json = written(&big, JsonScope::Auto);
        assert_eq!(json["complete"], false);
        assert_eq!(json["totals"]["claims"], COMPLETE_JSON_CLAIMS + 2);
        let ids: Vec<&str> = json["claims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        let last_claim = COMPLETE_JSON_CLAIMS + 1;
        let last = format!("c{last_claim}");
        assert_eq!(ids, ["c0", "c1", "c2", "c3", "c5", last.as_str()]);
        let articles: Vec<&str> = json["articles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        let last_article = format!("a{}", last_claim / 2);
        assert_eq!(articles, ["a0", "a1", "a2", last_article.as_str()]);

        let mut file = Vec::new();
        big.write_json(&mut file, JsonScope::Complete).unwrap();
        let serialised = serde_json::to_vec_pretty(&big).unwrap();
        assert!(
            file == serialised,
            "Report's Serialize is not the complete file"
        );
        let whole = written(&big, JsonScope::Complete);
        assert_eq!(whole["complete"], true);
        // The pages point to the tables alone, where the file is a summary.
        let md = big.markdown();
        assert!(md.contains("60 of 10001 articles shown; all are in claims.parquet."));
        assert_eq!(
            whole["claims"].as_array().unwrap().len(),
            COMPLETE_JSON_CLAIMS + 2
        );
    }
}
