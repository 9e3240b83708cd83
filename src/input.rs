//! Reading passages to embed: `.txt` (one per non-empty line), `.jsonl`
//! (`{"id": .., "text": ..}`), or `-` for lines on standard input. Every error
//! names the file and, where there is one, the line.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest passage accepted (the corpus's per-article limit): a longer one would
/// take gigabytes and minutes before any output.
pub const MAX_PASSAGE_BYTES: usize = crate::corpus::MAX_ARTICLE_BYTES;

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
    #[error("{path}: looks binary (NUL byte at offset {offset}); expected UTF-8 text")]
    Binary { path: PathBuf, offset: usize },
    #[error("{path}:{line}: invalid UTF-8 (byte offset {offset})")]
    Utf8 {
        path: PathBuf,
        line: usize,
        offset: usize,
    },
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
    #[error("{path}: no passages (the file is empty or has only blank lines)")]
    Empty { path: PathBuf },
    #[error("{path}: unsupported input type; use .txt (one passage per line), .jsonl (id, text) or - for stdin")]
    Unsupported { path: PathBuf },
}

/// Reads the passages of one input (`-` is standard input, read as lines).
pub fn read_passages(path: &Path) -> Result<Vec<Passage>, InputError> {
    let is_stdin = path.as_os_str() == "-";
    let bytes = if is_stdin {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|source| InputError::Io {
                path: path.into(),
                source,
            })?;
        buf
    } else {
        std::fs::read(path).map_err(|source| InputError::Io {
            path: path.into(),
            source,
        })?
    };
    let text = decode(path, &bytes)?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let passages = match ext {
        _ if is_stdin => lines(path, text),
        "txt" | "text" | "md" => lines(path, text),
        "jsonl" | "ndjson" => jsonl(path, text)?,
        _ => return Err(InputError::Unsupported { path: path.into() }),
    };
    if passages.is_empty() {
        return Err(InputError::Empty { path: path.into() });
    }
    if let Some(p) = passages.iter().find(|p| p.text.len() > MAX_PASSAGE_BYTES) {
        return Err(InputError::TooLarge {
            path: path.into(),
            id: p.id.clone(),
            size: p.text.len(),
        });
    }
    Ok(passages)
}

/// Reads several inputs in order.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Passage>, InputError> {
    let mut all = Vec::new();
    for p in paths {
        all.extend(read_passages(p)?);
    }
    Ok(all)
}

fn decode<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, InputError> {
    if let Some(offset) = bytes.iter().take(1 << 16).position(|&b| b == 0) {
        return Err(InputError::Binary {
            path: path.into(),
            offset,
        });
    }
    // A UTF-8 byte-order mark is no part of the first passage.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        InputError::Utf8 {
            path: path.into(),
            line,
            offset,
        }
    })
}

fn stem(path: &Path) -> String {
    if path.as_os_str() == "-" {
        return "stdin".into();
    }
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn lines(path: &Path, text: &str) -> Vec<Passage> {
    let stem = stem(path);
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Passage {
            id: format!("{stem}:{}", i + 1),
            text: l.trim_end_matches('\r').to_string(),
        })
        .collect()
}

fn jsonl(path: &Path, text: &str) -> Result<Vec<Passage>, InputError> {
    let stem = stem(path);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| InputError::Line {
            path: path.into(),
            line: i + 1,
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
            _ => format!("{stem}:{}", i + 1),
        };
        out.push(Passage { id, text });
    }
    Ok(out)
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
        let got = read_passages(&p).unwrap();
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
        let got = read_passages(&p).unwrap();
        assert_eq!((got[0].id.as_str(), got[1].id.as_str()), ("7", "b:2"));
        let (_d, p) = write("c.jsonl", b"{\"text\": \"x\"}\n{\"id\": 1}\n");
        let err = read_passages(&p).unwrap_err().to_string();
        assert!(err.ends_with("c.jsonl:2: no \"text\" field"), "{err}");
    }

    #[test]
    fn bad_files_are_named() {
        let (_d, p) = write("e.txt", b"");
        assert!(matches!(read_passages(&p), Err(InputError::Empty { .. })));
        let (_d, p) = write("bin.txt", b"abc\0def");
        assert!(matches!(read_passages(&p), Err(InputError::Binary { .. })));
        let (_d, p) = write("u.txt", b"ok\nbad \xff\n");
        let err = read_passages(&p).unwrap_err().to_string();
        assert!(err.contains("u.txt:2: invalid UTF-8"), "{err}");
        let (_d, p) = write("x.pdf", b"%PDF");
        assert!(matches!(
            read_passages(&p),
            Err(InputError::Unsupported { .. })
        ));
    }
}
