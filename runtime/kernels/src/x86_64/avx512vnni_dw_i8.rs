//! Quantized depthwise convolution, AVX-512 VNNI: the pair rows, cache and driver of
//! [`super::avx2_dw_i8`] (`(x - zp)` of two kernel rows interleaved as `i16` pairs), with 16
//! outputs per vector and `vpdpwssd` (two `i16` products summed into each `i32` lane and
//! accumulated, exact) for the multiply-add; 4 vectors (64 outputs) in registers at a time.
//! Pair rows are built 32 entries at a time from AVX-512BW masked loads (zero point outside
//! the input, so no border special case) interleaved with `vpermt2w`.

#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

use super::avx2_dw_i8::{check, drive, supported, Row, RowKernel, Strip, PHASE};
use super::avx512vnni_conv1x1_i8::{mask16, mask64};
use super::qout_i8::{requant64_high, store16, v16, Dst};
use crate::quant::{QConvParams, QOutput};
use crate::ConvShape;

/// Word indices interleaving `a[0..16]` with `b[0..16]` (`vpermt2w`; 32 + i is `b[i]`).
const PAIRS_LO: [i16; 32] = pair_index(0);
/// ... and `a[16..32]` with `b[16..32]`.
const PAIRS_HI: [i16; 32] = pair_index(16);

const fn pair_index(from: i16) -> [i16; 32] {
    let mut t = [0i16; 32];
    let mut i = 0;
    while i < 16 {
        t[2 * i] = from + i as i16;
        t[2 * i + 1] = 32 + from + i as i16;
        i += 1;
    }
    t
}

/// `n` (32 or 64) bytes of input row `y` from column `c` (which may be negative or reach past
/// the end), the zero point outside the row (or for a row outside the input).
#[inline(always)]
unsafe fn load_bytes(st: &Strip<'_>, y: isize, c: isize, n: usize) -> __m512i {
    let zp = _mm512_set1_epi8(st.zp as i8);
    if y < 0 || y >= st.h as isize {
        return zp;
    }
    let lo = (-c).clamp(0, 64) as usize;
    let hi = (st.w as isize - c).clamp(0, 64) as usize;
    let m = mask64(n) & mask64(hi) & !mask64(lo);
    let row = st.plane.as_ptr().add(y as usize * st.w);
    // Masked-off lanes are not accessed (fault suppression).
    _mm512_mask_loadu_epi8(zp, m, row.wrapping_offset(c) as *const _)
}

/// Stores the 32 pairs `(a[i], b[i])` at `dst`.
#[inline(always)]
unsafe fn store_pairs(a: __m512i, b: __m512i, dst: *mut i32) {
    let lo = _mm512_loadu_si512(PAIRS_LO.as_ptr() as *const _);
    let hi = _mm512_loadu_si512(PAIRS_HI.as_ptr() as *const _);
    _mm512_store_si512(dst as *mut _, _mm512_permutex2var_epi16(a, lo, b));
    _mm512_store_si512(dst.add(16) as *mut _, _mm512_permutex2var_epi16(a, hi, b));
}

/// Builds pair row `r` of `st` (rows `r`, `r + 1`), 32 entries per phase at a time.
#[inline(always)]
unsafe fn build(st: &Strip<'_>, r: isize, dst: *mut i32) {
    let zp = _mm512_set1_epi16(st.zp as i16);
    let step = 32 * st.s;
    for j in 0..st.len.div_ceil(32) {
        let c = st.c0 + (step * j) as isize;
        let (a, b) = (load_bytes(st, r, c, step), load_bytes(st, r + 1, c, step));
        let out = dst.add(32 * j);
        if st.s == 1 {
            let a = _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm512_castsi512_si256(a)), zp);
            let b = _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm512_castsi512_si256(b)), zp);
            store_pairs(a, b, out);
        } else {
            // Even and odd columns: the low and high byte of each word.
            let low = _mm512_set1_epi16(0xFF);
            let (ae, be) = (_mm512_and_si512(a, low), _mm512_and_si512(b, low));
            let (ao, bo) = (_mm512_srli_epi16::<8>(a), _mm512_srli_epi16::<8>(b));
            store_pairs(_mm512_sub_epi16(ae, zp), _mm512_sub_epi16(be, zp), out);
            store_pairs(
                _mm512_sub_epi16(ao, zp),
                _mm512_sub_epi16(bo, zp),
                out.add(PHASE),
            );
        }
    }
}

/// AVX-512 VNNI row kernel.
struct Vnni;

impl RowKernel for Vnni {
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn build(strip: &Strip<'_>, r: isize, dst: *mut i32) {
        build(strip, r, dst)
    }
    #[inline(always)]
    unsafe fn row(r: &Row<'_>) {
        match (r.k, r.s) {
            (3, 1) => row_ks::<3, 1>(r),
            (3, 2) => row_ks::<3, 2>(r),
            (5, 1) => row_ks::<5, 1>(r),
            (5, 2) => row_ks::<5, 2>(r),
            _ => {
                let mut e = 0;
                while e < r.n {
                    match (r.n - e).div_ceil(16) {
                        1 => block::<1>(r, e),
                        2 => block::<2>(r, e),
                        3 => block::<3>(r, e),
                        _ => block::<4>(r, e),
                    }
                    e += 64;
                }
            }
        }
    }
}

#[repr(C, align(64))]
struct Spill([__m512i; 4]);

/// A segment with a `K` x `K` kernel and stride `S` known at compile time.
#[inline(always)]
unsafe fn row_ks<const K: usize, const S: usize>(r: &Row<'_>) {
    let mut e = 0;
    while e < r.n {
        match (r.n - e).div_ceil(16) {
            1 => block_ks::<1, K, S>(r, e),
            2 => block_ks::<2, K, S>(r, e),
            3 => block_ks::<3, K, S>(r, e),
            _ => block_ks::<4, K, S>(r, e),
        }
        e += 64;
    }
}

/// Entries `o..o + 16` of the 32 in `(lo, hi)` (`o` in 0..=15).
#[inline(always)]
unsafe fn shifted(lo: __m512i, hi: __m512i, o: usize) -> __m512i {
    match o {
        0 => lo,
        1 => _mm512_alignr_epi32::<1>(hi, lo),
        2 => _mm512_alignr_epi32::<2>(hi, lo),
        3 => _mm512_alignr_epi32::<3>(hi, lo),
        _ => _mm512_alignr_epi32::<4>(hi, lo),
    }
}

/// [`block`] for a `K` x `K` kernel (K <= 9) with stride `S`: each phase of a pair row is read
/// as aligned vectors once, and the taps' shifted views are built with `valignd` (unaligned
/// 64-byte loads would mostly split across cache lines).
#[inline(always)]
unsafe fn block_ks<const V: usize, const K: usize, const S: usize>(r: &Row<'_>, e0: usize) {
    let mut acc = [_mm512_set1_epi32(r.bias); V];
    for (jp, &row) in r.rows.iter().enumerate() {
        for ph in 0..S {
            let base = row.add(ph * PHASE + e0);
            // V + 1 aligned vectors: the taps reach at most (K - 1) / S <= 4 entries further.
            let mut a = [_mm512_setzero_si512(); 5];
            for (i, a) in a.iter_mut().enumerate().take(V + 1) {
                *a = _mm512_load_si512(base.add(16 * i) as *const _);
            }
            let mut kx = ph;
            while kx < K {
                let wv = _mm512_set1_epi32(r.wp[jp][kx]);
                for v in 0..V {
                    let x = shifted(a[v], a[v + 1], kx / S);
                    acc[v] = _mm512_dpwssd_epi32(acc[v], x, wv);
                }
                kx += S;
            }
        }
    }
    let mut spill = Spill([_mm512_setzero_si512(); 4]);
    for v in 0..V {
        _mm512_store_si512(spill.0.as_mut_ptr().add(v), acc[v]);
    }
    finish(r, e0, &spill.0[..V]);
}

/// `V` vectors of 16 outputs from entry `e0` of the segment.
#[inline(always)]
unsafe fn block<const V: usize>(r: &Row<'_>, e0: usize) {
    let mut acc = [_mm512_set1_epi32(r.bias); V];
    for (jp, &row) in r.rows.iter().enumerate() {
        for kx in 0..r.k {
            let wv = _mm512_set1_epi32(r.wp[jp][kx]);
            let src = row.add((kx % r.s) * PHASE + kx / r.s + e0);
            for v in 0..V {
                let x = _mm512_loadu_si512(src.add(16 * v) as *const _);
                acc[v] = _mm512_dpwssd_epi32(acc[v], x, wv);
            }
        }
    }
    // Explicit stores (constant indices) keep `acc` in registers during the accumulation.
    let mut spill = Spill([_mm512_setzero_si512(); 4]);
    for v in 0..V {
        _mm512_store_si512(spill.0.as_mut_ptr().add(v), acc[v]);
    }
    finish(r, e0, &spill.0[..V]);
}

/// Stores the vectors of a block.
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn finish(r: &Row<'_>, e0: usize, acc: &[__m512i]) {
    let n = r.n - e0;
    let vs = v16(r.st);
    if let (Dst::U8(p), true, 4) = (r.dst, r.st.high, acc.len()) {
        let b = requant64_high(&vs, [acc[0], acc[1], acc[2], acc[3]]);
        _mm512_mask_storeu_epi8(p.wrapping_add(r.at + e0) as *mut _, mask64(n), b);
        return;
    }
    for (v, &a) in acc.iter().enumerate() {
        let left = n.saturating_sub(16 * v);
        store16(r.st, &vs, r.dst, r.at + e0 + 16 * v, a, mask16(left));
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run(s: &ConvShape, p: &QConvParams<'_>, input: &[u8], out: QOutput<'_>) {
    drive::<Vnni>(s, p, input, out)
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
    // SAFETY: buffer sizes checked above; pair rows are built as for the AVX2 kernel (reads
    // bounds-checked or inside the row), a segment reads entries below
    // `n.next_multiple_of(16) + (k - 1) / s <= PHASE`, all built; stores are masked to the
    // segment's outputs; avx512f/bw/vnni are present (checked above).
    #[allow(unsafe_code)]
    unsafe {
        run(s, p, input, out)
    }
}
