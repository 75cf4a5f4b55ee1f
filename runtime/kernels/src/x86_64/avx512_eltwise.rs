//! AVX-512F element-wise kernels (int8 and f32): `QuantizeLinear`, `DequantizeLinear`, the
//! quantized add and the f32 add, each equal to its scalar reference ([`crate::generic_i8`],
//! [`crate::generic::add`]) bit for bit. Vectors of 16 elements (the quantized add in exact
//! 32-bit arithmetic with AVX-512 VNNI, see [`QAdd32`]; without VNNI, or outside its ranges, 8
//! in 64-bit lanes as the reference's arithmetic); the last partial vector goes through the
//! reference's per-element function.

use core::arch::x86_64::*;

use crate::generic::check_len;
use crate::quant::{dequantize_one, lower_bound, QAddParams, QParams, RESCALE_SHIFT};
use crate::{generic, generic_i8, Act};

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
    check_len("quantize output", output.len(), input.len());
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
    check_len("dequantize output", output.len(), input.len());
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
    check_len("qadd b", b.len(), a.len());
    check_len("qadd output", output.len(), a.len());
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
/// With raw codes `a`, `b` (0..=255), the reference computes `zp + floor((s + 2^19) / 2^20)`
/// of `s = (a - za) ma + (b - zb) mb` in 64 bits, that is `floor(T / 2^20)` of the sum
/// `T = a ma + b mb + c` with `c = 2^19 - za ma - zb mb + zp 2^20`. Split each multiplier as
/// `m = mh 2^15 + ml` (`mh, ml < 2^15` for `m < 2^30`) and `c = ch 2^15 + cl` (`0 <= cl <
/// 2^15`): then `T = 2^15 H + L` with `H = ch + a mh_a + b mh_b` and `L = cl + a ml_a + b
/// ml_b` in `[0, 2^24)`, each one `vpdpwssd` of the `i16` pair `(a, b)` with the `i16` pair
/// of multiplier parts. With `L = 2^15 lh + ll` (`0 <= ll < 2^15`), the result
/// `floor((H + lh + ll / 2^15) / 2^5)` is `(H + lh) >> 5`, as `H + lh` is an integer and
/// `ll / 2^15 < 1`.
pub(crate) struct QAdd32 {
    /// `(mh_a, mh_b)` as the `i16` halves of a dword.
    pub(crate) mh: i32,
    /// `(ml_a, ml_b)`.
    pub(crate) ml: i32,
    /// `ch`.
    pub(crate) ch: i32,
    /// `cl`.
    pub(crate) cl: i32,
    /// Lower clamp.
    pub(crate) lo: i32,
}

impl QAdd32 {
    /// The constants, or `None` outside the ranges of the derivation (zero points of the
    /// inputs in 0..=255, multipliers in `0..2^30`, a moderate output zero point).
    pub(crate) fn new(p: &QAddParams) -> Option<QAdd32> {
        let (za, zb) = (p.a_zero_point as i64, p.b_zero_point as i64);
        let (ma, mb) = (p.a_multiplier, p.b_multiplier);
        let m_ok = |m: i32| (0..1 << 30).contains(&m);
        if !(0..=255).contains(&za) || !(0..=255).contains(&zb) || !m_ok(ma) || !m_ok(mb) {
            return None;
        }
        let c = (1i64 << (RESCALE_SHIFT - 1)) - za * ma as i64 - zb * mb as i64
            + ((p.out_zero_point as i64) << RESCALE_SHIFT);
        let (ch, cl) = (c >> 15, c & ((1 << 15) - 1));
        // H = ch + a mh_a + b mh_b with |a mh_a + b mh_b| < 2^24, plus lh < 2^9: stays in i32.
        if ch.abs() >= 1 << 29 {
            return None;
        }
        let pair = |x: i32, y: i32| (x as u32 | (y as u32) << 16) as i32;
        let low = |m: i32| m & ((1 << 15) - 1);
        Some(QAdd32 {
            mh: pair(ma >> 15, mb >> 15),
            ml: pair(low(ma), low(mb)),
            ch: ch as i32,
            cl: cl as i32,
            lo: lower_bound(p.out_zero_point, p.relu),
        })
    }
}

/// [`QAdd32`]'s constants broadcast to 16 lanes.
#[derive(Clone, Copy)]
pub(crate) struct QAdd16 {
    mh: __m512i,
    ml: __m512i,
    ch: __m512i,
    cl: __m512i,
    lo: __m512i,
}

impl QAdd16 {
    /// Broadcasts `c` (caller has avx512f).
    #[inline(always)]
    pub(crate) unsafe fn new(c: &QAdd32) -> QAdd16 {
        QAdd16 {
            mh: _mm512_set1_epi32(c.mh),
            ml: _mm512_set1_epi32(c.ml),
            ch: _mm512_set1_epi32(c.ch),
            cl: _mm512_set1_epi32(c.cl),
            lo: _mm512_set1_epi32(c.lo),
        }
    }
}

/// The quantized add of 16 pairs of codes (`i32` lanes holding 0..=255), as `i32` lanes
/// clamped below (at the add's lower bound) but not above: store with unsigned saturation
/// (caller has avx512f/bw/vnni).
#[inline(always)]
pub(crate) unsafe fn qadd16(c: &QAdd16, a: __m512i, b: __m512i) -> __m512i {
    // i16 pairs (a, b).
    let ab = _mm512_or_si512(a, _mm512_slli_epi32::<16>(b));
    let h = _mm512_dpwssd_epi32(c.ch, ab, c.mh);
    let l = _mm512_dpwssd_epi32(c.cl, ab, c.ml);
    let r = _mm512_add_epi32(h, _mm512_srli_epi32::<15>(l));
    let r = _mm512_srai_epi32::<{ RESCALE_SHIFT - 15 }>(r);
    _mm512_max_epi32(r, c.lo)
}

/// 16 elements per iteration in `i32` lanes ([`QAdd32`]); the last partial vector masked.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn qadd_vnni(a: &[u8], b: &[u8], c: &QAdd32, output: &mut [u8]) {
    let n = a.len();
    let c = QAdd16::new(c);
    let mut i = 0;
    while i < n {
        // The last vector partial: masked-off bytes are not accessed.
        let m = lanes(n - i);
        let load = |p: *const u8| {
            let v = _mm512_maskz_loadu_epi8(m as u64, p.add(i) as *const _);
            _mm512_cvtepu8_epi32(_mm512_castsi512_si128(v))
        };
        let r = qadd16(&c, load(a.as_ptr()), load(b.as_ptr()));
        // Unsigned saturation to 255 on the narrowing store.
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
    check_len("add b", b.len(), a.len());
    check_len("add output", output.len(), a.len());
    // SAFETY: AVX-512F is present; lengths checked.
    unsafe { add_avx512(a, b, act, output) }
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
        _mm512_mask_storeu_ps(output.as_mut_ptr().add(i), m, super::act512(s, act));
        i += 16;
    }
}
