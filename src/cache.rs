//! On-disk embedding cache, so a re-run over the same corpus does not re-embed.
//!
//! One append-only file per model identity: a fingerprint (sha256) of the weights,
//! config and tokenizer, the precision and the kernel path, so another model in a
//! folder of the same name, or q8 on another instruction set, never reuses these
//! vectors. Records are `[magic: 4][sha256(role + text): 32][dim: u32][dim × f32]
//! [checksum: 8]`, the checksum the first 8 bytes of sha256 over key, dim and
//! vector. A record that fails its checksum, has another width or a non-finite
//! value is skipped, and reading resumes at the next magic; a torn last record
//! (a killed run) is cut off before anything is appended. Fresh vectors are
//! appended as each chunk of texts is embedded, so a killed run keeps its work.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ndarray::Array2;
use sha2::{Digest, Sha256};

use crate::embed::{Embedder, Role};
use crate::error::{Error, Result};

type Key = [u8; 32];

/// Marks the start of a record, so reading can resume after a damaged one.
const MAGIC: &[u8; 4] = b"SMv2";

/// Texts embedded between two appends to the file.
const CHUNK_TEXTS: usize = 1024;

/// Cached vectors of one model identity.
pub(crate) struct EmbeddingCache {
    path: PathBuf,
    dim: usize,
    vectors: HashMap<Key, Vec<f32>>,
    /// What opening the file found wrong: torn tail cut at, bytes skipped.
    repaired: Option<Repair>,
}

/// What was wrong with the cache file when it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Repair {
    /// Bytes of damaged records passed over (their vectors are embedded again).
    pub skipped_bytes: usize,
    /// Where a torn last record was cut off, if there was one.
    pub cut_at: Option<usize>,
}

fn key(role: Role, text: &str) -> Key {
    let mut h = Sha256::new();
    h.update(if role == Role::Query { b"q" } else { b"p" });
    h.update(text.as_bytes());
    h.finalize().into()
}

fn checksum(bytes: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(bytes);
    digest[..8].try_into().expect("8 bytes")
}

/// The identity of a model as the cache sees it: sha256 over the files and the
/// numeric path (precision, kernels), in hex.
pub(crate) fn fingerprint(files: &[&Path], precision: &str, kernels: &str) -> Result<String> {
    let mut h = Sha256::new();
    for path in files {
        let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, "cannot read", e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| Error::io(path, "cannot read", e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        h.update(b"\0");
    }
    h.update(precision.as_bytes());
    h.update(b"\0");
    h.update(kernels.as_bytes());
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl EmbeddingCache {
    /// Opens (or creates) the cache file of the model named `model_id` whose
    /// identity is `fingerprint`, for vectors of width `dim`, under `dir`.
    pub fn open(dir: &Path, model_id: &str, fingerprint: &str, dim: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create", e))?;
        let path = dir.join(format!("{model_id}-{}.bin", &fingerprint[..16]));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&path, "cannot read", e)),
        };
        let (vectors, repaired) = read_records(&bytes, dim);
        if let Some(cut) = repaired.and_then(|r| r.cut_at) {
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|file| file.set_len(cut as u64))
                .map_err(|e| Error::io(&path, "cannot cut a torn record off", e))?;
        }
        Ok(Self {
            path,
            dim,
            vectors,
            repaired,
        })
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was wrong with the file when it was opened, if anything.
    pub fn repaired(&self) -> Option<Repair> {
        self.repaired
    }

    /// Number of cached vectors.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Embeds `texts`, taking cached vectors where present and appending the rest
    /// chunk by chunk. Returns the embeddings and how many came from the cache.
    pub fn embed(
        &mut self,
        embedder: &Embedder,
        texts: &[&str],
        role: Role,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Array2<f32>, usize)> {
        let keys: Vec<Key> = texts.iter().map(|t| key(role, t)).collect();
        let mut wanted = HashSet::new();
        let missing: Vec<usize> = (0..texts.len())
            .filter(|&i| !self.vectors.contains_key(&keys[i]) && wanted.insert(keys[i]))
            .collect();
        let missing_texts: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
        let ids = embedder.token_ids(&missing_texts, role)?;
        let total: usize = ids.iter().map(Vec::len).sum();
        let mut done = 0;
        for (chunk, rows) in missing.chunks(CHUNK_TEXTS).zip(ids.chunks(CHUNK_TEXTS)) {
            let tokens: usize = rows.iter().map(Vec::len).sum();
            let fresh =
                embedder.embed_token_ids(rows.to_vec(), &mut |d, _| progress(done + d, total))?;
            done += tokens;
            self.append(chunk.iter().map(|&i| keys[i]).zip(fresh.rows()))?;
        }
        let mut out = Array2::zeros((texts.len(), self.dim));
        for (i, k) in keys.iter().enumerate() {
            out.row_mut(i)
                .assign(&ndarray::ArrayView1::from(&self.vectors[k][..]));
        }
        Ok((out, texts.len() - missing.len()))
    }

    /// Appends `rows` to the file and keeps them.
    fn append<'a>(
        &mut self,
        rows: impl Iterator<Item = (Key, ndarray::ArrayView1<'a, f32>)>,
    ) -> Result<()> {
        let mut record = Vec::new();
        for (key, row) in rows {
            let vector = row.to_vec();
            push_record(&mut record, &key, &vector);
            self.vectors.insert(key, vector);
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(&record).and_then(|()| file.flush()))
            .map_err(|e| Error::io(&self.path, "cannot write", e))
    }
}

fn push_record(out: &mut Vec<u8>, key: &Key, vector: &[f32]) {
    out.extend_from_slice(MAGIC);
    let start = out.len();
    out.extend_from_slice(key);
    out.extend_from_slice(&(vector.len() as u32).to_le_bytes());
    for v in vector {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let sum = checksum(&out[start..]);
    out.extend_from_slice(&sum);
}

/// Every good record of `bytes` whose vector has `dim` finite values, and what
/// was wrong, if anything.
fn read_records(bytes: &[u8], dim: usize) -> (HashMap<Key, Vec<f32>>, Option<Repair>) {
    let mut vectors = HashMap::new();
    let (mut at, mut skipped, mut cut_at) = (0, 0, None);
    while at < bytes.len() {
        if let Some((key, vector, len)) = parse_record(&bytes[at..]) {
            if vector.len() == dim && vector.iter().all(|v| v.is_finite()) {
                vectors.insert(key, vector);
            } else {
                skipped += len;
            }
            at += len;
            continue;
        }
        // A damaged record: resume at the next magic; none left means a torn tail.
        match find(&bytes[at + 1..], MAGIC) {
            Some(next) => {
                skipped += next + 1;
                at += next + 1;
            }
            None => {
                cut_at = Some(at);
                break;
            }
        }
    }
    let repaired = (skipped > 0 || cut_at.is_some()).then_some(Repair {
        skipped_bytes: skipped,
        cut_at,
    });
    (vectors, repaired)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One whole, checksummed record at the start of `bytes`: (key, vector, length).
fn parse_record(bytes: &[u8]) -> Option<(Key, Vec<f32>, usize)> {
    let body = bytes.strip_prefix(MAGIC)?;
    let dim = u32::from_le_bytes(body.get(32..36)?.try_into().ok()?) as usize;
    let body_end = 36usize.checked_add(dim.checked_mul(4)?)?;
    let sum = body.get(body_end..body_end.checked_add(8)?)?;
    if checksum(&body[..body_end]) != sum {
        return None;
    }
    let key: Key = body[..32].try_into().ok()?;
    let vector = body[36..body_end]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    Some((key, vector, MAGIC.len() + body_end + 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(rows: &[(&str, &[f32])]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (text, vector) in rows {
            push_record(&mut bytes, &key(Role::Passage, text), vector);
        }
        bytes
    }

    #[test]
    fn records_round_trip_and_torn_tails_are_cut() {
        let mut bytes = records(&[("a", &[1.0, 2.0]), ("b", &[3.0, 4.0])]);
        let whole = bytes.len();
        bytes.extend_from_within(..20); // a torn third record
        let (k, v, len) = parse_record(&bytes).unwrap();
        assert_eq!((k, v), (key(Role::Passage, "a"), vec![1.0, 2.0]));
        assert!(parse_record(&bytes[2 * len..]).is_none());

        let dir = tempfile::tempdir().unwrap();
        let fp = "0123456789abcdef0123";
        std::fs::write(dir.path().join("m-0123456789abcdef.bin"), &bytes).unwrap();
        let cache = EmbeddingCache::open(dir.path(), "m", fp, 2).unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.repaired().unwrap().cut_at, Some(whole));
        assert_eq!(
            std::fs::metadata(cache.path()).unwrap().len() as usize,
            whole
        );
    }

    #[test]
    fn a_flipped_byte_loses_one_record_not_the_rest() {
        let mut bytes = records(&[("a", &[0.5, 0.5]), ("b", &[0.25, 0.75]), ("c", &[1.0, 0.0])]);
        let one = bytes.len() / 3;
        bytes[one + 40] ^= 1; // inside b's vector
        let (vectors, repaired) = read_records(&bytes, 2);
        assert_eq!(vectors.len(), 2);
        assert!(vectors.contains_key(&key(Role::Passage, "c")));
        assert_eq!(repaired.unwrap().cut_at, None);
        assert_ne!(key(Role::Query, "x"), key(Role::Passage, "x"));
    }

    #[test]
    fn records_of_another_width_or_not_finite_are_skipped() {
        let bytes = records(&[
            ("a", &[1.0, 0.0, 0.0]),
            ("b", &[f32::NAN, 1.0]),
            ("c", &[0.6, 0.8]),
        ]);
        let (vectors, repaired) = read_records(&bytes, 2);
        assert_eq!(
            vectors.keys().collect::<Vec<_>>(),
            [&key(Role::Passage, "c")]
        );
        assert!(repaired.unwrap().skipped_bytes > 0);
    }

    #[test]
    fn another_model_under_the_same_name_has_another_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let (config, weights) = (dir.path().join("config.json"), dir.path().join("w"));
        std::fs::write(&config, "{}").unwrap();
        std::fs::write(&weights, [1u8, 2, 3]).unwrap();
        let first = fingerprint(&[&config, &weights], "f32", "avx2").unwrap();
        assert_eq!(
            first,
            fingerprint(&[&config, &weights], "f32", "avx2").unwrap()
        );
        assert_ne!(
            first,
            fingerprint(&[&config, &weights], "q8", "avx2").unwrap()
        );
        assert_ne!(
            first,
            fingerprint(&[&config, &weights], "f32", "avx512").unwrap()
        );
        std::fs::write(&weights, [1u8, 2, 4]).unwrap();
        assert_ne!(
            first,
            fingerprint(&[&config, &weights], "f32", "avx2").unwrap()
        );
    }
}
