//! Reading news articles and splitting them into claims.
//!
//! Inputs are files or folders of `.txt`/`.md` (the seed format: a title line, a
//! `Source·YYYY-MM-DD HH:MM` line, then the body), `.jsonl` and `.csv` (columns `id`,
//! `title`, `text`, optional `date`, `source`, `lang`). Bytes are decoded as UTF-8, or
//! detected and decoded as GBK/GB18030, Big5, UTF-16 and others (chardetng +
//! encoding_rs). Site boilerplate (`Workflow`, `本站资料…`, `如有版权问题…`, `© CopyRight…`,
//! ICP numbers, `更新时间：…`) yields no claims.

mod assertions;
pub mod segment;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::input::{TextLines, Utf8Source, MAX_JSON_LINE_BYTES};
use crate::observer::{Observer, Silent, Stage, StageProgress};
use segment::{Piece, PieceKind};

/// Largest decoded article accepted; a bigger one is refused with an error.
pub const MAX_ARTICLE_BYTES: usize = 8 << 20;

/// One article's metadata, as reports list it. Its claims' spans index into its
/// decoded text, which the [`Corpus`] lets go once the claims are split.
#[derive(Debug, Clone, Serialize)]
pub struct Article {
    pub id: String,
    pub path: String,
    pub title: String,
    pub date: Option<String>,
    pub source: Option<String>,
    pub lang: Lang,
}

/// An article as read: its metadata and decoded text, which [`Corpus::add`]
/// splits into claims.
#[derive(Debug, Clone)]
pub struct ArticleText {
    pub article: Article,
    pub text: String,
}

/// A claim: its text, article and byte span in the article's decoded text.
#[derive(Debug, Clone, Serialize)]
pub struct Claim {
    pub id: String,
    pub article: String,
    pub text: String,
    pub start: usize,
    pub end: usize,
    pub lang: Lang,
}

/// The language of a text, by its share of Chinese characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Zh,
    En,
    Mixed,
}

impl Lang {
    /// The language's code as the report writes it (`en`, `zh`, `mixed`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
            Lang::Mixed => "mixed",
        }
    }

    /// Chinese when CJK characters dominate, English when Latin letters do.
    pub fn detect(text: &str) -> Self {
        let han = text
            .chars()
            .filter(|&c| segment::is_cjk(c) && c.is_alphabetic())
            .count();
        let latin = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
        // About five Latin letters carry what one Chinese character does.
        let share = han as f64 / (han as f64 + latin as f64 / 5.0).max(1.0);
        match share {
            s if s >= 0.8 => Lang::Zh,
            s if s <= 0.2 => Lang::En,
            _ => Lang::Mixed,
        }
    }
}

/// Errors reading a corpus.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: looks binary (NUL bytes in a file that is not UTF-16); expected text")]
    Binary { path: PathBuf },
    #[error("{path}: {size} bytes of text is more than the {max}-byte limit per article; split it into smaller files")]
    TooLarge {
        path: PathBuf,
        size: usize,
        max: usize,
    },
    #[error("{path}:{line}: {why}")]
    Record {
        path: PathBuf,
        line: usize,
        why: String,
    },
    /// Reading a `.jsonl` or `.csv` file as it streams (I/O, a line too long, a
    /// file in a legacy encoding too large to decode whole).
    #[error(transparent)]
    Stream(Box<crate::input::InputError>),
    #[error("{0}: no articles found (supported: .txt .md .jsonl .csv)")]
    Empty(PathBuf),
    #[error("{0}: no claims found (the articles are empty, or only boilerplate)")]
    NoClaims(PathBuf),
}

/// Articles and their claims, in input order.
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    pub articles: Vec<Article>,
    pub claims: Vec<Claim>,
    /// What the reading passed over or changed, one line each: files of other
    /// types, links back to a folder already read, empty articles (the first
    /// [`LISTED_EMPTY`], then a count), article ids used twice (the later
    /// article gets `id~2`, `id~3`, …).
    pub warnings: Vec<String>,
    ids: HashSet<String>,
    /// Articles that gave no claim.
    empty: usize,
}

/// Articles without a claim that the warnings name one by one.
pub const LISTED_EMPTY: usize = 10;

impl Corpus {
    /// The rows of [`claims`](Self::claims) each article holds, in article order.
    pub fn claim_ranges(&self) -> Vec<std::ops::Range<usize>> {
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        for (i, claim) in self.claims.iter().enumerate() {
            match ranges.last_mut() {
                Some(r) if self.claims[r.start].article == claim.article => r.end = i + 1,
                _ => ranges.push(i..i + 1),
            }
        }
        ranges
    }

    /// Reads every input (files, or folders walked in name order, each real file
    /// and folder once) and splits claims. What was passed over is in
    /// [`warnings`](Self::warnings); a corpus without a claim is an error.
    pub fn read(inputs: &[PathBuf]) -> Result<Corpus, CorpusError> {
        Corpus::read_observed(inputs, &Silent)
    }

    /// [`read`](Self::read), telling `observer` the bytes read so far
    /// ([`Stage::Reading`]).
    pub fn read_observed(
        inputs: &[PathBuf],
        observer: &dyn Observer,
    ) -> Result<Corpus, CorpusError> {
        let mut corpus = Corpus::default();
        let files = corpus.files(inputs)?;
        let size = |file: &PathBuf| std::fs::metadata(file).map_or(0, |m| m.len() as usize);
        let progress = StageProgress::new(observer, Stage::Reading, files.iter().map(size).sum());
        for file in &files {
            let mut warnings = Vec::new();
            FileRead {
                path: file,
                warnings: &mut warnings,
                progress: &progress,
                add: &mut |article| corpus.add(article),
                told: 0,
            }
            .read()?;
            corpus.warnings.extend(warnings);
        }
        progress.finish();
        if corpus.empty > LISTED_EMPTY {
            let more = corpus.empty - LISTED_EMPTY;
            corpus.warnings.push(format!(
                "{more} more articles have no claims ({} in all)",
                corpus.empty
            ));
        }
        let first = inputs.first().cloned().unwrap_or_default();
        if corpus.articles.is_empty() {
            return Err(CorpusError::Empty(first));
        }
        if corpus.claims.is_empty() {
            return Err(CorpusError::NoClaims(first));
        }
        Ok(corpus)
    }

    /// The files the inputs name: each file given, and each folder's supported
    /// files (an empty folder is an error).
    fn files(&mut self, inputs: &[PathBuf]) -> Result<Vec<PathBuf>, CorpusError> {
        let mut seen = HashSet::new();
        let mut files = Vec::new();
        for input in inputs {
            if !input.is_dir() {
                files.push(input.clone());
                continue;
            }
            let found = walk(input, &mut seen, &mut self.warnings)?;
            if found.is_empty() {
                return Err(CorpusError::Empty(input.clone()));
            }
            files.extend(found);
        }
        Ok(files)
    }

    /// Adds one article given as text in the seed format (a title line, an
    /// optional `Source·YYYY-MM-DD HH:MM` line, then the body), under `id`.
    pub fn add_text(&mut self, id: &str, text: &str) {
        self.add(ArticleText::plain(id, text));
    }

    /// An id no article has yet: `id`, else `id~2`, `id~3`, … (with a warning).
    fn unique_id(&mut self, article: &Article) -> String {
        let mut id = article.id.clone();
        let mut n = 1;
        while self.ids.contains(&id) {
            n += 1;
            id = format!("{}~{n}", article.id);
        }
        if n > 1 {
            self.warnings.push(format!(
                "{}: article id {:?} is already used; this article is {id:?}",
                article.path, article.id
            ));
        }
        self.ids.insert(id.clone());
        id
    }

    /// Adds an article's claims (title first, then the body's) and its metadata,
    /// under an id no other article has; the text is not kept.
    pub fn add(&mut self, read: ArticleText) {
        let pieces = read.pieces();
        let mut article = read.article;
        article.id = self.unique_id(&article);
        let before = self.claims.len();
        for piece in pieces {
            let PieceKind::Claim(text) = piece.kind else {
                continue;
            };
            self.claims.push(Claim {
                id: format!("c{}", self.claims.len()),
                article: article.id.clone(),
                lang: Lang::detect(&text),
                text,
                start: piece.range.start,
                end: piece.range.end,
            });
        }
        if self.claims.len() == before {
            self.empty += 1;
            if self.empty <= LISTED_EMPTY {
                self.warnings.push(format!(
                    "{}: article {:?} has no claims (it is empty, or only boilerplate)",
                    article.path, article.id
                ));
            }
        }
        self.articles.push(article);
    }
}

impl ArticleText {
    /// An article given as text in the seed format (a title line, an optional
    /// `Source·YYYY-MM-DD HH:MM` line, then the body), under `id`.
    pub fn plain(id: &str, text: &str) -> ArticleText {
        plain_article(id.to_string(), id.to_string(), text.to_string())
    }

    /// Every piece of the text, in order: what precedes the title line (skipped
    /// site lines), the title, then the body's pieces ([`segment::pieces`]), with
    /// boilerplate and the byline marked as such. Its claims are the article's.
    pub fn pieces(&self) -> Vec<Piece> {
        let mut pieces = Vec::new();
        let body_start = match self.title_span() {
            Some((range, body_start)) => {
                if !self.text[..range.start].trim().is_empty() {
                    pieces.push(Piece {
                        range: 0..range.start,
                        kind: PieceKind::Boilerplate,
                    });
                }
                let title = segment::clean(&self.text[range.clone()]);
                pieces.push(Piece {
                    range,
                    kind: PieceKind::Claim(title),
                });
                body_start
            }
            None => 0,
        };
        pieces.extend(segment::pieces(&self.text[body_start..], body_start));
        for piece in &mut pieces {
            if let PieceKind::Claim(text) = &piece.kind {
                if is_boilerplate(text) || looks_like_byline(text) {
                    piece.kind = PieceKind::Boilerplate;
                }
            }
        }
        if !pieces.iter().any(|p| matches!(p.kind, PieceKind::Claim(_))) {
            self.headlines_as_claims(&mut pieces);
        }
        pieces
    }

    /// In a text with no claim, its section-header-like lines are headlines
    /// (`ISIS Reportedly Executes 2nd American Journalist`): they are its claims.
    fn headlines_as_claims(&self, pieces: &mut [Piece]) {
        for piece in pieces {
            if piece.kind == PieceKind::Header {
                piece.kind = PieceKind::Claim(segment::clean(&self.text[piece.range.clone()]));
            }
        }
    }

    /// The title line's span and where the body starts, when the text starts with
    /// the title (the seed format); `None` when the title came from metadata.
    fn title_span(&self) -> Option<(std::ops::Range<usize>, usize)> {
        let start = self
            .text
            .find(self.article.title.as_str())
            .filter(|_| !self.article.title.is_empty())?;
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        (self.text[start..line_end].trim() == self.article.title)
            .then_some((start..line_end, line_end))
    }
}

/// The supported files under `dir`, in name order, each real path once (`seen`
/// holds the canonical paths read so far); what is passed over goes to `warnings`.
fn walk(
    dir: &Path,
    seen: &mut HashSet<PathBuf>,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>, CorpusError> {
    let real = std::fs::canonicalize(dir).map_err(|source| CorpusError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !seen.insert(real) {
        warnings.push(format!(
            "skipping {}: a folder already read (a link loop?)",
            dir.display()
        ));
        return Ok(Vec::new());
    }
    let io = |source| CorpusError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    let mut files = Vec::new();
    for path in entries {
        if path.is_dir() {
            files.extend(walk(&path, seen, warnings)?);
        } else if matches!(extension(&path).as_str(), "txt" | "md" | "jsonl" | "csv") {
            let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if seen.insert(real) {
                files.push(path);
            } else {
                warnings.push(format!(
                    "skipping {}: a file already read under another name",
                    path.display()
                ));
            }
        } else if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            warnings.push(format!(
                "skipping {} (not .txt .md .jsonl .csv)",
                path.display()
            ));
        }
    }
    Ok(files)
}

fn extension(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// One file being read: where its articles, its warnings and its bytes read go.
/// `.jsonl` and `.csv` files are read a record at a time, so only one article's
/// text is held at once, however large the file (one in a legacy encoding is
/// decoded whole first); other files are one article each.
struct FileRead<'a> {
    path: &'a Path,
    warnings: &'a mut Vec<String>,
    progress: &'a StageProgress<'a>,
    add: &'a mut dyn FnMut(ArticleText),
    /// The bytes told to `progress` so far.
    told: usize,
}

impl FileRead<'_> {
    /// Reads the file by its extension.
    fn read(self) -> Result<(), CorpusError> {
        match extension(self.path).as_str() {
            "jsonl" => self.jsonl(),
            "csv" => self.csv(),
            _ => self.whole(),
        }
    }

    /// Tells `progress` that the file has been read up to byte `position`.
    fn read_up_to(&mut self, position: usize) {
        self.progress.advance(position.saturating_sub(self.told));
        self.told = self.told.max(position);
    }

    /// A `.txt` or `.md` file: one article in the seed format.
    fn whole(mut self) -> Result<(), CorpusError> {
        let path = self.path;
        let bytes = std::fs::read(path).map_err(|source| CorpusError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.read_up_to(bytes.len());
        let Decoded { text, warning } = decode(path, &bytes)?;
        self.warnings.extend(warning);
        check_size(path, text.len())?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        (self.add)(plain_article(stem, path.display().to_string(), text));
        Ok(())
    }

    /// JSONL records, a line at a time.
    fn jsonl(mut self) -> Result<(), CorpusError> {
        let mut lines = TextLines::open(self.path, MAX_JSON_LINE_BYTES, self.warnings)?;
        while let Some(line) = lines.next_line(self.warnings)? {
            self.read_up_to(lines.offset());
            if let Some(article) = jsonl_record(self.path, lines.line(), &line)? {
                (self.add)(article);
            }
        }
        Ok(())
    }

    /// CSV records one at a time (a header row, then `id`, `title`, `text`, …);
    /// bad UTF-8 in a field becomes U+FFFD, said once in `warnings`.
    fn csv(mut self) -> Result<(), CorpusError> {
        let path = self.path;
        let bytes: Box<dyn std::io::Read> = match Utf8Source::open(path, self.warnings)? {
            Utf8Source::Streamed { bytes, .. } => bytes,
            Utf8Source::Decoded(text) => Box::new(std::io::Cursor::new(text.into_bytes())),
        };
        let mut reader = csv::Reader::from_reader(bytes);
        let bad = |line: u64, why: String| CorpusError::Record {
            path: path.to_path_buf(),
            line: line as usize,
            why,
        };
        let headers = lossy(reader.byte_headers().map_err(|e| bad(1, e.to_string()))?).0;
        let (mut row, mut warned) = (csv::ByteRecord::new(), false);
        let unreadable = |e: csv::Error| bad(e.position().map_or(0, |p| p.line()), e.to_string());
        while reader.read_byte_record(&mut row).map_err(unreadable)? {
            let line = row.position().map_or(0, |p| p.line());
            self.read_up_to(reader.position().byte() as usize);
            let (fields, replaced) = lossy(&row);
            if replaced && !std::mem::replace(&mut warned, true) {
                self.warnings.push(format!(
                    "{}:{line}: invalid UTF-8 replaced with U+FFFD",
                    path.display()
                ));
            }
            let record: Record = fields
                .deserialize(Some(&headers))
                .map_err(|e| bad(line, e.to_string()))?;
            (self.add)(record_article(path, line as usize, record)?);
        }
        Ok(())
    }
}

fn check_size(path: &Path, size: usize) -> Result<(), CorpusError> {
    if size > MAX_ARTICLE_BYTES {
        return Err(CorpusError::TooLarge {
            path: path.to_path_buf(),
            size,
            max: MAX_ARTICLE_BYTES,
        });
    }
    Ok(())
}

/// Decoded text, with a warning when bytes had to be replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub text: String,
    pub warning: Option<String>,
}

impl Decoded {
    fn clean(text: String) -> Self {
        Decoded {
            text,
            warning: None,
        }
    }
}

/// Decodes bytes: a BOM decides; else UTF-16 when the bytes read as UTF-16 text;
/// else UTF-8 when valid, or when nearly valid (the bad bytes become U+FFFD and
/// the warning names the first one's line and offset); else the detected legacy
/// encoding (GBK, Big5, …).
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Decoded, CorpusError> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let text = encoding.decode_without_bom_handling(&bytes[bom..]).0;
        return Ok(Decoded::clean(text.into_owned()));
    }
    if let Some(text) = utf16_without_bom(bytes) {
        return Ok(Decoded::clean(text));
    }
    if bytes.iter().take(1 << 16).any(|&b| b == 0) {
        return Err(CorpusError::Binary {
            path: path.to_path_buf(),
        });
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Decoded::clean(text.to_string()));
    }
    if let Some(decoded) = nearly_utf8(path, bytes) {
        return Ok(decoded);
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Allow);
    let (text, _, _) = encoding.decode(bytes);
    Ok(Decoded::clean(text.into_owned()))
}

/// UTF-8 with a few bad bytes: at least 20 valid multi-byte characters for each
/// bad sequence (text in a legacy encoding has few valid ones by chance).
fn nearly_utf8(path: &Path, bytes: &[u8]) -> Option<Decoded> {
    let (mut valid, mut bad, mut first_bad) = (0usize, 0usize, None);
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                valid += text.chars().filter(|c| c.len_utf8() > 1).count();
                break;
            }
            Err(e) => {
                let (good, after) = rest.split_at(e.valid_up_to());
                valid += std::str::from_utf8(good)
                    .map_or(0, |t| t.chars().filter(|c| c.len_utf8() > 1).count());
                first_bad.get_or_insert(bytes.len() - rest.len() + e.valid_up_to());
                bad += 1;
                rest = &after[e.error_len().unwrap_or(after.len())..];
            }
        }
    }
    let offset = first_bad?;
    if valid < 20 * bad {
        return None;
    }
    let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
    Some(Decoded {
        text: String::from_utf8_lossy(bytes).into_owned(),
        warning: Some(format!(
            "{}:{line}: {bad} invalid UTF-8 sequence(s), the first at byte {offset}; \
             replaced with U+FFFD",
            path.display()
        )),
    })
}

/// UTF-16 without a BOM: the byte order (if either) in which the bytes decode
/// without error into text with no control characters but line breaks and tabs.
fn utf16_without_bom(bytes: &[u8]) -> Option<String> {
    if bytes.len() < 4 || !bytes.len().is_multiple_of(2) || !bytes.contains(&0) {
        return None;
    }
    [encoding_rs::UTF_16LE, encoding_rs::UTF_16BE]
        .into_iter()
        .find_map(|encoding| {
            let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
            let text_like = text
                .chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
            (!had_errors && text_like).then(|| text.into_owned())
        })
}

/// A plain-text article in the seed format: leading `Workflow`-style lines
/// skipped, the first line as title when it is title-like, then a
/// `Source·YYYY-MM-DD HH:MM` line when present.
fn plain_article(id: String, path: String, text: String) -> ArticleText {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_boilerplate(l));
    // A Markdown title (`# Title`) is the title without its marks.
    let first = segment::heading_text(lines.next().unwrap_or_default());
    let is_title = first.chars().count() <= 80 && !first.ends_with(['。', '.', '；']);
    // Without a title line, the opening words stand in (and stay in the body).
    let title = if is_title {
        first.to_string()
    } else {
        first.chars().take(40).collect::<String>() + "…"
    };
    let (source, date) = text
        .lines()
        .take(6)
        .find_map(parse_byline)
        .map_or((None, None), |(s, d)| (Some(s), Some(d)));
    ArticleText {
        article: Article {
            id,
            path,
            lang: Lang::detect(&text),
            title,
            date,
            source,
        },
        text,
    }
}

/// `Sou Hu Cai Jing·2025-10-01 21:50` → (source, date).
fn parse_byline(line: &str) -> Option<(String, String)> {
    let (source, rest) = line.trim().split_once('·')?;
    let date = rest.trim().get(..10)?;
    let valid = date.len() == 10
        && date.chars().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    valid.then(|| (source.trim().to_string(), date.to_string()))
}

fn looks_like_byline(text: &str) -> bool {
    parse_byline(text).is_some()
}

/// Site furniture that is never a claim.
fn is_boilerplate(line: &str) -> bool {
    let line = line.trim();
    line == "Workflow"
        || line.starts_with("本站资料")
        || line.starts_with("更新时间")
        || line.starts_with("©")
        || line.to_ascii_lowercase().starts_with("copyright")
        || line.contains("ICP备")
        || line.contains("公网安备")
        || line.contains("如有版权问题")
        || line.starts_with("免责声明")
        || line.starts_with("版权所有")
        || line.to_ascii_lowercase().contains("all rights reserved")
}

#[derive(serde::Deserialize)]
struct Record {
    id: Option<serde_json::Value>,
    title: Option<String>,
    text: Option<String>,
    date: Option<String>,
    source: Option<String>,
    lang: Option<String>,
}

fn record_article(path: &Path, line: usize, record: Record) -> Result<ArticleText, CorpusError> {
    let bad = |why: String| CorpusError::Record {
        path: path.to_path_buf(),
        line,
        why,
    };
    let body = record.text.ok_or_else(|| bad("no \"text\" field".into()))?;
    if body.len() > MAX_ARTICLE_BYTES {
        return Err(bad(format!(
            "text is over the {MAX_ARTICLE_BYTES}-byte limit per article"
        )));
    }
    let id = match record.id {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => format!(
            "{}:{line}",
            path.file_stem().unwrap_or_default().to_string_lossy()
        ),
    };
    let title = record.title.unwrap_or_default();
    let text = if title.is_empty() {
        body
    } else {
        format!("{title}\n{body}")
    };
    let lang = match record.lang.as_deref() {
        Some("zh") => Lang::Zh,
        Some("en") => Lang::En,
        _ => Lang::detect(&text),
    };
    Ok(ArticleText {
        article: Article {
            id,
            path: path.display().to_string(),
            title,
            date: record.date,
            source: record.source,
            lang,
        },
        text,
    })
}

impl From<crate::input::InputError> for CorpusError {
    fn from(e: crate::input::InputError) -> Self {
        CorpusError::Stream(Box::new(e))
    }
}

/// One JSONL line's article; `None` for a blank line.
fn jsonl_record(
    path: &Path,
    number: usize,
    line: &str,
) -> Result<Option<ArticleText>, CorpusError> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let record: Record = serde_json::from_str(line).map_err(|e| CorpusError::Record {
        path: path.to_path_buf(),
        line: number,
        why: format!("invalid JSON: {e}"),
    })?;
    record_article(path, number, record).map(Some)
}

/// A CSV row as text, bad UTF-8 replaced; whether any was.
fn lossy(row: &csv::ByteRecord) -> (csv::StringRecord, bool) {
    let mut replaced = false;
    let fields = row
        .iter()
        .map(|field| {
            let text = String::from_utf8_lossy(field);
            replaced |= matches!(text, std::borrow::Cow::Owned(_));
            text
        })
        .collect();
    (fields, replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_corpus() -> Corpus {
        Corpus::read(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds")]).unwrap()
    }

    #[test]
    fn every_seed_is_segmented_cleanly() {
        let corpus = seed_corpus();
        assert_eq!(corpus.articles.len(), 5);
        for article in &corpus.articles {
            let claims: Vec<&Claim> = corpus
                .claims
                .iter()
                .filter(|c| c.article == article.id)
                .collect();
            assert!(claims.len() >= 8, "{}: {} claims", article.id, claims.len());
            for c in &claims {
                assert!(
                    !c.text.contains("[1]") && !c.text.contains("]["),
                    "citation left: {}",
                    c.text
                );
                assert!(!c.text.starts_with("Group "), "header as claim: {}", c.text);
                assert!(
                    !c.text.contains("Core Viewpoint") && !c.text.contains("Workflow"),
                    "{}",
                    c.text
                );
                assert!(
                    !c.text.contains("ICP")
                        && !c.text.contains("本站资料")
                        && !c.text.contains("版权问题"),
                    "boilerplate: {}",
                    c.text
                );
            }
        }
        let first = &corpus.articles[0];
        assert_eq!(
            first.title,
            "稀土王牌不吃香了?巴铁卖矿给美国救军工,其实中国早留有后手"
        );
        assert_eq!(first.date.as_deref(), Some("2025-10-01"));
        assert_eq!(first.source.as_deref(), Some("Sou Hu Cai Jing"));
        assert_eq!(corpus.claims[0].text, first.title);
        assert!(corpus.claims.iter().any(|c| c.text == "The U.S. is providing $500 million in investment along with technical support, which is crucial for Pakistan at this time."));
        assert!(corpus.claims.iter().any(|c| c
            .text
            .starts_with("2025年9月8日,美国战略金属公司与巴基斯坦签署价值5亿美元的谅解备忘录")));
    }

    #[test]
    fn gbk_and_utf16_are_detected() {
        let text = "中国商务部公告扩展稀土管制，将五种元素新增至限制名单。";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(decode(Path::new("a.txt"), &gbk).unwrap().text, text);
        let mut utf16: Vec<u8> = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode(Path::new("b.txt"), &utf16).unwrap().text, text);
        let ascii16: Vec<u8> = "plain English text here"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(
            decode(Path::new("c.txt"), &ascii16).unwrap().text,
            "plain English text here"
        );
    }

    #[test]
    fn jsonl_is_read_a_line_at_a_time_whatever_its_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let record = |k: usize, text: &str| format!("{{\"id\":\"r{k}\",\"text\":\"{text}\"}}\n");
        // Past the sniffed bytes, a line with a bad byte is read, and said once.
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        for k in 0..2_000 {
            bytes.extend(record(k, "China refines most of the world's rare earths.").as_bytes());
        }
        bytes.extend(b"{\"id\":\"bad\",\"text\":\"Pakistan \xFF signed a deal.\"}\n\n");
        assert!(bytes.len() > 1 << 16, "past the bytes sniffed");
        let utf8 = dir.path().join("a.jsonl");
        std::fs::write(&utf8, &bytes).unwrap();
        let corpus = Corpus::read(std::slice::from_ref(&utf8)).unwrap();
        assert_eq!(corpus.articles.len(), 2_001);
        assert_eq!(
            corpus.articles[0].id, "r0",
            "the BOM is not part of the first record"
        );
        assert_eq!(
            corpus.claims.last().unwrap().text,
            "Pakistan \u{FFFD} signed a deal."
        );
        assert_eq!(corpus.warnings.len(), 1, "{:?}", corpus.warnings);
        assert!(
            corpus.warnings[0].contains("a.jsonl:2001: invalid UTF-8"),
            "{:?}",
            corpus.warnings
        );
        // A legacy encoding is decoded whole, as before.
        let line = record(0, "中国商务部公告扩展稀土管制，将五种元素新增至限制名单。");
        let (gbk, _, _) = encoding_rs::GBK.encode(&line);
        let legacy = dir.path().join("b.jsonl");
        std::fs::write(&legacy, &gbk).unwrap();
        let corpus = Corpus::read(&[legacy]).unwrap();
        assert_eq!(
            corpus.claims[0].text,
            "中国商务部公告扩展稀土管制，将五种元素新增至限制名单。"
        );
        // A headline alone is the article's claim.
        let headline = "ISIS Reportedly Executes 2nd American Journalist";
        std::fs::write(&utf8, record(0, headline)).unwrap();
        let corpus = Corpus::read(std::slice::from_ref(&utf8)).unwrap();
        assert_eq!(corpus.claims[0].text, headline);
        assert!(corpus.warnings.is_empty(), "{:?}", corpus.warnings);
        // Articles without a claim are named by id, then counted.
        let empties: String = (0..12).map(|k| record(k, " ")).collect();
        std::fs::write(&utf8, empties + &record(12, "Rare earths matter a lot.")).unwrap();
        let corpus = Corpus::read(std::slice::from_ref(&utf8)).unwrap();
        assert_eq!(
            corpus.warnings.len(),
            LISTED_EMPTY + 1,
            "{:?}",
            corpus.warnings
        );
        assert!(
            corpus.warnings[0].contains("article \"r0\" has no claims"),
            "{:?}",
            corpus.warnings
        );
        assert_eq!(
            corpus.warnings[LISTED_EMPTY],
            "2 more articles have no claims (12 in all)"
        );
        // A bad record names its line.
        std::fs::write(&utf8, format!("{}\n{{\"id\":1}}\n", record(0, "x"))).unwrap();
        let err = Corpus::read(&[utf8]).unwrap_err().to_string();
        assert!(err.contains("a.jsonl:3: no \"text\" field"), "{err}");
    }

    #[test]
    fn reading_is_told_in_bytes_up_to_the_inputs_size() {
        #[derive(Default)]
        struct Recorder(std::sync::Mutex<Vec<(usize, usize)>>);
        impl Observer for Recorder {
            fn event(&self, event: &crate::Event) {
                if let crate::Event::Working { stage, done, total } = event {
                    assert_eq!(*stage, Stage::Reading);
                    self.0.lock().unwrap().push((*done, *total));
                }
            }
        }
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        let size: u64 = std::fs::read_dir(&seeds)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        let recorder = Recorder::default();
        Corpus::read_observed(&[seeds], &recorder).unwrap();
        let told = recorder.0.into_inner().unwrap();
        assert!(told.len() >= 5, "{told:?}");
        assert!(told.windows(2).all(|w| w[0].0 <= w[1].0), "{told:?}");
        assert_eq!(*told.last().unwrap(), (size as usize, size as usize));
    }

    #[test]
    fn csv_is_read_a_record_at_a_time_whatever_its_encoding() {
        let dir = tempfile::tempdir().unwrap();
        let utf8 = dir.path().join("a.csv");
        // Past the sniffed bytes, a field with a bad byte is read, and said once.
        let mut bytes = b"id,title,text\n".to_vec();
        for k in 0..2_000 {
            bytes.extend(
                format!("r{k},T,\"China refines most rare earths.\nIt says so.\"\n").as_bytes(),
            );
        }
        bytes.extend(b"y,U,Pakistan \xFF signed a deal.\n");
        assert!(bytes.len() > 1 << 16, "past the bytes sniffed");
        std::fs::write(&utf8, &bytes).unwrap();
        let corpus = Corpus::read(std::slice::from_ref(&utf8)).unwrap();
        assert_eq!(corpus.articles.len(), 2_001);
        assert_eq!(
            corpus.claims.last().unwrap().text,
            "Pakistan \u{FFFD} signed a deal."
        );
        assert!(
            corpus.warnings[0].contains("a.csv:4002: invalid UTF-8"),
            "{:?}",
            corpus.warnings
        );
        let (gbk, _, _) =
            encoding_rs::GBK.encode("id,title,text\nz,标题,中国商务部公告扩展稀土管制。\n");
        let legacy = dir.path().join("b.csv");
        std::fs::write(&legacy, &gbk).unwrap();
        let corpus = Corpus::read(&[legacy]).unwrap();
        assert_eq!(corpus.claims[1].text, "中国商务部公告扩展稀土管制。");
        std::fs::write(&utf8, "id,title,text\nx,T,fine\ny,U\n").unwrap();
        let err = Corpus::read(&[utf8]).unwrap_err().to_string();
        assert!(err.contains("a.csv:3:"), "{err}");
    }

    #[test]
    fn jsonl_and_csv_records() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("a.jsonl");
        std::fs::write(&jsonl, "{\"id\":\"x\",\"title\":\"T\",\"text\":\"Rare earths matter a lot.\",\"date\":\"2025-10-01\"}\n").unwrap();
        let csv = dir.path().join("b.csv");
        std::fs::write(&csv, "id,title,text\ny,标题,稀土很重要。\n").unwrap();
        let corpus = Corpus::read(&[jsonl, csv.clone()]).unwrap();
        assert_eq!(corpus.articles.len(), 2);
        assert_eq!(corpus.articles[0].date.as_deref(), Some("2025-10-01"));
        assert_eq!(corpus.articles[1].lang, Lang::Zh);
        std::fs::write(&csv, "id,title\ny,no text\n").unwrap();
        let err = Corpus::read(&[csv]).unwrap_err().to_string();
        assert!(err.contains("b.csv:2: no \"text\" field"), "{err}");
    }
}
