//! Register-resident throughput loops (no memory traffic) that measure the machine's peak
//! multiply-accumulate rate, for the benches' "achieved vs peak" figures. Each returns the
//! number of multiply-accumulates it performed (0 without the CPU features) and a value that
//! depends on every result, so the loop cannot be optimised away.

use core::arch::x86_64::*;

/// Independent accumulator chains of the 512-bit loops (latency x throughput; 32 registers).
const CHAINS512: usize = 24;
/// Independent accumulator chains of the 256-bit loops (16 registers).
const CHAINS256: usize = 12;

#[target_feature(enable = "avx512f")]
unsafe fn fma512(iters: usize) -> f32 {
    let mut acc = [_mm512_set1_ps(1.0); CHAINS512];
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1.0e-7);
    for _ in 0..iters {
        for c in acc.iter_mut() {
            *c = _mm512_fmadd_ps(*c, a, b);
        }
    }
    let mut s = _mm512_setzero_ps();
    for c in acc {
        s = _mm512_add_ps(s, c);
    }
    _mm512_reduce_add_ps(s)
}

#[target_feature(enable = "avx2,fma")]
unsafe fn fma256(iters: usize) -> f32 {
    let mut acc = [_mm256_set1_ps(1.0); CHAINS256];
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1.0e-7);
    for _ in 0..iters {
        for c in acc.iter_mut() {
            *c = _mm256_fmadd_ps(*c, a, b);
        }
    }
    let mut s = _mm256_setzero_ps();
    for c in acc {
        s = _mm256_add_ps(s, c);
    }
    let mut t = [0f32; 8];
    _mm256_storeu_ps(t.as_mut_ptr(), s);
    t.iter().sum()
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dpbusd512(iters: usize) -> i32 {
    let mut acc = [_mm512_set1_epi32(1); CHAINS512];
    let a = _mm512_set1_epi8(3);
    let b = _mm512_set1_epi8(-2);
    for _ in 0..iters {
        for c in acc.iter_mut() {
            *c = _mm512_dpbusd_epi32(*c, a, b);
        }
    }
    let mut s = _mm512_setzero_si512();
    for c in acc {
        s = _mm512_add_epi32(s, c);
    }
    _mm512_reduce_add_epi32(s)
}

#[target_feature(enable = "avx2")]
unsafe fn maddwd256(iters: usize) -> i32 {
    // The AVX2 int8 kernels' inner step, vpmaddwd then vpaddd (each chain feeds its own
    // multiplier, so nothing is loop-invariant).
    let mut acc = [_mm256_set1_epi32(1); CHAINS256];
    let b = _mm256_set1_epi16(-2);
    for _ in 0..iters {
        for c in acc.iter_mut() {
            *c = _mm256_add_epi32(*c, _mm256_madd_epi16(*c, b));
        }
    }
    let mut s = _mm256_setzero_si256();
    for c in acc {
        s = _mm256_add_epi32(s, c);
    }
    let mut t = [0i32; 8];
    _mm256_storeu_si256(t.as_mut_ptr() as *mut _, s);
    t.iter().fold(0, |x, y| x.wrapping_add(*y))
}

/// AVX-512F `vfmadd` on 16 `f32` lanes, `iters` x 24 instructions: (MACs, checksum).
pub fn fma_avx512(iters: usize) -> (u64, f32) {
    if !crate::has_avx512f() {
        return (0, 0.0);
    }
    // SAFETY: avx512f is present (checked above); no memory is accessed.
    #[allow(unsafe_code)]
    let r = unsafe { fma512(iters) };
    ((iters * CHAINS512 * 16) as u64, r)
}

/// AVX2 `vfmadd` on 8 `f32` lanes, `iters` x 12 instructions: (MACs, checksum).
pub fn fma_avx2(iters: usize) -> (u64, f32) {
    if !crate::has_avx2_fma() {
        return (0, 0.0);
    }
    // SAFETY: avx2 and fma are present (checked above); no memory is accessed.
    #[allow(unsafe_code)]
    let r = unsafe { fma256(iters) };
    ((iters * CHAINS256 * 8) as u64, r)
}

/// AVX-512 VNNI `vpdpbusd` (64 `u8 x i8` products per instruction), `iters` x 24
/// instructions: (MACs, checksum).
pub fn dpbusd_avx512(iters: usize) -> (u64, i32) {
    if !crate::has_avx512vnni() {
        return (0, 0);
    }
    // SAFETY: avx512f/bw/vnni are present (checked above); no memory is accessed.
    #[allow(unsafe_code)]
    let r = unsafe { dpbusd512(iters) };
    ((iters * CHAINS512 * 64) as u64, r)
}

/// AVX2 `vpmaddwd` + `vpaddd` (16 `i16` products per pair), `iters` x 12 pairs:
/// (MACs, checksum).
pub fn maddwd_avx2(iters: usize) -> (u64, i32) {
    if !crate::has_avx2() {
        return (0, 0);
    }
    // SAFETY: avx2 is present (checked above); no memory is accessed.
    #[allow(unsafe_code)]
    let r = unsafe { maddwd256(iters) };
    ((iters * CHAINS256 * 16) as u64, r)
}
