//! AVX-512F element-wise kernels of the int8 path: `QuantizeLinear`, `DequantizeLinear`, the
//! quantized add and the f32 add, each equal to its scalar reference ([`crate::generic_i8`],
//! [`crate::generic::add`]) bit for bit. Vectors of 16 elements (the quantized add in exact
//! 32-bit arithmetic with AVX-512 VNNI, see [`QAdd32`]; without VNNI, or outside its ranges, 8
//! in 64-bit lanes as the reference's arithmetic); the last partial vector goes through the
//! reference's per-element function.

use core::arch::x86_64::*;

use crate::quant::{dequantize_one, lower_bound, QAddParams, QParams, RESCALE_SHIFT};
use crate::{generic, generic_i8, Act};

fn check(name: &str, got: usize, needed: usize) {
    assert!(
        got >= needed,
        "{name}: buffer of {got} elements, needs {needed}"
    );
}

/// The first `n` of 16 lanes (all of them from 16 on).
#[inline(always)]
fn lanes(n: usize) -> u16 {
    if n >= 16 {
        0xFFFF
    } else {
        ((1u32 << n) - 1) as u16
    }
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
    let scale = _mm512_set1_ps(q.scale);
    let limit = _mm512_set1_ps(1.0e6);
    let zp = _mm512_set1_epi32(q.zero_point);
    let (lo, hi) = (_mm512_setzero_si512(), _mm512_set1_epi32(255));
    let mut i = 0;
    while i < n {
        // The last vector partial: masked-off lanes are not accessed.
        let m = lanes(n - i);
        let x = _mm512_maskz_loadu_ps(m, input.as_ptr().add(i));
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
        _mm512_mask_cvtepi32_storeu_epi8(output.as_mut_ptr().add(i) as *mut _, m, y);
        i += 16;
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
    let scale = _mm512_set1_ps(q.scale);
    let zp = _mm512_set1_epi32(q.zero_point);
    let body = n - n % 16;
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
    if crate::has_avx512vnni() {
        if let Some(c) = QAdd32::new(p) {
            // SAFETY: AVX-512F/BW/VNNI are present; lengths checked.
            return unsafe { qadd_vnni(a, b, &c, output) };
        }
    }
    // SAFETY: AVX-512F is present; lengths checked.
    unsafe { qadd_avx512(a, b, p, output) }
}

/// The constants of the exact 32-bit quantized add.
///
/// With raw codes `a`, `b` (0..=255), the reference computes `floor((s + 2^19) / 2^20)` of `s =
/// (a - za) ma + (b - zb) mb` in 64 bits. Split each multiplier as `m = mh 2^20 + ml1 2^10 +
/// ml0` (`mh < 2^11`, `ml1, ml0 < 2^10`) and the constant `2^19 - za ma - zb mb = dh 2^20 + dl`
/// (`0 <= dl < 2^20`). Then `s + 2^19 = 2^20 (a mh_a + b mh_b + dh) + t` with `t = 2^10 (a
/// ml1_a + b ml1_b) + (a ml0_a + b ml0_b) + dl` in `[0, 2^30)`, so the result is `a mh_a + b
/// mh_b + dh + (t >> 20)`, every term an `i32` and each pair of products one `vpdpwssd` of the
/// `i16` pair `(a, b)` with the `i16` pair of multiplier parts.
struct QAdd32 {
    /// `(mh_a, mh_b)` as the `i16` halves of a dword.
    mh: i32,
    /// `(ml1_a, ml1_b)`.
    ml1: i32,
    /// `(ml0_a, ml0_b)`.
    ml0: i32,
    /// `dl`.
    dl: i32,
    /// `dh + out_zero_point`.
    k: i32,
    /// Lower clamp.
    lo: i32,
}

impl QAdd32 {
    /// The constants, or `None` outside the ranges of the derivation (zero points of the
    /// inputs in 0..=255, multipliers >= 0, a moderate output zero point).
    fn new(p: &QAddParams) -> Option<QAdd32> {
        let (za, zb) = (p.a_zero_point as i64, p.b_zero_point as i64);
        let (ma, mb) = (p.a_multiplier, p.b_multiplier);
        if !(0..=255).contains(&za) || !(0..=255).contains(&zb) || ma < 0 || mb < 0 {
            return None;
        }
        let d = (1i64 << (RESCALE_SHIFT - 1)) - za * ma as i64 - zb * mb as i64;
        let (dh, dl) = (d >> RESCALE_SHIFT, d & ((1 << RESCALE_SHIFT) - 1));
        // |dh| < 2^21 (|d| < 2^41), |a mh_a + b mh_b| < 2^20: the sum with k stays in i32.
        let k = dh + p.out_zero_point as i64;
        if k.abs() >= 1 << 29 {
            return None;
        }
        let pair = |x: i32, y: i32| (x as u32 | (y as u32) << 16) as i32;
        let part = |m: i32, sh: u32, bits: u32| (m >> sh) & ((1 << bits) - 1);
        Some(QAdd32 {
            mh: pair(ma >> 20, mb >> 20),
            ml1: pair(part(ma, 10, 10), part(mb, 10, 10)),
            ml0: pair(part(ma, 0, 10), part(mb, 0, 10)),
            dl: dl as i32,
            k: k as i32,
            lo: lower_bound(p.out_zero_point, p.relu),
        })
    }
}

/// 16 elements per iteration in `i32` lanes ([`QAdd32`]); the last partial vector through the
/// reference.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn qadd_vnni(a: &[u8], b: &[u8], c: &QAdd32, output: &mut [u8]) {
    let n = a.len();
    let (mh, ml1, ml0) = (
        _mm512_set1_epi32(c.mh),
        _mm512_set1_epi32(c.ml1),
        _mm512_set1_epi32(c.ml0),
    );
    let (dl, k, lo) = (
        _mm512_set1_epi32(c.dl),
        _mm512_set1_epi32(c.k),
        _mm512_set1_epi32(c.lo),
    );
    let mut i = 0;
    while i < n {
        // The last vector partial: masked-off bytes are not accessed.
        let m = lanes(n - i);
        let load = |p: *const u8| {
            let v = _mm512_maskz_loadu_epi8(m as u64, p.add(i) as *const _);
            _mm512_cvtepu8_epi32(_mm512_castsi512_si128(v))
        };
        let (x, y) = (load(a.as_ptr()), load(b.as_ptr()));
        // i16 pairs (a, b).
        let ab = _mm512_or_si512(x, _mm512_slli_epi32::<16>(y));
        let t1 = _mm512_slli_epi32::<10>(_mm512_madd_epi16(ab, ml1));
        let t = _mm512_add_epi32(_mm512_dpwssd_epi32(dl, ab, ml0), t1);
        let r = _mm512_dpwssd_epi32(k, ab, mh);
        let r = _mm512_add_epi32(r, _mm512_srli_epi32::<RESCALE_SHIFT>(t));
        // Clamp below, then unsigned saturation to 255 on the narrowing store.
        let r = _mm512_max_epi32(r, lo);
        _mm512_mask_cvtusepi32_storeu_epi8(output.as_mut_ptr().add(i) as *mut _, m, r);
        i += 16;
    }
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
pub(crate) unsafe fn act16(v: __m512, act: Act) -> __m512 {
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
    let mut i = 0;
    while i < n {
        // The last vector partial: masked-off lanes are not accessed.
        let m = lanes(n - i);
        let s = _mm512_add_ps(
            _mm512_maskz_loadu_ps(m, a.as_ptr().add(i)),
            _mm512_maskz_loadu_ps(m, b.as_ptr().add(i)),
        );
        _mm512_mask_storeu_ps(output.as_mut_ptr().add(i), m, act16(s, act));
        i += 16;
    }
}
