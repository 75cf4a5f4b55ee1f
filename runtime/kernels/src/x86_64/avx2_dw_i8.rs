//! Quantized depthwise convolution (one filter per channel, k x k with k <= 7, stride 1 or 2,
//! any zero padding), AVX2.
//!
//! Terms are `(x - zp) * w` with `x - zp` in `i16` (padding is 0, the reference's skipped
//! terms) and pairs of kernel rows are multiplied with `vpmaddwd`: each `i32` lane gets
//! `(x[r][c] - zp) * w[ky][kx] + (x[r + 1][c] - zp) * w[ky + 1][kx]`, exact. For that, pairs
//! of input rows `(r, r + 1)` are interleaved once into a stack buffer of `i16` pairs (a "pair
//! row"; for stride 2 split into even and odd columns so that every tap reads contiguous
//! pairs), and kept in a small cache: with stride 1, pair row `r` serves output rows `r`, `r -
//! 2`, `r - 4` (of a 5x5). An odd kernel's last row is paired with weight 0. Output rows are
//! processed in strips of up to 128 pixels, 4 vectors of 8 pixels in registers at a time.

#![allow(clippy::too_many_arguments, clippy::needless_range_loop)]

use core::arch::x86_64::*;

use super::qout_i8::{probe, store8, store8x2, v8, Dst, Stage};
use crate::quant::{QConvParams, QOutput};
use crate::{ConvShape, PlaneLayout};

/// Output pixels per strip.
pub(crate) const STRIP: usize = 128;
/// Largest kernel side.
pub(crate) const MAX_K: usize = 7;
/// Pair entries per phase in a cached pair row (a strip plus the kernel's reach, rounded up
/// to whole 32-entry chunks).
pub(crate) const PHASE: usize = 160;
const _: () = assert!((PHASE * 4).is_multiple_of(64));
/// Cached pair rows.
const SLOTS: usize = 8;

/// Pair rows; 64-byte aligned, and `PHASE * 4` is a multiple of 64, so that vector `i` of
/// 16 entries of a phase is one aligned 64-byte load.
#[repr(C, align(64))]
struct Cache([i32; SLOTS * 2 * PHASE]);

/// Geometry of one strip of one channel.
pub(crate) struct Strip<'a> {
    /// The channel's input plane.
    pub(crate) plane: &'a [u8],
    /// Input height.
    pub(crate) h: usize,
    /// Input width.
    pub(crate) w: usize,
    /// Input zero point (0..=255).
    pub(crate) zp: i32,
    /// Stride.
    pub(crate) s: usize,
    /// Input column of pair entry 0 of phase 0.
    pub(crate) c0: isize,
    /// Pair entries needed per phase.
    pub(crate) len: usize,
    /// Where input rows lie in the plane (a ring's rows may wrap).
    pub(crate) layout: PlaneLayout,
}

impl Strip<'_> {
    /// Builds pair row `r` (rows `r`, `r + 1`) into `dst` (`s` phases of `PHASE` entries,
    /// `len` of them rounded up to 16) with 256-bit vectors.
    #[inline(always)]
    unsafe fn build(&self, r: isize, dst: *mut i32) {
        let rows_in = |y: isize| y >= 0 && y < self.h as isize;
        let (a_in, b_in) = (rows_in(r), rows_in(r + 1));
        let chunks = self.len.div_ceil(16);
        let zp = _mm256_set1_epi16(self.zp as i16);
        let step = 16 * self.s;
        // Chunk j reads input columns [c0 + step j, c0 + step (j + 1)).
        let span = (step * chunks) as isize;
        if !a_in && !b_in {
            let z = _mm256_setzero_si256();
            for j in 0..chunks {
                interleave(z, z, z, z, self.s, dst.add(16 * j));
            }
        } else if self.c0 >= 0 && self.c0 + span <= self.w as isize {
            let row = |y: isize| {
                let y = if rows_in(y) { y as usize } else { 0 };
                self.plane
                    .as_ptr()
                    .add(self.layout.in_plane_row(y) * self.w + self.c0 as usize)
            };
            let (pa, pb) = (row(r), row(r + 1));
            for j in 0..chunks {
                let load = |p: *const u8, ok: bool| {
                    if ok {
                        _mm256_loadu_si256_or_half(p.add(step * j), self.s)
                    } else {
                        _mm256_set1_epi8(self.zp as i8)
                    }
                };
                let (a0, a1) = widen(load(pa, a_in), self.s, zp);
                let (b0, b1) = widen(load(pb, b_in), self.s, zp);
                interleave(a0, a1, b0, b1, self.s, dst.add(16 * j));
            }
        } else {
            self.build_border(r, a_in, b_in, chunks, dst);
        }
    }

    /// Pair row from rows that reach past the input's left or right edge: both rows are copied into zero-point-padded lines (padding becomes
    /// `zp - zp = 0`) first. Out of line so that the interior's loop stays small.
    #[inline(never)]
    #[target_feature(enable = "avx2")]
    unsafe fn build_border(&self, r: isize, a_in: bool, b_in: bool, chunks: usize, dst: *mut i32) {
        let span = 16 * self.s * chunks;
        let mut lines = [[self.zp as u8; 2 * PHASE]; 2];
        for (i, (row, ok)) in [(r, a_in), (r + 1, b_in)].into_iter().enumerate() {
            let lo = self.c0.max(0);
            let hi = (self.c0 + span as isize).min(self.w as isize);
            if ok && lo < hi {
                let src = &self.plane[self.layout.in_plane_row(row as usize) * self.w..]
                    [lo as usize..hi as usize];
                lines[i][(lo - self.c0) as usize..(hi - self.c0) as usize].copy_from_slice(src);
            }
        }
        let zp = _mm256_set1_epi16(self.zp as i16);
        for j in 0..chunks {
            let c = 16 * self.s * j;
            let a = _mm256_loadu_si256_or_half(lines[0].as_ptr().add(c), self.s);
            let b = _mm256_loadu_si256_or_half(lines[1].as_ptr().add(c), self.s);
            let (a0, a1) = widen(a, self.s, zp);
            let (b0, b1) = widen(b, self.s, zp);
            interleave(a0, a1, b0, b1, self.s, dst.add(16 * j));
        }
    }
}

/// 16 bytes (`s == 1`, upper half zero) or 32 bytes (`s == 2`) from `p`.
#[inline(always)]
unsafe fn _mm256_loadu_si256_or_half(p: *const u8, s: usize) -> __m256i {
    if s == 1 {
        _mm256_castsi128_si256(_mm_loadu_si128(p as *const __m128i))
    } else {
        _mm256_loadu_si256(p as *const __m256i)
    }
}

/// Stores 16 pairs `(a[i], b[i])` of each phase (`a0`/`b0`, and `a1`/`b1` with stride 2) at
/// `dst` (phase 0) and `dst + PHASE` (phase 1).
#[inline(always)]
unsafe fn interleave(a0: __m256i, a1: __m256i, b0: __m256i, b1: __m256i, s: usize, dst: *mut i32) {
    for (ph, (a, b)) in [(a0, b0), (a1, b1)].into_iter().enumerate().take(s) {
        // unpack works within 128-bit lanes: lo = pairs 0-3, 8-11; hi = 4-7, 12-15.
        let lo = _mm256_unpacklo_epi16(a, b);
        let hi = _mm256_unpackhi_epi16(a, b);
        let out = dst.add(ph * PHASE) as *mut __m256i;
        _mm256_store_si256(out, _mm256_permute2x128_si256::<0x20>(lo, hi));
        _mm256_store_si256(out.add(1), _mm256_permute2x128_si256::<0x31>(lo, hi));
    }
}

/// `x - zp` as `i16` of 16 bytes (`s == 1`: the low half of `v`), or of the 16 even and the 16
/// odd bytes of `v` (`s == 2`).
#[inline(always)]
unsafe fn widen(v: __m256i, s: usize, zp: __m256i) -> (__m256i, __m256i) {
    if s == 1 {
        let x = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(v));
        (_mm256_sub_epi16(x, zp), _mm256_setzero_si256())
    } else {
        let even = _mm256_and_si256(v, _mm256_set1_epi16(0xFF));
        let odd = _mm256_srli_epi16::<8>(v);
        (_mm256_sub_epi16(even, zp), _mm256_sub_epi16(odd, zp))
    }
}

/// One output row segment to compute: the pair rows of its kernel row pairs, the weight
/// pairs, and where its outputs go.
pub(crate) struct Row<'a> {
    /// Pair row of each kernel row pair.
    pub(crate) rows: &'a [*const i32],
    /// Weight pairs `(w[2jp][kx], w[2jp + 1][kx])` as `i16` halves of a dword.
    pub(crate) wp: &'a [[i32; MAX_K]; MAX_K.div_ceil(2)],
    /// Kernel side.
    pub(crate) k: usize,
    /// Stride.
    pub(crate) s: usize,
    /// Bias of the channel.
    pub(crate) bias: i32,
    /// Output stage of the channel.
    pub(crate) st: &'a Stage,
    /// Destination.
    pub(crate) dst: Dst,
    /// Element of the segment's first output.
    pub(crate) at: usize,
    /// Outputs in the segment.
    pub(crate) n: usize,
}

/// The vector code that turns pair rows into an output row segment (per ISA).
pub(crate) trait RowKernel {
    /// Outputs per vector: a segment of `n` outputs reads pair entries up to `n` rounded up to
    /// a multiple of `LANES`, plus the kernel's reach.
    const LANES: usize;
    /// Builds pair row `r` of `strip` into `dst` (`strip.s` phases of [`PHASE`] entries, at
    /// least `strip.len` of them).
    unsafe fn build(strip: &Strip<'_>, r: isize, dst: *mut i32);
    /// Computes and stores the segment.
    unsafe fn row(r: &Row<'_>);
}

/// AVX2: 4 vectors of 8 outputs in registers at a time.
pub(crate) struct Avx2;

impl RowKernel for Avx2 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn build(strip: &Strip<'_>, r: isize, dst: *mut i32) {
        strip.build(r, dst)
    }
    #[inline(always)]
    unsafe fn row(r: &Row<'_>) {
        let mut e = 0;
        while e < r.n {
            match (r.n - e).div_ceil(8) {
                1 => block::<1>(r, e),
                2 => block::<2>(r, e),
                3 => block::<3>(r, e),
                _ => block::<4>(r, e),
            }
            e += 32;
        }
    }
}

/// `V` vectors of 8 outputs from entry `e0` of the segment.
#[inline(always)]
unsafe fn block<const V: usize>(r: &Row<'_>, e0: usize) {
    let mut acc = [_mm256_set1_epi32(r.bias); V];
    for (jp, &row) in r.rows.iter().enumerate() {
        for kx in 0..r.k {
            let wv = _mm256_set1_epi32(r.wp[jp][kx]);
            let src = row.add((kx % r.s) * PHASE + kx / r.s + e0);
            for v in 0..V {
                let x = _mm256_loadu_si256(src.add(8 * v) as *const __m256i);
                acc[v] = _mm256_add_epi32(acc[v], _mm256_madd_epi16(x, wv));
            }
        }
    }
    let vs = v8(r.st);
    let mut v = 0;
    while v < V {
        let left = (r.n - e0).saturating_sub(8 * v);
        if left == 0 {
            break;
        }
        let at = r.at + e0 + 8 * v;
        if v + 1 < V {
            store8x2(r.st, &vs, r.dst, at, [acc[v], acc[v + 1]], left.min(16));
            v += 2;
        } else {
            store8(r.st, &vs, r.dst, at, acc[v], left.min(8));
            v += 1;
        }
    }
}

/// The depthwise driver: per channel and strip of output columns, builds and caches pair rows
/// and hands each output row segment to `K` (inlined into the caller's target features).
/// Planes are laid out as `l` says (input rows may wrap like a ring's). Caller: shape
/// supported and buffers checked as in [`depthwise_strided`].
#[inline(always)]
pub(crate) unsafe fn drive<K: RowKernel>(
    s: &ConvShape,
    p: &QConvParams<'_>,
    input: &[u8],
    mut out: QOutput<'_>,
    l: &PlaneLayout,
) {
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    let (h, w, k, st) = (s.in_h, s.in_w, s.k_h, s.stride_h);
    let pairs = k.div_ceil(2);
    let pr = probe(&out);
    let dst = Dst::of(&mut out);
    let mut cache = Cache([0; SLOTS * 2 * PHASE]);
    for c in 0..s.in_c {
        let stage = Stage::new(p, &pr, c);
        let bias = p.bias_of(c);
        let mut wp = [[0i32; MAX_K]; MAX_K.div_ceil(2)];
        let wc = &p.weight[c * k * k..][..k * k];
        for jp in 0..pairs {
            for kx in 0..k {
                let a = wc[2 * jp * k + kx] as i16 as u16 as u32;
                let b = if 2 * jp + 1 < k {
                    wc[(2 * jp + 1) * k + kx] as i16 as u16 as u32
                } else {
                    0
                };
                wp[jp][kx] = (a | (b << 16)) as i32;
            }
        }
        let plane = &input[c * l.in_stride..][..l.in_rows * w];
        let mut x0 = 0;
        while x0 < ow {
            let n = (ow - x0).min(STRIP);
            let strip = Strip {
                plane,
                h,
                w,
                zp: p.in_zero_point,
                s: st,
                c0: (x0 * st) as isize - s.pad[1] as isize,
                len: n.next_multiple_of(K::LANES) + (k - 1) / st,
                layout: *l,
            };
            let mut tags = [isize::MIN; SLOTS];
            for oy in 0..oh {
                let r0 = (oy * st) as isize - s.pad[0] as isize;
                let mut rows = [core::ptr::null::<i32>(); MAX_K.div_ceil(2)];
                for jp in 0..pairs {
                    let r = r0 + 2 * jp as isize;
                    let slot = r.rem_euclid(SLOTS as isize) as usize;
                    let ptr = cache.0.as_mut_ptr().add(slot * 2 * PHASE);
                    if tags[slot] != r {
                        K::build(&strip, r, ptr);
                        tags[slot] = r;
                    }
                    rows[jp] = ptr;
                }
                K::row(&Row {
                    rows: &rows[..pairs],
                    wp: &wp,
                    k,
                    s: st,
                    bias,
                    st: &stage,
                    dst,
                    at: c * l.out_stride + oy * ow + x0,
                    n,
                });
            }
            x0 += n;
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn run(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>, l: &PlaneLayout) {
    drive::<Avx2>(s, p, input, out, l)
}

/// The shapes the SIMD depthwise kernels handle.
pub(crate) fn supported(s: &ConvShape, p: &QConvParams<'_>) -> bool {
    s.is_depthwise()
        && s.in_c > 0
        && s.k_h == s.k_w
        && (1..=MAX_K).contains(&s.k_h)
        && s.in_h > 0
        && s.in_w > 0
        && (0..=255).contains(&p.in_zero_point)
        && s.conv_out().is_some()
}

/// Panics unless the buffers fit a supported depthwise shape.
pub(crate) fn check(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: &QOutput<'_>) {
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    p.check_operands("qdepthwise", s, oh * ow, input.len(), out.len());
}

/// Quantized depthwise convolution (`qdepthwise`), AVX2 kernel for `groups == in_c == out_c`,
/// square kernels up to 7x7, equal strides of 1 or 2, any padding, input zero point in
/// 0..=255; anything else (or a CPU without AVX2) runs [`crate::generic_i8::qconv2d`]. Same
/// results as the reference, bit for bit.
pub fn depthwise(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    if !supported(s, p) || !crate::has_avx2() {
        return crate::generic_i8::qconv2d(s, p, input, out);
    }
    check(s, p, input, &out);
    let taken = depthwise_strided(s, p, input, out, &PlaneLayout::dense(s));
    debug_assert!(taken);
}

/// [`depthwise`] on planes laid out as `l` says (rows of larger planes, input rows wrapping
/// like a ring's: a streamed value's ring, [`crate::Kernels::qdepthwise_strided`]); the same
/// results as [`depthwise`] on each channel's rows alone. Returns `false`, writing nothing,
/// for a shape [`depthwise`] would hand to the reference, or a CPU without AVX2.
pub fn depthwise_strided(
    s: &ConvShape,
    p: &QConvParams<'_>,
    input: &[u8],
    out: QOutput<'_>,
    l: &PlaneLayout,
) -> bool {
    if !supported(s, p) || !crate::has_avx2() {
        return false;
    }
    let (oh, ow) = s.conv_out().unwrap_or((0, 0));
    p.check_weights("qdepthwise", s);
    l.check(s, oh * ow, input.len(), out.len());
    // SAFETY: buffer sizes checked above (every channel's ring of rows and output rows lie in
    // their buffers; window rows map into the ring); input reads are either bounds-checked or
    // vector loads whose whole span was checked to lie inside the row; pair entries read by a
    // segment (at most `len` per phase, `len <= PHASE`) were all built; stores cover exactly
    // the valid outputs; avx2 is present (checked above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out, l)
    }
    true
}
