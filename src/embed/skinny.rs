//! Matrix products with few rows (`x · Wᵀ` for a short query: a handful of tokens
//! times an `[out, in]` weight). The general GEMM packs the whole weight matrix on
//! every call and pads the rows to its 16-row tile, so for a 7-token query most of
//! its time goes to copies and padding. Here each output is a dot product of a
//! token row with one contiguous weight row, read once for up to [`ROW_TILE`]
//! tokens (two outputs at a time share the token loads), the outputs split across
//! threads. Compiled a second time for AVX2+FMA, chosen at run time.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape};
use rayon::prelude::*;

/// Products with at most this many rows take this path: the GEMM's row tile, below
/// which it pads. Batches have hundreds of rows and keep the GEMM.
pub const MAX_ROWS: usize = 16;

/// Token rows a register tile covers.
const ROW_TILE: usize = 12;

/// Output columns per parallel task.
const COLUMNS_PER_TASK: usize = 32;

/// Lanes of one AVX2 vector.
const LANES: usize = 8;

/// Dot products of `R` rows of `x` (each `k` long) with `C` weight rows (each `k`
/// long, consecutive in `w`): `out[r][c] = x_r · w_c`. `k` is a multiple of
/// [`LANES`]; `R · C` accumulators stay in registers (at most 12).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_tile_avx2<const R: usize, const C: usize>(x: &[f32], k: usize, w: &[f32]) -> [[f32; C]; R] {
    use std::arch::x86_64::*;
    assert!(x.len() >= R * k && w.len() >= C * k && k.is_multiple_of(LANES));
    let mut acc = [[_mm256_setzero_ps(); C]; R];
    // SAFETY: every load reads LANES floats at an offset i + r·k (or i + c·k) with
    // i + LANES ≤ k, r < R and c < C, inside the lengths asserted above.
    unsafe {
        for i in (0..k).step_by(LANES) {
            let wv: [__m256; C] =
                std::array::from_fn(|c| _mm256_loadu_ps(w.as_ptr().add(c * k + i)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let xv = _mm256_loadu_ps(x.as_ptr().add(r * k + i));
                for c in 0..C {
                    acc[c] = _mm256_fmadd_ps(xv, wv[c], acc[c]);
                }
            }
        }
    }
    let sum = |v: __m256| {
        let mut lanes = [0.0f32; LANES];
        // SAFETY: `lanes` holds LANES floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        lanes.iter().sum::<f32>()
    };
    acc.map(|row| row.map(sum))
}

/// The same dot products, portable.
fn dot_tile<const R: usize, const C: usize>(x: &[f32], k: usize, w: &[f32]) -> [[f32; C]; R] {
    std::array::from_fn(|r| {
        let row = &x[r * k..(r + 1) * k];
        std::array::from_fn(|c| {
            let w = &w[c * k..(c + 1) * k];
            row.iter().zip(w).map(|(a, b)| a * b).sum::<f32>()
        })
    })
}

/// `out[r][c] = x_r · w_c`, with AVX2+FMA when `avx2` (checked once per product).
fn dots<const R: usize, const C: usize>(
    avx2: bool,
    x: &[f32],
    k: usize,
    w: &[f32],
) -> [[f32; C]; R] {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `avx2` is only true when the CPU has AVX2 and FMA.
        return unsafe { dot_tile_avx2::<R, C>(x, k, w) };
    }
    let _ = avx2;
    dot_tile::<R, C>(x, k, w)
}

/// Outputs `col` and `col + 1` for rows `row..row + R` into `y` (rows `width`
/// long, these outputs at `at`): two outputs at a time up to 6 rows, one at a
/// time above (`R · C` accumulators must fit the 16 vector registers).
fn output_pair<const R: usize>(
    avx2: bool,
    x: &[f32],
    k: usize,
    w: &[f32],
    (y, width, row, at): (&mut [f32], usize, usize, usize),
) {
    let put = |tile: &[[f32; 2]], y: &mut [f32]| {
        for (r, values) in tile.iter().enumerate() {
            let start = (row + r) * width + at;
            y[start..start + 2].copy_from_slice(values);
        }
    };
    let tile: [[f32; 2]; R] = if R > 6 {
        let (first, second) = (
            dots::<R, 1>(avx2, x, k, w),
            dots::<R, 1>(avx2, x, k, &w[k..]),
        );
        std::array::from_fn(|r| [first[r][0], second[r][0]])
    } else {
        dots::<R, 2>(avx2, x, k, w)
    };
    put(&tile, y);
}

/// Output columns `cols` (an even count) of `x · wᵀ` (`x`: `m × k`; `w`: `n × k`,
/// one row per output) into `y` (`m × cols.len()`). Up to 12 token rows share each
/// weight load, so the weights stream from memory once for a query of 12 tokens or
/// fewer.
fn columns(
    avx2: bool,
    x: &[f32],
    (m, k): (usize, usize),
    w: &[f32],
    cols: std::ops::Range<usize>,
    y: &mut [f32],
) {
    let width = cols.len();
    for (t, col) in cols.step_by(2).enumerate() {
        let w = &w[col * k..(col + 2) * k];
        let mut row = 0;
        while row < m {
            let rows = (m - row).min(ROW_TILE);
            let (xs, out) = (&x[row * k..], (&mut *y, width, row, 2 * t));
            match rows {
                12 => output_pair::<12>(avx2, xs, k, w, out),
                11 => output_pair::<11>(avx2, xs, k, w, out),
                10 => output_pair::<10>(avx2, xs, k, w, out),
                9 => output_pair::<9>(avx2, xs, k, w, out),
                8 => output_pair::<8>(avx2, xs, k, w, out),
                7 => output_pair::<7>(avx2, xs, k, w, out),
                6 => output_pair::<6>(avx2, xs, k, w, out),
                5 => output_pair::<5>(avx2, xs, k, w, out),
                4 => output_pair::<4>(avx2, xs, k, w, out),
                3 => output_pair::<3>(avx2, xs, k, w, out),
                2 => output_pair::<2>(avx2, xs, k, w, out),
                _ => output_pair::<1>(avx2, xs, k, w, out),
            }
            row += rows;
        }
    }
}

/// `x · wᵀ` for `x`: `m × k` and `w`: `n × k` (row-major; one weight row per
/// output), `k` a multiple of 8 and `n` even.
pub fn matmul(x: &[f32], m: usize, k: usize, w: &[f32], n: usize) -> Vec<f32> {
    assert!(fits(m, k, n) && x.len() == m * k && w.len() == n * k);
    let avx2 = has_avx2_fma();
    let tasks: Vec<(usize, Vec<f32>)> = (0..n)
        .step_by(COLUMNS_PER_TASK)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            let end = (start + COLUMNS_PER_TASK).min(n);
            let mut part = vec![0.0f32; m * (end - start)];
            columns(avx2, x, (m, k), w, start..end, &mut part);
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

/// Whether the CPU has AVX2 and FMA.
fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether a product of `rows` tokens, `inner` inputs and `out` outputs takes this
/// path.
pub fn fits(rows: usize, inner: usize, out: usize) -> bool {
    (1..=MAX_ROWS).contains(&rows) && inner.is_multiple_of(LANES) && out.is_multiple_of(2)
}

/// `x · wᵀ` as a candle op, for `x`: `[m, k]` and `w`: `[n, k]`, contiguous f32.
pub struct SkinnyMatmul;

impl CustomOp2 for SkinnyMatmul {
    fn name(&self) -> &'static str {
        "stancemap-skinny-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = super::kernels::contiguous_f32(s1, l1, self.name())?;
        let w = super::kernels::contiguous_f32(s2, l2, self.name())?;
        let (m, k) = l1.shape().dims2()?;
        let (n, k2) = l2.shape().dims2()?;
        if k != k2 || !fits(m, k, n) {
            candle_core::bail!("{}: shapes {m}×{k} · ({n}×{k2})ᵀ do not fit", self.name());
        }
        Ok((CpuStorage::F32(matmul(x, m, k, w, n)), Shape::from((m, n))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_plain_product_for_every_row_count() {
        let (k, n) = (40, 98);
        let w: Vec<f32> = (0..k * n)
            .map(|i| ((i * 7919) % 103) as f32 / 51.0 - 1.0)
            .collect();
        for m in 1..=MAX_ROWS {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0)
                .collect();
            let y = matmul(&x, m, k, &w, n);
            for r in 0..m {
                for c in 0..n {
                    let want: f64 = (0..k)
                        .map(|j| x[r * k + j] as f64 * w[c * k + j] as f64)
                        .sum();
                    assert!(
                        (y[r * n + c] as f64 - want).abs() < 1e-4,
                        "m={m} r={r} c={c}"
                    );
                }
            }
        }
    }
}
