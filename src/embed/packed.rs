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
//! runs candle's matmul instead (see `encoder.rs`).

use std::mem::MaybeUninit;
use std::ops::Range;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use half::bf16;
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::kernels::gelu;
use super::skinny::round_rows_to_i8;

/// Output columns per panel: two 16-lane vectors.
const PANEL: usize = 32;

/// Token rows per kernel call: 8 rows × 2 vectors = 16 accumulators.
const TILE_ROWS: usize = 8;

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
    /// Whether this CPU has the instructions for this format, and they are not
    /// turned off with `STANCEMAP_PORTABLE=1` (to run and test what other CPUs run).
    pub fn supported(self) -> bool {
        if std::env::var("STANCEMAP_PORTABLE").is_ok_and(|v| !v.is_empty() && v != "0") {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        return std::is_x86_feature_detected!("avx512f")
            && match self {
                Format::Bf16 => std::is_x86_feature_detected!("avx512bf16"),
                Format::Int8 => {
                    std::is_x86_feature_detected!("avx512bw")
                        && std::is_x86_feature_detected!("avx512vnni")
                }
            };
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// Values in one 32-bit lane.
    fn per_lane(self) -> usize {
        match self {
            Format::Bf16 => 2,
            Format::Int8 => 4,
        }
    }
}

/// A dense layer's weight in panels, with its bias: `x · Wᵀ + bias`.
pub struct PackedWeight {
    format: Format,
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
    /// Packs `w` (`outputs × inner`, row-major f32) and its bias in `format`, which
    /// must be [`supported`](Format::supported): the kernels rely on it.
    pub fn pack(format: Format, w: &[f32], bias: &[f32], inner: usize) -> Self {
        assert!(
            format.supported(),
            "{format:?} kernels on a CPU without them"
        );
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
    fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        let n = self.outputs;
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
                rows.for_each(|(out, row)| round_to_bf16(row, out));
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
                        (*scale, *zero) = round_to_u8(row, out);
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
                // SAFETY: the format's instructions were checked when the layer was packed.
                let sums = unsafe {
                    match self.format {
                        Format::Bf16 => tile_bf16(a, self.lanes, panel, &self.bias[cols.clone()]),
                        Format::Int8 => tile_int8(
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
                    }
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
                // SAFETY: AVX-512 was checked when the layer was packed.
                unsafe { store_tile(tile_out, (tile_rows, width), &mut y[at..], stride) };
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

/// Stores the first `rows × width` values of a tile into `y`, row `r` at
/// `r · stride`: masked stores, no call per row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn store_tile(
    tile: &[[f32; PANEL]; TILE_ROWS],
    (rows, width): (usize, usize),
    y: &mut [MaybeUninit<f32>],
    stride: usize,
) {
    for (r, values) in tile.iter().enumerate().take(rows) {
        let out = &mut y[r * stride..r * stride + width];
        for h in 0..2 {
            let lanes = width.saturating_sub(16 * h).min(16);
            if lanes == 0 {
                break;
            }
            let mask = ((1u32 << lanes) - 1) as u16;
            // SAFETY: the mask writes only the `lanes` values from 16h, inside `out`.
            unsafe {
                let v = _mm512_loadu_ps(values.as_ptr().add(16 * h));
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(16 * h).cast(), mask, v);
            }
        }
    }
}

/// `row` rounded to bf16 pairs in `out` (an odd last value paired with 0).
fn round_to_bf16(row: &[f32], out: &mut [u32]) {
    // SAFETY: only called for a layer packed where `Format::Bf16` is supported.
    let done = unsafe { round_bf16_avx512(row, out) };
    for (o, pair) in out[done / 2..].iter_mut().zip(row[done..].chunks(2)) {
        let lo = bf16::from_f32(pair[0]).to_bits() as u32;
        let hi = pair
            .get(1)
            .map_or(0, |&v| bf16::from_f32(v).to_bits() as u32);
        *o = lo | hi << 16;
    }
}

/// Rounds the leading multiple of 32 values of `row` into `out` (two bf16 per
/// u32, low half first, as the kernel reads them); returns how many.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn round_bf16_avx512(row: &[f32], out: &mut [u32]) -> usize {
    let whole = row.len() / 32 * 32;
    assert!(out.len() * 2 >= whole);
    for i in (0..whole).step_by(32) {
        // SAFETY: values i..i + 32 are in `row`, pairs i/2..i/2 + 16 in `out`.
        unsafe {
            let lo = _mm512_loadu_ps(row.as_ptr().add(i));
            let hi = _mm512_loadu_ps(row.as_ptr().add(i + 16));
            let rounded = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(out.as_mut_ptr().add(i / 2).cast(), rounded);
        }
    }
    whole
}

/// `row` rounded to u8 over its own range, four to a lane of `out`; returns the
/// row's scale and zero point. The range includes 0, so 0 is exact.
fn round_to_u8(row: &[f32], out: &mut [u32]) -> (f32, i32) {
    // SAFETY: a byte view of `out`'s own memory; u8 has no alignment and no invalid values.
    let bytes =
        unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), out.len() * 4) };
    // SAFETY: only called for a layer packed where `Format::Int8` is supported.
    unsafe { round_u8_avx512(row, bytes) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn round_u8_avx512(row: &[f32], bytes: &mut [u8]) -> (f32, i32) {
    assert!(bytes.len() >= row.len());
    let whole = row.len() / 16 * 16;
    let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    for i in (0..whole).step_by(16) {
        // SAFETY: values i..i + 16 are in `row`.
        let v = unsafe { _mm512_loadu_ps(row.as_ptr().add(i)) };
        (lo, hi) = (_mm512_min_ps(lo, v), _mm512_max_ps(hi, v));
    }
    let (lo, hi) = row[whole..].iter().fold(
        (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi)),
        |(lo, hi), &v| (lo.min(v), hi.max(v)),
    );
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let inv = 1.0 / scale;
    let zero = (-lo * inv).round().min(255.0);
    let (inv_v, offset_v) = (_mm512_set1_ps(inv), _mm512_set1_ps(zero + 0.5));
    for i in (0..whole).step_by(16) {
        // SAFETY: values i..i + 16 are in `row`, bytes i..i + 16 in `bytes` (asserted).
        unsafe {
            let v = _mm512_fmadd_ps(_mm512_loadu_ps(row.as_ptr().add(i)), inv_v, offset_v);
            let q = _mm512_max_epi32(_mm512_cvttps_epi32(v), _mm512_setzero_si512());
            _mm_storeu_si128(bytes.as_mut_ptr().add(i).cast(), _mm512_cvtusepi32_epi8(q));
        }
    }
    // `as u8` saturates: values a rounding step outside 0..=255 land on the ends.
    for (b, &v) in bytes[whole..].iter_mut().zip(&row[whole..]) {
        *b = (v * inv + zero + 0.5) as u8;
    }
    (scale, zero as i32)
}

/// One tile in bf16: `out[r][c] = Σ_j a[r][j] · panel[j][c] + bias[c]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile_bf16(
    a: &[u32],
    lanes: usize,
    panel: &[u32],
    bias: &[f32],
) -> [[f32; PANEL]; TILE_ROWS] {
    assert!(a.len() >= TILE_ROWS * lanes && panel.len() >= lanes * PANEL && bias.len() >= PANEL);
    let as_bf16 = |v: __m512i| std::mem::transmute::<__m512i, __m512bh>(v);
    let mut acc = [[_mm512_setzero_ps(); 2]; TILE_ROWS];
    for j in 0..lanes {
        // SAFETY: lane group j of the panel is 32 u32 from j·32, inside the asserted length.
        let (b0, b1) = unsafe {
            let at = panel.as_ptr().add(j * PANEL);
            (
                as_bf16(_mm512_loadu_si512(at.cast())),
                as_bf16(_mm512_loadu_si512(at.add(16).cast())),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = as_bf16(_mm512_set1_epi32(a[r * lanes + j] as i32));
            acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
            acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
        }
    }
    let mut out = [[0.0f32; PANEL]; TILE_ROWS];
    for (out, acc) in out.iter_mut().zip(&acc) {
        for (h, &acc) in acc.iter().enumerate() {
            // SAFETY: 16 floats at 16h of `bias` (asserted) and of `out`.
            unsafe {
                let bias = _mm512_loadu_ps(bias.as_ptr().add(16 * h));
                _mm512_storeu_ps(out.as_mut_ptr().add(16 * h), _mm512_add_ps(acc, bias));
            }
        }
    }
    out
}

/// One tile in 8 bits: `out[r][c] = (Σ_j a[r][j] · panel[j][c] - zero[r] · sums[c])
/// · scale[r] · wscale[c] + bias[c]`, `rows` = (scale, zero) and `cols` =
/// (wscale, sums, bias).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_int8(
    a: &[u32],
    lanes: usize,
    panel: &[u32],
    rows: (&[f32], &[i32]),
    cols: (&[f32], &[i32], &[f32]),
) -> [[f32; PANEL]; TILE_ROWS] {
    assert!(a.len() >= TILE_ROWS * lanes && panel.len() >= lanes * PANEL);
    assert!(rows.0.len() >= TILE_ROWS && rows.1.len() >= TILE_ROWS);
    assert!(cols.0.len() >= PANEL && cols.1.len() >= PANEL && cols.2.len() >= PANEL);
    let mut acc = [[_mm512_setzero_si512(); 2]; TILE_ROWS];
    for j in 0..lanes {
        // SAFETY: lane group j of the panel is 32 u32 from j·32, inside the asserted length.
        let (b0, b1) = unsafe {
            let at = panel.as_ptr().add(j * PANEL);
            (
                _mm512_loadu_si512(at.cast()),
                _mm512_loadu_si512(at.add(16).cast()),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_epi32(a[r * lanes + j] as i32);
            acc[0] = _mm512_dpbusd_epi32(acc[0], av, b0);
            acc[1] = _mm512_dpbusd_epi32(acc[1], av, b1);
        }
    }
    let mut out = [[0.0f32; PANEL]; TILE_ROWS];
    for (r, (out, acc)) in out.iter_mut().zip(&acc).enumerate() {
        let (scale, zero) = (_mm512_set1_ps(rows.0[r]), _mm512_set1_epi32(rows.1[r]));
        for (h, &acc) in acc.iter().enumerate() {
            // SAFETY: 16 values at 16h of each column slice (asserted) and of `out`.
            unsafe {
                let wscale = _mm512_loadu_ps(cols.0.as_ptr().add(16 * h));
                let sums = _mm512_loadu_si512(cols.1.as_ptr().add(16 * h).cast());
                let bias = _mm512_loadu_ps(cols.2.as_ptr().add(16 * h));
                let centred = _mm512_sub_epi32(acc, _mm512_mullo_epi32(zero, sums));
                let y = _mm512_fmadd_ps(
                    _mm512_cvtepi32_ps(centred),
                    _mm512_mul_ps(wscale, scale),
                    bias,
                );
                _mm512_storeu_ps(out.as_mut_ptr().add(16 * h), y);
            }
        }
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn round_bf16_avx512(_: &[f32], _: &mut [u32]) -> usize {
    unreachable!("packed only where Format::supported() is true")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn round_u8_avx512(_: &[f32], _: &mut [u8]) -> (f32, i32) {
    unreachable!("packed only where Format::supported() is true")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn store_tile(
    _: &[[f32; PANEL]; TILE_ROWS],
    _: (usize, usize),
    _: &mut [MaybeUninit<f32>],
    _: usize,
) {
    unreachable!("packed only where Format::supported() is true")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile_bf16(_: &[u32], _: usize, _: &[u32], _: &[f32]) -> [[f32; PANEL]; TILE_ROWS] {
    unreachable!("packed only where Format::supported() is true")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile_int8(
    _: &[u32],
    _: usize,
    _: &[u32],
    _: (&[f32], &[i32]),
    _: (&[f32], &[i32], &[f32]),
) -> [[f32; PANEL]; TILE_ROWS] {
    unreachable!("packed only where Format::supported() is true")
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

    /// Checks `format`'s product against `want(x, w, r, c)` for each shape.
    fn check(format: Format, want: impl Fn(&PackedWeight, &[f32], &[f32], usize, usize) -> f64) {
        if !format.supported() {
            eprintln!("no {format:?} instructions on this CPU: nothing to check");
            return;
        }
        for (m, k, n) in SHAPES {
            let (x, w, bias) = (
                sample(m * k, 31, 17),
                sample(n * k, 7919, 103),
                sample(n, 13, 29),
            );
            let packed = PackedWeight::pack(format, &w, &bias, k);
            let y = packed.matmul(&x, m);
            for r in 0..m {
                for c in 0..n {
                    let want = want(&packed, &x, &w, r, c) + bias[c] as f64;
                    let got = y[r * n + c] as f64;
                    assert!(
                        (got - want).abs() < 1e-3,
                        "m={m} k={k} n={n} r={r} c={c}: {got} vs {want}"
                    );
                }
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
        if !Format::Bf16.supported() {
            return;
        }
        let (m, k, n) = (3, 16, 40);
        let (x, w, bias) = (
            sample(m * k, 31, 17),
            sample(n * k, 7, 103),
            sample(n, 13, 29),
        );
        let plain = PackedWeight::pack(Format::Bf16, &w, &bias, k).matmul(&x, m);
        let fused = PackedWeight::pack(Format::Bf16, &w, &bias, k)
            .with_gelu()
            .matmul(&x, m);
        let mut want = vec![0.0; plain.len()];
        gelu(&plain, &mut want);
        assert_eq!(fused, want);
    }
}
