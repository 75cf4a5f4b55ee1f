//! Transposed convolution with a 2x2 kernel, stride 2, no padding, dense (U-Net upsampling),
//! AVX2 + FMA. Output pixel `(2y + i, 2x + j)` of channel `oc` is
//! `bias[oc] + sum_ic w[ic][oc][i][j] * in[ic][y][x]`, accumulated with one FMA per input
//! channel in ascending order (the reference's order). Even and odd output columns are
//! accumulated in separate registers for 32 (then 8) input columns at a time and interleaved on
//! store; the last columns take a scalar path with the same arithmetic.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::{Act, ConvShape};

/// Output row `2 y + i` of channel `oc` for input columns `x0..x0 + 8 V`: even and odd output
/// columns in separate registers, interleaved on store.
#[inline(always)]
unsafe fn block<const V: usize>(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    b: f32,
    act: Act,
    orow: *mut f32,
    oc: usize,
    y: usize,
    i: usize,
    x0: usize,
) {
    let (h, w) = (s.in_h, s.in_w);
    let plane = h * w;
    let ip = input.as_ptr();
    let mut e = [_mm256_set1_ps(b); V];
    let mut o = [_mm256_set1_ps(b); V];
    for ic in 0..s.in_c {
        let src = ip.add(ic * plane + y * w + x0);
        // weight[ic][oc][i][j] at ((ic * out_c + oc) * 2 + i) * 2 + j
        let wi = ((ic * s.out_c + oc) * 2 + i) * 2;
        let we = _mm256_set1_ps(*weight.get_unchecked(wi));
        let wo = _mm256_set1_ps(*weight.get_unchecked(wi + 1));
        for v in 0..V {
            let xv = _mm256_loadu_ps(src.add(8 * v));
            e[v] = _mm256_fmadd_ps(we, xv, e[v]);
            o[v] = _mm256_fmadd_ps(wo, xv, o[v]);
        }
    }
    for v in 0..V {
        let (ev, ov) = (super::act256(e[v], act), super::act256(o[v], act));
        let lo = _mm256_unpacklo_ps(ev, ov);
        let hi = _mm256_unpackhi_ps(ev, ov);
        let dst = orow.add(2 * (x0 + 8 * v));
        _mm256_storeu_ps(dst, _mm256_permute2f128_ps::<0x20>(lo, hi));
        _mm256_storeu_ps(dst.add(8), _mm256_permute2f128_ps::<0x31>(lo, hi));
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn run(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    let (h, w) = (s.in_h, s.in_w);
    let ow = 2 * w;
    let plane = h * w;
    let ip = input.as_ptr();
    let op = output.as_mut_ptr();
    // weight[ic][oc][i][j] at ((ic * out_c + oc) * 2 + i) * 2 + j
    let wt = |ic: usize, oc: usize, i: usize, j: usize| {
        *weight.get_unchecked(((ic * s.out_c + oc) * 2 + i) * 2 + j)
    };
    let full32 = w / 32 * 32;
    let full8 = w / 8 * 8;
    for oc in 0..s.out_c {
        let b = if bias.is_empty() { 0.0 } else { bias[oc] };
        for y in 0..h {
            for i in 0..2 {
                let orow = op.add((oc * 2 * h + 2 * y + i) * ow);
                let mut x0 = 0;
                while x0 < full32 {
                    block::<4>(s, input, weight, b, act, orow, oc, y, i, x0);
                    x0 += 32;
                }
                while x0 < full8 {
                    block::<1>(s, input, weight, b, act, orow, oc, y, i, x0);
                    x0 += 8;
                }
                for x in full8..w {
                    for j in 0..2 {
                        let mut acc = b;
                        for ic in 0..s.in_c {
                            acc =
                                super::fma1(wt(ic, oc, i, j), *ip.add(ic * plane + y * w + x), acc);
                        }
                        *orow.add(2 * x + j) = act.apply(acc);
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

/// Safe entry for 2x2 stride-2 transposed convolutions; any other shape goes to the reference.
/// Installed only on CPUs with AVX2 and FMA.
pub fn conv_transpose2x2(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    if !handles(s) || s.in_h == 0 || s.in_w == 0 || !crate::has_avx2_fma() {
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
    // SAFETY: sizes checked above; installed only when avx2 and fma are present.
    #[allow(unsafe_code)]
    unsafe {
        run(s, input, weight, bias, act, output)
    }
}
