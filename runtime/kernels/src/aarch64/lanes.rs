//! The f32 vector operations of NEON (`float32x4_t`, 4 lanes) for the generic drivers' tiles
//! ([`crate::driver::conv_f32::F32Lanes`]). NEON has no masked loads: a vector that reaches past
//! its row is gathered lane by lane (only the lanes inside), so nothing outside the row is read.

use core::arch::aarch64::*;

use crate::driver::conv_f32::F32Lanes;
use crate::Act;

impl F32Lanes for float32x4_t {
    const N: usize = 4;
    /// The lanes `lo..hi` that lie inside the row.
    type Mask = (u8, u8);
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        vdupq_n_f32(x)
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        vfmaq_f32(c, a, b)
    }
    #[inline(always)]
    unsafe fn row_mask(start: isize, width: usize) -> (Self::Mask, bool) {
        let lo = (-start).clamp(0, 4) as u8;
        let hi = (width as isize - start).clamp(0, 4) as u8;
        ((lo, hi.max(lo)), lo == 0 && hi == 4)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32, m: Self::Mask, full: bool) -> Self {
        if full {
            return vld1q_f32(p);
        }
        let mut t = [0f32; 4];
        for l in m.0..m.1 {
            t[l as usize] = *p.wrapping_add(l as usize);
        }
        vld1q_f32(t.as_ptr())
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self, n: usize) {
        if n >= 4 {
            vst1q_f32(p, v)
        } else {
            let mut t = [0f32; 4];
            vst1q_f32(t.as_mut_ptr(), v);
            core::ptr::copy_nonoverlapping(t.as_ptr(), p, n);
        }
    }
    #[inline(always)]
    unsafe fn act(v: Self, act: Act) -> Self {
        super::act4(v, act)
    }
}
