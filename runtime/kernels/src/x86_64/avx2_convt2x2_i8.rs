//! Quantized transposed convolution with a 2x2 kernel, stride 2, no padding, one group (U-Net
//! upsampling), AVX2. Output pixel `(2y + ky, 2x + kx)` of channel `oc` is
//! `bias[oc] + sum_ic w[ic][oc][ky][kx] * (in[ic][y][x] - zp)`: four pointwise convolutions
//! whose outputs interleave.
//!
//! As in [`super::avx2_conv1x1_i8`], pairs of input channels are multiplied with `vpmaddwd` on
//! `i16`-widened raw codes and each (channel, tap) accumulator starts from
//! `bias - zp * sum_ic w[ic][oc][ky][kx]`. For a chunk of 4 output channels the weights are
//! repacked once into `i16` pairs on the stack; then every input row is cut into tiles of 16
//! pixels, transposed into `[in_c / 2][16][2]`, and for each kernel row a register tile of 2
//! channels x 2 taps (kx) x 2 vectors of 8 pixels is accumulated; the two taps interleave into
//! 32 consecutive outputs when stored.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use super::qout_i8::{dequant8, finish_scalar, pack8, probe, requant8, v8, Dst, Stage};
use crate::quant::{QConvParams, QOutput};
use crate::ConvShape;

/// Input pixels per tile.
const TILE: usize = 16;
/// Largest number of input channels.
const MAX_K: usize = 512;
/// Output channels per weight chunk.
const OCC: usize = 4;
/// Output channels of a register tile.
const MR: usize = 2;

#[repr(C, align(32))]
struct Packed([i16; MAX_K * TILE]);

/// Weight pairs of a chunk: `[ky][oc][pair][kx]` dwords.
#[repr(C, align(32))]
struct Weights([i32; 2 * OCC * (MAX_K / 2) * 2]);

/// Packs pixels `x0..x0 + n` (n <= 16) of input row `y` of all `in_c` channels.
#[inline(always)]
unsafe fn pack(input: *const u8, s: &ConvShape, y: usize, x0: usize, n: usize, buf: *mut i16) {
    let plane = s.in_h * s.in_w;
    let in_c = s.in_c;
    for q in 0..in_c.div_ceil(2) {
        let row = |c: usize, x: usize| -> __m128i {
            if c >= in_c || x >= n {
                return _mm_setzero_si128();
            }
            let src = input.add(c * plane + y * s.in_w + x0 + x);
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

/// Repacks the weights of output channels `oc0..oc0 + m` into `wk` and computes their
/// per-tap start values `corr[ky][j][kx]`.
#[inline(always)]
unsafe fn pack_weights(
    s: &ConvShape,
    p: &QConvParams<'_>,
    oc0: usize,
    m: usize,
    wk: &mut Weights,
    corr: &mut [[[i32; 2]; OCC]; 2],
) {
    let pairs = s.in_c.div_ceil(2);
    // w[ic][oc][ky][kx] at ((ic * out_c + oc) * 2 + ky) * 2 + kx
    let w = |ic: usize, oc: usize, ky: usize, kx: usize| -> i32 {
        if ic < s.in_c {
            p.weight[((ic * s.out_c + oc) * 2 + ky) * 2 + kx] as i32
        } else {
            0
        }
    };
    for ky in 0..2 {
        for j in 0..m {
            let oc = oc0 + j;
            let mut sum = [0i32; 2];
            for q in 0..pairs {
                for kx in 0..2 {
                    let (a, b) = (w(2 * q, oc, ky, kx), w(2 * q + 1, oc, ky, kx));
                    sum[kx] += a + b;
                    wk.0[((ky * OCC + j) * pairs + q) * 2 + kx] =
                        (a as i16 as u16 as u32 | ((b as i16 as u16 as u32) << 16)) as i32;
                }
            }
            for kx in 0..2 {
                corr[ky][j][kx] = p
                    .bias_of(oc)
                    .wrapping_sub(p.in_zero_point.wrapping_mul(sum[kx]));
            }
        }
    }
}

/// Register tile: `M` channels x 2 taps x `N` vectors for kernel row `ky`, then stored.
#[inline(always)]
unsafe fn tile<const M: usize, const N: usize>(
    buf: *const i16,
    wk: *const i32,
    pairs: usize,
    corr: &[[i32; 2]],
    stages: &[Stage],
    dst: Dst,
    plane: usize,
    at: usize,
    n: usize,
) {
    let mut acc = [[[_mm256_setzero_si256(); N]; 2]; M];
    for j in 0..M {
        for kx in 0..2 {
            let c = _mm256_set1_epi32(corr[j][kx]);
            for v in 0..N {
                acc[j][kx][v] = c;
            }
        }
    }
    for q in 0..pairs {
        let mut x = [_mm256_setzero_si256(); N];
        for v in 0..N {
            x[v] = _mm256_load_si256(buf.add((q * TILE + 8 * v) * 2) as *const __m256i);
        }
        for j in 0..M {
            for kx in 0..2 {
                let wv = _mm256_set1_epi32(*wk.add((j * pairs + q) * 2 + kx));
                for v in 0..N {
                    acc[j][kx][v] = _mm256_add_epi32(acc[j][kx][v], _mm256_madd_epi16(x[v], wv));
                }
            }
        }
    }
    let mut spill = Spill([_mm256_setzero_si256(); MR * 2 * TILE / 8]);
    for j in 0..M {
        for kx in 0..2 {
            for v in 0..N {
                _mm256_store_si256(
                    spill.0.as_mut_ptr().add((j * 2 + kx) * N + v),
                    acc[j][kx][v],
                );
            }
        }
    }
    finish(&spill.0[..M * 2 * N], N, stages, dst, plane, at, n);
}

#[repr(C, align(32))]
struct Spill([__m256i; MR * 2 * TILE / 8]);

/// Stores a register tile: `acc[(j * 2 + kx) * nv + v]`; channel `j`'s outputs start at
/// element `j * plane + at` (an even output column), `2 * n` of them.
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
    for j in 0..acc.len() / (2 * nv) {
        let s = &stages[j];
        let vs = v8(s);
        for v in 0..nv {
            let left = n.saturating_sub(8 * v).min(8);
            if left == 0 {
                break;
            }
            let (e, o) = (acc[j * 2 * nv + v], acc[(j * 2 + 1) * nv + v]);
            let at = j * plane + at + 16 * v;
            match dst {
                Dst::U8(p) if s.fast => {
                    let (e, o) = (requant8(s, &vs, e), requant8(s, &vs, o));
                    // [e0 o0 e1 o1 | e4 o4 e5 o5], [e2 o2 e3 o3 | e6 o6 e7 o7]
                    let (lo, hi) = (_mm256_unpacklo_epi32(e, o), _mm256_unpackhi_epi32(e, o));
                    let first = pack8(_mm256_permute2x128_si256::<0x20>(lo, hi));
                    let second = pack8(_mm256_permute2x128_si256::<0x31>(lo, hi));
                    let b = _mm_unpacklo_epi64(first, second);
                    if left == 8 {
                        _mm_storeu_si128(p.add(at) as *mut __m128i, b);
                    } else {
                        let mut t = [0u8; 16];
                        _mm_storeu_si128(t.as_mut_ptr() as *mut __m128i, b);
                        core::ptr::copy_nonoverlapping(t.as_ptr(), p.add(at), 2 * left);
                    }
                }
                Dst::F32(p, act) => {
                    let (e, o) = (dequant8(&vs, e, act), dequant8(&vs, o, act));
                    let (lo, hi) = (_mm256_unpacklo_ps(e, o), _mm256_unpackhi_ps(e, o));
                    let first = _mm256_permute2f128_ps::<0x20>(lo, hi);
                    let second = _mm256_permute2f128_ps::<0x31>(lo, hi);
                    if left == 8 {
                        _mm256_storeu_ps(p.add(at), first);
                        _mm256_storeu_ps(p.add(at + 8), second);
                    } else {
                        let mut t = [0f32; 16];
                        _mm256_storeu_ps(t.as_mut_ptr(), first);
                        _mm256_storeu_ps(t.as_mut_ptr().add(8), second);
                        core::ptr::copy_nonoverlapping(t.as_ptr(), p.add(at), 2 * left);
                    }
                }
                Dst::U8(_) => {
                    let mut a = [[0i32; 8]; 2];
                    _mm256_storeu_si256(a[0].as_mut_ptr() as *mut __m256i, e);
                    _mm256_storeu_si256(a[1].as_mut_ptr() as *mut __m256i, o);
                    let mut t = [0i32; 16];
                    for i in 0..8 {
                        t[2 * i] = a[0][i];
                        t[2 * i + 1] = a[1][i];
                    }
                    finish_scalar(&s.st, dst, at, &t[..2 * left]);
                }
            }
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn run(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], mut out: QOutput<'_>) {
    let (h, w) = (s.in_h, s.in_w);
    let (oh, ow) = (2 * h, 2 * w);
    let pairs = s.in_c.div_ceil(2);
    let pr = probe(&out);
    let dst = Dst::of(&mut out);
    let mut buf = Packed([0; MAX_K * TILE]);
    let mut wk = Weights([0; 2 * OCC * (MAX_K / 2) * 2]);
    let mut corr = [[[0i32; 2]; OCC]; 2];
    let mut stages = [Stage::new(p, &pr, 0); OCC];
    let mut oc0 = 0;
    while oc0 < s.out_c {
        let m = (s.out_c - oc0).min(OCC);
        pack_weights(s, p, oc0, m, &mut wk, &mut corr);
        for j in 0..m {
            stages[j] = Stage::new(p, &pr, oc0 + j);
        }
        for y in 0..h {
            let mut x0 = 0;
            while x0 < w {
                let n = (w - x0).min(TILE);
                pack(input.as_ptr(), s, y, x0, n, buf.0.as_mut_ptr());
                for ky in 0..2 {
                    let mut j = 0;
                    while j < m {
                        let mr = (m - j).min(MR);
                        let wkp = wk.0.as_ptr().add((ky * OCC + j) * pairs * 2);
                        let (c, st) = (&corr[ky][j..], &stages[j..]);
                        let at = (oc0 + j) * oh * ow + (2 * y + ky) * ow + 2 * x0;
                        let b = buf.0.as_ptr();
                        let plane = oh * ow;
                        match (mr, n.div_ceil(8)) {
                            (1, 1) => tile::<1, 1>(b, wkp, pairs, c, st, dst, plane, at, n),
                            (1, _) => tile::<1, 2>(b, wkp, pairs, c, st, dst, plane, at, n),
                            (_, 1) => tile::<2, 1>(b, wkp, pairs, c, st, dst, plane, at, n),
                            _ => tile::<2, 2>(b, wkp, pairs, c, st, dst, plane, at, n),
                        }
                        j += mr;
                    }
                }
                x0 += n;
            }
        }
        oc0 += m;
    }
}

/// Quantized transposed convolution (`qconv_transpose`), AVX2 kernel for 2x2 kernels, stride
/// 2, no padding, one group, at most 512 input channels; anything else (or a CPU without AVX2)
/// runs [`crate::generic_i8::qconv_transpose2d`]. Same results as the reference, bit for bit.
pub fn conv_transpose2x2(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    let ok = s.k_h == 2
        && s.k_w == 2
        && s.stride_h == 2
        && s.stride_w == 2
        && s.pad == [0; 4]
        && s.groups == 1
        && (1..=MAX_K).contains(&s.in_c)
        && s.out_c > 0
        && s.in_h > 0
        && s.in_w > 0
        && crate::has_avx2();
    if !ok {
        return crate::generic_i8::qconv_transpose2d(s, p, input, out);
    }
    let (oh, ow) = (2 * s.in_h, 2 * s.in_w);
    p.check_operands("qconv_transpose", s, oh * ow, input.len(), out.len());
    // SAFETY: buffer sizes checked above; loads read whole 8-byte groups only inside the row
    // (partial groups are copied); stores cover exactly the `2 * n` outputs of each tile row;
    // avx2 is present (checked above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out)
    }
}
