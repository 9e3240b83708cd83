//! The adapter file: low-rank updates `scale · B A` to some of the encoder's dense
//! weights, stored as safetensors (`<weight>.lora_a` `[rank, in]`, `<weight>.lora_b`
//! `[out, rank]`) with the model they were trained for in the metadata, and merged
//! into the weights as they are read, so every precision and kernel runs unchanged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

/// The format written in an adapter's metadata.
pub const FORMAT: &str = "stancemap-adapter-1";

/// Where the built-in adapter for claims lives in the source tree.
pub const FOR_CLAIMS_PATH: &str = "models/adapter/e5-small-claims.safetensors";

/// The built-in adapter tuning multilingual-e5-small for claims (README, *Tuning
/// the encoder for claims*, has the command that trained it and its figures).
pub const FOR_CLAIMS: &[u8] = include_bytes!("../../models/adapter/e5-small-claims.safetensors");

/// Why an adapter file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("adapter {path}: {why}")]
    Bad { path: PathBuf, why: String },
    #[error(
        "adapter {path} was trained for the encoder {trained_for:?}, not {model:?}: \
         train one for this model with `stancemap eval fit-adapter`, or run with \
         --adapter none"
    )]
    OtherModel {
        path: PathBuf,
        trained_for: String,
        model: String,
    },
}

/// A trained low-rank update of one dense weight: `ΔW = scale · B A`.
#[derive(Debug, Clone)]
pub struct LowRank {
    /// `[rank, in]`.
    pub a: Tensor,
    /// `[out, rank]`.
    pub b: Tensor,
}

/// Low-rank updates to an encoder's dense weights.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// The encoder it was trained for (the model folder's name).
    pub encoder: String,
    /// The factor on every `B A`.
    pub scale: f64,
    /// By weight name without `.weight` (`encoder.layer.11.attention.self.query`).
    pub updates: HashMap<String, LowRank>,
    /// The command that trained it.
    pub trained_by: String,
}

impl Adapter {
    /// Reads and checks an adapter file.
    pub fn load(path: &Path) -> Result<Self, AdapterError> {
        Self::from_bytes(&Self::read(path)?, path)
    }

    /// An adapter file's bytes, unchecked ([`from_bytes`](Self::from_bytes)
    /// checks them); an unreadable file is an error that names it.
    pub fn read(path: &Path) -> Result<Vec<u8>, AdapterError> {
        std::fs::read(path).map_err(|e| AdapterError::Bad {
            path: path.to_path_buf(),
            why: e.to_string(),
        })
    }

    /// Reads an adapter from a file's `bytes`; `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Self, AdapterError> {
        let (meta, tensors) = read_safetensors(bytes, origin)?;
        Self::from_parts(&meta, tensors, origin)
    }

    /// An adapter from a safetensors file's metadata and tensors (every one an
    /// update); `origin` names it in errors.
    pub(crate) fn from_parts(
        meta: &HashMap<String, String>,
        mut tensors: HashMap<String, Tensor>,
        origin: &Path,
    ) -> Result<Self, AdapterError> {
        let bad = |why: String| AdapterError::Bad {
            path: origin.to_path_buf(),
            why,
        };
        let field = |key: &str| {
            meta.get(key)
                .cloned()
                .ok_or_else(|| bad(format!("no {key:?} in its metadata")))
        };
        if field("format")? != FORMAT {
            return Err(bad(format!("not a {FORMAT} file")));
        }
        let scale: f64 = field("scale")?
            .parse()
            .map_err(|e| bad(format!("scale: {e}")))?;
        let names: Vec<String> = tensors
            .keys()
            .filter_map(|k| k.strip_suffix(".lora_a").map(str::to_string))
            .collect();
        let mut updates = HashMap::new();
        for name in names {
            let take = |t: Option<Tensor>, part: &str| {
                t.ok_or_else(|| bad(format!("{name} has no {part}")))?
                    .to_dtype(DType::F32)
                    .map_err(|e| bad(e.to_string()))
            };
            let a = take(tensors.remove(&format!("{name}.lora_a")), "lora_a")?;
            let b = take(tensors.remove(&format!("{name}.lora_b")), "lora_b")?;
            let (rank, _) = a.dims2().map_err(|e| bad(format!("{name}.lora_a: {e}")))?;
            let (_, rank_b) = b.dims2().map_err(|e| bad(format!("{name}.lora_b: {e}")))?;
            if rank != rank_b {
                return Err(bad(format!("{name}: rank {rank} in A, {rank_b} in B")));
            }
            updates.insert(name, LowRank { a, b });
        }
        if let Some(extra) = tensors.keys().next() {
            return Err(bad(format!("unexpected tensor {extra}")));
        }
        if updates.is_empty() {
            return Err(bad("no updates in it".into()));
        }
        Ok(Self {
            encoder: field("encoder")?,
            scale,
            updates,
            trained_by: meta.get("trained_by").cloned().unwrap_or_default(),
        })
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> candle_core::Result<Vec<u8>> {
        let mut tensors = Vec::new();
        for (name, update) in &self.updates {
            tensors.push((format!("{name}.lora_a"), &update.a));
            tensors.push((format!("{name}.lora_b"), &update.b));
        }
        tensors.sort_by(|x, y| x.0.cmp(&y.0));
        let meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("encoder".to_string(), self.encoder.clone()),
            ("scale".to_string(), self.scale.to_string()),
            ("trained_by".to_string(), self.trained_by.clone()),
        ]);
        safetensors::serialize(tensors, Some(meta))
            .map_err(|e| candle_core::Error::Msg(e.to_string()))
    }

    /// Checks that the adapter was trained for `model`.
    pub fn check_model(&self, model: &str, path: &Path) -> Result<(), AdapterError> {
        if self.encoder == model {
            Ok(())
        } else {
            Err(AdapterError::OtherModel {
                path: path.to_path_buf(),
                trained_for: self.encoder.clone(),
                model: model.to_string(),
            })
        }
    }

    /// `weights` with the updates added: a weight named in the adapter reads as
    /// `W + scale · B A`. An update whose shape does not fit its weight, or whose
    /// weight does not exist, is an error when the weights are read.
    pub fn merged<'a>(&self, weights: VarBuilder<'a>) -> candle_core::Result<VarBuilder<'a>> {
        for name in self.updates.keys() {
            if !weights.contains_tensor(&format!("{name}.weight")) {
                candle_core::bail!("the adapter updates {name}, which the model does not have");
            }
        }
        let (dtype, device) = (weights.dtype(), weights.device().clone());
        let backend = Merged {
            base: weights,
            adapter: self.clone(),
        };
        Ok(VarBuilder::from_backend(Box::new(backend), dtype, device))
    }
}

/// A safetensors file's metadata and its tensors by name (on the CPU).
pub(crate) type SafetensorsParts = (HashMap<String, String>, HashMap<String, Tensor>);

/// A safetensors file's metadata and tensors; `origin` names it in errors.
pub(crate) fn read_safetensors(
    bytes: &[u8],
    origin: &Path,
) -> Result<SafetensorsParts, AdapterError> {
    let bad = |why: String| AdapterError::Bad {
        path: origin.to_path_buf(),
        why,
    };
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
        .map_err(|e| bad(e.to_string()))?;
    Ok((meta, tensors))
}

/// A weight source that adds an adapter's updates to the weights it names.
struct Merged<'a> {
    base: VarBuilder<'a>,
    adapter: Adapter,
}

impl Merged<'_> {
    fn with_update(&self, name: &str, weight: Tensor) -> candle_core::Result<Tensor> {
        let Some(update) = name
            .strip_suffix(".weight")
            .and_then(|n| self.adapter.updates.get(n))
        else {
            return Ok(weight);
        };
        let delta = (update.b.matmul(&update.a)? * self.adapter.scale)?;
        if delta.dims() != weight.dims() {
            candle_core::bail!(
                "the adapter's update of {name} is {:?}, the weight {:?}",
                delta.dims(),
                weight.dims()
            );
        }
        weight.add(&delta.to_dtype(weight.dtype())?)
    }
}

impl SimpleBackend for Merged<'_> {
    fn get(
        &self,
        s: Shape,
        name: &str,
        init: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        // Read at the dtype asked for (the token table narrows as it is read).
        let weight = self.base.get_with_hints_dtype(s, name, init, dtype)?;
        self.with_update(name, weight)?
            .to_dtype(dtype)?
            .to_device(dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let weight = self.base.get_unchecked(name)?;
        self.with_update(name, weight)?
            .to_dtype(dtype)?
            .to_device(dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.base.contains_tensor(name)
    }
}
