//! AVX2 element-wise kernels: `QuantizeLinear`, `DequantizeLinear`, the quantized add and the
//! f32 add, each equal to its scalar reference ([`crate::generic_i8`], [`crate::generic::add`])
//! bit for bit. The quantized add does 16 elements per iteration in exact 32-bit arithmetic
//! (the derivation of [`QAdd32`], with `vpmaddwd` where AVX-512 VNNI has `vpdpwssd`);
//! parameters outside that derivation's ranges go through the reference. The last partial
//! vector of every kernel goes through the reference's per-element function.

use core::arch::x86_64::*;

use super::avx512_eltwise::QAdd32;
use crate::generic::check_len;
use crate::quant::{dequantize_one, quantize_one, QAddParams, QParams, RESCALE_SHIFT};
use crate::{generic, generic_i8, Act};

/// Sixteen `i32` lanes (two vectors, each already in `0..=255`) narrowed to bytes in element
/// order (the saturating packs keep the values; they work within 128-bit lanes, hence the
/// permute).
#[inline(always)]
unsafe fn narrow16(r0: __m256i, r1: __m256i) -> __m128i {
    let w = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(r0, r1));
    _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256::<1>(w))
}

/// `QuantizeLinear` to u8 (see [`crate::quant::quantize_one`]).
pub fn quantize(input: &[f32], q: QParams, output: &mut [u8]) {
    if !crate::has_avx2() {
        return generic_i8::quantize(input, q, output);
    }
    check_len("quantize output", output.len(), input.len());
    let body = input.len() / 16 * 16;
    // SAFETY: AVX2 is present; lengths checked.
    #[allow(unsafe_code)]
    unsafe {
        quantize_avx2(&input[..body], q, output)
    }
    for j in body..input.len() {
        output[j] = quantize_one(input[j], q);
    }
}

/// The body (whole vectors of 16; `input.len()` a multiple of 16) of [`quantize`].
#[target_feature(enable = "avx2")]
unsafe fn quantize_avx2(input: &[f32], q: QParams, output: &mut [u8]) {
    let scale = _mm256_set1_ps(q.scale);
    let limit = _mm256_set1_ps(1.0e6);
    let neg_limit = _mm256_set1_ps(-1.0e6);
    let zp = _mm256_set1_epi32(q.zero_point);
    let (lo, hi) = (_mm256_setzero_si256(), _mm256_set1_epi32(255));
    let code8 = |x: __m256| {
        let v = _mm256_div_ps(x, scale);
        // NaN -> 0 (the reference maps NaN to the zero point); +-inf and huge -> +-1e6.
        let v = _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_ORD_Q>(v, v));
        let v = _mm256_max_ps(_mm256_min_ps(v, limit), neg_limit);
        // Nearest, ties to even: the reference's rounding for |v| < 2^22.
        let r = _mm256_cvtps_epi32(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(v));
        _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(r, zp), lo), hi)
    };
    let (pi, po) = (input.as_ptr(), output.as_mut_ptr());
    let mut i = 0;
    while i < input.len() {
        let r0 = code8(_mm256_loadu_ps(pi.add(i)));
        let r1 = code8(_mm256_loadu_ps(pi.add(i + 8)));
        _mm_storeu_si128(po.add(i) as *mut __m128i, narrow16(r0, r1));
        i += 16;
    }
}

/// `DequantizeLinear` from u8.
pub fn dequantize(input: &[u8], q: QParams, output: &mut [f32]) {
    if !crate::has_avx2() {
        return generic_i8::dequantize(input, q, output);
    }
    check_len("dequantize output", output.len(), input.len());
    let body = input.len() / 8 * 8;
    // SAFETY: AVX2 is present; lengths checked.
    #[allow(unsafe_code)]
    unsafe {
        dequantize_avx2(&input[..body], q, output)
    }
    for j in body..input.len() {
        output[j] = dequantize_one(input[j], q);
    }
}

/// The body (whole vectors of 8; `input.len()` a multiple of 8) of [`dequantize`].
#[target_feature(enable = "avx2")]
unsafe fn dequantize_avx2(input: &[u8], q: QParams, output: &mut [f32]) {
    let scale = _mm256_set1_ps(q.scale);
    let zp = _mm256_set1_epi32(q.zero_point);
    let mut i = 0;
    while i < input.len() {
        let d = _mm256_cvtepi32_ps(_mm256_sub_epi32(load8(input.as_ptr().add(i)), zp));
        _mm256_storeu_ps(output.as_mut_ptr().add(i), _mm256_mul_ps(d, scale));
        i += 8;
    }
}

/// f32 `output = act(a + b)`.
pub fn add(a: &[f32], b: &[f32], act: Act, output: &mut [f32]) {
    if !crate::has_avx2() {
        return generic::add(a, b, act, output);
    }
    check_len("add b", b.len(), a.len());
    check_len("add output", output.len(), a.len());
    let body = a.len() / 8 * 8;
    // SAFETY: AVX2 is present; lengths checked.
    #[allow(unsafe_code)]
    unsafe {
        add_avx2(&a[..body], b, act, output)
    }
    generic::add(
        &a[body..],
        &b[body..a.len()],
        act,
        &mut output[body..a.len()],
    );
}

/// The body (whole vectors of 8; `a.len()` a multiple of 8) of [`add`].
#[target_feature(enable = "avx2")]
unsafe fn add_avx2(a: &[f32], b: &[f32], act: Act, output: &mut [f32]) {
    let mut i = 0;
    while i < a.len() {
        let s = _mm256_add_ps(
            _mm256_loadu_ps(a.as_ptr().add(i)),
            _mm256_loadu_ps(b.as_ptr().add(i)),
        );
        _mm256_storeu_ps(output.as_mut_ptr().add(i), super::act256(s, act));
        i += 8;
    }
}

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
        _mm_storeu_si128(po.add(i) as *mut __m128i, narrow16(r0, r1));
        i += 16;
    }
}
