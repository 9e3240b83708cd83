//! The packed kernels in AVX-512 intrinsics: `vdpbf16ps` (AVX-512 BF16) and
//! `vpdpbusd` (AVX-512 VNNI) over one tile of [`TILE_ROWS`] rows × one panel.
//! Each has a plain-Rust twin in `scalar.rs` that the tests compare it with.
//!
//! # Safety
//! Every function needs the CPU features it is compiled for: callers check
//! [`Format::supported`](super::Format::supported) (through `Kernel::Avx512`).

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::{Tile, PANEL, TILE_ROWS};

/// Stores the first `rows × width` values of a tile into `y`, row `r` at
/// `r · stride`: masked stores, no call per row.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn store_tile(
    tile: &Tile,
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

/// Rounds the leading multiple of 32 values of `row` into `out` (two bf16 per
/// u32, low half first, as the kernel reads them); returns how many.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn round_bf16(row: &[f32], out: &mut [u32]) -> usize {
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

#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn round_u8(row: &[f32], bytes: &mut [u8]) -> (f32, i32) {
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
        *b = v.mul_add(inv, zero + 0.5) as u8;
    }
    (scale, zero as i32)
}

/// One tile in bf16: `out[r][c] = Σ_j a[r][j] · panel[j][c] + bias[c]`.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn tile_bf16(a: &[u32], lanes: usize, panel: &[u32], bias: &[f32]) -> Tile {
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
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(super) unsafe fn tile_int8(
    a: &[u32],
    lanes: usize,
    panel: &[u32],
    rows: (&[f32], &[i32]),
    cols: (&[f32], &[i32], &[f32]),
) -> Tile {
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
