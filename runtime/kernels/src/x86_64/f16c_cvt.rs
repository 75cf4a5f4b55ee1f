//! f16 -> f32 widening with F16C (`vcvtph2ps`, 8 values per instruction; exact for every
//! finite, infinite and subnormal half; NaNs stay NaN, signalling ones come back quiet).

use core::arch::x86_64::*;

#[target_feature(enable = "avx,f16c")]
unsafe fn run(input: &[u16], output: &mut [f32]) {
    let n = input.len();
    let (ip, op) = (input.as_ptr(), output.as_mut_ptr());
    let mut i = 0;
    while i + 32 <= n {
        for j in 0..4 {
            let h = _mm_loadu_si128(ip.add(i + 8 * j) as *const __m128i);
            _mm256_storeu_ps(op.add(i + 8 * j), _mm256_cvtph_ps(h));
        }
        i += 32;
    }
    while i + 8 <= n {
        let h = _mm_loadu_si128(ip.add(i) as *const __m128i);
        _mm256_storeu_ps(op.add(i), _mm256_cvtph_ps(h));
        i += 8;
    }
    if i < n {
        let mut h = [0u16; 8];
        h[..n - i].copy_from_slice(&input[i..]);
        let mut f = [0f32; 8];
        _mm256_storeu_ps(
            f.as_mut_ptr(),
            _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr() as *const __m128i)),
        );
        output[i..n].copy_from_slice(&f[..n - i]);
    }
}

/// Widens IEEE binary16 values (as bits) to `f32` with F16C (`Kernels::f16_to_f32`); without
/// F16C it runs [`crate::generic::f16_to_f32`]. Equal to the reference for every non-NaN half.
pub fn f16_to_f32(input: &[u16], output: &mut [f32]) {
    assert!(
        output.len() >= input.len(),
        "f16_to_f32: output of {} elements, needs {}",
        output.len(),
        input.len()
    );
    if !crate::has_f16c() {
        return crate::generic::f16_to_f32(input, output);
    }
    // SAFETY: every access is below `input.len()` <= `output.len()` (checked above); avx and
    // f16c are present (checked above).
    #[allow(unsafe_code)]
    unsafe {
        run(input, output)
    }
}
