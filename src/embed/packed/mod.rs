//! Dense layers with weights packed once, at load, for the AVX-512 dot-product
//! instructions that sum several narrow products into each 32-bit lane:
//! - [`Format::Bf16`]: two bf16 values a lane (`vdpbf16ps`, AVX-512 BF16), f32 sums;
//! - [`Format::Int8`]: four 8-bit values a lane (`vpdpbusd`, AVX-512 VNNI), i32 sums.
//!   Weights are rounded to i8 with a scale per output; activations to u8 per token
//!   row, with the row's own scale and zero point, so every row spends all 256
//!   levels on its own range (one scale for a whole tensor is what costs ONNX
//!   Runtime's dynamic int8 its accuracy).
//!
//! Weights sit in panels of [`PANEL`] output columns, each column's group of inputs
//! in one 32-bit lane, so the kernel reads a panel front to back; activations are
//! rounded per call. A kernel call covers [`TILE_ROWS`] token rows × one panel and
//! finishes in registers: scales, zero points and bias; GELU follows in the same
//! pass when the layer feeds it. Where the CPU lacks the instructions, the encoder
//! runs candle's matmul instead (see `linear.rs`).
//!
//! This file holds the layout and the threading; the kernels are per instruction
//! set, behind [`Kernel`]: `avx512.rs` (intrinsics) and `scalar.rs` (plain Rust,
//! the reference the tests compare every other kernel with).

#[cfg(target_arch = "x86_64")]
mod avx512;
mod scalar;

use std::mem::MaybeUninit;
use std::ops::Range;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use half::bf16;
use rayon::prelude::*;

use super::isa;
use super::kernels::gelu;
use super::skinny::round_rows_to_i8;

/// Output columns per panel: two 16-lane vectors.
const PANEL: usize = 32;

/// Token rows per kernel call: 8 rows × 2 vectors = 16 accumulators.
const TILE_ROWS: usize = 8;

/// One kernel call's output: [`TILE_ROWS`] rows × one panel.
type Tile = [[f32; PANEL]; TILE_ROWS];

/// Token rows per parallel task: the panel is read from cache for its tiles.
const ROWS_PER_TASK: usize = 6 * TILE_ROWS;

/// How weights and activations are stored in the 32-bit lanes the kernels read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Two bf16 values a lane, products summed in f32.
    Bf16,
    /// Four 8-bit values a lane (u8 activations, i8 weights), summed in i32.
    Int8,
}

impl Format {
    /// Whether this CPU has the AVX-512 instructions for this format and they are
    /// not turned off (`STANCEMAP_KERNELS`, `STANCEMAP_PORTABLE`; see [`isa`]).
    pub fn supported(self) -> bool {
        let features = isa::features();
        match self {
            Format::Bf16 => features.avx512_bf16(),
            Format::Int8 => features.avx512_vnni(),
        }
    }

    /// Values in one 32-bit lane.
    fn per_lane(self) -> usize {
        match self {
            Format::Bf16 => 2,
            Format::Int8 => 4,
        }
    }
}

/// Which implementation runs the kernels of a packed layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// Plain Rust, on any CPU.
    Scalar,
    /// AVX-512 intrinsics: only made where [`Format::supported`] says so.
    Avx512,
}

impl Kernel {
    /// The fastest kernel for `format` on this CPU.
    fn best(format: Format) -> Self {
        if format.supported() {
            Kernel::Avx512
        } else {
            Kernel::Scalar
        }
    }

    /// `row` rounded to bf16 pairs in `out` (an odd last value paired with 0).
    fn round_bf16(self, row: &[f32], out: &mut [u32]) {
        let done = match self {
            // SAFETY: `Avx512` is only made where the format's instructions exist.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { avx512::round_bf16(row, out) },
            _ => 0,
        };
        scalar::round_bf16(&row[done..], &mut out[done / 2..]);
    }

    /// `row` rounded to u8 over its own range, four to a lane of `out`; returns
    /// the row's scale and zero point.
    fn round_u8(self, row: &[f32], out: &mut [u32]) -> (f32, i32) {
        // SAFETY: a byte view of `out`'s own memory; u8 has no alignment and no
        // invalid values.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), out.len() * 4) };
        match self {
            // SAFETY: `Avx512` is only made where the format's instructions exist.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { avx512::round_u8(row, bytes) },
            _ => scalar::round_u8(row, bytes),
        }
    }

    fn tile_bf16(self, a: &[u32], lanes: usize, panel: &[u32], bias: &[f32]) -> Tile {
        match self {
            // SAFETY: `Avx512` is only made where the format's instructions exist.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { avx512::tile_bf16(a, lanes, panel, bias) },
            _ => scalar::tile_bf16(a, lanes, panel, bias),
        }
    }

    fn tile_int8(
        self,
        a: &[u32],
        lanes: usize,
        panel: &[u32],
        rows: (&[f32], &[i32]),
        cols: (&[f32], &[i32], &[f32]),
    ) -> Tile {
        match self {
            // SAFETY: `Avx512` is only made where the format's instructions exist.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { avx512::tile_int8(a, lanes, panel, rows, cols) },
            _ => scalar::tile_int8(a, lanes, panel, rows, cols),
        }
    }

    fn store_tile(
        self,
        tile: &Tile,
        size: (usize, usize),
        y: &mut [MaybeUninit<f32>],
        stride: usize,
    ) {
        match self {
            // SAFETY: `Avx512` is only made where AVX-512 exists.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { avx512::store_tile(tile, size, y, stride) },
            _ => scalar::store_tile(tile, size, y, stride),
        }
    }
}

/// A dense layer's weight in panels, with its bias: `x · Wᵀ + bias`.
pub struct PackedWeight {
    format: Format,
    kernel: Kernel,
    /// Panel `p`, lane group `j`, column `c`: inputs `j·per_lane..` of output `32p + c`.
    panels: Vec<u32>,
    /// Per output, zero-padded to whole panels.
    bias: Vec<f32>,
    /// Int8 only, per output (zero-padded): the weight scale, and the sum of the
    /// rounded weights (what a row's zero point adds to each sum).
    scales: Vec<f32>,
    sums: Vec<i32>,
    outputs: usize,
    inner: usize,
    /// Lanes per row of inputs (`inner` rounded up to whole lanes).
    lanes: usize,
    /// Whether GELU (erf form) is applied to the outputs.
    gelu: bool,
}

/// Token rows as the kernels read them: `lanes` 32-bit lanes a row, zero rows up
/// to whole tiles, and for Int8 each row's scale and zero point
/// (`x ≈ (q - zero) · scale`).
struct Activations {
    lanes: Vec<u32>,
    scales: Vec<f32>,
    zeros: Vec<i32>,
}

impl PackedWeight {
    /// Packs `w` (`outputs × inner`, row-major f32) and its bias in `format`, to
    /// run on the fastest kernel this CPU has for it.
    pub fn pack(format: Format, w: &[f32], bias: &[f32], inner: usize) -> Self {
        Self::pack_for(Kernel::best(format), format, w, bias, inner)
    }

    fn pack_for(kernel: Kernel, format: Format, w: &[f32], bias: &[f32], inner: usize) -> Self {
        let outputs = bias.len();
        assert_eq!(w.len(), outputs * inner);
        let per_lane = format.per_lane();
        let lanes = inner.div_ceil(per_lane);
        let padded = outputs.next_multiple_of(PANEL);
        let mut scales = vec![0.0f32; padded];
        let mut sums = vec![0i32; padded];
        let bits: Vec<u32> = match format {
            Format::Bf16 => w
                .iter()
                .map(|&v| bf16::from_f32(v).to_bits() as u32)
                .collect(),
            Format::Int8 => {
                let (q, row_scales) = round_rows_to_i8(w, inner);
                scales[..outputs].copy_from_slice(&row_scales);
                for (sum, row) in sums.iter_mut().zip(q.chunks_exact(inner)) {
                    *sum = row.iter().map(|&v| v as i32).sum();
                }
                q.iter().map(|&v| v as u8 as u32).collect()
            }
        };
        let width = 32 / per_lane;
        let mut panels = vec![0u32; padded / PANEL * lanes * PANEL];
        for (col, row) in bits.chunks_exact(inner).enumerate() {
            let (panel, c) = (col / PANEL, col % PANEL);
            for (j, &b) in row.iter().enumerate() {
                panels[(panel * lanes + j / per_lane) * PANEL + c] |= b << (width * (j % per_lane));
            }
        }
        let mut padded_bias = vec![0.0f32; padded];
        padded_bias[..outputs].copy_from_slice(bias);
        PackedWeight {
            format,
            kernel,
            panels,
            bias: padded_bias,
            scales,
            sums,
            outputs,
            inner,
            lanes,
            gelu: false,
        }
    }

    /// The same layer followed by GELU, computed as each tile is finished.
    pub fn with_gelu(mut self) -> Self {
        self.gelu = true;
        self
    }

    /// Whether GELU is applied to the outputs.
    pub fn applies_gelu(&self) -> bool {
        self.gelu
    }

    /// `x · Wᵀ + bias` (then GELU if asked) for `x`: `m × inner` row-major.
    pub(crate) fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        let n = self.outputs;
        if n == 0 || m == 0 {
            return Vec::new();
        }
        let panel_count = n.div_ceil(PANEL);
        let acts = self.activations(x, m);
        if m.div_ceil(ROWS_PER_TASK) >= rayon::current_num_threads() {
            // SAFETY: the tasks' row ranges cover all m rows, every panel of each.
            return unsafe {
                written(m * n, |y| {
                    y.par_chunks_mut(ROWS_PER_TASK * n)
                        .enumerate()
                        .for_each(|(task, y)| {
                            let rows = task * ROWS_PER_TASK..task * ROWS_PER_TASK + y.len() / n;
                            self.tiles_into(&acts, rows, 0..panel_count, y, n);
                        })
                })
            };
        }
        // Few rows: the panels are split across threads instead.
        let parts: Vec<Vec<f32>> = (0..panel_count)
            .into_par_iter()
            .map(|p| {
                let width = (n - p * PANEL).min(PANEL);
                // SAFETY: all m rows of the panel's `width` columns.
                unsafe {
                    written(m * width, |part| {
                        self.tiles_into(&acts, 0..m, p..p + 1, part, width)
                    })
                }
            })
            .collect();
        let mut y = vec![0.0f32; m * n];
        for (p, part) in parts.iter().enumerate() {
            let width = part.len() / m;
            for (out, row) in y.chunks_exact_mut(n).zip(part.chunks_exact(width)) {
                out[p * PANEL..][..width].copy_from_slice(row);
            }
        }
        y
    }

    /// `x`'s rows rounded to this format's lanes.
    fn activations(&self, x: &[f32], m: usize) -> Activations {
        let padded = m.next_multiple_of(TILE_ROWS);
        let mut lanes = vec![0u32; padded * self.lanes];
        let rows = lanes
            .par_chunks_mut(self.lanes)
            .zip(x.par_chunks(self.inner));
        match self.format {
            Format::Bf16 => {
                rows.for_each(|(out, row)| self.kernel.round_bf16(row, out));
                Activations {
                    lanes,
                    scales: Vec::new(),
                    zeros: Vec::new(),
                }
            }
            Format::Int8 => {
                let mut scales = vec![1.0f32; padded];
                let mut zeros = vec![0i32; padded];
                rows.zip(scales.par_iter_mut().zip(zeros.par_iter_mut()))
                    .for_each(|((out, row), (scale, zero))| {
                        (*scale, *zero) = self.kernel.round_u8(row, out);
                    });
                Activations {
                    lanes,
                    scales,
                    zeros,
                }
            }
        }
    }

    /// Writes output rows `rows` of panels `panels` into `y` (row-major, `stride`
    /// values a row, its first row and column those of `rows.start` and
    /// `panels.start`).
    fn tiles_into(
        &self,
        acts: &Activations,
        rows: Range<usize>,
        panels: Range<usize>,
        y: &mut [MaybeUninit<f32>],
        stride: usize,
    ) {
        let panel_len = self.lanes * PANEL;
        for p in panels.clone() {
            let panel = &self.panels[p * panel_len..(p + 1) * panel_len];
            let cols = p * PANEL..(p + 1) * PANEL;
            let width = (self.outputs - cols.start).min(PANEL);
            for first in rows.clone().step_by(TILE_ROWS) {
                let tile = first..first + TILE_ROWS;
                let a = &acts.lanes[tile.start * self.lanes..tile.end * self.lanes];
                let sums = match self.format {
                    Format::Bf16 => {
                        self.kernel
                            .tile_bf16(a, self.lanes, panel, &self.bias[cols.clone()])
                    }
                    Format::Int8 => self.kernel.tile_int8(
                        a,
                        self.lanes,
                        panel,
                        (&acts.scales[tile.clone()], &acts.zeros[tile.clone()]),
                        (
                            &self.scales[cols.clone()],
                            &self.sums[cols.clone()],
                            &self.bias[cols.clone()],
                        ),
                    ),
                };
                let mut activated = [[0.0f32; PANEL]; TILE_ROWS];
                let tile_out = if self.gelu {
                    gelu(sums.as_flattened(), activated.as_flattened_mut());
                    &activated
                } else {
                    &sums
                };
                let at = (first - rows.start) * stride + (p - panels.start) * PANEL;
                let tile_rows = (rows.end - first).min(TILE_ROWS);
                self.kernel
                    .store_tile(tile_out, (tile_rows, width), &mut y[at..], stride);
            }
        }
    }
}

/// A vector of `len` values that `write` fills.
///
/// # Safety
/// `write` must write every one of the `len` values.
unsafe fn written(len: usize, write: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    write(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: the caller guarantees all `len` values were written.
    unsafe { v.set_len(len) };
    v
}

/// `x · Wᵀ + bias` for `x`: `[m, inner]` contiguous f32.
impl CustomOp1 for PackedWeight {
    fn name(&self) -> &'static str {
        match self.format {
            Format::Bf16 => "stancemap-bf16-gemm",
            Format::Int8 => "stancemap-int8-gemm",
        }
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = super::kernels::contiguous_f32(s, l, self.name())?;
        let (m, k) = l.shape().dims2()?;
        if k != self.inner {
            candle_core::bail!("{}: {m}×{k} input for {} inputs", self.name(), self.inner);
        }
        Ok((
            CpuStorage::F32(self.matmul(x, m)),
            Shape::from((m, self.outputs)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::sample;

    /// Odd inner sizes, outputs not a multiple of the panel, rows not of the tile,
    /// and row counts on both sides of the few-rows split.
    const SHAPES: [(usize, usize, usize); 4] = [(1, 7, 5), (13, 33, 40), (70, 64, 96), (9, 6, 70)];

    /// The kernels this CPU can run for `format`: the scalar one everywhere.
    fn kernels(format: Format) -> Vec<Kernel> {
        let mut kernels = vec![Kernel::Scalar];
        if format.supported() {
            kernels.push(Kernel::Avx512);
        } else {
            eprintln!("no {format:?} instructions on this CPU: the scalar kernel alone");
        }
        kernels
    }

    /// Checks `format`'s product on every kernel against `want(x, w, r, c)` for
    /// each shape.
    fn check(format: Format, want: impl Fn(&PackedWeight, &[f32], &[f32], usize, usize) -> f64) {
        for kernel in kernels(format) {
            for (m, k, n) in SHAPES {
                check_shape(kernel, format, (m, k, n), &want);
            }
        }
    }

    fn check_shape(
        kernel: Kernel,
        format: Format,
        (m, k, n): (usize, usize, usize),
        want: impl Fn(&PackedWeight, &[f32], &[f32], usize, usize) -> f64,
    ) {
        let (x, w, bias) = (
            sample(m * k, 31, 17),
            sample(n * k, 7919, 103),
            sample(n, 13, 29),
        );
        let packed = PackedWeight::pack_for(kernel, format, &w, &bias, k);
        let y = packed.matmul(&x, m);
        for r in 0..m {
            for c in 0..n {
                let want = want(&packed, &x, &w, r, c) + bias[c] as f64;
                let got = y[r * n + c] as f64;
                assert!(
                    (got - want).abs() < 1e-3,
                    "{kernel:?} m={m} k={k} n={n} r={r} c={c}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn bf16_equals_the_product_of_the_rounded_values() {
        let round = |v: f32| bf16::from_f32(v).to_f32() as f64;
        check(Format::Bf16, |p, x, w, r, c| {
            let k = p.inner;
            (0..k)
                .map(|j| round(x[r * k + j]) * round(w[c * k + j]))
                .sum()
        });
    }

    #[test]
    fn int8_equals_the_product_of_the_rounded_values() {
        check(Format::Int8, |p, x, w, r, c| {
            let k = p.inner;
            let acts = p.activations(x, x.len() / k);
            let bytes: Vec<u8> = acts.lanes[r * p.lanes..(r + 1) * p.lanes]
                .iter()
                .flat_map(|l| l.to_le_bytes())
                .collect();
            let (q, scales) = round_rows_to_i8(w, k);
            (0..k)
                .map(|j| {
                    let xr = (bytes[j] as i32 - acts.zeros[r]) as f64 * acts.scales[r] as f64;
                    // Each rounded value is within half a step of the true one.
                    assert!((xr - x[r * k + j] as f64).abs() <= acts.scales[r] as f64 * 0.51);
                    xr * q[c * k + j] as f64 * scales[c] as f64
                })
                .sum()
        });
    }

    #[test]
    fn gelu_follows_the_product() {
        let (m, k, n) = (3, 16, 40);
        let (x, w, bias) = (
            sample(m * k, 31, 17),
            sample(n * k, 7, 103),
            sample(n, 13, 29),
        );
        for kernel in kernels(Format::Bf16) {
            let pack = || PackedWeight::pack_for(kernel, Format::Bf16, &w, &bias, k);
            let plain = pack().matmul(&x, m);
            let fused = pack().with_gelu().matmul(&x, m);
            let mut want = vec![0.0; plain.len()];
            gelu(&plain, &mut want);
            assert_eq!(fused, want, "{kernel:?}");
        }
    }

    #[test]
    fn avx512_kernels_agree_with_the_scalar_ones() {
        for format in [Format::Bf16, Format::Int8] {
            if !format.supported() {
                continue;
            }
            for (m, k, n) in SHAPES {
                let (x, w, bias) = (
                    sample(m * k, 31, 17),
                    sample(n * k, 7919, 103),
                    sample(n, 13, 29),
                );
                let y = |kernel| PackedWeight::pack_for(kernel, format, &w, &bias, k).matmul(&x, m);
                let (fast, reference) = (y(Kernel::Avx512), y(Kernel::Scalar));
                for (i, (a, b)) in fast.iter().zip(&reference).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-3,
                        "{format:?} m={m} k={k} n={n} at {i}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
