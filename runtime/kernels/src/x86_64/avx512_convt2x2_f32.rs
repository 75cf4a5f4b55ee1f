//! Transposed convolution with a 2x2 kernel, stride 2, no padding, dense (U-Net upsampling),
//! AVX-512F. Output pixel `(2y + i, 2x + j)` of channel `oc` is
//! `bias[oc] + sum_ic w[ic][oc][i][j] * in[ic][y][x]`, one FMA per input channel in ascending
//! order (the reference's order), so this is a pointwise convolution to `4 out_c` channels
//! followed by an interleave. A register tile of `OB` output channels x 4 taps x `V` vectors of
//! 16 input pixels of one input row reads each input vector once per tile; even and odd output
//! columns are interleaved on store. The last pixels of a row are masked lanes (same arithmetic
//! as the others), so a value never depends on its position.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::{Act, ConvShape};

/// Input pixels `x0..x0 + 16 V` (clipped to the row) of input row `y`, output channels
/// `oc0..oc0 + OB`.
#[inline(always)]
unsafe fn block<const OB: usize, const V: usize>(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    y: usize,
    x0: usize,
    oc0: usize,
) {
    let (h, w) = (s.in_h, s.in_w);
    let plane = h * w;
    let mut acc = [[[_mm512_setzero_ps(); V]; 4]; OB];
    for t in 0..OB {
        let b = if bias.is_empty() { 0.0 } else { bias[oc0 + t] };
        acc[t] = [[_mm512_set1_ps(b); V]; 4];
    }
    let mut m = [0u16; V];
    for v in 0..V {
        m[v] = super::lanes16(0, w as isize - (x0 + 16 * v) as isize);
    }
    let ip = input.as_ptr();
    let wp = weight.as_ptr();
    for ic in 0..s.in_c {
        let src = ip.add(ic * plane + y * w + x0);
        let mut x = [_mm512_setzero_ps(); V];
        for v in 0..V {
            // Masked-off lanes are never read (fault suppression).
            x[v] = _mm512_maskz_loadu_ps(m[v], src.wrapping_add(16 * v));
        }
        // weight[ic][oc][i][j] at (ic * out_c + oc) * 4 + 2 i + j
        let wr = wp.add((ic * s.out_c + oc0) * 4);
        for t in 0..OB {
            for q in 0..4 {
                let wv = _mm512_set1_ps(*wr.add(4 * t + q));
                for v in 0..V {
                    acc[t][q][v] = _mm512_fmadd_ps(wv, x[v], acc[t][q][v]);
                }
            }
        }
    }
    // Interleave even (j = 0) and odd (j = 1) output columns.
    let lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let op = output.as_mut_ptr();
    let ow = 2 * w;
    for t in 0..OB {
        let oc = oc0 + t;
        for i in 0..2 {
            let orow = op.add((oc * 2 * h + 2 * y + i) * ow + 2 * x0);
            for v in 0..V {
                let e = super::act512(acc[t][2 * i][v], act);
                let o = super::act512(acc[t][2 * i + 1][v], act);
                let n = 2 * (w as isize - (x0 + 16 * v) as isize);
                let dst = orow.wrapping_add(32 * v);
                _mm512_mask_storeu_ps(
                    dst,
                    super::lanes16(0, n),
                    _mm512_permutex2var_ps(e, lo_idx, o),
                );
                _mm512_mask_storeu_ps(
                    dst.wrapping_add(16),
                    super::lanes16(0, n - 16),
                    _mm512_permutex2var_ps(e, hi_idx, o),
                );
            }
        }
    }
}

/// Blocks of `V` input vectors over input row `y`, 16 / (4 V) output channels at a time.
#[inline(always)]
unsafe fn row<const V: usize>(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    y: usize,
) {
    let ob = 4 / V;
    let mut x0 = 0;
    while x0 < s.in_w {
        let mut oc0 = 0;
        while oc0 < s.out_c {
            macro_rules! go {
                ($ob:literal) => {
                    block::<$ob, V>(s, input, weight, bias, act, output, y, x0, oc0)
                };
            }
            match (s.out_c - oc0).min(ob) {
                1 => go!(1),
                2 => go!(2),
                3 => go!(3),
                _ => go!(4),
            }
            oc0 += ob;
        }
        x0 += 16 * V;
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn run(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    for y in 0..s.in_h {
        // 16 accumulators: 2 channels x 4 taps x 2 vectors, or 4 x 4 x 1 on narrow rows.
        if s.in_w > 16 {
            row::<2>(s, input, weight, bias, act, output, y);
        } else {
            row::<1>(s, input, weight, bias, act, output, y);
        }
    }
}

/// Safe entry for 2x2 stride-2 transposed convolutions (see
/// [`super::avx2_convt2x2_f32::handles`]); any other shape, and CPUs without AVX-512F, go to
/// the AVX2 kernel (which itself falls back to the reference).
pub fn conv_transpose2x2(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    if !super::avx2_convt2x2_f32::handles(s) || s.in_h == 0 || s.in_w == 0 || !crate::has_avx512f()
    {
        return super::avx2_convt2x2_f32::conv_transpose2x2(s, input, weight, bias, act, output);
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
    // SAFETY: sizes checked above; loads and stores are masked to the rows; avx512f is present
    // (checked just above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, input, weight, bias, act, output)
    }
}
