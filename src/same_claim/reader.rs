//! The pair reader: the encoder read as a cross-encoder. Two claims go through it
//! as one sequence (`<s> passage: A </s></s> passage: B </s>`), so attention
//! weighs each one's words against the other's (who did what to whom, which
//! figure goes with which name), which one vector per claim cannot keep. A
//! logistic head on the mean-pooled last state gives the log-odds that the
//! two state the same claim. It re-reads the pairs the same-claim model finds
//! possible ([`PairScorer::reread`](super::PairScorer::reread)).
//!
//! The file is an adapter file (low-rank updates to the encoder's dense weights,
//! merged as the weights load, so every precision and kernel path runs it) with
//! the head beside the updates (`reader.head.weight`, `reader.head.bias`) and
//! `reader` and `side_tokens` in its metadata. `benches/eval/fit_pair_reader.py`
//! fits it (README, *The pair reader*).

use std::path::{Path, PathBuf};

use candle_core::DType;

use crate::embed::{EmbedError, Embedder, Encoder, Precision, Role, TokenBatch};
use crate::model::{ModelError, ModelFiles};
use crate::tune::{read_safetensors, Adapter, AdapterError};

/// The format named in a reader file's metadata (`reader`).
pub const FORMAT: &str = "stancemap-pair-reader-1";

/// Where the built-in reader for multilingual-e5-small lives in the source tree.
pub const FOR_CLAIMS_PATH: &str = "models/pair-reader/e5-small-claims.safetensors";

/// The built-in reader for multilingual-e5-small.
pub const FOR_CLAIMS: &[u8] =
    include_bytes!("../../models/pair-reader/e5-small-claims.safetensors");

/// Sequences per encoder batch.
const BATCH: usize = 32;

/// Why a pair reader cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("pair reader {path}: {why}")]
    Bad { path: PathBuf, why: String },
    #[error("pair reader: {0}")]
    Updates(#[from] AdapterError),
    #[error("pair reader: {0}")]
    Load(#[from] ModelError),
}

/// A reader file read and checked, not yet loaded: its updates, head and side
/// length.
pub struct ReaderFile {
    updates: Adapter,
    head: Vec<f32>,
    bias: f32,
    side_tokens: usize,
    origin: PathBuf,
}

impl ReaderFile {
    /// Reads a reader file's `bytes`; `origin` names it in errors.
    pub fn parse(bytes: &[u8], origin: &Path) -> Result<Self, ReaderError> {
        let bad = |why: String| ReaderError::Bad {
            path: origin.to_path_buf(),
            why,
        };
        let (meta, mut tensors) = read_safetensors(bytes, origin)?;
        if meta.get("reader").map(String::as_str) != Some(FORMAT) {
            return Err(bad(format!("not a {FORMAT} file")));
        }
        let side_tokens: usize = meta
            .get("side_tokens")
            .ok_or_else(|| bad("no \"side_tokens\" in its metadata".into()))?
            .parse()
            .map_err(|e| bad(format!("side_tokens: {e}")))?;
        if !(4..=256).contains(&side_tokens) {
            return Err(bad(format!("side_tokens {side_tokens} is not in 4..=256")));
        }
        let mut take = |name: &str| -> Result<Vec<f32>, ReaderError> {
            let t = tensors
                .remove(name)
                .ok_or_else(|| bad(format!("no tensor {name}")))?;
            let values = t
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all()?.to_vec1());
            values.map_err(|e| bad(format!("{name}: {e}")))
        };
        let head = take("reader.head.weight")?;
        let bias = take("reader.head.bias")?;
        if bias.len() != 1 {
            return Err(bad(format!("its head has {} biases, not 1", bias.len())));
        }
        let updates = Adapter::from_parts(&meta, tensors, origin)?;
        if let Some(name) = updates
            .updates
            .keys()
            .find(|n| !n.starts_with("encoder.layer."))
        {
            return Err(bad(format!(
                "it updates {name}, outside the encoder's layers"
            )));
        }
        Ok(Self {
            updates,
            head,
            bias: bias[0],
            side_tokens,
            origin: origin.to_path_buf(),
        })
    }

    /// The encoder the reader was made for (the model folder's name).
    pub fn encoder(&self) -> &str {
        &self.updates.encoder
    }
}

/// A loaded pair reader.
pub struct PairReader {
    encoder: Encoder,
    /// The head's weights, one per hidden unit, and its bias.
    head: Vec<f32>,
    bias: f32,
    /// Longest side, in tokens (`<s>` and `</s>` included); longer sides are cut.
    side_tokens: usize,
    origin: PathBuf,
}

impl PairReader {
    /// Loads `file`'s reader: the layers of `files` at `precision` with its
    /// updates merged in, sharing `base`'s token tables. A file made for another
    /// encoder, or for another width, is refused.
    pub fn load(
        file: ReaderFile,
        base: &Encoder,
        files: &ModelFiles,
        precision: Precision,
    ) -> Result<Self, ReaderError> {
        let refuse = |why: String| ReaderError::Bad {
            path: file.origin.clone(),
            why,
        };
        if file.encoder() != files.id {
            return Err(refuse(format!(
                "it was fitted for the encoder {:?}, not {:?}: fit one for this model with \
                 benches/eval/fit_pair_reader.py, or run with --pair-reader none",
                file.encoder(),
                files.id
            )));
        }
        let hidden = files.config.hidden_size;
        if file.head.len() != hidden {
            let width = file.head.len();
            return Err(refuse(format!(
                "its head reads {width} values, the encoder gives {hidden}"
            )));
        }
        Ok(Self {
            encoder: base.with_own_layers(files, precision, &file.updates)?,
            head: file.head,
            bias: file.bias,
            side_tokens: file.side_tokens,
            origin: file.origin,
        })
    }

    /// Where the reader was read from (`built-in …` or the file's path).
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The log-odds that each pair states the same claim, read in both orders
    /// and averaged (the reader is symmetric). `embedder` tokenizes (any encoder
    /// of the same model: only its tokenizer is used). `progress` is called
    /// after every batch with (pairs read, pairs in all).
    pub fn logits(
        &self,
        embedder: &Embedder,
        pairs: &[(&str, &str)],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<f32>, EmbedError> {
        let sides: Vec<&str> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
        let mut ids = embedder.token_ids(&sides, Role::Passage)?;
        ids.iter_mut().for_each(|seq| cut(seq, self.side_tokens));
        let mut sequences: Vec<(usize, Vec<u32>)> = Vec::with_capacity(sides.len());
        for (i, two) in ids.chunks_exact(2).enumerate() {
            sequences.push((i, joined(&two[0], &two[1])));
            sequences.push((i, joined(&two[1], &two[0])));
        }
        sequences.sort_by_key(|(_, seq)| seq.len());
        let mut sums = vec![0.0f32; pairs.len()];
        for (done, batch) in sequences.chunks(BATCH).enumerate() {
            let tokens =
                TokenBatch::new(&batch.iter().map(|(_, s)| s.as_slice()).collect::<Vec<_>>());
            let pooled = rayon::scope(|_| self.encoder.mean_pooled(&tokens))?;
            for ((pair, _), state) in batch.iter().zip(pooled.chunks_exact(self.head.len())) {
                sums[*pair] += self.logit(state) / 2.0;
            }
            progress(((done + 1) * BATCH / 2).min(pairs.len()), pairs.len());
        }
        Ok(sums)
    }

    /// The head's log-odds for one mean-pooled last state.
    fn logit(&self, state: &[f32]) -> f32 {
        let dot: f32 = state.iter().zip(&self.head).map(|(s, w)| s * w).sum();
        dot + self.bias
    }
}

/// Cuts a tokenized side to `most` tokens, keeping its closing token.
fn cut(seq: &mut Vec<u32>, most: usize) {
    if seq.len() > most {
        let end = seq[seq.len() - 1];
        seq.truncate(most - 1);
        seq.push(end);
    }
}

/// Two tokenized sides as one sequence: `a`, its closing token again, then `b`
/// without its opening token (`<s> a </s></s> b </s>`).
fn joined(a: &[u32], b: &[u32]) -> Vec<u32> {
    let close = a[a.len() - 1];
    let mut seq = Vec::with_capacity(a.len() + b.len());
    seq.extend_from_slice(a);
    seq.push(close);
    seq.extend_from_slice(&b[1..]);
    seq
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    /// A reader file's bytes with `meta` and zero tensors of the given shapes.
    fn file_with(meta: &[(&str, &str)], shapes: &[(&str, &[usize])]) -> Vec<u8> {
        let tensors: Vec<(String, Tensor)> = shapes
            .iter()
            .map(|(name, shape)| {
                let t = Tensor::zeros(shape.to_vec(), DType::F32, &Device::Cpu).unwrap();
                (name.to_string(), t)
            })
            .collect();
        let meta = meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        safetensors::serialize(tensors.iter().map(|(n, t)| (n.clone(), t)), Some(meta)).unwrap()
    }

    #[test]
    fn a_reader_file_is_checked_when_read_and_named_in_every_refusal() {
        let meta = |reader: &'static str, side: &'static str| {
            [
                ("format", "stancemap-adapter-1"),
                ("encoder", "multilingual-e5-small"),
                ("scale", "2"),
                ("reader", reader),
                ("side_tokens", side),
            ]
        };
        let update: [(&str, &[usize]); 2] = [
            ("encoder.layer.0.output.dense.lora_a", &[2, 1536]),
            ("encoder.layer.0.output.dense.lora_b", &[384, 2]),
        ];
        let head: [(&str, &[usize]); 2] =
            [("reader.head.weight", &[384]), ("reader.head.bias", &[1])];
        let whole = [&update[..], &head[..]].concat();
        let path = Path::new("r.safetensors");
        let file = ReaderFile::parse(&file_with(&meta(FORMAT, "96"), &whole), path).unwrap();
        assert_eq!(file.encoder(), "multilingual-e5-small");
        assert_eq!((file.head.len(), file.side_tokens), (384, 96));
        let refused = |bytes: Vec<u8>| match ReaderFile::parse(&bytes, path) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        };
        let cases = [
            (
                refused(file_with(&meta("x", "96"), &whole)),
                "not a stancemap-pair-reader-1 file",
            ),
            (
                refused(file_with(&meta(FORMAT, "2"), &whole)),
                "side_tokens 2",
            ),
            (
                refused(file_with(&meta(FORMAT, "96"), &update)),
                "no tensor reader.head.weight",
            ),
            (refused(b"not a file".to_vec()), "not a safetensors file"),
        ];
        for (said, expected) in cases {
            assert!(
                said.contains("r.safetensors") && said.contains(expected),
                "{said}"
            );
        }
        let outside: [(&str, &[usize]); 2] = [
            ("embeddings.word_embeddings.lora_a", &[2, 384]),
            ("embeddings.word_embeddings.lora_b", &[250037, 2]),
        ];
        let said = refused(file_with(
            &meta(FORMAT, "96"),
            &[&outside[..], &head[..]].concat(),
        ));
        assert!(said.contains("outside the encoder's layers"), "{said}");
    }

    #[test]
    fn two_sides_join_as_the_encoder_was_trained_to_read_them() {
        // <s>=0, </s>=2
        assert_eq!(joined(&[0, 7, 8, 2], &[0, 9, 2]), vec![0, 7, 8, 2, 2, 9, 2]);
        let mut long = vec![0, 5, 6, 7, 8, 2];
        cut(&mut long, 4);
        assert_eq!(long, vec![0, 5, 6, 2]);
        let mut short = vec![0, 5, 2];
        cut(&mut short, 4);
        assert_eq!(short, vec![0, 5, 2]);
    }
}
