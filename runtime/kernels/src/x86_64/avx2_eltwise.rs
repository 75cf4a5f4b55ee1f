//! AVX2 element-wise kernels of the int8 path: the quantized add, equal to its scalar
//! reference ([`crate::generic_i8::qadd`]) bit for bit. 16 elements per iteration in exact
//! 32-bit arithmetic (the derivation of [`QAdd32`], with `vpmaddwd` where AVX-512 VNNI has
//! `vpdpwssd`); parameters outside that derivation's ranges, and the last partial vector, go
//! through the reference.

use core::arch::x86_64::*;

use super::avx512_eltwise::QAdd32;
use crate::generic_i8;
use crate::quant::{QAddParams, RESCALE_SHIFT};

/// Quantized add (see [`QAddParams::apply`]).
pub fn qadd(a: &[u8], b: &[u8], p: &QAddParams, output: &mut [u8]) {
    let c = match QAdd32::new(p) {
        Some(c) if crate::has_avx2() => c,
        _ => return generic_i8::qadd(a, b, p, output),
    };
    assert!(
        b.len() >= a.len() && output.len() >= a.len(),
        "qadd: b or output shorter than a"
    );
    // SAFETY: AVX2 is present; lengths checked.
    #[allow(unsafe_code)]
    unsafe {
        qadd_avx2(a, b, &c, output)
    }
    let body = a.len() / 16 * 16;
    for j in body..a.len() {
        output[j] = p.apply(a[j], b[j]);
    }
}

/// 8 codes at `p` widened to `i32` lanes.
#[inline(always)]
unsafe fn load8(p: *const u8) -> __m256i {
    _mm256_cvtepu8_epi32(_mm_loadl_epi64(p as *const __m128i))
}

/// The body (whole vectors of 16) of [`qadd`].
#[target_feature(enable = "avx2")]
unsafe fn qadd_avx2(a: &[u8], b: &[u8], c: &QAdd32, output: &mut [u8]) {
    let (mh, ml) = (_mm256_set1_epi32(c.mh), _mm256_set1_epi32(c.ml));
    let (ch, cl) = (_mm256_set1_epi32(c.ch), _mm256_set1_epi32(c.cl));
    let (lo, hi) = (_mm256_set1_epi32(c.lo), _mm256_set1_epi32(255));
    // Eight pairs of codes -> eight results in i32 lanes, clamped to [lo, 255].
    let add8 = |x: __m256i, y: __m256i| {
        let xy = _mm256_or_si256(x, _mm256_slli_epi32::<16>(y));
        let h = _mm256_add_epi32(ch, _mm256_madd_epi16(xy, mh));
        let l = _mm256_add_epi32(cl, _mm256_madd_epi16(xy, ml));
        let r = _mm256_add_epi32(h, _mm256_srli_epi32::<15>(l));
        let r = _mm256_srai_epi32::<{ RESCALE_SHIFT as i32 - 15 }>(r);
        _mm256_min_epi32(_mm256_max_epi32(r, lo), hi)
    };
    let n = a.len() / 16 * 16;
    let (pa, pb, po) = (a.as_ptr(), b.as_ptr(), output.as_mut_ptr());
    let mut i = 0;
    while i < n {
        let r0 = add8(load8(pa.add(i)), load8(pb.add(i)));
        let r1 = add8(load8(pa.add(i + 8)), load8(pb.add(i + 8)));
        // Narrowed (the values already lie in 0..=255, so the saturating packs keep them),
        // back in element order (the packs work within 128-bit lanes).
        let w = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(r0, r1));
        let bytes = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256::<1>(w));
        _mm_storeu_si128(po.add(i) as *mut __m128i, bytes);
        i += 16;
    }
}
