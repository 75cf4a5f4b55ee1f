//! Depthwise convolution (one filter per channel, any kernel size and padding, stride 1 or 2),
//! AVX2 + FMA. In the interior, where every tap of a block lies inside the input row, 4 vectors
//! of 8 output pixels are computed together in registers (independent FMA chains hide the FMA
//! latency; one chain alone would be latency-bound), and what is left of the interior is
//! accumulated in the output row tap by tap; stride 2 loads 16 inputs and keeps the even ones.
//! Borders and the last pixels take a scalar FMA path with the same arithmetic. Rows up to
//! 2048 pixels instead run on zero-padded copies of their input rows, every pixel a vector lane
//! (`padded_rows`: blocks of 4 vectors with their sums in registers over all taps, for kernels
//! up to 5 rows; `padded_row` otherwise). Channel planes
//! may lie apart and their input rows wrap like a streamed value's ring
//! ([`depthwise_strided`]); every output element gets the same arithmetic either way.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::{Act, ConvShape, PlaneLayout};

/// One channel's input rows, laid out as `layout` says (a streamed value's ring, or plain
/// planes).
#[derive(Clone, Copy)]
struct Plane {
    base: *const f32,
    layout: PlaneLayout,
    w: usize,
}

impl Plane {
    /// Input row `y` (inside the convolution's input).
    #[inline(always)]
    unsafe fn row(self, y: usize) -> *const f32 {
        self.base.add(self.layout.in_plane_row(y) * self.w)
    }
}

/// One output pixel, scalar: `bias`, then one FMA per valid tap in (ky, kx) order.
#[inline(always)]
unsafe fn pixel(s: &ConvShape, plane: Plane, w: &[f32], b: f32, oy: usize, ox: usize) -> f32 {
    let mut acc = b;
    for ky in 0..s.k_h {
        let iy = (oy * s.stride_h + ky) as isize - s.pad[0] as isize;
        if iy < 0 || iy >= s.in_h as isize {
            continue;
        }
        let row = plane.row(iy as usize);
        for kx in 0..s.k_w {
            let ix = (ox * s.stride_w + kx) as isize - s.pad[1] as isize;
            if ix < 0 || ix >= s.in_w as isize {
                continue;
            }
            acc = super::fma1(w[ky * s.k_w + kx], *row.add(ix as usize), acc);
        }
    }
    acc
}

/// 8 inputs at `p, p + S, ..., p + 7S` (S = 1 or 2).
#[inline(always)]
unsafe fn load<const S: usize>(p: *const f32) -> __m256 {
    if S == 1 {
        _mm256_loadu_ps(p)
    } else {
        let a = _mm256_loadu_ps(p);
        let b = _mm256_loadu_ps(p.add(8));
        // [a0 a2 b0 b2 | a4 a6 b4 b6] -> [a0 a2 a4 a6 b0 b2 b4 b6]
        let e = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
        _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(e)))
    }
}

/// `V` vectors of 8 output pixels starting at `ox` of output row `oy`, accumulated in
/// registers.
#[inline(always)]
unsafe fn block<const V: usize, const S: usize>(
    s: &ConvShape,
    plane: Plane,
    w: &[f32],
    b: f32,
    oy: usize,
    ox: usize,
    out: *mut f32,
    act: Act,
) {
    let mut acc = [_mm256_set1_ps(b); V];
    for ky in 0..s.k_h {
        let iy = (oy * S + ky) as isize - s.pad[0] as isize;
        if iy < 0 || iy >= s.in_h as isize {
            continue;
        }
        let row = plane.row(iy as usize).add(ox * S - s.pad[1]);
        for kx in 0..s.k_w {
            let wv = _mm256_set1_ps(*w.get_unchecked(ky * s.k_w + kx));
            for (v, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(wv, load::<S>(row.add(kx + 8 * S * v)), *a);
            }
        }
    }
    for (v, a) in acc.iter().enumerate() {
        _mm256_storeu_ps(out.add(ox + 8 * v), super::act256(*a, act));
    }
}

/// `n` (a multiple of 8) output pixels from `ox`, accumulated in the output row one tap at a
/// time (independent lanes keep the FMA units busy on short rows; same arithmetic per pixel).
#[inline(always)]
unsafe fn span<const S: usize>(
    s: &ConvShape,
    plane: Plane,
    w: &[f32],
    b: f32,
    oy: usize,
    ox: usize,
    n: usize,
    out: *mut f32,
    act: Act,
) {
    let o = out.add(ox);
    for v in (0..n).step_by(8) {
        _mm256_storeu_ps(o.add(v), _mm256_set1_ps(b));
    }
    for ky in 0..s.k_h {
        let iy = (oy * S + ky) as isize - s.pad[0] as isize;
        if iy < 0 || iy >= s.in_h as isize {
            continue;
        }
        let row = plane.row(iy as usize).add(ox * S - s.pad[1]);
        for kx in 0..s.k_w {
            let wv = _mm256_set1_ps(*w.get_unchecked(ky * s.k_w + kx));
            for v in (0..n).step_by(8) {
                let a = _mm256_loadu_ps(o.add(v));
                _mm256_storeu_ps(
                    o.add(v),
                    _mm256_fmadd_ps(wv, load::<S>(row.add(kx + S * v)), a),
                );
            }
        }
    }
    if act != Act::None {
        for v in (0..n).step_by(8) {
            _mm256_storeu_ps(o.add(v), super::act256(_mm256_loadu_ps(o.add(v)), act));
        }
    }
}

/// `dst[j] = input row iy [j - pl]`, zero outside the row.
#[inline(always)]
unsafe fn pad_row(dst: &mut [f32], plane: Plane, iy: usize, pl: usize) {
    let src = core::slice::from_raw_parts(plane.row(iy), plane.w);
    let start = pl.min(dst.len());
    dst[..start].fill(0.0);
    let n = plane.w.min(dst.len() - start);
    dst[start..start + n].copy_from_slice(&src[..n]);
    dst[start + n..].fill(0.0);
}

/// Longest output row (in floats) handled with zero-padded stack rows.
const ROW: usize = 2048;

/// Output row `oy` of one channel through zero-padded copies of its input rows: every pixel,
/// borders included, is a vector lane (zero taps leave an FMA chain unchanged, so values equal
/// the scalar path's). Returns false if the row is too long for the stack buffers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn padded_row<const S: usize>(
    s: &ConvShape,
    plane: Plane,
    w: &[f32],
    b: f32,
    oy: usize,
    row: &mut [f32],
    act: Act,
    acc: &mut [f32; ROW],
    prow: &mut [f32; 2 * ROW + 64],
) -> bool {
    let ow = row.len();
    let nv = ow.div_ceil(8);
    let need = (nv * 8 - 1) * S + s.k_w + S;
    if nv * 8 > ROW || need > 2 * ROW + 64 {
        return false;
    }
    let pa = acc.as_mut_ptr();
    let pp = prow.as_ptr();
    for v in 0..nv {
        _mm256_storeu_ps(pa.add(8 * v), _mm256_set1_ps(b));
    }
    let pl = s.pad[1];
    for ky in 0..s.k_h {
        let iy = (oy * S + ky) as isize - s.pad[0] as isize;
        if iy < 0 || iy >= s.in_h as isize {
            continue;
        }
        pad_row(&mut prow[..need], plane, iy as usize, pl);
        for kx in 0..s.k_w {
            let wv = _mm256_set1_ps(*w.get_unchecked(ky * s.k_w + kx));
            for v in 0..nv {
                let a = _mm256_loadu_ps(pa.add(8 * v));
                _mm256_storeu_ps(
                    pa.add(8 * v),
                    _mm256_fmadd_ps(wv, load::<S>(pp.add(kx + 8 * S * v)), a),
                );
            }
        }
    }
    for (o, &a) in row.iter_mut().zip(&acc[..ow]) {
        *o = act.apply(a);
    }
    true
}

/// Kernel rows the register-blocked padded path (`padded_rows`) takes, and the longest padded
/// input row it holds per kernel row: `ROWS_K` rows of `ROWS_W` floats on the stack (22 KB).
const ROWS_K: usize = 5;
const ROWS_W: usize = 1088;

/// `V` vectors of 8 output pixels from vector `v0` of a row whose padded input rows are at
/// `rows` (kernel row `ky` at `rows + ky * ROWS_W`, only the `valid` ones): every tap of the
/// kernel accumulated in registers, the sums stored to `sums`.
#[inline(always)]
unsafe fn rows_block<const V: usize, const S: usize>(
    s: &ConvShape,
    rows: *const f32,
    valid: &[usize],
    w: &[f32],
    b: f32,
    v0: usize,
    sums: *mut f32,
) {
    let mut acc = [_mm256_set1_ps(b); V];
    for &ky in valid {
        let row = rows.add(ky * ROWS_W + 8 * S * v0);
        for kx in 0..s.k_w {
            let wv = _mm256_set1_ps(*w.get_unchecked(ky * s.k_w + kx));
            for (v, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(wv, load::<S>(row.add(kx + 8 * S * v)), *a);
            }
        }
    }
    for (v, a) in acc.iter().enumerate() {
        _mm256_storeu_ps(sums.add(8 * (v0 + v)), *a);
    }
}

/// Output row `oy` of one channel as [`padded_row`] computes it (every pixel a vector lane,
/// the same taps in the same order), with the kernel's padded input rows copied first so that
/// each block of 4 vectors keeps its sums in registers over all taps (`padded_row` goes
/// through memory once per tap). Returns false for kernels taller than [`ROWS_K`] or rows
/// longer than [`ROWS_W`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn padded_rows<const S: usize>(
    s: &ConvShape,
    plane: Plane,
    w: &[f32],
    b: f32,
    oy: usize,
    row: &mut [f32],
    act: Act,
    sums: &mut [f32; ROW],
    rows: &mut [f32; ROWS_K * ROWS_W],
) -> bool {
    let ow = row.len();
    let nv = ow.div_ceil(8);
    let need = (nv * 8 - 1) * S + s.k_w + S;
    if s.k_h > ROWS_K || need > ROWS_W || nv * 8 > ROW {
        return false;
    }
    let pl = s.pad[1];
    let mut valid = [0usize; ROWS_K];
    let mut n_valid = 0;
    for ky in 0..s.k_h {
        let iy = (oy * S + ky) as isize - s.pad[0] as isize;
        if iy < 0 || iy >= s.in_h as isize {
            continue;
        }
        pad_row(
            &mut rows[ky * ROWS_W..ky * ROWS_W + need],
            plane,
            iy as usize,
            pl,
        );
        valid[n_valid] = ky;
        n_valid += 1;
    }
    let (rp, sp) = (rows.as_ptr(), sums.as_mut_ptr());
    let valid = &valid[..n_valid];
    let mut v0 = 0;
    while v0 + 4 <= nv {
        rows_block::<4, S>(s, rp, valid, w, b, v0, sp);
        v0 += 4;
    }
    match nv - v0 {
        3 => rows_block::<3, S>(s, rp, valid, w, b, v0, sp),
        2 => rows_block::<2, S>(s, rp, valid, w, b, v0, sp),
        1 => rows_block::<1, S>(s, rp, valid, w, b, v0, sp),
        _ => {}
    }
    for (o, &a) in row.iter_mut().zip(&sums[..ow]) {
        *o = act.apply(a);
    }
    true
}

#[target_feature(enable = "avx2,fma")]
unsafe fn run<const S: usize>(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    l: &PlaneLayout,
) {
    let Some((oh, ow)) = s.conv_out() else { return };
    let kk = s.k_h * s.k_w;
    let pl = s.pad[1];
    // A block of n outputs from ox reads input columns [ox*S - pl, (ox + n - 1)*S + k_w - 1 - pl]
    // (and, for S = 2, one more for the paired loads): the interior is where that fits.
    let lo = pl.div_ceil(S).min(ow);
    let fits =
        |ox: usize, n: usize| ox * S >= pl && (ox + n - 1) * S + s.k_w + S - 1 - pl <= s.in_w;
    // Stack rows for `padded_row`, reused by every row of every channel.
    let mut acc = [0f32; ROW];
    let mut prow = [0f32; 2 * ROW + 64];
    let mut rows = [0f32; ROWS_K * ROWS_W];
    for c in 0..s.in_c {
        let plane = Plane {
            base: input.as_ptr().add(c * l.in_stride),
            layout: *l,
            w: s.in_w,
        };
        let w = &weight[c * kk..(c + 1) * kk];
        let b = if bias.is_empty() { 0.0 } else { bias[c] };
        for oy in 0..oh {
            let at = c * l.out_stride + oy * ow;
            let row = &mut output[at..at + ow];
            if padded_rows::<S>(s, plane, w, b, oy, row, act, &mut acc, &mut rows)
                || padded_row::<S>(s, plane, w, b, oy, row, act, &mut acc, &mut prow)
            {
                continue;
            }
            for ox in 0..lo {
                row[ox] = act.apply(pixel(s, plane, w, b, oy, ox));
            }
            let out = row.as_mut_ptr();
            let mut ox = lo;
            while ox + 32 <= ow && fits(ox, 32) {
                block::<4, S>(s, plane, w, b, oy, ox, out, act);
                ox += 32;
            }
            let mut n = 0;
            while ox + n + 8 <= ow && fits(ox, n + 8) {
                n += 8;
            }
            if n > 0 {
                span::<S>(s, plane, w, b, oy, ox, n, out, act);
                ox += n;
            }
            for ox in ox..ow {
                row[ox] = act.apply(pixel(s, plane, w, b, oy, ox));
            }
        }
    }
}

/// Safe entry for depthwise convolutions (`groups == in_c == out_c`, stride 1 or 2 in both
/// directions); checks the shape and buffer sizes, then runs the AVX2 kernel. Installed only
/// on CPUs with AVX2 and FMA.
pub fn depthwise(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    let l = PlaneLayout::dense(s);
    depthwise_strided(s, input, weight, bias, act, output, &l)
}

/// [`depthwise`] on channel planes laid out as `l` says: rows of larger planes whose input
/// rows may wrap like a ring's, e.g. a streamed value's ring
/// ([`crate::Kernels::depthwise_strided`]); the same results as [`depthwise`] on each
/// channel's rows alone. Without AVX2 and FMA it runs the generic kernel on copies.
pub fn depthwise_strided(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    l: &PlaneLayout,
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
    l.check(s, oh * ow, input.len(), output.len());
    assert!(weight.len() >= s.in_c * s.k_h * s.k_w && (bias.is_empty() || bias.len() >= s.out_c));
    if !crate::has_avx2_fma() {
        assert!(
            *l == PlaneLayout::dense(s),
            "depthwise_strided: strided planes need AVX2 and FMA"
        );
        return crate::generic::conv2d(s, input, weight, bias, act, output);
    }
    // SAFETY: shape and sizes checked above (every channel's ring of rows and output plane lie
    // in their buffers, and window rows map into the ring); vector blocks run only where
    // `fits` shows every load inside the input row; avx2 and fma are present.
    #[allow(unsafe_code)]
    unsafe {
        if s.stride_h == 1 {
            run::<1>(s, input, weight, bias, act, output, l)
        } else {
            run::<2>(s, input, weight, bias, act, output, l)
        }
    }
}
