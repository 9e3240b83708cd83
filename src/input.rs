//! Reading passages to embed: `.txt` (one per non-empty line), `.jsonl`
//! (`{"id": .., "text": ..}`), or `-` for lines on standard input, streamed: a
//! [`PassageReader`] holds one line at a time, so memory is bounded by the batch
//! the caller asks for, not by the file. UTF-8 is read line by line (a line with
//! bad bytes gets U+FFFD and a warning naming `file:line` and the byte offset);
//! a file whose first 64 KiB are not UTF-8 (UTF-16, GBK, Big5, …) is decoded whole,
//! as `cluster` decodes articles ([`crate::corpus::decode`]), up to
//! [`MAX_DECODED_FILE_BYTES`]. Every error names the file and, where there is one,
//! the line. [`Utf8Source`] (that choice) and [`TextLines`] (lines with their
//! numbers) also read `cluster`'s `.csv` and `.jsonl` articles.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

/// Largest passage accepted (the corpus's per-article limit): a longer one would
/// take gigabytes and minutes before any output.
pub const MAX_PASSAGE_BYTES: usize = crate::corpus::MAX_ARTICLE_BYTES;

/// Largest file decoded whole (one that is not UTF-8): convert larger ones first.
pub const MAX_DECODED_FILE_BYTES: usize = 256 << 20;

/// How much of a file decides whether it is streamed as UTF-8.
const HEAD_BYTES: usize = 64 << 10;

/// Longest `.jsonl` line: room for the largest passage with escapes.
pub const MAX_JSON_LINE_BYTES: usize = 2 * MAX_PASSAGE_BYTES;

/// One text to embed, with the id it is reported under.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    pub id: String,
    pub text: String,
}

/// Errors reading input files.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Decode(#[from] crate::corpus::CorpusError),
    #[error("{path}:{line}: {why}")]
    Line {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("{path}: passage {id} has {size} bytes, more than the {MAX_PASSAGE_BYTES}-byte limit; split it")]
    TooLarge {
        path: PathBuf,
        id: String,
        size: usize,
    },
    #[error("{path}:{line}: the line is longer than {max} bytes; split it")]
    LineTooLong {
        path: PathBuf,
        line: usize,
        max: usize,
    },
    #[error("{path}: not UTF-8 and larger than {MAX_DECODED_FILE_BYTES} bytes, the most decoded at once; convert it to UTF-8 (e.g. with iconv)")]
    TooLargeToDecode { path: PathBuf },
    #[error("{path}: no passages (the file is empty or has only blank lines)")]
    Empty { path: PathBuf },
    #[error("{path}: unsupported input type; use .txt (one passage per line), .jsonl (id, text) or - for stdin")]
    Unsupported { path: PathBuf },
}

/// Reads the passages of one input (`-` is standard input, read as lines); a
/// decoding warning goes to `warnings`.
pub fn read_passages(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<Passage>, InputError> {
    read_all(&[path.to_path_buf()], warnings)
}

/// Reads several inputs in order; decoding warnings go to `warnings`.
pub fn read_all(paths: &[PathBuf], warnings: &mut Vec<String>) -> Result<Vec<Passage>, InputError> {
    let mut reader = PassageReader::new(paths);
    let passages = reader.next_batch(usize::MAX)?;
    warnings.extend(reader.take_warnings());
    Ok(passages)
}

/// The passages of several inputs, in order, read as they are asked for.
pub struct PassageReader {
    paths: VecDeque<PathBuf>,
    file: Option<FileReader>,
    warnings: Vec<String>,
}

impl PassageReader {
    /// A reader over `paths` (`-` is standard input); nothing is opened yet.
    pub fn new(paths: &[PathBuf]) -> Self {
        PassageReader {
            paths: paths.iter().cloned().collect(),
            file: None,
            warnings: Vec::new(),
        }
    }

    /// The next `n` passages, fewer only at the end of the input (none: the end).
    pub fn next_batch(&mut self, n: usize) -> Result<Vec<Passage>, InputError> {
        let mut batch = Vec::new();
        while batch.len() < n {
            let file = match &mut self.file {
                Some(file) => file,
                None => match self.paths.pop_front() {
                    Some(path) => self
                        .file
                        .insert(FileReader::open(path, &mut self.warnings)?),
                    None => break,
                },
            };
            match file.next_passage(&mut self.warnings)? {
                Some(passage) => batch.push(passage),
                None => self.file = None,
            }
        }
        Ok(batch)
    }

    /// The decoding warnings since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

/// How a file's lines become passages.
#[derive(Clone, Copy)]
enum Format {
    /// One passage per non-empty line.
    Lines,
    /// One `{"id", "text"}` object per non-empty line.
    JsonLines,
}

/// One input being read as passages.
struct FileReader {
    stem: String,
    format: Format,
    lines: TextLines,
    passages: usize,
}

impl FileReader {
    /// Opens `path`, deciding from its first bytes whether it streams as UTF-8.
    fn open(path: PathBuf, warnings: &mut Vec<String>) -> Result<Self, InputError> {
        let is_stdin = path.as_os_str() == "-";
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let (format, max_line) = match ext {
            _ if is_stdin => (Format::Lines, MAX_PASSAGE_BYTES),
            "txt" | "text" | "md" => (Format::Lines, MAX_PASSAGE_BYTES),
            "jsonl" | "ndjson" => (Format::JsonLines, MAX_JSON_LINE_BYTES),
            _ => return Err(InputError::Unsupported { path }),
        };
        Ok(FileReader {
            stem: stem(&path),
            format,
            lines: TextLines::open(&path, max_line, warnings)?,
            passages: 0,
        })
    }

    /// The next passage of the file, or `None` at its end (an error if it had none).
    fn next_passage(&mut self, warnings: &mut Vec<String>) -> Result<Option<Passage>, InputError> {
        while let Some(line) = self.lines.next_line(warnings)? {
            if line.trim().is_empty() {
                continue;
            }
            let passage = match self.format {
                Format::Lines => Passage {
                    id: format!("{}:{}", self.stem, self.lines.line()),
                    text: line,
                },
                Format::JsonLines => self.json_passage(&line)?,
            };
            if passage.text.len() > MAX_PASSAGE_BYTES {
                return Err(InputError::TooLarge {
                    path: self.lines.path.clone(),
                    id: passage.id,
                    size: passage.text.len(),
                });
            }
            self.passages += 1;
            return Ok(Some(passage));
        }
        if self.passages == 0 {
            return Err(InputError::Empty {
                path: self.lines.path.clone(),
            });
        }
        Ok(None)
    }

    /// A `.jsonl` line as a passage: `text` required, `id` a string or number
    /// (else `stem:line`).
    fn json_passage(&self, line: &str) -> Result<Passage, InputError> {
        let bad = |why: String| InputError::Line {
            path: self.lines.path.clone(),
            line: self.lines.line(),
            why,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let text = match value.get("text") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err(bad("\"text\" is not a string".into())),
            None => return Err(bad("no \"text\" field".into())),
        };
        let id = match value.get("id") {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => format!("{}:{}", self.stem, self.lines.line()),
        };
        Ok(Passage { id, text })
    }
}

/// A text file (or `-`, standard input) read a line at a time: UTF-8 streamed as
/// it comes, a file whose first bytes are not UTF-8 decoded whole first.
pub struct TextLines {
    path: PathBuf,
    lines: Box<dyn BufRead>,
    /// The longest line accepted.
    max: usize,
    /// Lines read so far, and the byte offset after them.
    line: usize,
    offset: usize,
    warned_utf8: bool,
}

impl TextLines {
    /// Opens `path`, deciding from its first bytes whether it streams as UTF-8;
    /// lines over `max` bytes will be refused. A decoding warning goes to
    /// `warnings`.
    pub fn open(path: &Path, max: usize, warnings: &mut Vec<String>) -> Result<Self, InputError> {
        // A UTF-8 byte-order mark is no part of the first line (offsets count it).
        let (bom, lines): (usize, Box<dyn BufRead>) = match Utf8Source::open(path, warnings)? {
            Utf8Source::Streamed { bom, bytes } => (bom, Box::new(BufReader::new(bytes))),
            Utf8Source::Decoded(text) => (0, Box::new(Cursor::new(text.into_bytes()))),
        };
        Ok(TextLines {
            path: path.to_path_buf(),
            lines,
            max,
            line: 0,
            offset: bom,
            warned_utf8: false,
        })
    }

    /// The number of the line last read (1 for the first).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The bytes read so far (decoded bytes, for a file decoded whole).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The next line without its line break, or `None` at the end; bad UTF-8
    /// becomes U+FFFD, with a warning for the first such line of the file.
    pub fn next_line(&mut self, warnings: &mut Vec<String>) -> Result<Option<String>, InputError> {
        let mut bytes = Vec::new();
        let read = (&mut self.lines)
            .take(self.max as u64 + 2)
            .read_until(b'\n', &mut bytes)
            .map_err(|source| InputError::Io {
                path: self.path.clone(),
                source,
            })?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        let line_start = self.offset;
        self.offset += read;
        let content = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.len() > self.max {
            return Err(InputError::LineTooLong {
                path: self.path.clone(),
                line: self.line,
                max: self.max,
            });
        }
        match std::str::from_utf8(content) {
            Ok(text) => Ok(Some(text.to_string())),
            Err(e) => {
                if !std::mem::replace(&mut self.warned_utf8, true) {
                    warnings.push(format!(
                        "{}:{}: invalid UTF-8 at byte {}; replaced with U+FFFD",
                        self.path.display(),
                        self.line,
                        line_start + e.valid_up_to()
                    ));
                }
                Ok(Some(String::from_utf8_lossy(content).into_owned()))
            }
        }
    }
}

/// A text file's (or standard input's) UTF-8: streamed as it comes when its first
/// bytes read as UTF-8, else decoded whole first.
pub enum Utf8Source {
    /// The bytes after a UTF-8 byte-order mark of `bom` bytes (0 or 3).
    Streamed { bom: usize, bytes: Box<dyn Read> },
    /// A file in another encoding, decoded whole ([`crate::corpus::decode`]).
    Decoded(String),
}

impl Utf8Source {
    /// Opens `path` (`-` is standard input) and reads its first bytes to choose;
    /// a decoding warning goes to `warnings`.
    pub fn open(path: &Path, warnings: &mut Vec<String>) -> Result<Self, InputError> {
        let io = |source| InputError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut source: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(path).map_err(io)?)
        };
        let mut head = Vec::new();
        (&mut source)
            .take(HEAD_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(io)?;
        if !streams_as_utf8(&head) {
            return decode_whole(path, head, source, warnings).map(Utf8Source::Decoded);
        }
        let bom = if head.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        head.drain(..bom);
        Ok(Utf8Source::Streamed {
            bom,
            bytes: Box::new(Cursor::new(head).chain(source)),
        })
    }
}

/// Whether a file that starts with `head` streams as UTF-8: no NUL, no UTF-16
/// byte-order mark, and valid UTF-8 but for a character cut at the end.
fn streams_as_utf8(head: &[u8]) -> bool {
    let utf16 = head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF");
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    valid && !utf16 && !head.contains(&0)
}

/// Reads the rest of a file that is not UTF-8 and decodes it whole.
fn decode_whole(
    path: &Path,
    mut bytes: Vec<u8>,
    source: Box<dyn Read>,
    warnings: &mut Vec<String>,
) -> Result<String, InputError> {
    let limit = MAX_DECODED_FILE_BYTES as u64 + 1;
    source
        .take(limit)
        .read_to_end(&mut bytes)
        .map_err(|source| InputError::Io {
            path: path.into(),
            source,
        })?;
    if bytes.len() > MAX_DECODED_FILE_BYTES {
        return Err(InputError::TooLargeToDecode { path: path.into() });
    }
    let decoded = crate::corpus::decode(path, &bytes)?;
    warnings.extend(decoded.warning);
    Ok(decoded.text)
}

fn stem(path: &Path) -> String {
    if path.as_os_str() == "-" {
        return "stdin".into();
    }
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn txt_lines_become_passages() {
        let (_d, p) = write("a.txt", "first\n\n  \nsecond\r\n".as_bytes());
        let got = read_passages(&p, &mut Vec::new()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].id, "a:4");
        assert_eq!(got[1].text, "second");
    }

    #[test]
    fn jsonl_ids_and_missing_text() {
        let (_d, p) = write(
            "b.jsonl",
            b"{\"id\": 7, \"text\": \"x\"}\n{\"text\": \"y\"}\n",
        );
        let got = read_passages(&p, &mut Vec::new()).unwrap();
        assert_eq!((got[0].id.as_str(), got[1].id.as_str()), ("7", "b:2"));
        let (_d, p) = write("c.jsonl", b"{\"text\": \"x\"}\n{\"id\": 1}\n");
        let err = read_passages(&p, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.ends_with("c.jsonl:2: no \"text\" field"), "{err}");
    }

    #[test]
    fn passages_are_decoded_as_articles_are() {
        let text = "中国稀土出口管制的新规定今天生效，美国与巴基斯坦签署了协议";
        let mut bad_byte = format!("{text}\n{text}").into_bytes();
        bad_byte.insert(bad_byte.len() - 6, 0xff);
        let gbk = encoding_rs::GBK.encode(text).0.into_owned();
        let bom = [b"\xEF\xBB\xBF".as_slice(), b"{\"text\": \"x\"}\n"].concat();
        let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for (name, bytes, first) in [
            ("u.txt", bad_byte, text),
            ("g.txt", gbk, text),
            ("b.jsonl", bom, "x"),
            ("w.txt", utf16, text),
        ] {
            let (_d, p) = write(name, &bytes);
            let mut warnings = Vec::new();
            let got = read_passages(&p, &mut warnings).unwrap();
            assert_eq!(got[0].text, first, "{name}");
            if name == "u.txt" {
                assert!(got[1].text.contains('\u{FFFD}'), "{got:?}");
                assert!(warnings[0].contains("u.txt:2:"), "{warnings:?}");
            } else {
                assert!(warnings.is_empty(), "{name}: {warnings:?}");
            }
        }
    }

    #[test]
    fn batches_run_across_files_in_order() {
        let (_d, a) = write("a.txt", b"one\ntwo\nthree\n");
        let (_e, b) = write("b.jsonl", b"{\"id\": \"x\", \"text\": \"four\"}\n");
        let mut reader = PassageReader::new(&[a, b]);
        let ids = |batch: Vec<Passage>| batch.into_iter().map(|p| p.id).collect::<Vec<_>>();
        assert_eq!(ids(reader.next_batch(2).unwrap()), ["a:1", "a:2"]);
        assert_eq!(ids(reader.next_batch(2).unwrap()), ["a:3", "x"]);
        assert!(reader.next_batch(2).unwrap().is_empty());
    }

    #[test]
    fn a_bad_byte_past_the_head_is_replaced_on_its_line() {
        let line = "稀土".repeat(2000);
        let mut bytes = format!("{line}\n").repeat(20).into_bytes();
        let at = bytes.len() - 10;
        bytes[at] = 0xFF;
        let (_d, p) = write("big.txt", &bytes);
        let mut warnings = Vec::new();
        let got = read_passages(&p, &mut warnings).unwrap();
        assert_eq!(got.len(), 20);
        assert!(got[19].text.contains('\u{FFFD}') && got[18].text == line);
        assert_eq!(
            warnings,
            [format!(
                "{}:20: invalid UTF-8 at byte {at}; replaced with U+FFFD",
                p.display()
            )]
        );
    }

    #[test]
    fn bad_files_are_named() {
        let (_d, p) = write("e.txt", b"");
        assert!(matches!(
            read_passages(&p, &mut Vec::new()),
            Err(InputError::Empty { .. })
        ));
        let (_d, p) = write("bin.txt", b"abc\0def");
        let err = read_passages(&p, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("bin.txt") && err.contains("binary"), "{err}");
        let (_d, p) = write("x.pdf", b"%PDF");
        assert!(matches!(
            read_passages(&p, &mut Vec::new()),
            Err(InputError::Unsupported { .. })
        ));
    }
}
