//! Pointwise (1x1, stride 1, dense) convolution, AVX-512F: a register tile of 8 output channels
//! by 32 pixels, masked loads and stores for the last pixels of a plane. Pixels are taken in
//! chunks of 1024 (all channel blocks of a chunk before the next) with software prefetch of
//! the input planes: the large planes of the first and last layers are otherwise read and
//! written as dozens of short interleaved streams and run at half speed.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::{Act, Conv1x1, PwEpilogue};

/// How far ahead (in floats) the first channel block prefetches each input plane (into L2):
/// planes are read as many concurrent streams (one per input channel), more than the hardware
/// prefetcher follows.
const PREFETCH: usize = 512;
/// Pixels per chunk: every channel block runs over one chunk before the next chunk starts, so
/// each plane is read and written in runs of 4 KiB and the chunk's inputs stay in L2 for the
/// later channel blocks.
const CHUNK: usize = 1024;

#[target_feature(enable = "avx512f")]
unsafe fn block<const OC: usize>(
    s: &Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    e: &PwEpilogue<'_>,
    oc0: usize,
    p0: usize,
) {
    let n = s.pixels;
    let rem = n - p0;
    let (m0, m1): (__mmask16, __mmask16) = if rem >= 32 {
        (0xFFFF, 0xFFFF)
    } else if rem > 16 {
        (0xFFFF, ((1u32 << (rem - 16)) - 1) as u16)
    } else {
        (((1u32 << rem) - 1) as u16, 0)
    };
    let mut acc0 = [_mm512_setzero_ps(); OC];
    let mut acc1 = [_mm512_setzero_ps(); OC];
    for j in 0..OC {
        let b = if bias.is_empty() { 0.0 } else { bias[oc0 + j] };
        acc0[j] = _mm512_set1_ps(b);
        acc1[j] = _mm512_set1_ps(b);
    }
    let ip = input.as_ptr();
    let wp = weight.as_ptr();
    for ic in 0..s.in_c {
        // Masked-off lanes are never touched (AVX-512 fault suppression); wrapping pointer
        // arithmetic because the second half may start past the end of the plane.
        let src = ip.wrapping_add(ic * e.in_stride + p0);
        if oc0 == 0 {
            let pf = src.wrapping_add(PREFETCH) as *const i8;
            _mm_prefetch::<_MM_HINT_T1>(pf);
            _mm_prefetch::<_MM_HINT_T1>(pf.wrapping_add(64));
        }
        let x0 = _mm512_maskz_loadu_ps(m0, src);
        let x1 = _mm512_maskz_loadu_ps(m1, src.wrapping_add(16));
        for j in 0..OC {
            let w = _mm512_set1_ps(*wp.add((oc0 + j) * s.in_c + ic));
            acc0[j] = _mm512_fmadd_ps(w, x0, acc0[j]);
            acc1[j] = _mm512_fmadd_ps(w, x1, acc1[j]);
        }
    }
    let op = output.as_mut_ptr();
    for j in 0..OC {
        let at = (oc0 + j) * e.stride + p0;
        let dst = op.wrapping_add(at);
        let (mut y0, mut y1) = (super::act512(acc0[j], act), super::act512(acc1[j], act));
        if let Some(r) = e.residual {
            // The residual add with the element-wise add kernel's exact activation.
            let rp = r.as_ptr().wrapping_add((oc0 + j) * e.res_stride + p0);
            y0 = super::act512(_mm512_add_ps(y0, _mm512_maskz_loadu_ps(m0, rp)), e.act);
            y1 = super::act512(
                _mm512_add_ps(y1, _mm512_maskz_loadu_ps(m1, rp.wrapping_add(16))),
                e.act,
            );
        }
        _mm512_mask_storeu_ps(dst, m0, y0);
        _mm512_mask_storeu_ps(dst.wrapping_add(16), m1, y1);
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn run(
    s: &Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    e: &PwEpilogue<'_>,
) {
    let mut c0 = 0;
    while c0 < s.pixels {
        let c1 = (c0 + CHUNK).min(s.pixels);
        let mut oc0 = 0;
        while oc0 < s.out_c {
            let mut p0 = c0;
            while p0 < c1 {
                match s.out_c - oc0 {
                    1 => block::<1>(s, input, weight, bias, act, output, e, oc0, p0),
                    2 => block::<2>(s, input, weight, bias, act, output, e, oc0, p0),
                    3 => block::<3>(s, input, weight, bias, act, output, e, oc0, p0),
                    4 => block::<4>(s, input, weight, bias, act, output, e, oc0, p0),
                    5 => block::<5>(s, input, weight, bias, act, output, e, oc0, p0),
                    6 => block::<6>(s, input, weight, bias, act, output, e, oc0, p0),
                    7 => block::<7>(s, input, weight, bias, act, output, e, oc0, p0),
                    _ => block::<8>(s, input, weight, bias, act, output, e, oc0, p0),
                }
                p0 += 32;
            }
            oc0 += 8;
        }
        c0 = c1;
    }
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
    conv1x1_into(
        s,
        input,
        weight,
        bias,
        act,
        output,
        &PwEpilogue::dense(s.pixels),
    )
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
    s.check_operands(weight, bias);
    e.check(s, input, output);
    if !crate::has_avx512f() {
        return crate::generic::conv1x1_into(s, input, weight, bias, act, output, e);
    }
    // SAFETY: sizes checked above (masked lanes past a plane are never touched); avx512f is
    // present (checked just above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, input, weight, bias, act, output, e)
    }
}
