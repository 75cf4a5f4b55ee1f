//! AVX-512F element-wise kernels of the int8 path: `QuantizeLinear`, `DequantizeLinear`, the
//! quantized add and the f32 add, each equal to its scalar reference ([`crate::generic_i8`],
//! [`crate::generic::add`]) bit for bit. Vectors of 16 (f32, quantize) or 8 (add, in 64-bit
//! lanes, as the reference's arithmetic) elements; the last partial vector goes through the
//! reference's per-element function.

use core::arch::x86_64::*;

use crate::quant::{dequantize_one, lower_bound, quantize_one, QAddParams, QParams, RESCALE_SHIFT};
use crate::{generic, generic_i8, Act};

fn check(name: &str, got: usize, needed: usize) {
    assert!(
        got >= needed,
        "{name}: buffer of {got} elements, needs {needed}"
    );
}

/// `QuantizeLinear` to u8 (see [`crate::quant::quantize_one`]).
pub fn quantize(input: &[f32], q: QParams, output: &mut [u8]) {
    if !crate::has_avx512f() {
        return generic_i8::quantize(input, q, output);
    }
    check("quantize output", output.len(), input.len());
    // SAFETY: AVX-512F is present (checked above); lengths checked.
    unsafe { quantize_avx512(input, q, output) }
}

#[target_feature(enable = "avx512f")]
unsafe fn quantize_avx512(input: &[f32], q: QParams, output: &mut [u8]) {
    let n = input.len();
    let body = n - n % 16;
    let scale = _mm512_set1_ps(q.scale);
    let limit = _mm512_set1_ps(1.0e6);
    let zp = _mm512_set1_epi32(q.zero_point);
    let (lo, hi) = (_mm512_setzero_si512(), _mm512_set1_epi32(255));
    let mut i = 0;
    while i < body {
        // SAFETY: i + 16 <= n; unaligned load/store.
        let x = _mm512_loadu_ps(input.as_ptr().add(i));
        let v = _mm512_div_ps(x, scale);
        // NaN -> 0 (the reference maps NaN to the zero point); +-inf and huge -> +-1e6.
        let ordered = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(v, v);
        let v = _mm512_maskz_mov_ps(ordered, v);
        let v = _mm512_max_ps(
            _mm512_min_ps(v, limit),
            _mm512_sub_ps(_mm512_setzero_ps(), limit),
        );
        // Nearest, ties to even: the reference's rounding for |v| < 2^22.
        let r = _mm512_cvtps_epi32(_mm512_roundscale_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(v));
        let y = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(r, zp), lo), hi);
        _mm_storeu_si128(
            output.as_mut_ptr().add(i) as *mut __m128i,
            _mm512_cvtepi32_epi8(y),
        );
        i += 16;
    }
    for j in body..n {
        output[j] = quantize_one(input[j], q);
    }
}

/// `DequantizeLinear` from u8.
pub fn dequantize(input: &[u8], q: QParams, output: &mut [f32]) {
    if !crate::has_avx512f() {
        return generic_i8::dequantize(input, q, output);
    }
    check("dequantize output", output.len(), input.len());
    // SAFETY: AVX-512F is present; lengths checked.
    unsafe { dequantize_avx512(input, q, output) }
}

#[target_feature(enable = "avx512f")]
unsafe fn dequantize_avx512(input: &[u8], q: QParams, output: &mut [f32]) {
    let n = input.len();
    let body = n - n % 16;
    let scale = _mm512_set1_ps(q.scale);
    let zp = _mm512_set1_epi32(q.zero_point);
    let mut i = 0;
    while i < body {
        // SAFETY: i + 16 <= n.
        let x = _mm512_cvtepu8_epi32(_mm_loadu_si128(input.as_ptr().add(i) as *const __m128i));
        let d = _mm512_cvtepi32_ps(_mm512_sub_epi32(x, zp));
        _mm512_storeu_ps(output.as_mut_ptr().add(i), _mm512_mul_ps(d, scale));
        i += 16;
    }
    for j in body..n {
        output[j] = dequantize_one(input[j], q);
    }
}

/// Quantized add (see [`QAddParams::apply`]).
pub fn qadd(a: &[u8], b: &[u8], p: &QAddParams, output: &mut [u8]) {
    if !crate::has_avx512f() {
        return generic_i8::qadd(a, b, p, output);
    }
    check("qadd b", b.len(), a.len());
    check("qadd output", output.len(), a.len());
    // SAFETY: AVX-512F is present; lengths checked.
    unsafe { qadd_avx512(a, b, p, output) }
}

#[target_feature(enable = "avx512f")]
unsafe fn qadd_avx512(a: &[u8], b: &[u8], p: &QAddParams, output: &mut [u8]) {
    let n = a.len();
    let body = n - n % 8;
    let (za, zb) = (
        _mm512_set1_epi64(p.a_zero_point as i64),
        _mm512_set1_epi64(p.b_zero_point as i64),
    );
    let (ma, mb) = (
        _mm512_set1_epi64(p.a_multiplier as i64),
        _mm512_set1_epi64(p.b_multiplier as i64),
    );
    let round = _mm512_set1_epi64(1i64 << (RESCALE_SHIFT - 1));
    let zo = _mm512_set1_epi64(p.out_zero_point as i64);
    let lo = _mm512_set1_epi64(lower_bound(p.out_zero_point, p.relu) as i64);
    let hi = _mm512_set1_epi64(255);
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 <= n; 8-byte unaligned loads.
        let x = _mm512_cvtepu8_epi64(_mm_loadl_epi64(a.as_ptr().add(i) as *const __m128i));
        let y = _mm512_cvtepu8_epi64(_mm_loadl_epi64(b.as_ptr().add(i) as *const __m128i));
        // Signed 32 x 32 -> 64-bit products of the low halves: the reference's i64 arithmetic.
        let s = _mm512_add_epi64(
            _mm512_mul_epi32(_mm512_sub_epi64(x, za), ma),
            _mm512_mul_epi32(_mm512_sub_epi64(y, zb), mb),
        );
        let r = _mm512_srai_epi64::<RESCALE_SHIFT>(_mm512_add_epi64(s, round));
        let r = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(r, zo), lo), hi);
        _mm_storel_epi64(
            output.as_mut_ptr().add(i) as *mut __m128i,
            _mm512_cvtepi64_epi8(r),
        );
        i += 8;
    }
    for j in body..n {
        output[j] = p.apply(a[j], b[j]);
    }
}

/// f32 `output = act(a + b)`.
pub fn add(a: &[f32], b: &[f32], act: Act, output: &mut [f32]) {
    if !crate::has_avx512f() {
        return generic::add(a, b, act, output);
    }
    check("add b", b.len(), a.len());
    check("add output", output.len(), a.len());
    // SAFETY: AVX-512F is present; lengths checked.
    unsafe { add_avx512(a, b, act, output) }
}

/// An activation on 16 lanes, exactly [`Act::apply`] (NaN and -0 included).
#[inline(always)]
unsafe fn act16(v: __m512, act: Act) -> __m512 {
    match act {
        Act::None => v,
        Act::Relu => _mm512_max_ps(v, _mm512_setzero_ps()),
        Act::LeakyRelu(a) => {
            let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, _mm512_setzero_ps());
            _mm512_mask_mul_ps(v, neg, v, _mm512_set1_ps(a))
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn add_avx512(a: &[f32], b: &[f32], act: Act, output: &mut [f32]) {
    let n = a.len();
    let body = n - n % 16;
    let mut i = 0;
    while i < body {
        // SAFETY: i + 16 <= n.
        let s = _mm512_add_ps(
            _mm512_loadu_ps(a.as_ptr().add(i)),
            _mm512_loadu_ps(b.as_ptr().add(i)),
        );
        _mm512_storeu_ps(output.as_mut_ptr().add(i), act16(s, act));
        i += 16;
    }
    for j in body..n {
        output[j] = act.apply(a[j] + b[j]);
    }
}
