//! On-disk embedding cache, so a re-run over the same corpus does not re-embed.
//!
//! One append-only file per (model, precision): records of
//! `[sha256(role + text): 32][dim: u32][dim × f32][checksum: 8]`, where the checksum
//! is the first 8 bytes of sha256 over key, dim and vector. A process killed mid-write
//! leaves at most a torn last record: it fails its length or checksum, is ignored, and
//! the file is cut back to the last whole record before anything new is appended.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use sha2::{Digest, Sha256};

use crate::embed::{Embedder, Role};
use crate::error::{Error, Result};

type Key = [u8; 32];

/// Cached vectors of one model at one precision.
pub(crate) struct EmbeddingCache {
    path: PathBuf,
    vectors: HashMap<Key, Vec<f32>>,
    /// Where a torn last record was cut off when the file was opened.
    repaired_at: Option<usize>,
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

impl EmbeddingCache {
    /// Opens (or creates) the cache file for `model_id` at `precision` under `dir`.
    pub fn open(dir: &Path, model_id: &str, precision: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create", e))?;
        let path = dir.join(format!("{model_id}-{precision}.bin"));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&path, "cannot read", e)),
        };
        let mut vectors = HashMap::new();
        let mut good = 0;
        while let Some((key, vector, len)) = parse_record(&bytes[good..]) {
            vectors.insert(key, vector);
            good += len;
        }
        let repaired_at = (good < bytes.len()).then_some(good);
        if repaired_at.is_some() {
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|file| file.set_len(good as u64))
                .map_err(|e| Error::io(&path, "cannot cut a torn record off", e))?;
        }
        Ok(Self {
            path,
            vectors,
            repaired_at,
        })
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where a torn last record was cut off when the file was opened, if one was.
    pub fn repaired_at(&self) -> Option<usize> {
        self.repaired_at
    }

    /// Number of cached vectors.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Embeds `texts`, taking cached vectors where present and caching the rest.
    /// Returns the embeddings and how many came from the cache.
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
        let fresh = if missing.is_empty() {
            Array2::zeros((0, embedder.dim()))
        } else {
            embedder.embed(&missing_texts, role, progress)?
        };
        let mut record = Vec::new();
        for (&i, row) in missing.iter().zip(fresh.rows()) {
            let vector = row.to_vec();
            push_record(&mut record, &keys[i], &vector);
            self.vectors.insert(keys[i], vector);
        }
        if !record.is_empty() {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .and_then(|mut file| file.write_all(&record).and_then(|()| file.flush()))
                .map_err(|e| Error::io(&self.path, "cannot write", e))?;
        }
        let dim = embedder.dim();
        let mut out = Array2::zeros((texts.len(), dim));
        for (i, k) in keys.iter().enumerate() {
            out.row_mut(i)
                .assign(&ndarray::ArrayView1::from(&self.vectors[k][..]));
        }
        Ok((out, texts.len() - missing.len()))
    }
}

fn push_record(out: &mut Vec<u8>, key: &Key, vector: &[f32]) {
    let start = out.len();
    out.extend_from_slice(key);
    out.extend_from_slice(&(vector.len() as u32).to_le_bytes());
    for v in vector {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let sum = checksum(&out[start..]);
    out.extend_from_slice(&sum);
}

/// One whole, checksummed record at the start of `bytes`: (key, vector, length).
fn parse_record(bytes: &[u8]) -> Option<(Key, Vec<f32>, usize)> {
    let dim = u32::from_le_bytes(bytes.get(32..36)?.try_into().ok()?) as usize;
    let body_end = 36usize.checked_add(dim.checked_mul(4)?)?;
    let sum = bytes.get(body_end..body_end + 8)?;
    if checksum(&bytes[..body_end]) != sum {
        return None;
    }
    let key: Key = bytes[..32].try_into().ok()?;
    let vector = bytes[36..body_end]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    Some((key, vector, body_end + 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_torn_tails_are_cut() {
        let mut bytes = Vec::new();
        push_record(&mut bytes, &key(Role::Passage, "a"), &[1.0, 2.0]);
        push_record(&mut bytes, &key(Role::Passage, "b"), &[3.0, 4.0]);
        let whole = bytes.len();
        bytes.extend_from_within(..20); // a torn third record
        let (k, v, len) = parse_record(&bytes).unwrap();
        assert_eq!((k, v), (key(Role::Passage, "a"), vec![1.0, 2.0]));
        assert!(parse_record(&bytes[2 * len..]).is_none());

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m-f32.bin"), &bytes).unwrap();
        let cache = EmbeddingCache::open(dir.path(), "m", "f32").unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(
            std::fs::metadata(dir.path().join("m-f32.bin"))
                .unwrap()
                .len() as usize,
            whole
        );
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let mut bytes = Vec::new();
        push_record(&mut bytes, &key(Role::Query, "x"), &[0.5]);
        bytes[36] ^= 1;
        assert!(parse_record(&bytes).is_none());
        assert_ne!(key(Role::Query, "x"), key(Role::Passage, "x"));
    }
}
