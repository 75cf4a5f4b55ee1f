//! Quantized transposed convolution with a 2x2 kernel, stride 2, no padding, one group (U-Net
//! upsampling), AVX-512 VNNI. Output pixel `(2y + ky, 2x + kx)` of channel `oc` is
//! `bias[oc] + sum_ic w[ic][oc][ky][kx] * (in[ic][y][x] - zp)`: four pointwise convolutions
//! whose outputs interleave.
//!
//! For a chunk of 8 output channels, each tap's weights are repacked once into contiguous
//! rows (`[ky][oc][kx][in_c]`, zero-padded to whole dwords) with their start values
//! `bias - zp * sum(w)`. Input rows are cut into tiles of up to 64 pixels and transposed with
//! the pointwise kernel's packing ([`super::avx512vnni_conv1x1_i8`]); for each kernel row a
//! register tile of 3 channels x 2 taps (kx) x 4 vectors of 16 pixels accumulates with
//! `vpdpbusd`, and the two taps interleave into consecutive outputs when stored.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use super::act512;
use super::avx512vnni_conv1x1_i8::{mask16, pack, Packed, TILE};
use super::qout_i8::{probe, requant16, v16, Dst, Stage};
use crate::quant::{QConvParams, QOutput};
use crate::ConvShape;

/// Largest number of input channels.
const MAX_K: usize = 512;
/// Output channels per weight chunk.
const OCC: usize = 8;
/// Output channels of a register tile.
const MR: usize = 3;

/// Repacked weights of a chunk: `[ky][oc][kx][MAX_K]` bytes.
#[repr(C, align(64))]
struct Weights([i8; 2 * OCC * 2 * MAX_K]);

#[repr(C, align(64))]
struct Spill([__m512i; MR * 2 * 4]);

/// Dword indices interleaving `e[0..8]` with `o[0..8]` (`vpermt2d`; 16 + i is `o[i]`).
const INTERLEAVE_LO: [i32; 16] = interleave_index(0);
/// ... and `e[8..16]` with `o[8..16]`.
const INTERLEAVE_HI: [i32; 16] = interleave_index(8);

const fn interleave_index(from: i32) -> [i32; 16] {
    let mut t = [0i32; 16];
    let mut i = 0;
    while i < 8 {
        t[2 * i] = from + i as i32;
        t[2 * i + 1] = 16 + from + i as i32;
        i += 1;
    }
    t
}

/// Repacks output channels `oc0..oc0 + m` and computes their start values.
#[inline(always)]
fn pack_weights(
    s: &ConvShape,
    p: &QConvParams<'_>,
    oc0: usize,
    m: usize,
    wk: &mut Weights,
    corr: &mut [[[i32; 2]; OCC]; 2],
) {
    let k = s.in_c;
    for ky in 0..2 {
        for j in 0..m {
            let oc = oc0 + j;
            for kx in 0..2 {
                let row = &mut wk.0[((ky * OCC + j) * 2 + kx) * MAX_K..][..MAX_K];
                let mut sum = 0i32;
                for ic in 0..k {
                    let w = p.weight[((ic * s.out_c + oc) * 2 + ky) * 2 + kx];
                    row[ic] = w;
                    sum += w as i32;
                }
                row[k..k.next_multiple_of(4)].fill(0);
                corr[ky][j][kx] = p
                    .bias_of(oc)
                    .wrapping_sub(p.in_zero_point.wrapping_mul(sum));
            }
        }
    }
}

/// Register tile: `M` channels x 2 taps x `N` vectors for one kernel row (weight rows at `w`:
/// channel `j`, tap `kx` at `(j * 2 + kx) * MAX_K`), then stored.
#[inline(always)]
unsafe fn tile<const M: usize, const N: usize>(
    buf: *const u8,
    w: *const i8,
    quads: usize,
    corr: &[[i32; 2]],
    stages: &[Stage],
    dst: Dst,
    plane: usize,
    at: usize,
    n: usize,
) {
    let mut acc = [[[_mm512_setzero_si512(); N]; 2]; M];
    for j in 0..M {
        for kx in 0..2 {
            let c = _mm512_set1_epi32(corr[j][kx]);
            for v in 0..N {
                acc[j][kx][v] = c;
            }
        }
    }
    for q in 0..quads {
        let mut x = [_mm512_setzero_si512(); N];
        for v in 0..N {
            x[v] = _mm512_load_si512(buf.add(q * 4 * TILE + v * 64) as *const _);
        }
        for j in 0..M {
            for kx in 0..2 {
                let row = w.add((j * 2 + kx) * MAX_K + 4 * q);
                let wv = _mm512_set1_epi32((row as *const i32).read_unaligned());
                for v in 0..N {
                    acc[j][kx][v] = _mm512_dpbusd_epi32(acc[j][kx][v], x[v], wv);
                }
            }
        }
    }
    // Explicit stores (constant indices) keep `acc` in registers during the reduction.
    let mut spill = Spill([_mm512_setzero_si512(); MR * 2 * 4]);
    for j in 0..M {
        for kx in 0..2 {
            for v in 0..N {
                let i = (j * 2 + kx) * N + v;
                _mm512_store_si512(spill.0.as_mut_ptr().add(i), acc[j][kx][v]);
            }
        }
    }
    finish(&spill.0[..M * 2 * N], N, stages, dst, plane, at, n);
}

/// Stores a register tile: `acc[(j * 2 + kx) * nv + v]`; channel `j`'s outputs start at
/// element `j * plane + at` (an even output column), `2 * n` of them.
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn finish(
    acc: &[__m512i],
    nv: usize,
    stages: &[Stage],
    dst: Dst,
    plane: usize,
    at: usize,
    n: usize,
) {
    let lo = _mm512_loadu_si512(INTERLEAVE_LO.as_ptr() as *const _);
    let hi = _mm512_loadu_si512(INTERLEAVE_HI.as_ptr() as *const _);
    for j in 0..acc.len() / (2 * nv) {
        let s = &stages[j];
        let vs = v16(s);
        for v in 0..nv {
            let left = 2 * n.saturating_sub(16 * v).min(16);
            let (e, o) = (acc[j * 2 * nv + v], acc[(j * 2 + 1) * nv + v]);
            let at = j * plane + at + 32 * v;
            let (m0, m1) = (mask16(left), mask16(left.saturating_sub(16)));
            match dst {
                Dst::U8(p) if s.fast => {
                    let (e, o) = (requant16(s, &vs, e), requant16(s, &vs, o));
                    let p = p.wrapping_add(at);
                    let first = _mm512_permutex2var_epi32(e, lo, o);
                    let second = _mm512_permutex2var_epi32(e, hi, o);
                    _mm512_mask_cvtusepi32_storeu_epi8(p as *mut _, m0, first);
                    _mm512_mask_cvtusepi32_storeu_epi8(p.wrapping_add(16) as *mut _, m1, second);
                }
                Dst::F32(p, act) => {
                    let e = act512(_mm512_mul_ps(_mm512_cvtepi32_ps(e), vs.scale), act);
                    let o = act512(_mm512_mul_ps(_mm512_cvtepi32_ps(o), vs.scale), act);
                    let p = p.wrapping_add(at);
                    _mm512_mask_storeu_ps(p, m0, _mm512_permutex2var_ps(e, lo, o));
                    _mm512_mask_storeu_ps(p.wrapping_add(16), m1, _mm512_permutex2var_ps(e, hi, o));
                }
                Dst::U8(p) => {
                    let mut a = [[0i32; 16]; 2];
                    _mm512_storeu_si512(a[0].as_mut_ptr() as *mut _, e);
                    _mm512_storeu_si512(a[1].as_mut_ptr() as *mut _, o);
                    for i in 0..left {
                        *p.add(at + i) = s.st.u8(a[i % 2][i / 2]);
                    }
                }
            }
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], mut out: QOutput<'_>) {
    let (h, w) = (s.in_h, s.in_w);
    let (oh, ow) = (2 * h, 2 * w);
    let quads = s.in_c.div_ceil(4);
    let pr = probe(&out);
    let dst = Dst::of(&mut out);
    let mut buf = Packed([0; super::avx512vnni_conv1x1_i8::MAX_K * TILE]);
    let mut wk = Weights([0; 2 * OCC * 2 * MAX_K]);
    let mut corr = [[[0i32; 2]; OCC]; 2];
    let mut stages = [Stage::new(p, &pr, 0); OCC];
    let mut oc0 = 0;
    while oc0 < s.out_c {
        let m = (s.out_c - oc0).min(OCC);
        pack_weights(s, p, oc0, m, &mut wk, &mut corr);
        for (j, st) in stages.iter_mut().enumerate().take(m) {
            *st = Stage::new(p, &pr, oc0 + j);
        }
        for y in 0..h {
            let mut x0 = 0;
            while x0 < w {
                let n = (w - x0).min(TILE);
                pack(
                    input.as_ptr(),
                    s.in_c,
                    h * w,
                    y * w + x0,
                    n,
                    buf.0.as_mut_ptr(),
                );
                for ky in 0..2 {
                    let mut j = 0;
                    while j < m {
                        let mr = (m - j).min(MR);
                        let wp = wk.0.as_ptr().add((ky * OCC + j) * 2 * MAX_K);
                        let (c, st) = (&corr[ky][j..], &stages[j..]);
                        let at = (oc0 + j) * oh * ow + (2 * y + ky) * ow + 2 * x0;
                        let (b, pl) = (buf.0.as_ptr(), oh * ow);
                        macro_rules! go {
                            ($m:literal) => {
                                match n.div_ceil(16) {
                                    1 => tile::<$m, 1>(b, wp, quads, c, st, dst, pl, at, n),
                                    2 => tile::<$m, 2>(b, wp, quads, c, st, dst, pl, at, n),
                                    3 => tile::<$m, 3>(b, wp, quads, c, st, dst, pl, at, n),
                                    _ => tile::<$m, 4>(b, wp, quads, c, st, dst, pl, at, n),
                                }
                            };
                        }
                        match mr {
                            1 => go!(1),
                            2 => go!(2),
                            _ => go!(3),
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

/// Quantized transposed convolution (`qconv_transpose`), AVX-512 VNNI kernel for 2x2 kernels,
/// stride 2, no padding, one group, at most 512 input channels; anything else (or a CPU
/// without AVX-512 VNNI/BW) runs [`crate::generic_i8::qconv_transpose2d`]. Same results as
/// the reference, bit for bit.
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
        && crate::has_avx512vnni();
    if !ok {
        return crate::generic_i8::qconv_transpose2d(s, p, input, out);
    }
    let (oh, ow) = (2 * s.in_h, 2 * s.in_w);
    p.check_operands("qconv_transpose", s, oh * ow, input.len(), out.len());
    // SAFETY: buffer sizes checked above; input loads are masked to the tile's pixels, weight
    // reads stay in the repacked rows (zero-padded to whole dwords), stores are masked to the
    // `2 * n` outputs of each tile row; avx512f/bw/vnni are present (checked above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out)
    }
}
