//! Writing results: embeddings as `.jsonl` (`{"id", "embedding"}` per line, `-`
//! for stdout) or `.npy` (float32, `n × dim`, readable by numpy), JSON lines, and
//! any file atomically: written to a temporary file in the same folder, flushed,
//! then renamed over the target, so a failed run leaves the previous file or none,
//! never a truncated one. Outputs are checked before any work.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ndarray::Array2;
use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// Whether `path` names an output [`EmbeddingsWriter`] can write and the folder
/// it goes to can be written (checked before any work).
pub fn check_embeddings_path(path: &Path) -> Result<()> {
    embeddings_format(path)?;
    check_file(path)
}

/// How embeddings are written to `path`.
enum EmbeddingsFormat {
    Npy,
    JsonLines,
    Stdout,
}

fn embeddings_format(path: &Path) -> Result<EmbeddingsFormat> {
    if path.as_os_str() == "-" {
        return Ok(EmbeddingsFormat::Stdout);
    }
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "npy" => Ok(EmbeddingsFormat::Npy),
        "jsonl" | "ndjson" => Ok(EmbeddingsFormat::JsonLines),
        _ => Err(Error::Invalid {
            option: "the output",
            why: format!(
                "{}: unsupported output type; use .npy, .jsonl or - (stdout)",
                path.display()
            ),
        }),
    }
}

/// Checks that `path` (or `-`, stdout) can be written: not a folder, in a folder
/// that exists or can be made, and that takes new files.
pub fn check_file(path: &Path) -> Result<()> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    if path.is_dir() {
        return Err(Error::Invalid {
            option: "the output",
            why: format!("{} is a folder; name a file", path.display()),
        });
    }
    check_dir(folder_of(path))
}

/// Checks that `dir` is a folder, or can be made one, that takes new files
/// (making it if needed).
pub fn check_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Invalid {
            option: "the output",
            why: format!("{} is a file, not a folder", dir.display()),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create", e))?;
    tempfile::tempfile_in(dir)
        .map(drop)
        .map_err(|e| Error::io(dir, "cannot write there", e))
}

/// A file written to a temporary file in its folder, then flushed and renamed
/// over its target by [`commit`](Self::commit); dropped without it, it leaves
/// the previous file or none.
pub struct AtomicFile {
    path: PathBuf,
    out: BufWriter<NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `path` (its folder is made if needed).
    pub fn create(path: &Path) -> Result<Self> {
        let dir = folder_of(path);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create", e))?;
        // Created readable by others (less the umask), as a plain new file would be;
        // tempfile's default, 0600, would carry over to the output.
        let file = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(|e| Error::io(path, "cannot write", e))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Where the content goes.
    pub fn writer(&mut self) -> &mut BufWriter<NamedTempFile> {
        &mut self.out
    }

    /// Flushes the content to disk and renames it over the target.
    pub fn commit(self) -> Result<()> {
        let fail = |e| Error::io(&self.path, "cannot write", e);
        let file = self.out.into_inner().map_err(|e| fail(e.into_error()))?;
        file.as_file().sync_data().map_err(fail)?;
        file.persist(&self.path).map_err(|e| fail(e.error))?;
        Ok(())
    }
}

/// Writes `path` through `write`, atomically (see the module docs).
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut (dyn Write + Send)) -> std::io::Result<()>,
) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    write(file.writer()).map_err(|e| Error::io(path, "cannot write", e))?;
    file.commit()
}

/// Where a streamed output goes: stdout (`-`), or a file that appears whole only
/// when finished.
enum Sink {
    Stdout(BufWriter<std::io::Stdout>),
    File(AtomicFile),
}

impl Sink {
    fn create(path: &Path) -> Result<Self> {
        Ok(if path.as_os_str() == "-" {
            Sink::Stdout(BufWriter::new(std::io::stdout()))
        } else {
            Sink::File(AtomicFile::create(path)?)
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(out) => out,
            Sink::File(file) => file.writer(),
        }
    }

    /// Flushes stdout, or renames the file into place.
    fn finish(self) -> Result<()> {
        match self {
            Sink::Stdout(mut out) => out
                .flush()
                .map_err(|e| Error::io(Path::new("stdout"), "cannot write", e)),
            Sink::File(file) => file.commit(),
        }
    }
}

/// Embeddings written batch by batch to `.npy`, `.jsonl` or stdout (`-`); a file
/// appears, whole, only at [`finish`](Self::finish).
pub struct EmbeddingsWriter {
    sink: Sink,
    npy: bool,
    path: PathBuf,
    dim: usize,
    rows: usize,
}

/// Every `.npy` header this writer makes has this length, so the one written
/// first can be overwritten with the row count at the end.
const NPY_HEADER_BYTES: usize = 128;

impl EmbeddingsWriter {
    /// Starts writing rows of width `dim` to `path`.
    pub fn create(path: &Path, dim: usize) -> Result<Self> {
        let npy = matches!(embeddings_format(path)?, EmbeddingsFormat::Npy);
        let mut sink = Sink::create(path)?;
        if npy {
            sink.writer()
                .write_all(&npy_header(0, dim))
                .map_err(|e| Error::io(path, "cannot write", e))?;
        }
        Ok(EmbeddingsWriter {
            sink,
            npy,
            path: path.to_path_buf(),
            dim,
            rows: 0,
        })
    }

    /// Writes one batch: a row of `embeddings` per id.
    pub fn push(&mut self, ids: &[String], embeddings: &Array2<f32>) -> Result<()> {
        assert_eq!(ids.len(), embeddings.nrows(), "one id per row");
        assert_eq!(embeddings.ncols(), self.dim, "rows of the declared width");
        let out = self.sink.writer();
        let written = if self.npy {
            embeddings
                .iter()
                .try_for_each(|v| out.write_all(&v.to_le_bytes()))
        } else {
            write_jsonl(out, ids, embeddings)
        };
        self.rows += ids.len();
        written.map_err(|e| Error::io(&self.path, "cannot write", e))
    }

    /// Completes the output: the `.npy` header gets the row count, then the file
    /// is renamed into place (or stdout flushed).
    pub fn finish(mut self) -> Result<()> {
        if let (true, Sink::File(file)) = (self.npy, &mut self.sink) {
            let out = file.writer();
            out.seek(SeekFrom::Start(0))
                .and_then(|_| out.write_all(&npy_header(self.rows, self.dim)))
                .map_err(|e| Error::io(&self.path, "cannot write", e))?;
        }
        self.sink.finish()
    }
}

/// A `.npy` (version 1.0) header for `rows × dim` little-endian float32, padded
/// to [`NPY_HEADER_BYTES`].
fn npy_header(rows: usize, dim: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend(((NPY_HEADER_BYTES - 10) as u16).to_le_bytes());
    header.extend(dict.as_bytes());
    header.resize(NPY_HEADER_BYTES - 1, b' ');
    header.push(b'\n');
    header
}

/// Rows written batch by batch as JSON lines to a file (whole, only at
/// [`finish`](Self::finish)) or to stdout (`-`).
pub struct JsonLinesWriter {
    sink: Sink,
    path: PathBuf,
}

impl JsonLinesWriter {
    /// Starts writing `path`, or stdout when it is `-`.
    pub fn create(path: &Path) -> Result<Self> {
        Ok(JsonLinesWriter {
            sink: Sink::create(path)?,
            path: path.to_path_buf(),
        })
    }

    /// Writes one line per row.
    pub fn push<T: serde::Serialize>(&mut self, rows: &[T]) -> Result<()> {
        let out = self.sink.writer();
        rows.iter()
            .try_for_each(|row| {
                serde_json::to_writer(&mut *out, row)?;
                out.write_all(b"\n")
            })
            .map_err(|e| Error::io(&self.path, "cannot write", e))
    }

    /// Flushes stdout, or renames the file into place.
    pub fn finish(self) -> Result<()> {
        self.sink.finish()
    }
}

/// Writes `rows` as JSON lines to `path`, or to stdout when `path` is `-`.
pub fn write_json_lines<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut writer = JsonLinesWriter::create(path)?;
    writer.push(rows)?;
    writer.finish()
}

fn write_jsonl(
    out: &mut dyn Write,
    ids: &[String],
    embeddings: &Array2<f32>,
) -> std::io::Result<()> {
    for (id, row) in ids.iter().zip(embeddings.rows()) {
        let line = serde_json::json!({"id": id, "embedding": row.to_vec()});
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The folder a file goes to (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn npy_written_in_batches_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.npy");
        let rows = Array2::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f32 - 0.5);
        let ids: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        let mut writer = EmbeddingsWriter::create(&path, 3).unwrap();
        writer
            .push(&ids[..2], &rows.slice(ndarray::s![..2, ..]).to_owned())
            .unwrap();
        assert!(!path.exists(), "the file appears only when finished");
        writer
            .push(&ids[2..], &rows.slice(ndarray::s![2.., ..]).to_owned())
            .unwrap();
        writer.finish().unwrap();
        let back: Array2<f32> = ndarray_npy::read_npy(&path).unwrap();
        assert_eq!(back, rows);
    }

    #[test]
    fn an_atomic_write_gets_the_mode_of_a_plain_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let written = dir.path().join("written");
        write_atomically(&written, |out| out.write_all(b"x")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&written), mode(&plain));
        assert_eq!(std::fs::read(&written).unwrap(), b"x");
    }
}
