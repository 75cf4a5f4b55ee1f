//! Depthwise int8 convolution (one filter per channel, kernels up to 7x7, stride 1 or 2, zero
//! padding), NEON, exactly equal to [`crate::generic_i8::qconv2d`].
//!
//! For each output row, the input rows it reads (those inside the plane) are copied into a stack
//! buffer as `i16` `x - zp` (in `-255..=255`), with 0 for the columns left and right of the plane
//! (padding is real zero, i.e. the code `zp`, whose term is 0, as in the reference), in segments
//! of at most 256 outputs. Then blocks of 4 vectors of 8 outputs (stride 2 loads 16 inputs
//! de-interleaved, `ld2`, and keeps the even ones) accumulate every tap in `i32` from the bias
//! with widening multiply-adds by the tap's weight (`smlal`, `smlal2`): exact, the products fit
//! `i32` and the sums wrap as the reference's. Rows above and below the plane add nothing and
//! are skipped, as in the reference.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::aarch64::*;

use super::neon_qout_i8::{store4, Dst};
use crate::quant::{OutStage, QConvParams, QOutput};
use crate::{ConvShape, PlaneLayout};

/// Largest kernel height and width handled (larger ones go to the generic kernel).
pub const MAX_K: usize = 7;
/// Outputs per segment of an output row.
const SEG: usize = 256;
/// `i16` per buffered row: `2 * SEG` inputs for stride 2, plus the kernel width.
const ROW: usize = 2 * SEG + MAX_K + 1;

/// 8 inputs at `p, p + S, .., p + 7S` (S = 1 or 2; S = 2 reads `p[0..16]`).
#[inline(always)]
unsafe fn load<const S: usize>(p: *const i16) -> int16x8_t {
    if S == 1 {
        vld1q_s16(p)
    } else {
        vld2q_s16(p).0
    }
}

/// One segment's rows in the buffer: kernel rows `ky0..ky0 + nrows`, and the filter as `i16`.
struct Seg<'a> {
    buf: &'a [i16; MAX_K * ROW],
    nrows: usize,
    ky0: usize,
    k_w: usize,
    w: &'a [i16; MAX_K * MAX_K],
    bias: i32,
}

/// `V` vectors of 8 outputs from output `o` of the segment; stores the first `nv` at `at`.
#[inline(always)]
unsafe fn block<const V: usize, const S: usize>(
    g: &Seg<'_>,
    o: usize,
    stage: &OutStage,
    dst: Dst,
    at: usize,
    nv: usize,
) {
    let mut acc = [[vdupq_n_s32(g.bias); 2]; V];
    for r in 0..g.nrows {
        let row = g.buf.as_ptr().add(r * ROW + o * S);
        let wr = g.w.as_ptr().add((g.ky0 + r) * g.k_w);
        for kx in 0..g.k_w {
            let wv = *wr.add(kx);
            for v in 0..V {
                let x = load::<S>(row.add(kx + 8 * S * v));
                acc[v][0] = vmlal_n_s16(acc[v][0], vget_low_s16(x), wv);
                acc[v][1] = vmlal_high_n_s16(acc[v][1], x, wv);
            }
        }
    }
    for v in 0..V {
        for h in 0..2 {
            let i = 8 * v + 4 * h;
            if i < nv {
                store4(dst, stage, at + i, acc[v][h], (nv - i).min(4));
            }
        }
    }
}

/// Copies the input rows of outputs `a..a + n` of output row `oy` into `buf` as `x - zp`, zero
/// outside the plane: `buf[r * ROW + j] = input[oy * S + ky0 + r - pad_top][a * S + j - pad_left]`,
/// input row `y` being row `(first + y) mod rows` of `plane` (`l`: a ring's rows, or dense).
#[inline(always)]
unsafe fn fill<const S: usize>(
    s: &ConvShape,
    l: &PlaneLayout,
    plane: &[u8],
    zp: i32,
    oy: usize,
    (ky0, nrows): (usize, usize),
    (a, n): (usize, usize),
    buf: &mut [i16; MAX_K * ROW],
) {
    let need = S * n.next_multiple_of(8) + s.k_w;
    let col0 = (a * S) as isize - s.pad[1] as isize;
    let lo = (-col0).clamp(0, need as isize) as usize;
    let hi = (s.in_w as isize - col0).clamp(lo as isize, need as isize) as usize;
    let z = vdupq_n_s16(zp as i16);
    for r in 0..nrows {
        let iy = l.in_plane_row(oy * S + ky0 + r - s.pad[0]);
        let dst = &mut buf[r * ROW..r * ROW + need];
        dst[..lo].fill(0);
        if hi > lo {
            let src = &plane[iy * s.in_w + (col0 + lo as isize) as usize..][..hi - lo];
            let d = &mut dst[lo..hi];
            let full = src.len() / 8 * 8;
            let mut j = 0;
            while j < full {
                let x = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(src.as_ptr().add(j))));
                vst1q_s16(d.as_mut_ptr().add(j), vsubq_s16(x, z));
                j += 8;
            }
            for j in full..src.len() {
                d[j] = (src[j] as i32 - zp) as i16;
            }
        }
        dst[hi..].fill(0);
    }
}

#[target_feature(enable = "neon")]
unsafe fn run<const S: usize>(
    s: &ConvShape,
    p: &QConvParams<'_>,
    input: &[u8],
    out: QOutput<'_>,
    l: &PlaneLayout,
) {
    let Some((oh, ow)) = s.conv_out() else { return };
    let kk = s.k_h * s.k_w;
    let pt = s.pad[0];
    let (dst, out) = Dst::split(out);
    let mut buf = [0i16; MAX_K * ROW];
    let mut w = [0i16; MAX_K * MAX_K];
    for c in 0..s.in_c {
        let plane = &input[c * l.in_stride..][..l.in_rows * s.in_w];
        for (d, &x) in w.iter_mut().zip(&p.weight[c * kk..(c + 1) * kk]) {
            *d = x as i16;
        }
        let stage = OutStage::new(p, &out, c);
        for oy in 0..oh {
            // Kernel rows whose input row lies inside the plane.
            let ky0 = pt.saturating_sub(oy * S).min(s.k_h);
            let ky1 = (s.in_h + pt).saturating_sub(oy * S).clamp(ky0, s.k_h);
            let mut a = 0;
            while a < ow {
                let n = (ow - a).min(SEG);
                fill::<S>(
                    s,
                    l,
                    plane,
                    p.in_zero_point,
                    oy,
                    (ky0, ky1 - ky0),
                    (a, n),
                    &mut buf,
                );
                let g = Seg {
                    buf: &buf,
                    nrows: ky1 - ky0,
                    ky0,
                    k_w: s.k_w,
                    w: &w,
                    bias: p.bias_of(c),
                };
                let at = c * l.out_stride + oy * ow + a;
                let mut o = 0;
                while o + 32 <= n {
                    block::<4, S>(&g, o, &stage, dst, at + o, 32);
                    o += 32;
                }
                while o < n {
                    block::<1, S>(&g, o, &stage, dst, at + o, (n - o).min(8));
                    o += 8;
                }
                a += n;
            }
        }
    }
}

/// The shapes the NEON kernel takes: depthwise (`groups == in_c == out_c`, stride 1 or 2 in
/// both directions), kernels up to [`MAX_K`] square or not, any padding, input zero point in
/// `0..=255`.
fn handles(s: &ConvShape, p: &QConvParams<'_>) -> bool {
    s.is_depthwise()
        && (1..=MAX_K).contains(&s.k_h)
        && (1..=MAX_K).contains(&s.k_w)
        && (0..=255).contains(&p.in_zero_point)
        && s.conv_out().is_some()
}

/// Safe entry for quantized depthwise convolutions (the shapes of [`handles`]), equal to
/// [`crate::generic_i8::qconv2d`]: checks the shape and buffer sizes, then runs the NEON kernel.
/// Other shapes and CPUs without NEON get the generic kernel.
pub fn depthwise(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    if !handles(s, p) || !super::has_neon() {
        return crate::generic_i8::qconv2d(s, p, input, out);
    }
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    p.check_operands("depthwise", s, oh * ow, input.len(), out.len());
    let taken = depthwise_strided(s, p, input, out, &PlaneLayout::dense(s));
    debug_assert!(taken);
}

/// [`depthwise`] on planes laid out as `l` says (rows of larger planes, input rows wrapping
/// like a ring's: a streamed value's ring, [`crate::Kernels::qdepthwise_strided`]); the same
/// results as [`depthwise`] on each channel's rows alone. Returns `false`, writing nothing,
/// for a shape [`handles`] refuses or a CPU without NEON.
pub fn depthwise_strided(
    s: &ConvShape,
    p: &QConvParams<'_>,
    input: &[u8],
    out: QOutput<'_>,
    l: &PlaneLayout,
) -> bool {
    if !handles(s, p) || !super::has_neon() {
        return false;
    }
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    p.check_weights("depthwise", s);
    l.check(s, oh * ow, input.len(), out.len());
    // SAFETY: shape and sizes checked above (every channel's ring of rows and output rows lie
    // in their buffers; window rows map into the ring). Buffered rows are input rows inside
    // the window (`ky0..ky1`), copied by bounds-checked slices; vector loads of a segment of
    // `n <= SEG` outputs read below `S * round_up(n, 8) + k_w <= ROW` of their buffer row
    // (see `fill`); stores cover outputs `a..a + n` of row `oy` of channel `c`, inside its
    // output plane; NEON is present (checked above).
    #[allow(unsafe_code)]
    unsafe {
        if s.stride_h == 1 {
            run::<1>(s, p, input, out, l)
        } else {
            run::<2>(s, p, input, out, l)
        }
    }
    true
}
