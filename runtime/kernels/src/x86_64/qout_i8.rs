//! Output stage of the x86 int8 kernels: the `i32` accumulators of one output channel turned
//! into the destination's values, 16 (AVX-512) or 8 (AVX2) lanes at a time, with exactly the
//! integers and floats of [`OutStage::u8`] / [`OutStage::f32`] and [`Act::apply`].
//!
//! `u8` requantization is `zp + ((acc * m + 2^(s-1)) >> s)` clamped to `lo..=255`. The zero
//! point is folded into the rounding constant (`+ zp << s`, exact because it is a multiple of
//! `2^s`); with `0 <= zp <= 255` and `s <= 53` the 64-bit sum `y` stays below `2^63`.
//!
//! For the usual multipliers (below 1/4, so `s >= 33`; the "high" stages) only the high dword
//! `hi = floor(p / 2^32)` of the product `p = acc * m` is needed: with `k = s - 32 >= 1`, `p =
//! hi 2^32 + lo` (`0 <= lo < 2^32`) and the integer `X = hi + 2^(k-1) + zp 2^k`, the result is
//! `floor((X + lo / 2^32) / 2^k) = floor(X / 2^k)`, because `X + lo / 2^32 < X + 1` and no
//! multiple of `2^k` lies in `(X, X + 1)`. So the rounding constant is added to `hi` in 32-bit
//! lanes (`|hi| < 2^30` and the constant is below `2^29`: no overflow) and shifted by `k`.
//! Larger multipliers shift the 64-bit lanes. Other channels (never produced by
//! [`crate::quant::Requant::for_conv`] for sane scales) take the scalar [`OutStage::u8`] per
//! element.

#![allow(clippy::too_many_arguments)]

use core::arch::x86_64::*;

use crate::quant::{OutStage, QConvParams, QOutput};
use crate::Act;

/// Destination of a quantized kernel: base pointer of `[out_c, out_h, out_w]` and its kind.
#[derive(Clone, Copy)]
pub(crate) enum Dst {
    /// `u8` output.
    U8(*mut u8),
    /// `f32` output with a fused activation.
    F32(*mut f32, Act),
}

impl Dst {
    /// The base pointer of `out`'s destination. `out` must stay alive (and otherwise
    /// untouched) while the pointer is used.
    pub(crate) fn of(out: &mut QOutput<'_>) -> Dst {
        match out {
            QOutput::U8 { dst, .. } => Dst::U8(dst.as_mut_ptr()),
            QOutput::F32 { dst, act } => Dst::F32(dst.as_mut_ptr(), *act),
        }
    }
}

/// An output channel's stage with its vector constants.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stage {
    /// The scalar stage (reference semantics; used by the slow path).
    pub(crate) st: OutStage,
    /// The vector `u8` path applies (`0 <= zp <= 255`, `shift <= 53`).
    pub(crate) fast: bool,
    /// ... and `shift >= 33` (32-bit tail).
    pub(crate) high: bool,
    /// `2^(shift-1) + zp * 2^shift`.
    pub(crate) round: i64,
    /// High stages: `2^(shift-33) + zp * 2^(shift-32)`, the rounding constant of the high
    /// dword.
    pub(crate) round32: i32,
}

impl Stage {
    /// Stage of output channel `oc`.
    #[inline]
    pub(crate) fn new(p: &QConvParams<'_>, out: &QOutput<'_>, oc: usize) -> Stage {
        let st = OutStage::new(p, out, oc);
        let s = st.requant.shift;
        let fast = (0..=255).contains(&st.zero_point) && s <= 53;
        let round = if fast {
            (1i64 << (s - 1)) + ((st.zero_point as i64) << s)
        } else {
            0
        };
        let high = fast && s >= 33;
        let round32 = if high {
            (1i32 << (s - 33)) + (st.zero_point << (s - 32))
        } else {
            0
        };
        Stage {
            st,
            fast,
            high,
            round,
            round32,
        }
    }
}

/// A probe with `out`'s output parameters and an empty destination (to build stages while the
/// destination itself is held as a raw pointer).
pub(crate) fn probe<'a>(out: &QOutput<'_>) -> QOutput<'a> {
    match out {
        QOutput::U8 { q, relu, .. } => QOutput::U8 {
            q: *q,
            relu: *relu,
            dst: &mut [],
        },
        QOutput::F32 { act, .. } => QOutput::F32 {
            act: *act,
            dst: &mut [],
        },
    }
}

/// Scalar finish of `n` accumulators to `dst` at element `at`.
#[inline(always)]
pub(crate) unsafe fn finish_scalar(st: &OutStage, dst: Dst, at: usize, acc: &[i32]) {
    match dst {
        Dst::U8(p) => {
            for (i, &a) in acc.iter().enumerate() {
                *p.add(at + i) = st.u8(a);
            }
        }
        Dst::F32(p, act) => {
            for (i, &a) in acc.iter().enumerate() {
                *p.add(at + i) = act.apply(st.f32(a));
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// AVX-512 (16 lanes)

/// Vector constants of one channel's stage, 16 lanes.
#[derive(Clone, Copy)]
pub(crate) struct V16 {
    m: __m512i,
    round: __m512i,
    round32: __m512i,
    shift: __m128i,
    shift32: __m128i,
    lo: __m512i,
    lo32: __m512i,
    lo8: __m512i,
    /// Dequantization scale (f32 output).
    pub(crate) scale: __m512,
}

/// Broadcasts a stage's constants (caller has avx512f).
#[inline(always)]
pub(crate) unsafe fn v16(s: &Stage) -> V16 {
    V16 {
        m: _mm512_set1_epi64(s.st.requant.multiplier as i64),
        round: _mm512_set1_epi64(s.round),
        round32: _mm512_set1_epi32(s.round32),
        shift: _mm_cvtsi64_si128(s.st.requant.shift as i64),
        shift32: _mm_cvtsi64_si128(s.st.requant.shift.saturating_sub(32) as i64),
        lo: _mm512_set1_epi64(s.st.lo as i64),
        lo32: _mm512_set1_epi32(s.st.lo),
        lo8: _mm512_set1_epi8(s.st.lo as u8 as i8),
        scale: _mm512_set1_ps(s.st.scale),
    }
}

/// `zp + r` of 16 accumulators for a stage with `s.high`, as `i32` lanes, not clamped.
#[inline(always)]
pub(crate) unsafe fn requant16_high(v: &V16, acc: __m512i) -> __m512i {
    let even = _mm512_mul_epi32(acc, v.m);
    let odd = _mm512_mul_epi32(_mm512_srli_epi64::<32>(acc), v.m);
    // High dwords floor(p / 2^32): even lanes moved down from even's odd dwords, odd lanes
    // already in place in odd; then + round32 and >> (s - 32) (see the module doc).
    let hi = _mm512_mask_shuffle_epi32::<0b11_11_01_01>(odd, 0x5555, even);
    _mm512_sra_epi32(_mm512_add_epi32(hi, v.round32), v.shift32)
}

/// The `u8` codes of 64 accumulators (4 vectors of one channel, in order) for a stage with
/// `s.high`, as 64 bytes.
#[inline(always)]
pub(crate) unsafe fn requant64_high(v: &V16, acc: [__m512i; 4]) -> __m512i {
    let r = [
        requant16_high(v, acc[0]),
        requant16_high(v, acc[1]),
        requant16_high(v, acc[2]),
        requant16_high(v, acc[3]),
    ];
    pack64(v, r)
}

/// Clamps 4 vectors of [`requant16_high`] results to `lo..=255` and packs them, in order, into
/// 64 bytes.
#[inline(always)]
pub(crate) unsafe fn pack64(v: &V16, r: [__m512i; 4]) -> __m512i {
    // Saturating packs, then max with lo: clamp(x, lo, 255).
    _mm512_max_epu8(pack64_raw(r), v.lo8)
}

/// Packs 4 vectors of `i32` lanes, in order, into 64 bytes, saturated to `0..=255`.
#[inline(always)]
pub(crate) unsafe fn pack64_raw(r: [__m512i; 4]) -> __m512i {
    // Saturating packs (to i16, then to u8: negative -> 0, large -> 255).
    let ab = _mm512_packs_epi32(r[0], r[1]);
    let cd = _mm512_packs_epi32(r[2], r[3]);
    let b = _mm512_packus_epi16(ab, cd);
    // 128-bit lane l holds dwords [a 4l.., b 4l.., c 4l.., d 4l..]: gather vector m's dword l
    // (dword 4l + m) into position 4m + l.
    let idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    _mm512_permutexvar_epi32(idx, b)
}

/// The `u8` codes of 16 accumulators as `i32` lanes, not yet clamped above (fast stages
/// only; store with unsigned saturation).
#[inline(always)]
pub(crate) unsafe fn requant16(s: &Stage, v: &V16, acc: __m512i) -> __m512i {
    let even = _mm512_add_epi64(_mm512_mul_epi32(acc, v.m), v.round);
    let odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64::<32>(acc), v.m), v.round);
    if s.high {
        _mm512_max_epi32(requant16_high(v, acc), v.lo32)
    } else {
        let even = _mm512_max_epi64(_mm512_sra_epi64(even, v.shift), v.lo);
        let odd = _mm512_max_epi64(_mm512_sra_epi64(odd, v.shift), v.lo);
        let top = _mm512_set1_epi64(255);
        let even = _mm512_min_epi64(even, top);
        let odd = _mm512_min_epi64(odd, top);
        // Lane 2i from even's qword i, lane 2i + 1 from odd's.
        _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd))
    }
}

/// Finishes 16 accumulators of channel stage `s` into `dst` at element `at`, lanes of `mask`
/// only (caller has avx512f and guarantees the masked elements are inside the destination).
#[inline(always)]
pub(crate) unsafe fn store16(s: &Stage, v: &V16, dst: Dst, at: usize, acc: __m512i, mask: u16) {
    match dst {
        Dst::U8(p) => {
            if s.fast {
                let r = requant16(s, v, acc);
                _mm512_mask_cvtusepi32_storeu_epi8(p.wrapping_add(at) as *mut _, mask, r);
            } else {
                let mut a = [0i32; 16];
                _mm512_storeu_si512(a.as_mut_ptr() as *mut _, acc);
                for (i, &x) in a.iter().enumerate() {
                    if mask >> i & 1 != 0 {
                        *p.add(at + i) = s.st.u8(x);
                    }
                }
            }
        }
        Dst::F32(p, act) => {
            let f = super::act512(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), v.scale), act);
            _mm512_mask_storeu_ps(p.wrapping_add(at), mask, f);
        }
    }
}

// ------------------------------------------------------------------------------------------
// AVX2 (8 lanes)

/// `2^62`: added before the logical shift so that the shifted value is non-negative (AVX2 has
/// no 64-bit arithmetic shift); its shifted image `2^(62-s)` is subtracted afterwards.
const BIAS62: i64 = 1 << 62;

/// Vector constants of one channel's stage, 8 lanes.
#[derive(Clone, Copy)]
pub(crate) struct V8 {
    m: __m256i,
    round: __m256i,
    shift: __m128i,
    lo: __m256i,
    hi: __m256i,
    off: __m256i,
    scale: __m256,
}

/// Broadcasts a stage's constants (caller has avx2).
#[inline(always)]
pub(crate) unsafe fn v8(s: &Stage) -> V8 {
    let sh = s.st.requant.shift;
    if s.high {
        V8 {
            m: _mm256_set1_epi64x(s.st.requant.multiplier as i64),
            round: _mm256_set1_epi64x(s.round),
            shift: _mm_cvtsi64_si128(sh as i64 - 32),
            lo: _mm256_set1_epi32(s.st.lo),
            hi: _mm256_set1_epi32(255),
            off: _mm256_setzero_si256(),
            scale: _mm256_set1_ps(s.st.scale),
        }
    } else {
        // After `(p + round + 2^62) >>> s` the value is `zp + r + 2^(62 - s)`.
        let off = if s.fast { 1i64 << (62 - sh) } else { 0 };
        V8 {
            m: _mm256_set1_epi64x(s.st.requant.multiplier as i64),
            round: _mm256_set1_epi64x(s.round.wrapping_add(BIAS62)),
            shift: _mm_cvtsi64_si128(sh as i64),
            lo: _mm256_set1_epi64x(off + s.st.lo as i64),
            hi: _mm256_set1_epi64x(off + 255),
            off: _mm256_set1_epi32(off as i32),
            scale: _mm256_set1_ps(s.st.scale),
        }
    }
}

/// The `u8` codes of 8 accumulators as `i32` lanes (fast stages only).
#[inline(always)]
pub(crate) unsafe fn requant8(s: &Stage, v: &V8, acc: __m256i) -> __m256i {
    let even = _mm256_mul_epi32(acc, v.m);
    let odd = _mm256_mul_epi32(_mm256_srli_epi64::<32>(acc), v.m);
    if s.high {
        // y = p + round < 2^63: its high dword is floor(y / 2^32); then >> (s - 32).
        let even = _mm256_add_epi64(even, v.round);
        let odd = _mm256_add_epi64(odd, v.round);
        let hi = _mm256_blend_epi32::<0b1010_1010>(_mm256_srli_epi64::<32>(even), odd);
        let r = _mm256_sra_epi32(hi, v.shift);
        return _mm256_min_epi32(_mm256_max_epi32(r, v.lo), v.hi);
    }
    // |p| < 2^62 and round < 2^62, so p + round + 2^62 is in [0, 2^64): a logical shift.
    let even = _mm256_srl_epi64(_mm256_add_epi64(even, v.round), v.shift);
    let odd = _mm256_srl_epi64(_mm256_add_epi64(odd, v.round), v.shift);
    // Both are below 2^63 now: signed 64-bit compares clamp them to [off + lo, off + 255].
    let clamp = |x: __m256i| {
        let x = _mm256_blendv_epi8(x, v.hi, _mm256_cmpgt_epi64(x, v.hi));
        _mm256_blendv_epi8(x, v.lo, _mm256_cmpgt_epi64(v.lo, x))
    };
    let (even, odd) = (clamp(even), clamp(odd));
    let both = _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd));
    _mm256_sub_epi32(both, v.off)
}

/// The `f32` outputs of 8 accumulators (activation applied).
#[inline(always)]
pub(crate) unsafe fn dequant8(v: &V8, acc: __m256i, act: Act) -> __m256 {
    super::act256(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), v.scale), act)
}

/// Packs 8 `i32` lanes holding values in `0..=255` into 8 bytes (low half of the result).
#[inline(always)]
pub(crate) unsafe fn pack8(x: __m256i) -> __m128i {
    let w = _mm_packs_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256::<1>(x));
    _mm_packus_epi16(w, w)
}

/// Packs two vectors of 8 `i32` lanes holding values in `0..=255` into 16 bytes, in order.
#[inline(always)]
pub(crate) unsafe fn pack16(a: __m256i, b: __m256i) -> __m128i {
    // i16 [a0-3, b0-3 | a4-7, b4-7] -> [a0-3, a4-7 | b0-3, b4-7] -> u8 per 128-bit lane ->
    // the low 8 bytes of each lane.
    let w = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(a, b));
    let u = _mm256_packus_epi16(w, w);
    _mm256_castsi256_si128(_mm256_permute4x64_epi64::<0b00_00_10_00>(u))
}

/// Finishes the first `n` (1..=16) of 16 accumulators (two vectors, in order) of channel stage
/// `s` into `dst` at element `at`: one 16-byte store for a whole `u8` block, else
/// [`store8`] per vector (caller as for [`store8`]).
#[inline(always)]
pub(crate) unsafe fn store8x2(s: &Stage, v: &V8, dst: Dst, at: usize, acc: [__m256i; 2], n: usize) {
    if let (Dst::U8(p), true, 16) = (dst, s.fast, n) {
        let b = pack16(requant8(s, v, acc[0]), requant8(s, v, acc[1]));
        _mm_storeu_si128(p.add(at) as *mut __m128i, b);
        return;
    }
    store8(s, v, dst, at, acc[0], n.min(8));
    if n > 8 {
        store8(s, v, dst, at + 8, acc[1], n - 8);
    }
}

/// Finishes the first `n` (1..=8) of 8 accumulators of channel stage `s` into `dst` at element
/// `at` (caller has avx2 and guarantees those elements are inside the destination).
#[inline(always)]
pub(crate) unsafe fn store8(s: &Stage, v: &V8, dst: Dst, at: usize, acc: __m256i, n: usize) {
    match dst {
        Dst::U8(p) => {
            if s.fast {
                let b = pack8(requant8(s, v, acc));
                if n == 8 {
                    _mm_storel_epi64(p.add(at) as *mut _, b);
                } else {
                    let mut t = [0u8; 16];
                    _mm_storeu_si128(t.as_mut_ptr() as *mut _, b);
                    core::ptr::copy_nonoverlapping(t.as_ptr(), p.add(at), n);
                }
            } else {
                let mut a = [0i32; 8];
                _mm256_storeu_si256(a.as_mut_ptr() as *mut _, acc);
                finish_scalar(&s.st, dst, at, &a[..n]);
            }
        }
        Dst::F32(p, act) => {
            let f = dequant8(v, acc, act);
            if n == 8 {
                _mm256_storeu_ps(p.add(at), f);
            } else {
                let mut t = [0f32; 8];
                _mm256_storeu_ps(t.as_mut_ptr(), f);
                core::ptr::copy_nonoverlapping(t.as_ptr(), p.add(at), n);
            }
        }
    }
}
