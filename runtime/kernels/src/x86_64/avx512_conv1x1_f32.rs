//! Pointwise (1x1, stride 1, dense) convolution, AVX-512F: the micro-kernel of
//! [`crate::driver::pointwise_f32`], a register tile of 8 output channels by 32 pixels,
//! masked loads and stores for the last pixels of a plane, and software prefetch of the input
//! planes by the first channel block of a chunk: the large planes of the first and last
//! layers are otherwise read as dozens of short interleaved streams and run at half speed.

#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::driver::pointwise_f32::{drive, entry, PointwiseF32Tile, PwArgs};
use crate::{Act, Conv1x1, PwEpilogue};

/// How far ahead (in floats) the first channel block prefetches each input plane (into L2):
/// planes are read as many concurrent streams (one per input channel), more than the hardware
/// prefetcher follows.
const PREFETCH: usize = 512;

/// 32 floats from `p`, the lanes of `m0`, `m1` only (masked-off lanes are never touched:
/// AVX-512 fault suppression; wrapping pointer arithmetic because the second half may start
/// past the end of the plane).
#[inline(always)]
unsafe fn load(p: *const f32, m0: __mmask16, m1: __mmask16) -> (__m512, __m512) {
    (
        _mm512_maskz_loadu_ps(m0, p),
        _mm512_maskz_loadu_ps(m1, p.wrapping_add(16)),
    )
}

/// The AVX-512F micro-kernel.
struct Avx512;

impl PointwiseF32Tile for Avx512 {
    const MR: usize = 8;
    const NR: usize = 32;
    #[inline(always)]
    unsafe fn tile<const OC: usize>(a: &PwArgs<'_>, oc0: usize, p0: usize, n: usize) {
        let (m0, m1): (__mmask16, __mmask16) = if n >= 32 {
            (0xFFFF, 0xFFFF)
        } else if n > 16 {
            (0xFFFF, ((1u32 << (n - 16)) - 1) as u16)
        } else {
            (((1u32 << n) - 1) as u16, 0)
        };
        let mut acc0 = [_mm512_setzero_ps(); OC];
        let mut acc1 = [_mm512_setzero_ps(); OC];
        for j in 0..OC {
            acc0[j] = _mm512_set1_ps(a.bias_of(oc0 + j));
            acc1[j] = acc0[j];
        }
        let wp = a.weight.add(oc0 * a.in_c);
        for ic in 0..a.in_c {
            let src = a.input.wrapping_add(ic * a.in_stride + p0);
            if oc0 == 0 {
                let pf = src.wrapping_add(PREFETCH) as *const i8;
                _mm_prefetch::<_MM_HINT_T1>(pf);
                _mm_prefetch::<_MM_HINT_T1>(pf.wrapping_add(64));
            }
            let (x0, x1) = load(src, m0, m1);
            for j in 0..OC {
                let w = _mm512_set1_ps(*wp.add(j * a.in_c + ic));
                acc0[j] = _mm512_fmadd_ps(w, x0, acc0[j]);
                acc1[j] = _mm512_fmadd_ps(w, x1, acc1[j]);
            }
        }
        for j in 0..OC {
            let oc = oc0 + j;
            let (mut y0, mut y1) = (super::act512(acc0[j], a.act), super::act512(acc1[j], a.act));
            if let Some(r) = a.residual {
                // The residual add with the element-wise add kernel's exact activation.
                let (r0, r1) = load(r.wrapping_add(oc * a.res_stride + p0), m0, m1);
                y0 = super::act512(_mm512_add_ps(y0, r0), a.res_act);
                y1 = super::act512(_mm512_add_ps(y1, r1), a.res_act);
            }
            let dst = a.output.wrapping_add(oc * a.out_stride + p0);
            _mm512_mask_storeu_ps(dst, m0, y0);
            _mm512_mask_storeu_ps(dst.wrapping_add(16), m1, y1);
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn run(s: &Conv1x1, a: &PwArgs<'_>) {
    drive::<Avx512>(s, a)
}

/// Safe entry: checks buffer sizes, then runs the AVX-512 kernel. Installed only on CPUs with
/// AVX-512F.
pub fn conv1x1(
    s: &Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    let e = PwEpilogue::dense(s.pixels);
    conv1x1_into(s, input, weight, bias, act, output, &e)
}

/// [`conv1x1`] through a [`PwEpilogue`] (strided planes, fused residual add): the same values
/// as `conv1x1` followed by [`super::avx512_eltwise::add`].
pub fn conv1x1_into(
    s: &Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    e: &PwEpilogue<'_>,
) {
    entry(
        crate::has_avx512f(),
        run,
        s,
        input,
        weight,
        bias,
        act,
        output,
        e,
    )
}
