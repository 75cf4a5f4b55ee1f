//! Pointwise (1x1, stride 1, dense) convolution, AVX2 + FMA: a register tile of 6 output
//! channels by 16 pixels; the last pixels of a plane take the same tile through masked loads
//! and stores (the same arithmetic per pixel).

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::{Act, Conv1x1, PwEpilogue};

/// Lane masks of the first `n` (0..=16) of 16 pixels, as two 8-lane vectors.
#[inline(always)]
unsafe fn tail_masks(n: usize) -> [__m256i; 2] {
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let n0 = _mm256_set1_epi32(n.min(8) as i32);
    let n1 = _mm256_set1_epi32(n.saturating_sub(8) as i32);
    [_mm256_cmpgt_epi32(n0, lane), _mm256_cmpgt_epi32(n1, lane)]
}

/// Output channels `oc0..oc0 + OC` of the 16 pixels from `p0` (`MASKED`: only the first
/// `n` of them, through masked loads and stores, so a plane's last pixels take the same
/// vector arithmetic).
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const OC: usize, const MASKED: bool>(
    s: &Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    stride: usize,
    in_stride: usize,
    oc0: usize,
    p0: usize,
    n: usize,
) {
    let mut acc0 = [_mm256_setzero_ps(); OC];
    let mut acc1 = [_mm256_setzero_ps(); OC];
    for j in 0..OC {
        let b = if bias.is_empty() { 0.0 } else { bias[oc0 + j] };
        acc0[j] = _mm256_set1_ps(b);
        acc1[j] = _mm256_set1_ps(b);
    }
    let [m0, m1] = if MASKED {
        tail_masks(n)
    } else {
        [_mm256_set1_epi32(-1); 2]
    };
    let ip = input.as_ptr();
    let wp = weight.as_ptr();
    for ic in 0..s.in_c {
        let src = ip.add(ic * in_stride + p0);
        let (x0, x1) = if MASKED {
            (
                _mm256_maskload_ps(src, m0),
                _mm256_maskload_ps(src.add(8), m1),
            )
        } else {
            (_mm256_loadu_ps(src), _mm256_loadu_ps(src.add(8)))
        };
        for j in 0..OC {
            let w = _mm256_set1_ps(*wp.add((oc0 + j) * s.in_c + ic));
            acc0[j] = _mm256_fmadd_ps(w, x0, acc0[j]);
            acc1[j] = _mm256_fmadd_ps(w, x1, acc1[j]);
        }
    }
    let op = output.as_mut_ptr();
    for j in 0..OC {
        let dst = op.add((oc0 + j) * stride + p0);
        let (y0, y1) = (super::act256(acc0[j], act), super::act256(acc1[j], act));
        if MASKED {
            _mm256_maskstore_ps(dst, m0, y0);
            _mm256_maskstore_ps(dst.add(8), m1, y1);
        } else {
            _mm256_storeu_ps(dst, y0);
            _mm256_storeu_ps(dst.add(8), y1);
        }
    }
}

/// All output channels of the 16 pixels from `p0` (the first `n` when `MASKED`).
#[target_feature(enable = "avx2,fma")]
unsafe fn column<const MASKED: bool>(
    s: &Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    stride: usize,
    in_stride: usize,
    p0: usize,
    n: usize,
) {
    let mut oc0 = 0;
    while oc0 < s.out_c {
        let (i, w, b, o) = (input, weight, bias, &mut *output);
        match s.out_c - oc0 {
            1 => block::<1, MASKED>(s, i, w, b, act, o, stride, in_stride, oc0, p0, n),
            2 => block::<2, MASKED>(s, i, w, b, act, o, stride, in_stride, oc0, p0, n),
            3 => block::<3, MASKED>(s, i, w, b, act, o, stride, in_stride, oc0, p0, n),
            4 => block::<4, MASKED>(s, i, w, b, act, o, stride, in_stride, oc0, p0, n),
            5 => block::<5, MASKED>(s, i, w, b, act, o, stride, in_stride, oc0, p0, n),
            _ => block::<6, MASKED>(s, i, w, b, act, o, stride, in_stride, oc0, p0, n),
        }
        oc0 += 6;
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn run(
    s: &Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    stride: usize,
    in_stride: usize,
) {
    let full = s.pixels / 16 * 16;
    let mut p0 = 0;
    while p0 < full {
        column::<false>(
            s, input, weight, bias, act, output, stride, in_stride, p0, 16,
        );
        p0 += 16;
    }
    // The last pixels (streamed calls on narrow rows have many: a few rows of 28 pixels).
    if full < s.pixels {
        let n = s.pixels - full;
        column::<true>(
            s, input, weight, bias, act, output, stride, in_stride, full, n,
        );
    }
}

/// Safe entry: checks buffer sizes, then runs the AVX2 kernel. Installed only on CPUs with
/// AVX2 and FMA.
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

/// [`conv1x1`] through a [`PwEpilogue`] (strided planes; the residual add in a scalar pass
/// over the just-written rows, exactly [`crate::generic::add`], the add an AVX2 CPU runs).
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
    if !crate::has_avx2_fma() {
        return crate::generic::conv1x1_into(s, input, weight, bias, act, output, e);
    }
    // SAFETY: sizes checked above; avx2 and fma are present (checked just above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, input, weight, bias, act, output, e.stride, e.in_stride)
    }
    e.add_residual(s, output);
}
