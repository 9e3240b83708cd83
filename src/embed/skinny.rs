//! Matrix products with few rows (`x · Wᵀ` for a short query: a handful of tokens
//! times an `[out, in]` weight). The general GEMM packs the whole weight matrix on
//! every call and pads the rows to its 16-row tile, so for a 7-token query most of
//! its time goes to copies and padding. Here each output is a dot product of a
//! token row with one contiguous weight row; a pair of weight rows is read from
//! memory once for all tokens (in register tiles of up to [`ROW_TILE`] tokens),
//! the outputs split across threads, the bias added on the way out. Weights are
//! f32 as stored, or 8-bit ([`WeightRows<i8>`]: a fourth of the bytes to stream,
//! widened to f32 in registers). Compiled a second time for AVX2+FMA, chosen at
//! run time.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Products with at most this many rows take this path: the GEMM's row tile, below
/// which it pads. Batches have hundreds of rows and keep the GEMM.
pub const MAX_ROWS: usize = 16;

/// Token rows a register tile covers: with two outputs, 12 accumulators, two
/// weight vectors and a token vector fill the 16 vector registers.
const ROW_TILE: usize = 6;

/// Output columns per parallel task.
const COLUMNS_PER_TASK: usize = 32;

/// Lanes of one AVX2 vector.
const LANES: usize = 8;

/// A weight element the kernels read: f32 as stored, or i8 (scaled per row).
pub trait WeightElement: Copy + Send + Sync + 'static {
    /// The element as f32 (before its row's scale).
    fn widen(self) -> f32;

    /// [`LANES`] elements from `p`, widened to f32.
    ///
    /// # Safety
    /// `p` must point at `LANES` readable elements, on a CPU with AVX2.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load_lanes(p: *const Self) -> __m256;
}

impl WeightElement for f32 {
    fn widen(self) -> f32 {
        self
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load_lanes(p: *const Self) -> __m256 {
        // SAFETY: the caller guarantees LANES readable floats.
        unsafe { _mm256_loadu_ps(p) }
    }
}

impl WeightElement for i8 {
    fn widen(self) -> f32 {
        self as f32
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load_lanes(p: *const Self) -> __m256 {
        // SAFETY: the caller guarantees LANES readable bytes and AVX2.
        unsafe { _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p.cast()))) }
    }
}

/// Dot products of `R` rows of `x` (each `k` long) with `C` weight rows (each `k`
/// long, consecutive in `w`): `out[r][c] = x_r · w_c`. `k` is a multiple of
/// [`LANES`]; `R · C` accumulators stay in registers (at most 12).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_tile_avx2<W: WeightElement, const R: usize, const C: usize>(
    x: &[f32],
    k: usize,
    w: &[W],
) -> [[f32; C]; R] {
    assert!(x.len() >= R * k && w.len() >= C * k && k.is_multiple_of(LANES));
    let mut acc = [[_mm256_setzero_ps(); C]; R];
    // SAFETY: every load reads LANES elements at an offset i + r·k (or i + c·k)
    // with i + LANES ≤ k, r < R and c < C, inside the lengths asserted above.
    unsafe {
        for i in (0..k).step_by(LANES) {
            let mut wv = [_mm256_setzero_ps(); C];
            for (c, v) in wv.iter_mut().enumerate() {
                *v = W::load_lanes(w.as_ptr().add(c * k + i));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let xv = _mm256_loadu_ps(x.as_ptr().add(r * k + i));
                for c in 0..C {
                    acc[c] = _mm256_fmadd_ps(xv, wv[c], acc[c]);
                }
            }
        }
    }
    let mut out = [[0.0f32; C]; R];
    for (out, acc) in out.iter_mut().zip(&acc) {
        for (o, &v) in out.iter_mut().zip(acc) {
            // Lanes 4..8 onto 0..4, then 2..4 onto 0..2, then 1 onto 0.
            let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
            *o = _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps::<1>(pair, pair)));
        }
    }
    out
}

/// The same dot products, portable.
fn dot_tile<W: WeightElement, const R: usize, const C: usize>(
    x: &[f32],
    k: usize,
    w: &[W],
) -> [[f32; C]; R] {
    std::array::from_fn(|r| {
        let row = &x[r * k..(r + 1) * k];
        std::array::from_fn(|c| {
            let w = &w[c * k..(c + 1) * k];
            row.iter().zip(w).map(|(a, b)| a * b.widen()).sum::<f32>()
        })
    })
}

/// `out[r][c] = x_r · w_c`, with AVX2+FMA when `avx2` (checked once per product).
fn dots<W: WeightElement, const R: usize, const C: usize>(
    avx2: bool,
    x: &[f32],
    k: usize,
    w: &[W],
) -> [[f32; C]; R] {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `avx2` is only true when the CPU has AVX2 and FMA.
        return unsafe { dot_tile_avx2::<W, R, C>(x, k, w) };
    }
    let _ = avx2;
    dot_tile::<W, R, C>(x, k, w)
}

/// Outputs `col` and `col + 1` for rows `row..row + R` into `y` (rows `width`
/// long, these outputs at `at`).
fn output_pair<W: WeightElement, const R: usize>(
    avx2: bool,
    x: &[f32],
    k: usize,
    (w, scales): (&[W], [f32; 2]),
    (y, width, row, at): (&mut [f32], usize, usize, usize),
) {
    let tile = dots::<W, R, 2>(avx2, x, k, w);
    for (r, values) in tile.iter().enumerate() {
        let start = (row + r) * width + at;
        y[start] = values[0] * scales[0];
        y[start + 1] = values[1] * scales[1];
    }
}

/// Output columns `cols` (an even count) of `x · wᵀ + bias` (`x`: `m × k`; `w`:
/// `n × k`, one row per output, times its scale when given) into `y` (`m ×
/// cols.len()`). The weights stream from memory once, whatever the row count.
fn columns<W: WeightElement>(
    avx2: bool,
    x: &[f32],
    (m, k): (usize, usize),
    weight: &WeightRows<W>,
    cols: std::ops::Range<usize>,
    y: &mut [f32],
) {
    let width = cols.len();
    for (t, col) in cols.step_by(2).enumerate() {
        let w = &weight.w[col * k..(col + 2) * k];
        let scale = |c: usize| weight.scales.as_ref().map_or(1.0, |s| s[c]);
        let w = (w, [scale(col), scale(col + 1)]);
        // Rows in equal tiles of at most ROW_TILE: the weight pair, read from memory
        // for the first tile, is in cache for the others.
        let tile = m.div_ceil(m.div_ceil(ROW_TILE));
        let mut row = 0;
        while row < m {
            let rows = (m - row).min(tile);
            let (xs, out) = (&x[row * k..], (&mut *y, width, row, 2 * t));
            match rows {
                6 => output_pair::<W, 6>(avx2, xs, k, w, out),
                5 => output_pair::<W, 5>(avx2, xs, k, w, out),
                4 => output_pair::<W, 4>(avx2, xs, k, w, out),
                3 => output_pair::<W, 3>(avx2, xs, k, w, out),
                2 => output_pair::<W, 2>(avx2, xs, k, w, out),
                _ => output_pair::<W, 1>(avx2, xs, k, w, out),
            }
            row += rows;
        }
        for r in 0..m {
            let at = r * width + 2 * t;
            y[at] += weight.bias[col];
            y[at + 1] += weight.bias[col + 1];
        }
    }
}

/// Whether AVX2 and FMA may be used (see [`isa`](super::isa)).
fn has_avx2_fma() -> bool {
    super::isa::features().avx2()
}

/// Whether a product of `rows` tokens, `inner` inputs and `out` outputs takes this
/// path (outputs go in pairs).
pub fn fits(rows: usize, inner: usize, out: usize) -> bool {
    (1..=MAX_ROWS).contains(&rows) && inner.is_multiple_of(LANES) && out.is_multiple_of(2)
}

/// A dense layer's weight as `[out, in]` rows (f32 as stored, or i8 with one scale
/// per row: `w[c][j] ≈ q[c][j] · scales[c]`), and its bias: `x · wᵀ + bias` as a
/// candle op for few rows.
pub struct WeightRows<W> {
    w: Vec<W>,
    scales: Option<Vec<f32>>,
    bias: Vec<f32>,
    inner: usize,
}

impl WeightRows<f32> {
    /// `w`: `out × inner`, row-major; `bias`: `out`.
    pub fn new(w: Vec<f32>, bias: Vec<f32>, inner: usize) -> Self {
        assert_eq!(w.len(), bias.len() * inner);
        WeightRows {
            w,
            scales: None,
            bias,
            inner,
        }
    }
}

/// Rows of `w` (`inner` values each) rounded to 8 bits, and each row's scale:
/// `w[c][j] ≈ q[c][j] · scales[c]`, `scales[c] = max_j |w[c][j]| / 127`.
pub fn round_rows_to_i8(w: &[f32], inner: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(w.len());
    let scales = w
        .chunks_exact(inner)
        .map(|row| {
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            q.extend(
                row.iter()
                    .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
            );
            scale
        })
        .collect();
    (q, scales)
}

impl WeightRows<i8> {
    /// `w` rounded to 8 bits per row (see [`round_rows_to_i8`]).
    pub fn quantize(w: &[f32], bias: Vec<f32>, inner: usize) -> Self {
        assert_eq!(w.len(), bias.len() * inner);
        let (q, scales) = round_rows_to_i8(w, inner);
        WeightRows {
            w: q,
            scales: Some(scales),
            bias,
            inner,
        }
    }

    /// The rounded weight back in f32, `out × inner`.
    pub fn dequantize(&self) -> Vec<f32> {
        let scales = self.scales.as_deref().unwrap_or_default();
        self.w
            .chunks_exact(self.inner)
            .zip(scales)
            .flat_map(|(row, s)| row.iter().map(move |&v| v as f32 * s))
            .collect()
    }
}

impl<W: WeightElement> WeightRows<W> {
    /// Output count.
    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// `x · wᵀ + bias` for `x`: `m × inner` (row-major), `m` ≤ [`MAX_ROWS`].
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        let (k, n) = (self.inner, self.outputs());
        assert!(fits(m, k, n) && x.len() == m * k);
        let avx2 = has_avx2_fma();
        let tasks: Vec<(usize, Vec<f32>)> = (0..n)
            .step_by(COLUMNS_PER_TASK)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|start| {
                let end = (start + COLUMNS_PER_TASK).min(n);
                let mut part = vec![0.0f32; m * (end - start)];
                columns(avx2, x, (m, k), self, start..end, &mut part);
                (start, part)
            })
            .collect();
        let mut y = vec![0.0f32; m * n];
        for (start, part) in tasks {
            let width = part.len() / m;
            for (r, chunk) in part.chunks_exact(width).enumerate() {
                y[r * n + start..r * n + start + width].copy_from_slice(chunk);
            }
        }
        y
    }
}

impl<W: WeightElement> CustomOp1 for WeightRows<W> {
    fn name(&self) -> &'static str {
        "stancemap-skinny-matmul"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = super::kernels::contiguous_f32(s, l, self.name())?;
        let (m, k) = l.shape().dims2()?;
        if k != self.inner || !fits(m, k, self.outputs()) {
            candle_core::bail!(
                "{}: {m}×{k} input for {} inputs does not fit",
                self.name(),
                self.inner
            );
        }
        let y = self.matmul(x, m);
        Ok((CpuStorage::F32(y), Shape::from((m, self.outputs()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::sample;

    fn plain_product(x: &[f32], m: usize, w: &[f32], bias: &[f32]) -> Vec<f64> {
        let (n, k) = (bias.len(), x.len() / m);
        (0..m * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                let dot: f64 = (0..k)
                    .map(|j| x[r * k + j] as f64 * w[c * k + j] as f64)
                    .sum();
                dot + bias[c] as f64
            })
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f64], m: usize) {
        let close = got
            .iter()
            .zip(want)
            .all(|(a, b)| (*a as f64 - b).abs() < 1e-4);
        assert!(close, "m={m}");
    }

    #[test]
    fn equals_the_plain_product_for_every_row_count() {
        let (k, n) = (40, 98);
        let (w, bias) = (sample(k * n, 7919, 103), sample(n, 13, 29));
        let rows = WeightRows::new(w.clone(), bias.clone(), k);
        // Odd outputs, too many rows or a ragged inner size go to the GEMM instead.
        assert!(!fits(1, k, n - 1) && !fits(MAX_ROWS + 1, k, n) && !fits(1, k + 1, n));
        for m in 1..=MAX_ROWS {
            let x = sample(m * k, 31, 17);
            let want = plain_product(&x, m, &w, &bias);
            assert_close(&rows.matmul(&x, m), &want, m);
        }
    }

    #[test]
    fn eight_bit_rows_equal_the_product_with_the_rounded_weight() {
        let (k, n) = (48, 10);
        let (w, bias) = (sample(k * n, 7919, 211), sample(n, 13, 29));
        let rows = WeightRows::quantize(&w, bias.clone(), k);
        let rounded = rows.dequantize();
        // Rounding moves a weight by at most half a step of its row.
        let scales = rows.scales.as_deref().unwrap();
        for ((row, back), step) in w.chunks(k).zip(rounded.chunks(k)).zip(scales) {
            assert!(row
                .iter()
                .zip(back)
                .all(|(a, b)| (a - b).abs() <= step / 2.0 + 1e-6));
        }
        for m in [1, 7, 13] {
            let x = sample(m * k, 31, 17);
            let want = plain_product(&x, m, &rounded, &bias);
            assert_close(&rows.matmul(&x, m), &want, m);
        }
    }
}
