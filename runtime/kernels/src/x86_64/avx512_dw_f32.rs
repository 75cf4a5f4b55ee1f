//! Depthwise convolution (one filter per channel, any kernel size and zero padding, stride 1 or
//! 2), AVX-512F. A register tile of up to 8 output rows by 2 vectors of 16 output pixels walks the
//! input rows the tile needs from top to bottom: each input vector is loaded once per kernel
//! column and feeds every output row of the tile it reaches, so each output element still takes
//! its taps in the reference order (kernel row, then column). For 3x3 and 5x5 kernels that walk
//! is unrolled at compile time (`block_k`), which keeps the accumulators in registers; other
//! sizes take the general loop (`block`).
//!
//! Input columns outside the row are read as zeros by masked loads (an FMA with a zero input
//! leaves the sum unchanged) and input rows outside the plane are skipped as in the reference;
//! the last pixels of a row are masked lanes. Every output element therefore gets the same
//! arithmetic wherever it lies, the same as [`super::avx2_dw_f32`]'s. Stride 2 splits 32 inputs
//! into even and odd columns once per input row and vector and takes the taps as lane shifts of
//! those. Tiles prefetch the input and output lines of the tile below them: large planes are
//! otherwise read and written well below the memory bandwidth.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::{Act, ConvShape, PlaneLayout};

/// Widest kernel handled here (column masks live on the stack); wider ones go to the AVX2
/// kernel.
pub const MAX_K: usize = 16;

/// Where the input rows are in each channel plane (a streamed value's ring, or plain planes).
#[derive(Clone, Copy)]
struct Ring(PlaneLayout);

impl Ring {
    /// Input row `y` (inside the window) of the channel plane at `plane`, `w` wide.
    #[inline(always)]
    unsafe fn row(self, plane: *const f32, y: usize, w: usize) -> *const f32 {
        plane.add(self.0.in_plane_row(y) * w)
    }
}

/// The same tile as [`block`] for a `K` x `K` kernel known at compile time: the walk over the
/// tile's input rows is unrolled by macros, so which output rows an input row feeds (and with
/// which kernel row) is decided at compile time and the accumulators stay in registers. (Walking
/// kernel row by kernel row instead would reload every input vector once per output row it
/// feeds; a 16-lane unaligned load spans two cache lines, and those loads become the limit.)
#[inline(always)]
unsafe fn block_k<
    const R: usize,
    const V: usize,
    const S: usize,
    const K: usize,
    const FULL: bool,
>(
    s: &ConvShape,
    plane: *const f32,
    ring: Ring,
    taps: &[__m512; 25],
    b: f32,
    masks: &[[[u16; 2]; 2]; MAX_K],
    out: *mut f32,
    ow: usize,
    oy0: usize,
    x0: usize,
    act: Act,
) {
    let mut acc = [[_mm512_set1_ps(b); V]; R];
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let top = (oy0 * S) as isize - s.pad[0] as isize;
    // Short stride-1 tiles: input column of lane 0 of chunk 0, and the lanes of each chunk
    // inside the row (the last chunk only feeds the first K - 1 lanes of the shifts).
    let base = x0 as isize - s.pad[1] as isize;
    let mut chunk_masks = [0u16; 3];
    if S == 1 && R <= SHIFT_ROWS {
        for j in 0..=V {
            chunk_masks[j] = super::row_mask16(base + 16 * j as isize, s.in_w);
        }
        chunk_masks[V] &= ((1u32 << (K - 1)) - 1) as u16;
    }
    // Output row $r takes kernel row $d - $r S of tile input row $d.
    macro_rules! rows {
        ($d:literal, $kx:ident, $x:ident; $($r:literal)*) => {$(
            if $r < R && $d >= $r * S && $d - $r * S < K {
                let wv = taps[($d - $r * S) * K + $kx];
                for v in 0..V {
                    acc[$r][v] = _mm512_fmadd_ps(wv, $x[v], acc[$r][v]);
                }
            }
        )*};
    }
    macro_rules! steps {
        ($($d:literal)*) => {$(
            if $d < (R - 1) * S + K {
                let iy = top + $d;
                if iy >= 0 && iy < s.in_h as isize {
                    let row = ring.row(plane, iy as usize, s.in_w);
                    if S == 2 && FULL && K <= 5 {
                        // Even and odd input columns once per vector; the taps are these
                        // shifted by whole lanes.
                        let mut eo = [[_mm512_setzero_ps(); 4]; V];
                        for v in 0..V {
                            let p = row.offset((2 * (x0 + 16 * v)) as isize - s.pad[1] as isize);
                            eo[v] = even_odd::<K>(p);
                        }
                        for kx in 0..K {
                            let mut x = [_mm512_setzero_ps(); V];
                            for v in 0..V {
                                x[v] = tap2(kx, &eo[v]);
                            }
                            rows!($d, kx, x; 0 1 2 3 4 5 6 7);
                        }
                    } else if S == 1 && R <= SHIFT_ROWS {
                        // V + 1 consecutive 16-lane chunks of the row (zero outside it); the
                        // taps' inputs are these shifted by whole lanes: V + 1 loads per row
                        // instead of K V unaligned ones (short tiles: streamed calls).
                        let mut chunk = [_mm512_setzero_ps(); 3];
                        for j in 0..=V {
                            let p = row.wrapping_offset(base + 16 * j as isize);
                            // Masked-off lanes are never read (fault suppression).
                            chunk[j] = if FULL && j < V {
                                _mm512_loadu_ps(p)
                            } else {
                                _mm512_maskz_loadu_ps(chunk_masks[j], p)
                            };
                        }
                        for kx in 0..K {
                            let mut x = [_mm512_setzero_ps(); V];
                            for v in 0..V {
                                x[v] = shift(chunk[v + 1], chunk[v], kx);
                            }
                            rows!($d, kx, x; 0 1 2 3 4 5 6 7);
                        }
                    } else {
                        for kx in 0..K {
                            let mut x = [_mm512_setzero_ps(); V];
                            for v in 0..V {
                                let start = ((x0 + 16 * v) * S + kx) as isize - s.pad[1] as isize;
                                x[v] = load::<S, FULL>(row, start, &masks[kx][v], even);
                            }
                            rows!($d, kx, x; 0 1 2 3 4 5 6 7);
                        }
                    }
                }
            }
        )*};
    }
    steps!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21);
    finish::<R, V, S>(s, K, plane, ring, out, ow, oy0, x0, top, &acc, act);
}

/// Tallest stride-1 tile whose taps come from row chunks shifted by whole lanes: with few
/// rows per tile every input vector feeds one or two output rows, and `K` unaligned loads
/// per vector (each spanning two cache lines) are the limit; from 4 rows on, the loads are
/// shared by enough rows that the shifts no longer pay (one core, 64 channels of 224, 5x5:
/// 1 row 16.8 -> 23.1 GMAC/s, 2 rows 30.4 -> 33.6, 4 and 8 rows equal).
const SHIFT_ROWS: usize = 2;

/// Lanes `kx..kx + 16` of the 32 lanes `lo`, `hi` (`kx` below 16).
#[inline(always)]
unsafe fn shift(hi: __m512, lo: __m512, kx: usize) -> __m512 {
    let (h, l) = (_mm512_castps_si512(hi), _mm512_castps_si512(lo));
    macro_rules! align {
        ($($n:literal)*) => {
            match kx {
                0 => lo,
                $($n => _mm512_castsi512_ps(_mm512_alignr_epi32::<$n>(h, l)),)*
                _ => unreachable!(),
            }
        };
    }
    align!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
}

/// For stride 2 and a kernel of at most 5 columns, all of whose taps lie inside the row: from
/// `p` (the input column of tap 0 of lane 0), the even columns `p[2 l]`, the odd ones
/// `p[2 l + 1]`, and `p[32 + 2 l]`, `p[33 + 2 l]` in their first lanes.
#[inline(always)]
unsafe fn even_odd<const K: usize>(p: *const f32) -> [__m512; 4] {
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let a = _mm512_loadu_ps(p);
    let b = _mm512_loadu_ps(p.add(16));
    // Only the lanes the taps use (columns up to 32 + K - 3, inside the row).
    let c = if K > 2 {
        _mm512_maskz_loadu_ps(((1u32 << (K - 2)) - 1) as u16, p.add(32))
    } else {
        _mm512_setzero_ps()
    };
    [
        _mm512_permutex2var_ps(a, even, b),
        _mm512_permutex2var_ps(a, odd, b),
        _mm512_permutexvar_ps(even, c),
        _mm512_permutexvar_ps(odd, c),
    ]
}

/// Tap `kx` of stride 2: `p[kx + 2 l]` from [`even_odd`]'s vectors.
#[inline(always)]
unsafe fn tap2(kx: usize, eo: &[__m512; 4]) -> __m512 {
    let sh = |hi: __m512, lo: __m512, q: usize| -> __m512 {
        let (hi, lo) = (_mm512_castps_si512(hi), _mm512_castps_si512(lo));
        _mm512_castsi512_ps(match q {
            1 => _mm512_alignr_epi32::<1>(hi, lo),
            _ => _mm512_alignr_epi32::<2>(hi, lo),
        })
    };
    match kx {
        0 => eo[0],
        1 => eo[1],
        2 => sh(eo[2], eo[0], 1),
        3 => sh(eo[3], eo[1], 1),
        _ => sh(eo[2], eo[0], 2),
    }
}

/// 16 inputs at `row[start + S l]`, zero outside the row (`masks`: the lanes of the one or two
/// 16-wide loads that lie inside it; ignored when `FULL`, where every load is inside).
#[inline(always)]
unsafe fn load<const S: usize, const FULL: bool>(
    row: *const f32,
    start: isize,
    masks: &[u16; 2],
    even: __m512i,
) -> __m512 {
    // Masked-off lanes are never read (fault suppression), so the address may lie outside the
    // row.
    let p = row.wrapping_offset(start);
    if FULL && S == 1 {
        _mm512_loadu_ps(p)
    } else if FULL {
        _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p.add(16)))
    } else if S == 1 {
        _mm512_maskz_loadu_ps(masks[0], p)
    } else {
        let a = _mm512_maskz_loadu_ps(masks[0], p);
        let c = _mm512_maskz_loadu_ps(masks[1], p.wrapping_add(16));
        _mm512_permutex2var_ps(a, even, c)
    }
}

/// Prefetches what the next tile down reads and writes, then stores the tile.
#[inline(always)]
unsafe fn finish<const R: usize, const V: usize, const S: usize>(
    s: &ConvShape,
    kh: usize,
    plane: *const f32,
    ring: Ring,
    out: *mut f32,
    ow: usize,
    oy0: usize,
    x0: usize,
    top: isize,
    acc: &[[__m512; V]; R],
    act: Act,
) {
    // Prefetch (into L2) the input rows the next tile down adds, at these columns: large
    // planes are otherwise read at well below the memory bandwidth.
    let first = top + ((R - 1) * S + kh) as isize;
    for d in 0..R * S {
        let iy = first + d as isize;
        if iy < 0 {
            continue;
        }
        if iy >= s.in_h as isize {
            break;
        }
        let p = ring.row(plane, iy as usize, s.in_w) as *const i8;
        let c0 = ((x0 * S) as isize - s.pad[1] as isize).max(0) as usize * 4;
        for l in 0..V * S {
            _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(c0 + 64 * l));
        }
    }
    // And the output lines of the next tile down (a store to an uncached line stalls).
    for r in 0..R {
        let p = out.wrapping_add((oy0 + R + r) * ow + x0) as *const i8;
        for l in 0..V {
            _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(64 * l));
        }
    }
    for r in 0..R {
        let dst = out.add((oy0 + r) * ow + x0);
        for v in 0..V {
            let m = super::lanes16(0, ow as isize - (x0 + 16 * v) as isize);
            _mm512_mask_storeu_ps(dst.wrapping_add(16 * v), m, super::act512(acc[r][v], act));
        }
    }
}

/// Output rows `oy0..oy0 + R`, pixels `x0..x0 + 16 V` (clipped to the row) of one channel.
/// `kh`, `kw` are the kernel size (constants after inlining for the common sizes).
#[inline(always)]
unsafe fn block<const R: usize, const V: usize, const S: usize, const FULL: bool>(
    s: &ConvShape,
    kh: usize,
    kw: usize,
    plane: *const f32,
    ring: Ring,
    w: *const f32,
    b: f32,
    masks: &[[[u16; 2]; 2]; MAX_K],
    out: *mut f32,
    ow: usize,
    oy0: usize,
    x0: usize,
    act: Act,
) {
    let mut acc = [[_mm512_set1_ps(b); V]; R];
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    // Input row of tile row d: oy0 * S - pad_top + d; output row r takes kernel row d - r S.
    let top = (oy0 * S) as isize - s.pad[0] as isize;
    for d in 0..(R - 1) * S + kh {
        let iy = top + d as isize;
        if iy < 0 || iy >= s.in_h as isize {
            continue;
        }
        let row = ring.row(plane, iy as usize, s.in_w);
        for kx in 0..kw {
            let mut x = [_mm512_setzero_ps(); V];
            for v in 0..V {
                let start = ((x0 + 16 * v) * S + kx) as isize - s.pad[1] as isize;
                // Masked-off lanes are never read (fault suppression), so the address may lie
                // outside the row.
                x[v] = load::<S, FULL>(row, start, &masks[kx][v], even);
            }
            for r in 0..R {
                let ky = d as isize - (r * S) as isize;
                if ky < 0 || ky >= kh as isize {
                    continue;
                }
                let wv = _mm512_set1_ps(*w.add(ky as usize * kw + kx));
                for v in 0..V {
                    acc[r][v] = _mm512_fmadd_ps(wv, x[v], acc[r][v]);
                }
            }
        }
    }
    finish::<R, V, S>(s, kh, plane, ring, out, ow, oy0, x0, top, &acc, act);
}

/// Tile height (rows of output per register tile).
const RM: usize = 8;

/// Column tiles (of 32 outputs) one [`Columns`] describes.
const CHUNK: usize = 64;
/// Tiles of a [`Columns`] with loads outside the input rows (their own masks); a chunk ends
/// early rather than hold more.
const EDGES: usize = 4;

/// Masks of a tile whose loads all lie inside the rows.
const INSIDE: [[[u16; 2]; 2]; MAX_K] = [[[!0; 2]; 2]; MAX_K];

/// The column tiles of a chunk of output columns and their load masks: the same for every
/// channel and row, so worked out once per call and chunk (a streamed call covers a row or
/// two of many channels: per channel and tile, the masks cost more than the arithmetic).
/// Only tiles at the row's edges have masks of their own.
struct Columns {
    /// First output column of the chunk.
    x0: usize,
    /// Tiles in the chunk.
    n: usize,
    /// Vectors (1 or 2) of each tile.
    nv: [u8; CHUNK],
    /// Each tile's masks: 0 for [`INSIDE`], `e + 1` for `edges[e]`.
    set: [u8; CHUNK],
    /// Lanes of each (kernel column, vector, half) that lie inside the input row, for the
    /// edge tiles.
    edges: [[[[u16; 2]; 2]; MAX_K]; EDGES],
}

impl Columns {
    fn new<const S: usize>(s: &ConvShape, kw: usize, ow: usize, x0: usize) -> Self {
        let mut c = Columns {
            x0,
            n: 0,
            nv: [0; CHUNK],
            set: [0; CHUNK],
            edges: [INSIDE; EDGES],
        };
        let mut n_edges = 0;
        let mut x = x0;
        while x < ow && c.n < CHUNK {
            let nv = (ow - x).div_ceil(16).min(2);
            let mut m = INSIDE;
            for kx in 0..kw {
                for v in 0..nv {
                    let start = ((x + 16 * v) * S + kx) as isize - s.pad[1] as isize;
                    m[kx][v][0] = super::row_mask16(start, s.in_w);
                    m[kx][v][1] = super::row_mask16(start + 16, s.in_w);
                }
            }
            let inside = m == INSIDE;
            if !inside && n_edges == EDGES {
                break;
            }
            let t = c.n;
            c.nv[t] = nv as u8;
            if !inside {
                c.edges[n_edges] = m;
                n_edges += 1;
                c.set[t] = n_edges as u8;
            }
            c.n += 1;
            x += 16 * nv;
        }
        c
    }

    /// Masks of tile `t`.
    fn masks(&self, t: usize) -> &[[[u16; 2]; 2]; MAX_K] {
        match self.set[t] {
            0 => &INSIDE,
            e => &self.edges[e as usize - 1],
        }
    }
}

/// One channel over the column chunk `cols`, kernel `kh` x `kw`, tiles of up to [`RM`] rows.
/// `K` > 0 (a square `K` x `K` kernel) selects [`block_k`], `K` = 0 the general [`block`].
#[inline(always)]
unsafe fn channel<const S: usize, const K: usize>(
    s: &ConvShape,
    kh: usize,
    kw: usize,
    plane: *const f32,
    ring: Ring,
    w: *const f32,
    b: f32,
    out: *mut f32,
    oh: usize,
    ow: usize,
    act: Act,
    cols: &Columns,
) {
    // A square kernel's taps broadcast once per channel.
    let mut taps = [_mm512_setzero_ps(); 25];
    if K > 0 {
        for t in 0..K * K {
            taps[t] = _mm512_set1_ps(*w.add(t));
        }
    }
    let mut oy0 = 0;
    while oy0 < oh {
        let rows = (oh - oy0).min(RM);
        let mut x0 = cols.x0;
        for t in 0..cols.n {
            let nv = cols.nv[t] as usize;
            let masks = cols.masks(t);
            // Full tiles whose loads all lie inside the rows take plain loads.
            let full = rows == RM && nv == 2 && cols.set[t] == 0;
            macro_rules! go {
                ($r:literal, $v:literal, $full:literal) => {
                    if K > 0 {
                        block_k::<$r, $v, S, K, $full>(
                            s, plane, ring, &taps, b, masks, out, ow, oy0, x0, act,
                        )
                    } else {
                        block::<$r, $v, S, $full>(
                            s, kh, kw, plane, ring, w, b, masks, out, ow, oy0, x0, act,
                        )
                    }
                };
                ($r:literal) => {
                    if nv == 2 {
                        go!($r, 2, false)
                    } else {
                        go!($r, 1, false)
                    }
                };
            }
            if full {
                go!(8, 2, true);
            } else {
                match rows {
                    1 => go!(1),
                    2 => go!(2),
                    3 => go!(3),
                    4 => go!(4),
                    5 => go!(5),
                    6 => go!(6),
                    7 => go!(7),
                    _ => go!(8),
                }
            }
            x0 += 16 * nv;
        }
        oy0 += rows;
    }
}

/// All channels, laid out as `l` says.
#[target_feature(enable = "avx512f")]
unsafe fn run<const S: usize>(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    l: PlaneLayout,
) {
    let Some((oh, ow)) = s.conv_out() else { return };
    let kk = s.k_h * s.k_w;
    let ring = Ring(l);
    let mut x0 = 0;
    while x0 < ow {
        let cols = Columns::new::<S>(s, s.k_w, ow, x0);
        for c in 0..s.in_c {
            let plane = input.as_ptr().add(c * l.in_stride);
            let w = weight.as_ptr().add(c * kk);
            let b = if bias.is_empty() { 0.0 } else { bias[c] };
            let out = output.as_mut_ptr().add(c * l.out_stride);
            // The common square kernels get their own copies with the size known to the
            // compiler.
            match (s.k_h, s.k_w) {
                (3, 3) => channel::<S, 3>(s, 3, 3, plane, ring, w, b, out, oh, ow, act, &cols),
                (5, 5) => channel::<S, 5>(s, 5, 5, plane, ring, w, b, out, oh, ow, act, &cols),
                (kh, kw) => channel::<S, 0>(s, kh, kw, plane, ring, w, b, out, oh, ow, act, &cols),
            }
        }
        x0 += (0..cols.n).map(|t| 16 * cols.nv[t] as usize).sum::<usize>();
    }
}

/// Safe entry for depthwise convolutions (`groups == in_c == out_c`, stride 1 or 2 in both
/// directions, kernel at most [`MAX_K`] wide); checks the shape and buffer sizes, then runs
/// the AVX-512 kernel. Without AVX-512F, or for wider kernels, it hands over to
/// [`super::avx2_dw_f32::depthwise`] (same results).
pub fn depthwise(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    if s.k_w > MAX_K || !crate::has_avx512f() {
        return super::avx2_dw_f32::depthwise(s, input, weight, bias, act, output);
    }
    let l = PlaneLayout::dense(s);
    depthwise_strided(s, input, weight, bias, act, output, &l)
}

/// [`depthwise`] on channel planes laid out as `l` says: rows of larger planes whose input
/// rows may wrap like a ring's, e.g. a streamed value's ring
/// ([`crate::Kernels::depthwise_strided`]); the same results as [`depthwise`] on each
/// channel's rows alone. Wider kernels, or a CPU without AVX-512F, go to
/// [`super::avx2_dw_f32::depthwise_strided`] (same results).
pub fn depthwise_strided(
    s: &ConvShape,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    l: &PlaneLayout,
) {
    if s.k_w > MAX_K || !crate::has_avx512f() {
        return super::avx2_dw_f32::depthwise_strided(s, input, weight, bias, act, output, l);
    }
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
    // SAFETY: shape and sizes checked above (every channel's ring of rows and output plane lie
    // in their buffers, and window rows map into the ring); loads are masked to the input
    // rows, stores to the output rows; avx512f is present.
    #[allow(unsafe_code)]
    unsafe {
        if s.stride_h == 1 {
            run::<1>(s, input, weight, bias, act, output, *l)
        } else {
            run::<2>(s, input, weight, bias, act, output, *l)
        }
    }
}
