//! Dense convolution with few channels (PMRID's `conv0` 3x3 4->16 and `out1` 3x3 16->4),
//! stride 1, any kernel size and zero padding, AVX-512F. A register tile of `OC` output
//! channels by `V` vectors of 16 output pixels of one output row takes one FMA per term in the
//! reference order (input channel, kernel row, kernel column); input columns outside the row are
//! read as zeros by masked loads (an FMA with a zero input leaves the sum unchanged) and input
//! rows outside the plane are skipped, as in the reference, so borders and the last pixels of a
//! row are vector lanes like any other (masked stores). Grouped or strided shapes go to the
//! reference.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::{Act, ConvShape, PlaneLayout};

/// Widest kernel handled (the column masks of a block live on the stack).
pub const MAX_K: usize = 16;

/// Output pixels `x0..x0 + 16 V` (clipped to the row) of row `oy`, channels `oc0..oc0 + OC`.
#[inline(always)]
unsafe fn block<const OC: usize, const V: usize>(
    s: &ConvShape,
    ow: usize,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    l: &PlaneLayout,
    oy: usize,
    x0: usize,
    oc0: usize,
) {
    let kk = s.k_h * s.k_w;
    let mut acc = [[_mm512_setzero_ps(); V]; OC];
    for j in 0..OC {
        let b = if bias.is_empty() { 0.0 } else { bias[oc0 + j] };
        acc[j] = [_mm512_set1_ps(b); V];
    }
    // Input column of lane 0 of vector v for kernel column kx: x0 + 16 v + kx - pad_left.
    let mut masks = [[0u16; V]; MAX_K];
    for kx in 0..s.k_w {
        for v in 0..V {
            let start = (x0 + 16 * v + kx) as isize - s.pad[1] as isize;
            masks[kx][v] = super::row_mask16(start, s.in_w);
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
            // Window row iy at plane row (first + iy) mod rows.
            let r = l.in_first_row + iy as usize;
            let r = if r >= l.in_rows { r - l.in_rows } else { r };
            let row = ip.add(ic * l.in_stride + r * s.in_w);
            for kx in 0..s.k_w {
                let mut x = [_mm512_setzero_ps(); V];
                for v in 0..V {
                    let start = (x0 + 16 * v + kx) as isize - s.pad[1] as isize;
                    // Masked-off lanes are never read (fault suppression), so the address may
                    // lie outside the row.
                    x[v] = _mm512_maskz_loadu_ps(masks[kx][v], row.wrapping_offset(start));
                }
                let t = ic * kk + ky * s.k_w + kx;
                for j in 0..OC {
                    let w = _mm512_set1_ps(*wp.add((oc0 + j) * s.in_c * kk + t));
                    for v in 0..V {
                        acc[j][v] = _mm512_fmadd_ps(w, x[v], acc[j][v]);
                    }
                }
            }
        }
    }
    let op = output.as_mut_ptr();
    for j in 0..OC {
        let dst = op.add((oc0 + j) * l.out_stride + oy * ow + x0);
        for v in 0..V {
            let m = super::lanes16(0, ow as isize - (x0 + 16 * v) as isize);
            _mm512_mask_storeu_ps(dst.wrapping_add(16 * v), m, super::act512(acc[j][v], act));
        }
    }
}

/// One output row: blocks of `V` vectors over the row, `OC` channels at a time (fewer for the
/// last channels).
#[inline(always)]
unsafe fn row<const V: usize, const OCB: usize>(
    s: &ConvShape,
    ow: usize,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    l: &PlaneLayout,
    oy: usize,
) {
    let mut x0 = 0;
    while x0 < ow {
        let mut oc0 = 0;
        while oc0 < s.out_c {
            macro_rules! go {
                ($oc:literal) => {
                    block::<$oc, V>(s, ow, input, weight, bias, act, output, l, oy, x0, oc0)
                };
            }
            match (s.out_c - oc0).min(OCB) {
                1 => go!(1),
                2 => go!(2),
                3 => go!(3),
                4 => go!(4),
                5 => go!(5),
                6 => go!(6),
                7 => go!(7),
                _ => go!(8),
            }
            oc0 += OCB;
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
    l: &PlaneLayout,
) {
    let Some((oh, ow)) = s.conv_out() else { return };
    // 16 accumulators: 8 channels x 2 vectors, or 4 x 4 for few output channels (6 vectors
    // or 3 with more accumulators measured no faster).
    for oy in 0..oh {
        if s.out_c > 4 {
            row::<2, 8>(s, ow, input, weight, bias, act, output, l, oy);
        } else {
            row::<4, 4>(s, ow, input, weight, bias, act, output, l, oy);
        }
    }
}

/// True when [`conv`] takes the shape itself: dense (one group), stride 1, kernel at most
/// [`MAX_K`] wide; anything else goes to the reference.
pub fn handles(s: &ConvShape) -> bool {
    s.groups == 1 && s.stride_h == 1 && s.stride_w == 1 && s.k_w <= MAX_K && s.k_w > 0
}

/// Safe entry for dense stride-1 convolutions (zero padding, any kernel up to [`MAX_K`] wide);
/// other shapes, and CPUs without AVX-512F, go to [`crate::generic::conv2d`].
pub fn conv(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    if !handles(s) || !crate::has_avx512f() {
        return crate::generic::conv2d(s, input, weight, bias, act, output);
    }
    conv_strided(s, input, weight, bias, act, output, &PlaneLayout::dense(s));
}

/// [`conv`] on planes laid out as `l` says (rows of larger planes, input rows wrapping like a
/// ring's: a streamed value's ring, [`crate::Kernels::conv_strided`]), the same results as
/// [`conv`] on the planes alone. Returns `false`, writing nothing, for a shape [`handles`]
/// refuses or a CPU without AVX-512F.
pub fn conv_strided(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    l: &PlaneLayout,
) -> bool {
    if !handles(s) || !crate::has_avx512f() {
        return false;
    }
    let Some((oh, ow)) = s.conv_out() else {
        return true;
    };
    l.check(s, oh * ow, input.len(), output.len());
    assert!(
        weight.len() >= s.out_c * s.in_c * s.k_h * s.k_w,
        "conv: weight too short"
    );
    assert!(
        bias.is_empty() || bias.len() >= s.out_c,
        "conv: bias too short"
    );
    // SAFETY: sizes checked above (every channel's rows lie in their buffers; window rows map
    // into the planes); loads are masked to the input row, stores to the output row; avx512f
    // is present (checked just above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, input, weight, bias, act, output, l)
    }
    true
}
