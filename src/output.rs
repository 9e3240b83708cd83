//! Writing results: embeddings as `.jsonl` (`{"id", "embedding"}` per line, `-`
//! for stdout) or `.npy` (float32, `n × dim`, readable by numpy), JSON lines, and
//! any file atomically: written to a temporary file in the same folder, flushed,
//! then renamed over the target, so a failed run leaves the previous file or none,
//! never a truncated one. Outputs are checked before any work.

use std::io::{BufWriter, Write};
use std::path::Path;

use ndarray::Array2;
use ndarray_npy::WriteNpyExt;

use crate::error::{Error, Result};

/// Whether `path` names an output [`write_embeddings`] can write and the folder
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

/// Writes `path` through `write`, atomically (see the module docs).
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut (dyn Write + Send)) -> std::io::Result<()>,
) -> Result<()> {
    let dir = folder_of(path);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create", e))?;
    let fail = |e| Error::io(path, "cannot write", e);
    // Created readable by others (less the umask), as a plain new file would be;
    // tempfile's default, 0600, would carry over to the output.
    let mut file = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(fail)?;
    {
        let mut out = BufWriter::new(file.as_file_mut());
        write(&mut out).and_then(|()| out.flush()).map_err(fail)?;
    }
    file.as_file().sync_data().map_err(fail)?;
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Writes `embeddings` (one row per id) to `path`, in the format its extension names.
pub fn write_embeddings(path: &Path, ids: &[String], embeddings: &Array2<f32>) -> Result<()> {
    assert_eq!(ids.len(), embeddings.nrows(), "one id per row");
    match embeddings_format(path)? {
        EmbeddingsFormat::Stdout => to_stdout(|out| write_jsonl(out, ids, embeddings)),
        EmbeddingsFormat::Npy => write_atomically(path, |out| {
            embeddings.write_npy(out).map_err(std::io::Error::other)
        }),
        EmbeddingsFormat::JsonLines => {
            write_atomically(path, |out| write_jsonl(out, ids, embeddings))
        }
    }
}

/// Writes `rows` as JSON lines to `path`, or to stdout when `path` is `-`.
pub fn write_json_lines<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let write = |out: &mut dyn Write| -> std::io::Result<()> {
        for row in rows {
            serde_json::to_writer(&mut *out, row)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    };
    if path.as_os_str() == "-" {
        to_stdout(write)
    } else {
        write_atomically(path, |out| write(out))
    }
}

fn to_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io(Path::new("stdout"), "cannot write", e))
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
