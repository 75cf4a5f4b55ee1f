//! AArch64 kernels (NEON f32; NEON and dot-product int8; f16 widening), installed by
//! [`crate::Kernels::best`]. NEON is part of the AArch64 baseline, but each public entry still
//! checks it (and `dotprod` where used; run-time detection with `std`, the compile-time target
//! features without) and falls back to the generic kernel without it or for shapes it does not
//! handle, so calling one directly is always sound.
//!
//! The f32 arithmetic contract is the x86-64 kernels' one (`crate::x86_64`, on x86-64 builds):
//! every output element is `bias`, then one fused multiply-add per term in the reference order
//! (input channel, kernel row, kernel column, ascending), in vector lanes and scalar tails
//! alike, so an element's value never depends on its position in the image and tiled output
//! stays bit-identical to whole-frame output. Results differ from the scalar reference (separate
//! multiply and add) by rounding only; this module's unit tests check the contract bit for bit.
//!
//! The int8 kernels (`*_i8`) accumulate exactly in `i32` and share the reference's output stage
//! (vectorised in `neon_qout_i8`), so they equal [`crate::generic_i8`] exactly.

mod lanes;
pub mod neon_conv1x1_f32;
pub mod neon_conv1x1_i8;
pub mod neon_conv_f32;
pub mod neon_convt2x2_f32;
pub mod neon_convt2x2_i8;
pub mod neon_cvt_f16;
pub mod neon_dot_conv1x1_i8;
pub mod neon_dw_f32;
pub mod neon_dw_i8;
mod neon_qout_i8;

use core::arch::aarch64::*;

/// NEON present and allowed ([`crate::Isa::Neon`]).
pub(crate) fn has_neon() -> bool {
    crate::cpu::arm::neon() && crate::Isa::allows(crate::Isa::Neon)
}

/// Scalar fused multiply-add `a * b + c` (one rounding), for tails; callers run with NEON.
/// (`f32::mul_add` lives in std.)
#[inline(always)]
pub(crate) unsafe fn fma1(a: f32, b: f32, c: f32) -> f32 {
    vget_lane_f32::<0>(vfma_n_f32(vdup_n_f32(c), vdup_n_f32(a), b))
}

/// An activation on 4 lanes, lane for lane equal to [`crate::Act::apply`] (NaN and -0.0
/// included: compare and select, not `fmax`).
#[inline(always)]
pub(crate) unsafe fn act4(v: float32x4_t, act: crate::Act) -> float32x4_t {
    match act {
        crate::Act::None => v,
        crate::Act::Relu => {
            let zero = vdupq_n_f32(0.0);
            vbslq_f32(vcgtq_f32(v, zero), v, zero)
        }
        crate::Act::LeakyRelu(a) => vbslq_f32(vcgeq_f32(v, vdupq_n_f32(0.0)), v, vmulq_n_f32(v, a)),
    }
}

#[cfg(test)]
mod tests {
    //! The NEON entries against a scalar reference that does exactly the promised arithmetic
    //! (`bias`, then `f32::mul_add` per term in reference order): equal bit for bit, which also
    //! shows that no value depends on its position. Shapes the kernels pass on must equal the
    //! generic kernel bit for bit.
    extern crate std;
    use super::*;
    use crate::{generic, Act, Conv1x1, ConvShape};
    use rand::{Rng, SeedableRng};
    use std::vec;
    use std::vec::Vec;

    const ACTS: [Act; 3] = [Act::None, Act::Relu, Act::LeakyRelu(0.125)];

    fn rand_vec(rng: &mut impl Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    fn same_bits(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{what}: element {i}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn scalar_fma_is_fused() {
        let e = f32::EPSILON;
        // (1 + e)(1 - e) - 1 = -e^2 exactly; a separate multiply rounds the product to 1.
        // SAFETY: NEON is baseline on every AArch64 target this test builds for.
        let r = unsafe { fma1(1.0 + e, 1.0 - e, -1.0) };
        assert_eq!(r, -e * e);
    }

    #[test]
    fn vector_activation_equals_scalar_on_special_values() {
        let vals = [
            f32::NAN,
            -0.0,
            0.0,
            -1.5,
            2.5,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -1e-40,
        ];
        for act in ACTS {
            for ch in vals.chunks(4) {
                let mut out = [0f32; 4];
                // SAFETY: NEON is baseline here; `ch` and `out` hold 4 floats.
                unsafe { vst1q_f32(out.as_mut_ptr(), act4(vld1q_f32(ch.as_ptr()), act)) };
                let want: Vec<f32> = ch.iter().map(|&x| act.apply(x)).collect();
                same_bits(&out, &want, "act4");
            }
        }
    }

    #[test]
    fn conv1x1_is_bias_then_fused_terms_in_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(81);
        let mut cases = vec![(1, 1, 0), (1, 1, 1), (3, 7, 3), (5, 6, 16), (2, 13, 21)];
        for _ in 0..150 {
            cases.push((
                rng.random_range(1..24),
                rng.random_range(1..24),
                rng.random_range(0..70),
            ));
        }
        for (n, &(in_c, out_c, pixels)) in cases.iter().enumerate() {
            let s = Conv1x1 {
                in_c,
                out_c,
                pixels,
            };
            let x = rand_vec(&mut rng, in_c * pixels);
            let w = rand_vec(&mut rng, in_c * out_c);
            let b = if n % 2 == 0 {
                vec![]
            } else {
                rand_vec(&mut rng, out_c)
            };
            let act = ACTS[n % 3];
            let mut want = vec![0f32; out_c * pixels];
            for oc in 0..out_c {
                for p in 0..pixels {
                    let mut acc = if b.is_empty() { 0.0 } else { b[oc] };
                    for ic in 0..in_c {
                        acc = w[oc * in_c + ic].mul_add(x[ic * pixels + p], acc);
                    }
                    want[oc * pixels + p] = act.apply(acc);
                }
            }
            let mut got = vec![f32::NAN; out_c * pixels];
            neon_conv1x1_f32::conv1x1(&s, &x, &w, &b, act, &mut got);
            same_bits(
                &got,
                &want,
                &std::format!("conv1x1 {in_c}->{out_c} x {pixels}"),
            );
        }
    }

    /// Depthwise convolution, one output element at a time: `bias`, then one `mul_add` per tap
    /// inside the plane, in (ky, kx) order.
    fn fused_depthwise(s: &ConvShape, x: &[f32], w: &[f32], b: &[f32], act: Act) -> Vec<f32> {
        let (oh, ow) = s.conv_out().unwrap();
        let mut out = vec![0f32; s.in_c * oh * ow];
        for c in 0..s.in_c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = if b.is_empty() { 0.0 } else { b[c] };
                    for ky in 0..s.k_h {
                        let iy = (oy * s.stride_h + ky) as isize - s.pad[0] as isize;
                        for kx in 0..s.k_w {
                            let ix = (ox * s.stride_w + kx) as isize - s.pad[1] as isize;
                            if iy < 0 || ix < 0 || iy >= s.in_h as isize || ix >= s.in_w as isize {
                                continue;
                            }
                            let xi = (c * s.in_h + iy as usize) * s.in_w + ix as usize;
                            acc = w[(c * s.k_h + ky) * s.k_w + kx].mul_add(x[xi], acc);
                        }
                    }
                    out[(c * oh + oy) * ow + ox] = act.apply(acc);
                }
            }
        }
        out
    }

    #[test]
    fn depthwise_is_bias_then_fused_taps_in_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(82);
        // (c, h, w, k_h, k_w, pad [t, l, b, r], stride): borders, tiny and empty planes,
        // non-square and even kernels, asymmetric padding, rows entirely border, wide kernels,
        // borders so wide (tall kernels, wide padding) that they go through the border buffer
        // in several chunks, and a kernel wide enough to go to the generic kernel.
        let mut cases = vec![
            (1, 1, 1, 1, 1, [0; 4], 1),
            (1, 1, 1, 5, 5, [2; 4], 2),
            (2, 5, 3, 5, 5, [2; 4], 1),
            (3, 24, 24, 5, 5, [2; 4], 1),
            (3, 24, 24, 5, 5, [2; 4], 2),
            (2, 12, 12, 3, 3, [1; 4], 2),
            (5, 9, 70, 3, 3, [1; 4], 1),
            (2, 7, 131, 5, 5, [2; 4], 2),
            (1, 3, 0, 1, 3, [0, 2, 0, 2], 1),
            (1, 0, 4, 3, 1, [2, 0, 2, 0], 1),
            (2, 6, 37, 2, 4, [0, 1, 1, 2], 1),
            (2, 6, 37, 4, 2, [3, 0, 0, 1], 2),
            (1, 4, 9, 31, 31, [15; 4], 1),
            (1, 3, 200, 3, 41, [1, 20, 1, 20], 2),
            (1, 2, 300, 1, 201, [0, 100, 0, 100], 1),
            (1, 2, 20, 3, 700, [1, 340, 1, 340], 1),
            (1, 45, 60, 41, 3, [20, 100, 20, 100], 1),
            (2, 45, 61, 41, 3, [20, 101, 20, 99], 2),
        ];
        for _ in 0..250 {
            let (k_h, k_w) = if rng.random_range(0..4) == 0 {
                (rng.random_range(1..12), rng.random_range(1..12))
            } else {
                let k = [1, 3, 5, 7][rng.random_range(0..4)];
                (k, k)
            };
            let mut pad = [0; 4];
            for (i, p) in pad.iter_mut().enumerate() {
                *p = rng.random_range(0..=[k_h, k_w][i % 2] / 2 + 1);
            }
            cases.push((
                rng.random_range(1..6),
                rng.random_range(1..20),
                rng.random_range(1..110),
                k_h,
                k_w,
                pad,
                rng.random_range(1..3),
            ));
        }
        let mut handled = 0;
        for (n, &(c, h, w, k_h, k_w, pad, st)) in cases.iter().enumerate() {
            let s = ConvShape {
                in_c: c,
                in_h: h,
                in_w: w,
                out_c: c,
                k_h,
                k_w,
                stride_h: st,
                stride_w: st,
                pad,
                groups: c,
            };
            let Some((oh, ow)) = s.conv_out() else {
                continue;
            };
            let x = rand_vec(&mut rng, c * h * w);
            let wt = rand_vec(&mut rng, c * k_h * k_w);
            let b = if n % 2 == 0 {
                vec![]
            } else {
                rand_vec(&mut rng, c)
            };
            let act = ACTS[n % 3];
            let want = if k_h * (4 * st + k_w) > 2048 {
                let mut g = vec![0f32; c * oh * ow];
                generic::conv2d(&s, &x, &wt, &b, act, &mut g);
                g
            } else {
                handled += 1;
                fused_depthwise(&s, &x, &wt, &b, act)
            };
            let mut got = vec![f32::NAN; c * oh * ow];
            neon_dw_f32::depthwise(&s, &x, &wt, &b, act, &mut got);
            same_bits(
                &got,
                &want,
                &std::format!("depthwise c{c} {h}x{w} k{k_h}x{k_w} pad {pad:?} s{st}"),
            );
        }
        assert!(handled > 200);
    }

    #[test]
    fn conv_transpose_is_bias_then_fused_terms_in_order() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(83);
        let mut cases = vec![
            (1, 1, 1, 1),
            (3, 2, 1, 3),
            (2, 5, 2, 4),
            (7, 3, 2, 16),
            (4, 4, 3, 37),
        ];
        for _ in 0..120 {
            cases.push((
                rng.random_range(1..12),
                rng.random_range(1..12),
                rng.random_range(1..6),
                rng.random_range(1..70),
            ));
        }
        for (n, &(ci, co, h, w)) in cases.iter().enumerate() {
            let s = ConvShape {
                in_c: ci,
                in_h: h,
                in_w: w,
                out_c: co,
                k_h: 2,
                k_w: 2,
                stride_h: 2,
                stride_w: 2,
                pad: [0; 4],
                groups: 1,
            };
            let x = rand_vec(&mut rng, ci * h * w);
            let wt = rand_vec(&mut rng, ci * co * 4);
            let b = if n % 2 == 0 {
                vec![]
            } else {
                rand_vec(&mut rng, co)
            };
            let act = ACTS[n % 3];
            let mut want = vec![0f32; co * 4 * h * w];
            for oc in 0..co {
                for y in 0..2 * h {
                    for xo in 0..2 * w {
                        let mut acc = if b.is_empty() { 0.0 } else { b[oc] };
                        for ic in 0..ci {
                            let wv = wt[((ic * co + oc) * 2 + y % 2) * 2 + xo % 2];
                            acc = wv.mul_add(x[(ic * h + y / 2) * w + xo / 2], acc);
                        }
                        want[(oc * 2 * h + y) * 2 * w + xo] = act.apply(acc);
                    }
                }
            }
            let mut got = vec![f32::NAN; co * 4 * h * w];
            neon_convt2x2_f32::conv_transpose2x2(&s, &x, &wt, &b, act, &mut got);
            same_bits(
                &got,
                &want,
                &std::format!("conv_transpose {ci}->{co} {h}x{w}"),
            );
        }
        // Other shapes go to the reference.
        for (k, st, pad, groups) in [
            (3, 2, [0; 4], 1),
            (2, 2, [1; 4], 1),
            (2, 1, [0; 4], 1),
            (2, 2, [0; 4], 2),
        ] {
            let s = ConvShape {
                in_c: 4,
                in_h: 3,
                in_w: 9,
                out_c: 4,
                k_h: k,
                k_w: k,
                stride_h: st,
                stride_w: st,
                pad,
                groups,
            };
            let (oh, ow) = s.conv_transpose_out().unwrap();
            let x = rand_vec(&mut rng, 4 * 3 * 9);
            let wt = rand_vec(&mut rng, 4 * 4 / groups * k * k);
            let b = rand_vec(&mut rng, 4);
            let (mut want, mut got) = (vec![0f32; 4 * oh * ow], vec![1f32; 4 * oh * ow]);
            generic::conv_transpose2d(&s, &x, &wt, &b, Act::Relu, &mut want);
            neon_convt2x2_f32::conv_transpose2x2(&s, &x, &wt, &b, Act::Relu, &mut got);
            same_bits(&got, &want, "conv_transpose fallback");
        }
    }
}
