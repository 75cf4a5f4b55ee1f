//! Pointwise (1x1, stride 1, dense) int8 convolution with the Armv8.2 dot-product instruction
//! (`sdot`, feature `dotprod`), exactly equal to [`crate::generic_i8::qconv2d`].
//!
//! `sdot` multiplies signed bytes, so the `u8` inputs go in as `x ^ 0x80 = x - 128` and the zero
//! point is folded into each channel's starting value: `sum w * (x - zp) = sum w * (x - 128) +
//! (128 - zp) * sum w`, so the accumulators start at `bias + (128 - zp) * sum w` (all `i32`,
//! wrapping, hence equal to the reference's wrapping sum for any inputs).
//!
//! The reduction (input channels) runs four at a time in each 32-bit lane: a chunk of pixels of
//! the CHW input is transposed into a stack buffer as `[channel / 4][pixel][channel % 4]`
//! (`st4`, 16 pixels at a time; input channels padded to a multiple of 4 with weight 0), and the
//! weights of 8 (or 4) output channels as `[channel / 4][output channel][channel % 4]`, so one
//! `sdot` by element (`sdot v.4s, x.16b, w.4b[j]`) adds four input channels of four pixels for
//! output channel `j`. Register tile: 8 output channels by 12 pixels (24 accumulators), then 8 or
//! 4 pixels; the last 1 to 3 pixels of a chunk are lanes of a padded vector, and output channels
//! beyond `out_c` are zero-weight rows that are not stored.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::aarch64::*;
use core::arch::asm;

use super::neon_qout_i8::{store4, Dst};
use crate::quant::{OutStage, QConvParams, QOutput};
use crate::ConvShape;

/// Bytes of the transposed input chunk.
pub(crate) const XBUF: usize = 32 * 1024;
/// Largest number of input channels handled (more go to the generic kernel, through the plain
/// NEON one, which has the same limit).
pub const MAX_IN_C: usize = 2048;
/// Bytes of the packed weights of one tile of 8 output channels.
pub(crate) const WBUF: usize = 8 * MAX_IN_C;

/// `acc[i] += sum_k x[4i + k] * w[4L + k]` (signed bytes): `sdot` by element.
///
/// # Safety
/// Only called from functions compiled with `dotprod` (the assembler needs it too), on CPUs
/// with it.
#[inline(always)]
unsafe fn sdot<const L: i32>(mut acc: int32x4_t, x: int8x16_t, w: int8x16_t) -> int32x4_t {
    asm!(
        "sdot {acc:v}.4s, {x:v}.16b, {w:v}.4b[{l}]",
        acc = inout(vreg) acc,
        x = in(vreg) x,
        w = in(vreg) w,
        l = const L,
        options(pure, nomem, nostack, preserves_flags)
    );
    acc
}

/// The transposed input chunk and its geometry.
pub(crate) struct Chunk<'a> {
    /// `[g][pp][4]` bytes, `x - 128` as `i8`.
    pub(crate) buf: &'a [u8; XBUF],
    /// Pixels per channel group in `buf` (a multiple of 4).
    pub(crate) pp: usize,
    /// Channel groups of 4.
    pub(crate) kg: usize,
}

/// Transposes pixels `p0..p0 + pc` of every input channel into `buf` as `[g][pp][4]`, zero for
/// pixels `pc..pp` (`pp >= pc`, a multiple of 4, `in_c` rounded up to 4 times `pp` at most
/// `XBUF`).
#[inline(always)]
pub(crate) unsafe fn pack_input(
    input: &[u8],
    in_c: usize,
    n: usize,
    p0: usize,
    pc: usize,
    pp: usize,
    buf: &mut [u8; XBUF],
) {
    let bias = vdupq_n_u8(0x80);
    let full = pc / 16 * 16;
    for g in 0..in_c.div_ceil(4) {
        let rows = (in_c - 4 * g).min(4);
        let src = input.as_ptr().add(4 * g * n + p0);
        let dst = buf.as_mut_ptr().add(g * pp * 4);
        let mut p = 0;
        while p < full {
            let mut v = [vdupq_n_u8(0); 4];
            for c in 0..rows {
                v[c] = veorq_u8(vld1q_u8(src.add(c * n + p)), bias);
            }
            vst4q_u8(dst.add(4 * p), uint8x16x4_t(v[0], v[1], v[2], v[3]));
            p += 16;
        }
        for p in full..pp {
            for c in 0..4 {
                *dst.add(4 * p + c) = if c < rows && p < pc {
                    *src.add(c * n + p) ^ 0x80
                } else {
                    0
                };
            }
        }
    }
}

/// Packs the weights of `valid` output channels into `wbuf` as `[g][OCT][4]`: `wt(j, ic)` is
/// the weight of channel `j` for input channel `ic` (zero beyond `in_c` and `valid`); returns
/// each channel's starting value `bias(j) + (128 - zp) * sum w` (wrapping).
#[inline(always)]
pub(crate) fn pack_weights<const OCT: usize>(
    in_c: usize,
    valid: usize,
    zp: i32,
    wt: impl Fn(usize, usize) -> i8,
    bias: impl Fn(usize) -> i32,
    wbuf: &mut [i8; WBUF],
) -> [i32; OCT] {
    let kp = in_c.next_multiple_of(4);
    let fold = 128i32.wrapping_sub(zp);
    let mut init = [0i32; OCT];
    for j in 0..OCT {
        let mut sum = 0i32;
        for ic in 0..kp {
            let w = if j < valid && ic < in_c { wt(j, ic) } else { 0 };
            wbuf[((ic / 4) * OCT + j) * 4 + ic % 4] = w;
            sum += w as i32;
        }
        if j < valid {
            init[j] = bias(j).wrapping_add(fold.wrapping_mul(sum));
        }
    }
    init
}

/// The accumulators of the `OCT` packed output channels at chunk pixels `t..t + 4V`: the
/// starting values, then one `sdot` per group of 4 input channels, pixel vector and channel.
///
/// # Safety
/// NEON and dotprod present (the caller is compiled with both); `t + 4V <= x.pp`.
#[inline(always)]
pub(crate) unsafe fn accumulate<const OCT: usize, const V: usize>(
    x: &Chunk<'_>,
    wbuf: &[i8; WBUF],
    init: &[i32; OCT],
    t: usize,
) -> [[int32x4_t; V]; OCT] {
    let mut acc = [[vdupq_n_s32(0); V]; OCT];
    for j in 0..OCT {
        acc[j] = [vdupq_n_s32(init[j]); V];
    }
    let xp = x.buf.as_ptr().add(4 * t) as *const i8;
    let wp = wbuf.as_ptr();
    for g in 0..x.kg {
        let xr = xp.add(g * x.pp * 4);
        let mut xv = [vdupq_n_s8(0); V];
        for v in 0..V {
            xv[v] = vld1q_s8(xr.add(16 * v));
        }
        for h in 0..OCT / 4 {
            let w = vld1q_s8(wp.add((g * OCT + 4 * h) * 4));
            for v in 0..V {
                acc[4 * h][v] = sdot::<0>(acc[4 * h][v], xv[v], w);
                acc[4 * h + 1][v] = sdot::<1>(acc[4 * h + 1][v], xv[v], w);
                acc[4 * h + 2][v] = sdot::<2>(acc[4 * h + 2][v], xv[v], w);
                acc[4 * h + 3][v] = sdot::<3>(acc[4 * h + 3][v], xv[v], w);
            }
        }
    }
    acc
}

/// Output channels `oc0..oc0 + valid` (`valid <= OCT`) at chunk pixels `t..t + 4V`, stored for
/// the first `nv` pixels (global pixel `p`).
#[inline(always)]
unsafe fn tile<const OCT: usize, const V: usize>(
    x: &Chunk<'_>,
    wbuf: &[i8; WBUF],
    init: &[i32; OCT],
    stages: &[OutStage; 8],
    dst: Dst,
    n: usize,
    oc0: usize,
    valid: usize,
    t: usize,
    p: usize,
    nv: usize,
) {
    let acc = accumulate::<OCT, V>(x, wbuf, init, t);
    for j in 0..valid.min(OCT) {
        for v in 0..V {
            if 4 * v < nv {
                let at = (oc0 + j) * n + p + 4 * v;
                store4(dst, &stages[j], at, acc[j][v], (nv - 4 * v).min(4));
            }
        }
    }
}

/// All pixels of a chunk for output channels `oc0..oc0 + valid`.
#[inline(always)]
unsafe fn tiles<const OCT: usize>(
    x: &Chunk<'_>,
    wbuf: &[i8; WBUF],
    init: &[i32; OCT],
    stages: &[OutStage; 8],
    dst: Dst,
    n: usize,
    oc0: usize,
    valid: usize,
    p0: usize,
    pc: usize,
) {
    let mut t = 0;
    while t + 12 <= pc {
        tile::<OCT, 3>(x, wbuf, init, stages, dst, n, oc0, valid, t, p0 + t, 12);
        t += 12;
    }
    let r = pc - t;
    match r.div_ceil(4) {
        0 => {}
        1 => tile::<OCT, 1>(x, wbuf, init, stages, dst, n, oc0, valid, t, p0 + t, r),
        2 => tile::<OCT, 2>(x, wbuf, init, stages, dst, n, oc0, valid, t, p0 + t, r),
        _ => tile::<OCT, 3>(x, wbuf, init, stages, dst, n, oc0, valid, t, p0 + t, r),
    }
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn run(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    let (in_c, out_c) = (s.in_c, s.out_c);
    let n = s.in_h * s.in_w;
    let kp = in_c.next_multiple_of(4);
    // Pixels per chunk: the buffer's worth, in whole 12-pixel tiles when there are a few.
    let per = XBUF / kp;
    let pmax = if per >= 48 {
        per / 12 * 12
    } else {
        per / 4 * 4
    };
    let mut xbuf = [0u8; XBUF];
    let mut wbuf = [0i8; WBUF];
    let (dst, out) = Dst::split(out);
    let mut stages = [OutStage::new(p, &out, 0); 8];
    let mut p0 = 0;
    while p0 < n {
        let pc = (n - p0).min(pmax);
        let pp = pc.next_multiple_of(4);
        pack_input(input, in_c, n, p0, pc, pp, &mut xbuf);
        let x = Chunk {
            buf: &xbuf,
            pp,
            kg: kp / 4,
        };
        let mut oc0 = 0;
        while oc0 < out_c {
            let valid = (out_c - oc0).min(8);
            for j in 0..valid {
                stages[j] = OutStage::new(p, &out, oc0 + j);
            }
            let wt = |j: usize, ic: usize| p.weight[(oc0 + j) * in_c + ic];
            let bias = |j: usize| p.bias_of(oc0 + j);
            let zp = p.in_zero_point;
            if valid > 4 {
                let init = pack_weights::<8>(in_c, valid, zp, wt, bias, &mut wbuf);
                tiles::<8>(&x, &wbuf, &init, &stages, dst, n, oc0, valid, p0, pc);
            } else {
                let init = pack_weights::<4>(in_c, valid, zp, wt, bias, &mut wbuf);
                tiles::<4>(&x, &wbuf, &init, &stages, dst, n, oc0, valid, p0, pc);
            }
            oc0 += 8;
        }
        p0 += pc;
    }
}

/// The CPU has the dot-product instructions and they are allowed ([`crate::Isa::NeonDotprod`]).
pub fn has_dotprod() -> bool {
    crate::cpu::arm::dotprod() && crate::Isa::allows(crate::Isa::NeonDotprod)
}

/// Safe entry for quantized pointwise convolutions (`k = 1`, stride 1, no padding, one group),
/// equal to [`crate::generic_i8::qconv2d`]: checks the shape and buffer sizes, then runs the
/// `sdot` kernel. Other shapes, input zero points outside `0..=255` and more than
/// [`MAX_IN_C`] input channels go to [`super::neon_conv1x1_i8::conv1x1`] (which passes on
/// what it does not handle to the generic kernel), as do CPUs without `dotprod`.
pub fn conv1x1(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    if !s.is_pointwise()
        || !(0..=255).contains(&p.in_zero_point)
        || s.in_c > MAX_IN_C
        || !has_dotprod()
    {
        return super::neon_conv1x1_i8::conv1x1(s, p, input, out);
    }
    super::neon_conv1x1_i8::check(s, p, input, &out);
    if s.out_c == 0 || s.in_h * s.in_w == 0 {
        return;
    }
    // SAFETY: sizes checked above: every input row read lies inside the input (pack_input reads
    // pixels below `pixels` of channels below `in_c`), the weights read are rows below `out_c`,
    // every store lies inside the output (pixels below `pixels`, channels below `out_c`); the
    // buffers' indices stay below `XBUF` (`in_c` rounded up to 4 times `pp <= XBUF / kp`) and
    // `WBUF` (`8 * in_c` rounded up, `in_c <= MAX_IN_C`); NEON and dotprod are present
    // (checked above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out)
    }
}
