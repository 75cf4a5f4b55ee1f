//! Pointwise (1x1, stride 1, dense) convolution, NEON: a register tile of 6 output channels by
//! 16 pixels (24 accumulators of the 32 vector registers), then tiles of 6 channels by 4 pixels
//! for the rest of a plane; the last 1 to 3 pixels take a scalar FMA path with the same
//! arithmetic.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::aarch64::*;

use crate::{Act, Conv1x1, PwEpilogue};

/// Output channels `oc0..oc0 + OC` at pixels `p0..p0 + 4V`: `bias`, then one FMA per input
/// channel in order.
#[inline(always)]
unsafe fn block<const OC: usize, const V: usize>(
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
    let mut acc = [[vdupq_n_f32(0.0); V]; OC];
    for j in 0..OC {
        let b = if bias.is_empty() { 0.0 } else { bias[oc0 + j] };
        acc[j] = [vdupq_n_f32(b); V];
    }
    let ip = input.as_ptr();
    let wp = weight.as_ptr().add(oc0 * s.in_c);
    for ic in 0..s.in_c {
        let src = ip.add(ic * in_stride + p0);
        let mut x = [vdupq_n_f32(0.0); V];
        for v in 0..V {
            x[v] = vld1q_f32(src.add(4 * v));
        }
        for j in 0..OC {
            let w = *wp.add(j * s.in_c + ic);
            for v in 0..V {
                acc[j][v] = vfmaq_n_f32(acc[j][v], x[v], w);
            }
        }
    }
    let op = output.as_mut_ptr();
    for j in 0..OC {
        let dst = op.add((oc0 + j) * stride + p0);
        for v in 0..V {
            vst1q_f32(dst.add(4 * v), super::act4(acc[j][v], act));
        }
    }
}

/// All output channels at pixels `p0..p0 + 4V`, 6 channels at a time.
#[inline(always)]
unsafe fn column<const V: usize>(
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
    let mut oc0 = 0;
    while oc0 < s.out_c {
        match s.out_c - oc0 {
            1 => block::<1, V>(
                s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
            ),
            2 => block::<2, V>(
                s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
            ),
            3 => block::<3, V>(
                s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
            ),
            4 => block::<4, V>(
                s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
            ),
            5 => block::<5, V>(
                s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
            ),
            _ => block::<6, V>(
                s, input, weight, bias, act, output, stride, in_stride, oc0, p0,
            ),
        }
        oc0 += 6;
    }
}

#[target_feature(enable = "neon")]
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
    let n = s.pixels;
    let (full16, full4) = (n / 16 * 16, n / 4 * 4);
    let mut p0 = 0;
    while p0 < full16 {
        column::<4>(s, input, weight, bias, act, output, stride, in_stride, p0);
        p0 += 16;
    }
    while p0 < full4 {
        column::<1>(s, input, weight, bias, act, output, stride, in_stride, p0);
        p0 += 4;
    }
    for oc in 0..s.out_c {
        for p in full4..n {
            let mut acc = if bias.is_empty() { 0.0 } else { bias[oc] };
            for ic in 0..s.in_c {
                acc = super::fma1(weight[oc * s.in_c + ic], input[ic * in_stride + p], acc);
            }
            output[oc * stride + p] = act.apply(acc);
        }
    }
}

/// Safe entry: checks buffer sizes, then runs the NEON kernel (the generic kernel without
/// NEON).
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
/// over the just-written rows, exactly [`crate::generic::add`], the add an AArch64 CPU runs).
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
    if !super::has_neon() {
        return crate::generic::conv1x1_into(s, input, weight, bias, act, output, e);
    }
    // SAFETY: sizes checked above (every vector load and store lies inside a plane: tiles cover
    // pixels below `pixels / 4 * 4` only, planes `stride` apart); NEON is present (checked just
    // above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, input, weight, bias, act, output, e.stride, e.in_stride)
    }
    e.add_residual(s, output);
}
