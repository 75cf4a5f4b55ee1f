//! The f32 vector operations of AVX2 + FMA (`__m256`, 8 lanes) and AVX-512F (`__m512`, 16
//! lanes) for the generic drivers' tiles ([`crate::driver::conv_f32::F32Lanes`]). Callers run
//! with the matching target features.

use core::arch::x86_64::*;

use crate::driver::conv_f32::F32Lanes;
use crate::Act;

impl F32Lanes for __m256 {
    const N: usize = 8;
    type Mask = __m256i;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        _mm256_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        _mm256_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn row_mask(start: isize, width: usize) -> (Self::Mask, bool) {
        let m = super::lanes8(-start, width as isize - start);
        (m, start >= 0 && start + 8 <= width as isize)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32, m: Self::Mask, full: bool) -> Self {
        if full {
            _mm256_loadu_ps(p)
        } else {
            _mm256_maskload_ps(p, m)
        }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self, n: usize) {
        if n >= 8 {
            _mm256_storeu_ps(p, v)
        } else {
            _mm256_maskstore_ps(p, super::lanes8(0, n as isize), v)
        }
    }
    #[inline(always)]
    unsafe fn act(v: Self, act: Act) -> Self {
        super::act256(v, act)
    }
}

impl F32Lanes for __m512 {
    const N: usize = 16;
    type Mask = __mmask16;
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        _mm512_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn row_mask(start: isize, width: usize) -> (Self::Mask, bool) {
        let m = super::row_mask16(start, width);
        (m, m == 0xFFFF)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32, m: Self::Mask, _full: bool) -> Self {
        // Masked-off lanes are never read (fault suppression).
        _mm512_maskz_loadu_ps(m, p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self, n: usize) {
        _mm512_mask_storeu_ps(p, super::lanes16(0, n as isize), v)
    }
    #[inline(always)]
    unsafe fn act(v: Self, act: Act) -> Self {
        super::act512(v, act)
    }
}
