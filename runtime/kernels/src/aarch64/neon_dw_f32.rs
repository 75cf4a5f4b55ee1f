//! Depthwise convolution (one filter per channel, any kernel size and padding, stride 1 or 2),
//! NEON. An output row is cut into an interior, where every tap of every vector lies inside the
//! input rows, and the borders. The interior reads the input rows in place; the borders (and
//! the last 1 to 3 outputs of the interior) read zero-padded copies of them in a small stack
//! buffer, so every output pixel is a vector lane. Blocks of 8, 4 or 1 vectors of 4 outputs keep
//! their accumulators in registers over all taps (8 independent FMA chains hide the FMA
//! latency); stride 2 loads 8 inputs de-interleaved (`ld2`) and keeps the even ones.
//!
//! Per output pixel: `bias`, then one FMA per tap of the input rows inside the plane, in
//! (ky, kx) order; taps left or right of the plane multiply a padded zero, which leaves the sum
//! unchanged, as in the x86-64 kernel.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::aarch64::*;

use crate::{Act, ConvShape};

/// Floats of the stack buffer that holds zero-padded copies of input rows for the borders.
/// Kernels with `k_h * (8 + k_w) > BUF` (wider than about 40 taps) go to the generic kernel.
const BUF: usize = 2048;

/// 4 inputs at `p, p + S, p + 2S, p + 3S` (S = 1 or 2; S = 2 reads `p[0..8]`).
#[inline(always)]
unsafe fn load<const S: usize>(p: *const f32) -> float32x4_t {
    if S == 1 {
        vld1q_f32(p)
    } else {
        vld2q_f32(p).0
    }
}

/// The input rows one segment of an output row reads: kernel rows `ky0..ky1` (those inside the
/// plane), kernel row `ky` at `base + (ky - ky0) * stride`, where offset 0 is the input column of
/// the segment's first output's first tap (`ox0 * S - pad_left`).
struct Rows {
    base: *const f32,
    stride: usize,
    ky0: usize,
    ky1: usize,
}

/// `V` vectors of 4 outputs starting `o` outputs into a segment, accumulated in registers;
/// stores the first `n` (at most `4 V`) at `out`.
#[inline(always)]
unsafe fn block<const V: usize, const S: usize>(
    k_w: usize,
    rows: &Rows,
    w: *const f32,
    b: f32,
    o: usize,
    out: *mut f32,
    n: usize,
    act: Act,
) {
    let mut acc = [vdupq_n_f32(b); V];
    for ky in rows.ky0..rows.ky1 {
        let row = rows.base.add((ky - rows.ky0) * rows.stride + o * S);
        let wr = w.add(ky * k_w);
        for kx in 0..k_w {
            let wv = *wr.add(kx);
            for v in 0..V {
                acc[v] = vfmaq_n_f32(acc[v], load::<S>(row.add(kx + 4 * S * v)), wv);
            }
        }
    }
    for v in 0..V {
        let r = super::act4(acc[v], act);
        if 4 * v + 4 <= n {
            vst1q_f32(out.add(4 * v), r);
        } else if 4 * v < n {
            let mut t = [0f32; 4];
            vst1q_f32(t.as_mut_ptr(), r);
            for l in 0..n - 4 * v {
                *out.add(4 * v + l) = t[l];
            }
        }
    }
}

/// The `n` outputs of a segment, at `out`: blocks of 8 vectors, then 4, then single vectors
/// (the last one possibly partial: it reads its rows for 4 outputs).
#[inline(always)]
unsafe fn segment<const S: usize>(
    k_w: usize,
    rows: &Rows,
    w: *const f32,
    b: f32,
    n: usize,
    out: *mut f32,
    act: Act,
) {
    let mut o = 0;
    while o + 32 <= n {
        block::<8, S>(k_w, rows, w, b, o, out.add(o), 32, act);
        o += 32;
    }
    if o + 16 <= n {
        block::<4, S>(k_w, rows, w, b, o, out.add(o), 16, act);
        o += 16;
    }
    while o < n {
        block::<1, S>(k_w, rows, w, b, o, out.add(o), (n - o).min(4), act);
        o += 4;
    }
}

/// Outputs `a..end` of output row `oy` (input rows `ky0..ky1` of the kernel) through zero-padded
/// copies of the input rows in `buf`, in chunks that fit it.
#[inline(always)]
unsafe fn padded<const S: usize>(
    s: &ConvShape,
    plane: &[f32],
    w: *const f32,
    b: f32,
    oy: usize,
    (ky0, ky1): (usize, usize),
    (mut a, end): (usize, usize),
    out: *mut f32,
    act: Act,
    buf: &mut [f32; BUF],
) {
    let nrows = ky1 - ky0;
    // A chunk of `nv` vectors reads `4 S nv + k_w` floats per row at most (see `fits` in `run`).
    let nv_max = (BUF / nrows.max(1) - s.k_w) / (4 * S);
    while a < end {
        let n = (end - a).min(4 * nv_max);
        let need = 4 * S * n.div_ceil(4) + s.k_w;
        // buf[r * need + j] = input[oy * S + ky0 + r - pad_top][a * S + j - pad_left], or 0.
        let col0 = (a * S) as isize - s.pad[1] as isize;
        let lo = (-col0).clamp(0, need as isize) as usize;
        let hi = (s.in_w as isize - col0).clamp(lo as isize, need as isize) as usize;
        for r in 0..nrows {
            let iy = oy * S + ky0 + r - s.pad[0];
            let dst = &mut buf[r * need..(r + 1) * need];
            dst[..lo].fill(0.0);
            if hi > lo {
                let src0 = iy * s.in_w + (col0 + lo as isize) as usize;
                dst[lo..hi].copy_from_slice(&plane[src0..src0 + (hi - lo)]);
            }
            dst[hi..].fill(0.0);
        }
        let rows = Rows {
            base: buf.as_ptr(),
            stride: need,
            ky0,
            ky1,
        };
        segment::<S>(s.k_w, &rows, w, b, n, out.add(a), act);
        a += n;
    }
}

#[target_feature(enable = "neon")]
unsafe fn run<const S: usize>(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    let Some((oh, ow)) = s.conv_out() else { return };
    let kk = s.k_h * s.k_w;
    let (pt, pl) = (s.pad[0], s.pad[1]);
    // The interior [lo, hi): a vector of outputs from `ox` reads input columns
    // `ox * S - pl ..= (ox + 3) * S + S - 1 + k_w - 1 - pl`, so the vectors of [lo, e) stay inside
    // the row when `lo * S >= pl` and `e * S + k_w <= in_w + pl + 1`. `hi` keeps whole vectors.
    let lo = pl.div_ceil(S).min(ow);
    let e = ((s.in_w + pl + 1).saturating_sub(s.k_w) / S).min(ow);
    let hi = if e > lo { lo + (e - lo) / 4 * 4 } else { lo };
    let mut buf = [0f32; BUF];
    for c in 0..s.in_c {
        let plane = &input[c * s.in_h * s.in_w..(c + 1) * s.in_h * s.in_w];
        let w = weight.as_ptr().add(c * kk);
        let b = if bias.is_empty() { 0.0 } else { bias[c] };
        for oy in 0..oh {
            // Kernel rows whose input row lies inside the plane.
            let ky0 = pt.saturating_sub(oy * S).min(s.k_h);
            let ky1 = (s.in_h + pt).saturating_sub(oy * S).clamp(ky0, s.k_h);
            let out = output.as_mut_ptr().add((c * oh + oy) * ow);
            padded::<S>(s, plane, w, b, oy, (ky0, ky1), (0, lo), out, act, &mut buf);
            if hi > lo {
                let rows = Rows {
                    // Row of kernel row ky0, column of output lo's first tap (>= 0 as lo * S >= pl).
                    base: if ky1 > ky0 {
                        plane
                            .as_ptr()
                            .add((oy * S + ky0 - pt) * s.in_w + lo * S - pl)
                    } else {
                        plane.as_ptr()
                    },
                    stride: s.in_w,
                    ky0,
                    ky1,
                };
                segment::<S>(s.k_w, &rows, w, b, hi - lo, out.add(lo), act);
            }
            padded::<S>(s, plane, w, b, oy, (ky0, ky1), (hi, ow), out, act, &mut buf);
        }
    }
}

/// Safe entry for depthwise convolutions (`groups == in_c == out_c`, stride 1 or 2 in both
/// directions); checks the shape and buffer sizes, then runs the NEON kernel. Kernels wider
/// than about 40 taps, and CPUs without NEON, get the generic kernel.
pub fn depthwise(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    assert!(
        s.groups == s.in_c && s.out_c == s.in_c,
        "depthwise: not a depthwise shape"
    );
    assert!(
        s.stride_h == s.stride_w && (s.stride_h == 1 || s.stride_h == 2),
        "depthwise: stride must be 1 or 2"
    );
    let (oh, ow) = s
        .conv_out()
        .expect("depthwise: kernel larger than padded input");
    assert!(input.len() >= s.in_c * s.in_h * s.in_w && weight.len() >= s.in_c * s.k_h * s.k_w);
    assert!(output.len() >= s.out_c * oh * ow && (bias.is_empty() || bias.len() >= s.out_c));
    if s.k_h * (4 * s.stride_w + s.k_w) > BUF || !super::has_neon() {
        return crate::generic::conv2d(s, input, weight, bias, act, output);
    }
    // SAFETY: shape and sizes checked above; interior vectors read inside their input rows (see
    // `run`), border vectors inside `buf` (see `padded`; one vector of every row fits as
    // checked just above); NEON is present (checked just above).
    #[allow(unsafe_code)]
    unsafe {
        if s.stride_h == 1 {
            run::<1>(s, input, weight, bias, act, output)
        } else {
            run::<2>(s, input, weight, bias, act, output)
        }
    }
}
