//! On-disk embedding store, so a re-run over the same corpus does not re-embed and
//! a killed run resumes where it stopped.
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
//!
//! The file is memory-mapped, and only where each vector starts is kept in memory
//! (about 50 bytes a vector), so a store of a million vectors costs its index, not
//! its 1.5 GB of floats; vectors are copied out only for the texts asked for.
//! Before embedding, the disk space the new records need is checked.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use ndarray::Array2;
use sha2::{Digest, Sha256};

use crate::embed::{Embedder, Role};
use crate::error::{Error, Result};

type Key = [u8; 32];

/// Marks the start of a record, so reading can resume after a damaged one.
const MAGIC: &[u8; 4] = b"SMv2";

/// Bytes before a record's vector: magic, key, width.
const VECTOR_AT: usize = 4 + 32 + 4;

/// Texts embedded between two appends to the file.
const CHUNK_TEXTS: usize = 1024;

/// Cached vectors of one model identity.
pub(crate) struct EmbeddingCache {
    path: PathBuf,
    dim: usize,
    /// Where each good record's vector starts in the file.
    offsets: HashMap<Key, usize>,
    /// The file as mapped when last read; `None` before the first read, when
    /// empty, or when stale.
    map: Option<Mmap>,
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

/// `bytes` in lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of `bytes`, in hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The identity of a model as the cache sees it: sha256 over the files, the
/// sha256 of the adapter merged in (if any) and the numeric path (`numerics`, as
/// [`Embedder::numerics`](crate::embed::Embedder::numerics) says it, and the
/// kernels), in hex.
pub(crate) fn fingerprint(
    files: &[&Path],
    adapter: Option<&str>,
    numerics: &str,
    kernels: &str,
) -> Result<String> {
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
    if let Some(sha256) = adapter {
        h.update(sha256.as_bytes());
        h.update(b"\0");
    }
    h.update(numerics.as_bytes());
    h.update(b"\0");
    h.update(kernels.as_bytes());
    Ok(hex(&h.finalize()))
}

impl EmbeddingCache {
    /// Opens (or creates) the cache file of the model named `model_id` whose
    /// identity is `fingerprint`, for vectors of width `dim`, under `dir`.
    pub fn open(dir: &Path, model_id: &str, fingerprint: &str, dim: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create", e))?;
        let path = dir.join(format!("{model_id}-{}.bin", &fingerprint[..16]));
        // Mapped for the scan, then unmapped so that the pages read stop counting
        // against this process; `vectors` maps the file again.
        let (offsets, repaired) =
            read_records(map_file(&path)?.as_deref().unwrap_or_default(), dim);
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
            offsets,
            map: None,
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
        self.offsets.len()
    }

    /// Embeds `texts`, taking cached vectors where present and appending the rest
    /// chunk by chunk. Returns the embeddings and how many came from the cache.
    /// Refuses, before embedding, texts whose records the disk has no room for.
    pub fn embed(
        &mut self,
        embedder: &Embedder,
        texts: &[&str],
        role: Role,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Array2<f32>, usize)> {
        let keys: Vec<Key> = texts.iter().map(|t| key(role, t)).collect();
        // One lookup a text: cached, or missing (a text repeated is embedded once).
        let (mut cached, mut missing, mut wanted) = (0, Vec::new(), HashSet::new());
        for (i, key) in keys.iter().enumerate() {
            if self.offsets.contains_key(key) {
                cached += 1;
            } else if wanted.insert(*key) {
                missing.push(i);
            }
        }
        self.check_space(missing.len())?;
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
        Ok((self.vectors(&keys)?, cached))
    }

    /// The cached vectors of `keys`, one row each, read from the mapped file.
    fn vectors(&mut self, keys: &[Key]) -> Result<Array2<f32>> {
        if self.map.is_none() {
            self.map = map_file(&self.path)?;
        }
        let bytes = self.map.as_deref().unwrap_or_default();
        let mut out = Array2::zeros((keys.len(), self.dim));
        for (mut row, key) in out.rows_mut().into_iter().zip(keys) {
            let at = self.offsets[key];
            let record = bytes.get(at - VECTOR_AT..at + 4 * self.dim);
            let Some(record) = record.filter(|r| &r[4..36] == key) else {
                return Err(Error::Data {
                    path: self.path.clone(),
                    why: format!(
                        "the record at byte {} changed under this run",
                        at - VECTOR_AT
                    ),
                });
            };
            for (value, float) in row.iter_mut().zip(floats(&record[VECTOR_AT..])) {
                *value = float;
            }
        }
        Ok(out)
    }

    /// Refuses `records` new records when the disk holding the file has no room.
    fn check_space(&self, records: usize) -> Result<()> {
        let needed = (records * record_len(self.dim)) as u64;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        match fs4::available_space(dir) {
            Ok(available) if needed > available => Err(Error::NoSpace {
                path: self.path.clone(),
                records,
                needed_mib: needed.div_ceil(1 << 20),
                available_mib: available >> 20,
            }),
            _ => Ok(()),
        }
    }

    /// Appends `rows` to the file and indexes them.
    fn append<'a>(
        &mut self,
        rows: impl Iterator<Item = (Key, ndarray::ArrayView1<'a, f32>)>,
    ) -> Result<()> {
        let mut record = Vec::new();
        let mut fresh = Vec::new();
        for (key, row) in rows {
            fresh.push((key, record.len() + VECTOR_AT));
            push_record(&mut record, &key, &row.to_vec());
        }
        let start = self
            .write_at_end(&record)
            .map_err(|e| Error::io(&self.path, "cannot write", e))?;
        self.offsets
            .extend(fresh.into_iter().map(|(key, at)| (key, start + at)));
        self.map = None;
        Ok(())
    }

    /// Writes `bytes` at the end of the file, locked so that another run
    /// appending to the same file cannot interleave; returns where they start.
    fn write_at_end(&self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.lock()?;
        let start = file.metadata()?.len() as usize;
        file.write_all(bytes)?;
        file.flush()?;
        Ok(start)
    }
}

/// The file at `path` mapped read-only; `None` when it is missing or empty.
fn map_file(path: &Path) -> Result<Option<Mmap>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, "cannot read", e)),
    };
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "cannot read", e))?
        .len();
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: the file is only ever appended to (or a torn tail cut off before it
    // is mapped again); another process truncating it under us is not supported,
    // as for any memory-mapped weights.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, "cannot map", e))?;
    Ok(Some(map))
}

/// Bytes one record of a `dim`-wide vector takes.
fn record_len(dim: usize) -> usize {
    VECTOR_AT + 4 * dim + 8
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

/// Where the vector of every good record of `bytes` starts, for records whose
/// vector has `dim` finite values, and what was wrong, if anything.
fn read_records(bytes: &[u8], dim: usize) -> (HashMap<Key, usize>, Option<Repair>) {
    let mut offsets = HashMap::new();
    let (mut at, mut skipped, mut cut_at) = (0, 0, None);
    while at < bytes.len() {
        if let Some((key, vector, len)) = parse_record(&bytes[at..]) {
            if vector.len() == 4 * dim && floats(vector).all(f32::is_finite) {
                offsets.insert(key, at + VECTOR_AT);
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
    (offsets, repaired)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Little-endian f32 values of `bytes`.
fn floats(bytes: &[u8]) -> impl Iterator<Item = f32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
}

/// One whole, checksummed record at the start of `bytes`: (key, the vector's
/// bytes, the record's length).
fn parse_record(bytes: &[u8]) -> Option<(Key, &[u8], usize)> {
    let body = bytes.strip_prefix(MAGIC)?;
    let dim = u32::from_le_bytes(body.get(32..36)?.try_into().ok()?) as usize;
    let body_end = 36usize.checked_add(dim.checked_mul(4)?)?;
    let sum = body.get(body_end..body_end.checked_add(8)?)?;
    if checksum(&body[..body_end]) != sum {
        return None;
    }
    let key: Key = body[..32].try_into().ok()?;
    Some((key, &body[36..body_end], MAGIC.len() + body_end + 8))
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
        assert_eq!(k, key(Role::Passage, "a"));
        assert_eq!(floats(v).collect::<Vec<_>>(), [1.0, 2.0]);
        assert_eq!(len, record_len(2));
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

    fn rows(values: &[[f32; 2]]) -> Array2<f32> {
        Array2::from_shape_vec((values.len(), 2), values.concat()).unwrap()
    }

    #[test]
    fn stored_vectors_read_back_identical_after_reopening_and_interleaved_appends() {
        let dir = tempfile::tempdir().unwrap();
        let fp = "0123456789abcdef0123";
        let keys = [
            key(Role::Passage, "a"),
            key(Role::Passage, "b"),
            key(Role::Query, "a"),
        ];
        let mut first = EmbeddingCache::open(dir.path(), "m", fp, 2).unwrap();
        let mut second = EmbeddingCache::open(dir.path(), "m", fp, 2).unwrap();
        let written = rows(&[[0.6, 0.8], [1.0, 0.0], [-0.25, 0.5]]);
        first
            .append(keys[..1].iter().copied().zip(written.rows()))
            .unwrap();
        // Another run appends to the same file in between.
        second
            .append(
                keys[1..2]
                    .iter()
                    .copied()
                    .zip(written.slice(ndarray::s![1.., ..]).rows()),
            )
            .unwrap();
        first
            .append(
                keys[2..]
                    .iter()
                    .copied()
                    .zip(written.slice(ndarray::s![2.., ..]).rows()),
            )
            .unwrap();
        assert_eq!(
            first.vectors(&[keys[0], keys[2]]).unwrap(),
            rows(&[[0.6, 0.8], [-0.25, 0.5]])
        );

        let reopened = &mut EmbeddingCache::open(dir.path(), "m", fp, 2).unwrap();
        assert_eq!((reopened.len(), reopened.repaired()), (3, None));
        let order = [keys[2], keys[0], keys[1], keys[0]];
        let expected = rows(&[[-0.25, 0.5], [0.6, 0.8], [1.0, 0.0], [0.6, 0.8]]);
        assert_eq!(reopened.vectors(&order).unwrap(), expected);
    }

    #[test]
    fn records_the_disk_has_no_room_for_are_refused_with_the_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(dir.path(), "m", "0123456789abcdef", 384).unwrap();
        assert!(cache.check_space(10).is_ok());
        let refused = cache.check_space(1 << 40).unwrap_err().to_string();
        assert!(
            refused.contains("storing 1099511627776 new vectors needs 1660944384 MiB"),
            "{refused}"
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
        let first = fingerprint(&[&config, &weights], None, "f32", "avx2").unwrap();
        assert_eq!(
            first,
            fingerprint(&[&config, &weights], None, "f32", "avx2").unwrap()
        );
        assert_ne!(
            first,
            fingerprint(&[&config, &weights], None, "q8", "avx2").unwrap()
        );
        assert_ne!(
            first,
            fingerprint(&[&config, &weights], None, "f32", "avx512").unwrap()
        );
        assert_ne!(
            first,
            fingerprint(&[&config, &weights], Some("0123abcd"), "f32", "avx2").unwrap()
        );
        std::fs::write(&weights, [1u8, 2, 4]).unwrap();
        assert_ne!(
            first,
            fingerprint(&[&config, &weights], None, "f32", "avx2").unwrap()
        );
    }
}
