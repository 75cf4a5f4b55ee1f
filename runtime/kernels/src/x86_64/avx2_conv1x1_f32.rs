//! Pointwise (1x1, stride 1, dense) convolution, AVX2 + FMA: the micro-kernel of
//! [`crate::driver::pointwise_f32`], a register tile of 6 output channels by 16 pixels (12
//! accumulators); a plane's last pixels take the same tile through masked loads and stores
//! (the same arithmetic per pixel).

#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::driver::pointwise_f32::{drive, entry, PointwiseF32Tile, PwArgs};
use crate::{Act, Conv1x1, PwEpilogue};

/// Lane masks of the first `n` (0..=16) of 16 pixels, as two 8-lane vectors.
#[inline(always)]
unsafe fn tail_masks(n: usize) -> [__m256i; 2] {
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let n0 = _mm256_set1_epi32(n.min(8) as i32);
    let n1 = _mm256_set1_epi32(n.saturating_sub(8) as i32);
    [_mm256_cmpgt_epi32(n0, lane), _mm256_cmpgt_epi32(n1, lane)]
}

/// 16 floats from `p` (`MASKED`: the lanes of `m0`, `m1` only; masked-off lanes are not
/// accessed, so the second half may start past the plane).
#[inline(always)]
unsafe fn load<const MASKED: bool>(p: *const f32, m0: __m256i, m1: __m256i) -> (__m256, __m256) {
    if MASKED {
        (
            _mm256_maskload_ps(p, m0),
            _mm256_maskload_ps(p.wrapping_add(8), m1),
        )
    } else {
        (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
    }
}

/// The tile, `MASKED`: only the first `n` of its 16 pixels, through masked loads and stores.
#[inline(always)]
unsafe fn tile<const OC: usize, const MASKED: bool>(
    a: &PwArgs<'_>,
    oc0: usize,
    p0: usize,
    n: usize,
) {
    let mut acc0 = [_mm256_setzero_ps(); OC];
    let mut acc1 = [_mm256_setzero_ps(); OC];
    for j in 0..OC {
        acc0[j] = _mm256_set1_ps(a.bias_of(oc0 + j));
        acc1[j] = acc0[j];
    }
    let [m0, m1] = if MASKED {
        tail_masks(n)
    } else {
        [_mm256_set1_epi32(-1); 2]
    };
    let wp = a.weight.add(oc0 * a.in_c);
    for ic in 0..a.in_c {
        let (x0, x1) = load::<MASKED>(a.input.add(ic * a.in_stride + p0), m0, m1);
        for j in 0..OC {
            let w = _mm256_set1_ps(*wp.add(j * a.in_c + ic));
            acc0[j] = _mm256_fmadd_ps(w, x0, acc0[j]);
            acc1[j] = _mm256_fmadd_ps(w, x1, acc1[j]);
        }
    }
    for j in 0..OC {
        let oc = oc0 + j;
        let (mut y0, mut y1) = (super::act256(acc0[j], a.act), super::act256(acc1[j], a.act));
        if let Some(r) = a.residual {
            // The residual add with the element-wise add kernel's exact arithmetic.
            let (r0, r1) = load::<MASKED>(r.add(oc * a.res_stride + p0), m0, m1);
            y0 = super::act256(_mm256_add_ps(y0, r0), a.res_act);
            y1 = super::act256(_mm256_add_ps(y1, r1), a.res_act);
        }
        let dst = a.output.add(oc * a.out_stride + p0);
        if MASKED {
            _mm256_maskstore_ps(dst, m0, y0);
            _mm256_maskstore_ps(dst.wrapping_add(8), m1, y1);
        } else {
            _mm256_storeu_ps(dst, y0);
            _mm256_storeu_ps(dst.add(8), y1);
        }
    }
}

/// The AVX2 + FMA micro-kernel.
struct Avx2;

impl PointwiseF32Tile for Avx2 {
    const MR: usize = 6;
    const NR: usize = 16;
    #[inline(always)]
    unsafe fn tile<const OC: usize>(a: &PwArgs<'_>, oc0: usize, p0: usize, n: usize) {
        if n == 16 {
            tile::<OC, false>(a, oc0, p0, n)
        } else {
            tile::<OC, true>(a, oc0, p0, n)
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn run(s: &Conv1x1, a: &PwArgs<'_>) {
    drive::<Avx2>(s, a)
}

/// Safe entry: checks buffer sizes, then runs the AVX2 kernel. Installed only on CPUs with
/// AVX2 and FMA.
pub fn conv1x1(
    s: &Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
) {
    let e = PwEpilogue::dense(s.pixels);
    conv1x1_into(s, input, weight, bias, act, output, &e)
}

/// [`conv1x1`] through a [`PwEpilogue`] (strided planes, fused residual add): the same values
/// as `conv1x1` followed by [`super::avx2_eltwise::add`].
pub fn conv1x1_into(
    s: &Conv1x1,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    output: &mut [f32],
    e: &PwEpilogue<'_>,
) {
    let present = crate::has_avx2_fma();
    entry(present, run, s, input, weight, bias, act, output, e)
}
