//! The encoder's top layers as candle's autograd sees them: plain f32 tensor
//! operations (no custom kernels), every dense weight frozen with a trainable
//! low-rank update beside it. Used only to train an adapter; embedding runs the
//! merged weights through the fast encoder.

use std::collections::HashMap;

use candle_core::{DType, Device, Result, Tensor, Var, D};
use candle_nn::VarBuilder;

use super::adapter::{Adapter, LowRank};
use crate::model::EncoderConfig;

/// The dense weights of a layer an adapter updates, relative to the layer.
const DENSE: [&str; 6] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
];

/// A frozen dense layer with a trainable update: `x Wᵀ + b + scale · (x Aᵀ) Bᵀ`.
struct LowRankLinear {
    name: String,
    /// `Wᵀ`, `[in, out]`.
    weight_t: Tensor,
    bias: Tensor,
    a: Var,
    b: Var,
    scale: f64,
}

impl LowRankLinear {
    fn load(vb: &VarBuilder, name: String, rank: usize, scale: f64, seed: u64) -> Result<Self> {
        let weight = vb.get_unchecked(&format!("{name}.weight"))?;
        let bias = vb.get_unchecked(&format!("{name}.bias"))?;
        let (out, inputs) = weight.dims2()?;
        // A starts small and random, B at zero: the update starts at nothing.
        let mut uniform = crate::random::uniform_from(seed);
        let bound = 1.0 / (inputs as f32).sqrt();
        let a: Vec<f32> = (0..rank * inputs)
            .map(|_| (uniform() * 2.0 - 1.0) * bound)
            .collect();
        Ok(Self {
            name,
            weight_t: weight.t()?.contiguous()?,
            bias,
            a: Var::from_tensor(&Tensor::from_vec(a, (rank, inputs), &Device::Cpu)?)?,
            b: Var::zeros((out, rank), DType::F32, &Device::Cpu)?,
            scale,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let frozen = x.matmul(&self.weight_t)?.broadcast_add(&self.bias)?;
        let update = x
            .matmul(&self.a.as_tensor().t()?)?
            .matmul(&self.b.as_tensor().t()?)?;
        frozen + (update * self.scale)?
    }
}

/// Layer normalisation written out in differentiable operations.
struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl Norm {
    fn load(vb: &VarBuilder, name: &str, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get_unchecked(&format!("{name}.weight"))?,
            bias: vb.get_unchecked(&format!("{name}.bias"))?,
            eps,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(variance + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// One transformer layer with its dense weights adapted.
struct TrainableLayer {
    dense: Vec<LowRankLinear>,
    attention_norm: Norm,
    output_norm: Norm,
    heads: usize,
}

impl TrainableLayer {
    fn forward(&self, x: &Tensor, spans: &[(usize, usize)]) -> Result<Tensor> {
        let [query, key, value, attention_out, up, down] = &self.dense[..] else {
            candle_core::bail!("a layer has six dense weights");
        };
        let hidden = x.dim(1)?;
        let head_dim = hidden / self.heads;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let (q, k, v) = (query.forward(x)?, key.forward(x)?, value.forward(x)?);
        let heads = |t: &Tensor, start: usize, len: usize| -> Result<Tensor> {
            t.narrow(0, start, len)?
                .reshape((len, self.heads, head_dim))?
                .transpose(0, 1)?
                .contiguous()
        };
        let mut contexts = Vec::with_capacity(spans.len());
        for &(start, len) in spans {
            let (qs, ks, vs) = (
                heads(&q, start, len)?,
                heads(&k, start, len)?,
                heads(&v, start, len)?,
            );
            let scores = (qs.matmul(&ks.t()?.contiguous()?)? * scale)?;
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let context = probs.matmul(&vs)?.transpose(0, 1)?.reshape((len, hidden))?;
            contexts.push(context);
        }
        let context = Tensor::cat(&contexts, 0)?;
        let x = self
            .attention_norm
            .forward(&(attention_out.forward(&context)? + x)?)?;
        let act = up.forward(&x)?.gelu_erf()?;
        self.output_norm.forward(&(down.forward(&act)? + x)?)
    }
}

/// The top layers of an encoder, from `first` to the last, ready to train.
pub struct TrainableTop {
    layers: Vec<TrainableLayer>,
}

impl TrainableTop {
    /// Loads layers `first..` from `weights` with rank-`rank` updates at `scale`.
    pub fn load(
        weights: &VarBuilder,
        cfg: &EncoderConfig,
        first: usize,
        rank: usize,
        scale: f64,
    ) -> Result<Self> {
        let mut layers = Vec::new();
        for index in first..cfg.num_hidden_layers {
            let prefix = format!("encoder.layer.{index}");
            let dense = DENSE
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let seed = 0x5EED + (index * DENSE.len() + i) as u64;
                    LowRankLinear::load(weights, format!("{prefix}.{d}"), rank, scale, seed)
                })
                .collect::<Result<Vec<_>>>()?;
            layers.push(TrainableLayer {
                dense,
                attention_norm: Norm::load(
                    weights,
                    &format!("{prefix}.attention.output.LayerNorm"),
                    cfg.layer_norm_eps,
                )?,
                output_norm: Norm::load(
                    weights,
                    &format!("{prefix}.output.LayerNorm"),
                    cfg.layer_norm_eps,
                )?,
                heads: cfg.num_attention_heads,
            });
        }
        Ok(Self { layers })
    }

    /// The trainable tensors.
    pub fn vars(&self) -> Vec<Var> {
        self.dense()
            .flat_map(|d| [d.a.clone(), d.b.clone()])
            .collect()
    }

    /// Unit-length mean-pooled embeddings (`[sequences, hidden]`) from the hidden
    /// states entering layer `first` (`[tokens, hidden]`, sequences at `spans`).
    pub fn embed(&self, states: &Tensor, spans: &[(usize, usize)]) -> Result<Tensor> {
        let mut x = states.clone();
        for layer in &self.layers {
            x = layer.forward(&x, spans)?;
        }
        let pooled = spans
            .iter()
            .map(|&(start, len)| x.narrow(0, start, len)?.mean(0))
            .collect::<Result<Vec<_>>>()?;
        let pooled = Tensor::stack(&pooled, 0)?;
        pooled.broadcast_div(&pooled.sqr()?.sum_keepdim(1)?.sqrt()?)
    }

    /// The trained updates as an adapter for `encoder`.
    pub fn adapter(&self, encoder: &str, trained_by: &str) -> Adapter {
        let updates: HashMap<String, LowRank> = self
            .dense()
            .map(|d| {
                let update = LowRank {
                    a: d.a.as_tensor().detach(),
                    b: d.b.as_tensor().detach(),
                };
                (d.name.clone(), update)
            })
            .collect();
        Adapter {
            encoder: encoder.to_string(),
            scale: self.layers[0].dense[0].scale,
            updates,
            trained_by: trained_by.to_string(),
        }
    }

    fn dense(&self) -> impl Iterator<Item = &LowRankLinear> {
        self.layers.iter().flat_map(|l| &l.dense)
    }
}
