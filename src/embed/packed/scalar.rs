//! The packed kernels in plain Rust: the same layout and arithmetic as
//! `avx512.rs`, one value at a time. They run where AVX-512 is missing or turned
//! off (`STANCEMAP_KERNELS=scalar`), and they are what the AVX-512 kernels are
//! tested against.

use std::mem::MaybeUninit;

use half::bf16;

use super::{Tile, PANEL, TILE_ROWS};

/// Stores the first `rows × width` values of a tile into `y`, row `r` at
/// `r · stride`.
pub(super) fn store_tile(
    tile: &Tile,
    (rows, width): (usize, usize),
    y: &mut [MaybeUninit<f32>],
    stride: usize,
) {
    for (r, values) in tile.iter().enumerate().take(rows) {
        for (out, &v) in y[r * stride..r * stride + width].iter_mut().zip(values) {
            out.write(v);
        }
    }
}

/// `row` rounded to bf16 pairs in `out`, low half first (an odd last value paired
/// with 0).
pub(super) fn round_bf16(row: &[f32], out: &mut [u32]) {
    for (o, pair) in out.iter_mut().zip(row.chunks(2)) {
        let lo = bf16::from_f32(pair[0]).to_bits() as u32;
        let hi = pair
            .get(1)
            .map_or(0, |&v| bf16::from_f32(v).to_bits() as u32);
        *o = lo | hi << 16;
    }
}

/// `row` rounded to u8 over its own range (which includes 0, so 0 is exact) into
/// `bytes`; returns the row's scale and zero point (`x ≈ (q - zero) · scale`).
pub(super) fn round_u8(row: &[f32], bytes: &mut [u8]) -> (f32, i32) {
    let (lo, hi) = row
        .iter()
        .fold((0.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let inv = 1.0 / scale;
    let zero = (-lo * inv).round().min(255.0);
    // `as u8` truncates and saturates: values a rounding step outside 0..=255 land
    // on the ends.
    for (b, &v) in bytes.iter_mut().zip(row) {
        *b = v.mul_add(inv, zero + 0.5) as u8;
    }
    (scale, zero as i32)
}

/// One tile in bf16: `out[r][c] = Σ_j a[r][j] · panel[j][c] + bias[c]`.
pub(super) fn tile_bf16(a: &[u32], lanes: usize, panel: &[u32], bias: &[f32]) -> Tile {
    let pair = |lane: u32| {
        let half = |bits: u32| bf16::from_bits(bits as u16).to_f32();
        (half(lane & 0xffff), half(lane >> 16))
    };
    let mut out = [[0.0f32; PANEL]; TILE_ROWS];
    for (r, out) in out.iter_mut().enumerate() {
        for (c, out) in out.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            for j in 0..lanes {
                let ((a0, a1), (b0, b1)) = (pair(a[r * lanes + j]), pair(panel[j * PANEL + c]));
                acc += a0 * b0 + a1 * b1;
            }
            *out = acc + bias[c];
        }
    }
    out
}

/// One tile in 8 bits: `out[r][c] = (Σ_j a[r][j] · panel[j][c] - zero[r] · sums[c])
/// · scale[r] · wscale[c] + bias[c]`, `rows` = (scale, zero) and `cols` =
/// (wscale, sums, bias); `a` holds u8 and `panel` i8, four to a lane.
pub(super) fn tile_int8(
    a: &[u32],
    lanes: usize,
    panel: &[u32],
    rows: (&[f32], &[i32]),
    cols: (&[f32], &[i32], &[f32]),
) -> Tile {
    let mut out = [[0.0f32; PANEL]; TILE_ROWS];
    for (r, out) in out.iter_mut().enumerate() {
        for (c, out) in out.iter_mut().enumerate() {
            let mut acc = 0i32;
            for j in 0..lanes {
                let (x, w) = (
                    a[r * lanes + j].to_le_bytes(),
                    panel[j * PANEL + c].to_le_bytes(),
                );
                for (&x, &w) in x.iter().zip(&w) {
                    acc = acc.wrapping_add(i32::from(x) * i32::from(w as i8));
                }
            }
            let centred = acc.wrapping_sub(rows.1[r].wrapping_mul(cols.1[c]));
            *out = (centred as f32).mul_add(cols.0[c] * rows.0[r], cols.2[c]);
        }
    }
    out
}
