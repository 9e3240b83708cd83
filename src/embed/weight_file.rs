//! A safetensors weight file read one tensor at a time with positioned reads.
//!
//! candle's memory-mapped reader copies each tensor out of the mapping, and the
//! mapped pages it touched count in the process's resident memory until the
//! mapping goes: with multilingual-e5-small that was 470 MB on top of the 470 MB
//! of copies while the model loaded, the peak of every short command. Read into
//! the tensors directly, the file's pages stay in the page cache alone.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Shape, Tensor, WithDType};
use candle_nn::var_builder::SimpleBackend;
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Dtype;

/// The largest header read (safetensors' own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;
/// Bytes read per call while a tensor is filled.
const READ_CHUNK_BYTES: usize = 1 << 20;

/// An open weight file: where each tensor's bytes lie.
pub(crate) struct WeightFile {
    path: PathBuf,
    file: File,
    /// Where the tensors' data begins (after the length and the JSON header).
    data_start: u64,
    tensors: HashMap<String, TensorInfo>,
}

impl WeightFile {
    /// Reads and checks the header: every tensor's bytes lie inside the file and
    /// match its dtype and shape. The error says what is wrong, without the path.
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let mut file = File::open(path).map_err(|e| e.to_string())?;
        let file_len = file.metadata().map_err(|e| e.to_string())?.len();
        let mut len = [0u8; 8];
        file.read_exact(&mut len)
            .map_err(|_| "shorter than a safetensors header".to_string())?;
        let header_len = u64::from_le_bytes(len);
        if header_len > MAX_HEADER_BYTES || 8 + header_len > file_len {
            return Err(format!(
                "a header of {header_len} bytes in a file of {file_len}"
            ));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(|e| e.to_string())?;
        let metadata: Metadata =
            serde_json::from_slice(&header).map_err(|e| format!("unreadable header: {e}"))?;
        let data_start = 8 + header_len;
        let tensors: HashMap<String, TensorInfo> = metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| (name, info.clone()))
            .collect();
        for (name, info) in &tensors {
            check_extent(name, info, file_len - data_start)?;
        }
        Ok(WeightFile {
            path: path.to_path_buf(),
            file,
            data_start,
            tensors,
        })
    }

    /// The tensor `name` (stored as f32, f16 or bf16) as `dtype`. Stored f32 is
    /// narrowed to f16 or bf16 as it is read, never held whole at f32.
    fn read(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let Some(info) = self.tensors.get(name) else {
            candle_core::bail!("{}: no tensor {name}", self.path.display());
        };
        let at = self.data_start + info.data_offsets.0 as u64;
        let shape = info.shape.clone();
        let tensor = match (info.dtype, dtype) {
            (Dtype::F32, DType::F16) => self.read_as(at, shape, from_f32(half::f16::from_f32), dev),
            (Dtype::F32, DType::BF16) => {
                self.read_as(at, shape, from_f32(half::bf16::from_f32), dev)
            }
            (Dtype::F32, _) => self.read_f32(at, shape, dev),
            (Dtype::F16, _) => self.read_as(at, shape, half::f16::from_le_bytes, dev),
            (Dtype::BF16, _) => self.read_as(at, shape, half::bf16::from_le_bytes, dev),
            (other, _) => candle_core::bail!(
                "{}: {name} is {other:?}; f32, f16 and bf16 weights are read",
                self.path.display()
            ),
        }?;
        tensor.to_dtype(dtype)
    }

    /// Reads `shape`'s f32 elements from byte `at` straight into the tensor's memory.
    fn read_f32(&self, at: u64, shape: Vec<usize>, dev: &Device) -> candle_core::Result<Tensor> {
        let mut values = vec![0f32; shape.iter().product()];
        self.file
            .read_exact_at(bytemuck::cast_slice_mut(&mut values), at)?;
        if cfg!(target_endian = "big") {
            for v in &mut values {
                *v = f32::from_bits(u32::from_le(v.to_bits()));
            }
        }
        Tensor::from_vec(values, shape, dev)
    }

    /// Reads `shape`'s elements from byte `at`, each from its `N` little-endian bytes.
    fn read_as<T: WithDType, const N: usize>(
        &self,
        at: u64,
        shape: Vec<usize>,
        decode: impl Fn([u8; N]) -> T,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let count: usize = shape.iter().product();
        let mut values = Vec::with_capacity(count);
        let mut chunk = vec![0u8; READ_CHUNK_BYTES.min(count * N)];
        let mut offset = at;
        while values.len() < count {
            let take = (count - values.len()) * N;
            let bytes = &mut chunk[..take.min(READ_CHUNK_BYTES)];
            self.file.read_exact_at(bytes, offset)?;
            offset += bytes.len() as u64;
            values.extend(
                bytes
                    .chunks_exact(N)
                    .map(|b| decode(b.try_into().expect("N bytes"))),
            );
        }
        Tensor::from_vec(values, shape, dev)
    }
}

/// Decodes a stored f32 and narrows it with `narrow`.
fn from_f32<T>(narrow: fn(f32) -> T) -> impl Fn([u8; 4]) -> T {
    move |bytes| narrow(f32::from_le_bytes(bytes))
}

/// Refuses a tensor whose bytes do not fit its dtype and shape, or lie past the
/// `data_len` bytes of data.
fn check_extent(name: &str, info: &TensorInfo, data_len: u64) -> Result<(), String> {
    let (start, end) = info.data_offsets;
    let count: usize = info.shape.iter().product();
    if start > end || end as u64 > data_len {
        return Err(format!(
            "{name} lies at bytes {start}..{end}, past the {data_len} bytes of data"
        ));
    }
    if (count * info.dtype.bitsize()).div_ceil(8) != end - start {
        return Err(format!(
            "{name} has {} bytes for {count} values of {:?}",
            end - start,
            info.dtype
        ));
    }
    Ok(())
}

impl SimpleBackend for WeightFile {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.read(name, dtype, dev)?;
        if tensor.shape() != &shape {
            candle_core::bail!(
                "{}: {name} is {:?}, the model expects {:?}",
                self.path.display(),
                tensor.dims(),
                shape.dims()
            );
        }
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.read(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(tensors: &[(&str, Tensor)]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, file.path()).unwrap();
        file
    }

    #[test]
    fn tensors_read_back_as_candle_wrote_them_in_each_dtype() {
        let cpu = &Device::Cpu;
        let values: Vec<f32> = (0..3 * 700_000).map(|i| (i as f32).sin()).collect();
        let big = Tensor::from_vec(values, (3, 700_000), cpu).unwrap();
        let small = Tensor::new(&[[1.5f32, -2.0], [0.25, 8.0]], cpu).unwrap();
        let file = written(&[
            ("big", big.clone()),
            ("half", small.to_dtype(DType::F16).unwrap()),
            ("brain", small.to_dtype(DType::BF16).unwrap()),
        ]);
        let weights = WeightFile::open(file.path()).unwrap();
        let read = |name: &str, shape: &[usize]| {
            weights
                .get(
                    shape.into(),
                    name,
                    candle_nn::Init::Const(0.0),
                    DType::F32,
                    cpu,
                )
                .unwrap()
        };
        let same = |a: &Tensor, b: &Tensor| {
            let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            diff.to_scalar::<f32>().unwrap() == 0.0
        };
        assert!(same(&read("big", &[3, 700_000]), &big));
        assert!(same(&read("half", &[2, 2]), &small));
        assert!(same(&read("brain", &[2, 2]), &small));
        let narrowed = weights
            .get(
                (3, 700_000).into(),
                "big",
                candle_nn::Init::Const(0.0),
                DType::F16,
                cpu,
            )
            .unwrap();
        assert_eq!(narrowed.dtype(), DType::F16);
        let widened = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let rounded = widened(&big.to_dtype(DType::F16).unwrap());
        assert!(same(&widened(&narrowed), &rounded));
        assert!(weights.contains_tensor("big") && !weights.contains_tensor("nothing"));
        let wrong_shape = weights.get(
            (2, 3).into(),
            "half",
            candle_nn::Init::Const(0.0),
            DType::F32,
            cpu,
        );
        assert!(wrong_shape
            .unwrap_err()
            .to_string()
            .contains("the model expects"));
    }

    #[test]
    fn a_truncated_or_damaged_file_is_refused_at_open() {
        let cpu = &Device::Cpu;
        let file = written(&[("w", Tensor::zeros((64, 64), DType::F32, cpu).unwrap())]);
        let bytes = std::fs::read(file.path()).unwrap();
        let cut = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(cut.path(), &bytes[..bytes.len() - 100]).unwrap();
        let why = WeightFile::open(cut.path()).err().unwrap();
        assert!(why.contains("past the"), "{why}");
        std::fs::write(cut.path(), &bytes[..4]).unwrap();
        assert!(WeightFile::open(cut.path()).is_err());
        let mut garbled = bytes.clone();
        garbled[8] = b'#'; // the header's opening brace
        std::fs::write(cut.path(), &garbled).unwrap();
        let why = WeightFile::open(cut.path()).err().unwrap();
        assert!(why.contains("unreadable header"), "{why}");
    }
}
