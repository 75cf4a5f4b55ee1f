//! Pointwise (1x1, stride 1, dense) int8 convolution with plain NEON (no dot-product
//! instructions: Cortex-A53/A55/A72/A73 class CPUs), exactly equal to
//! [`crate::generic_i8::qconv2d`].
//!
//! The weights of 6 output channels are packed as `i16`, `[input channel][8]`, into a stack
//! buffer. Per input channel, 16 pixels are widened to `i16` with the zero point subtracted
//! (`x - zp` in `-255..=255`), then multiplied by each channel's weight (a lane of the packed
//! vector) and accumulated widening to `i32` (`smlal` by element): 6 channels by 16 pixels in 24
//! registers, starting from the bias. Exact: every product fits `i32`, and the sums wrap as the
//! reference's. Then tiles of 8 and 4 pixels; the last 1 to 3 pixels of a plane are summed in
//! scalar code. Pixels go in chunks whose input stays in L1 while every output channel block
//! passes over them.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::aarch64::*;

use super::neon_qout_i8::{store4, Dst};
use crate::quant::{OutStage, QConvParams, QOutput};
use crate::ConvShape;

/// Output channels per register tile.
const OC: usize = 6;
/// Largest number of input channels handled (more go to the generic kernel).
pub const MAX_IN_C: usize = 2048;
/// `i16` of the packed weights of one tile of output channels (`[ic][8]`).
const WPK: usize = 8 * MAX_IN_C;

/// Panics unless the buffers fit the pointwise shape (as the generic kernel's checks).
pub(crate) fn check(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: &QOutput<'_>) {
    let (oh, ow) = s
        .conv_out()
        .expect("qconv2d: kernel larger than padded input");
    p.check_operands("conv1x1", s, oh * ow, input.len(), out.len());
}

/// `acc + x * w[j]` (widening), for a lane `j` known after unrolling.
#[inline(always)]
unsafe fn mla_lane(acc: int32x4_t, x: int16x4_t, w: int16x8_t, j: usize) -> int32x4_t {
    match j {
        0 => vmlal_laneq_s16::<0>(acc, x, w),
        1 => vmlal_laneq_s16::<1>(acc, x, w),
        2 => vmlal_laneq_s16::<2>(acc, x, w),
        3 => vmlal_laneq_s16::<3>(acc, x, w),
        4 => vmlal_laneq_s16::<4>(acc, x, w),
        5 => vmlal_laneq_s16::<5>(acc, x, w),
        6 => vmlal_laneq_s16::<6>(acc, x, w),
        _ => vmlal_laneq_s16::<7>(acc, x, w),
    }
}

/// Output channels `oc0..oc0 + R` at pixels `px..px + 4V` (V = 1, 2 or 4): the bias, then one
/// widening multiply-add per input channel; `wpk` holds their weights as `[ic][8]` (`i16`).
#[inline(always)]
unsafe fn tile<const R: usize, const V: usize>(
    s: &ConvShape,
    p: &QConvParams<'_>,
    input: &[u8],
    wpk: &[i16; WPK],
    dst: Dst,
    stages: &[OutStage; OC],
    n: usize,
    oc0: usize,
    px: usize,
) {
    let zp = vdupq_n_s16(p.in_zero_point as i16);
    let mut acc = [[vdupq_n_s32(0); V]; R];
    for j in 0..R {
        acc[j] = [vdupq_n_s32(p.bias_of(oc0 + j)); V];
    }
    for ic in 0..s.in_c {
        let src = input.as_ptr().add(ic * n + px);
        let mut x = [vdup_n_s16(0); V];
        if V == 1 {
            let b = vreinterpret_u8_u32(vdup_n_u32(core::ptr::read_unaligned(src as *const u32)));
            x[0] = vget_low_s16(vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(b)), zp));
        } else {
            for h in 0..V / 2 {
                let w = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(vld1_u8(src.add(8 * h)))), zp);
                x[2 * h] = vget_low_s16(w);
                x[2 * h + 1] = vget_high_s16(w);
            }
        }
        let w = vld1q_s16(wpk.as_ptr().add(8 * ic));
        for j in 0..R {
            for v in 0..V {
                acc[j][v] = mla_lane(acc[j][v], x[v], w, j);
            }
        }
    }
    for j in 0..R {
        for v in 0..V {
            store4(dst, &stages[j], (oc0 + j) * n + px + 4 * v, acc[j][v], 4);
        }
    }
}

/// All output channels from `oc0` (`R` of them, at most `OC`) at pixels `p0..p0 + pc`.
#[inline(always)]
unsafe fn tiles<const R: usize>(
    s: &ConvShape,
    p: &QConvParams<'_>,
    input: &[u8],
    wpk: &[i16; WPK],
    dst: Dst,
    stages: &[OutStage; OC],
    n: usize,
    oc0: usize,
    p0: usize,
    pc: usize,
) {
    let mut t = 0;
    while t + 16 <= pc {
        tile::<R, 4>(s, p, input, wpk, dst, stages, n, oc0, p0 + t);
        t += 16;
    }
    if t + 8 <= pc {
        tile::<R, 2>(s, p, input, wpk, dst, stages, n, oc0, p0 + t);
        t += 8;
    }
    if t + 4 <= pc {
        tile::<R, 1>(s, p, input, wpk, dst, stages, n, oc0, p0 + t);
        t += 4;
    }
    if t < pc {
        // 1 to 3 pixels: scalar sums, the same arithmetic.
        let zp = p.in_zero_point;
        for j in 0..R {
            let oc = oc0 + j;
            let mut a = [0i32; 4];
            for (l, a) in a[..pc - t].iter_mut().enumerate() {
                let mut sum = p.bias_of(oc);
                for ic in 0..s.in_c {
                    let x = input[ic * n + p0 + t + l] as i32;
                    sum = sum.wrapping_add(p.weight[oc * s.in_c + ic] as i32 * (x - zp));
                }
                *a = sum;
            }
            store4(
                dst,
                &stages[j],
                oc * n + p0 + t,
                vld1q_s32(a.as_ptr()),
                pc - t,
            );
        }
    }
}

#[target_feature(enable = "neon")]
unsafe fn run(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    let n = s.in_h * s.in_w;
    // Pixels per chunk: about 16 KiB of input, whole 16-pixel tiles.
    let chunk = (16 * 1024 / s.in_c.max(1)).max(16) / 16 * 16;
    let (dst, out) = Dst::split(out);
    let mut stages = [OutStage::new(p, &out, 0); OC];
    let mut wpk = [0i16; WPK];
    let mut p0 = 0;
    while p0 < n {
        let pc = (n - p0).min(chunk);
        let mut oc0 = 0;
        while oc0 < s.out_c {
            let r = (s.out_c - oc0).min(OC);
            for j in 0..r {
                stages[j] = OutStage::new(p, &out, oc0 + j);
            }
            for ic in 0..s.in_c {
                for j in 0..8 {
                    wpk[8 * ic + j] = if j < r {
                        p.weight[(oc0 + j) * s.in_c + ic] as i16
                    } else {
                        0
                    };
                }
            }
            match r {
                1 => tiles::<1>(s, p, input, &wpk, dst, &stages, n, oc0, p0, pc),
                2 => tiles::<2>(s, p, input, &wpk, dst, &stages, n, oc0, p0, pc),
                3 => tiles::<3>(s, p, input, &wpk, dst, &stages, n, oc0, p0, pc),
                4 => tiles::<4>(s, p, input, &wpk, dst, &stages, n, oc0, p0, pc),
                5 => tiles::<5>(s, p, input, &wpk, dst, &stages, n, oc0, p0, pc),
                _ => tiles::<6>(s, p, input, &wpk, dst, &stages, n, oc0, p0, pc),
            }
            oc0 += OC;
        }
        p0 += pc;
    }
}

/// Safe entry for quantized pointwise convolutions (`k = 1`, stride 1, no padding, one group)
/// with plain NEON, equal to [`crate::generic_i8::qconv2d`]: checks the shape and buffer sizes,
/// then runs the kernel. Other shapes, input zero points outside `0..=255` and CPUs without NEON
/// get the generic kernel.
pub fn conv1x1(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    if !s.is_pointwise()
        || !(0..=255).contains(&p.in_zero_point)
        || s.in_c > MAX_IN_C
        || !super::has_neon()
    {
        return crate::generic_i8::qconv2d(s, p, input, out);
    }
    check(s, p, input, &out);
    if s.out_c == 0 || s.in_h * s.in_w == 0 {
        return;
    }
    // SAFETY: sizes checked above: tiles read pixels below `pixels` of channels below `in_c`
    // (4-pixel tiles read 4 bytes, 8- and 16-pixel tiles 8 per load, all inside the tile),
    // packed weights below `8 * in_c <= WPK` (`in_c <= MAX_IN_C`), and store inside the
    // output; NEON is present (checked above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out)
    }
}
