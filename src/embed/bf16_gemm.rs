//! Dense layers in bfloat16 on CPUs with AVX-512 BF16 (`vdpbf16ps`: 32 products of
//! bf16 pairs summed into 16 f32 lanes per instruction, twice f32 FMA's work).
//! Weights are packed once at load into panels of [`PANEL`] output columns, each
//! input pair of a column side by side, so the kernel reads a panel front to back;
//! activations are rounded to bf16 per call; sums stay f32. Where the CPU lacks
//! AVX-512 BF16, `bf16` runs candle's matmul instead (see `encoder.rs`).

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use half::bf16;
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Output columns per panel: two 16-lane vectors.
const PANEL: usize = 32;

/// Token rows per register tile: 8 rows × 2 vectors = 16 accumulators.
const TILE_ROWS: usize = 8;

/// Token rows per parallel task: the panel is read from cache for its tiles.
const ROWS_PER_TASK: usize = 6 * TILE_ROWS;

/// Whether this CPU runs the packed kernel.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bf16");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// A dense layer's weight in bf16 panels, and its f32 bias: `x · Wᵀ + bias`.
pub struct PackedBf16 {
    /// Panel `p`, input pair `j`, column `c`: `[W[32p + c][2j], W[32p + c][2j + 1]]`.
    panels: Vec<u16>,
    bias: Vec<f32>,
    inner: usize,
    /// Input pairs (`inner` rounded up to even, halved).
    pairs: usize,
}

impl PackedBf16 {
    /// Packs `w` (`out × inner`, row-major f32) and its bias.
    pub fn pack(w: &[f32], bias: Vec<f32>, inner: usize) -> Self {
        let out = bias.len();
        assert_eq!(w.len(), out * inner);
        let pairs = inner.div_ceil(2);
        let panel_count = out.div_ceil(PANEL);
        let mut panels = vec![0u16; panel_count * pairs * PANEL * 2];
        for (col, row) in w.chunks_exact(inner).enumerate() {
            let (panel, c) = (col / PANEL, col % PANEL);
            for (j, &v) in row.iter().enumerate() {
                let at = ((panel * pairs + j / 2) * PANEL + c) * 2 + j % 2;
                panels[at] = bf16::from_f32(v).to_bits();
            }
        }
        PackedBf16 {
            panels,
            bias,
            inner,
            pairs,
        }
    }

    /// Output count.
    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// `x · Wᵀ + bias` for `x`: `m × inner` row-major.
    fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        let n = self.outputs();
        let a = round_rows(x, m, self.inner, self.pairs);
        let mut y = vec![0.0f32; m * n];
        y.par_chunks_mut(ROWS_PER_TASK * n)
            .enumerate()
            .for_each(|(task, y)| {
                let first = task * ROWS_PER_TASK;
                let rows = y.len() / n;
                let a =
                    &a[first * self.pairs..(first + rows.next_multiple_of(TILE_ROWS)) * self.pairs];
                self.rows_into(a, rows, y);
            });
        y
    }

    /// Output rows for the rounded inputs `a` (tiles of [`TILE_ROWS`], zero-padded)
    /// into `y` (`rows × outputs`).
    fn rows_into(&self, a: &[u32], rows: usize, y: &mut [f32]) {
        let n = self.outputs();
        let panel_len = self.pairs * PANEL * 2;
        for (p, panel) in self.panels.chunks_exact(panel_len).enumerate() {
            let cols = (n - p * PANEL).min(PANEL);
            for tile in 0..rows.div_ceil(TILE_ROWS) {
                let a = &a[tile * TILE_ROWS * self.pairs..(tile + 1) * TILE_ROWS * self.pairs];
                // SAFETY: `supported()` was checked when the op was built.
                let sums = unsafe { tile_avx512(a, self.pairs, panel) };
                for r in 0..(rows - tile * TILE_ROWS).min(TILE_ROWS) {
                    let out = &mut y[(tile * TILE_ROWS + r) * n + p * PANEL..][..cols];
                    for (c, o) in out.iter_mut().enumerate() {
                        *o = sums[r][c] + self.bias[p * PANEL + c];
                    }
                }
            }
        }
    }
}

/// `x` (`m × inner`) rounded to bf16, each row as `pairs` 32-bit pairs (an odd
/// `inner` padded with 0), then zero rows up to a multiple of [`TILE_ROWS`].
fn round_rows(x: &[f32], m: usize, inner: usize, pairs: usize) -> Vec<u32> {
    let mut a = vec![0u32; m.next_multiple_of(TILE_ROWS) * pairs];
    a.par_chunks_mut(pairs)
        .zip(x.par_chunks(inner))
        .for_each(|(out, row)| {
            // SAFETY: `supported()` was checked when the op was built.
            let done = unsafe { round_avx512(row, out) };
            for (o, pair) in out[done / 2..].iter_mut().zip(row[done..].chunks(2)) {
                let lo = bf16::from_f32(pair[0]).to_bits() as u32;
                let hi = pair
                    .get(1)
                    .map_or(0, |&v| bf16::from_f32(v).to_bits() as u32);
                *o = lo | hi << 16;
            }
        });
    a
}

/// Rounds the leading multiple of 32 values of `row` into `out` (two bf16 per
/// u32, low half first, as the kernel reads them); returns how many.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn round_avx512(row: &[f32], out: &mut [u32]) -> usize {
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

#[cfg(not(target_arch = "x86_64"))]
unsafe fn round_avx512(_: &[f32], _: &mut [u32]) -> usize {
    unreachable!("built only where supported() is true")
}

/// 32 bf16 values seen as what the dot-product instruction takes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn as_bf16(v: __m512i) -> __m512bh {
    // SAFETY: both are 64 bytes of plain lanes.
    unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
}

/// Sums of [`TILE_ROWS`] rounded rows (`a`: `TILE_ROWS × pairs`) with one panel:
/// `out[r][c] = Σ_j a[r][j] · panel[j][c]`, as bf16 pair dot products.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile_avx512(a: &[u32], pairs: usize, panel: &[u16]) -> [[f32; PANEL]; TILE_ROWS] {
    assert!(a.len() >= TILE_ROWS * pairs && panel.len() >= pairs * PANEL * 2);
    let mut acc = [[_mm512_setzero_ps(); 2]; TILE_ROWS];
    for j in 0..pairs {
        // SAFETY: pair j of the panel is 64 u16 from j·64, inside the asserted length.
        let (b0, b1) = unsafe {
            let at = panel.as_ptr().add(j * PANEL * 2);
            (
                as_bf16(_mm512_loadu_si512(at.cast())),
                as_bf16(_mm512_loadu_si512(at.add(PANEL).cast())),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = as_bf16(_mm512_set1_epi32(a[r * pairs + j] as i32));
            acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
            acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
        }
    }
    let mut out = [[0.0f32; PANEL]; TILE_ROWS];
    for (out, acc) in out.iter_mut().zip(&acc) {
        // SAFETY: each half of `out` holds 16 floats.
        unsafe {
            _mm512_storeu_ps(out.as_mut_ptr(), acc[0]);
            _mm512_storeu_ps(out.as_mut_ptr().add(16), acc[1]);
        }
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile_avx512(_: &[u32], _: usize, _: &[u16]) -> [[f32; PANEL]; TILE_ROWS] {
    unreachable!("built only where supported() is true")
}

/// `x · Wᵀ + bias` for `x`: `[m, inner]` contiguous f32.
impl CustomOp1 for PackedBf16 {
    fn name(&self) -> &'static str {
        "stancemap-bf16-gemm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = super::kernels::contiguous_f32(s, l, self.name())?;
        let (m, k) = l.shape().dims2()?;
        if k != self.inner {
            candle_core::bail!("{}: {m}×{k} input for {} inputs", self.name(), self.inner);
        }
        Ok((
            CpuStorage::F32(self.matmul(x, m)),
            Shape::from((m, self.outputs())),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize, step: usize, modulus: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * step) % modulus) as f32 / (modulus / 2) as f32 - 1.0)
            .collect()
    }

    #[test]
    fn equals_the_product_of_the_rounded_values() {
        if !supported() {
            eprintln!("no AVX-512 BF16 on this CPU: nothing to check");
            return;
        }
        let round = |v: f32| bf16::from_f32(v).to_f32() as f64;
        // Odd inner size, outputs not a multiple of the panel, rows not of the tile.
        for (m, k, n) in [(1, 7, 5), (13, 33, 40), (70, 64, 96)] {
            let (x, w, bias) = (
                sample(m * k, 31, 17),
                sample(n * k, 7919, 103),
                sample(n, 13, 29),
            );
            let y = PackedBf16::pack(&w, bias.clone(), k).matmul(&x, m);
            for r in 0..m {
                for c in 0..n {
                    let want: f64 = (0..k)
                        .map(|j| round(x[r * k + j]) * round(w[c * k + j]))
                        .sum::<f64>()
                        + bias[c] as f64;
                    let got = y[r * n + c] as f64;
                    assert!(
                        (got - want).abs() < 1e-3,
                        "m={m} k={k} n={n} r={r} c={c}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
