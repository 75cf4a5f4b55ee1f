//! Pointwise (1x1, stride 1, dense) convolution, AVX2 + FMA: a register tile of 6 output
//! channels by 16 pixels; the last pixels of a plane take a scalar FMA path with the same
//! arithmetic.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::{Act, Conv1x1, PwEpilogue};

#[target_feature(enable = "avx2,fma")]
unsafe fn block<const OC: usize>(
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
) {
    let mut acc0 = [_mm256_setzero_ps(); OC];
    let mut acc1 = [_mm256_setzero_ps(); OC];
    for j in 0..OC {
        let b = if bias.is_empty() { 0.0 } else { bias[oc0 + j] };
        acc0[j] = _mm256_set1_ps(b);
        acc1[j] = _mm256_set1_ps(b);
    }
    let ip = input.as_ptr();
    let wp = weight.as_ptr();
    for ic in 0..s.in_c {
        let src = ip.add(ic * in_stride + p0);
        let x0 = _mm256_loadu_ps(src);
        let x1 = _mm256_loadu_ps(src.add(8));
        for j in 0..OC {
            let w = _mm256_set1_ps(*wp.add((oc0 + j) * s.in_c + ic));
            acc0[j] = _mm256_fmadd_ps(w, x0, acc0[j]);
            acc1[j] = _mm256_fmadd_ps(w, x1, acc1[j]);
        }
    }
    let op = output.as_mut_ptr();
    for j in 0..OC {
        let dst = op.add((oc0 + j) * stride + p0);
        _mm256_storeu_ps(dst, super::act256(acc0[j], act));
        _mm256_storeu_ps(dst.add(8), super::act256(acc1[j], act));
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn tail(
    s: &Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    stride: usize,
    in_stride: usize,
    p0: usize,
) {
    let n = s.pixels;
    for oc in 0..s.out_c {
        for p in p0..n {
            let mut acc = if bias.is_empty() { 0.0 } else { bias[oc] };
            for ic in 0..s.in_c {
                acc = super::fma1(weight[oc * s.in_c + ic], input[ic * in_stride + p], acc);
            }
            output[oc * stride + p] = act.apply(acc);
        }
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
        let mut oc0 = 0;
        while oc0 < s.out_c {
            match s.out_c - oc0 {
                1 => block::<1>(
                    s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
                ),
                2 => block::<2>(
                    s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
                ),
                3 => block::<3>(
                    s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
                ),
                4 => block::<4>(
                    s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
                ),
                5 => block::<5>(
                    s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
                ),
                _ => block::<6>(
                    s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
                ),
            }
            oc0 += 6;
        }
        p0 += 16;
    }
    tail(s, input, weight, bias, act, output, stride, in_stride, full);
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
