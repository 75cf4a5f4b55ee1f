//! Output stage of the NEON int8 kernels: four `i32` accumulators of one output channel to the
//! destination's values, lane for lane equal to [`OutStage::u8`] and
//! `act.apply(`[`OutStage::f32`]`)`.
//!
//! `u8`: `acc * multiplier` in 64 bits (`smull`), the rounding right shift (`srshl` by
//! `-shift` adds `2^(shift - 1)` before shifting, without overflow: round half up, as
//! [`crate::quant::Requant::apply`]), then saturating narrowings: to `i32`, `+ zero_point`, to
//! `u16`, to `u8`, and a maximum with the lower clamp. For a zero point in `0..=255` (and a lower
//! clamp in `0..=255`, which [`OutStage::new`] always gives) the saturations give
//! `clamp(v + zero_point, lo, 255)` for every 64-bit `v`: a `v` above `i32::MAX` saturates to
//! `i32::MAX` and ends at 255, one below `i32::MIN` saturates to `i32::MIN` and stays negative
//! after adding the zero point, so ends at `lo`. Other zero points take the scalar stage.
//!
//! `f32`: `scvtf` (round to nearest, as `as f32`), one multiply, then [`super::act4`].

use core::arch::aarch64::*;

use crate::quant::{OutStage, QOutput};
use crate::Act;

/// A kernel's destination, taken apart once: the first element of output channel 0.
#[derive(Clone, Copy)]
pub(crate) enum Dst {
    /// `u8` output.
    U8(*mut u8),
    /// `f32` output and its activation.
    F32(*mut f32, Act),
}

impl Dst {
    /// Takes `out` apart: its destination, and the same output stage with an empty destination
    /// (for [`OutStage::new`] while the kernel writes through the pointer).
    pub(crate) fn split(out: QOutput<'_>) -> (Self, QOutput<'static>) {
        match out {
            QOutput::U8 { q, relu, dst } => (
                Dst::U8(dst.as_mut_ptr()),
                QOutput::U8 {
                    q,
                    relu,
                    dst: &mut [],
                },
            ),
            QOutput::F32 { act, dst } => (
                Dst::F32(dst.as_mut_ptr(), act),
                QOutput::F32 { act, dst: &mut [] },
            ),
        }
    }
}

/// Writes the first `n` (1 to 4) lanes of `acc`, accumulators of the channel of `stage`, to
/// elements `at..at + n` of `dst`.
///
/// # Safety
/// NEON present; `at + n` elements lie inside the destination.
#[inline(always)]
pub(crate) unsafe fn store4(dst: Dst, stage: &OutStage, at: usize, acc: int32x4_t, n: usize) {
    match dst {
        Dst::U8(p) => {
            let p = p.add(at);
            if !(0..=255).contains(&stage.zero_point) {
                let mut a = [0i32; 4];
                vst1q_s32(a.as_mut_ptr(), acc);
                for (l, &a) in a[..n].iter().enumerate() {
                    *p.add(l) = stage.u8(a);
                }
                return;
            }
            let m = vdupq_n_s32(stage.requant.multiplier);
            let sh = vdupq_n_s64(-(stage.requant.shift as i64));
            let lo = vrshlq_s64(vmull_s32(vget_low_s32(acc), vget_low_s32(m)), sh);
            let hi = vrshlq_s64(vmull_high_s32(acc, m), sh);
            let v = vcombine_s32(vqmovn_s64(lo), vqmovn_s64(hi));
            let v = vqaddq_s32(v, vdupq_n_s32(stage.zero_point));
            let h = vqmovun_s32(v);
            let b = vqmovn_u16(vcombine_u16(h, h));
            let b = vmax_u8(b, vdup_n_u8(stage.lo as u8));
            if n == 4 {
                core::ptr::write_unaligned(
                    p as *mut u32,
                    vget_lane_u32::<0>(vreinterpret_u32_u8(b)),
                );
            } else {
                let mut t = [0u8; 8];
                vst1_u8(t.as_mut_ptr(), b);
                core::ptr::copy_nonoverlapping(t.as_ptr(), p, n);
            }
        }
        Dst::F32(p, act) => {
            let p = p.add(at);
            let f = super::act4(vmulq_n_f32(vcvtq_f32_s32(acc), stage.scale), act);
            if n == 4 {
                vst1q_f32(p, f);
            } else {
                let mut t = [0f32; 4];
                vst1q_f32(t.as_mut_ptr(), f);
                core::ptr::copy_nonoverlapping(t.as_ptr(), p, n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::quant::{QConvParams, QParams};
    use rand::{Rng, SeedableRng};

    /// The vector stage against the scalar one on extreme accumulators, every zero point and
    /// multipliers from tiny to huge.
    #[test]
    fn vector_stage_equals_scalar() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(91);
        let specials = [
            0,
            1,
            -1,
            2,
            -2,
            i32::MAX,
            i32::MIN,
            i32::MAX - 1,
            i32::MIN + 1,
            1 << 20,
            -(1 << 20),
        ];
        for case in 0..3000 {
            let ws = [2f32.powf(rng.random_range(-20.0..20.0))];
            let p = QConvParams {
                in_zero_point: 0,
                in_scale: 2f32.powf(rng.random_range(-10.0..10.0)),
                weight: &[],
                weight_scale: &ws,
                bias: &[],
            };
            let zp = match case % 5 {
                0 => 0,
                1 => 255,
                2 => rng.random_range(-300..600),
                _ => rng.random_range(0..=255),
            };
            let q = QParams {
                scale: 2f32.powf(rng.random_range(-10.0..10.0)),
                zero_point: zp,
            };
            let act = [Act::None, Act::Relu, Act::LeakyRelu(0.3)][case % 3];
            let mut a = [0i32; 4];
            for l in &mut a {
                *l = if rng.random_range(0..3) == 0 {
                    specials[rng.random_range(0..specials.len())]
                } else {
                    rng.random_range(-100_000..100_000)
                };
            }
            let n = 1 + case % 4;
            for relu in [false, true] {
                let mut got = [7u8; 4];
                let (dst, probe) = Dst::split(QOutput::U8 {
                    q,
                    relu,
                    dst: &mut got,
                });
                let stage = OutStage::new(&p, &probe, 0);
                // SAFETY: NEON is baseline here; `got` holds 4 elements.
                unsafe { store4(dst, &stage, 0, vld1q_s32(a.as_ptr()), n) };
                for l in 0..4 {
                    let want = if l < n { stage.u8(a[l]) } else { 7 };
                    assert_eq!(got[l], want, "{a:?} {q:?} {relu} lane {l}");
                }
            }
            let mut got = [7f32; 4];
            let (dst, probe) = Dst::split(QOutput::F32 { act, dst: &mut got });
            let stage = OutStage::new(&p, &probe, 0);
            // SAFETY: as above.
            unsafe { store4(dst, &stage, 0, vld1q_s32(a.as_ptr()), n) };
            for l in 0..4 {
                let want = if l < n {
                    act.apply(stage.f32(a[l]))
                } else {
                    7.0
                };
                assert_eq!(got[l].to_bits(), want.to_bits(), "{a:?} lane {l}");
            }
        }
    }
}
