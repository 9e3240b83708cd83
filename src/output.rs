//! Writing embeddings: `.jsonl` (`{"id", "embedding"}` per line, `-` for stdout)
//! or `.npy` (float32, `n × dim`, readable by numpy).

use std::io::{BufWriter, Write};
use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};

/// Whether `path` names an output [`write_embeddings`] can write (checked before
/// any work).
pub fn check_embeddings_path(path: &Path) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if path.as_os_str() == "-" || matches!(ext, "npy" | "jsonl" | "ndjson") {
        Ok(())
    } else {
        Err(Error::Invalid {
            option: "the output",
            why: format!(
                "{}: unsupported output type; use .npy, .jsonl or - (stdout)",
                path.display()
            ),
        })
    }
}

/// Writes `embeddings` (one row per id) to `path`, in the format its extension names.
pub fn write_embeddings(path: &Path, ids: &[String], embeddings: &Array2<f32>) -> Result<()> {
    assert_eq!(ids.len(), embeddings.nrows(), "one id per row");
    check_embeddings_path(path)?;
    if path.as_os_str() == "-" {
        let stdout = Path::new("stdout");
        return write_jsonl(std::io::stdout().lock(), ids, embeddings)
            .map_err(|e| Error::io(stdout, "cannot write", e));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "cannot create", e))?;
    }
    let written = if path.extension().is_some_and(|e| e == "npy") {
        ndarray_npy::write_npy(path, embeddings).map_err(std::io::Error::other)
    } else {
        std::fs::File::create(path)
            .and_then(|file| write_jsonl(BufWriter::new(file), ids, embeddings))
    };
    written.map_err(|e| Error::io(path, "cannot write", e))
}

fn write_jsonl(
    mut out: impl Write,
    ids: &[String],
    embeddings: &Array2<f32>,
) -> std::io::Result<()> {
    for (id, row) in ids.iter().zip(embeddings.rows()) {
        let line = serde_json::json!({"id": id, "embedding": row.to_vec()});
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// Writes `rows` as JSON lines to `path`, or to stdout when `path` is `-`.
pub fn write_json_lines<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&serde_json::to_string(row).expect("rows serialise"));
        text.push('\n');
    }
    if path.as_os_str() == "-" {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::io(Path::new("stdout"), "cannot write", e));
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, "cannot write", e))
}
