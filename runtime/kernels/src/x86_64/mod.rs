//! x86-64 kernels (AVX2 + FMA, AVX-512F), installed by [`crate::Kernels::best`] when the CPU has
//! the features. Each public entry checks the features itself (a cached flag) and falls back to
//! the generic kernel without them, so calling one directly is always sound.
//!
//! Every kernel computes each output element as `bias`, then one fused multiply-add per term in
//! the reference order (input channel, kernel row, kernel column, ascending), whichever lanes or
//! tail path it takes. An element's value therefore never depends on its position in the image,
//! which keeps tiled output bit-identical to whole-frame output. Results differ from the scalar
//! reference (separate multiply and add) by rounding only. Zero padding: input rows outside the
//! plane are skipped, as in the reference; input columns outside a row are either skipped
//! (scalar paths) or read as zeros (zero-padded copies, masked loads) and multiplied in, which
//! leaves the sum unchanged (`fma(w, 0, a) == a` for finite `w`; at most a `-0.0` sum becomes
//! `+0.0`). A kernel treats a given tap the same way wherever the element lies, and the AVX2
//! and AVX-512 kernels of one op give equal values (tested).
//!
//! The int8 kernels (`*_i8`: AVX2, and AVX-512 VNNI/BW for `vpdpbusd` / `vpdpwssd`) accumulate
//! integers exactly and equal [`crate::generic_i8`] bit for bit, for `u8` and `f32` outputs
//! alike (their shared output stage is in `qout_i8`). `f16c_cvt` widens f16 weights; `peak`
//! holds the register-resident throughput loops the benches compare against.

pub mod avx2_conv1x1_f32;
pub mod avx2_conv1x1_i8;
pub mod avx2_conv_f32;
pub mod avx2_conv_i8;
pub mod avx2_convt2x2_f32;
pub mod avx2_convt2x2_i8;
pub mod avx2_dw_f32;
pub mod avx2_dw_i8;
pub mod avx2_eltwise;
pub mod avx512_conv1x1_f32;
pub mod avx512_conv_f32;
pub mod avx512_convt2x2_f32;
pub mod avx512_dw_f32;
pub mod avx512_eltwise;
pub mod avx512vnni_conv1x1_i8;
pub mod avx512vnni_conv_i8;
pub mod avx512vnni_convt2x2_i8;
pub mod avx512vnni_dw_i8;
pub mod f16c_cvt;
mod lanes;
pub mod peak;
pub(crate) mod qout_i8;

/// Scalar fused multiply-add `a * b + c` (one rounding), for tails and borders; callers run
/// with the `fma` target feature. (`f32::mul_add` lives in std.)
#[inline(always)]
pub(crate) unsafe fn fma1(a: f32, b: f32, c: f32) -> f32 {
    use core::arch::x86_64::*;
    _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)))
}

/// An activation on 8 lanes (AVX).
#[inline(always)]
pub(crate) unsafe fn act256(
    v: core::arch::x86_64::__m256,
    act: crate::Act,
) -> core::arch::x86_64::__m256 {
    use core::arch::x86_64::*;
    match act {
        crate::Act::None => v,
        crate::Act::Relu => _mm256_max_ps(v, _mm256_setzero_ps()),
        crate::Act::LeakyRelu(a) => {
            let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(v, _mm256_setzero_ps());
            _mm256_blendv_ps(v, _mm256_mul_ps(v, _mm256_set1_ps(a)), neg)
        }
    }
}

/// An activation on 16 lanes (AVX-512F), exactly [`crate::Act::apply`] (NaN and -0
/// included: `max(v, +0)` gives +0 for v <= 0, as `x > 0 ? x : 0`).
#[inline(always)]
pub(crate) unsafe fn act512(
    v: core::arch::x86_64::__m512,
    act: crate::Act,
) -> core::arch::x86_64::__m512 {
    use core::arch::x86_64::*;
    match act {
        crate::Act::None => v,
        crate::Act::Relu => _mm512_max_ps(v, _mm512_setzero_ps()),
        crate::Act::LeakyRelu(a) => {
            let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(v, _mm512_setzero_ps());
            _mm512_mask_mul_ps(v, neg, v, _mm512_set1_ps(a))
        }
    }
}

/// Bits `lo..hi` of a 16-lane mask (empty when `hi <= lo`); `lo`, `hi` clamped to 0..=16.
#[inline(always)]
pub(crate) fn lanes16(lo: isize, hi: isize) -> u16 {
    let lo = lo.clamp(0, 16) as u32;
    let hi = hi.clamp(0, 16) as u32;
    if hi <= lo {
        0
    } else {
        (((1u32 << (hi - lo)) - 1) << lo) as u16
    }
}

/// The lanes `l` of a 16-lane vector whose input column `start + l` lies in `0..width`.
#[inline(always)]
pub(crate) fn row_mask16(start: isize, width: usize) -> u16 {
    lanes16(-start, width as isize - start)
}

/// An AVX2 lane mask (all bits set in lanes `lo..hi`, clamped to 0..=8) for
/// `_mm256_maskload_ps` / `_mm256_maskstore_ps`.
#[inline(always)]
pub(crate) unsafe fn lanes8(lo: isize, hi: isize) -> core::arch::x86_64::__m256i {
    use core::arch::x86_64::*;
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let lo = _mm256_set1_epi32(lo.clamp(-1, 8) as i32);
    let hi = _mm256_set1_epi32(hi.clamp(-1, 8) as i32);
    // idx >= lo && idx < hi
    let ge = _mm256_cmpgt_epi32(idx, _mm256_sub_epi32(lo, _mm256_set1_epi32(1)));
    let lt = _mm256_cmpgt_epi32(hi, idx);
    _mm256_and_si256(ge, lt)
}
