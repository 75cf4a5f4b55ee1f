//! Quantized depthwise convolution, AVX-512 VNNI, with `vpdpbusd` (4 `u8 x i8` products summed
//! into each `i32` lane, exact and wrapping like the reference) on raw input codes.
//!
//! Each input row is turned once into a "quad row": dword `j` holds the 4 input bytes that
//! output column `j` of a strip meets under kernel columns `0..4`, i.e. bytes `c0 + s j` to
//! `c0 + s j + 3` of the row (the zero point outside the input, so no border special case). A
//! kernel row of up to 4 taps is then one `vpdpbusd` per 16 outputs with the row's 4 weights
//! broadcast as a dword (missing taps weigh 0); taps 4..7 read the quad row 4 / s entries
//! further (`valignd` of two aligned vectors). A 3x3 is 3 `vpdpbusd` per 16 outputs, a 5x5 is
//! 10. Quad rows are built with `vpermd` + `vpshufb` from one masked 64-byte load per 16
//! entries and kept in a small ring (slot = row mod 8), so each is built once per strip and
//! serves every output row that reads it.
//!
//! Stride-1 5x5 kernels (and 3x3 ones on up to 8 output rows, as streamed calls are) take
//! "vertical quads" instead: per output row, dword `j` holds the bytes of input column `c0 + j`
//! in the window's rows 0..4 (4 rows interleaved once, as the pointwise kernel packs
//! channels), so each kernel column of 4 kernel rows is one `vpdpbusd` on the entries `kx`
//! further, with the column's 4 weights as the dword; a 5x5's fifth row comes from its
//! horizontal quad row. A 5x5 is then 7 `vpdpbusd` per 16 outputs, a 3x3 3, and a call of one
//! output row builds one interleave instead of `k` quad rows.
//!
//! Padding enters as the zero point code, and each channel's accumulators start at `bias - zp *
//! sum(w)` (wrapping), which makes `sum w * x` equal to the reference's `bias + sum w * (x -
//! zp)` over the taps inside the input, modulo 2^32. 4 vectors (64 outputs) are accumulated in
//! registers at a time and finished with the shared output stage ([`super::qout_i8`]): the
//! `u8` codes of a block leave in one 64-byte store.

#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

use super::avx2_dw_i8::{check, supported};
use super::avx512vnni_conv1x1_i8::{interleave4, mask16, mask64};
use super::qout_i8::{pack64, probe, requant16_high, store16, v16, Dst, Stage, V16};
use crate::quant::{QConvParams, QOutput};
use crate::{ConvShape, PlaneLayout};

/// Output pixels per strip.
const STRIP: usize = 128;
/// Largest kernel side.
const MAX_K: usize = 7;
/// Entries (dwords) of a cached quad row: a strip plus one vector for taps 4..7.
const QLEN: usize = STRIP + 16;
/// Cached quad rows (at least `MAX_K`, so that the rows of one output row never collide).
const SLOTS: usize = 8;
const _: () = assert!(SLOTS >= MAX_K && (QLEN * 4).is_multiple_of(64));

/// Quad rows; 64-byte aligned, and `QLEN * 4` is a multiple of 64, so that vector `i` of a
/// row is one aligned 64-byte load.
#[repr(C, align(64))]
struct Cache([i32; SLOTS * QLEN]);

/// Geometry of one strip of one channel.
struct Strip<'a> {
    /// The channel's input plane.
    plane: &'a [u8],
    /// Input height.
    h: usize,
    /// Input width.
    w: usize,
    /// Input zero point (0..=255).
    zp: i32,
    /// Stride (1 or 2).
    s: usize,
    /// Input column of byte 0 of quad entry 0.
    c0: isize,
    /// Vectors of 16 entries to build per quad row.
    nvec: usize,
    /// Where input rows lie in the plane (a ring's rows may wrap).
    layout: PlaneLayout,
}

/// The bytes of the 64-byte load at input column `c` (stride `s`, row width `w`) that are
/// inside the row and needed. Computed per load: a table of them, written with vector stores
/// and read back as scalars, stalled store forwarding on every call.
#[inline(always)]
fn load_mask(c: isize, s: usize, w: usize) -> u64 {
    let need = mask64(16 * s + 4);
    if c >= 0 && c + 64 <= w as isize {
        return need;
    }
    let lo = (-c).clamp(0, 64) as usize;
    let hi = (w as isize - c).clamp(0, 64) as usize;
    need & mask64(hi) & !mask64(lo)
}

/// Builds the quad row of input row `y` into `dst` (`st.nvec` vectors of 16 dwords).
#[inline(always)]
unsafe fn build(st: &Strip<'_>, y: isize, dst: *mut i32) {
    let zp = _mm512_set1_epi8(st.zp as i8);
    if y < 0 || y >= st.h as isize {
        for v in 0..st.nvec {
            _mm512_store_si512(dst.add(16 * v) as *mut _, zp);
        }
        return;
    }
    // 128-bit lane l (entries 4l..4l + 4) needs bytes s 4l .. s 4l + 3 s + 4: dwords s l ..
    // s l + 4 into the lane, then bytes (s e + t) for entry e in 0..4, tap t in 0..4.
    let (idx, shuf) = if st.s == 1 {
        (
            _mm512_set_epi32(6, 5, 4, 3, 5, 4, 3, 2, 4, 3, 2, 1, 3, 2, 1, 0),
            _mm512_broadcast_i32x4(_mm_set_epi8(6, 5, 4, 3, 5, 4, 3, 2, 4, 3, 2, 1, 3, 2, 1, 0)),
        )
    } else {
        (
            _mm512_set_epi32(9, 8, 7, 6, 7, 6, 5, 4, 5, 4, 3, 2, 3, 2, 1, 0),
            _mm512_broadcast_i32x4(_mm_set_epi8(9, 8, 7, 6, 7, 6, 5, 4, 5, 4, 3, 2, 3, 2, 1, 0)),
        )
    };
    let row = st
        .plane
        .as_ptr()
        .add(st.layout.in_plane_row(y as usize) * st.w);
    for v in 0..st.nvec {
        let c = st.c0 + (16 * st.s * v) as isize;
        // Masked-off lanes are not accessed (fault suppression).
        let m = load_mask(c, st.s, st.w);
        let x = _mm512_mask_loadu_epi8(zp, m, row.wrapping_offset(c) as *const _);
        let q = _mm512_shuffle_epi8(_mm512_permutexvar_epi32(idx, x), shuf);
        _mm512_store_si512(dst.add(16 * v) as *mut _, q);
    }
}

/// One output row segment: the quad rows of its kernel rows, the weights, the destination.
struct Row<'a> {
    /// Quad row of each kernel row.
    rows: &'a [*const i32; MAX_K],
    /// Weights of kernel row `ky`, taps `4g..4g + 4` (0 past the kernel), as a dword.
    wq: &'a [[i32; 2]; MAX_K],
    /// Kernel side.
    k: usize,
    /// Initial accumulator, `bias - zp * sum(w)`.
    init: i32,
    /// Output stage of the channel.
    st: &'a Stage,
    /// Its vector constants.
    vs: &'a V16,
    /// Destination.
    dst: Dst,
    /// Element of the segment's first output.
    at: usize,
    /// Outputs in the segment.
    n: usize,
}

/// Computes and stores a segment: blocks of up to 4 vectors, `G` dwords of taps per kernel
/// row (the second `OFF = 4 / s` entries further), `kr` kernel rows.
#[inline(always)]
unsafe fn segment<const G: usize, const OFF: i32>(r: &Row<'_>, kr: usize) {
    let mut e = 0;
    while e < r.n {
        match (r.n - e).div_ceil(16) {
            1 => block::<1, G, OFF>(r, e, kr),
            2 => block::<2, G, OFF>(r, e, kr),
            3 => block::<3, G, OFF>(r, e, kr),
            _ => block::<4, G, OFF>(r, e, kr),
        }
        e += 64;
    }
}

/// `V` vectors of 16 outputs from entry `e0` of the segment.
#[inline(always)]
unsafe fn block<const V: usize, const G: usize, const OFF: i32>(r: &Row<'_>, e0: usize, kr: usize) {
    let mut acc = [_mm512_set1_epi32(r.init); V];
    for ky in 0..kr {
        let base = r.rows[ky].add(e0);
        // V (+ 1 for taps 4..7) aligned vectors.
        let mut a = [_mm512_setzero_si512(); 5];
        for i in 0..V + G - 1 {
            a[i] = _mm512_load_si512(base.add(16 * i) as *const _);
        }
        let w0 = _mm512_set1_epi32(r.wq[ky][0]);
        for v in 0..V {
            acc[v] = _mm512_dpbusd_epi32(acc[v], a[v], w0);
        }
        if G == 2 {
            let w1 = _mm512_set1_epi32(r.wq[ky][1]);
            for v in 0..V {
                let x = _mm512_alignr_epi32::<OFF>(a[v + 1], a[v]);
                acc[v] = _mm512_dpbusd_epi32(acc[v], x, w1);
            }
        }
    }
    finish::<V>(r, e0, &acc);
}

/// Requantizes and stores the `V` vectors of outputs from entry `e0` of segment `r`.
#[inline(always)]
unsafe fn finish<const V: usize>(r: &Row<'_>, e0: usize, acc: &[__m512i; V]) {
    let n = r.n - e0;
    match r.dst {
        Dst::U8(p) if r.st.high => {
            // All vectors in one 64-byte store (unused slots repeat vector 0).
            let mut q = [requant16_high(r.vs, acc[0]); 4];
            for v in 1..V {
                q[v] = requant16_high(r.vs, acc[v]);
            }
            let b = pack64(r.vs, q);
            _mm512_mask_storeu_epi8(p.wrapping_add(r.at + e0) as *mut _, mask64(n), b);
        }
        _ => {
            for v in 0..V {
                let left = n.saturating_sub(16 * v);
                store16(r.st, r.vs, r.dst, r.at + e0 + 16 * v, acc[v], mask16(left));
            }
        }
    }
}

/// Most output rows per call for which a stride-1 3x3 takes vertical quads (one build per
/// output row), rather than horizontal quad rows (one per input row, shared by the output
/// rows of a call): measured, one core, 64 channels of 512: 1 row 15.0 -> 24.5 GMAC/s, 8 rows
/// 30.4 / 29.9, 32 rows 32.7 / 28.5. A 5x5 takes them for any number of rows (1 row 24.6 ->
/// 42.7, 4 rows 40.1 -> 50.4, 32 rows 50.6 both ways).
const VERTICAL_ROWS_3X3: usize = 8;

/// Entries (dwords) of a vertical quad row: a strip plus the kernel's reach, in whole groups
/// of 64.
const VLEN: usize = (STRIP + 16 + 64).next_multiple_of(64);

/// Vertical quads of a strip for one output row of a stride-1 kernel: dword `e` holds the
/// bytes at input column `c0 + e` of the window's rows 0..4 (the zero point outside the input,
/// and for rows past the kernel, whose weights are 0). Kernel column `kx` of 4 kernel rows is
/// then one `vpdpbusd` of the entries `kx` further, so a row of outputs takes `K` of them (and
/// a 5x5 two more for its fifth row, from a horizontal quad row) with 4 rows interleaved once
/// per output row: calls of a row or two (streamed runs) no longer build `K + rows - 1`
/// horizontal quad rows per strip.
#[repr(C, align(64))]
struct Vertical([i32; VLEN]);

/// Builds `groups` groups of 64 vertical quads from the rows `rows` (plane rows, `None` for
/// the zero point) at input column `c0` of rows `w` wide.
#[inline(always)]
unsafe fn build_vertical(
    rows: &[Option<*const u8>; 4],
    c0: isize,
    w: usize,
    zp: i32,
    groups: usize,
    dst: *mut i32,
) {
    let zpv = _mm512_set1_epi8(zp as i8);
    for g in 0..groups {
        let c = c0 + 64 * g as isize;
        let lo = (-c).clamp(0, 64) as usize;
        let hi = (w as isize - c).clamp(0, 64) as usize;
        let m = mask64(hi) & !mask64(lo);
        let mut r = [zpv; 4];
        for i in 0..4 {
            if let Some(p) = rows[i] {
                // Masked-off bytes are not accessed (fault suppression).
                r[i] = _mm512_mask_loadu_epi8(zpv, m, p.wrapping_offset(c) as *const _);
            }
        }
        interleave4(r, dst.add(64 * g) as *mut u8);
    }
}

/// `V` vectors of 16 outputs from entry `e0` of a stride-1 `K` x `K` segment (`K` 3 or 5):
/// kernel rows 0..4 from the vertical quads `vq` with the column dwords `wv`, a 5x5's fifth row
/// from the horizontal quad row `hq` with its dwords `w4`.
#[inline(always)]
unsafe fn block_vertical<const V: usize, const K: usize>(
    r: &Row<'_>,
    vq: *const i32,
    wv: &[i32; 5],
    hq: *const i32,
    w4: [i32; 2],
    e0: usize,
) {
    let mut acc = [_mm512_set1_epi32(r.init); V];
    for kx in 0..K {
        let wk = _mm512_set1_epi32(wv[kx]);
        for v in 0..V {
            let x = _mm512_loadu_si512(vq.add(e0 + 16 * v + kx) as *const _);
            acc[v] = _mm512_dpbusd_epi32(acc[v], x, wk);
        }
    }
    if K == 5 {
        let base = hq.add(e0);
        let mut a = [_mm512_setzero_si512(); 5];
        for i in 0..=V {
            a[i] = _mm512_load_si512(base.add(16 * i) as *const _);
        }
        let (w0, w1) = (_mm512_set1_epi32(w4[0]), _mm512_set1_epi32(w4[1]));
        for v in 0..V {
            acc[v] = _mm512_dpbusd_epi32(acc[v], a[v], w0);
            let x = _mm512_alignr_epi32::<4>(a[v + 1], a[v]);
            acc[v] = _mm512_dpbusd_epi32(acc[v], x, w1);
        }
    }
    finish::<V>(r, e0, &acc);
}

/// A stride-1 `K` x `K` segment from vertical quads.
#[inline(always)]
unsafe fn segment_vertical<const K: usize>(
    r: &Row<'_>,
    vq: *const i32,
    wv: &[i32; 5],
    hq: *const i32,
    w4: [i32; 2],
) {
    let mut e = 0;
    while e < r.n {
        match (r.n - e).div_ceil(16) {
            1 => block_vertical::<1, K>(r, vq, wv, hq, w4, e),
            2 => block_vertical::<2, K>(r, vq, wv, hq, w4, e),
            3 => block_vertical::<3, K>(r, vq, wv, hq, w4, e),
            _ => block_vertical::<4, K>(r, vq, wv, hq, w4, e),
        }
        e += 64;
    }
}

/// A segment, dispatched on the kernel side and stride.
#[inline(always)]
unsafe fn row(r: &Row<'_>, s: usize) {
    match (r.k, s) {
        (3, _) => segment::<1, 4>(r, 3),
        (5, 1) => segment::<2, 4>(r, 5),
        (5, _) => segment::<2, 2>(r, 5),
        (k, _) if k <= 4 => segment::<1, 4>(r, k),
        (k, 1) => segment::<2, 4>(r, k),
        (k, _) => segment::<2, 2>(r, k),
    }
}

/// One channel's `k x k` weights as the kernel's dwords.
struct ChannelWeights {
    /// Kernel row `ky`, taps `4g..4g + 4` (0 past the kernel), as a dword.
    rows: [[i32; 2]; MAX_K],
    /// Kernel column `kx`, rows 0..4 (0 past the kernel), as a dword (vertical quads).
    columns: [i32; 5],
    /// Sum of the weights.
    sum: i32,
}

impl ChannelWeights {
    /// The dwords of a `K x K` kernel (`K` at most 5), unrolled.
    #[inline(always)]
    fn of<const K: usize>(wc: &[i8]) -> ChannelWeights {
        let wc = &wc[..K * K];
        let mut rows = [[0u32; 2]; MAX_K];
        let mut columns = [0u32; 5];
        let mut sum = 0i32;
        for ky in 0..K {
            for kx in 0..K {
                let b = wc[ky * K + kx];
                sum += b as i32;
                rows[ky][kx / 4] |= (b as u8 as u32) << (8 * (kx % 4));
                if ky < 4 {
                    columns[kx] |= (b as u8 as u32) << (8 * ky);
                }
            }
        }
        ChannelWeights {
            rows: rows.map(|r| r.map(|d| d as i32)),
            columns: columns.map(|d| d as i32),
            sum,
        }
    }

    /// The dwords of a `k x k` kernel (`k` at most [`MAX_K`]; columns for `k` up to 5).
    #[inline(always)]
    fn of_side(wc: &[i8], k: usize) -> ChannelWeights {
        let mut cw = ChannelWeights {
            rows: [[0; 2]; MAX_K],
            columns: [0; 5],
            sum: 0,
        };
        for ky in 0..k {
            for kx in 0..k {
                let b = wc[ky * k + kx];
                cw.sum += b as i32;
                cw.rows[ky][kx / 4] |= ((b as u8 as u32) << (8 * (kx % 4))) as i32;
                if kx < 5 && ky < 4 {
                    cw.columns[kx] |= ((b as u8 as u32) << (8 * ky)) as i32;
                }
            }
        }
        cw
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run(
    s: &ConvShape,
    p: &QConvParams<'_>,
    input: &[u8],
    mut out: QOutput<'_>,
    l: &PlaneLayout,
) {
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    let (h, w, k, st) = (s.in_h, s.in_w, s.k_h, s.stride_h);
    let groups = k.div_ceil(4);
    let pr = probe(&out);
    let dst = Dst::of(&mut out);
    let zp = p.in_zero_point;
    // Not zeroed (4.6 KB per call, a tenth of a streamed call's time): every quad row is
    // built before it is read.
    let mut cache = core::mem::MaybeUninit::<Cache>::uninit();
    let base = cache.as_mut_ptr() as *mut i32;
    // Stride-1 5x5 kernels, and 3x3 ones on a few rows (streamed calls), take vertical quads.
    let vertical = st == 1 && (k == 5 || (k == 3 && oh <= VERTICAL_ROWS_3X3));
    let mut vcache = core::mem::MaybeUninit::<Vertical>::uninit();
    let vq = vcache.as_mut_ptr() as *mut i32;
    for c in 0..s.in_c {
        let stage = Stage::new(p, &pr, c);
        let vs = v16(&stage);
        let wc = &p.weight[c * k * k..][..k * k];
        // The channel's weights as dwords (a fixed side unrolls: this runs per channel and
        // call, and streamed calls are a row or two).
        let cw = match k {
            3 => ChannelWeights::of::<3>(wc),
            5 => ChannelWeights::of::<5>(wc),
            _ => ChannelWeights::of_side(wc, k),
        };
        let (wq, wv) = (&cw.rows, &cw.columns);
        let init = p.bias_of(c).wrapping_sub(zp.wrapping_mul(cw.sum));
        let plane = &input[c * l.in_stride..][..l.in_rows * w];
        if vertical {
            // Column dwords of kernel rows 0..4, and the fifth row's taps as horizontal dwords.
            let w4 = if k == 5 { wq[4] } else { [0; 2] };
            let mut x0 = 0;
            while x0 < ow {
                let n = (ow - x0).min(STRIP);
                let c0 = x0 as isize - s.pad[1] as isize;
                let strip = Strip {
                    plane,
                    h,
                    zp,
                    s: 1,
                    c0,
                    nvec: n.div_ceil(16) + 1,
                    w,
                    layout: *l,
                };
                let vgroups = (n.next_multiple_of(16) + k - 1).div_ceil(64);
                for oy in 0..oh {
                    let r0 = oy as isize - s.pad[0] as isize;
                    let mut rows = [None; 4];
                    for (i, row) in rows.iter_mut().enumerate().take(k.min(4)) {
                        let y = r0 + i as isize;
                        if y >= 0 && y < h as isize {
                            *row = Some(plane.as_ptr().add(l.in_plane_row(y as usize) * w));
                        }
                    }
                    build_vertical(&rows, c0, w, zp, vgroups, vq);
                    if k == 5 {
                        build(&strip, r0 + 4, base);
                    }
                    let r = Row {
                        rows: &[core::ptr::null(); MAX_K],
                        wq,
                        k,
                        init,
                        st: &stage,
                        vs: &vs,
                        dst,
                        at: c * l.out_stride + oy * ow + x0,
                        n,
                    };
                    if k == 5 {
                        segment_vertical::<5>(&r, vq, wv, base, w4);
                    } else {
                        segment_vertical::<3>(&r, vq, wv, base, w4);
                    }
                }
                x0 += n;
            }
            continue;
        }
        let mut x0 = 0;
        while x0 < ow {
            let n = (ow - x0).min(STRIP);
            let c0 = (x0 * st) as isize - s.pad[1] as isize;
            let nvec = n.div_ceil(16) + groups - 1;
            let strip = Strip {
                plane,
                h,
                zp,
                s: st,
                c0,
                nvec,
                w,
                layout: *l,
            };
            let mut tags = [isize::MIN; SLOTS];
            let mut rows = [core::ptr::null::<i32>(); MAX_K];
            for oy in 0..oh {
                let r0 = (oy * st) as isize - s.pad[0] as isize;
                for ky in 0..k {
                    let y = r0 + ky as isize;
                    let slot = y.rem_euclid(SLOTS as isize) as usize;
                    let ptr = base.add(slot * QLEN);
                    if tags[slot] != y {
                        build(&strip, y, ptr);
                        tags[slot] = y;
                    }
                    rows[ky] = ptr;
                }
                let r = Row {
                    rows: &rows,
                    wq,
                    k,
                    init,
                    st: &stage,
                    vs: &vs,
                    dst,
                    at: c * l.out_stride + oy * ow + x0,
                    n,
                };
                row(&r, st);
            }
            x0 += n;
        }
    }
}

/// Quantized depthwise convolution (`qdepthwise`), AVX-512 VNNI kernel for the shapes of
/// [`super::avx2_dw_i8::depthwise`] (`groups == in_c == out_c`, square kernels up to 7x7,
/// equal strides of 1 or 2, any padding, input zero point in 0..=255); anything else (or a CPU
/// without AVX-512 VNNI/BW) runs [`crate::generic_i8::qconv2d`]. Same results as the reference,
/// bit for bit.
pub fn depthwise(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    if !supported(s, p) || !crate::has_avx512vnni() {
        return crate::generic_i8::qconv2d(s, p, input, out);
    }
    check(s, p, input, &out);
    let taken = depthwise_strided(s, p, input, out, &PlaneLayout::dense(s));
    debug_assert!(taken);
}

/// [`depthwise`] on planes laid out as `l` says (rows of larger planes, input rows wrapping
/// like a ring's: a streamed value's ring, [`crate::Kernels::qdepthwise_strided`]); the same
/// results as [`depthwise`] on each channel's rows alone. Returns `false`, writing nothing,
/// for a shape [`depthwise`] would hand to the reference, or a CPU without AVX-512 VNNI/BW.
pub fn depthwise_strided(
    s: &ConvShape,
    p: &QConvParams<'_>,
    input: &[u8],
    out: QOutput<'_>,
    l: &PlaneLayout,
) -> bool {
    if !supported(s, p) || !crate::has_avx512vnni() {
        return false;
    }
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    p.check_weights("qdepthwise", s);
    l.check(s, oh * ow, input.len(), out.len());
    // SAFETY: buffer sizes checked above (every channel's ring of rows and output rows lie in
    // their buffers; window rows map into the ring); input bytes are read with masked loads
    // limited to the row (masked-off bytes are not accessed); a segment of `n` outputs reads
    // quad entries below `16 * (ceil(n / 16) + groups - 1) <= QLEN`, all built for the strip
    // (`nvec`), and each of its `k <= SLOTS` rows sits in its own slot; stores are masked to
    // the segment's outputs; avx512f/bw/vnni are present (checked above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out, l)
    }
    true
}
