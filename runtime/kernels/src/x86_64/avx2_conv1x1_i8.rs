//! Quantized pointwise (1x1, stride 1, dense) convolution, AVX2 (no VNNI).
//!
//! `vpmaddubsw` (u8 x i8 pairs summed into saturating `i16`) can overflow (2 x 255 x 127 >
//! 32767), so the input is widened to `i16` and multiplied with `vpmaddwd`: each `i32` lane
//! gets `x[c] * w[c] + x[c + 1] * w[c + 1]`, exact. The CHW input is transposed tile by tile
//! (16 pixels) into a stack buffer `[in_c / 2][16 pixels][2 channels]` of `i16` (a missing last
//! channel is zero, and so is its weight); the weights of a register tile are sign-extended to
//! `i16` rows on the stack, so that 2 input channels of one output channel are one broadcast
//! dword. The input enters as raw codes, so each output channel starts from
//! `bias - zp * sum(w)` (wrapping, equal to the reference modulo 2^32). A register tile is 4
//! output channels by 2 vectors of 8 pixels (8 accumulators: with the inputs, the broadcast
//! weights and the products it fits the 16 registers; 4 x 3 spills).

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use super::qout_i8::{probe, store8, store8x2, v8, Dst, Stage};
use crate::quant::{QConvParams, QOutput};
use crate::ConvShape;

/// Pixels per tile.
pub(crate) const TILE: usize = 16;
/// Largest number of input channels (the packed tile holds `MAX_K * TILE` `i16`).
pub(crate) const MAX_K: usize = 512;
/// Output channels whose stages are prepared at once.
pub(crate) const OC_CHUNK: usize = 128;
/// Output channels of a register tile.
const MR: usize = 4;

/// The packed tile: `[k / 2][TILE][2]` `i16`.
#[repr(C, align(32))]
pub(crate) struct Packed(pub(crate) [i16; MAX_K * TILE]);

/// Widened weight rows of a register tile.
#[repr(C, align(32))]
pub(crate) struct Weights(pub(crate) [i16; MR * MAX_K]);

/// Packs pixels `p0..p0 + n` (n <= 16) of all `in_c` channels; pixels past `n` and a channel
/// past `in_c` are zero.
#[inline(always)]
unsafe fn pack(input: *const u8, in_c: usize, pixels: usize, p0: usize, n: usize, buf: *mut i16) {
    for q in 0..in_c.div_ceil(2) {
        let row = |c: usize, x: usize| -> __m128i {
            if c >= in_c || x >= n {
                return _mm_setzero_si128();
            }
            let src = input.add(c * pixels + p0 + x);
            if x + 8 <= n {
                _mm_loadl_epi64(src as *const __m128i)
            } else {
                let mut t = [0u8; 8];
                core::ptr::copy_nonoverlapping(src, t.as_mut_ptr(), n - x);
                _mm_loadl_epi64(t.as_ptr() as *const __m128i)
            }
        };
        for v in 0..TILE / 8 {
            let a = row(2 * q, 8 * v);
            let b = row(2 * q + 1, 8 * v);
            let pair = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b));
            _mm256_store_si256(buf.add((q * TILE + 8 * v) * 2) as *mut __m256i, pair);
        }
    }
}

/// `bias - zp * sum(w)` of each output channel in `oc0..oc0 + n`.
#[inline(always)]
pub(crate) unsafe fn corrections(
    p: &QConvParams<'_>,
    k: usize,
    oc0: usize,
    n: usize,
    corr: &mut [i32],
) {
    for j in 0..n {
        let oc = oc0 + j;
        let row = &p.weight[oc * k..][..k];
        let sum = row.iter().fold(0i32, |s, &w| s.wrapping_add(w as i32));
        corr[j] = p
            .bias_of(oc)
            .wrapping_sub(p.in_zero_point.wrapping_mul(sum));
    }
}

/// Sign-extends `m` weight rows of `k` bytes into `i16` rows of stride `2 * ceil(k / 2)`
/// (zero-padded).
#[inline(always)]
unsafe fn widen_weights(w: *const i8, k: usize, m: usize, dst: *mut i16) {
    let stride = 2 * k.div_ceil(2);
    for j in 0..m {
        let src = w.add(j * k);
        let out = dst.add(j * stride);
        let mut i = 0;
        while i + 16 <= k {
            let v = _mm256_cvtepi8_epi16(_mm_loadu_si128(src.add(i) as *const __m128i));
            _mm256_storeu_si256(out.add(i) as *mut __m256i, v);
            i += 16;
        }
        while i < k {
            *out.add(i) = *src.add(i) as i16;
            i += 1;
        }
        if k % 2 == 1 {
            *out.add(k) = 0;
        }
    }
}

/// One register tile: `M` output channels (widened weight rows at `w`, stride `2 * pairs`) by
/// `N` vectors of 8 packed pixels (`n` valid pixels in all).
#[inline(always)]
unsafe fn tile<const M: usize, const N: usize>(
    buf: *const i16,
    w: *const i16,
    pairs: usize,
    corr: &[i32],
    stages: &[Stage],
    dst: Dst,
    plane: usize,
    at: usize,
    n: usize,
) {
    let mut acc = [[_mm256_setzero_si256(); N]; M];
    for j in 0..M {
        let c = _mm256_set1_epi32(corr[j]);
        for v in 0..N {
            acc[j][v] = c;
        }
    }
    for q in 0..pairs {
        let mut x = [_mm256_setzero_si256(); N];
        for v in 0..N {
            x[v] = _mm256_load_si256(buf.add((q * TILE + 8 * v) * 2) as *const __m256i);
        }
        for j in 0..M {
            let d = (w.add(j * 2 * pairs + 2 * q) as *const i32).read_unaligned();
            let wv = _mm256_set1_epi32(d);
            for v in 0..N {
                acc[j][v] = _mm256_add_epi32(acc[j][v], _mm256_madd_epi16(x[v], wv));
            }
        }
    }
    // Explicit stores (constant indices) keep `acc` in registers during the reduction.
    let mut spill = Spill([_mm256_setzero_si256(); MR * TILE / 8]);
    for j in 0..M {
        for v in 0..N {
            _mm256_store_si256(spill.0.as_mut_ptr().add(j * N + v), acc[j][v]);
        }
    }
    finish(&spill.0[..M * N], N, stages, dst, plane, at, n);
}

#[repr(C, align(32))]
struct Spill([__m256i; MR * TILE / 8]);

/// Finishes a register tile's accumulators (`acc[j * nv + v]`: channel `j`, vector `v`).
#[inline(never)]
#[target_feature(enable = "avx2")]
unsafe fn finish(
    acc: &[__m256i],
    nv: usize,
    stages: &[Stage],
    dst: Dst,
    plane: usize,
    at: usize,
    n: usize,
) {
    for j in 0..acc.len() / nv {
        let s = &stages[j];
        let vs = v8(s);
        if nv == 2 {
            let pair = [acc[2 * j], acc[2 * j + 1]];
            store8x2(s, &vs, dst, j * plane + at, pair, n);
            continue;
        }
        store8(s, &vs, dst, j * plane + at, acc[j], n.min(8));
    }
}

/// All output channels of `oc0..oc0 + n_oc` (weight rows of `k` bytes from `w`) over one
/// packed tile of `n` pixels: register tiles of up to 4 channels by `ceil(n / 8)` vectors,
/// finished into `dst` at element `j * plane + at` of channel `j` (relative to `oc0`).
#[inline(always)]
pub(crate) unsafe fn tiles(
    buf: *const i16,
    w: *const i8,
    k: usize,
    corr: &[i32],
    stages: &[Stage],
    dst: Dst,
    plane: usize,
    at: usize,
    n: usize,
    n_oc: usize,
    wbuf: &mut Weights,
) {
    let pairs = k.div_ceil(2);
    let mut j = 0;
    while j < n_oc {
        let m = (n_oc - j).min(MR);
        widen_weights(w.add(j * k), k, m, wbuf.0.as_mut_ptr());
        let (b, wb) = (buf, wbuf.0.as_ptr());
        let (c, st) = (&corr[j..], &stages[j..]);
        let at = j * plane + at;
        macro_rules! go {
            ($m:literal) => {
                match n.div_ceil(8) {
                    1 => tile::<$m, 1>(b, wb, pairs, c, st, dst, plane, at, n),
                    _ => tile::<$m, 2>(b, wb, pairs, c, st, dst, plane, at, n),
                }
            };
        }
        match m {
            1 => go!(1),
            2 => go!(2),
            3 => go!(3),
            _ => go!(4),
        }
        j += m;
    }
}

#[target_feature(enable = "avx2")]
unsafe fn run(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], mut out: QOutput<'_>) {
    let pixels = s.in_h * s.in_w;
    let k = s.in_c;
    let pr = probe(&out);
    let dst = Dst::of(&mut out);
    let mut buf = Packed([0; MAX_K * TILE]);
    let mut wbuf = Weights([0; MR * MAX_K]);
    let mut corr = [0i32; OC_CHUNK];
    let mut stages = [Stage::new(p, &pr, 0); OC_CHUNK];
    let mut oc0 = 0;
    while oc0 < s.out_c {
        let n_oc = (s.out_c - oc0).min(OC_CHUNK);
        corrections(p, k, oc0, n_oc, &mut corr);
        for j in 0..n_oc {
            stages[j] = Stage::new(p, &pr, oc0 + j);
        }
        let mut p0 = 0;
        while p0 < pixels {
            let n = (pixels - p0).min(TILE);
            pack(input.as_ptr(), k, pixels, p0, n, buf.0.as_mut_ptr());
            tiles(
                buf.0.as_ptr(),
                p.weight.as_ptr().add(oc0 * k),
                k,
                &corr,
                &stages,
                dst,
                pixels,
                oc0 * pixels + p0,
                n,
                n_oc,
                &mut wbuf,
            );
            p0 += TILE;
        }
        oc0 += n_oc;
    }
}

/// Quantized pointwise convolution (`qconv1x1`), AVX2 kernel for 1x1, stride 1, unpadded,
/// single-group shapes with at most 512 input channels; anything else (or a CPU without AVX2)
/// runs [`crate::generic_i8::qconv2d`]. Same results as the reference, bit for bit.
pub fn conv1x1(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    let pointwise = s.is_pointwise();
    let pixels = s.in_h * s.in_w;
    if !pointwise
        || s.in_c > MAX_K
        || s.in_c == 0
        || s.out_c == 0
        || pixels == 0
        || !crate::has_avx2()
    {
        return crate::generic_i8::qconv2d(s, p, input, out);
    }
    p.check_operands("qconv1x1", s, pixels, input.len(), out.len());
    // SAFETY: buffer sizes checked above; loads read whole 8-byte groups only inside the plane
    // (partial groups are copied), stores cover exactly the valid pixels; avx2 is present.
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out)
    }
}
