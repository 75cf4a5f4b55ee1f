//! Transposed convolution with a 2x2 kernel, stride 2, no padding, dense (U-Net upsampling),
//! NEON. Output pixel `(2y + i, 2x + j)` of channel `oc` is
//! `bias[oc] + sum_ic w[ic][oc][i][j] * in[ic][y][x]`, accumulated with one FMA per input
//! channel in ascending order (the reference's order). For 16 input columns at a time, the four
//! taps `(i, j)` of one output channel are accumulated in 16 registers (the taps' weights are
//! one vector, used by lane) and interleaved on store (`st2`); then single vectors of 4 columns,
//! and the last 1 to 3 columns take a scalar path with the same arithmetic.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::aarch64::*;

use crate::{Act, ConvShape};

/// Output channel `oc`, input row `y`, input columns `x0..x0 + 4V`.
#[inline(always)]
unsafe fn block<const V: usize>(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    b: f32,
    act: Act,
    output: &mut [f32],
    oc: usize,
    y: usize,
    x0: usize,
) {
    let (h, w) = (s.in_h, s.in_w);
    let ip = input.as_ptr().add(y * w + x0);
    // acc[i * 2 + j][v]: tap (i, j), columns x0 + 4v..x0 + 4v + 4.
    let mut acc = [[vdupq_n_f32(b); V]; 4];
    for ic in 0..s.in_c {
        // weight[ic][oc][i][j] at (ic * out_c + oc) * 4 + i * 2 + j
        let wv = vld1q_f32(weight.as_ptr().add((ic * s.out_c + oc) * 4));
        let src = ip.add(ic * h * w);
        for v in 0..V {
            let x = vld1q_f32(src.add(4 * v));
            acc[0][v] = vfmaq_laneq_f32::<0>(acc[0][v], x, wv);
            acc[1][v] = vfmaq_laneq_f32::<1>(acc[1][v], x, wv);
            acc[2][v] = vfmaq_laneq_f32::<2>(acc[2][v], x, wv);
            acc[3][v] = vfmaq_laneq_f32::<3>(acc[3][v], x, wv);
        }
    }
    let ow = 2 * w;
    for i in 0..2 {
        let orow = output
            .as_mut_ptr()
            .add((oc * 2 * h + 2 * y + i) * ow + 2 * x0);
        for v in 0..V {
            let pair = float32x4x2_t(
                super::act4(acc[2 * i][v], act),
                super::act4(acc[2 * i + 1][v], act),
            );
            vst2q_f32(orow.add(8 * v), pair);
        }
    }
}

#[target_feature(enable = "neon")]
unsafe fn run(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    let (h, w) = (s.in_h, s.in_w);
    let (full16, full4) = (w / 16 * 16, w / 4 * 4);
    for oc in 0..s.out_c {
        let b = if bias.is_empty() { 0.0 } else { bias[oc] };
        for y in 0..h {
            let mut x0 = 0;
            while x0 < full16 {
                block::<4>(s, input, weight, b, act, output, oc, y, x0);
                x0 += 16;
            }
            while x0 < full4 {
                block::<1>(s, input, weight, b, act, output, oc, y, x0);
                x0 += 4;
            }
            for x in full4..w {
                for i in 0..2 {
                    for j in 0..2 {
                        let mut acc = b;
                        for ic in 0..s.in_c {
                            acc = super::fma1(
                                weight[(ic * s.out_c + oc) * 4 + i * 2 + j],
                                input[ic * h * w + y * w + x],
                                acc,
                            );
                        }
                        output[(oc * 2 * h + 2 * y + i) * 2 * w + 2 * x + j] = act.apply(acc);
                    }
                }
            }
        }
    }
}

/// True when [`conv_transpose2x2`] handles the shape (2x2 kernel, stride 2, no padding, dense).
pub fn handles(s: &ConvShape) -> bool {
    s.k_h == 2
        && s.k_w == 2
        && s.stride_h == 2
        && s.stride_w == 2
        && s.pad == [0; 4]
        && s.groups == 1
}

/// Safe entry for 2x2 stride-2 transposed convolutions; any other shape, and CPUs without NEON,
/// go to the reference.
pub fn conv_transpose2x2(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    if !handles(s) || s.in_h == 0 || s.in_w == 0 || !super::has_neon() {
        return crate::generic::conv_transpose2d(s, input, weight, bias, act, output);
    }
    assert!(
        input.len() >= s.in_c * s.in_h * s.in_w,
        "conv_transpose2x2: input too short"
    );
    assert!(
        weight.len() >= s.in_c * s.out_c * 4,
        "conv_transpose2x2: weight too short"
    );
    assert!(
        bias.is_empty() || bias.len() >= s.out_c,
        "conv_transpose2x2: bias too short"
    );
    assert!(
        output.len() >= s.out_c * 4 * s.in_h * s.in_w,
        "conv_transpose2x2: output too short"
    );
    // SAFETY: sizes checked above (vector blocks cover input columns below `in_w / 4 * 4`
    // only); NEON is present (checked just above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, input, weight, bias, act, output)
    }
}
