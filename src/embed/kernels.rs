//! Element-wise CPU kernels the profile showed candle running with scalar libm
//! calls: GELU (erf form) and the attention softmax. Each is a candle `CustomOp1`
//! over f32, written branch-free so the compiler vectorises it, and compiled a
//! second and third time for AVX2+FMA and AVX-512, chosen at run time.
//!
//! Accuracy: `exp` has a relative error under 2e-7 and `erf` an absolute error
//! under 2e-7 (Abramowitz–Stegun 7.1.26 refined), far below f32 rounding in the
//! model's output; the golden tests check the whole encoder.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

/// e^x for x in f32 range (Cody–Waite reduction, degree-6 polynomial).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // 2^n from n's bits: adding 1.5·2^23 puts the integer n in the low mantissa bits.
    // (`n as i32` would do, but Rust's saturating float-to-int cast keeps the loop
    // from vectorising.)
    let n_bits = (n + 12_582_912.0).to_bits().wrapping_sub(0x4B40_0000);
    p * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// erf(x) (Abramowitz–Stegun 7.1.26 form with the library's own exp).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

#[inline(always)]
fn gelu_slice(src: &[f32], dst: &mut [f32]) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Softmax of `scale * row` for each row of `width` values.
#[inline(always)]
fn softmax_rows(src: &[f32], dst: &mut [f32], width: usize, scale: f32) {
    for (s, d) in src.chunks_exact(width).zip(dst.chunks_exact_mut(width)) {
        let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max) * scale;
        for (o, &x) in d.iter_mut().zip(s) {
            *o = exp(x * scale - max);
        }
        let sum = lanes_sum(d);
        let inv = 1.0 / sum;
        d.iter_mut().for_each(|v| *v *= inv);
    }
}

/// A sum in 8 independent lanes, so it vectorises without reassociation.
#[inline(always)]
fn lanes_sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

macro_rules! dispatch {
    ($name:ident, $avx512:ident, $avx2:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn $avx512($($arg: $ty),*) {
            $body($($arg),*)
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx2($($arg: $ty),*) {
            $body($($arg),*)
        }

        pub(super) fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            if super::isa::features().avx512() {
                // SAFETY: the CPU supports the features the function was compiled for.
                return unsafe { $avx512($($arg),*) };
            }
            #[cfg(target_arch = "x86_64")]
            if super::isa::features().avx2() {
                // SAFETY: the CPU supports the features the function was compiled for.
                return unsafe { $avx2($($arg),*) };
            }
            $body($($arg),*)
        }
    };
}

dispatch!(gelu, gelu_avx512, gelu_avx2, gelu_slice, (src: &[f32], dst: &mut [f32]));
dispatch!(softmax, softmax_avx512, softmax_avx2, softmax_rows, (src: &[f32], dst: &mut [f32], width: usize, scale: f32));

/// Rows per parallel task: enough work to be worth a thread hand-off.
const PAR_CHUNK: usize = 1 << 14;

/// The contiguous f32 data of a CPU tensor.
pub(super) fn contiguous_f32<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op}: only f32 is supported");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

/// GELU with the exact (erf) form, as BERT uses it.
pub struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "stancemap-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(storage, layout, self.name())?;
        let mut dst = vec![0.0f32; src.len()];
        dst.par_chunks_mut(PAR_CHUNK)
            .zip(src.par_chunks(PAR_CHUNK))
            .for_each(|(d, s)| gelu(s, d));
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

/// Softmax over the last dimension of `scale * x`.
pub struct ScaledSoftmax {
    pub scale: f32,
}

impl CustomOp1 for ScaledSoftmax {
    fn name(&self) -> &'static str {
        "stancemap-scaled-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(storage, layout, self.name())?;
        let width = layout.shape().dims().last().copied().unwrap_or(1).max(1);
        let rows_per_task = (PAR_CHUNK / width).max(1) * width;
        let mut dst = vec![0.0f32; src.len()];
        dst.par_chunks_mut(rows_per_task)
            .zip(src.par_chunks(rows_per_task))
            .for_each(|(d, s)| softmax(s, d, width, self.scale));
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_are_accurate() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let e = exp(x) as f64;
            let want = (x as f64).exp();
            assert!(
                ((e - want) / want).abs() < 3e-7,
                "exp({x}) = {e}, want {want}"
            );
            let got = erf(x) as f64;
            if x.abs() <= 3.0 {
                let want = series_erf(x as f64);
                assert!((got - want).abs() < 3e-7, "erf({x}) = {got}, want {want}");
            } else {
                // erf(3) = 0.999978: beyond it erf is within 2.3e-5 of ±1.
                assert!((got - x.signum() as f64).abs() < 2.3e-5, "erf({x}) = {got}");
            }
        }
    }

    /// erf in f64 by its Maclaurin series (accurate for |x| <= 3).
    fn series_erf(x: f64) -> f64 {
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn softmax_rows_sum_to_one_and_match_reference() {
        let width = 7;
        let src: Vec<f32> = (0..3 * width)
            .map(|i| (i as f32 * 0.37).sin() * 20.0)
            .collect();
        let mut dst = vec![0.0; src.len()];
        softmax(&src, &mut dst, width, 0.5);
        for (s, d) in src.chunks(width).zip(dst.chunks(width)) {
            let max = s.iter().copied().fold(f32::MIN, f32::max) as f64 * 0.5;
            let denom: f64 = s.iter().map(|&x| (x as f64 * 0.5 - max).exp()).sum();
            for (&x, &p) in s.iter().zip(d) {
                let want = (x as f64 * 0.5 - max).exp() / denom;
                assert!((p as f64 - want).abs() < 1e-6);
            }
            assert!((d.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
}
