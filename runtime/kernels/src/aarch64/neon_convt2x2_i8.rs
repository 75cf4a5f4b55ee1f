//! Quantized transposed convolution with a 2x2 kernel, stride 2, no padding, one group (U-Net
//! upsampling), exactly equal to [`crate::generic_i8::qconv_transpose2d`]. Output pixel
//! `(2y + i, 2x + j)` of channel `oc` is `bias[oc] + sum_ic w[ic][oc][i][j] * (in[ic][y][x] - zp)`:
//! four pointwise convolutions (one per tap) whose outputs interleave.
//!
//! With `dotprod`: the pointwise `sdot` scheme of [`super::neon_dot_conv1x1_i8`] over "virtual"
//! output channels `4 oc + tap` (a register tile is 2 output channels by their 4 taps by 12
//! input pixels), pixel tiles cut at input row ends; on store, the accumulators of taps `(i, 0)`
//! and `(i, 1)` are zipped into output row `2y + i`. Without it (or past
//! [`super::neon_dot_conv1x1_i8::MAX_IN_C`] input channels): per output channel and 8 input
//! pixels, `x - zp` widened to `i16` and the four taps accumulated with widening multiply-adds
//! (`smlal`), zipped the same way. Both exact: `i32` sums that wrap as the reference's.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::aarch64::*;

use super::neon_dot_conv1x1_i8::{self as dot, Chunk, WBUF, XBUF};
use super::neon_qout_i8::{store4, Dst};
use crate::quant::{OutStage, QConvParams, QOutput};
use crate::ConvShape;

/// Stores the accumulators of one output channel's taps `(i, 0)` and `(i, 1)` for `np` (1 to
/// 4) input pixels, interleaved, at `at..at + 2 np` (output row `2y + i`).
#[inline(always)]
unsafe fn store_pair(
    dst: Dst,
    stage: &OutStage,
    at: usize,
    t0: int32x4_t,
    t1: int32x4_t,
    np: usize,
) {
    let n = 2 * np;
    store4(dst, stage, at, vzip1q_s32(t0, t1), n.min(4));
    if n > 4 {
        store4(dst, stage, at + 4, vzip2q_s32(t0, t1), n - 4);
    }
}

/// Virtual channels `4 oc0..4 oc0 + 4R` (output channels `oc0..oc0 + R`, `R = OCT / 4` packed,
/// `valid` of them real) at input row `y`, columns `x0..x0 + nv` (chunk pixel `t`).
#[inline(always)]
unsafe fn dot_tile<const OCT: usize, const V: usize>(
    s: &ConvShape,
    x: &Chunk<'_>,
    wbuf: &[i8; WBUF],
    init: &[i32; OCT],
    stages: &[OutStage; 2],
    dst: Dst,
    oc0: usize,
    valid: usize,
    t: usize,
    (y, x0, nv): (usize, usize, usize),
) {
    let acc = dot::accumulate::<OCT, V>(x, wbuf, init, t);
    let (oh, ow) = (2 * s.in_h, 2 * s.in_w);
    for r in 0..valid.min(OCT / 4) {
        for i in 0..2 {
            let row = ((oc0 + r) * oh + 2 * y + i) * ow + 2 * x0;
            for v in 0..V {
                if 4 * v < nv {
                    let (t0, t1) = (acc[4 * r + 2 * i][v], acc[4 * r + 2 * i + 1][v]);
                    store_pair(dst, &stages[r], row + 8 * v, t0, t1, (nv - 4 * v).min(4));
                }
            }
        }
    }
}

/// Input pixels `p0..p0 + pc` (chunk pixels `0..pc`) for output channels `oc0..oc0 + valid`,
/// in tiles that stay inside input rows.
#[inline(always)]
unsafe fn dot_tiles<const OCT: usize>(
    s: &ConvShape,
    x: &Chunk<'_>,
    wbuf: &[i8; WBUF],
    init: &[i32; OCT],
    stages: &[OutStage; 2],
    dst: Dst,
    oc0: usize,
    valid: usize,
    p0: usize,
    pc: usize,
) {
    let w = s.in_w;
    let mut t = 0;
    while t < pc {
        let (y, x0) = ((p0 + t) / w, (p0 + t) % w);
        let end = (w - x0).min(pc - t); // pixels of this row in the chunk
        let mut o = 0;
        while o + 12 <= end {
            let at = (y, x0 + o, 12);
            dot_tile::<OCT, 3>(s, x, wbuf, init, stages, dst, oc0, valid, t + o, at);
            o += 12;
        }
        let r = end - o;
        let at = (y, x0 + o, r);
        match r.div_ceil(4) {
            0 => {}
            1 => dot_tile::<OCT, 1>(s, x, wbuf, init, stages, dst, oc0, valid, t + o, at),
            2 => dot_tile::<OCT, 2>(s, x, wbuf, init, stages, dst, oc0, valid, t + o, at),
            _ => dot_tile::<OCT, 3>(s, x, wbuf, init, stages, dst, oc0, valid, t + o, at),
        }
        t += end;
    }
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn run_dot(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    let (in_c, out_c) = (s.in_c, s.out_c);
    let n = s.in_h * s.in_w;
    let kp = in_c.next_multiple_of(4);
    // A row's last, partial vector may read up to 3 pixels past the chunk's last one:
    // `pp = round_up(pc, 4) + 4` pixels are packed, the ones past `pc` zero.
    let pmax = (XBUF / kp - 4) / 4 * 4;
    let mut xbuf = [0u8; XBUF];
    let mut wbuf = [0i8; WBUF];
    let (dst, out) = Dst::split(out);
    let mut stages = [OutStage::new(p, &out, 0); 2];
    let mut p0 = 0;
    while p0 < n {
        let pc = (n - p0).min(pmax);
        let pp = pc.next_multiple_of(4) + 4;
        dot::pack_input(input, in_c, n, p0, pc, pp, &mut xbuf);
        let x = Chunk {
            buf: &xbuf,
            pp,
            kg: kp / 4,
        };
        let mut oc0 = 0;
        while oc0 < out_c {
            let valid = (out_c - oc0).min(2);
            for r in 0..valid {
                stages[r] = OutStage::new(p, &out, oc0 + r);
            }
            // Virtual channel j: output channel oc0 + j / 4, tap j % 4.
            let wt = |j: usize, ic: usize| p.weight[(ic * out_c + oc0 + j / 4) * 4 + j % 4];
            let bias = |j: usize| p.bias_of(oc0 + j / 4);
            let zp = p.in_zero_point;
            if valid == 2 {
                let init = dot::pack_weights::<8>(in_c, 8, zp, wt, bias, &mut wbuf);
                dot_tiles::<8>(s, &x, &wbuf, &init, &stages, dst, oc0, 2, p0, pc);
            } else {
                let init = dot::pack_weights::<4>(in_c, 4, zp, wt, bias, &mut wbuf);
                dot_tiles::<4>(s, &x, &wbuf, &init, &stages, dst, oc0, 1, p0, pc);
            }
            oc0 += 2;
        }
        p0 += pc;
    }
}

/// 8 input pixels from `src` (`n` of them real, the others 0) as `x - zp` in `i16`.
#[inline(always)]
unsafe fn load8(src: *const u8, n: usize, zp: int16x8_t) -> int16x8_t {
    let b = if n >= 8 {
        vld1_u8(src)
    } else {
        let mut t = [0u8; 8];
        core::ptr::copy_nonoverlapping(src, t.as_mut_ptr(), n);
        vld1_u8(t.as_ptr())
    };
    vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(b)), zp)
}

#[target_feature(enable = "neon")]
unsafe fn run_plain(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    let (h, w) = (s.in_h, s.in_w);
    let n = h * w;
    let (oh, ow) = (2 * h, 2 * w);
    let zp = vdupq_n_s16(p.in_zero_point as i16);
    let (dst, out) = Dst::split(out);
    for oc in 0..s.out_c {
        let stage = OutStage::new(p, &out, oc);
        let b = vdupq_n_s32(p.bias_of(oc));
        for y in 0..h {
            let mut x0 = 0;
            while x0 < w {
                let nv = (w - x0).min(8);
                // acc[tap][half]: tap i * 2 + j, input pixels x0 + 4 half..
                let mut acc = [[b; 2]; 4];
                for ic in 0..s.in_c {
                    let x = load8(input.as_ptr().add(ic * n + y * w + x0), nv, zp);
                    let wp = p.weight.as_ptr().add((ic * s.out_c + oc) * 4);
                    for tap in 0..4 {
                        let wv = *wp.add(tap) as i16;
                        acc[tap][0] = vmlal_n_s16(acc[tap][0], vget_low_s16(x), wv);
                        acc[tap][1] = vmlal_high_n_s16(acc[tap][1], x, wv);
                    }
                }
                for i in 0..2 {
                    let row = (oc * oh + 2 * y + i) * ow + 2 * x0;
                    for half in 0..2 {
                        if 4 * half < nv {
                            let (t0, t1) = (acc[2 * i][half], acc[2 * i + 1][half]);
                            let np = (nv - 4 * half).min(4);
                            store_pair(dst, &stage, row + 8 * half, t0, t1, np);
                        }
                    }
                }
                x0 += 8;
            }
        }
    }
}

/// The checks, fallbacks and dispatch of both entries.
fn entry(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>, plain: bool) {
    let handled = s.k_h == 2
        && s.k_w == 2
        && s.stride_h == 2
        && s.stride_w == 2
        && s.pad == [0; 4]
        && s.groups == 1
        && (0..=255).contains(&p.in_zero_point);
    if !handled || !super::has_neon() {
        return crate::generic_i8::qconv_transpose2d(s, p, input, out);
    }
    let (oh, ow) = s
        .conv_transpose_out()
        .expect("qconv_transpose2d: empty output");
    p.check_operands("conv_transpose2x2", s, oh * ow, input.len(), out.len());
    if s.out_c == 0 {
        return;
    }
    // SAFETY: shape and sizes checked above (`oh = 2 in_h`, `ow = 2 in_w`). Dot kernel: the
    // chunk's input reads are pixels below `in_h * in_w` of channels below `in_c`; a tile
    // starts before `pc` and reads at most 3 pixels past it, below `pp`, and `kp * pp <= XBUF`
    // (`pmax` leaves room for them); packed weights take `8 * kp <= WBUF` bytes
    // (`in_c <= MAX_IN_C`); stores are output pixels `2 x + j` of rows `2 y + i` for the input
    // pixels `(y, x)` of the tile, channels below `out_c`. Plain kernel: loads read
    // `min(8, in_w - x0)` bytes from column `x0` of an input row; weights of rows `ic < in_c`,
    // columns `oc < out_c`. NEON (and dotprod for `run_dot`) present (checked).
    #[allow(unsafe_code)]
    unsafe {
        if !plain && s.in_c <= dot::MAX_IN_C && dot::has_dotprod() {
            run_dot(s, p, input, out)
        } else {
            run_plain(s, p, input, out)
        }
    }
}

/// Safe entry for quantized transposed convolutions with a 2x2 kernel, stride 2, no padding,
/// one group, equal to [`crate::generic_i8::qconv_transpose2d`]: checks the shape and buffer
/// sizes, then runs the `sdot` kernel (the plain NEON one without `dotprod` or past
/// [`super::neon_dot_conv1x1_i8::MAX_IN_C`] input channels). Other shapes, input zero points
/// outside `0..=255` and CPUs without NEON get the generic kernel.
pub fn conv_transpose2x2(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    entry(s, p, input, out, false)
}

/// The plain NEON kernel whether or not the CPU has `dotprod` (what CPUs without it run), with
/// the checks and fallbacks of [`conv_transpose2x2`].
pub fn conv_transpose2x2_plain(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    entry(s, p, input, out, true)
}
