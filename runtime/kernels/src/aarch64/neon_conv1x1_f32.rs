//! Pointwise (1x1, stride 1, dense) convolution, NEON: the micro-kernel of
//! [`crate::driver::pointwise_f32`], a register tile of 6 output channels by 16 pixels (24
//! accumulators of the 32 vector registers); a plane's last pixels take tiles of 6 channels by
//! 4 pixels, and the last 1 to 3 a scalar FMA path with the same arithmetic.

#![allow(clippy::needless_range_loop)]

use core::arch::aarch64::*;

use crate::driver::pointwise_f32::{drive, entry, PointwiseF32Tile, PwArgs};
use crate::{Act, Conv1x1, PwEpilogue};

/// Output channels `oc0..oc0 + OC` at pixels `p0..p0 + 4V`.
#[inline(always)]
unsafe fn block<const OC: usize, const V: usize>(a: &PwArgs<'_>, oc0: usize, p0: usize) {
    let mut acc = [[vdupq_n_f32(0.0); V]; OC];
    for j in 0..OC {
        acc[j] = [vdupq_n_f32(a.bias_of(oc0 + j)); V];
    }
    let wp = a.weight.add(oc0 * a.in_c);
    for ic in 0..a.in_c {
        let src = a.input.add(ic * a.in_stride + p0);
        let mut x = [vdupq_n_f32(0.0); V];
        for v in 0..V {
            x[v] = vld1q_f32(src.add(4 * v));
        }
        for j in 0..OC {
            let w = *wp.add(j * a.in_c + ic);
            for v in 0..V {
                acc[j][v] = vfmaq_n_f32(acc[j][v], x[v], w);
            }
        }
    }
    for j in 0..OC {
        let oc = oc0 + j;
        let dst = a.output.add(oc * a.out_stride + p0);
        for v in 0..V {
            let mut y = super::act4(acc[j][v], a.act);
            if let Some(r) = a.residual {
                let r = vld1q_f32(r.add(oc * a.res_stride + p0 + 4 * v));
                y = super::act4(vaddq_f32(y, r), a.res_act);
            }
            vst1q_f32(dst.add(4 * v), y);
        }
    }
}

/// Output channels `oc0..oc0 + count` at pixel `p`, scalar, with the vector path's arithmetic.
#[inline(always)]
unsafe fn pixel(a: &PwArgs<'_>, oc0: usize, count: usize, p: usize) {
    for oc in oc0..oc0 + count {
        let mut acc = a.bias_of(oc);
        for ic in 0..a.in_c {
            let w = *a.weight.add(oc * a.in_c + ic);
            acc = super::fma1(w, *a.input.add(ic * a.in_stride + p), acc);
        }
        let mut y = a.act.apply(acc);
        if let Some(r) = a.residual {
            y = a.res_act.apply(y + *r.add(oc * a.res_stride + p));
        }
        *a.output.add(oc * a.out_stride + p) = y;
    }
}

/// The NEON micro-kernel.
struct Neon;

impl PointwiseF32Tile for Neon {
    const MR: usize = 6;
    const NR: usize = 16;
    #[inline(always)]
    unsafe fn tile<const OC: usize>(a: &PwArgs<'_>, oc0: usize, p0: usize, n: usize) {
        if n == 16 {
            return block::<OC, 4>(a, oc0, p0);
        }
        let mut p = p0;
        while p + 4 <= p0 + n {
            block::<OC, 1>(a, oc0, p);
            p += 4;
        }
        while p < p0 + n {
            pixel(a, oc0, OC, p);
            p += 1;
        }
    }
}

#[target_feature(enable = "neon")]
unsafe fn run(s: &Conv1x1, a: &PwArgs<'_>) {
    drive::<Neon>(s, a)
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
    let e = PwEpilogue::dense(s.pixels);
    conv1x1_into(s, input, weight, bias, act, output, &e)
}

/// [`conv1x1`] through a [`PwEpilogue`] (strided planes, fused residual add): the same values
/// as `conv1x1` followed by the element-wise add.
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
        super::has_neon(),
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
