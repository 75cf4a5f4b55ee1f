//! Quantized depthwise convolution, AVX-512 VNNI: the pair rows, cache and driver of
//! [`super::avx2_dw_i8`] (`(x - zp)` of two kernel rows interleaved as `i16` pairs), with 16
//! outputs per vector and `vpdpwssd` (two `i16` products summed into each `i32` lane and
//! accumulated, exact) for the multiply-add; 4 vectors (64 outputs) in registers at a time.
//! Pair-row chunks that reach past the input's edges load their bytes with AVX-512BW masked
//! loads (zero point outside).

#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

use super::avx2_dw_i8::{check, drive, supported, Row, RowKernel, PHASE};
use super::avx512vnni_conv1x1_i8::{mask16, mask64};
use super::qout_i8::{requant64_high, store16, v16, Dst};
use crate::quant::{QConvParams, QOutput};
use crate::ConvShape;

/// AVX-512 VNNI row kernel.
struct Vnni;

impl RowKernel for Vnni {
    const LANES: usize = 16;
    const MASKED: bool = true;
    #[inline(always)]
    unsafe fn load_border(row: *const u8, c: isize, w: usize, n: usize, zp: u8) -> __m256i {
        // Lanes i with 0 <= c + i < w, i < n; masked-off lanes are not accessed.
        let lo = (-c).clamp(0, 64) as usize;
        let hi = (w as isize - c).clamp(0, 64) as usize;
        let m = mask64(n) & mask64(hi) & !mask64(lo);
        let v = _mm512_mask_loadu_epi8(
            _mm512_set1_epi8(zp as i8),
            m,
            row.wrapping_offset(c) as *const _,
        );
        _mm512_castsi512_si256(v)
    }
    #[inline(always)]
    unsafe fn row(r: &Row<'_>) {
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

#[repr(C, align(64))]
struct Spill([__m512i; 4]);

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
