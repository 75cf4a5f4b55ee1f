//! Dense convolution with few channels (PMRID's `conv0` 3x3 4->16 and `out1` 3x3 16->4),
//! stride 1, any kernel size and zero padding, AVX2 + FMA. A register tile of 4 output
//! channels by 3 vectors of 8 output pixels of one output row takes one FMA per term in the
//! reference order (input channel, kernel row, kernel column); input columns outside the row are
//! read as zeros by masked loads (an FMA with a zero input leaves the sum unchanged) and input
//! rows outside the plane are skipped, as in the reference, so borders and the last pixels of a
//! row are vector lanes like any other (masked stores). Same arithmetic as
//! [`super::avx512_conv_f32`], so both give the same bits. Grouped or strided shapes go to the
//! reference.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::{Act, ConvShape};

/// Widest kernel handled (the column masks of a block live on the stack).
pub const MAX_K: usize = 16;

/// Output pixels `x0..x0 + 8 V` (clipped to the row) of row `oy`, channels `oc0..oc0 + OC`.
#[inline(always)]
unsafe fn block<const OC: usize, const V: usize>(
    s: &ConvShape,
    ow: usize,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    oh: usize,
    oy: usize,
    x0: usize,
    oc0: usize,
) {
    let kk = s.k_h * s.k_w;
    let mut acc = [[_mm256_setzero_ps(); V]; OC];
    for j in 0..OC {
        let b = if bias.is_empty() { 0.0 } else { bias[oc0 + j] };
        acc[j] = [_mm256_set1_ps(b); V];
    }
    // Input column of lane 0 of vector v for kernel column kx: x0 + 8 v + kx - pad_left. A
    // vector wholly inside the row takes a plain load, others a masked one.
    let mut masks = [[_mm256_setzero_si256(); V]; MAX_K];
    let mut inside = [[false; V]; MAX_K];
    for kx in 0..s.k_w {
        for v in 0..V {
            let start = (x0 + 8 * v + kx) as isize - s.pad[1] as isize;
            masks[kx][v] = super::lanes8(-start, s.in_w as isize - start);
            inside[kx][v] = start >= 0 && start + 8 <= s.in_w as isize;
        }
    }
    let ip = input.as_ptr();
    let wp = weight.as_ptr();
    for ic in 0..s.in_c {
        for ky in 0..s.k_h {
            let iy = (oy + ky) as isize - s.pad[0] as isize;
            if iy < 0 || iy >= s.in_h as isize {
                continue;
            }
            let row = ip.add((ic * s.in_h + iy as usize) * s.in_w);
            for kx in 0..s.k_w {
                let mut x = [_mm256_setzero_ps(); V];
                for v in 0..V {
                    let start = (x0 + 8 * v + kx) as isize - s.pad[1] as isize;
                    let p = row.wrapping_offset(start);
                    // Masked-off lanes are never read (fault suppression), so the address may
                    // lie outside the row.
                    x[v] = if inside[kx][v] {
                        _mm256_loadu_ps(p)
                    } else {
                        _mm256_maskload_ps(p, masks[kx][v])
                    };
                }
                let t = ic * kk + ky * s.k_w + kx;
                for j in 0..OC {
                    let w = _mm256_set1_ps(*wp.add((oc0 + j) * s.in_c * kk + t));
                    for v in 0..V {
                        acc[j][v] = _mm256_fmadd_ps(w, x[v], acc[j][v]);
                    }
                }
            }
        }
    }
    let op = output.as_mut_ptr();
    for j in 0..OC {
        let dst = op.add(((oc0 + j) * oh + oy) * ow + x0);
        for v in 0..V {
            let left = ow as isize - (x0 + 8 * v) as isize;
            let y = super::act256(acc[j][v], act);
            if left >= 8 {
                _mm256_storeu_ps(dst.add(8 * v), y);
            } else if left > 0 {
                _mm256_maskstore_ps(dst.add(8 * v), super::lanes8(0, left), y);
            }
        }
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
    let Some((oh, ow)) = s.conv_out() else { return };
    for oy in 0..oh {
        let mut x0 = 0;
        while x0 < ow {
            let mut oc0 = 0;
            while oc0 < s.out_c {
                // 12 accumulators: 4 channels x 3 vectors.
                macro_rules! go {
                    ($oc:literal) => {
                        block::<$oc, 3>(s, ow, input, weight, bias, act, output, oh, oy, x0, oc0)
                    };
                }
                match s.out_c - oc0 {
                    1 => go!(1),
                    2 => go!(2),
                    3 => go!(3),
                    _ => go!(4),
                }
                oc0 += 4;
            }
            x0 += 24;
        }
    }
}

/// True when [`conv`] takes the shape itself: dense (one group), stride 1, kernel at most
/// [`MAX_K`] wide; anything else goes to the reference.
pub fn handles(s: &ConvShape) -> bool {
    s.groups == 1 && s.stride_h == 1 && s.stride_w == 1 && s.k_w <= MAX_K && s.k_w > 0
}

/// Safe entry for dense stride-1 convolutions (zero padding, any kernel up to [`MAX_K`] wide);
/// other shapes, and CPUs without AVX2 and FMA, go to [`crate::generic::conv2d`].
pub fn conv(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    if !handles(s) || !crate::has_avx2_fma() {
        return crate::generic::conv2d(s, input, weight, bias, act, output);
    }
    let (oh, ow) = s.conv_out().expect("conv: kernel larger than padded input");
    assert!(
        input.len() >= s.in_c * s.in_h * s.in_w,
        "conv: input too short"
    );
    assert!(
        weight.len() >= s.out_c * s.in_c * s.k_h * s.k_w,
        "conv: weight too short"
    );
    assert!(
        bias.is_empty() || bias.len() >= s.out_c,
        "conv: bias too short"
    );
    assert!(output.len() >= s.out_c * oh * ow, "conv: output too short");
    // SAFETY: sizes checked above; loads are masked to the input row, stores to the output
    // row; avx2 and fma are present (checked just above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, input, weight, bias, act, output)
    }
}
