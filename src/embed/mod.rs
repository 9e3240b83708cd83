//! Text in, unit-length embeddings out: tokenizer, length-sorted batches, the
//! encoder, mean pooling, windows for text longer than the model takes, and L2
//! normalisation.

pub mod encoder;
pub(crate) mod isa;
mod kernels;
mod linear;
pub(crate) mod packed;
mod skinny;
mod weight_file;

use std::sync::Arc;

use ndarray::Array2;
use tokenizers::Tokenizer;

pub use encoder::{Encoder, Precision, TokenBatch};

use crate::model::{ModelError, ModelFiles};
use crate::tune::Adapter;

/// Errors while embedding.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("tokenizer: {0}")]
    Tokenize(String),
    #[error("encoder: {0}")]
    Encode(#[from] candle_core::Error),
}

/// What a text is to the model; e5 models prefix each differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A document or claim (`passage: `).
    Passage,
    /// A search query or target description (`query: `).
    Query,
}

/// How to run the encoder.
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    pub precision: Precision,
    /// Sequences per batch.
    pub batch_size: usize,
    /// Low-rank updates merged into the weights at load ([`crate::tune`]).
    pub adapter: Option<Arc<Adapter>>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            precision: Precision::F32,
            batch_size: 32,
            adapter: None,
        }
    }
}

/// One window of a text's tokens, as the encoder sees it.
struct Window {
    text: usize,
    ids: Vec<u32>,
    /// Content tokens (special tokens excluded): the window's weight.
    weight: usize,
}

/// A loaded model ready to embed text.
pub struct Embedder {
    tokenizer: Tokenizer,
    encoder: Encoder,
    files: ModelFiles,
    options: EmbedOptions,
}

impl Embedder {
    /// Loads the tokenizer and encoder of `files`.
    pub fn load(files: ModelFiles, options: EmbedOptions) -> Result<Self, EmbedError> {
        let mut tokenizer =
            Tokenizer::from_file(&files.tokenizer).map_err(|e| ModelError::Tokenizer {
                path: files.tokenizer.clone(),
                why: e.to_string(),
            })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        let encoder = Encoder::load(&files, options.precision, options.adapter.as_deref())?;
        Ok(Self {
            tokenizer,
            encoder,
            files,
            options,
        })
    }

    /// The model's name (its folder name).
    pub fn model_id(&self) -> &str {
        &self.files.id
    }

    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.encoder.hidden
    }

    /// The encoder itself.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The model's files.
    pub fn files(&self) -> &ModelFiles {
        &self.files
    }

    /// The options the model runs with.
    pub fn options(&self) -> &EmbedOptions {
        &self.options
    }

    /// The numeric path the vectors come from, as the embedding cache keys it:
    /// the precision, and the token table where it is narrowed (vectors from
    /// before the f16 table differ).
    pub(crate) fn numerics(&self) -> String {
        let precision = self.options.precision;
        match encoder::token_table_dtype(precision) {
            candle_core::DType::F32 => precision.to_string(),
            table => format!("{precision}, token table {table:?}"),
        }
    }

    /// The text as the model reads it (with the e5 prefix where it applies).
    pub fn prepare(&self, text: &str, role: Role) -> String {
        if !self.files.uses_e5_prefixes() {
            return text.to_string();
        }
        match role {
            Role::Passage => format!("passage: {text}"),
            Role::Query => format!("query: {text}"),
        }
    }

    /// Token ids of each text (prefix and special tokens included, no truncation).
    pub fn token_ids(&self, texts: &[&str], role: Role) -> Result<Vec<Vec<u32>>, EmbedError> {
        let inputs: Vec<String> = texts.iter().map(|t| self.prepare(t, role)).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// Embeds `texts`: one unit-length row each. `progress` is called after every
    /// batch with (tokens finished, tokens in all).
    pub fn embed(
        &self,
        texts: &[&str],
        role: Role,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Array2<f32>, EmbedError> {
        self.embed_token_ids(self.token_ids(texts, role)?, progress)
    }

    /// Embeds sequences already tokenized by [`token_ids`](Self::token_ids).
    pub fn embed_token_ids(
        &self,
        ids: Vec<Vec<u32>>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Array2<f32>, EmbedError> {
        let dim = self.dim();
        let n = ids.len();
        let mut windows = self.windows(ids);
        windows.sort_by_key(|w| std::cmp::Reverse(w.ids.len()));
        let total = windows.iter().map(|w| w.ids.len()).sum();
        let mut done = 0;
        let mut sums = Array2::<f32>::zeros((n, dim));
        for batch in windows.chunks(self.options.batch_size.max(1)) {
            let tokens =
                TokenBatch::new(&batch.iter().map(|w| w.ids.as_slice()).collect::<Vec<_>>());
            // On a pool thread, the kernels' parallel loops split work in place; from
            // outside, each of the forward pass's ~100 loops would be handed over
            // and waited for.
            let pooled = rayon::scope(|_| self.encoder.mean_pooled(&tokens))?;
            for (w, row) in batch.iter().zip(pooled.chunks_exact(dim)) {
                let mut sum = sums.row_mut(w.text);
                sum.iter_mut()
                    .zip(row)
                    .for_each(|(s, &v)| *s += v * w.weight as f32);
            }
            done += batch.iter().map(|w| w.ids.len()).sum::<usize>();
            progress(done, total);
        }
        for mut row in sums.rows_mut() {
            let norm = row.dot(&row).sqrt();
            if norm > 0.0 {
                row /= norm;
            }
        }
        Ok(sums)
    }

    /// Splits each token sequence into windows the model takes: content tokens in
    /// runs of `max - 2`, each wrapped in the sequence's own start and end tokens.
    fn windows(&self, ids: Vec<Vec<u32>>) -> Vec<Window> {
        let max = self.files.config.max_tokens();
        let mut out = Vec::with_capacity(ids.len());
        for (text, seq) in ids.into_iter().enumerate() {
            if seq.len() <= max {
                let weight = seq.len().saturating_sub(2).max(1);
                out.push(Window {
                    text,
                    ids: seq,
                    weight,
                });
                continue;
            }
            let (open, close) = (seq[0], seq[seq.len() - 1]);
            for chunk in seq[1..seq.len() - 1].chunks(max - 2) {
                let mut window = Vec::with_capacity(chunk.len() + 2);
                window.push(open);
                window.extend_from_slice(chunk);
                window.push(close);
                out.push(Window {
                    text,
                    ids: window,
                    weight: chunk.len(),
                });
            }
        }
        out
    }
}

/// Deterministic values in [-1, 1) for the kernels' tests.
#[cfg(test)]
fn sample(len: usize, step: usize, modulus: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * step) % modulus) as f32 / (modulus / 2) as f32 - 1.0)
        .collect()
}
