//! IEEE binary16 to `f32` widening with NEON (`fcvtl`, `fcvtl2`: base Armv8, no `fp16`
//! extension needed), 8 values at a time; the last 1 to 7 go through the scalar conversion.
//! Exact for every finite and infinite half (every half is an `f32`); NaNs stay NaNs (`fcvtl`
//! quiets signalling ones, the generic conversion keeps their bits).

use core::arch::aarch64::*;
use core::arch::asm;

/// Widens 8 halves.
///
/// # Safety
/// NEON present.
#[inline(always)]
unsafe fn widen8(h: uint16x8_t) -> (float32x4_t, float32x4_t) {
    let (lo, hi): (float32x4_t, float32x4_t);
    asm!(
        "fcvtl {lo:v}.4s, {h:v}.4h",
        "fcvtl2 {hi:v}.4s, {h:v}.8h",
        h = in(vreg) h,
        lo = out(vreg) lo,
        hi = lateout(vreg) hi,
        options(pure, nomem, nostack, preserves_flags)
    );
    (lo, hi)
}

#[target_feature(enable = "neon")]
unsafe fn run(input: &[u16], output: &mut [f32]) {
    let full = input.len() / 8 * 8;
    let (ip, op) = (input.as_ptr(), output.as_mut_ptr());
    let mut i = 0;
    while i < full {
        let (lo, hi) = widen8(vld1q_u16(ip.add(i)));
        vst1q_f32(op.add(i), lo);
        vst1q_f32(op.add(i + 4), hi);
        i += 8;
    }
    for i in full..input.len() {
        output[i] = crate::generic::f16_to_f32_one(input[i]);
    }
}

/// Widens IEEE binary16 values (as bits) to `f32`, equal to [`crate::generic::f16_to_f32`]
/// (NaNs as NaNs); CPUs without NEON get the generic conversion.
pub fn f16_to_f32(input: &[u16], output: &mut [f32]) {
    assert!(
        output.len() >= input.len(),
        "f16_to_f32 output: buffer of {} elements, needs {}",
        output.len(),
        input.len()
    );
    if !super::has_neon() {
        return crate::generic::f16_to_f32(input, output);
    }
    // SAFETY: `output` holds at least `input.len()` elements (checked above), and the vector
    // loop reads and writes below `input.len() / 8 * 8`; NEON is present (checked above).
    #[allow(unsafe_code)]
    unsafe {
        run(input, output)
    }
}
