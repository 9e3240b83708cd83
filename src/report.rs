//! The report: `report.json` (the contract in docs/ARCHITECTURE.md),
//! `report.md` (clusters largest first) and `report.html` (one self-contained
//! page: a 2-D map of the claims coloured by cluster, text on hover, and the list).

use std::fmt::Write as _;
use std::path::Path;

use ndarray::{Array1, Array2, Axis};
use serde::Serialize;

use crate::corpus::{Article, Claim};
use crate::error::Result;
use crate::stance::{ClaimStance, ClusterStance, Label};

mod json;
pub use json::{JsonScope, COMPLETE_JSON_CLAIMS, SUMMARY_DUPLICATES, SUMMARY_GROUPS};

/// The version of the `report.json` contract (docs/ARCHITECTURE.md).
pub const REPORT_VERSION: u32 = 8;

/// Everything `stancemap cluster` found. `report.json` is written from it by
/// [`Report::write_json`]; serialised with serde it is the complete report.
#[derive(Debug, Clone)]
pub struct Report {
    pub version: u32,
    pub model: ModelInfo,
    /// The stance target every claim and cluster is scored toward.
    pub target: TargetInfo,
    pub articles: Vec<Article>,
    pub claims: Vec<ClaimOut>,
    pub clusters: Vec<ClusterOut>,
    pub duplicates: Vec<DuplicateOut>,
    /// 2-D projection of each claim, for the map (not part of the JSON contract).
    pub map: Vec<[f32; 2]>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub id: String,
    pub dim: usize,
    pub precision: String,
    /// The adapter merged into the encoder's weights (`built-in …` or a file), or
    /// `None` for the encoder as published.
    pub adapter: Option<String>,
    /// The pair reader that re-read the pairs in doubt (`built-in …` or a file),
    /// or `None` for the same-claim model alone.
    pub pair_reader: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub name: String,
    pub description: String,
    /// The scorer that labelled the claims (`prototype`, `kernel`, `logistic` or
    /// `blend`).
    pub scorer: String,
    /// What each claim was read with: `claim alone`, `+ W × ±N claims` (its
    /// neighbours in the article) or `+ W × article`.
    pub context: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClaimOut {
    #[serde(flatten)]
    pub claim: Claim,
    pub cluster: Option<usize>,
    pub stance: ClaimStance,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterOut {
    pub id: usize,
    pub size: usize,
    pub articles: Vec<String>,
    /// The medoid claim's text.
    pub label: String,
    pub keywords: Vec<String>,
    pub members: Vec<String>,
    pub stance: ClusterStance,
    /// Mean same-claim probability over the group's pairs of members.
    pub coherence: f32,
    /// Per member, in `members` order: how well it fits and what ties it in.
    pub evidence: Vec<MemberEvidence>,
    /// Money amounts that two or more members name, in one notation.
    pub shared_amounts: Vec<String>,
    /// Other numbers, percentages and dates that two or more members name, as
    /// first written (a date by month and day; no lone digit).
    pub shared_numbers: Vec<String>,
}

impl ClusterOut {
    /// The figures two or more members name: money amounts, then other numbers.
    pub fn shared_figures(&self) -> Vec<String> {
        [&self.shared_amounts[..], &self.shared_numbers[..]].concat()
    }
}

/// Why a claim is in its group.
#[derive(Debug, Clone, Serialize)]
pub struct MemberEvidence {
    pub claim: String,
    /// Mean same-claim probability with the other members.
    pub fit: f32,
    /// The member it most probably states the same claim as, and that probability.
    pub tied_to: String,
    pub tie: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct DuplicateOut {
    pub a: String,
    pub b: String,
    /// The probability that the two state the same claim.
    pub probability: f32,
    /// Their cosine (a Chinese side moved by the language offset).
    pub cosine: f32,
}

/// One line of `stancemap dedup`'s JSONL: a duplicate pair with both claims.
#[derive(Debug, Clone, Serialize)]
pub struct DuplicateRow {
    pub a: String,
    pub b: String,
    /// The probability that the two state the same claim.
    pub probability: f32,
    /// Their cosine (a Chinese side moved by the language offset).
    pub cosine: f32,
    pub article_a: String,
    pub article_b: String,
    pub text_a: String,
    pub text_b: String,
}

/// One line of `stancemap stance`'s JSONL: a passage and its stance.
#[derive(Debug, Clone, Serialize)]
pub struct StanceRow {
    pub id: String,
    pub text: String,
    #[serde(flatten)]
    pub stance: ClaimStance,
}

/// The first two principal components of the rows (power iteration with deflation).
pub fn project_2d(x: &Array2<f32>) -> Vec<[f32; 2]> {
    let n = x.nrows();
    if n == 0 {
        return Vec::new();
    }
    let mean = x.mean_axis(Axis(0)).expect("rows");
    let centred = x - &mean;
    let mut components: Vec<Array1<f32>> = Vec::new();
    for k in 0..2 {
        let mut v = Array1::from_shape_fn(x.ncols(), |i| ((i * 7 + k * 13) % 11) as f32 - 5.0);
        for _ in 0..100 {
            let mut next = centred.t().dot(&centred.dot(&v));
            for c in &components {
                let overlap = next.dot(c);
                next.scaled_add(-overlap, c);
            }
            let norm = next.dot(&next).sqrt();
            if norm == 0.0 {
                break;
            }
            v = next / norm;
        }
        components.push(v);
    }
    let (a, b) = (centred.dot(&components[0]), centred.dot(&components[1]));
    a.iter().zip(b.iter()).map(|(&p, &q)| [p, q]).collect()
}

/// The most groups `report.md` and `report.html` show (the largest; every group is
/// in `groups.parquet`, and in `report.json` when it is complete).
pub const SHOWN_GROUPS: usize = 200;
/// The most members a shown group lists.
pub const SHOWN_MEMBERS: usize = 50;
/// The most articles the article list and the article × group matrix show; with
/// more, the matrix is left out.
pub const SHOWN_ARTICLES: usize = 60;
/// The most duplicate pairs `report.md` lists.
pub const SHOWN_DUPLICATES: usize = 500;
/// The most claims the HTML map draws (an even sample of the claims beyond).
pub const MAP_POINTS: usize = 5_000;

/// A note that `shown` of `total` `what` are listed, and where the rest are;
/// `None` when all are.
fn not_all(shown: usize, total: usize, what: &str, rest: &str) -> Option<String> {
    (total > shown).then(|| format!("{shown} of {total} {what} shown; all are in {rest}."))
}

impl Report {
    /// Writes report.json (complete up to [`COMPLETE_JSON_CLAIMS`] claims, else a
    /// summary: see [`JsonScope`]), report.md and report.html into `dir`, each
    /// atomically (a failed write leaves the previous file).
    pub fn write(&self, dir: &Path) -> Result<()> {
        self.write_scoped(dir, JsonScope::Auto)
    }

    /// [`write`](Self::write), with report.json as `scope` says.
    pub fn write_scoped(&self, dir: &Path, scope: JsonScope) -> Result<()> {
        let write = |name: &str, body: String| {
            crate::output::write_atomically(&dir.join(name), |out| out.write_all(body.as_bytes()))
        };
        crate::output::write_atomically(&dir.join("report.json"), |out| {
            self.write_json(out, scope).map_err(std::io::Error::from)
        })?;
        write("report.md", self.markdown())?;
        write("report.html", self.html())
    }

    /// Where every row left off a page is: `table`, and report.json when it lists
    /// everything whatever its scope (up to [`COMPLETE_JSON_CLAIMS`] claims).
    fn where_all_are(&self, table: &str) -> String {
        if self.json_is_complete(JsonScope::Auto) {
            format!("report.json and {table}")
        } else {
            table.to_string()
        }
    }

    pub(crate) fn claim(&self, id: &str) -> &ClaimOut {
        &self.claims[self.claim_index(id)]
    }

    fn claim_index(&self, id: &str) -> usize {
        id[1..].parse().expect("claim ids are c<index>")
    }

    /// How many claims carry each label, in [`Label::ALL`] order.
    fn stance_counts(&self) -> [usize; 3] {
        let mut counts = [0; 3];
        for c in &self.claims {
            counts[c.stance.label.index()] += 1;
        }
        counts
    }

    /// Markdown summary: clusters largest first, then duplicates.
    pub fn markdown(&self) -> String {
        let counts = self.stance_counts();
        let mut md = format!(
            "# stancemap report\n\n{} articles, {} claims, {} clusters spanning articles or repeating a claim, {} duplicate pairs. Model: {} ({}{}{}).\n\n\
Stance target: **{}**: {} Claims: {} supports, {} challenges, {} neutral ({} scorer).\n\n",
            self.articles.len(),
            self.claims.len(),
            self.clusters.len(),
            self.duplicates.len(),
            self.model.id,
            self.model.precision,
            self.model
                .adapter
                .as_deref()
                .map_or(String::new(), |a| format!(", adapter {a}")),
            self.model
                .pair_reader
                .as_deref()
                .map_or(String::new(), |r| format!(", pair reader {r}")),
            self.target.name,
            self.target.description,
            counts[0],
            counts[1],
            counts[2],
            self.target.scorer
        );
        self.md_articles(&mut md);
        self.md_matrix(&mut md);
        self.md_clusters(&mut md);
        self.md_duplicates(&mut md);
        md
    }

    fn md_articles(&self, md: &mut String) {
        md.push_str(
            "## Articles\n\n| key | id | title | source | date | lang |\n|---|---|---|---|---|---|\n",
        );
        for (key, a) in self.articles.iter().enumerate().take(SHOWN_ARTICLES) {
            let _ = writeln!(
                md,
                "| A{key} | {} | {} | {} | {} | {:?} |",
                md_cell(&a.id),
                md_cell(&a.title),
                md_cell(a.source.as_deref().unwrap_or("")),
                md_cell(a.date.as_deref().unwrap_or("")),
                a.lang
            );
        }
        let rest = &self.where_all_are("claims.parquet");
        if let Some(note) = not_all(SHOWN_ARTICLES, self.articles.len(), "articles", rest) {
            let _ = writeln!(md, "\n{note}");
        }
    }

    /// Which article states which point: a row per group, a column per article.
    fn md_matrix(&self, md: &mut String) {
        if self.clusters.is_empty() || self.articles.len() > SHOWN_ARTICLES {
            return;
        }
        md.push_str("\n## Points by article\n\nEach cell: the article's claims in the group, as language and stance (+ supports, − challenges, ○ neutral).\n\n| group |");
        for key in 0..self.articles.len() {
            let _ = write!(md, " A{key} |");
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(self.articles.len()));
        md.push('\n');
        for (c, row) in self.clusters.iter().zip(self.matrix()) {
            let label: String = c.label.chars().take(40).collect();
            let _ = write!(md, "| {}. {} |", c.id, md_cell(&label));
            for cell in row {
                let _ = write!(md, " {cell} |");
            }
            md.push('\n');
        }
    }

    fn md_clusters(&self, md: &mut String) {
        md.push_str("\n## Clusters\n");
        let rest = &self.where_all_are("groups.parquet");
        if let Some(note) = not_all(SHOWN_GROUPS, self.clusters.len(), "clusters", rest) {
            let _ = writeln!(md, "\n{note}");
        }
        for c in self.clusters.iter().take(SHOWN_GROUPS) {
            let _ = write!(
                md,
                "\n### {}. {}\n\n{} claims from {} articles ({}). Keywords: {}. Coherence {:.3}.{}\n\nStance: **{}** ({:.2}; supports {:.2}, challenges {:.2}, neutral {:.2}){}.\n\n",
                c.id,
                md_text(&c.label),
                c.size,
                c.articles.len(),
                md_text(&listed(&c.articles)),
                md_text(&c.keywords.join(", ")),
                c.coherence,
                match c.shared_figures() {
                    f if f.is_empty() => String::new(),
                    f => format!(" Shared figures: {}.", md_text(&f.join(", "))),
                },
                c.stance.label,
                c.stance.confidence,
                c.stance.distribution.supports,
                c.stance.distribution.challenges,
                c.stance.distribution.neutral,
                if c.stance.contested { ", contested" } else { "" }
            );
            for e in c.evidence.iter().take(SHOWN_MEMBERS) {
                let out = self.claim(&e.claim);
                let _ = writeln!(
                    md,
                    "- `{}` ({}) [{} {:.2}] fit {:.3}, closest `{}` {:.3}: {}",
                    out.claim.id,
                    md_text(&out.claim.article),
                    out.stance.label,
                    out.stance.score,
                    e.fit,
                    e.tied_to,
                    e.tie,
                    md_text(&out.claim.text)
                );
            }
            if let Some(note) = not_all(SHOWN_MEMBERS, c.evidence.len(), "members", "report.json") {
                let _ = writeln!(md, "{note}");
            }
        }
    }

    fn md_duplicates(&self, md: &mut String) {
        if self.duplicates.is_empty() {
            return;
        }
        md.push_str("\n## Duplicate claims\n\n| a | b | same-claim p | cosine | text a | text b |\n|---|---|---|---|---|---|\n");
        for d in self.duplicates.iter().take(SHOWN_DUPLICATES) {
            let _ = writeln!(
                md,
                "| {} | {} | {:.3} | {:.3} | {} | {} |",
                d.a,
                d.b,
                d.probability,
                d.cosine,
                md_cell(&self.claim(&d.a).claim.text),
                md_cell(&self.claim(&d.b).claim.text)
            );
        }
        let rest = &self.where_all_are("pairs.parquet");
        if let Some(note) = not_all(SHOWN_DUPLICATES, self.duplicates.len(), "pairs", rest) {
            let _ = writeln!(md, "\n{note}");
        }
    }

    /// Per group (row) and article (column): the article's member claims as
    /// language and stance marks, e.g. `en+ zh−`; empty where it has none.
    fn matrix(&self) -> Vec<Vec<String>> {
        let column: std::collections::HashMap<&str, usize> = self
            .articles
            .iter()
            .enumerate()
            .map(|(k, a)| (a.id.as_str(), k))
            .collect();
        self.clusters
            .iter()
            .take(SHOWN_GROUPS)
            .map(|c| {
                let mut row = vec![Vec::new(); self.articles.len()];
                for m in &c.members {
                    let out = self.claim(m);
                    let mark = match out.stance.label {
                        Label::Supports => '+',
                        Label::Challenges => '−',
                        Label::Neutral => '○',
                    };
                    let cell = &mut row[column[out.claim.article.as_str()]];
                    cell.push(format!("{}{mark}", out.claim.lang.code()));
                }
                row.into_iter().map(|cell| cell.join(" ")).collect()
            })
            .collect()
    }

    /// One self-contained HTML page: an SVG map of the claims, which article
    /// states which point, and the groups with their evidence.
    pub fn html(&self) -> String {
        let counts = self.stance_counts();
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>stancemap report</title><style>\
body{{font-family:system-ui,sans-serif;margin:24px;color:#222}} li{{margin:4px 0}} \
.dot{{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:6px}} \
table.m{{border-collapse:collapse;font-size:13px}} table.m td,table.m th{{border:1px solid #ddd;padding:2px 6px;text-align:left}} \
.supports{{color:#0a7d32;font-weight:600}} .challenges{{color:#c00000;font-weight:600}} .neutral{{color:#666}}</style></head><body>\
<h1>stancemap report</h1><p>{} articles · {} claims · {} clusters · {} duplicate pairs · model {}</p>\
<p>Stance toward <b>{}</b>: {} · claims: <span class=\"supports\">{} supports</span>, <span class=\"challenges\">{} challenges</span>, <span class=\"neutral\">{} neutral</span></p>\
<h2>Map of claims</h2><p><small>First two principal components of the claim embeddings; colour = cluster (its number at the cluster's centre), grey = no cluster; ring = stance (green supports, red challenges, none neutral). Hover a point for its text. {}</small></p>{}\
<h2>Points by article</h2>{}\
<h2>Clusters</h2><ol style=\"list-style:none;padding:0\">{}</ol></body></html>",
            self.articles.len(),
            self.claims.len(),
            self.clusters.len(),
            self.duplicates.len(),
            escape(&self.model.id),
            escape(&self.target.name),
            escape(&self.target.description),
            counts[0],
            counts[1],
            counts[2],
            not_all(
                self.claims.len().div_ceil(map_step(self.claims.len())),
                self.claims.len(),
                "claims (an even sample)",
                &self.where_all_are("claims.parquet")
            )
            .unwrap_or_default(),
            self.html_map(),
            self.html_matrix(),
            self.html_clusters()
        )
    }

    /// The map: a point per claim, a number at each cluster's centre, so clusters
    /// are told apart when the palette repeats.
    fn html_map(&self) -> String {
        let (w, h, pad) = (900.0f32, 560.0f32, 30.0f32);
        let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
        for p in &self.map {
            for k in 0..2 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
        }
        let at = |p: &[f32; 2]| {
            let scale = |k: usize, size: f32| {
                pad + (p[k] - lo[k]) / (hi[k] - lo[k]).max(1e-6) * (size - 2.0 * pad)
            };
            (scale(0, w), h - scale(1, h))
        };
        let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" style=\"border:1px solid #ddd;background:#fff\">");
        let mut centres = vec![(0.0f32, 0.0f32, 0usize); self.clusters.len()];
        for (out, p) in map_sample(&self.claims, &self.map) {
            let claim = &out.claim;
            let (x, y) = at(p);
            if let Some(c) = out.cluster {
                centres[c] = (centres[c].0 + x, centres[c].1 + y, centres[c].2 + 1);
            }
            let cluster = out.cluster.map_or("none".to_string(), |c| c.to_string());
            let _ = write!(
                svg,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{}\" fill=\"{}\" fill-opacity=\"0.85\" stroke=\"{}\" stroke-width=\"2.5\"><title>{} [{}] cluster {}, {} {:.2}: {}</title></circle>",
                if out.cluster.is_some() { 6 } else { 4 },
                colour(out.cluster),
                ring(out.stance.label),
                claim.id,
                escape(&claim.article),
                cluster,
                out.stance.label,
                out.stance.score,
                escape(&claim.text)
            );
        }
        for (c, &(x, y, n)) in centres.iter().enumerate().filter(|(_, c)| c.2 > 0) {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" font-weight=\"700\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\" text-anchor=\"middle\">{c}</text>",
                x / n as f32,
                y / n as f32 - 9.0,
                colour(Some(c))
            );
        }
        svg.push_str("</svg>");
        svg
    }

    /// Which article states which point: a row per cluster, a column per article.
    fn html_matrix(&self) -> String {
        if self.articles.len() > SHOWN_ARTICLES {
            return format!("<p><small>{} articles: too many for a matrix. Each cluster below lists its articles; claims.parquet has every claim's article and group.</small></p>", self.articles.len());
        }
        let mut table = String::from("<p><small>Each cell: the article's claims in the cluster, as language and stance (+ supports, − challenges, ○ neutral).</small></p><table class=\"m\"><tr><th>cluster</th>");
        for (key, a) in self.articles.iter().enumerate() {
            let _ = write!(table, "<th title=\"{}\">A{key}</th>", escape(&a.title));
        }
        table.push_str("</tr>");
        for (c, row) in self.clusters.iter().zip(self.matrix()) {
            let label: String = c.label.chars().take(40).collect();
            let _ = write!(
                table,
                "<tr><td><span class=\"dot\" style=\"background:{}\"></span>{}. {}</td>",
                colour(Some(c.id)),
                c.id,
                escape(&label)
            );
            for cell in row {
                let _ = write!(table, "<td>{}</td>", escape(&cell));
            }
            table.push_str("</tr>");
        }
        table.push_str("</table><p><small>");
        for (key, a) in self.articles.iter().enumerate() {
            let _ = write!(table, "A{key}: {} · ", escape(&a.title));
        }
        table.push_str("</small></p>");
        table
    }

    /// The clusters, each member with its stance, fit and closest fellow member.
    fn html_clusters(&self) -> String {
        let rest = &self.where_all_are("groups.parquet");
        let mut list = format!(
            "<p><small>{}</small></p>",
            not_all(SHOWN_GROUPS, self.clusters.len(), "clusters", rest).unwrap_or_default()
        );
        for c in self.clusters.iter().take(SHOWN_GROUPS) {
            let _ = write!(
                list,
                "<li><span class=\"dot\" style=\"background:{}\"></span><b>{}. {}</b><br><small>{} claims, {} articles · coherence {:.3} · {}{} · <span class=\"{}\">{} {:.2}</span>{}</small><ul>",
                colour(Some(c.id)),
                c.id,
                escape(&c.label),
                c.size,
                c.articles.len(),
                c.coherence,
                escape(&c.keywords.join(", ")),
                match c.shared_figures() {
                    f if f.is_empty() => String::new(),
                    f => format!(" · shared figures: {}", escape(&f.join(", "))),
                },
                c.stance.label,
                c.stance.label,
                c.stance.confidence,
                if c.stance.contested { " · contested" } else { "" }
            );
            for e in c.evidence.iter().take(SHOWN_MEMBERS) {
                let out = self.claim(&e.claim);
                let _ = write!(
                    list,
                    "<li>{} <small>({}) <span class=\"{}\">{} {:.2}</span> · fit {:.3} · closest {} {:.3}</small></li>",
                    escape(&out.claim.text),
                    escape(&out.claim.article),
                    out.stance.label,
                    out.stance.label,
                    out.stance.score,
                    e.fit,
                    e.tied_to,
                    e.tie
                );
            }
            let note = not_all(SHOWN_MEMBERS, c.evidence.len(), "members", "report.json");
            let _ = write!(
                list,
                "</ul><small>{}</small></li>",
                note.unwrap_or_default()
            );
        }
        list
    }
}

/// The claims the map draws with their points: all of them up to [`MAP_POINTS`],
/// else an even sample of that many.
fn map_sample<'a>(
    claims: &'a [ClaimOut],
    map: &'a [[f32; 2]],
) -> impl Iterator<Item = (&'a ClaimOut, &'a [f32; 2])> {
    claims.iter().zip(map).step_by(map_step(claims.len()))
}

/// Every how many claims the map draws one, for `n` claims.
fn map_step(n: usize) -> usize {
    n.div_ceil(MAP_POINTS).max(1)
}

/// Article ids joined, the first 20 and how many more.
fn listed(ids: &[String]) -> String {
    const MOST: usize = 20;
    let shown = ids[..ids.len().min(MOST)].join(", ");
    match ids.len().checked_sub(MOST) {
        Some(more) if more > 0 => format!("{shown} and {more} more"),
        _ => shown,
    }
}

/// Cluster colours; pure green and red are left to the stance rings.
fn colour(cluster: Option<usize>) -> &'static str {
    const PALETTE: [&str; 12] = [
        "#1f77b4", "#ff7f0e", "#e6ab02", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
        "#393b79", "#7570b3", "#a6761d", "#66a61e",
    ];
    cluster.map_or("#c8c8c8", |c| PALETTE[c % PALETTE.len()])
}

/// The ring that shows a claim's stance on the map.
fn ring(label: Label) -> &'static str {
    match label {
        Label::Supports => "#0a7d32",
        Label::Challenges => "#c00000",
        Label::Neutral => "none",
    }
}

/// Article text in Markdown: HTML-significant characters escaped, so a renderer
/// shows `<script>` as text instead of running it.
fn md_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// [`md_text`] inside a table cell, where `|` would end the cell.
fn md_cell(s: &str) -> String {
    md_text(s).replace('|', "\\|")
}

/// Text made safe inside HTML or SVG markup and attributes.
pub(crate) fn escape(s: &str) -> String {
    md_text(s).replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;
    use crate::corpus::Lang;
    use crate::stance::Distribution;

    /// A report of `articles` articles of `per_article` claims each (claim `c{i}`
    /// in article `a{i / per_article}`), a group per range of claim indices in
    /// `groups` and a duplicate pair per `(a, b)` in `pairs`; every stance neutral.
    pub(super) fn test_report(
        articles: usize,
        per_article: usize,
        groups: &[Range<usize>],
        pairs: &[(usize, usize)],
    ) -> Report {
        let even = Distribution {
            supports: 0.2,
            challenges: 0.2,
            neutral: 0.6,
        };
        let n = articles * per_article;
        let group_of = |i: usize| groups.iter().position(|g| g.contains(&i));
        let claims: Vec<ClaimOut> = (0..n)
            .map(|i| ClaimOut {
                claim: Claim {
                    id: format!("c{i}"),
                    article: format!("a{}", i / per_article),
                    text: format!("claim number {i}"),
                    start: 0,
                    end: 1,
                    lang: Lang::En,
                },
                cluster: group_of(i),
                stance: ClaimStance {
                    label: Label::Neutral,
                    score: 0.6,
                    probabilities: even,
                },
            })
            .collect();
        let group = |(id, members): (usize, &Range<usize>)| ClusterOut {
            id,
            size: members.len(),
            articles: members
                .clone()
                .map(|i| format!("a{}", i / per_article))
                .collect(),
            label: format!("group {id}"),
            keywords: Vec::new(),
            members: members.clone().map(|i| format!("c{i}")).collect(),
            stance: ClusterStance {
                label: Label::Neutral,
                confidence: 0.6,
                distribution: even,
                contested: false,
            },
            coherence: 0.9,
            evidence: members
                .clone()
                .map(|i| MemberEvidence {
                    claim: format!("c{i}"),
                    fit: 0.9,
                    tied_to: format!("c{}", i ^ 1),
                    tie: 0.9,
                })
                .collect(),
            shared_amounts: Vec::new(),
            shared_numbers: Vec::new(),
        };
        let duplicates = pairs
            .iter()
            .map(|&(a, b)| DuplicateOut {
                a: format!("c{a}"),
                b: format!("c{b}"),
                probability: 0.9,
                cosine: 0.95,
            })
            .collect();
        Report {
            version: REPORT_VERSION,
            model: ModelInfo {
                id: "m".into(),
                dim: 2,
                precision: "f32".into(),
                adapter: None,
                pair_reader: None,
            },
            target: TargetInfo {
                name: "t".into(),
                description: "d".into(),
                scorer: "blend".into(),
                context: "none".into(),
            },
            articles: (0..articles)
                .map(|k| Article {
                    id: format!("a{k}"),
                    path: format!("a{k}.txt"),
                    title: format!("title {k}"),
                    date: None,
                    source: None,
                    lang: Lang::En,
                })
                .collect(),
            map: (0..n).map(|i| [i as f32, (i % 7) as f32]).collect(),
            claims,
            clusters: groups.iter().enumerate().map(group).collect(),
            duplicates,
        }
    }

    /// A report of `articles` (at least 3) articles of 60 claims each, a group of
    /// 120 claims and up to 250 of two, and up to 600 duplicate pairs.
    fn large_report(articles: usize) -> Report {
        let n = articles * 60;
        let groups: Vec<Range<usize>> = std::iter::once(0..120)
            .chain((1..=250.min(n / 2 - 61)).map(|k| 120 + 2 * k..122 + 2 * k))
            .collect();
        let pairs: Vec<(usize, usize)> = (0..600.min(n / 2)).map(|i| (2 * i, 2 * i + 1)).collect();
        test_report(articles, 60, &groups, &pairs)
    }

    #[test]
    fn large_corpora_get_bounded_pages_that_say_what_they_leave_out() {
        let report = large_report(100);
        let md = report.markdown();
        for note in [
            "60 of 100 articles shown; all are in report.json and claims.parquet.",
            "200 of 251 clusters shown; all are in report.json and groups.parquet.",
            "50 of 120 members shown; all are in report.json.",
            "500 of 600 pairs shown; all are in report.json and pairs.parquet.",
        ] {
            assert!(md.contains(note), "no {note:?}");
        }
        assert!(!md.contains("## Points by article"));
        assert!(!md.contains("### 201. "));
        let html = report.html();
        assert_eq!(html.matches("<circle").count(), 3_000);
        assert!(html.contains("3000 of 6000 claims (an even sample) shown"));
        assert!(html.contains("100 articles: too many for a matrix"));
    }

    #[test]
    fn small_corpora_are_shown_whole() {
        let report = large_report(4);
        let (md, html) = (report.markdown(), report.html());
        assert!(md.contains("## Points by article"));
        for what in ["articles", "clusters", "pairs"] {
            assert!(!md.contains(&format!("{what} shown")), "{what} left out");
        }
        assert_eq!(html.matches("<circle").count(), 240);
    }
}
