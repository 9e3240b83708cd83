//! Writing embeddings: `.jsonl` (`{"id", "embedding"}` per line, `-` for stdout)
//! or `.npy` (float32, `n × dim`, readable by numpy).

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use ndarray::Array2;

/// Writes `embeddings` (one row per id) to `path`, in the format its extension names.
pub fn write_embeddings(path: &Path, ids: &[String], embeddings: &Array2<f32>) -> Result<()> {
    assert_eq!(ids.len(), embeddings.nrows(), "one id per row");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if path.as_os_str() == "-" {
        return write_jsonl(std::io::stdout().lock(), ids, embeddings).context("stdout");
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    match ext {
        "npy" => ndarray_npy::write_npy(path, embeddings)
            .with_context(|| format!("{}: cannot write", path.display())),
        "jsonl" | "ndjson" => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("{}: cannot create", path.display()))?;
            write_jsonl(BufWriter::new(file), ids, embeddings)
                .with_context(|| format!("{}: cannot write", path.display()))
        }
        _ => bail!(
            "{}: unsupported output type; use .npy, .jsonl or - (stdout)",
            path.display()
        ),
    }
}

fn write_jsonl(mut out: impl Write, ids: &[String], embeddings: &Array2<f32>) -> Result<()> {
    for (id, row) in ids.iter().zip(embeddings.rows()) {
        let line = serde_json::json!({"id": id, "embedding": row.to_vec()});
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}
